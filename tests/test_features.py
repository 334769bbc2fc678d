"""The classifier feature extractor: learns the stand-in classes, features, scores, save/load, cache."""
from __future__ import annotations

import numpy as np
import pytest

from qgan_widgets.data import dataset as data
from qgan_widgets.scores import FeatureExtractor, FeatureExtractorError
from qgan_widgets.scores import Score


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QGAN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "qgan-cache"))
        return data.load_dataset(n_train=1200, n_test=400, seed=0, verbose=False)


@pytest.fixture(scope="module")
def extractor(dataset):
    return FeatureExtractor.train(dataset, epochs=3, seed=0, verbose=False)


def test_trains_well_above_chance(extractor, dataset):
    assert extractor.test_accuracy > 0.6  # chance is 0.25 with balanced classes
    assert extractor.train_accuracy > 0.6
    assert extractor.accuracy(dataset.x_test, dataset.y_test) == extractor.test_accuracy
    assert extractor.trained_on == dataset.fingerprint


def test_features_shape_dtype_and_name(extractor, dataset):
    f = extractor.features(dataset.x_test[:37])
    assert f.shape == (37, 64) and f.dtype == np.float64
    np.testing.assert_allclose(extractor.features(data.to_float(dataset.x_test[:37]), batch_size=5), f,
                               rtol=1e-5, atol=1e-5)
    assert np.all(f.std(axis=0) > 0)  # pre-activation features: no dead (constant) dimensions
    assert extractor.name == "stand-in (sat4-synthetic) classifier features (64-d)"
    assert FeatureExtractor(dataset_name="sat4", feature_dim=32).name == "SAT-4 classifier features (32-d)"
    with pytest.raises(FeatureExtractorError, match="28, 28, 4"):
        extractor.features(np.zeros((3, 28, 28), np.uint8))


def test_score_separates_real_from_distorted(extractor, dataset):
    real_a, real_b = dataset.x_test[:200], dataset.x_test[200:]
    same = extractor.score(real_a, real_b, seed=4)
    assert isinstance(same, Score)
    assert (same.n_real, same.n_fake, same.feature_dim, same.seed) == (200, 200, 64, 4)
    assert same.extractor == extractor.name and same.name == "FD"
    rng = np.random.default_rng(0)
    noisy = np.clip(data.to_float(real_b) + rng.normal(0, 0.15, real_b.shape), 0, 1)
    assert extractor.score(real_a, noisy).value > 3 * same.value
    mu, sigma = extractor.stats(real_a)
    assert mu.shape == (64,) and sigma.shape == (64, 64)


def test_save_load_round_trip(extractor, dataset, tmp_path):
    path = extractor.save(tmp_path / "ext")
    loaded = FeatureExtractor.load(path)
    assert loaded.config() == extractor.config()
    assert loaded.test_accuracy == extractor.test_accuracy and loaded.name == extractor.name
    np.testing.assert_array_equal(loaded.features(dataset.x_test[:20]), extractor.features(dataset.x_test[:20]))
    (path / "classifier.weights.h5").write_bytes(b"garbage")
    with pytest.raises(FeatureExtractorError, match="classifier.weights.h5"):
        FeatureExtractor.load(path)
    with pytest.raises(FeatureExtractorError, match="no saved model"):
        FeatureExtractor.load(tmp_path / "nothing")


def test_for_dataset_trains_once_then_loads(dataset, monkeypatch):
    small = data.load_dataset(n_train=200, n_test=100, seed=1, verbose=False)
    first = FeatureExtractor.for_dataset(small, epochs=1, seed=0, verbose=False)
    entries = [p for p in (data.cache_dir() / "features").iterdir() if p.name.startswith(small.fingerprint)]
    assert len(entries) == 1 and not entries[0].name.startswith(".")

    def no_training(*args, **kwargs):
        raise AssertionError("the cached extractor should have been loaded")

    monkeypatch.setattr(FeatureExtractor, "train", classmethod(no_training))
    again = FeatureExtractor.for_dataset(small, epochs=1, seed=0, verbose=False)
    np.testing.assert_array_equal(again.features(small.x_test[:5]), first.features(small.x_test[:5]))
    with pytest.raises(AssertionError):  # another epoch count is another cache entry
        FeatureExtractor.for_dataset(small, epochs=2, seed=0, verbose=False)
