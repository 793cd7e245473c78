"""core.api.diffusion_bound: the bound for any score function (issue #13), against our own evaluation records
and the score conversions."""

import math

import numpy as np
import pytest
import torch

from core.api import diffusion_bound
from core.diffusion.score_mlp import EnsembleMLP
from core.errors import ConfigError
from core.sde import VPSDE
from core.training.config import DiffusionConfig, load_run_data_with_shape
from core.training.diffusion import train_diffusion

CFG = DiffusionConfig(m=40, n_test=60, iters=30, eval_every=0, n_steps=25, n_gen=60, test_kl_draws=3, mc_samples=30,
                      hidden=32, dsm_eval_draws=3, trajectory_frames=0, T=0.8, seed=3)


def trained_mlp(cfg=CFG):
    final = [r for r in train_diffusion(cfg) if r["kind"] == "eval"][-1]
    model = EnsembleMLP(1, 2, cfg.hidden)
    model.load_member_state_dict(0, {k: torch.as_tensor(v) for k, v in final["model_state"].items()})
    x_train, x_test, _ = load_run_data_with_shape(cfg)
    return model, final, torch.from_numpy(x_train), torch.from_numpy(x_test)


def as_score_fn(model, sde=VPSDE()):
    return lambda y, t: model.score(y[None], t[None], sde)[0]


def run_api(fn, x_train, x_test, cfg=CFG, **kw):
    return diffusion_bound(fn, x_train, cfg.T, x_test=x_test, seed=cfg.seed, N=cfg.n_steps, K=cfg.mc_samples,
                           n_gen=cfg.n_gen, test_kl_draws=cfg.test_kl_draws, dsm_draws=cfg.dsm_eval_draws, **kw)


def test_our_trained_mlp_through_the_api_gives_our_evaluation_record():
    model, record, x_train, x_test = trained_mlp()
    result = run_api(as_score_fn(model), x_train, x_test)
    # Same random streams and the same evaluation: equal up to float rounding, far inside the Monte Carlo error.
    assert result["bound"] == pytest.approx(record["bound"], rel=1e-4)
    for term in ("score_matching", "encoder_info", "encoder_prior", "generator", "L"):
        assert result["terms"][term] == pytest.approx(record[term], rel=1e-4, abs=1e-6), term
    assert result["test_kl"] == pytest.approx(record["test_kl"], rel=1e-4)
    assert result["test_kl_se"] == pytest.approx(record["test_kl_se"], rel=1e-3)
    assert result["dsm_gap"] == pytest.approx(record["dsm_gap"], rel=1e-4, abs=1e-6)
    assert set(result["bounds"]) == set(record["bounds"]) and result["samples"].shape == (CFG.n_gen, 2)
    # reference-2d reads the last epoch's loss, which a user's model has not: the full pass, or the user's value.
    assert result["bounds"]["reference-2d"]["score_matching"] == pytest.approx(result["dsm_train"])
    given = run_api(as_score_fn(model), x_train, None, score_matching=0.5)
    assert given["terms"]["score_matching"] == 0.5 and "test_kl" not in given
    b = given["bounds"]["exact"]
    assert b["total"] == pytest.approx(0.5 + b["encoder_info"] + math.sqrt(2) * 5 * (b["encoder_prior"] + b["generator"]))


@pytest.mark.parametrize("output", ["eps", "drift"])
def test_noise_and_drift_outputs_are_converted_to_the_score(output):
    model, _, x_train, x_test = trained_mlp()
    sde = VPSDE()
    score = as_score_fn(model)
    if output == "eps":
        fn = lambda y, t: -score(y, t) * torch.sqrt(sde.var(t)).unsqueeze(-1)  # noqa: E731
    else:
        fn = lambda y, t: score(y, t) * torch.sqrt(sde.beta(t)).unsqueeze(-1)  # noqa: E731
    plain, converted = run_api(score, x_train, x_test), run_api(fn, x_train, x_test, output=output)
    for key in ("bound", "test_kl", "dsm_gap"):
        assert converted[key] == pytest.approx(plain[key], rel=1e-4, abs=1e-6), key
    for name, terms in converted["bounds"].items():
        if output == "eps" and name == "reference-2d":  # its probe starts at t = 0: no score from eps there
            assert math.isnan(terms["total"]) and "t = 0" in terms["note"]
        else:
            assert terms["total"] == pytest.approx(plain["bounds"][name]["total"], rel=1e-4), name
    if output == "eps":
        with pytest.raises(ConfigError, match="t = 0"):
            run_api(fn, x_train, x_test, output="eps", variant="reference-2d")


