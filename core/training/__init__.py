"""Training as Python generators of small records (plain floats and small numpy arrays)."""
