"""Arguments are checked against what they cost: each hostile size, time, rate or image ends in exit status 2
and one line naming the problem (and the estimate), within 5 s and without allocating what it asks for."""

import gzip
import resource
import struct
import time
import zlib

import numpy as np
import pytest

from core import resources
from core.cli import main
from core.config_checks import MAX_EM_STEPS, T_MAX
from core.data.image_files import load_cifar10, load_idx_images, load_image_array, load_image_folder
from core.data.peek import MAX_IMAGE_PIXELS
from core.errors import ConfigError, DataError
from core.training.config import DiffusionConfig, image_config
from core.vae.config import VAEConfig

BIG = "1000000000"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def refused(argv, capsys) -> str:
    """Run the CLI; assert exit 2 within 5 s, one stderr line, and less than 200 MB of new peak memory."""
    before = peak_rss_mb()
    start = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - start < 5
    assert peak_rss_mb() - before < 200
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    "args, named",
    [
        (["--m", BIG], "m = 1e9"),
        (["--n-test", BIG], "n_test = 1e9"),
        (["--K", BIG], "K = 1e9"),
        (["--n-gen", BIG], "n_gen × test_kl_draws = 1e9 × 8"),
        (["--test-kl-draws", BIG], "n_gen × test_kl_draws = 1,000 × 1e9"),
        (["--m", "100000000", "--batch", "100000000"], "batch = 1e8"),
    ],
)
def test_sizes_beyond_the_machine_are_refused_naming_the_estimate(tmp_path, capsys, args, named):
    line = refused(["train", "dm", *args, "--out", str(tmp_path / "run")], capsys)
    assert named in line and "needs at least" in line and "this machine has" in line
    assert not (tmp_path / "run").exists()


def test_sweep_and_select_t_are_checked_too(tmp_path, capsys):
    assert "n_gen" in refused(["sweep", "dm", "--n-gen", BIG, "--T", "0.4,0.8", "--out", str(tmp_path / "s")], capsys)
    assert "K = 1e9" in refused(["select-t", "dm", "--K", BIG, "--out", str(tmp_path / "t")], capsys)


def test_image_sizes_are_estimated_with_the_unet(tmp_path, capsys):
    line = refused(["train", "dm", "--data", "digits", "--n-gen", BIG, "--out", str(tmp_path / "run")], capsys)
    assert "1x8x8 pixels" in line


@pytest.mark.parametrize(
    "args, named",
    [
        (["--N", BIG], f"limit of {MAX_EM_STEPS}"),
        (["--data", "digits", "--step-size", "1e-9"], "round(T / step_size)"),
        (["--T", BIG], "must be <= 5"),
        (["--T", "5.01"], "stationary"),
        (["--lr", "1e38"], "must be <= 1"),
        (["--lr", "nan"], "lr (learning rate) must be a finite number > 0"),
        (["--lr", "0"], "lr (learning rate) must be a finite number > 0"),
    ],
)
def test_times_and_rates_have_limits_with_their_reason(tmp_path, capsys, args, named):
    line = refused(["train", "dm", *args, "--out", str(tmp_path / "run")], capsys)
    assert named in line


def test_the_vae_checks_its_learning_rate(tmp_path, capsys):
    assert "must be <= 1" in refused(["train", "vae", "--data", "digits", "--m", "1000", "--lr", "5",
                                      "--out", str(tmp_path / "run")], capsys)


