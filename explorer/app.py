"""``infogen-explorer``: open the window on the default run (Swiss roll diffusion, m = 200, T = 0.6).

Runs on qasync's event loop so that async slots (opening files) share Qt's loop; training never goes through
the asyncio executor, it runs on Qt's thread pool.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="infogen-explorer", description="InfoGen Explorer desktop app")
    p.add_argument("--run", action="store_true", help="start the default run at once")
    p.add_argument("--iters", type=int, help="iterations for the run form")
    p.add_argument("--eval-every", type=int, help="evaluation interval for the run form")
    p.add_argument("--screenshot", type=Path, help="save a PNG of the window (implies --run) ...")
    p.add_argument("--screenshot-after", type=float, default=20.0, help="... this many seconds after start")
    p.add_argument("--quit-after-screenshot", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import qasync
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:  # installed as a library (no `app` extra): say what to install
        print(f"infogen-explorer needs the app's packages ({exc.name} is missing): "
              "pip install 'infogen-explorer[app]'; the core and `infogen` work without them", file=sys.stderr)
        return 2

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("InfoGen Explorer")
    window = MainWindow()
    if args.iters:
        window.form.iters.setValue(args.iters)
    if args.eval_every is not None:
        window.form.eval_every.setValue(args.eval_every)
    window.show()
    if args.run or args.screenshot:
        QTimer.singleShot(300, window.form.run_button.click)
    if args.screenshot:
        def shoot() -> None:
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(args.screenshot))
            print(f"saved {args.screenshot}", file=sys.stderr)
            if args.quit_after_screenshot:
                window.ask_before_close = False  # scripted: stop the run without asking
                window.close()
        QTimer.singleShot(int(args.screenshot_after * 1000), shoot)

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    with loop:
        loop.run_until_complete(closed.wait())
    return 0


if __name__ == "__main__":
    sys.exit(main())
