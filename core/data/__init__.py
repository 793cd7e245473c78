"""Datasets and input validation."""

from .toy2d import TOY_DATASETS, load_toy2d
from .validation import validate_points

__all__ = ["TOY_DATASETS", "load_toy2d", "validate_points"]
