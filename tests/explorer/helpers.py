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


def fake_run(window, config=None, steps: int = 10, evals: int = 2, status: str = "finished", **eval_values):
    """Add a finished run with made-up records (tests/fake_records.py) to the window's collection: no training."""
    from core.training.config import DiffusionConfig
    from core.vae.config import VAEConfig
    from explorer.model import TrainingRun
    from fake_records import fake_records

    run_id, colour = window.runs.reserve()
    config = config or DiffusionConfig(T=round(0.2 * run_id, 3))
    run = TrainingRun(run_id, f"#{run_id} fake", config, window.manager.runs_dir / f"fake{run_id}", colour)
    for record in fake_records(isinstance(config, VAEConfig), steps, evals, **eval_values):
        run.add_record(record)
    run.status = status
    window.runs.add(run)
    return run
