"""A diffusion run's reverse trajectory survives on disk: in the checkpoint and in the run folder, kept across a
resume, refused by name when it is malformed; and a sweep's progress events carry every member's latest loss."""

import hashlib
import json
import math

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import core.checkpoint as cp
from core.checkpoint import CheckpointError, build_checkpoint_bytes, load_checkpoint, parse_checkpoint
from core.cli import main
from core.errors import RunFileError
from core.io.recorder import TRAJECTORY_MAX_IMAGES, RunRecorder
from core.io.run_dir import TRAJECTORY_FILE, read_run
from core.records import without_arrays
from core.training.config import DiffusionConfig, image_config
from core.training.diffusion import train_diffusion

CFG = DiffusionConfig(m=24, n_test=40, T=0.6, iters=4, eval_every=2, n_steps=20, mc_samples=10, n_gen=32,
                      test_kl_draws=1, dsm_eval_draws=1, hidden=16)


def train_into(folder, cfg, resume=None, **kw):
    """Train ``cfg`` through a RunRecorder (continuing ``resume``, a Checkpoint, when given); (recorder, records)."""
    records = []
    with RunRecorder(folder, cfg.as_dict(), resume=resume, **kw) as rec:
        state = None if resume is None else resume.train_state
        for record in train_diffusion(cfg, resume=state):
            rec.write(record)
            records.append(record)
    return rec, records


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny swiss roll run with evaluations at steps 2 and 4: (folder, checkpoint path, eval records)."""
    folder = tmp_path_factory.mktemp("traj") / "run"
    rec, records = train_into(folder, CFG)
    return folder, rec.checkpoint_path, [r for r in records if r["kind"] == "eval"]


def assert_same_trajectory(got, frames, times):
    assert got is not None
    assert got[0].dtype == np.float32 and got[1].dtype == np.float32
    np.testing.assert_array_equal(got[0], frames)
    np.testing.assert_array_equal(got[1], times)


# -- written and read back --------------------------------------------------------------------------------------
def test_checkpoint_and_run_folder_hold_the_last_evaluations_trajectory(run):
    folder, path, evals = run
    first, last = evals[0], evals[-1]
    assert last["frames"].shape == (CFG.frame_count, CFG.n_gen, 2)  # 21 frames: start, every step (N // 50 = 1)
    assert not np.array_equal(first["frames"], last["frames"])  # so "the last one" is a real distinction
    ckpt = load_checkpoint(path)
    assert_same_trajectory(ckpt.trajectory, last["frames"], last["frame_times"])
    assert ckpt.trajectory[1][0] == pytest.approx(CFG.T) and ckpt.trajectory[1][-1] == 0.0
    files = read_run(folder)
    assert_same_trajectory(files.trajectory, last["frames"], last["frame_times"])
    assert (folder / TRAJECTORY_FILE).is_file()
    assert set(st_load((folder / TRAJECTORY_FILE).read_bytes())) == {"frames", "times"}


def test_a_resume_keeps_the_checkpoint_trajectory_until_its_next_evaluation(run, tmp_path):
    _, path, evals = run
    old = load_checkpoint(path)
    cfg = CFG.with_(iters=6)
    with RunRecorder(tmp_path / "cont", cfg.as_dict(), resume=old):
        pass  # resumed, not yet evaluated: the checkpoint's trajectory is the folder's
    assert_same_trajectory(load_checkpoint(tmp_path / "cont" / cp.CHECKPOINT_NAME).trajectory,
                           evals[-1]["frames"], evals[-1]["frame_times"])
    assert_same_trajectory(read_run(tmp_path / "cont").trajectory, evals[-1]["frames"], evals[-1]["frame_times"])

    rec, records = train_into(tmp_path / "cont2", cfg, resume=old)
    new = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in new] == [6]
    assert not np.array_equal(new[-1]["frames"], evals[-1]["frames"])
    assert_same_trajectory(load_checkpoint(rec.checkpoint_path).trajectory, new[-1]["frames"], new[-1]["frame_times"])
    assert_same_trajectory(read_run(tmp_path / "cont2").trajectory, new[-1]["frames"], new[-1]["frame_times"])


def test_resuming_in_place_from_a_checkpoint_without_one_drops_a_stale_trajectory_file(run, tmp_path):
    folder, path, _ = run
    old = load_checkpoint(path)
    old.trajectory = None  # as a checkpoint from before trajectories were saved
    target = tmp_path / "here"
    target.mkdir()
    (target / TRAJECTORY_FILE).write_bytes((folder / TRAJECTORY_FILE).read_bytes())
    with RunRecorder(target, CFG.as_dict(), resume=old, in_place=True):
        pass
    assert not (target / TRAJECTORY_FILE).exists()
    assert read_run(target).trajectory is None
    assert load_checkpoint(target / cp.CHECKPOINT_NAME).trajectory is None


def test_an_image_run_stores_at_most_sixteen_images_per_frame(tmp_path):
    cfg = image_config(m=8, n_test=6, iters=1, eval_every=0, n_gen=20, mc_samples=4, dsm_eval_draws=1, T=0.02,
                       trajectory_frames=4)
    rec, records = train_into(tmp_path / "img", cfg)
    last = [r for r in records if r["kind"] == "eval"][-1]
    assert last["frames"].shape == (5, 20, 64)
    kept = (last["frames"][:, :TRAJECTORY_MAX_IMAGES], last["frame_times"])
    assert TRAJECTORY_MAX_IMAGES == 16
    assert_same_trajectory(load_checkpoint(rec.checkpoint_path).trajectory, *kept)
    assert_same_trajectory(read_run(tmp_path / "img").trajectory, *kept)


# -- the config default: headless runs record a trajectory -------------------------------------------------------
def test_the_default_config_records_about_fifty_frames_per_evaluation():
    d = DiffusionConfig()
    assert d.trajectory_frames == 50 and d.frame_every == 0
    assert d.frame_interval == 20 and d.frame_count == 51  # N = 1000
    assert d.with_(trajectory_frames=0).frame_interval is None and d.with_(trajectory_frames=0).frame_count == 0
    assert d.with_(frame_every=7).frame_interval == 7  # the app's explicit choice wins
    assert d.with_(n_steps=30).frame_interval == 1 and d.with_(n_steps=30).frame_count == 31
    assert image_config(T=0.6).frame_interval == 12  # 600 EM steps of 0.001
    with pytest.raises(Exception, match="trajectory_frames"):
        d.with_(trajectory_frames=-1).validate()


def test_a_cli_run_opens_with_a_trajectory(tmp_path, capsys):
    out = tmp_path / "cli"
    tiny = ["--m", "24", "--n-test", "40", "--N", "20", "--K", "10", "--n-gen", "16", "--test-kl-draws", "1"]
    assert main(["train", "dm", *tiny, "--iters", "2", "--eval-every", "0", "--out", str(out)]) == 0
    capsys.readouterr()
    ckpt = load_checkpoint(out / cp.CHECKPOINT_NAME)
    assert ckpt.trajectory is not None and ckpt.trajectory[0].shape == (21, 16, 2)
    assert read_run(out).trajectory[0].shape == (21, 16, 2)


def test_trajectory_frames_zero_records_none(tmp_path):
    rec, records = train_into(tmp_path / "none", CFG.with_(iters=2, trajectory_frames=0))
    assert not any("frames" in r for r in records)
    assert load_checkpoint(rec.checkpoint_path).trajectory is None
    assert read_run(tmp_path / "none").trajectory is None and not (tmp_path / "none" / TRAJECTORY_FILE).exists()


# -- older files -----------------------------------------------------------------------------------------------
def test_an_old_checkpoint_without_trajectory_or_its_setting_loads_with_none(run):
    _, path, evals = run
    ckpt = load_checkpoint(path)
    old_config = {k: v for k, v in ckpt.config.items() if k != "trajectory_frames"}
    data = build_checkpoint_bytes(model="dm", config=old_config, history=ckpt.history, weights=ckpt.weights,
                                  train_state=ckpt.train_state, samples=ckpt.samples)
    assert b'"trajectory.frames"' not in data and b'"trajectory.times"' not in data
    old = parse_checkpoint(data)
    assert old.trajectory is None
    assert old.config["trajectory_frames"] == 50  # filled in with its default
    assert DiffusionConfig.from_dict(old.resume_config()).frame_interval == 1


def test_an_old_run_folder_without_trajectory_file_reads_with_none(run, tmp_path):
    folder, _, _ = run
    old = tmp_path / "old"
    old.mkdir()
    for name in ("config.json", "history.jsonl", "weights.safetensors", "samples.safetensors"):
        (old / name).write_bytes((folder / name).read_bytes())
    files = read_run(old)
    assert files.trajectory is None and files.samples


# -- hostile checkpoints ---------------------------------------------------------------------------------------
def with_tensors(path, change) -> bytes:
    """The checkpoint at ``path`` with ``change(tensors)`` applied to its tensors, its hash recomputed."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    meta = json.loads(raw[8 : 8 + size])["__metadata__"]
    tensors = dict(st_load(raw))
    change(tensors)
    built = st_save(tensors, metadata={"infogen": meta["infogen"], "infogen_sha256": cp.HASH_PLACEHOLDER})
    return cp._replace_hash(built, cp.HASH_PLACEHOLDER, hashlib.sha256(built).hexdigest())