def test_an_exact_gaussian_score_gives_the_closed_form_l_and_a_small_test_kl():
    """Data N(0, s2 I): the exact score -y / v(t), v = alpha^2 s2 + sigma^2. Generated points follow the data."""
    s2, sde = 0.25, VPSDE()
    gen = torch.Generator().manual_seed(0)
    x_train = torch.randn(400, 2, generator=gen) * math.sqrt(s2)
    x_test = torch.randn(400, 2, generator=gen) * math.sqrt(s2)
    fn = lambda y, t: -y / (sde.alpha(t) ** 2 * s2 + sde.var(t)).unsqueeze(-1)  # noqa: E731
    result = diffusion_bound(fn, x_train, 1.0, x_test=x_test, N=200, K=50, n_gen=400, test_kl_draws=2)
    assert result["samples"].var(axis=0) == pytest.approx([s2, s2], rel=0.25)
    # At the first step (t = T = 1, y ~ N(0, I) approximately) E|s| = E|y| / v(1) = sqrt(pi/2) / v(1) in 2-D.
    v1 = float(sde.alpha(1.0)) ** 2 * s2 + float(sde.var(1.0))
    assert result["terms"]["L"] >= math.sqrt(math.pi / 2) / v1 * 0.9
    # The KDE test KL is biased even for perfect samples: compare with true samples, measured the same way.
    from core.metrics.kde import kde_kl

    exact = np.mean([kde_kl(x_test, torch.randn(400, 2, generator=gen) * math.sqrt(s2)) for _ in range(4)])
    assert abs(result["test_kl"] - exact) < 0.1


def test_bad_score_functions_and_data_are_named():
    x = torch.randn(20, 2)
    with pytest.raises(ConfigError, match="shaped like y"):
        diffusion_bound(lambda y, t: y[:, :1], x, 0.5, N=5, K=5, n_gen=10, test_kl_draws=1)
    with pytest.raises(ConfigError, match="non-finite"):
        diffusion_bound(lambda y, t: y * float("nan"), x, 0.5, N=5, K=5, n_gen=10, test_kl_draws=1)
    with pytest.raises(ConfigError, match="output"):
        diffusion_bound(lambda y, t: y, x, 0.5, output="logits")
    with pytest.raises(ConfigError, match="NaN"):
        diffusion_bound(lambda y, t: y, torch.full((5, 2), float("nan")), 0.5)
    with pytest.raises(ConfigError, match="failed on y"):
        diffusion_bound(lambda y, t: y @ torch.zeros(3, 3), x, 0.5, N=5, K=5, n_gen=10, test_kl_draws=1)

    class Double(torch.nn.Module):  # a float64 module gets float64 inputs
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 2).double()

        def forward(self, y, t):
            return self.layer(y) * t[:, None]

    assert math.isfinite(diffusion_bound(Double(), x, 0.5, N=5, K=5, n_gen=10, test_kl_draws=1)["bound"])
    with pytest.raises(ConfigError, match="dimensions"):
        diffusion_bound(lambda y, t: y, x, 0.5, x_test=np.zeros((5, 3), dtype=np.float32))


NET_FILE = '''
import torch
from torch import nn


class Net(nn.Module):
    """A hand-written score network: [y, t] -> 16 -> d, tanh."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, y, t):
        return self.out(torch.tanh(self.hidden(torch.cat([y, t[:, None]], dim=1))))


def build():
    return Net()
'''


