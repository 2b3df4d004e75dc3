"""Dataset encodings (sans-I/O): streaming transcoding between transfer syntaxes (PS3.5)."""
