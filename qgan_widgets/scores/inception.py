"""An optional Inception FID on the RGB bands, from InceptionV3 weights the user supplies.

The toolkit's own image score is the Frechet distance in a small SAT-4 classifier's features
(:mod:`qgan_widgets.scores.features`): InceptionV3 was trained on 299x299 ImageNet photographs, ignores the
NIR band and cannot be downloaded here. Readers of GAN papers still expect an FID, so when a user
has Keras' ImageNet weights for InceptionV3 on disk this module computes one, the usual way: the
2048 pool features of the last average-pooling layer, images resized bilinearly to 299x299 and
scaled to [-1, 1] (``keras.applications.inception_v3.preprocess_input``), Frechet distance in
float64 (:func:`qgan_widgets.scores.metrics.frechet_distance`). Only the R, G, B bands enter. Upscaled
28x28 tiles are far from what Inception was trained on, so these values compare runs of this
toolkit with one another, not with FIDs published for other data sets; and with fewer images than
features (2,048) the covariances are rank-deficient and the FID biased upwards: compare at equal N.

Where the weights come from (:func:`find_weights`): an explicit path, else ``$QGAN_INCEPTION_WEIGHTS``,
else the first ``*.h5`` file in ``data/inception/`` of the checkout. Either Keras file works:
``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`` (no classifier, any image size >= 75)
or the full ``inception_v3_weights_tf_dim_ordering_tf_kernels.h5`` (299x299 only). Nothing is ever
downloaded. ``python -m qgan_widgets demo`` adds ``fid_inception`` to its summary when weights are
found (about 33 images/s at 299x299 on 2 cores: 1 minute for ``--quick``'s 4 x 500 images, about 4
for the full demo's 4 x 2,000).

    ext = InceptionFeatures("data/inception/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
    ext.score(real_tiles, generated_tiles)     # a metrics.Score named "FID (Inception, RGB)"
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from qgan_widgets.scores import metrics
from qgan_widgets.data.cache import checkout_root

__all__ = ["InceptionFeatures", "InceptionError", "find_weights", "ENV_VAR", "FEATURE_DIM"]

ENV_VAR = "QGAN_INCEPTION_WEIGHTS"
FEATURE_DIM = 2048
MIN_SIZE = 75  # the smallest input InceptionV3 accepts


class InceptionError(ValueError):
    """Inception weights cannot be found or used, or images do not fit (the message says which)."""


def find_weights(path=None) -> Path | None:
    """The InceptionV3 weights file to use: ``path``, else ``$QGAN_INCEPTION_WEIGHTS``, else the
    first ``*.h5`` in ``<checkout>/data/inception/``; ``None`` when there is none. A path that was
    given (argument or environment variable) but does not exist raises :class:`InceptionError`."""
    for given, what in ((path, "weights path"), (os.environ.get(ENV_VAR) or None, f"${ENV_VAR}")):
        if given is not None:
            p = Path(given).expanduser()
            if not p.is_file():
                raise InceptionError(f"Inception {what} {p}: no such file (give Keras' InceptionV3 "
                                     f"ImageNet weights, an .h5 file)")
            return p
    root = checkout_root()
    if root is not None and (root / "data" / "inception").is_dir():
        found = sorted((root / "data" / "inception").glob("*.h5"))
        return found[0] if found else None
    return None


class InceptionFeatures:
    """InceptionV3 pool features (2048-d) of the RGB bands of 4-band tiles, from local weights.

    ``InceptionFeatures(weights, image_size=299, batch_size=64)``: ``weights`` an ``.h5`` file of
    Keras' InceptionV3 ImageNet weights (with or without the classifier); ``image_size`` the side
    the tiles are resized to (299 as in the standard FID; at least 75; the full-model file needs
    299). Same interface as :class:`~qgan_widgets.scores.features.FeatureExtractor` where it matters:
    ``name``, ``feature_dim``, :meth:`features`, :meth:`stats`, :meth:`score`.
    """

    feature_dim = FEATURE_DIM

    def __init__(self, weights, image_size: int = 299, batch_size: int = 64):
        if int(image_size) != image_size or image_size < MIN_SIZE:
            raise InceptionError(f"InceptionFeatures: image_size must be an integer >= {MIN_SIZE}, got {image_size!r}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise InceptionError(f"InceptionFeatures: batch_size must be a positive integer, got {batch_size!r}")
        self.weights = Path(weights).expanduser()
        if not self.weights.is_file():
            raise InceptionError(f"Inception weights {self.weights}: no such file")
        self.image_size, self.batch_size = int(image_size), int(batch_size)
        self._model = self._load()

    def _load(self):
        import tf_keras as keras

        from qgan_widgets._tf import tf

        s = self.image_size
        try:
            model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                                   input_shape=(s, s, 3))
            model.load_weights(str(self.weights))
        except Exception as notop_error:  # perhaps the full model's file (with the classifier)
            if s != 299:
                raise InceptionError(f"Inception weights {self.weights}: not the no-top InceptionV3 "
                                     f"weights ({notop_error}); a full-model file needs image_size 299") from None
            try:
                full = keras.applications.InceptionV3(include_top=True, weights=None)
                full.load_weights(str(self.weights))
                model = keras.Model(full.input, full.get_layer("avg_pool").output)
            except Exception as e:
                raise InceptionError(f"Inception weights {self.weights}: not Keras InceptionV3 weights, "
                                     f"with or without the classifier ({e})") from None

        @tf.function(reduce_retracing=True)
        def run(x):  # x float32 (B, h, w, 3) in [0, 1]
            x = tf.image.resize(x, (s, s), method="bilinear")
            return model(x * 2.0 - 1.0, training=False)  # inception_v3.preprocess_input

        return run

    @property
    def name(self) -> str:
        return (f"InceptionV3 pool features of the RGB bands ({FEATURE_DIM}-d, {self.weights.name}, "
                f"{self.image_size}x{self.image_size})")

    def __repr__(self) -> str:
        return f"InceptionFeatures({self.name})"

    def features(self, x, batch_size: int | None = None) -> np.ndarray:
        """float64 ``(N, 2048)`` features of tiles ``x``: uint8 ``(N, 28, 28, 4)`` (or any H x W with
        4 bands, or 3 RGB bands), or float in [0, 1]."""
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[-1] not in (3, 4):
            raise InceptionError(f"InceptionFeatures: images must have shape (N, H, W, 4) or (N, H, W, 3), "
                                 f"got {x.shape}")
        rgb = x[..., :3].astype(np.float32)
        if x.dtype == np.uint8:
            rgb /= 255.0
        elif not np.all(np.isfinite(rgb)) or rgb.min(initial=0.0) < 0.0 or rgb.max(initial=0.0) > 1.0:
            raise InceptionError("InceptionFeatures: float images must be finite and in [0, 1]")
        b = self.batch_size if batch_size is None else int(batch_size)
        out = [self._model(rgb[i:i + b]).numpy() for i in range(0, len(rgb), b)]
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, FEATURE_DIM))

    def stats(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(mean, covariance) of the features of ``x``."""
        return metrics.feature_stats(self.features(x))

    def score(self, real, fake, seed: int | None = None, name: str = "FID (Inception, RGB)",
              real_stats=None) -> metrics.Score:
        """FID between images ``real`` and ``fake`` as a :class:`~qgan_widgets.scores.metrics.Score` with
        its sample counts, feature dimension and seed. ``real_stats``: precomputed (mean, cov) of
        ``real`` to reuse across scores."""
        mu_r, sigma_r = self.stats(real) if real_stats is None else real_stats
        fd = metrics.frechet_distance(mu_r, sigma_r, *self.stats(fake))
        return metrics.Score(value=fd, name=name, n_real=len(real), n_fake=len(fake),
                             feature_dim=FEATURE_DIM, seed=seed, extractor=self.name)