def test_unwritable_output_gets_a_message(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    line = refused(["train", "dm", "--out", str(tmp_path / "a-file" / "run")], capsys)
    assert "not a folder" in line


def test_limits_sit_where_they_say():
    DiffusionConfig(T=T_MAX).validate()
    DiffusionConfig(n_steps=MAX_EM_STEPS).validate()
    DiffusionConfig(lr=1.0).validate()
    with pytest.raises(ConfigError, match="N \\(Euler-Maruyama steps\\)"):
        DiffusionConfig(n_steps=MAX_EM_STEPS + 1).validate()
    VAEConfig(data="digits", m=1000, lr=1.0).validate()
    with pytest.raises(ConfigError, match="lr"):
        VAEConfig(data="digits", m=1000, lr=float("inf")).validate()


def test_the_defaults_and_the_paper_settings_fit():
    """A size that fits is never refused: the defaults, the paper's image settings and a large MNIST run."""
    DiffusionConfig().validate()
    image_config().validate()
    image_config(data="mnist5k", preset="paper-mnist", m=4000, n_test=1000, batch=128).validate()
    VAEConfig().validate()


def test_a_smaller_machine_refuses_sooner(monkeypatch):
    """The estimate is compared with the machine's memory: the default run is refused on a 1 MB machine."""
    monkeypatch.setattr(resources, "machine_memory_bytes", lambda: 10**6)
    with pytest.raises(ConfigError, match="this machine has 1 MB"):
        DiffusionConfig().validate()
    monkeypatch.setattr(resources, "machine_memory_bytes", lambda: 0)  # unknown: nothing is refused
    DiffusionConfig().validate()


# -- images are capped before they are decoded ----------------------------------------------------------------
def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (8-bit grayscale) with almost no data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [30000, 9000])  # above PIL's own bomb limit, and between ours and PIL's
def test_a_png_claiming_too_many_pixels_is_refused_before_decoding(tmp_path, capsys, side):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_header(side, side))
    (folder / "b.png").write_bytes(png_header(side, side))
    before = peak_rss_mb()
    with pytest.raises(DataError, match="a.png.*(limit of|pixels)"):
        load_image_folder(folder)
    assert peak_rss_mb() - before < 200
    line = refused(["train", "dm", "--data", "image-folder", "--data-path", str(folder), "--out",
                    str(tmp_path / "run")], capsys)
    assert "a.png" in line and f"{MAX_IMAGE_PIXELS:,}" in line


def idx_header(n: int, h: int, w: int) -> bytes:
    return bytes([0, 0, 8, 3]) + struct.pack(">III", n, h, w)


def test_idx_headers_are_checked_before_reading(tmp_path):
    (tmp_path / "huge-idx3-ubyte").write_bytes(idx_header(60000, 28, 28) + b"\x00" * 100)
    with pytest.raises(DataError, match="truncated"):
        load_idx_images(tmp_path / "huge-idx3-ubyte")
    (tmp_path / "wide.gz").write_bytes(gzip.compress(idx_header(2, 30000, 30000) + b"\x00" * 100))
    with pytest.raises(DataError, match="above the limit"):
        load_idx_images(tmp_path / "wide.gz")
    (tmp_path / "many.gz").write_bytes(gzip.compress(idx_header(2**31, 64, 64) + b"\x00" * 100))
    with pytest.raises(DataError, match="need about .* of memory to load; this machine has"):
        load_idx_images(tmp_path / "many.gz")


def test_npy_headers_are_checked_before_allocating(tmp_path):
    path = tmp_path / "liar.npy"
    np.save(path, np.zeros((2, 4, 4), np.uint8))
    data = path.read_bytes().replace(b"(2, 4, 4)", b"(2000000000, 4, 4)")  # same header length after padding
    path.write_bytes(data)
    before = peak_rss_mb()
    with pytest.raises(DataError, match="truncated: the header declares"):
        load_image_array(path)
    assert peak_rss_mb() - before < 200


def test_a_gzip_bomb_is_not_decompressed_beyond_the_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "machine_memory_bytes", lambda: 9 * 2**20)  # 1 MiB for CIFAR bytes
    (tmp_path / "data_batch_1.bin").write_bytes(gzip.compress(b"\x00" * (4 * 2**20)))
    with pytest.raises(DataError, match="decompresses to more than"):
        load_cifar10(tmp_path)


def test_what_lives_on_a_cuda_device_is_compared_with_its_memory(monkeypatch):
    """No GPU needed: the device's memory is stubbed. Samples live on the device, the data file is read on the host."""
    monkeypatch.setattr(resources, "device_memory_bytes", lambda device: 10**9 if device.startswith("cuda") else None)
    with pytest.raises(ConfigError, match="n_gen × test_kl_draws.*the cuda device has 1 GB"):
        DiffusionConfig(device="cuda", n_gen=10**7).validate()
    DiffusionConfig(device="cuda").validate()
    with pytest.raises(ConfigError, match="drawing m \\+ n_test.*this machine has"):  # the data: host memory
        resources.check_data_costs(DiffusionConfig(device="cuda", m=10**10))


@pytest.mark.parametrize("args,message", [
    (["--N", "1e9"], "above the limit of 100000"),       # integral scientific notation is read as an integer
    (["--m", "abc"], "argument --m: not an integer: 'abc'"),
    (["--K", "2.5"], "argument --K: not an integer: '2.5'"),
])
def test_bad_arguments_get_one_line(tmp_path, capsys, args, message):
    from core.cli import main

    assert main(["train", "dm", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "x").exists()
