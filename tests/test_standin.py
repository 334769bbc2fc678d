"""The built-in stand-in sat4-synthetic: determinism, calibration to real SAT-4, separable classes."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from qgan_widgets.data import standin
from qgan_widgets.data import synthetic_sat4

# Per-class mean R, G, B, NIR and NDVI of the 100 real images (table in the sample's README.md).
REAL = {
    0: ((177, 162, 141, 184), 0.02),
    1: ((91, 93, 86, 147), 0.24),
    2: ((116, 114, 99, 167), 0.19),
    3: ((124, 124, 116, 146), 0.09),
}


@pytest.fixture(scope="module")
def tiles():
    return synthetic_sat4(4000, seed=0, split="train")


def _features(x: np.ndarray) -> np.ndarray:
    """Band means, NDVI, within-tile spread and mean neighbour difference (texture) per tile."""
    a = x.astype(np.float64)
    r, n = a[..., 0], a[..., 3]
    ndvi = ((n - r) / np.maximum(n + r, 1)).mean(axis=(1, 2))
    spread = a.std(axis=(1, 2)).mean(axis=1)
    grad = np.abs(np.diff(a, axis=1)).mean(axis=(1, 2, 3)) + np.abs(np.diff(a, axis=2)).mean(axis=(1, 2, 3))
    return np.column_stack([a.mean(axis=(1, 2)), ndvi, spread, grad])


class NearestCentroid:
    def fit(self, f, y):
        self.mu, self.sd = f.mean(axis=0), f.std(axis=0)
        z = (f - self.mu) / self.sd
        self.centroids = np.stack([z[y == c].mean(axis=0) for c in range(4)])
        return self

    def predict(self, f):
        z = (f - self.mu) / self.sd
        return np.argmin(((z[:, None, :] - self.centroids[None]) ** 2).sum(axis=-1), axis=1)


def test_shapes_dtypes_and_balanced_classes(tiles):
    x, y = tiles
    assert x.shape == (4000, 28, 28, 4) and x.dtype == np.uint8
    assert y.shape == (4000,) and y.dtype == np.int64
    assert np.bincount(y, minlength=4).tolist() == [1000] * 4
    assert x.std() > 20  # not blank
    empty_x, empty_y = synthetic_sat4(0)
    assert empty_x.shape == (0, 28, 28, 4) and empty_y.shape == (0,)
    with pytest.raises(ValueError, match="split"):
        synthetic_sat4(4, split="valid")


def test_deterministic_by_seed_prefix_stable_and_splits_differ(tiles):
    x, y = tiles
    x2, y2 = synthetic_sat4(1500, seed=0, split="train")
    np.testing.assert_array_equal(x2, x[:1500])  # same seed: same tiles, whatever n
    np.testing.assert_array_equal(y2, y[:1500])
    x3, _ = synthetic_sat4(300, seed=1, split="train")
    assert not np.array_equal(x3, x[:300])
    x4, _ = synthetic_sat4(300, seed=0, split="test")
    assert not np.array_equal(x4, x[:300])


@pytest.mark.parametrize("c", range(4))
def test_band_means_within_10_percent_and_ndvi_of_real_sat4(tiles, c):
    x, y = tiles
    a = x[y == c].astype(np.float64)
    means = a.mean(axis=(0, 1, 2))
    real_means, real_ndvi = REAL[c]
    np.testing.assert_allclose(means, real_means, rtol=0.10)
    r, n = a[..., 0], a[..., 3]
    ndvi = ((n - r) / np.maximum(n + r, 1)).mean()
    assert abs(ndvi - real_ndvi) < 0.04


@pytest.mark.parametrize("c", range(4))
def test_spreads_and_texture_match_the_calibration_targets(tiles, c):
    x, y = tiles
    a = x[y == c].astype(np.float64)
    between = a.mean(axis=(1, 2)).std(axis=0)
    within = a.std(axis=(1, 2)).mean(axis=0)
    np.testing.assert_allclose(between, standin.BETWEEN_SD[c], rtol=0.2)
    np.testing.assert_allclose(within, standin.WITHIN_SD[c], rtol=0.2)
    d = a - a.mean(axis=(1, 2), keepdims=True)
    lag1 = ((d[:, 1:] * d[:, :-1]).mean(axis=(0, 1, 2)) + (d[:, :, 1:] * d[:, :, :-1]).mean(axis=(0, 1, 2))) / 2
    lag1 /= (d**2).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(lag1, standin.LAG1_AUTOCORR[c], atol=0.1)


def test_texture_orders_the_classes_like_real_sat4(tiles):
    x, y = tiles
    spread = {c: x[y == c].astype(np.float64).std(axis=(1, 2)).mean() for c in range(4)}
    # trees and "none" (roofs, roads, water) are busy; barren land and grassland are smooth
    assert min(spread[1], spread[3]) > 1.5 * max(spread[0], spread[2])


def test_calibration_constants_match_the_real_sample(sat4_sample_path):
    m = scipy.io.loadmat(str(sat4_sample_path))
    x = np.concatenate([m["train_x"], m["test_x"]], axis=-1).transpose(3, 0, 1, 2).astype(np.float64)
    y = np.concatenate([m["train_y"], m["test_y"]], axis=-1).argmax(axis=0)
    for c in range(4):
        np.testing.assert_allclose(x[y == c].mean(axis=(0, 1, 2)), standin.CLASS_MEANS[c], atol=0.06)
        np.testing.assert_allclose(x[y == c].std(axis=(1, 2)).mean(axis=0), standin.WITHIN_SD[c], atol=0.06)


def test_a_simple_classifier_separates_held_out_stand_in_classes(tiles):
    x, y = tiles
    clf = NearestCentroid().fit(_features(x[:2000]), y[:2000])
    xt, yt = synthetic_sat4(1000, seed=0, split="test")
    accuracy = (clf.predict(_features(xt)) == yt).mean()
    assert accuracy > 0.6, f"nearest-centroid accuracy {accuracy:.3f} on 1000 held-out tiles (chance 0.25)"


def test_classifier_trained_on_the_stand_in_recognises_real_tiles(tiles, sat4_sample_path):
    x, y = tiles
    clf = NearestCentroid().fit(_features(x[:2000]), y[:2000])
    m = scipy.io.loadmat(str(sat4_sample_path))
    xr = np.concatenate([m["train_x"], m["test_x"]], axis=-1).transpose(3, 0, 1, 2)
    yr = np.concatenate([m["train_y"], m["test_y"]], axis=-1).argmax(axis=0)
    accuracy = (clf.predict(_features(xr)) == yr).mean()
    assert accuracy > 0.6, f"stand-in -> real accuracy {accuracy:.2f} on 100 real tiles (chance 0.25)"
