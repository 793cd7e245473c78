"""The README's screenshots: the app as a user drives it, with three runs and a sweep, at 1600×1000 and 1024×700.

Run under a real X server (Xvfb), e.g.
    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/screenshots.py
Runs are written to a temporary folder; the PNGs to assets/ (or --out).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def wait_until(app, condition, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the runs did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("assets"))
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=500)
    args = p.parse_args()
    os.environ.setdefault("INFOGEN_RUNS_DIR", tempfile.mkdtemp(prefix="infogen-shots-"))
    os.environ.setdefault("INFOGEN_SETTINGS", str(Path(tempfile.mkdtemp()) / "settings.ini"))
    from PySide6.QtWidgets import QApplication

    from explorer.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    form = window.form
    form.iters.setValue(args.iters)
    form.eval_every.setValue(args.eval_every)
    for T in ("0.4", "0.6", "1.0"):
        form.T.setText(T)
        form.run_button.click()
        app.processEvents()
    wait_until(app, lambda: not window.manager.busy, 900)
    form.T.setText("0.2,0.6,1.0")
    form.run_button.click()
    wait_until(app, lambda: not window.manager.busy, 1800)
    args.out.mkdir(parents=True, exist_ok=True)
    first, sweep = window.runs.values()[1], window.runs.values()[-1]
    for width, height in ((1600, 1000), (1024, 700)):
        window.resize(width, height)
        window.view.focused = first.run_id
        window.tabs.setCurrentIndex(0)
        window.t_explorer.view.setCurrentIndex(1)  # the reverse trajectory
        window.t_explorer.slider.setValue(0.3)
        wait_until(app, lambda: True, 1)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.05)
        window.redraw(force=True)
        window.plots.fit_to_data()
        app.processEvents()
        window.grab().save(str(args.out / f"explorer-runs-{width}x{height}.png"))
        window.view.focused = sweep.run_id
        window.tabs.setCurrentIndex(1)
        window.sweep_view.focus_T(0.6)
        window.t_explorer.slider.setValue(0.6)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.05)
        window.redraw(force=True)
        app.processEvents()
        window.grab().save(str(args.out / f"explorer-sweep-{width}x{height}.png"))
        print(f"saved the {width}x{height} screenshots in {args.out}")
    window.close()


if __name__ == "__main__":
    main()
