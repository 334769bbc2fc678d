"""Shared test fixtures. Tests never need the network; the real SAT-4 sample beside the project
(../shared/data/sat4-sample) is used when present and its tests are skipped when absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QGAN_FAST", "1")

from qgan_widgets._allocator import keep_freed_memory  # noqa: E402  (the tests are a batch job)

keep_freed_memory()

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MAT = ROOT.parent / "shared" / "data" / "sat4-sample" / "sat4-sample100.mat"


@pytest.fixture(scope="session")
def sat4_sample_path() -> Path:
    """The 100 real SAT-4 images in the official .mat layout; skips the test when absent."""
    if not SAMPLE_MAT.exists():
        pytest.skip(f"real SAT-4 sample not present at {SAMPLE_MAT}")
    return SAMPLE_MAT


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes caches under a temporary directory, never into the checkout's data/."""
    cache = tmp_path_factory.getbasetemp() / "qgan-cache"
    monkeypatch.setenv("QGAN_CACHE_DIR", str(cache))
    monkeypatch.delenv("QGAN_SAT4_PATH", raising=False)
    monkeypatch.delenv("QGAN_INCEPTION_WEIGHTS", raising=False)
    yield


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """A no-top InceptionV3 weights file (random weights, 75x75 inputs): the Keras layout of the
    real ImageNet file, which cannot be downloaded here."""
    import qgan_widgets  # noqa: F401  (Keras guard first)
    import tf_keras as keras

    path = tmp_path_factory.mktemp("inception") / "inception_v3_random_notop.h5"
    keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                   input_shape=(75, 75, 3)).save_weights(str(path))
    return path