def _set(key, value):
    def change(tensors):
        tensors[key] = value(tensors)
    return change


def _drop(key):
    def change(tensors):
        del tensors[key]
    return change


FR, TI = "trajectory.frames", "trajectory.times"
HOSTILE = {
    "frames float64": (_set(FR, lambda t: t[FR].astype(np.float64)), "trajectory frames have dtype F64"),
    "times float64": (_set(TI, lambda t: t[TI].astype(np.float64)), "trajectory times have dtype F64"),
    "frames int": (_set(FR, lambda t: t[FR].astype(np.int32)), "trajectory frames have dtype I32"),
    "frames rank 2": (_set(FR, lambda t: t[FR][0]), r"trajectory frames have shape \[32, 2\]; expected \(F, n, d\)"),
    "frames rank 4": (_set(FR, lambda t: t[FR][None]), r"trajectory frames have shape \[1, 21, 32, 2\]"),
    "no frames": (_set(FR, lambda t: t[FR][:0]), r"trajectory frames have shape \[0, 32, 2\]"),
    "times rank 2": (_set(TI, lambda t: t[TI][:, None]), r"trajectory times have shape \[21, 1\]; expected \(F,\)"),
    "too few times": (_set(TI, lambda t: t[TI][:-1]), "trajectory has 21 frames but 20 times"),
    "too many times": (_set(TI, lambda t: np.concatenate([t[TI], t[TI][:1]])), "trajectory has 21 frames but 22 times"),
    "wrong dimension": (_set(FR, lambda t: np.concatenate([t[FR], t[FR][..., :1]], axis=2)),
                        "samples of dimension 3, but the run's data have dimension 2"),
    "NaN time": (_set(TI, lambda t: np.where(np.arange(21) == 3, np.float32("nan"), t[TI]).astype(np.float32)),
                 "trajectory times are not all finite"),
    "infinite time": (_set(TI, lambda t: np.where(np.arange(21) == 0, np.float32("inf"), t[TI]).astype(np.float32)),
                      "trajectory times are not all finite"),
    "times missing": (_drop(TI), "trajectory tensor 'trajectory.times' is missing"),
    "frames missing": (_drop(FR), "trajectory tensor 'trajectory.frames' is missing"),
    "unknown name": (_set("trajectory.noise", lambda t: t[TI]), "unknown trajectory tensor 'trajectory.noise'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_malformed_checkpoint_trajectory_is_refused_by_name(run, tmp_path, case):
    _, path, _ = run
    change, message = HOSTILE[case]
    bad = tmp_path / "bad.infogen"
    bad.write_bytes(with_tensors(path, change))
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(bad)
    assert str(bad) in str(info.value)


def test_the_unchanged_rebuild_loads(run, tmp_path):
    """The hostile cases' rebuild itself is sound: without a change the file loads with its trajectory."""
    _, path, evals = run
    good = tmp_path / "good.infogen"
    good.write_bytes(with_tensors(path, lambda tensors: None))
    assert_same_trajectory(load_checkpoint(good).trajectory, evals[-1]["frames"], evals[-1]["frame_times"])


# -- hostile run folders ---------------------------------------------------------------------------------------
def folder_with_trajectory(run, tmp_path, arrays: dict | bytes):
    folder, _, _ = run
    target = tmp_path / "run"
    target.mkdir()
    for name in ("config.json", "history.jsonl", "weights.safetensors", "samples.safetensors"):
        (target / name).write_bytes((folder / name).read_bytes())
    (target / TRAJECTORY_FILE).write_bytes(arrays if isinstance(arrays, bytes) else st_save(arrays))
    return target


def _good(run):
    frames, times = read_run(run[0]).trajectory
    return np.array(frames), np.array(times)


FOLDER_HOSTILE = {
    "frames float64": (lambda f, t: {"frames": f.astype(np.float64), "times": t}, "trajectory frames have dtype float64"),
    "times float16": (lambda f, t: {"frames": f, "times": t.astype(np.float16)}, "trajectory times have dtype float16"),
    "frames rank 2": (lambda f, t: {"frames": f[0], "times": t}, r"trajectory frames have shape \[32, 2\]"),
    "times rank 0": (lambda f, t: {"frames": f, "times": t[:1].reshape(())}, r"trajectory times have shape \[\]"),
    "length mismatch": (lambda f, t: {"frames": f[:-2], "times": t}, "trajectory has 19 frames but 21 times"),
    "wrong dimension": (lambda f, t: {"frames": f[..., :1].copy(), "times": t},
                        "samples of dimension 1, but the run's data have dimension 2"),
    "NaN time": (lambda f, t: {"frames": f, "times": np.full_like(t, np.nan)}, "trajectory times are not all finite"),
    "no times": (lambda f, t: {"frames": f}, "a trajectory is exactly 'frames' and 'times'"),
    "extra key": (lambda f, t: {"frames": f, "times": t, "x": t}, "a trajectory is exactly 'frames' and 'times'"),
    "not safetensors": (lambda f, t: b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage", "not a readable safetensors file"),
}


@pytest.mark.parametrize("case", sorted(FOLDER_HOSTILE))
def test_a_malformed_trajectory_file_is_refused_by_name(run, tmp_path, case):
    make, message = FOLDER_HOSTILE[case]
    folder = folder_with_trajectory(run, tmp_path, make(*_good(run)))
    with pytest.raises(RunFileError, match=message) as info:
        read_run(folder)
    assert TRAJECTORY_FILE in str(info.value)


def test_a_sound_trajectory_file_in_a_copied_folder_reads(run, tmp_path):
    frames, times = _good(run)
    folder = folder_with_trajectory(run, tmp_path, {"frames": frames, "times": times})
    assert_same_trajectory(read_run(folder).trajectory, frames, times)


# -- sweep progress carries the members' losses ----------------------------------------------------------------
def test_sweep_progress_events_carry_every_members_latest_loss(tmp_path, monkeypatch):
    import core.sweep as sweep

    monkeypatch.setattr(sweep, "PROGRESS_SECONDS", 0.0)
    group = sweep.plan_sweep(CFG.with_(iters=3, eval_every=0, trajectory_frames=0), [0.4, 0.8], [0], tmp_path / "s")
    (tmp_path / "s").mkdir()
    events = list(sweep.group_events(group))
    progress = [e for e in events if e["kind"] == "progress"]
    names = [r.name for r in group]
    assert progress and all(set(e["losses"]) == set(names) for e in progress)
    losses = {r.name: {s["step"]: s["loss"] for s in read_run(r.folder).records("step")} for r in group}
    assert progress[0]["losses"] == {names[0]: losses[names[0]][1], names[1]: None}  # before member 1's first step
    assert progress[-1]["losses"] == {n: losses[n][3] for n in names}
    assert all(isinstance(v, float) and math.isfinite(v) for v in progress[-1]["losses"].values())
    json.dumps(progress)  # plain JSON: no NaN, no arrays


def test_a_failed_members_loss_is_none_in_progress_events(tmp_path, diverge_last_member):
    import core.sweep as sweep

    diverge_last_member(after=2)
    group = sweep.plan_sweep(CFG.with_(iters=3, eval_every=0, trajectory_frames=0), [0.4, 0.8], [0], tmp_path / "s")
    (tmp_path / "s").mkdir()
    events = list(sweep.group_events(group))
    assert [e["run"] for e in events if e["kind"] == "error"] == ["T0.8_seed0"]
    last = [e for e in events if e["kind"] == "progress"][-1]
    assert last["losses"]["T0.8_seed0"] is None
    assert isinstance(last["losses"]["T0.4_seed0"], float)
    assert sweep.finite_or_none(float("nan")) is None and sweep.finite_or_none(float("inf")) is None
    assert sweep.finite_or_none(None) is None and sweep.finite_or_none(1.5) == 1.5


def test_sweep_events_stay_light_with_trajectories_on(tmp_path):
    import core.sweep as sweep

    group = sweep.plan_sweep(CFG.with_(iters=2, eval_every=0), [0.5], [0], tmp_path / "s")
    (tmp_path / "s").mkdir()
    events = list(sweep.group_events(group))
    assert all(e == without_arrays(e) for e in events)
    assert read_run(group[0].folder).trajectory is not None
