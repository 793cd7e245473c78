"""The per-process choice between oneDNN member by member and torch's batched matmul (core/kernel_choice.py)."""

import types

import pytest
import torch

from core import kernel_choice, onednn
from core.errors import ConfigError
from core.diffusion import ensemble_mlp_kernels as kernels
from core.diffusion.ensemble_mlp_kernels import Workspace, inference_chunk, mlp_inference, mlp_train


@pytest.fixture
def fresh(monkeypatch):
    """No pass timed or adopted yet, no override."""
    monkeypatch.setattr(kernel_choice, "_chosen", {})
    monkeypatch.setattr(kernel_choice, "_adopted", {})
    monkeypatch.delenv(kernel_choice.ENV, raising=False)


class FakeClock:
    """kernel_choice's clock, advanced only by the workloads: timings that no load on the machine can disturb."""

    def __init__(self, monkeypatch):
        self.now = 0.0
        monkeypatch.setattr(kernel_choice, "time", types.SimpleNamespace(perf_counter=lambda: self.now))

    def workload(self, seconds, calls=None):
        def make(path):
            if calls is not None:
                calls.append(path)

            def run():
                self.now += seconds[path]

            return run

        return make


def test_the_faster_path_is_chosen_once_and_remembered(fresh, monkeypatch):
    calls = []
    workload = FakeClock(monkeypatch).workload({"torch": 0.004, "onednn": 0.001}, calls)
    assert kernel_choice.fastest("pass", workload) == "onednn"
    assert kernel_choice.fastest("pass", workload) == "onednn"
    assert calls == ["torch", "onednn"]  # timed once: the second call did not build the workloads
    assert kernel_choice.choices() == {"pass": "onednn"}


def test_the_default_stays_unless_the_other_is_clearly_faster(fresh, monkeypatch):
    clock = FakeClock(monkeypatch)
    assert kernel_choice.fastest("slower", clock.workload({"torch": 0.001, "onednn": 0.004})) == "torch"
    close = 0.004 * (1 - kernel_choice.MARGIN / 3)  # faster, but by less than the margin
    assert kernel_choice.fastest("close", clock.workload({"torch": 0.004, "onednn": close})) == "torch"
    clear = 0.004 * (1 - kernel_choice.MARGIN * 1.5)
    assert kernel_choice.fastest("clear", clock.workload({"torch": 0.004, "onednn": clear})) == "onednn"


def test_the_environment_and_forced_override_the_timing(fresh, monkeypatch):
    never = lambda path: pytest.fail("a forced path is not timed")  # noqa: E731
    monkeypatch.setenv(kernel_choice.ENV, "onednn")
    assert kernel_choice.fastest("a", never) == "onednn"
    with kernel_choice.forced("torch"):
        assert kernel_choice.fastest("a", never) == "torch"
    monkeypatch.setenv(kernel_choice.ENV, "mkl")
    with pytest.raises(ConfigError, match="INFOGEN_KERNELS='mkl' is not a kernel path"):
        kernel_choice.fastest("a", never)
    monkeypatch.setenv(kernel_choice.ENV, "Auto")
    assert kernel_choice.environment_path() is None
    with pytest.raises(ValueError, match="unknown kernel path"):
        with kernel_choice.forced("cuda"):
            pass


def count_onednn_calls(monkeypatch):
    calls = []
    real = onednn.linear

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(onednn, "linear", counted)
    return calls


@pytest.mark.parametrize("path", kernel_choice.PATHS)
def test_the_network_takes_the_chosen_path_and_both_give_the_same_numbers(path, monkeypatch):
    """Both paths run the paper's MLP (wide layers) to autograd's numbers up to float rounding, and only the
    chosen one calls oneDNN."""
    assert onednn.usable(torch.zeros(1), activation="swish")  # the pinned CPU build has it: both paths are tested
    gen = torch.Generator().manual_seed(1)
    widths = kernels.CHOICE_WIDTHS
    weights = [(torch.randn(3, a, b, generator=gen) / a**0.5).requires_grad_() for a, b in zip(widths, widths[1:])]
    biases = [(torch.randn(3, 1, b, generator=gen) * 0.1).requires_grad_() for b in widths[1:]]
    x, upstream = torch.randn(3, 50, 3, generator=gen), torch.randn(3, 50, 2, generator=gen)
    expected = x
    for i, (w, b) in enumerate(zip(weights, biases)):
        expected = torch.baddbmm(b, expected, w)
        expected = torch.nn.functional.silu(expected) if i < len(weights) - 1 else expected
    expected_grads = torch.autograd.grad((expected * upstream).sum(), [*weights, *biases])
    calls = count_onednn_calls(monkeypatch)
    with kernel_choice.forced(path):
        out = mlp_train(x, weights, biases)
        grads = torch.autograd.grad((out * upstream).sum(), [*weights, *biases])
        training_calls = len(calls)
        with torch.no_grad():
            fast = mlp_inference(x, weights, biases, Workspace()).clone()
        chunk = inference_chunk(3, x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, expected_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast, expected.detach(), rtol=1e-5, atol=1e-5)
    if path == "onednn":
        assert training_calls > 0 and len(calls) > training_calls
        assert chunk == kernels.ROWS_PER_MEMBER_CALL
    else:
        assert calls == []
        assert chunk == kernels.ROWS_PER_CALL // 3


