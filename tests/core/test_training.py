import json
import math

import numpy as np
import pytest

from core.errors import ConfigError
from core.io.recorder import RunRecorder
from core.io.run_dir import read_run
from core.training.config import DiffusionConfig
from core.training.diffusion import train_diffusion, train_diffusion_ensemble


def collect(config, **kw):
    return list(train_diffusion(config, **kw))


def test_records_have_the_documented_shape(tiny_config):
    records = collect(tiny_config)
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "end"
    steps = [r for r in records if r["kind"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, 13))
    assert all(isinstance(r["loss"], float) and isinstance(r["wall"], float) for r in steps)
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [6, 12]
    last = evals[-1]
    for key in ("bound", "score_matching", "encoder_info", "encoder_info_se", "encoder_prior", "generator",
                "L", "sum_beta", "N", "m", "R", "K", "test_kl", "dsm_train", "dsm_test", "dsm_gap",
                "nn_dist_mean", "nn_dist_min", "train_nn_median"):
        assert isinstance(last[key], (int, float)) and math.isfinite(last[key]), key
    assert last["samples"].shape == (64, 2)
    assert set(last["bounds"]) == {"exact", "reference-2d", "reference-images"}
    # Every term that has a closed form, recomputed here from the training points and the record's L.
    from core.training.config import load_run_data

    x = load_run_data(tiny_config)[0].astype(np.float64)
    T, N, m, d = tiny_config.T, tiny_config.n_steps, tiny_config.m, 2
    integral = 0.1 * T + 0.5 * 19.9 * T * T
    a2, v = math.exp(-integral), 1 - math.exp(-integral)
    kl = 0.5 * (a2 * (x**2).sum(1) + d * v - d - d * math.log(v))
    sum_beta = N * 0.1 + 19.9 * T * (N - 1) / 2
    for name in ("exact", "reference-2d"):
        terms = last["bounds"][name]
        assert terms["encoder_prior"] == pytest.approx(float(np.sqrt(kl).mean()), rel=1e-6)
        assert terms["sum_beta"] == pytest.approx(sum_beta, rel=1e-9)
        gen = math.sqrt(T * terms["L"] ** 2 * sum_beta / (2 * m * N))
        assert terms["generator"] == pytest.approx(gen, rel=1e-9)
        total = terms["score_matching"] + terms["encoder_info"] + math.sqrt(2) * 5 * (terms["encoder_prior"] + gen)
        assert terms["total"] == pytest.approx(total, rel=1e-9)
        assert -math.log(m) - 4 * terms["encoder_info_se"] <= terms["encoder_info"] <= 4 * terms["encoder_info_se"]
    assert last["bound"] == last["bounds"]["exact"]["total"] and last["score_matching"] == last["dsm_train"]
    assert last["bounds"]["reference-2d"]["score_matching"] == steps[-1]["loss"]  # the last epoch's mean loss


def test_same_seed_same_numbers(tiny_config):
    a = [r for r in collect(tiny_config) if r["kind"] in ("step", "eval")]
    b = [r for r in collect(tiny_config) if r["kind"] in ("step", "eval")]
    assert [r.get("loss") for r in a] == [r.get("loss") for r in b]
    assert [r.get("bound") for r in a] == [r.get("bound") for r in b]
    np.testing.assert_array_equal(a[-1]["samples"], b[-1]["samples"])
    c = [r for r in collect(tiny_config.with_(seed=1)) if r["kind"] == "step"]
    assert [r["loss"] for r in c] != [r.get("loss") for r in a if r["kind"] == "step"]


def test_a_run_gives_the_same_numbers_alone_or_in_an_ensemble(tiny_config):
    configs = [tiny_config.with_(T=0.4, seed=2), tiny_config, tiny_config.with_(T=1.2, seed=5)]
    together = [r for r in train_diffusion_ensemble(configs) if r["member"] == 1 and r["kind"] in ("step", "eval")]
    alone = [r for r in collect(tiny_config) if r["kind"] in ("step", "eval")]
    assert [r.get("loss") for r in together] == [r.get("loss") for r in alone]
    assert together[-1]["bound"] == alone[-1]["bound"]
    assert together[-1]["test_kl"] == alone[-1]["test_kl"]


def test_minibatch_training_takes_several_steps_per_iteration(tiny_config):
    records = collect(tiny_config.with_(batch=10, iters=3, eval_every=0))
    assert [r["step"] for r in records if r["kind"] == "step"] == [1, 2, 3]


def test_stop_ends_the_run_between_two_steps(tiny_config):
    seen = []
    records = []
    for record in train_diffusion(tiny_config.with_(iters=1000, eval_every=0), should_stop=lambda: len(seen) >= 3):
        records.append(record)
        if record["kind"] == "step":
            seen.append(record)
    assert records[-1]["kind"] == "cancelled" and records[-1]["step"] == 3
    assert len(seen) == 3


def diverge_after(monkeypatch, calls: int) -> None:
    """Make the DSM loss NaN from the given minibatch on: a diverging run (lr is capped at 1, so no setting
    diverges this tiny run for sure)."""
    import core.training.diffusion as training

    real, seen = training.dsm_terms, []

    def diverging(*args):
        losses, score_sq = real(*args)
        seen.append(1)
        return (losses * float("nan"), score_sq) if len(seen) > calls else (losses, score_sq)

    monkeypatch.setattr(training, "dsm_terms", diverging)


def test_a_nan_loss_ends_the_run_with_an_error_naming_the_step(tmp_path, tiny_config, monkeypatch):
    diverge_after(monkeypatch, 3)
    cfg = tiny_config.with_(iters=200, eval_every=1)
    with RunRecorder(tmp_path / "run", cfg.as_dict()) as writer:
        records = []
        for record in train_diffusion(cfg):
            writer.write(record)
            records.append(record)
    errors = [r for r in records if r["kind"] == "error"]
    assert len(errors) == 1 and records[-1] is errors[0]
    step = errors[0]["step"]
    assert f"at step {step}" in errors[0]["message"]
    saved = read_run(tmp_path / "run")
    assert saved.history[-1]["kind"] == "error"
    assert len(saved.records("step")) == step - 1
    evals = saved.records("eval")
    assert evals, "evaluations before the failure are kept"
    assert saved.weights is not None and all(np.isfinite(v).all() for v in saved.weights.values())
    assert f"step_{evals[-1]['step']}" in saved.samples


@pytest.mark.parametrize(
    "change,message",
    [({"T": 0.0}, "diffusion time T"), ({"T": -1.0}, "diffusion time T"), ({"n_steps": 0}, "steps N"),
     ({"m": 1}, "m \\(training set size\\)"), ({"variant": "fancy"}, "unknown bound variant"),
     ({"lr": float("nan")}, "lr"), ({"data": "nope"}, "unknown dataset")],
)
def test_bad_settings_are_refused_before_training(tiny_config, change, message):
    with pytest.raises(ConfigError, match=message):
        next(train_diffusion(tiny_config.with_(**change)))


def test_config_round_trips_through_json(tiny_config):
    again = DiffusionConfig.from_dict(json.loads(json.dumps(tiny_config.as_dict())))
    assert again == tiny_config
    with pytest.raises(ConfigError, match="unknown diffusion settings: colour"):
        DiffusionConfig.from_dict({**tiny_config.as_dict(), "colour": "red"})
