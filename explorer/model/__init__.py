"""The explorer's model, free of Qt: the runs, sweeps and T selections of a session with change events, the
view state, and a curve specification per kind of run (docs/explorer.md). The widgets in ``explorer``
subscribe to it; tests drive it without a QApplication."""

from .collection import RunCollection
from .entries import EVALS, STATUS, STEPS, Entry, Selection, Sweep, TrainingRun
from .kinds import IMAGES, KINDS, POINTS, SPECS, VAE, CurveSpec, Series, kind_of, spec_of
from .labels import legend_labels
from .palette import RUN_COLOURS, TERM_COLOURS, run_colour
from .view_state import PLOTS, TERMS_MODES, ViewState

__all__ = [
    "RunCollection", "Entry", "TrainingRun", "Sweep", "Selection", "STEPS", "EVALS", "STATUS", "CurveSpec",
    "Series", "SPECS", "KINDS", "POINTS", "IMAGES", "VAE", "kind_of", "spec_of", "legend_labels", "RUN_COLOURS",
    "TERM_COLOURS", "run_colour", "ViewState", "PLOTS", "TERMS_MODES",
]
