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
