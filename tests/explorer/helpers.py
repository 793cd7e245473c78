"""Shared steps of the app tests."""

RUN_TIMEOUT_MS = 120_000


def run_and_wait(qtbot, window, status=("finished",)):
    """Press Run and wait until the new run reaches one of ``status`` and its worker is gone."""
    window.form.run_button.click()
    run = window.selected_run
    assert run is not None
    qtbot.waitUntil(lambda: run.status in status and not window.manager.busy, timeout=RUN_TIMEOUT_MS)
    qtbot.wait(100)  # one redraw tick
    window.redraw(force=True)
    return run
