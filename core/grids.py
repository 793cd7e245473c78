"""Parsing of the CLI's grids: ``0.2:1.8:0.2`` (inclusive), ``0.2,0.6,1.0`` or a single value; seeds ``0,1,2`` or ``0-4``."""

from __future__ import annotations

import math

from .errors import ConfigError

MAX_GRID = 1000  # values in one T grid or seed list: a sweep trains one model per (T, seed)


def parse_float_grid(text: str, name: str = "T") -> list[float]:
    """Values from ``start:stop:step`` (stop included when on the grid), a comma list, or one number."""
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise ValueError("expected start:stop:step")
            start, stop, step = parts
            if not all(math.isfinite(p) for p in parts) or step <= 0 or stop < start:
                raise ValueError("need finite start <= stop and step > 0")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            if count > MAX_GRID:
                raise ValueError(f"{count} values; at most {MAX_GRID} (each trains a model)")
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(p) for p in text.split(",") if p.strip()]
            if len(values) > MAX_GRID:
                raise ValueError(f"{len(values)} values; at most {MAX_GRID} (each trains a model)")
    except ValueError as exc:
        raise ConfigError(f"cannot read {name} grid {text!r}: {exc}") from None
    if not values:
        raise ConfigError(f"{name} grid {text!r} is empty")
    if len(set(values)) != len(values):
        raise ConfigError(f"{name} grid {text!r} repeats a value")
    return values


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``0,1,2``, ``0-4`` (inclusive) or a mix; each a non-negative integer, none repeated."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = (int(v) for v in part.split("-", 1))
                if hi < lo:
                    raise ValueError(f"range {part} runs backwards")
                if hi - lo + 1 + len(seeds) > MAX_GRID:
                    raise ValueError(f"more than {MAX_GRID} seeds (each trains a model)")
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
    except ValueError as exc:
        raise ConfigError(f"cannot read seeds {text!r}: {exc}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {text!r} must be distinct non-negative integers")
    return seeds
