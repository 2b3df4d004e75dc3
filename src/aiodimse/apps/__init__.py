"""Command-line tools, built only on the public API: ``aiodimse <tool> --help``."""
