"""Qt-free core of InfoGen Explorer: data, models, training generators, bounds, metrics, sweeps and the CLI."""

__version__ = "0.1.0"
