"""Run colours: 20 distinct ones (matplotlib's tab20, dark shades first, then the light ones), so the first 20
runs never share a colour; term colours for the focused-run view."""

from __future__ import annotations

RUN_COLOURS = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
    (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
    (219, 219, 141), (158, 218, 229),
)
# Focused-run mode tells a run's curves apart by colour (Okabe-Ito, readable by colour-blind readers).
TERM_COLOURS = ((0, 0, 0), (0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (213, 94, 0), (86, 180, 233))


def run_colour(run_id: int) -> tuple[int, int, int]:
    """The colour of run ``run_id`` (1-based); the cycle restarts after 20."""
    return RUN_COLOURS[(run_id - 1) % len(RUN_COLOURS)]
