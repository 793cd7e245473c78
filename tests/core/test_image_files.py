"""Image loaders: good files load as (n, C, H, W) in [0, 1]; each malformed file gets its own clear error."""

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from core.data.image_files import load_cifar10, load_idx_images, load_image_array, load_image_folder
from core.data.images import load_images
from core.errors import DataError


def idx_bytes(images: np.ndarray, magic_type: int = 0x08, ndim: int | None = None) -> bytes:
    ndim = images.ndim if ndim is None else ndim
    header = bytes([0, 0, magic_type, ndim]) + b"".join(struct.pack(">I", s) for s in images.shape)
    return header + images.astype(">u1").tobytes()


def test_idx_raw_and_gzip_load_scaled(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    (tmp_path / "a-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        out = load_idx_images(tmp_path / name)
        assert out.shape == (2, 1, 3, 4) and out.dtype == np.float32
        np.testing.assert_allclose(out[:, 0], images / 255.0, rtol=1e-6)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x08\x03\x00\x00" + b"\x00" * 20, "wrong magic number"),
        (b"", "wrong magic number"),
        (bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + b"\x01\x02\x03", "label file"),
        (bytes([0, 0, 8, 3]) + struct.pack(">III", 5, 2, 2) + b"\x00" * 12, "truncated"),
        (bytes([0, 0, 8, 3]) + struct.pack(">III", 1, 2, 2) + b"\x00" * 9, "inconsistent sizes"),
        (bytes([0, 0, 8, 3]) + b"\x00\x00", "truncated IDX header"),
    ],
)
def test_idx_rejects_malformed_files(tmp_path, content, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_idx_images(path)


def test_idx_rejects_a_truncated_gzip(tmp_path):
    images = np.zeros((4, 5, 5), dtype=np.uint8)
    data = gzip.compress(idx_bytes(images))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="damaged or truncated gzip"):
        load_idx_images(path)


def cifar_bytes(n: int, label: int = 3) -> bytes:
    rng = np.random.default_rng(0)
    records = np.concatenate([np.full((n, 1), label, np.uint8), rng.integers(0, 256, (n, 3072), dtype=np.uint8)], 1)
    return records.tobytes()


def test_cifar_folder_and_file(tmp_path):
    (tmp_path / "data_batch_1.bin").write_bytes(cifar_bytes(3))
    (tmp_path / "data_batch_2.bin").write_bytes(cifar_bytes(2))
    out = load_cifar10(tmp_path)
    assert out.shape == (5, 3, 32, 32) and 0 <= out.min() and out.max() <= 1
    raw = np.frombuffer(cifar_bytes(3), np.uint8).reshape(3, 3073)
    np.testing.assert_allclose(out[:3].reshape(3, -1), raw[:, 1:] / 255.0, rtol=1e-6)
    assert load_cifar10(tmp_path / "data_batch_2.bin").shape == (2, 3, 32, 32)


def test_cifar_rejects_bad_batches(tmp_path):
    (tmp_path / "cut.bin").write_bytes(cifar_bytes(2)[:-100])
    with pytest.raises(DataError, match="not a whole number"):
        load_cifar10(tmp_path / "cut.bin")
    (tmp_path / "labels.bin").write_bytes(cifar_bytes(1, label=200))
    with pytest.raises(DataError, match="label byte is 200"):
        load_cifar10(tmp_path / "labels.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        load_cifar10(tmp_path / "empty.bin")
    empty_dir = tmp_path / "none"
    empty_dir.mkdir()
    with pytest.raises(DataError, match="no CIFAR-10 binary batches"):
        load_cifar10(empty_dir)


def test_arrays_in_all_layouts(tmp_path):
    nhwc = np.random.default_rng(1).integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)
    np.save(tmp_path / "nhwc.npy", nhwc)
    out = load_image_array(tmp_path / "nhwc.npy")
    assert out.shape == (4, 3, 6, 6)
    np.testing.assert_allclose(out, nhwc.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    np.savez(tmp_path / "gray.npz", images=np.full((3, 5, 5), 0.5, np.float32), labels=np.arange(3))
    assert load_image_array(tmp_path / "gray.npz").shape == (3, 1, 5, 5)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((2, 4, 4), np.nan, np.float32), "NaN"),
        (np.full((2, 4, 4), 3.0, np.float32), r"within|lie in \[0, 1\]"),
        (np.zeros((2, 4, 4, 5), np.float32), "no channel axis"),
        (np.zeros((0, 4, 4), np.float32), "holds no images"),
        (np.zeros((4, 4), np.float32), "must have shape"),
        (np.array(["a", "b"]), "not numbers"),
    ],
)
def test_arrays_reject_bad_content(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=message):
        load_image_array(tmp_path / "bad.npy")


def test_array_file_that_is_not_numpy(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(DataError, match="cannot be read as an array"):
        load_image_array(tmp_path / "junk.npy")
    np.savez(tmp_path / "many.npz", a=np.zeros((2, 3, 3)), b=np.zeros((2, 3, 3)))
    with pytest.raises(DataError, match="several arrays"):
        load_image_array(tmp_path / "many.npz")


def test_image_folder_gray_and_colour(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((5, 7), 40 * i, np.uint8), mode="L").save(tmp_path / f"{i}.png")
    out = load_image_folder(tmp_path)
    assert out.shape == (3, 1, 5, 7)
    np.testing.assert_allclose(out[2, 0], 80 / 255.0, rtol=1e-6)
    Image.fromarray(np.zeros((5, 7, 3), np.uint8), mode="RGB").save(tmp_path / "3.jpg")
    assert load_image_folder(tmp_path).shape == (4, 3, 5, 7)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="empty folder"):
        load_image_folder(tmp_path)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((6, 5), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(DataError, match="differ in size"):
        load_image_folder(tmp_path)
    (tmp_path / "b.png").unlink()
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match="c.png: unreadable image"):
        load_image_folder(tmp_path)


def test_registry_needs_a_path_and_knows_digits():
    assert load_images("digits").shape == (1797, 1, 8, 8)
    with pytest.raises(DataError, match="give a data path"):
        load_images("idx")
    with pytest.raises(DataError, match="unknown image dataset"):
        load_images("imagenet", "x")
