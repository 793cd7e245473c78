"""Made-up records of a finished run, as core would yield them (no training): shared by the model and app tests."""

from __future__ import annotations


def fake_records(vae: bool, steps: int = 10, evals: int = 2, **eval_values) -> list[dict]:
    """Losses 1/step with wall 0.1 s per step, then ``evals`` evaluations carrying every bound term (R = 2)."""
    records = [{"kind": "step", "step": s, "loss": 1.0 / s, "wall": 0.1 * s, "epoch": 1 + (s - 1) // 5}
               for s in range(1, steps + 1)]
    for k in range(1, evals + 1):
        step = k * steps // evals
        record = {"kind": "epoch" if vae else "eval", "step": step, "wall": 0.1 * step, "R": 2.0}
        if vae:
            record.update(epoch=k, bound_encoder_generator=50.0 + k, bound_encoder_only=40.0, test_curve=45.0,
                          gap=5.0, rec_gap=1.0, neg_elbo_gap=2.0, rec_test=40.0, kl_test=5.0)
        else:
            record.update(bound=3.0 + k, score_matching=1.0, encoder_info=0.5, encoder_prior=0.25, generator=0.1,
                          test_kl=0.4, test_kl_se=0.01, dsm_gap=0.02, dsm_test=0.6, **eval_values)
        records.append(record)
    return records
