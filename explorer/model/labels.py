"""Legend labels that say what tells the shown runs apart (data, m, T, seed, variant, λ, …), shortened.

With one run shown, its label names its data, m and T; with several, only the settings that differ between
them appear, so five runs of a T grid read "#3 T=0.6", not five copies of the same long name
(docs/explorer.md#comparing-runs).
"""

from __future__ import annotations

from .entries import Entry

# (config attribute, label prefix) in the order they are listed; the first ones matter most.
FIELDS = (("data", ""), ("m", "m="), ("T", "T="), ("seed", "seed="), ("variant", ""), ("score_reg", "λ="),
          ("R", "R="), ("preset", ""), ("iters", "iters="), ("epochs", "epochs="), ("lr", "lr="), ("batch", "batch="))
MAX_LABEL = 32


def _value(entry: Entry, name: str):
    if entry.is_sweep and name in ("T", "seed"):
        return None  # a sweep spans its grid; its own label says so
    return getattr(entry.config, name, None)


def _text(prefix: str, value) -> str:
    return f"{prefix}{value:g}" if isinstance(value, float) else f"{prefix}{value}"


def distinguishing_fields(entries: list[Entry]) -> list[str]:
    """The config fields whose values differ among ``entries``."""
    out = []
    for name, _ in FIELDS:
        values = {repr(_value(e, name)) for e in entries}
        if len(values) > 1:
            out.append(name)
    return out


def legend_labels(entries: list[Entry]) -> dict[int, str]:
    """Run id -> a short label for each of ``entries`` (the runs shown together)."""
    if not entries:
        return {}
    names = distinguishing_fields(entries) if len(entries) > 1 else ["data", "m", "T"]
    out = {}
    for e in entries:
        parts = [f"#{e.run_id}"]
        if e.is_sweep:
            parts.append("sweep" if getattr(e, "Ts", None) is not None else "selection")
        for name in names:
            value = _value(e, name)
            if value is not None:
                parts.append(_text(dict(FIELDS)[name], value))
        label = " ".join(parts)
        out[e.run_id] = label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"
    return out
