import numpy as np
import pytest
from sklearn.datasets import make_swiss_roll

from core.data import TOY_DATASETS, load_toy2d, validate_points
from core.errors import DataError
from core.seeding import numpy_rng


def test_swiss_roll_is_the_papers_recipe():
    train, test = load_toy2d("swissroll", 50, 30, seed=3)
    rng = numpy_rng(3, "data")
    expected_train = make_swiss_roll(50, noise=0.5, random_state=rng)[0][:, [0, 2]] / 5
    expected_test = make_swiss_roll(30, noise=0.5, random_state=rng)[0][:, [0, 2]] / 5
    np.testing.assert_allclose(train, expected_train, rtol=1e-6)
    np.testing.assert_allclose(test, expected_test, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_every_dataset_is_seeded_and_well_formed(name):
    a = load_toy2d(name, 40, 20, seed=1)
    b = load_toy2d(name, 40, 20, seed=1)
    c = load_toy2d(name, 40, 20, seed=2)
    assert a[0].shape == (40, 2) and a[1].shape == (20, 2) and a[0].dtype == np.float32
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert np.abs(a[0]).max() < 5


def test_a_bigger_test_set_does_not_change_the_training_points():
    np.testing.assert_array_equal(load_toy2d("moons", 40, 20, 0)[0], load_toy2d("moons", 40, 500, 0)[0])


@pytest.mark.parametrize(
    "data,kwargs,message",
    [
        ([[0.0, np.nan], [1.0, 2.0]], {}, "NaN"),
        ([[0.0, np.inf], [1.0, 2.0]], {}, "infinite"),
        ([[0.0, 1.0]], {}, "at least 2 points"),
        ([0.0, 1.0, 2.0], {}, "2-D array"),
        ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]], {"dim": 2}, "dimension 2"),
        ([["a", "b"], ["c", "d"]], {}, "cannot be read"),
    ],
)
def test_bad_data_gets_a_clear_error(data, kwargs, message):
    with pytest.raises(DataError, match=message):
        validate_points(data, **kwargs)


def test_unknown_dataset_and_bad_sizes():
    with pytest.raises(DataError, match="unknown 2-D dataset"):
        load_toy2d("spiral", 10, 10, 0)
    with pytest.raises(DataError, match="m must be an integer >= 2"):
        load_toy2d("swissroll", 1, 10, 0)


def test_points_files_load_and_split(tmp_path):
    from core.data.files import load_points_file, split_points

    pts = np.random.default_rng(0).normal(size=(50, 2))
    np.save(tmp_path / "a.npy", pts)
    np.savez(tmp_path / "b.npz", x=pts, labels=np.arange(50))
    np.savetxt(tmp_path / "c.csv", pts, delimiter=",", header="x,y", comments="")
    for name in ("a.npy", "b.npz", "c.csv"):
        np.testing.assert_allclose(load_points_file(tmp_path / name), pts, rtol=1e-6)
    train, test = split_points(pts.astype(np.float32), 30, 100, seed=0, name="pts")
    assert train.shape == (30, 2) and test.shape == (20, 2)
    again = split_points(pts.astype(np.float32), 30, 100, seed=0, name="pts")
    np.testing.assert_array_equal(train, again[0])


@pytest.mark.parametrize(
    "writer,message",
    [(lambda p: np.save(p, np.array([[0.0, np.nan], [1, 2], [3, 4]])), "NaN"),
     (lambda p: np.save(p, np.array([{"a": 1}], dtype=object)), "cannot be read"),
     (lambda p: p.write_bytes(b"\x93NUMPY garbage"), "cannot be read"),
     (lambda p: np.save(p, np.zeros((0, 2))), "at least 2 points")],
)
def test_bad_points_files_are_refused(tmp_path, writer, message):
    from core.data.files import load_points_file

    path = tmp_path / "bad.npy"
    writer(path)
    with pytest.raises(DataError, match=message):
        load_points_file(path)


def test_a_file_dataset_trains_and_a_nan_file_is_refused_with_its_name(tmp_path, tiny_config):
    from core.training.diffusion import train_diffusion

    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(1).normal(size=(60, 2)))
    cfg = tiny_config.with_(data="file", data_path=str(good), m=32, iters=2, eval_every=0)
    assert [r["kind"] for r in train_diffusion(cfg)][-1] == "end"
    bad = tmp_path / "bad.npy"
    pts = np.random.default_rng(1).normal(size=(60, 2))
    pts[7, 1] = np.nan
    np.save(bad, pts)
    with pytest.raises(DataError, match="bad.npy.*NaN"):
        next(train_diffusion(cfg.with_(data_path=str(bad))))
