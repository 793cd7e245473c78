"""The curves the training plots draw, computed from entries, their curve specification and the view state.

Qt-free and pure: the plot widget maps each Curve to a pyqtgraph item, the tests count and check them without a
window. In the comparison view every shown run has its colour and one legend entry (its main curve); its other
curves are told apart by dash style, explained by ``style_key``. In the focused-run view only the focused run is
drawn and its curves are told apart by colour, each with its legend entry (docs/explorer.md#comparing-runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.smoothing import debiased_ema, decimate

from .entries import Entry, TrainingRun
from .kinds import VAE, CurveSpec, Series
from .labels import legend_labels
from .palette import TERM_COLOURS
from .view_state import ViewState

MAX_DISPLAY_POINTS = 2000
STYLE_NAMES = {"solid": "solid", "dash": "dashed", "dot": "dotted", "dashdot": "dash-dot", "dashdotdot": "dash-dot-dot"}


@dataclass
class Curve:
    """One drawn curve: which plot, whose, its points and its look. ``legend`` is None for curves that have no
    legend entry of their own."""

    plot: str
    run_id: int
    key: str
    x: np.ndarray
    y: np.ndarray
    colour: tuple[int, ...]
    style: str = "solid"
    width: float = 1.5
    symbol: str | None = None
    legend: str | None = None


def points(x, values) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) points that have a value: None (NaN stored as null) and non-finite values are skipped."""
    x = np.asarray(x, dtype=float)
    y = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def shown_runs(entries: list[Entry], view: ViewState) -> list[TrainingRun]:
    """The training runs the plots show: visible, of the kind on show; in the focused view only the focused
    one."""
    runs = [e for e in entries if isinstance(e, TrainingRun) and e.kind == view.kind and view.is_visible(e.run_id)]
    if view.focus_mode:
        runs = [r for r in runs if r.run_id == view.focused] or runs[-1:]
    return runs


def loss_x(run: TrainingRun, view: ViewState) -> np.ndarray:
    """Where each training step sits on the x axis: its step (its fractional epoch for a VAE) or wall time."""
    if view.x_axis == "wall":
        return np.asarray(run.walls, dtype=float)
    return np.asarray(run.steps, dtype=float) / run.steps_per_epoch


def eval_x(run: TrainingRun, view: ViewState) -> np.ndarray:
    key = "wall" if view.x_axis == "wall" else run.spec.eval_x
    return np.array([np.nan if ev.get(key) is None else float(ev[key]) for ev in run.evals], dtype=float)


def eval_values(run: TrainingRun, series: Series) -> list:
    spec = run.spec
    if series.key in spec.scaled_terms:
        return [spec.term_value(ev, series.key) for ev in run.evals]
    return [ev.get(series.key) for ev in run.evals]


def build_curves(entries: list[Entry], view: ViewState, plots: tuple[str, ...] = ("loss", "bound", "gap"),
                 run_ids: set[int] | None = None) -> list[Curve]:
    """The curves of the named training plots for the runs on show (only those in ``run_ids`` when given)."""
    runs = shown_runs(entries, view)
    labels = legend_labels(runs)
    focus = view.focus_mode
    makers = {"loss": _loss_curves, "bound": _bound_curves, "gap": _gap_curves}
    out: list[Curve] = []
    for run in runs:
        if run_ids is None or run.run_id in run_ids:
            for plot in plots:
                out += makers[plot](run, view, labels[run.run_id], focus)
    return out


def _look(run: TrainingRun, series: Series, index: int, label: str, focus: bool) -> dict:
    """Colour, style and legend text: by run (dash per series) or, focused, by series (colour per series)."""
    if focus:
        return {"colour": TERM_COLOURS[index % len(TERM_COLOURS)], "style": "solid" if series.main else series.style,
                "legend": series.label}
    return {"colour": run.colour, "style": series.style, "legend": label if series.main else None}


def _loss_curves(run: TrainingRun, view: ViewState, label: str, focus: bool) -> list[Curve]:
    spec = run.spec
    x, y = points(loss_x(run, view), run.losses)
    colour = TERM_COLOURS[1] if focus else run.colour
    out = []
    if len(x):
        rx, ry = decimate(x, y, MAX_DISPLAY_POINTS)
        sx, sy = decimate(x, debiased_ema(y, view.smoothing), MAX_DISPLAY_POINTS)
        out.append(Curve("loss", run.run_id, "raw", rx, ry, (*colour, 45), width=1.0))
        out.append(Curve("loss", run.run_id, "smooth", sx, sy, colour, width=2.0,
                         legend=f"train {spec.loss_label} (smoothed)" if focus else label))
    ex = eval_x(run, view)
    if len(ex):
        hx, hy = points(ex, [spec.held_out(ev) for ev in run.evals])
        out.append(Curve("loss", run.run_id, "held-out", hx, hy, TERM_COLOURS[5] if focus else colour, style="none",
                         symbol="o", legend=spec.held_out_label if focus else None))
    return out


