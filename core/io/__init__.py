"""Files: atomic writes, run directories (config, history, weights, samples)."""
