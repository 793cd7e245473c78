import json
import math

import numpy as np
import pytest

from core.cli import main
from core.errors import ConfigError
from core.select_t import coarse_grid, select_t, surrogate_bound, training_free_terms
from core.sweep import run_sweep


def test_coarse_grid_is_cell_centred():
    assert coarse_grid(0.1, 2.0, 3) == [0.42, 1.05, 1.68]


def test_training_free_terms_behave_as_the_encoder_should(tiny_config):
    Ts = np.array([0.2, 0.6, 1.2, 2.0])
    free = training_free_terms(tiny_config, Ts)
    assert np.all(np.diff(free["encoder_prior"]) < 0) and free["encoder_prior"][-1] < 1e-3
    assert free["encoder_info"][0] < free["encoder_info"][-1] and abs(free["encoder_info"][-1]) < 0.05
    assert np.all(np.diff(free["generator_per_L"]) > 0)


def test_surrogate_is_exact_where_a_model_was_trained(tiny_config):
    Ts = np.array([0.3, 0.6, 0.9])
    free = {"encoder_info": np.array([-1.0, -0.2, 0.0]), "encoder_prior": np.array([0.5, 0.2, 0.01]),
            "generator_per_L": np.array([0.01, 0.02, 0.03])}
    trained = {0.3: {"score_matching": 0.6, "L": 10.0}, 0.9: {"score_matching": 0.3, "L": 8.0}}
    b = surrogate_bound(tiny_config, Ts, free, trained)
    scale = math.sqrt(2) * tiny_config.R
    assert b[0] == pytest.approx(0.6 - 1.0 + scale * (0.5 + 10.0 * 0.01))
    assert b[1] == pytest.approx(0.45 - 0.2 + scale * (0.2 + 9.0 * 0.02))  # interpolated sm and L


def test_select_t_uses_its_budget_and_picks_a_trained_T(tiny_config, tmp_path):
    cfg = tiny_config.with_(eval_every=0)
    events = list(select_t(cfg, (0.2, 1.6), tmp_path / "sel", n_coarse=3, max_trainings=4, jobs=1))
    evaluated = [e for e in events if e["kind"] == "evaluated"]
    selection = events[-1]["selection"]
    assert 3 <= selection["trainings"] == len(evaluated) <= 4
    assert selection["T_star"] in [T for T, _ in selection["evaluated"]]
    assert selection["bound_at_T_star"] == min(b for _, b in selection["evaluated"])
    assert json.loads((tmp_path / "sel" / "selection.json").read_text())["T_star"] == selection["T_star"]
    assert (tmp_path / "sel").joinpath(selection["final_run_dir"].split("sel/")[-1], "weights.safetensors").exists()


def test_select_t_cli_json(tmp_path, capsys):
    args = ["select-t", "dm", "--m", "24", "--n-test", "40", "--iters", "4", "--N", "20", "--K", "10",
            "--range", "0.2:1.4", "--coarse", "2", "--max-trainings", "3", "--jobs", "1", "--out", str(tmp_path / "s"), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("T_star", "bound_at_T_star", "trainings", "evaluated"):
        assert key in out
    assert all(len(pair) == 2 for pair in out["evaluated"])


def test_bad_select_t_settings(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="0 < low < high"):
        next(select_t(tiny_config, (1.0, 0.5), tmp_path))
    with pytest.raises(ConfigError, match="max_trainings"):
        next(select_t(tiny_config, (0.1, 1.0), tmp_path, n_coarse=3, max_trainings=2))


def test_unknown_engine(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="unknown engine"):
        next(run_sweep(tiny_config, [0.5], [0], tmp_path, engine="spark"))


def test_ray_engine_matches_the_local_engine_exactly(tiny_config, tmp_path):
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.skip("Ray is not installed here (pip install ray); the Ray engine cannot be tested")
    cfg = tiny_config.with_(eval_every=0)
    local = list(run_sweep(cfg, [0.3, 1.0], [0, 1], tmp_path / "local", jobs=1))[-1]["summary"]
    on_ray = list(run_sweep(cfg, [0.3, 1.0], [0, 1], tmp_path / "ray", jobs=2, engine="ray"))[-1]["summary"]
    for key in ("bound_mean", "bound_std", "test_kl_mean", "test_kl_std", "terms_mean", "L_mean",
                "T_star_bound", "T_star_test_kl"):
        assert on_ray[key] == local[key], key
    for name in ("T0.3_seed0", "T1_seed1"):
        a = (tmp_path / "local" / name / "history.jsonl").read_text().splitlines()
        b = (tmp_path / "ray" / name / "history.jsonl").read_text().splitlines()
        strip = lambda lines: [{k: v for k, v in json.loads(x).items() if k != "wall"} for x in lines]  # noqa: E731
        assert strip(a) == strip(b)
        from core.io.run_dir import read_run

        wa, wb = read_run(tmp_path / "local" / name).weights, read_run(tmp_path / "ray" / name).weights
        assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_ray_engine_without_ray_says_how_to_install(tiny_config, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match="pip install"):
        next(run_sweep(tiny_config, [0.5], [0], tmp_path / "s", engine="ray"))
    assert not (tmp_path / "s").exists()
    code = main(["sweep", "dm", "--m", "24", "--iters", "2", "--T", "0.5", "--seeds", "0", "--engine", "ray",
                 "--out", str(tmp_path / "c")])
    assert code == 2 and "pip install" in capsys.readouterr().err
