"""Export never overwrites a file without --force, never writes through a symbolic link, and never runs a file
from disk: each hostile case ends in exit status 2 and one line naming the problem, within seconds."""

import os
import time

import pytest

from core.cli import main
from core.errors import ConfigError
from core.export import figures
from core.export.figures import export_figure

TINY = ["--m", "24", "--n-test", "40", "--iters", "4", "--eval-every", "2", "--N", "20", "--K", "10",
        "--n-gen", "50", "--test-kl-draws", "2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export-safety") / "run"
    assert main(["train", "dm", *TINY, "--out", str(folder)]) == 0
    return folder


@pytest.fixture
def project(tmp_path):
    """A user's project folder, and a marker file that appears if any planted script is ever run."""
    proj = tmp_path / "proj"
    proj.mkdir()
    marker = tmp_path / "EXECUTED"
    return proj, marker


def planted_script(marker) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')\n"


def export(run_dir, out, *extra, figure="bound", fmt="png"):
    start = time.perf_counter()
    rc = main(["export", str(run_dir), "--figure", figure, "--format", fmt, "--dpi", "50", "--out", str(out), *extra])
    assert time.perf_counter() - start < 5
    return rc


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def no_staging_left(folder) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".infogen-export-")]


def test_existing_files_are_refused_and_left_as_they_were(run_dir, project, capsys):
    proj, marker = project
    (proj / "train.py").write_text(planted_script(marker))
    (proj / "train.csv").write_text("mine\n")
    assert export(run_dir, proj / "train.png") == 2
    line = one_line(capsys)
    assert "train.py" in line and "train.csv" in line and "--force" in line
    assert (proj / "train.py").read_text() == planted_script(marker)
    assert (proj / "train.csv").read_text() == "mine\n"
    assert not (proj / "train.png").exists() and not marker.exists() and no_staging_left(proj)


def test_force_replaces_regular_files_and_runs_nothing_from_disk(run_dir, project, capsys):
    proj, marker = project
    (proj / "train.py").write_text(planted_script(marker))
    (proj / "train.csv").write_text("mine\n")
    (proj / "train.png").write_bytes(b"old figure")
    old_inode = (proj / "train.py").stat().st_ino
    assert export(run_dir, proj / "train.png", "--force") == 0
    assert (proj / "train.py").read_text().startswith("#!/usr/bin/env python3")
    assert (proj / "train.py").stat().st_ino != old_inode  # replaced (os.replace), not written into
    assert (proj / "train.csv").read_text().startswith("step,bound")
    assert (proj / "train.png").read_bytes().startswith(b"\x89PNG")
    assert not marker.exists() and no_staging_left(proj)


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_symbolic_links_are_never_written_through_even_with_force(run_dir, project, tmp_path, capsys, force):
    proj, marker = project
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.csv").write_text("precious\n")
    os.symlink(outside / "victim.csv", proj / "train.csv")
    os.symlink(outside / "evil.py", proj / "train.py")  # dangling
    assert export(run_dir, proj / "train.png", *force) == 2
    line = one_line(capsys)
    assert "symbolic link" in line and "train.csv" in line and "train.py" in line
    assert (outside / "victim.csv").read_text() == "precious\n"
    assert not (outside / "evil.py").exists()
    assert (proj / "train.csv").is_symlink() and (proj / "train.py").is_symlink()
    assert not (proj / "train.png").exists() and not marker.exists() and no_staging_left(proj)


def test_a_dangling_link_at_the_figure_path_is_refused(run_dir, project, tmp_path, capsys):
    proj, _ = project
    os.symlink(tmp_path / "elsewhere.png", proj / "fig.png")
    assert export(run_dir, proj / "fig.png", "--force") == 2
    assert "symbolic link" in one_line(capsys)
    assert not (tmp_path / "elsewhere.png").exists()


def test_a_folder_at_a_target_is_refused(run_dir, project, capsys):
    proj, _ = project
    (proj / "fig.csv").mkdir()
    assert export(run_dir, proj / "fig.png", "--force") == 2
    assert "not a regular file" in one_line(capsys)


def test_the_figure_is_drawn_from_the_script_text_not_from_the_file(run_dir, project, monkeypatch):
    """Swap the staged script on disk just before drawing: the figure is still drawn and nothing is run."""
    proj, marker = project
    real = figures.render_script

    def swap_then_render(script_text, script_path, csv_text, figure_path, width_in, dpi):
        (figure_path.parent / script_path.name).write_text(planted_script(marker))
        return real(script_text, script_path, csv_text, figure_path, width_in, dpi)

    monkeypatch.setattr(figures, "render_script", swap_then_render)
    paths = export_figure(run_dir, "gap", "png", dpi=50, out=proj / "gap.png")
    assert paths["figure"].read_bytes().startswith(b"\x89PNG") and not marker.exists()


def test_a_file_that_appears_meanwhile_is_not_overwritten(run_dir, project, monkeypatch):
    """Without --force the files are published with exclusive links: a figure created by someone else after the
    check survives, and the CSV and script already published are taken back."""
    proj, _ = project
    real = figures.render_script

    def race(script_text, script_path, csv_text, figure_path, width_in, dpi):
        (proj / "race.png").write_bytes(b"theirs")
        return real(script_text, script_path, csv_text, figure_path, width_in, dpi)

    monkeypatch.setattr(figures, "render_script", race)
    with pytest.raises(ConfigError, match="race.png already exists"):
        export_figure(run_dir, "bound", "png", dpi=50, out=proj / "race.png")
    assert (proj / "race.png").read_bytes() == b"theirs"
    assert not (proj / "race.csv").exists() and not (proj / "race.py").exists() and no_staging_left(proj)


def test_an_unwritable_output_gets_a_message(run_dir, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    assert export(run_dir, tmp_path / "a-file" / "fig.png") == 2
    assert "cannot write the export into" in one_line(capsys)


@pytest.mark.parametrize("value", ["5", "nan", "-0.1", "1"])
def test_smoothing_outside_0_to_1_is_refused(run_dir, tmp_path, capsys, value):
    assert export(run_dir, tmp_path / "loss.png", f"--smoothing={value}", figure="loss") == 2
    assert "smoothing" in one_line(capsys)
    assert not (tmp_path / "loss.png").exists()