def test_the_timed_workloads_run_on_both_paths(fresh, monkeypatch):
    """Timing runs each path's real workload (oneDNN is called while timing), then remembers the choice."""
    calls = count_onednn_calls(monkeypatch)
    first = kernels.onednn_training(torch.zeros(1))
    assert calls, "the oneDNN candidate was not run"
    chosen = kernel_choice.choices()["score MLP training"]
    assert first == (chosen == "onednn")
    kernels.onednn_inference(torch.zeros(1))
    assert set(kernel_choice.choices()) == {"score MLP training", "score MLP inference"}
    assert not kernels.onednn_training(torch.zeros(1, dtype=torch.float64))  # oneDNN takes float32 only


def test_paths_are_timed_on_one_thread_and_the_thread_count_is_restored(fresh):
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        kernel_choice.fastest("threads", lambda path: lambda: seen.append(torch.get_num_threads()))
        assert set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_adopted_choices_are_used_without_timing_and_win_over_the_environment(fresh, monkeypatch):
    monkeypatch.setenv(kernel_choice.ENV, "torch")
    kernel_choice.adopt({"score MLP training": "onednn", "score MLP inference": "torch"})
    assert kernels.onednn_training(torch.zeros(1)) and not kernels.onednn_inference(torch.zeros(1))
    assert kernels.mlp_kernel_paths() == {"score MLP training": "onednn", "score MLP inference": "torch"}
    with pytest.raises(ValueError, match="unknown kernel path 'mkl'"):
        kernel_choice.adopt({"score MLP training": "mkl"})


def test_a_sweeps_workers_take_the_parents_kernel_paths(fresh, tmp_path):
    """The parent decides once and each spawned worker adopts that decision instead of timing its own, so a
    sweep's numbers do not depend on --jobs. The parent here takes the opposite of what this CPU would choose,
    which a worker timing by itself would not: its records match the in-process sweep's bit for bit only if it
    adopted the parent's paths."""
    import json

    from core import sweep
    from core.training.config import DiffusionConfig

    natural = kernels.mlp_kernel_paths()
    kernel_choice.adopt({name: "torch" if path == "onednn" else "onednn" for name, path in natural.items()})
    cfg = DiffusionConfig(m=24, n_test=30, iters=3, eval_every=0, n_steps=4, n_gen=10, test_kl_draws=2,
                          mc_samples=10, hidden=32, dsm_eval_draws=1, trajectory_frames=0)
    here = list(sweep.run_sweep(cfg, [0.4, 0.8], [0], tmp_path / "here", jobs=1))
    workers = list(sweep.run_sweep(cfg, [0.4, 0.8], [0], tmp_path / "workers", jobs=2))
    assert here[-1]["summary"]["n_finished"] == workers[-1]["summary"]["n_finished"] == 2
    for name in ("T0.4_seed0", "T0.8_seed0"):
        strip = lambda folder: [  # noqa: E731
            {k: v for k, v in json.loads(line).items() if k != "wall"}
            for line in (tmp_path / folder / name / "history.jsonl").read_text().splitlines()
        ]
        assert strip("here") == strip("workers"), name
    assert sweep.sweep_kernel_paths(cfg.with_(data="digits")) == {}  # images: the U-Net has no such choice


def test_the_cli_names_a_bad_kernel_setting_before_any_work(monkeypatch, tmp_path, capsys):
    from core.cli import main

    monkeypatch.setenv(kernel_choice.ENV, "bogus")
    code = main(["train", "dm", "--m", "24", "--iters", "2", "--out", str(tmp_path / "run")])
    assert code == 2
    assert "INFOGEN_KERNELS='bogus' is not a kernel path" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_records_the_paths_and_a_resumed_run_takes_them(tmp_path, capsys):
    """Train with the opposite of this CPU's choice, then resume without forcing anything: the resumed run takes
    the paths saved in its checkpoint (an exact continuation), so its own checkpoint records them again."""
    from core.checkpoint import load_checkpoint
    from core.cli import main

    natural = kernels.mlp_kernel_paths()
    opposite = "torch" if natural[kernels.TRAINING_PASS] == "onednn" else "onednn"
    run = tmp_path / "run"
    tiny = ["--m", "24", "--n-test", "30", "--N", "4", "--n-gen", "10", "--test-kl-draws", "2", "--K", "10"]
    with kernel_choice.forced(opposite):
        assert main(["train", "dm", *tiny, "--iters", "2", "--eval-every", "2", "--out", str(run)]) == 0
    saved = load_checkpoint(run / "checkpoint.infogen").kernel_paths
    assert saved == {kernels.TRAINING_PASS: opposite, kernels.INFERENCE_PASS: opposite}
    assert main(["resume", str(run / "checkpoint.infogen"), "--iters", "4"]) == 0
    resumed = load_checkpoint(run / "checkpoint.infogen")
    assert resumed.step == 4 and resumed.kernel_paths == saved
    assert kernels.mlp_kernel_paths() == natural  # the resumed run's paths did not leak out of it


def test_the_first_forward_inside_inference_mode_times_and_runs(fresh):
    """The training path's timing trains a small network: it must not fail when the caller is in inference mode."""
    from core.diffusion.score_mlp import EnsembleMLP

    model = EnsembleMLP(2, 2, hidden=32).initialize([torch.Generator().manual_seed(s) for s in (1, 2)])
    y, t = torch.randn(2, 5, 2), torch.rand(2, 5)
    with torch.inference_mode():
        out = model(y, t)
    assert "score MLP training" in kernel_choice.choices()
    torch.testing.assert_close(out, model(y, t).detach())
