"""Runs and sweeps in TensorBoard (issue #13): event files read back with tensorboard's EventAccumulator, and
the app's smoothing against TensorBoard's."""

import sys

import numpy as np
import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from core.cli import main  # noqa: E402
from core.errors import ConfigError  # noqa: E402
from core.smoothing import debiased_ema  # noqa: E402

TINY = ["--m", "24", "--n-test", "40", "--N", "20", "--K", "10", "--n-gen", "50", "--test-kl-draws", "2",
        "--iters", "6", "--eval-every", "3"]


def read(folder):
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def tensorboard_smoothing(values, weight):
    """TensorBoard's scalar smoothing as its line chart computes it (resmoothDataset in
    tensorboard/components/vz_line_chart2/line-chart.ts): a debiased EMA over the finite points, a constant
    series and non-finite points left as they are."""
    values = [float(v) for v in values]
    constant = all(v == values[0] for v in values)
    last, count, out = 0.0, 0, []
    for v in values:
        if constant or not np.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        count += 1
        out.append(last / (1 - weight**count) if weight != 1 else last)
    return np.array(out)


def test_a_training_run_is_written_live_with_every_term_the_test_kl_its_se_the_loss_and_samples(tmp_path):
    board = tmp_path / "tb"
    assert main(["train", "dm", *TINY, "--out", str(tmp_path / "run"), "--tensorboard", str(board)]) == 0
    acc = read(board)
    scalars = set(acc.Tags()["scalars"])
    for variant in ("exact", "reference-2d", "reference-images"):
        for term in ("total", "score_matching", "encoder_info", "encoder_info_se", "encoder_prior", "generator", "L"):
            assert f"bound/{variant}/{term}" in scalars
    assert {"train/loss", "test/test_kl", "test/test_kl_se", "test/dsm_gap", "bound/chosen"} <= scalars
    assert [e.step for e in acc.Scalars("test/test_kl")] == [3, 6]
    assert len(acc.Scalars("train/loss")) == 6 and acc.Tags()["images"] == ["samples"]
    image = acc.Images("samples")[-1]
    assert image.step == 6 and image.width > 50 and image.height > 50


def test_export_writes_a_run_folder_and_a_sweep_with_its_summary_against_t(tmp_path, capsys):
    assert main(["train", "dm", *TINY, "--out", str(tmp_path / "run")]) == 0
    assert main(["export", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb-run")]) == 0
    acc = read(tmp_path / "tb-run")
    assert "bound/exact/generator" in acc.Tags()["scalars"] and acc.Tags()["images"] == ["samples"]
    history = [float(e.value) for e in acc.Scalars("train/loss")]
    assert len(history) == 6
    assert main(["sweep", "dm", *TINY, "--T", "0.4,0.8", "--seeds", "0", "--jobs", "1", "--out", str(tmp_path / "sw"),
                 "--tensorboard", str(tmp_path / "tb-sweep")]) == 0
    summary = read(tmp_path / "tb-sweep")
    assert [e.step for e in summary.Scalars("sweep/bound_mean")] == [400, 800]
    assert "sweep/test_kl_mean" in summary.Tags()["scalars"]
    assert "test/test_kl" in read(tmp_path / "tb-sweep" / "T0.4_seed0").Tags()["scalars"]


@pytest.mark.parametrize("weight", [0.0, 0.6, 0.9, 0.99])
def test_the_apps_smoothing_equals_tensorboards_on_the_loss_it_reads_back(tmp_path, weight):
    assert main(["train", "dm", *TINY, "--iters", "40", "--eval-every", "0", "--out", str(tmp_path / "run"),
                 "--tensorboard", str(tmp_path / "tb")]) == 0
    loss = np.array([e.value for e in read(tmp_path / "tb").Scalars("train/loss")])
    assert len(loss) == 40
    np.testing.assert_allclose(debiased_ema(loss, weight), tensorboard_smoothing(loss, weight), rtol=1e-10)


def test_smoothing_agrees_on_gaps_and_constant_series():
    values = np.array([1.0, 2.0, np.nan, 4.0, np.inf, 3.0, 2.5])
    np.testing.assert_allclose(debiased_ema(values, 0.8), tensorboard_smoothing(values, 0.8), rtol=1e-12)
    assert np.array_equal(debiased_ema(np.full(5, 0.3), 0.9), tensorboard_smoothing(np.full(5, 0.3), 0.9))


def test_without_tensorboard_installed_the_message_says_how_to_install(monkeypatch, tmp_path):
    from core.export.tensorboard import summary_writer

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match="pip install"):
        summary_writer(tmp_path / "tb")


def test_an_unusable_tensorboard_folder_is_refused_before_any_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for command in (["train", "dm"], ["sweep", "dm", "--T", "0.4,0.8", "--seeds", "0", "--jobs", "1"]):
        assert main([*command, *TINY, "--out", str(tmp_path / command[0]), "--tensorboard", str(blocker / "tb")]) == 2
        assert "--tensorboard" in capsys.readouterr().err
        assert not (tmp_path / command[0] / "history.jsonl").exists() and not (tmp_path / command[0] / "summary.json").exists()
