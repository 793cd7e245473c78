import json
import math

import pytest

from core.cli import main
from core.errors import ConfigError
from core.grids import parse_float_grid, parse_seeds
from core.io.run_dir import read_run
from core.sweep import group_runs, plan_sweep, run_sweep

TINY = ["--m", "24", "--n-test", "40", "--iters", "6", "--N", "20", "--K", "10"]


def test_grids():
    assert parse_float_grid("0.2:1.8:0.2") == [0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8]
    assert parse_float_grid("0.5,1") == [0.5, 1.0]
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5") == [3, 4, 5]
    for bad in ("1:0:0.1", "0:1:0", "a,b", "0.2,0.2"):
        with pytest.raises(ConfigError):
            parse_float_grid(bad)
    with pytest.raises(ConfigError):
        parse_seeds("1,1")


def test_grouping_covers_every_run_once(tiny_config, tmp_path):
    runs = plan_sweep(tiny_config, [0.2, 0.4, 0.6], [0, 1, 2], tmp_path)
    for jobs in (1, 2, 4, 9, 20):
        groups = group_runs(runs, jobs)
        assert [r.name for g in groups for r in g] == [r.name for r in runs]
        assert max(len(g) for g in groups) - min(len(g) for g in groups) <= 1


def test_sweep_summary_in_process_equals_worker_processes(tiny_config, tmp_path):
    cfg = tiny_config.with_(eval_every=0)
    one = [e for e in run_sweep(cfg, [0.3, 1.0], [0, 1], tmp_path / "a", jobs=1)][-1]["summary"]
    two = [e for e in run_sweep(cfg, [0.3, 1.0], [0, 1], tmp_path / "b", jobs=2)][-1]["summary"]
    assert one["bound_mean"] == two["bound_mean"] and one["test_kl_mean"] == two["test_kl_mean"]
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["bound_mean"] == two["bound_mean"]
    run = read_run(tmp_path / "b" / "T1_seed1")
    assert run.config["T"] == 1.0 and run.config["seed"] == 1 and run.records("eval")


def test_cli_train_writes_a_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "dm", *TINY, "--T", "0.6", "--seed", "0", "--eval-every", "3", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 6 and result["variant"] == "exact" and math.isfinite(result["bound"])
    assert (out / "config.json").exists() and (out / "weights.safetensors").exists()
    lines = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert {line["kind"] for line in lines} == {"start", "step", "eval", "end"}
    assert sum(line["kind"] == "eval" for line in lines) == 2


def test_cli_sweep_json_has_the_documented_keys(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "dm", *TINY, "--T", "0.4:0.8:0.4", "--seeds", "0,1", "--jobs", "1",
                 "--variant", "reference-2d", "--R", "5", "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("T", "bound_mean", "bound_std", "test_kl_mean", "test_kl_std", "terms_mean", "L_mean",
                "T_star_bound", "T_star_test_kl", "variant", "R", "m", "iters", "seeds"):
        assert key in summary, key
    assert summary["T"] == [0.4, 0.8] and summary["variant"] == "reference-2d" and summary["seeds"] == [0, 1]
    assert set(summary["terms_mean"]) == {"score_matching", "encoder_info", "encoder_prior", "generator"}
    assert all(len(v) == 2 for v in summary["terms_mean"].values())
    assert summary["T_star_bound"] in (0.4, 0.8)
    assert json.loads((out / "summary.json").read_text()) == summary


@pytest.mark.parametrize(
    "args,message",
    [(["--T", "0"], "diffusion time T"), (["--T", "-0.5"], "diffusion time T"), (["--N", "0"], "steps N"),
     (["--m", "1"], "training set size"), (["--device", "cuda"], "CUDA is not available")],
)
def test_cli_bad_input_exits_2_with_the_reason(tmp_path, capsys, args, message):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["train", "dm", *TINY, *args, "--out", str(tmp_path / "x")])
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_sweep_bad_grid(tmp_path, capsys):
    assert main(["sweep", "dm", *TINY, "--T", "0:1", "--out", str(tmp_path / "s")]) == 2
    assert "T grid" in capsys.readouterr().err


def test_a_sweep_is_a_directory_of_run_checkpoints_plus_its_summary(tiny_config, tmp_path):
    from core.checkpoint import load_checkpoint

    list(run_sweep(tiny_config.with_(eval_every=0), [0.5, 1.0], [3], tmp_path / "s", jobs=1))
    for name in ("T0.5_seed3", "T1_seed3"):
        ckpt = load_checkpoint(tmp_path / "s" / name / "checkpoint.infogen")
        assert ckpt.step == tiny_config.iters and ckpt.config["seed"] == 3
    assert (tmp_path / "s" / "summary.json").exists()
