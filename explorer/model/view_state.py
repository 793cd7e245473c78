"""What the plots show, kept apart from the widgets that show it: the x axis, smoothing, log-y per plot, the
bound's terms mode, the focused-run mode, the selected, hidden and focused runs and the kind on show.

An evented dataclass (psygnal): every change of a field is an event (``state.events.<field>`` or
``state.events.all``); the widgets set fields and redraw on those events. Export reads the same object, so a
figure matches the screen (docs/explorer.md#view-state).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psygnal import evented

from core.config_checks import smoothing_weight
from core.errors import ConfigError

PLOTS = ("loss", "bound", "gap")
X_AXES = ("step", "wall")
TERMS_MODES = ("total", "terms", "stacked")


@evented
@dataclass
class ViewState:
    x_axis: str = "step"            # "step" (epochs for a VAE) or "wall" (seconds)
    smoothing: float = 0.9          # EMA weight of the loss curve (TensorBoard's, debiased)
    log_y: frozenset = frozenset()  # the names of the plots (PLOTS) drawn with a log y axis
    terms_mode: str = "terms"       # the bound plot: "total", "terms" or "stacked"
    focus_mode: bool = False        # only the focused run, its curves told apart by colour
    kind: str | None = None         # the kind of run the training plots show (kinds.KINDS)
    focused: int | None = None      # the run whose samples, T views and cursor values are shown
    selected: tuple = ()            # the runs selected in the runs table
    hidden: frozenset = field(default_factory=frozenset)  # runs whose curves the user switched off

    def set_log_y(self, plot: str, on: bool) -> None:
        if plot not in PLOTS:
            raise ConfigError(f"no plot {plot!r}; the plots are {', '.join(PLOTS)}")
        self.log_y = self.log_y | {plot} if on else self.log_y - {plot}

    def set_visible(self, run_id: int, visible: bool) -> None:
        self.hidden = self.hidden - {run_id} if visible else self.hidden | {run_id}

    def is_visible(self, run_id: int) -> bool:
        return run_id not in self.hidden

    def check(self) -> "ViewState":
        """Refuse settings no view can show, naming the field."""
        if self.x_axis not in X_AXES:
            raise ConfigError(f"x axis must be one of {', '.join(X_AXES)}, got {self.x_axis!r}")
        if self.terms_mode not in TERMS_MODES:
            raise ConfigError(f"terms mode must be one of {', '.join(TERMS_MODES)}, got {self.terms_mode!r}")
        smoothing_weight(self.smoothing)
        return self