def _bound_curves(run: TrainingRun, view: ViewState, label: str, focus: bool) -> list[Curve]:
    spec = run.spec
    ex = eval_x(run, view)
    if not len(ex):
        return []
    out = []
    for i, series in enumerate(spec.bound_total):
        x, y = points(ex, eval_values(run, series))
        out.append(Curve("bound", run.run_id, series.key, x, y, width=2.5, symbol=series.symbol,
                         **_look(run, series, i, label, focus)))
    if view.terms_mode == "total":
        return out
    cumulative = np.zeros(len(ex))
    for i, series in enumerate(spec.bound_terms, start=len(spec.bound_total)):
        values = np.array([np.nan if v is None else v for v in eval_values(run, series)], dtype=float)
        if view.terms_mode == "stacked" and spec.kind != VAE:
            cumulative = cumulative + values
            values = cumulative.copy()
        x, y = points(ex, values)
        out.append(Curve("bound", run.run_id, series.key, x, y, width=1.3, **_look(run, series, i, label, focus)))
    return out


def _gap_curves(run: TrainingRun, view: ViewState, label: str, focus: bool) -> list[Curve]:
    ex = eval_x(run, view)
    if not len(ex):
        return []
    previews = [bool(ev.get("preview")) for ev in run.evals]
    out = []
    for i, series in enumerate(run.spec.gap):
        values = eval_values(run, series)
        light = series.key == run.spec.test_key and any(previews)
        if light:  # a preview's test metric uses fewer samples: not on the same line as the full evaluations
            values, preview_values = ([None if p else v for v, p in zip(values, previews)],
                                      [v if p else None for v, p in zip(values, previews)])
        x, y = points(ex, values)
        look = _look(run, series, i, label, focus)
        out.append(Curve("gap", run.run_id, series.key, x, y, width=2.0 if series.main else 1.2,
                         symbol=series.symbol, **look))
        if light:
            px, py = points(ex, preview_values)
            out.append(Curve("gap", run.run_id, f"{series.key}:preview", px, py, look["colour"], style="none",
                             symbol="t", legend=f"{series.label} (preview)" if focus else None))
    return out


def style_key(spec: CurveSpec, plot: str, view: ViewState) -> str:
    """A line under a plot in the comparison view: which dash style is which curve (colours are runs)."""
    if view.focus_mode:
        return ""
    if plot == "loss":
        return f"line: train {spec.loss_label} (smoothed, faint: raw) · dots: {spec.held_out_label}"
    series = list(spec.bound_total) + (list(spec.bound_terms) if view.terms_mode != "total" else [])
    if plot == "gap":
        series = list(spec.gap)
    parts = [f"{STYLE_NAMES[s.style]}: {s.label}" for s in series]
    if plot == "gap" and spec.kind != VAE:
        parts.append(f"triangles: {spec.test_label} of a preview")
    if plot == "bound" and view.terms_mode == "stacked" and spec.kind != VAE:
        parts.append("terms stacked")
    return " · ".join(parts)


def data_bounds(curves: list[Curve], plot: str, log_y: bool) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The x and y extent of a plot's curves in view coordinates (log10 of y on a log axis, where values <= 0
    cannot be drawn and are left out), or None when nothing can be drawn."""
    xs, ys = [], []
    for c in curves:
        if c.plot != plot or not len(c.x):
            continue
        y = c.y
        keep = np.isfinite(c.x) & np.isfinite(y)
        if log_y:
            keep &= y > 0
        xs.append(c.x[keep])
        ys.append(np.log10(y[keep]) if log_y else y[keep])
    if not xs:
        return None
    x, y = np.concatenate(xs), np.concatenate(ys)
    if not len(x) or not len(y):
        return None
    return (float(x.min()), float(x.max())), (float(y.min()), float(y.max()))


def log_ticks(lo: float, hi: float, max_labels: int = 6) -> list[tuple[float, str]]:
    """Labelled ticks for a log axis showing log10 values lo..hi: (position, text) for the decades, or the
    1-2-5 values, or every 1..9 multiple, whichever gives at least two labels without exceeding ``max_labels``
    (pyqtgraph labels every minor tick, and they crowd into each other)."""
    import math

    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return []
    first, last = math.floor(lo), math.ceil(hi)
    best: list[tuple[float, str]] = []
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = []
        for decade in range(first, last + 1):
            for k in mantissas:
                value = k * 10.0**decade
                position = math.log10(value)
                if lo <= position <= hi:
                    ticks.append((position, f"{value:g}"))
        if len(ticks) > max_labels:
            if mantissas == (1,):  # many decades: every k-th one
                step = math.ceil(len(ticks) / max_labels)
                best = ticks[::step]
            break
        best = ticks
        if len(ticks) >= 2:
            break
    return best
