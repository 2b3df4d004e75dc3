"""The anyio shell: drives the sans-I/O core over byte streams (the only code that awaits)."""
