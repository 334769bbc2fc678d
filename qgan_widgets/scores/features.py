"""The feature extractor behind image scores: a small SAT-4 classifier's penultimate layer.

FID uses ImageNet InceptionV3 features. Those do not fit here: Inception expects 299x299 RGB, our
tiles are 28x28 with four bands (R, G, B, NIR), its ImageNet classes say nothing about land cover,
and its weights cannot be downloaded at run time anyway. Following TF-GAN's MNIST score and
clean-fid's custom extractors, :class:`FeatureExtractor` is a small CNN trained on the data set's
own labelled training split (4 land-cover classes); its penultimate dense layer (64 values by
default) gives the features, and its test accuracy is reported so the features can be trusted.
Scores computed with it are named honestly, e.g. "FD 12.3 (..., SAT-4 classifier features (64-d))"
-- never "FID".

Trained once per data set and cached under ``data.cache_dir()/features/``, keyed by the data set's
fingerprint and the extractor's configuration (:meth:`FeatureExtractor.for_dataset`). Notebooks
``04_training_latent_style_qgan`` and ``05_classical_vs_quantum`` use it.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from qgan_widgets.scores import metrics
from qgan_widgets.data.sat4 import CLASS_NAMES, IMAGE_SHAPE
from qgan_widgets.data.cache import cache_dir
from qgan_widgets.data.dataset import to_float
from qgan_widgets.models.files import atomic_directory, load_weights, read_config

__all__ = ["FeatureExtractor", "FeatureExtractorError", "DEFAULT_EPOCHS", "FAST_EPOCHS"]

DEFAULT_EPOCHS = 8
FAST_EPOCHS = 6
_FORMAT = "qgan_widgets.FeatureExtractor"
_WEIGHTS = "classifier.weights.h5"
_DATASET_LABELS = {"sat4": "SAT-4", "sat4-sample": "SAT-4 sample",
                   "sat4-synthetic": "stand-in (sat4-synthetic)"}


class FeatureExtractorError(ValueError):
    """A feature extractor cannot be trained, saved or loaded as asked (the message says why)."""


class FeatureExtractor:
    """A small CNN land-cover classifier whose penultimate layer gives image features.

    ``FeatureExtractor(feature_dim=64, base_filters=16, seed=0, dataset_name="sat4")``:
    conv 3x3 (``base_filters``) -> max-pool -> conv 3x3 (``2*base_filters``) -> max-pool -> dense
    ``feature_dim`` -> ReLU -> dense 4 (class logits). The features are the penultimate dense
    layer's values *before* the ReLU: after it, units that never fire would give constant (useless)
    feature dimensions. Build and train one with :meth:`train` or get the cached one with
    :meth:`for_dataset`.
    """

    def __init__(self, feature_dim: int = 64, base_filters: int = 16, seed: int = 0,
                 dataset_name: str = "sat4"):
        for key, v in (("feature_dim", feature_dim), ("base_filters", base_filters)):
            if int(v) != v or v < 1:
                raise FeatureExtractorError(f"FeatureExtractor: {key} must be a positive integer, got {v!r}")
        self.feature_dim, self.base_filters, self.seed = int(feature_dim), int(base_filters), int(seed)
        self.dataset_name = str(dataset_name)
        self.train_accuracy: float | None = None
        self.test_accuracy: float | None = None
        self.trained_on: str | None = None  # the data set's fingerprint
        self.classifier, self._features_fn = self._build()

    def _build(self):
        from qgan_widgets._tf import keras, tf

        L, f = keras.layers, self.base_filters
        counter = iter(range(100))

        def init():
            return keras.initializers.GlorotUniform(seed=self.seed * 100 + next(counter))

        x = keras.Input(IMAGE_SHAPE, name="image")
        h = L.Conv2D(f, 3, padding="same", activation="relu", kernel_initializer=init())(x)
        h = L.MaxPooling2D()(h)
        h = L.Conv2D(2 * f, 3, padding="same", activation="relu", kernel_initializer=init())(h)
        h = L.MaxPooling2D()(h)
        feats = L.Dense(self.feature_dim, kernel_initializer=init(), name="features")(L.Flatten()(h))
        logits = L.Dense(len(CLASS_NAMES), kernel_initializer=init(), name="logits")(L.ReLU()(feats))
        classifier = keras.Model(x, logits, name="sat4_classifier")
        # One model with both outputs: the convolutions run once per image (two models sharing
        # the layers ran them twice: twice the cost of every evaluation, same numbers).
        both = keras.Model(x, [feats, logits], name="sat4_features_and_logits")

        @tf.function(autograph=False, input_signature=[tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32)])
        def features_and_logits(a):
            return both(a, training=False)

        return classifier, features_and_logits

    # -- identity --------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """What the features are, for every score: e.g. ``"SAT-4 classifier features (64-d)"``."""
        label = _DATASET_LABELS.get(self.dataset_name, self.dataset_name)
        return f"{label} classifier features ({self.feature_dim}-d)"

    def config(self) -> dict:
        return {"feature_dim": self.feature_dim, "base_filters": self.base_filters,
                "seed": self.seed, "dataset_name": self.dataset_name}

    def __repr__(self) -> str:
        acc = "untrained" if self.test_accuracy is None else f"test accuracy {self.test_accuracy:.1%}"
        return f"FeatureExtractor({self.name}; {acc})"

    # -- training --------------------------------------------------------------------------------
    @classmethod
    def train(cls, dataset, epochs: int | None = None, seed: int = 0, batch_size: int = 128,
              feature_dim: int = 64, base_filters: int = 16, learning_rate: float = 1e-3,
              verbose: bool = True) -> "FeatureExtractor":
        """Train a new extractor on ``dataset.x_train``/``y_train`` and report its test accuracy.

        ``epochs``: default 8 (6 with ``QGAN_FAST=1``). ``seed`` fixes weights and batch order.
        The accuracies are kept in ``train_accuracy`` / ``test_accuracy`` (chance is 25%).
        """
        from qgan_widgets import FAST
        from qgan_widgets._tf import keras, tf

        epochs = (FAST_EPOCHS if FAST else DEFAULT_EPOCHS) if epochs is None else int(epochs)
        x, y = np.asarray(dataset.x_train), np.asarray(dataset.y_train, dtype=np.int64)
        if len(x) < 2 or x.shape[1:] != IMAGE_SHAPE or y.shape != (len(x),):
            raise FeatureExtractorError(f"FeatureExtractor.train: need labelled images (N, 28, 28, 4) "
                                        f"with N >= 2, got {x.shape} and labels {y.shape}")
        ext = cls(feature_dim=feature_dim, base_filters=base_filters, seed=seed,
                  dataset_name=dataset.name)
        opt = keras.optimizers.Adam(learning_rate)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        variables = ext.classifier.trainable_variables

        @tf.function(input_signature=[tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32),
                                      tf.TensorSpec((None,), tf.int64)])
        def step(xb, yb):
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, ext.classifier(xb, training=True))
            opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        for epoch in range(epochs):
            order = rng.permutation(len(x))
            total = 0.0
            for i in range(0, len(order), batch_size):
                idx = np.sort(order[i:i + batch_size])
                total += float(step(to_float(x[idx]), y[idx])) * len(idx)
            if not np.isfinite(total):
                raise FeatureExtractorError(f"FeatureExtractor.train: the loss became NaN/inf in "
                                            f"epoch {epoch + 1}; lower the learning rate")
            if verbose and ((epoch + 1) % max(1, epochs // 4) == 0 or epoch + 1 == epochs):
                print(f"[features] epoch {epoch + 1}/{epochs}: loss {total / len(order):.3f}")
        ext.train_accuracy = ext.accuracy(x, y)
        ext.test_accuracy = ext.accuracy(dataset.x_test, dataset.y_test)
        ext.trained_on = getattr(dataset, "fingerprint", None)
        if verbose:
            print(f"[features] {ext.name}: test accuracy {ext.test_accuracy:.1%} (train "
                  f"{ext.train_accuracy:.1%}, chance 25%) after {epochs} epochs on "
                  f"{len(x):,} images ({time.perf_counter() - t0:.0f} s)")
        return ext

    @classmethod
    def for_dataset(cls, dataset, epochs: int | None = None, seed: int = 0, cache: bool = True,
                    verbose: bool = True, **kwargs) -> "FeatureExtractor":
        """The extractor for ``dataset``: loaded from the cache, else trained (and cached).

        The cache entry is ``data.cache_dir()/features/<fingerprint>-<config hash>``, so a
        different data set, subset, seed, epoch count or architecture trains a new one.
        """
        from qgan_widgets import FAST

        epochs = (FAST_EPOCHS if FAST else DEFAULT_EPOCHS) if epochs is None else int(epochs)
        key = json.dumps({"epochs": epochs, "seed": seed, **kwargs}, sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        path = cache_dir() / "features" / f"{dataset.fingerprint}-{digest}"
        if cache and path.is_dir():
            try:
                ext = cls.load(path)
                if verbose:
                    print(f"[features] loaded {ext.name} from the cache (test accuracy "
                          f"{ext.test_accuracy:.1%})")
                return ext
            except FeatureExtractorError as e:
                if verbose:
                    print(f"[features] cached extractor unusable, training again: {e}")
        ext = cls.train(dataset, epochs=epochs, seed=seed, verbose=verbose, **kwargs)
        if cache:
            try:
                ext.save(path)
            except OSError as e:  # a read-only cache must not stop the work
                if verbose:
                    print(f"[features] could not cache the extractor at {path}: {e}")
        return ext

    # -- use -------------------------------------------------------------------------------------
    def _run(self, x, batch_size: int):
        a = to_float(x)
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or a.shape[1:] != IMAGE_SHAPE:
            raise FeatureExtractorError(f"FeatureExtractor: images must have shape (N, 28, 28, 4), got {a.shape}")
        feats, logits = [], []
        for i in range(0, len(a), batch_size):
            f, lg = self._features_fn(a[i:i + batch_size])
            feats.append(f.numpy())
            logits.append(lg.numpy())
        if not feats:
            return np.zeros((0, self.feature_dim)), np.zeros((0, len(CLASS_NAMES)))
        return np.concatenate(feats), np.concatenate(logits)

    def perceptual_net(self, logits: bool = False):
        """A frozen, differentiable map from float tiles ``(B, 28, 28, 4)`` to the classifier's second
        convolution block (after pooling, ``(B, 7, 7, 2 * base_filters)``): what a VAE's perceptual term
        matches (``VAE(perceptual=w)``; :meth:`qgan_widgets.pipeline.Workspace.prepare` trains a separate
        auxiliary classifier for it, so the extractor that scores is not the one the VAE was fitted to).
        ``logits=True``: the map returns ``(activations, class logits)``, what a VAE's class-consistency
        term needs too (``VAE(consistency=w)``)."""
        from qgan_widgets._tf import keras

        both = self.classifier
        pooled = [layer for layer in both.layers if isinstance(layer, keras.layers.MaxPooling2D)][-1]
        net = keras.Model(both.input, [pooled.output, both.output] if logits else pooled.output,
                          name="perceptual_features")
        net.trainable = False
        return lambda images: net(images, training=False)

    def features(self, x, batch_size: int = 1024) -> np.ndarray:
        """Features float64 ``(N, feature_dim)`` of images ``x`` (uint8 or float in [0, 1])."""
        return self._run(x, batch_size)[0].astype(np.float64)

    def predict(self, x, batch_size: int = 1024) -> np.ndarray:
        """Predicted class indices int64 ``(N,)`` (see ``data.CLASS_NAMES``)."""
        return np.argmax(self._run(x, batch_size)[1], axis=1).astype(np.int64)

    def accuracy(self, x, y) -> float:
        y = np.asarray(y)
        return float(np.mean(self.predict(x) == y)) if len(y) else float("nan")

    def stats(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance (float64) of the features of images ``x``."""
        return metrics.feature_stats(self.features(x))

    def score(self, real, fake, seed: int | None = None, name: str = "FD") -> metrics.Score:
        """Frechet distance between the features of images ``real`` and ``fake``, as a Score."""
        fd = metrics.fd_from_samples(self.features(real), self.features(fake))
        return metrics.Score(value=fd, name=name, n_real=len(real), n_fake=len(fake),
                             feature_dim=self.feature_dim, seed=seed, extractor=self.name)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write to directory ``path``: config.json (with accuracies) + Keras HDF5 weights, atomically."""
        path = Path(path)
        meta = {"format": _FORMAT, "format_version": 1, "config": self.config(),
                "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
                "trained_on": self.trained_on, "name": self.name}
        with atomic_directory(path) as tmp:
            self.classifier.save_weights(str(tmp / _WEIGHTS))
            (tmp / "config.json").write_text(json.dumps(meta, indent=1))
        return path

    @classmethod
    def load(cls, path) -> "FeatureExtractor":
        """Read an extractor written by :meth:`save`."""
        path = Path(path)
        meta = read_config(path, _FORMAT, FeatureExtractorError)
        try:
            ext = cls(**meta["config"])
        except TypeError as e:
            raise FeatureExtractorError(f"{path / 'config.json'}: bad configuration: {e}") from None
        load_weights(path, [ext.classifier], [_WEIGHTS], FeatureExtractorError)
        ext.train_accuracy, ext.test_accuracy = meta.get("train_accuracy"), meta.get("test_accuracy")
        ext.trained_on = meta.get("trained_on")
        return ext
