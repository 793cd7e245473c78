"""Validation helpers shared by the run configurations: each raises ConfigError naming the setting."""

from __future__ import annotations

import math
from dataclasses import fields

from .errors import ConfigError


def int_at_least(name: str, value: object, low: int) -> None:
    """An integer (not a bool) >= low."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def positive_number(name: str, value: object) -> None:
    """A finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def reject_unknown(cls: type, values: dict, what: str) -> None:
    """Refuse keys that are not fields of the dataclass ``cls`` (e.g. a config.json from elsewhere)."""
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise ConfigError(f"unknown {what} settings: {', '.join(unknown)}")
