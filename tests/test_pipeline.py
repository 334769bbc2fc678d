"""The Workspace on a tiny configuration: prepare, cache, scores, the evaluator, threads."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from qgan_widgets.data import dataset as data
from qgan_widgets.models import vae as vae_module
from qgan_widgets._tf import keras, tf
from qgan_widgets.scores import FeatureExtractor
from qgan_widgets.scores import Score
from qgan_widgets.pipeline import Workspace, WorkspaceError

pytestmark = pytest.mark.slow  # preparing the workspace (stand-in, VAE, extractor) takes ~15-30 s on 2 cores

TINY = dict(fast=True, n_train=400, n_test=120, vae_epochs=2, extractor_epochs=1, seed=0, verbose=False)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QGAN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "qgan-cache"))
        return Workspace.prepare(**TINY)


class TinyGenerator(keras.Model):
    """Fulfils the generator contract: noise (B, noise_dim) -> tanh latents (B, latent_dim)."""

    kind = "classical"

    def __init__(self, noise_dim=3, latent_dim=4, scale=1.0, seed=0):
        super().__init__()
        self.noise_dim, self.latent_dim = noise_dim, latent_dim
        self.dense = keras.layers.Dense(latent_dim, kernel_initializer=keras.initializers.RandomNormal(
            stddev=scale, seed=seed))

    def call(self, noise, training=None):
        return tf.tanh(self.dense(noise))


def test_prepare_exposes_everything(ws):
    assert ws.latent_dim == 4 and ws.dataset.is_standin
    assert len(ws.dataset.x_train) == 400 and ws.n_eval == 120
    assert ws.real_latents.shape == (400, 4) and ws.real_latents.dtype == np.float32
    assert np.all(np.abs(ws.real_latents) <= 1)
    mu, sigma = ws.real_feature_stats
    assert mu.shape == (64,) and sigma.shape == (64, 64) and mu.dtype == np.float64
    assert isinstance(ws.floor, Score)
    assert ws.floor.name == "FD floor" and (ws.floor.n_real, ws.floor.n_fake) == (120, 120)
    assert ws.floor.feature_dim == 64 and ws.floor.extractor == ws.extractor.name
    assert math.isfinite(ws.floor.value) and ws.floor.value > 0
    assert "warnings" in ws.vae_report
    assert "floor" in ws.describe()


def test_second_prepare_loads_the_cached_models(ws, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("the cached model should have been loaded")

    monkeypatch.setattr("qgan_widgets.pipeline.train_vae", no_training)
    monkeypatch.setattr(FeatureExtractor, "train", classmethod(no_training))
    again = Workspace.prepare(**TINY)
    np.testing.assert_allclose(again.real_latents, ws.real_latents, atol=1e-6)
    assert again.floor.value == pytest.approx(ws.floor.value, rel=1e-6)
    # another VAE configuration is another cache entry: it must train
    with pytest.raises(AssertionError):
        Workspace.prepare(**{**TINY, "vae_options": {"beta": 0.5}})


def test_scores_rank_real_above_noise(ws):
    real = ws.score_images(ws.dataset.x_train[:120], seed=1)
    noise = ws.score_images(np.random.default_rng(0).integers(0, 256, (120, 28, 28, 4), dtype=np.uint8))
    assert real.value < noise.value
    assert (real.n_real, real.n_fake, real.seed) == (120, 120, 1)
    lat = ws.score_latents(ws.real_latents[:200], seed=2)
    far = ws.score_latents(np.full((200, 4), 0.9, np.float32))
    assert lat.value < far.value and lat.feature_dim == 4 and "latent" in lat.extractor
    k = ws.kid_images(ws.dataset.x_train[:120], seed=0, n_blocks=3)
    assert k.std is not None and k.name == "KID"
    with pytest.raises(WorkspaceError, match=r"\(N, 4\)"):
        ws.score_latents(np.zeros((5, 3)))


def test_classifier_accuracies_and_class_mix(ws):
    acc = ws.classifier_accuracies()
    x, y = ws.dataset.x_test, ws.dataset.y_test
    assert acc["n"] == len(y) == 120
    assert acc["real"] == ws.extractor.accuracy(x, y)
    assert acc["reconstructed"] == ws.extractor.accuracy(ws.vae.reconstruct(x), y)
    assert acc["ratio"] == pytest.approx(acc["reconstructed"] / acc["real"])
    mix = ws.class_histogram(x)
    assert mix.shape == (4,) and mix.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(mix, np.bincount(ws.extractor.predict(x), minlength=4) / len(x))
    one = ws.class_histogram(np.repeat(x[:1], 10, axis=0))  # ten copies of one tile: one class
    assert sorted(one) == [0, 0, 0, 1.0]


def test_decode_to_uint8(ws):
    img = ws.decode_to_uint8(ws.real_latents[:5])
    assert img.shape == (5, 28, 28, 4) and img.dtype == np.uint8


def test_evaluator_scores_and_fixed_samples(ws):
    evaluate = ws.evaluator(n_grid=9, seed=0)
    gen = TinyGenerator()
    scores, samples = evaluate(gen, 0)
    assert set(scores) == {"fd", "fd_latent", "data", "scores"}
    assert scores["data"] == "sat4-synthetic (stand-in)"  # for sample-grid titles
    assert math.isfinite(scores["fd"]) and math.isfinite(scores["fd_latent"])
    fd = Score.from_dict(scores["scores"]["fd"])
    assert fd.value == scores["fd"] and (fd.n_real, fd.n_fake) == (120, 120) and fd.seed == 0
    assert samples.shape == (9, 28, 28, 4) and samples.dtype == np.uint8
    scores2, samples2 = evaluate(gen, 10)  # fixed noise: same generator, same samples and scores
    np.testing.assert_array_equal(samples, samples2)
    assert scores2["fd"] == scores["fd"]
    # the same workspace serves another generator (other noise size) with this latent_dim
    other, _ = evaluate(TinyGenerator(noise_dim=5, scale=3.0, seed=1), 0)
    assert other["fd_latent"] != scores["fd_latent"]
    with pytest.raises(WorkspaceError, match="latent_dim 4"):
        evaluate(TinyGenerator(latent_dim=3), 0)
    with pytest.raises(WorkspaceError, match="n_grid"):
        ws.evaluator(n_samples=10, n_grid=20)


def test_training_sample_grids_say_which_generator_and_which_data(ws, tmp_path, monkeypatch):
    from qgan_widgets.training import rundir
    from qgan_widgets.training import trainer as training
    from qgan_widgets.models import Critic
    from qgan_widgets.models import ClassicalGenerator

    titles = []
    monkeypatch.setattr(rundir, "_save_grid", lambda images, path, title: titles.append(title))
    training.WGANGPTrainer(ClassicalGenerator(noise_dim=4, latent_dim=4, seed=0), Critic(4, 8, seed=0),
                           ws.real_latents, {"steps": 2, "eval_every": 2, "batch_size": 16, "n_critic": 1},
                           evaluator=ws.evaluator(n_samples=32, n_grid=4), out_dir=tmp_path).train()
    assert titles == ["classical generator samples, step 2, sat4-synthetic (stand-in)"]  # which generator, which data


def test_evaluator_with_the_package_generator(ws):
    from qgan_widgets.models import ClassicalGenerator

    scores, samples = ws.evaluator(n_samples=64, n_grid=4)(ClassicalGenerator(noise_dim=4, latent_dim=4), 0)
    assert scores["scores"]["fd"]["n_fake"] == 64 and samples.shape == (4, 28, 28, 4)


def test_evaluator_reports_nan_for_broken_generators(ws):
    class Broken(TinyGenerator):
        def call(self, noise, training=None):
            return noise[:, :4] * np.nan

    scores, samples = ws.evaluator()(Broken(noise_dim=4), 0)
    assert math.isnan(scores["fd"]) and math.isnan(scores["fd_latent"]) and samples is None


def test_evaluator_from_worker_threads(ws):
    evaluate = ws.evaluator(n_samples=60, n_grid=4)
    gens = [TinyGenerator(seed=s) for s in range(3)]
    expected = [evaluate(g, 0)[0]["fd"] for g in gens]
    results, errors = [None] * 3, []

    def work(i):
        try:
            results[i] = evaluate(gens[i], 1)[0]["fd"]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == pytest.approx(expected)


def test_bad_vae_options_are_named():
    with pytest.raises((WorkspaceError, vae_module.VAEError)):
        Workspace.prepare(**{**TINY, "vae_options": {"no_such_option": 1}})
    with pytest.raises(vae_module.VAEError, match="beta"):
        Workspace.prepare(**{**TINY, "vae_options": {"beta": -1}})
    assert data.cache_dir().name == "qgan-cache"  # tests never write into the checkout


def test_tuned_vae_gets_its_own_auxiliary_classifier(ws, monkeypatch):
    """The tuning study's recipe (the default) has perceptual and class-consistency terms: the VAE is trained
    against an auxiliary classifier seeded seed + 1000, not the extractor that scores; both are cached,
    and a second prepare loads them. The plain VAE needs no auxiliary classifier."""
    from qgan_widgets.models import TUNED_VAE
    from qgan_widgets.pipeline import AUX_SEED_OFFSET, DEFAULT_VAE_OPTIONS

    assert DEFAULT_VAE_OPTIONS == TUNED_VAE and ws.vae.decoder_kind == "canvas" and ws.vae.consistency > 0
    seeds = []
    real_for_dataset = FeatureExtractor.for_dataset.__func__

    def spy(cls, dataset, *a, **k):
        seeds.append(k.get("seed"))
        return real_for_dataset(cls, dataset, *a, **k)

    monkeypatch.setattr(FeatureExtractor, "for_dataset", classmethod(spy))
    tuned = Workspace.prepare(**{**TINY, "vae_options": {**TUNED_VAE, "beta": 0.2}})  # not cached yet: trains
    assert seeds == [TINY["seed"] + AUX_SEED_OFFSET, TINY["seed"]]
    assert tuned.vae.config()["perceptual"] == TUNED_VAE["perceptual"] and tuned.vae.beta == 0.2
    assert tuned.extractor.seed == TINY["seed"]  # the scores' extractor is the plain workspace's
    assert math.isfinite(tuned.floor.value)
    seeds.clear()
    plain = Workspace.prepare(**{**TINY, "vae_options": {"texture": 0, "perceptual": 0, "consistency": 0,
                                                         "decoder": "transpose"}})
    assert seeds == [TINY["seed"]] and plain.vae.config()["perceptual"] == 0

    def no_training(*a, **k):
        raise AssertionError("the cached model should have been loaded")

    monkeypatch.setattr("qgan_widgets.pipeline.train_vae", no_training)
    again = Workspace.prepare(**{**TINY, "vae_options": {**TUNED_VAE, "beta": 0.2}})
    np.testing.assert_allclose(again.real_latents, tuned.real_latents, atol=1e-6)


def test_evaluator_adds_kid_when_asked(ws):
    scores, _ = ws.evaluator(kid=True)(TinyGenerator(), 0)
    kid = Score.from_dict(scores["scores"]["kid"])
    assert kid.name == "KID" and kid.value == scores["kid"] and kid.std is not None and kid.std >= 0
    assert (kid.n_real, kid.n_fake, kid.seed) == (120, 120, 0)
    assert "kid" not in ws.evaluator()(TinyGenerator(), 0)[0]
