"""The optional Inception FID: local weights only, RGB bands, clear errors, the demo's extra score.

The real ImageNet weights cannot be downloaded here, so the tests use a file of the same Keras
layout with random weights (``inception_weights`` in conftest): what is checked is the plumbing
(loading, resizing, band selection, the Frechet distance and its bookkeeping), not ImageNet values.
"""
from __future__ import annotations

import numpy as np
import pytest

import qgan_widgets  # noqa: F401  (Keras guard first)
from qgan_widgets.scores import inception
from qgan_widgets.scores import InceptionError, InceptionFeatures, find_weights


def tiles(n, seed=0, bright=0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(0, 160, (n, 28, 28, 4)) + bright, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def ext(inception_weights):
    return InceptionFeatures(inception_weights, image_size=75, batch_size=16)


def test_features_are_2048_pool_values_of_the_rgb_bands(ext):
    x = tiles(20)
    f = ext.features(x)
    assert f.shape == (20, 2048) and f.dtype == np.float64 and np.all(np.isfinite(f))
    other_nir = x.copy()
    other_nir[..., 3] = 255 - other_nir[..., 3]
    np.testing.assert_allclose(ext.features(other_nir), f, rtol=1e-5, atol=1e-6)  # NIR never enters
    np.testing.assert_allclose(ext.features(x / 255.0), f, rtol=1e-4, atol=1e-5)  # uint8 or [0, 1] floats
    np.testing.assert_allclose(ext.features(x[..., :3]), f, rtol=1e-5, atol=1e-6)  # or RGB only
    assert not np.allclose(ext.features(tiles(20, seed=1)), f)
    assert ext.features(x[:0]).shape == (0, 2048)


def test_fid_is_logged_with_its_counts_and_grows_with_the_shift(ext):
    real = tiles(40, seed=0)
    same = ext.score(real, real, seed=7)
    near = ext.score(real, tiles(40, seed=1), seed=7)
    far = ext.score(real, tiles(40, seed=2, bright=90), seed=7)
    assert abs(same.value) < 1e-3 * max(near.value, 1e-9) + 1e-6
    assert 0 < near.value < far.value
    d = far.to_dict()
    assert d["n_real"] == 40 and d["n_fake"] == 40 and d["feature_dim"] == 2048 and d["seed"] == 7
    assert far.name == "FID (Inception, RGB)" and "InceptionV3" in ext.name and "75x75" in ext.name
    assert ext.score(real, tiles(40, seed=2, bright=90), seed=7, real_stats=ext.stats(real)).value == pytest.approx(far.value)


def test_bad_weights_and_images_are_refused_by_name(tmp_path, ext):
    missing = tmp_path / "nope.h5"
    with pytest.raises(InceptionError, match="nope.h5: no such file"):
        InceptionFeatures(missing)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file")
    with pytest.raises(InceptionError, match="garbage.h5: not the no-top InceptionV3 weights"):
        InceptionFeatures(garbage, image_size=75)
    with pytest.raises(InceptionError, match="garbage.h5: not Keras InceptionV3 weights"):
        InceptionFeatures(garbage)  # 299: the full-model layout is tried too
    with pytest.raises(InceptionError, match="image_size must be an integer >= 75"):
        InceptionFeatures(missing, image_size=32)
    with pytest.raises(InceptionError, match=r"shape \(N, H, W, 4\)"):
        ext.features(np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(InceptionError, match=r"in \[0, 1\]"):
        ext.features(np.full((2, 28, 28, 4), 2.0))


def test_weights_are_found_from_the_argument_the_environment_or_data_inception(tmp_path, monkeypatch,
                                                                                inception_weights):
    monkeypatch.setattr(inception, "checkout_root", lambda: tmp_path)
    assert find_weights() is None  # nothing anywhere: no Inception FID, no error
    (tmp_path / "data" / "inception").mkdir(parents=True)
    local = tmp_path / "data" / "inception" / "weights.h5"
    local.write_bytes(b"x")
    assert find_weights() == local
    monkeypatch.setenv(inception.ENV_VAR, str(inception_weights))
    assert find_weights() == inception_weights
    assert find_weights(local) == local  # an explicit path wins
    monkeypatch.setenv(inception.ENV_VAR, str(tmp_path / "missing.h5"))
    with pytest.raises(InceptionError, match=r"\$QGAN_INCEPTION_WEIGHTS .*missing.h5: no such file"):
        find_weights()


def test_the_demo_refuses_bad_inception_weights_before_training(tmp_path):
    from qgan_widgets.apps import demo

    out = tmp_path / "demo"
    with pytest.raises(InceptionError, match="nope.h5: no such file"):
        demo.run_demo(quick=True, out=out, inception=tmp_path / "nope.h5", verbose=False)
    assert not out.exists()  # nothing started, nothing half-written


@pytest.mark.slow
def test_the_full_model_file_with_the_classifier_works_too(tmp_path):
    import tf_keras as keras

    path = tmp_path / "inception_v3_full.h5"
    keras.applications.InceptionV3(include_top=True, weights=None).save_weights(str(path))
    full = InceptionFeatures(path, batch_size=4)  # 299x299, pool features below the classifier
    f = full.features(tiles(3))
    assert f.shape == (3, 2048) and np.all(np.isfinite(f))
    with pytest.raises(InceptionError, match="a full-model file needs image_size 299"):
        InceptionFeatures(path, image_size=75)
