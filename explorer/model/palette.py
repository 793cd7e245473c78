"""Run colours: 20 distinct ones (matplotlib's tab20, dark shades first, then the light ones), so the first 20
runs never share a colour; term colours for the focused-run view."""

from __future__ import annotations

RUN_COLOURS = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
    (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
    (219, 219, 141), (158, 218, 229),
)
# Focused-run mode tells a run's curves apart by colour: near-white for the main curve, then Okabe-Ito colours
# (readable by colour-blind readers), all visible on the plots' dark background.
TERM_COLOURS = ((235, 235, 235), (86, 180, 233), (230, 159, 0), (0, 158, 115), (204, 121, 167), (213, 94, 0), (240, 228, 66))


def run_colour(run_id: int) -> tuple[int, int, int]:
    """The colour of run ``run_id`` (1-based); the cycle restarts after 20."""
    return RUN_COLOURS[(run_id - 1) % len(RUN_COLOURS)]