def test_infogen_bound_runs_a_users_module_with_safetensors_weights(tmp_path, capsys):
    import json

    from safetensors.torch import save_file

    from core.cli import main
    from core.user_model import load_user_network

    (tmp_path / "my_net.py").write_text(NET_FILE)
    torch.manual_seed(0)
    weights = {k: v.contiguous() for k, v in load_user_network(f"{tmp_path / 'my_net.py'}:build").state_dict().items()}
    save_file(weights, str(tmp_path / "w.safetensors"))
    args = ["bound", "--model-module", f"{tmp_path / 'my_net.py'}:build", "--weights", str(tmp_path / "w.safetensors"),
            "--data", "swissroll", "--m", "40", "--n-test", "60", "--T", "0.6", "--N", "20", "--K", "20",
            "--n-gen", "50", "--test-kl-draws", "2", "--output", "eps", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"score_matching", "encoder_info", "encoder_prior", "generator", "L"} <= set(out["terms"])
    assert math.isfinite(out["bound"]) and math.isfinite(out["test_kl"]) and out["test_kl_draws"] == 2
    # The same network from Python gives the same numbers.
    net = load_user_network(f"{tmp_path / 'my_net.py'}:build", tmp_path / "w.safetensors")
    x_train, x_test, _ = load_run_data_with_shape(DiffusionConfig(m=40, n_test=60, seed=0))
    direct = diffusion_bound(net, torch.from_numpy(x_train), 0.6, x_test=torch.from_numpy(x_test), output="eps",
                             N=20, K=20, n_gen=50, test_kl_draws=2)
    assert out["bound"] == pytest.approx(direct["bound"]) and out["test_kl"] == pytest.approx(direct["test_kl"])


def test_infogen_bound_names_what_is_wrong(tmp_path, capsys):
    from core.cli import main

    (tmp_path / "my_net.py").write_text(NET_FILE)
    (tmp_path / "w.pt").write_bytes(b"not a pickle you should load")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 12)
    base = ["bound", "--T", "0.6", "--m", "20", "--n-test", "20", "--N", "5", "--K", "5", "--n-gen", "10"]
    cases = [
        (["--model-module", "my_net.py"], "FILE.py:FUNCTION"),
        (["--model-module", f"{tmp_path / 'my_net.py'}:make"], "has no function 'make'"),
        (["--model-module", f"{tmp_path / 'my_net.py'}:build", "--weights", str(tmp_path / "w.pt")], "safetensors files only"),
        (["--model-module", f"{tmp_path / 'my_net.py'}:build", "--weights", str(tmp_path / "bad.safetensors")],
         "not a readable safetensors file"),
    ]
    for extra, message in cases:
        assert main(base + extra) == 2
        assert message in capsys.readouterr().err


def test_the_library_imports_without_qt_and_core_itself_in_well_under_a_second():
    """Issue #13: `pip install infogen-explorer` without the app extra gives the core, the API and the CLI."""
    import subprocess
    import sys

    code = ("import sys, time; s = time.perf_counter(); import core; took = time.perf_counter() - s; "
            "import core.api, core.cli, core.export.tensorboard; "
            "bad = [m for m in ('PySide6', 'pyqtgraph', 'superqt', 'qasync', 'explorer') if m in sys.modules]; "
            "print(took, bad); sys.exit(1 if bad or took > 1.0 else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_bound_against_t_is_a_sweep_shaped_record_of_one_network():
    from core.api import bound_against_T

    model, _, x_train, x_test = trained_mlp()
    options = dict(N=CFG.n_steps, K=CFG.mc_samples, n_gen=CFG.n_gen, test_kl_draws=CFG.test_kl_draws,
                   dsm_draws=CFG.dsm_eval_draws)
    events = list(bound_against_T(as_score_fn(model), x_train, [0.4, 0.8], x_test=x_test, seed=3, **options))
    assert [e["kind"] for e in events] == ["eval", "eval", "summary"]
    assert [e["run"] for e in events[:2]] == ["T0.4_seed3", "T0.8_seed3"]
    summary = events[-1]["summary"]
    single = diffusion_bound(as_score_fn(model), x_train, 0.8, x_test=x_test, seed=3, **options)
    assert summary["T"] == [0.4, 0.8] and summary["bound_mean"][1] == pytest.approx(single["bound"])
    assert summary["test_kl_mean"][1] == pytest.approx(single["test_kl"]) and summary["bound_std"] == [0.0, 0.0]
    assert summary["T_star_bound"] in (0.4, 0.8) and set(summary["variants"]) == set(single["bounds"])
