import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from core.cli import main
from core.errors import ConfigError
from core.export.figures import export_figure
from core.io.recorder import RunRecorder
from core.sweep import run_sweep
from core.training.diffusion import train_diffusion


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from core.training.config import DiffusionConfig

    cfg = DiffusionConfig(m=32, n_test=64, T=0.6, iters=12, eval_every=6, n_steps=40, mc_samples=20, n_gen=64,
                          dsm_eval_draws=2, hidden=16)
    folder = tmp_path_factory.mktemp("export") / "run"
    with RunRecorder(folder, cfg.as_dict()) as writer:
        for record in train_diffusion(cfg):
            writer.write(record)
    return folder


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("figure", ["loss", "bound", "gap", "samples"])
def test_pdf_and_svg_are_valid_and_the_csv_matches_the_stored_data(run_dir, tmp_path, figure):
    from core.io.run_dir import read_run

    pdf = export_figure(run_dir, figure, "pdf", out=tmp_path / f"{figure}.pdf")
    data = pdf["figure"].read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]
    assert b"/FontFile2" in data  # TrueType embedded
    svg = export_figure(run_dir, figure, "svg", out=tmp_path / f"{figure}.svg", force=True)  # beside the pdf's CSV
    assert ET.parse(svg["figure"]).getroot().tag.endswith("svg")
    rows = read_csv(pdf["csv"])
    history = read_run(run_dir).history
    evals = [r for r in history if r["kind"] == "eval"]
    if figure == "loss":
        assert [float(r["loss"]) for r in rows] == [h["loss"] for h in history if h["kind"] == "step"]
    elif figure == "bound":
        assert [float(r["bound"]) for r in rows] == [e["bound"] for e in evals]
    elif figure == "gap":
        assert [float(r["test_kl"]) for r in rows] == [e["test_kl"] for e in evals]
    else:
        generated = np.array([[float(r["x"]), float(r["y"])] for r in rows if r["kind"] == "1.0"])
        np.testing.assert_allclose(generated, read_run(run_dir).samples["step_12"], rtol=1e-6)


def test_png_has_the_requested_size(run_dir, tmp_path):
    from PIL import Image

    out = export_figure(run_dir, "bound", "png", width_in=3.25, dpi=200, out=tmp_path / "b.png")
    with Image.open(out["figure"]) as im:
        assert im.size[0] == round(3.25 * 200)


def test_the_generated_script_reproduces_the_figure(run_dir, tmp_path):
    out = export_figure(run_dir, "gap", "png", dpi=100, out=tmp_path / "gap.png")
    again = tmp_path / "again.png"
    subprocess.run([sys.executable, str(out["script"]), str(again)], check=True, capture_output=True)
    assert again.read_bytes() == out["figure"].read_bytes()


def test_a_checkpoint_exports_like_its_run_directory(run_dir, tmp_path):
    a = export_figure(run_dir, "bound", "svg", out=tmp_path / "a.svg")
    b = export_figure(run_dir / "checkpoint.infogen", "bound", "svg", out=tmp_path / "b.svg")
    assert a["csv"].read_text() == b["csv"].read_text()


def test_bound_vs_T_from_a_sweep(tmp_path):
    from core.training.config import DiffusionConfig

    cfg = DiffusionConfig(m=24, n_test=40, iters=3, eval_every=0, n_steps=20, mc_samples=10, n_gen=50, hidden=16)
    list(run_sweep(cfg, [0.4, 1.0], [0, 1], tmp_path / "sweep", jobs=1))
    assert main(["export", str(tmp_path / "sweep"), "--figure", "bound-vs-T", "--format", "pdf",
                 "--out", str(tmp_path / "bvt.pdf")]) == 0
    rows = read_csv(tmp_path / "bvt.csv")
    assert [float(r["T"]) for r in rows] == [0.4, 1.0]
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert [float(r["bound_mean"]) for r in rows] == summary["bound_mean"]
    export_figure(tmp_path / "sweep", "bound-vs-T", "svg", out=tmp_path / "ref.svg", variant="reference-2d")
    assert [float(r["bound_mean"]) for r in read_csv(tmp_path / "ref.csv")] == summary["variants"]["reference-2d"]["bound_mean"]
    with pytest.raises(ConfigError, match="needs a single run"):
        export_figure(tmp_path / "sweep", "loss", "pdf", out=tmp_path / "x.pdf")


def test_bad_export_requests(run_dir, tmp_path):
    with pytest.raises(ConfigError, match="needs a sweep"):
        export_figure(run_dir, "bound-vs-T", "pdf", out=tmp_path / "x.pdf")
    with pytest.raises(ConfigError, match="unknown format"):
        export_figure(run_dir, "loss", "jpg")
    with pytest.raises(ConfigError, match="no such"):
        export_figure(tmp_path / "missing", "loss", "pdf")


def test_the_view_settings_reach_the_figure(run_dir, tmp_path):
    """Smoothing, log-y and the terms mode, as the app's view state passes them (and the CLI's flags)."""
    from core.export.figures import figure_table, load_source
    from core.io.run_dir import read_run
    from core.smoothing import debiased_ema

    source = load_source(run_dir)
    evals = read_run(run_dir).records("eval")
    total, _ = figure_table(source, "bound", terms="total")
    assert list(total) == ["step", "bound"]
    stacked, meta = figure_table(source, "bound", terms="stacked")
    assert meta["stacked"] is True
    # the last stacked curve is the sum of all four terms, which is the bound itself
    np.testing.assert_allclose(stacked["generator_scaled"], [r["bound"] for r in evals], rtol=1e-9)
    np.testing.assert_allclose(stacked["score_matching"], [r["score_matching"] for r in evals])
    with pytest.raises(ConfigError, match="terms must be one of"):
        figure_table(source, "bound", terms="all")
    paths = export_figure(run_dir, "loss", "svg", out=tmp_path / "loss.svg", smoothing=0.5, log_y=True)
    script = paths["script"].read_text()
    assert "'log_y': True" in script and "'smoothing': 0.5" in script and "'terms': 'terms'" in script
    rows = read_csv(paths["csv"])
    losses = np.array([float(r["loss"]) for r in rows])
    np.testing.assert_allclose([float(r["loss_smoothed"]) for r in rows], debiased_ema(losses, 0.5), rtol=1e-9)
    svg = ET.parse(paths["figure"]).getroot()
    assert svg.tag.endswith("svg")
    assert main(["export", str(run_dir), "--figure", "bound", "--format", "svg", "--out", str(tmp_path / "b.svg"),
                 "--terms", "total", "--log-y"]) == 0
    assert list(read_csv(tmp_path / "b.csv")[0]) == ["step", "bound"]
    assert "'log_y': True" in (tmp_path / "b.py").read_text()
