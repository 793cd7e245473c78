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


# Limits on settings whose cost or meaning ends somewhere; each message says why.
T_MAX = 5.0
T_MAX_REASON = (
    "the forward process has reached its stationary N(0, I) long before: alpha(T) = exp(-integral of beta / 2) is "
    "2e-9 at T = 2 and 7e-55 at T = 5, so a larger T only adds to the generator term (sum of beta grows like T^2) "
    "and to the Euler-Maruyama step size"
)
LR_MAX = 1.0
LR_REASON = (
    "Adam moves every weight by about lr per step whatever the gradient's scale, and the weights start within "
    "+-1/sqrt(fan_in): a step above 1 throws them out of any useful range at once"
)
MAX_EM_STEPS = 100_000
EM_STEPS_REASON = (
    "each evaluation runs the network N times over all generated samples, and the bound's discretisation is already "
    "negligible long before (its generator term falls like 1/sqrt(N))"
)


def _number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def diffusion_time(value: object, name: str = "diffusion time T") -> None:
    """0 < T <= T_MAX, finite."""
    if not _number(value) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    if value > T_MAX:
        raise ConfigError(f"{name} must be <= {T_MAX:g}, got {value!r}: {T_MAX_REASON}")


def learning_rate(value: object, name: str = "lr (learning rate)") -> None:
    """0 < lr <= LR_MAX, finite."""
    if not _number(value) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    if value > LR_MAX:
        raise ConfigError(f"{name} must be <= {LR_MAX:g}, got {value!r}: {LR_REASON}")


def smoothing_weight(value: object, name: str = "smoothing") -> None:
    """The EMA weight w of the loss curve: finite, 0 <= w < 1 (w = 1 would never move off the first value)."""
    if not _number(value) or not math.isfinite(value) or not 0 <= value < 1:
        raise ConfigError(f"{name} (the EMA weight of the loss curve) must be a finite number with 0 <= w < 1 "
                          f"(0: no smoothing; 1 would never leave the first value), got {value!r}")


def em_steps(n_steps: int, name: str = "N (Euler-Maruyama steps)") -> None:
    """1 <= N <= MAX_EM_STEPS."""
    if n_steps > MAX_EM_STEPS:
        raise ConfigError(f"{name} = {n_steps} is above the limit of {MAX_EM_STEPS}: {EM_STEPS_REASON}")
