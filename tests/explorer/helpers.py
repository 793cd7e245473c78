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
    """Add a finished run with made-up records to the window's collection (no training): losses 1/step, two
    evaluations with every bound term, as core would record them."""
    from core.training.config import DiffusionConfig
    from core.vae.config import VAEConfig
    from explorer.model import TrainingRun

    run_id, colour = window.runs.reserve()
    config = config or DiffusionConfig(T=round(0.2 * run_id, 3))
    vae = isinstance(config, VAEConfig)
    run = TrainingRun(run_id, f"#{run_id} fake", config, window.manager.runs_dir / f"fake{run_id}", colour)
    for s in range(1, steps + 1):
        run.add_record({"kind": "step", "step": s, "loss": 1.0 / s, "wall": 0.1 * s, "epoch": 1 + (s - 1) // 5})
    for k in range(1, evals + 1):
        step = k * steps // evals
        record = {"kind": "epoch" if vae else "eval", "step": step, "wall": 0.1 * step, "R": 2.0}
        if vae:
            record.update(epoch=k, bound_encoder_generator=50.0 + k, bound_encoder_only=40.0, test_curve=45.0,
                          gap=5.0, rec_gap=1.0, neg_elbo_gap=2.0, rec_test=40.0, kl_test=5.0)
        else:
            record.update(bound=3.0 + k, score_matching=1.0, encoder_info=0.5, encoder_prior=0.25, generator=0.1,
                          test_kl=0.4, test_kl_se=0.01, dsm_gap=0.02, dsm_test=0.6, **eval_values)
        run.add_record(record)
    run.status = status
    window.runs.add(run)
    return run
