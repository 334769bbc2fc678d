"""A small convolutional VAE for 28x28x4 SAT-4 tiles, with latents bounded to [-1, 1].

The latent GAN never sees pixels: generators produce latent vectors in [-1, 1] (quantum readouts
live there) and this VAE's decoder turns them into tiles. The paper stresses that tuning the
autoencoder is crucial, so :mod:`qgan_widgets.models.vae_tuning` ships the diagnostics for it:
``vae_diagnostics`` (reconstruction error, KL per latent dimension, saturation at +-1, warnings in
plain words) and ``beta_sweep``. Notebook ``02_vae_latent_space`` teaches all of it.

How latents are bounded (the choice, and why it is exact)
    The encoder outputs a Gaussian posterior ``q(u|x) = N(mu(x), diag(sigma^2(x)))`` over an
    unbounded pre-latent ``u``. The latent is ``z = tanh(u)``: in training the decoder sees
    ``tanh(mu + sigma * eps)``, and downstream (``encode``, the GAN's real latents) the latent is
    the deterministic ``z = tanh(mu(x))``. ``decode`` takes any ``z`` in [-1, 1]. The KL term is the
    usual closed form on ``u``, ``0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2)`` against ``N(0, I)``;
    because ``tanh`` is an invertible map applied to both posterior and prior, this *equals* the KL
    between the bounded posterior and the bounded prior (``tanh`` of a standard normal), so nothing
    is approximated. Under that prior only ~2% of values lie beyond +-0.98 (``|u| > 2.3``); many
    more in the encoded data means the encoder is saturating the bound (``vae_diagnostics``
    warns).

Loss per image: sum of squared errors over the 28*28*4 values (a Gaussian decoder with fixed
variance 1/2) plus ``beta`` times the KL, plus the texture terms below when asked for.
``VAE()``'s own defaults are the plain squared-error VAE (``latent_dim=4``, ``beta=0.1``,
``base_filters=16``); :func:`train_vae` uses Adam 1e-3, batch 128 (32 for small sets), 10 epochs
(8 with ``QGAN_FAST=1``). On the stand-in, ``beta=1`` left two of four
dimensions collapsed and ``beta=0.03`` saturated one; 0.1 uses all four with almost no saturation and
the same reconstruction error.

Texture (issue 14). A squared-error decoder keeps a tile's mean colour and blurs its texture away:
the blur is the error-optimal guess of where a canopy clump or a roof edge lies, and more latent
dimensions do not change that (``python -m qgan_widgets vae-study``, ``results/vae-tuning/``). Three
optional loss terms and a decoder fix it; :data:`TUNED_VAE` combines them, and it is what workspaces
(the demo, notebooks, dashboard, sweeps) train by default:

* ``texture=w``: ``w`` times the mean squared gap between :func:`texture_statistics` of the tile and
  of its reconstruction (local strength and grain of texture, per band and shared by the bands),
  on the squared error's scale;
* ``perceptual=w``: ``w`` times the mean squared gap between a frozen auxiliary classifier's
  activations of the two (``train_vae(..., perceptual_net=)``; the pipeline trains a classifier with
  another seed than the extractor that scores, so the scores are not measured with the network the
  VAE was fitted to);
* ``consistency=w``: ``w`` times the KL divergence (nats) from that classifier's class probabilities
  for the tile to those for its reconstruction: the reconstruction must keep what tells the classes
  apart (texture and colour statistics alone left the scoring classifier recognising 88% as many
  reconstructions as real tiles; with this term 93%);
* ``decoder="canvas"``: convolutions of a smooth 7 x 7 map can paint texture only as a periodic
  pattern (the transposed convolutions' checkerboard "waffle"); the canvas decoder adds a fixed
  random field cropped where the latent says (:func:`_canvas_layer`), so texture comes out irregular.

The real tiles' texture statistics, activations and class probabilities are computed once before
training, not once per epoch. Training 10,000 tiles for 10 epochs took 205 s with
:data:`TUNED_VAE` (182 s with consistency 30) on 2 CPU cores, the plain VAE 87-95 s for 20 epochs (``results/vae-tuning/``).

Saved models are a directory with ``config.json`` and Keras HDF5 weights (``encoder.weights.h5``,
``decoder.weights.h5``), written atomically (:mod:`qgan_widgets.models.files`); no pickle.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from qgan_widgets.data.sat4 import IMAGE_SHAPE
from qgan_widgets.data.dataset import to_float
from qgan_widgets.models.files import FORMAT_VERSION, atomic_directory, load_weights, read_config

__all__ = ["VAE", "VAEError", "train_vae", "texture_statistics", "DEFAULT_EPOCHS", "FAST_EPOCHS", "DECODERS", "TUNED_VAE"]

TUNED_VAE = {"texture": 30.0, "perceptual": 10.0, "consistency": 100.0, "decoder": "canvas"}
"""The loss terms and decoder the tuning study recommends (``results/vae-tuning/report.md``):
``VAE(latent_dim=d, **TUNED_VAE)``, trained with an auxiliary classifier's
``perceptual_net(logits=True)``. It is the workspace's default
(:data:`qgan_widgets.pipeline.DEFAULT_VAE_OPTIONS`), which supplies that classifier."""
DECODERS = ("transpose", "upsample", "canvas", "canvas-lite")
"""Decoder kinds: stride-2 transposed convolutions (the original); bilinear upsampling + convolutions;
``"canvas"``: upsampling plus a texture canvas (see :func:`_canvas_layer`); ``"canvas-lite"``: the same
with its second convolution at 14 x 14 before the last upsampling instead of after it (a third less
decoder arithmetic; in the tuning study it trained in 180 s against 205 s, within this machine's
run-to-run noise, and saturated 4.9% of the latents against 0.2%: not the recommended one)."""
CANVAS_CHANNELS = 4
CANVAS_FIELD = 96


def _canvas_layer(latent_dim: int, seed: int):
    """A Keras layer ``z (B, d) -> (B, 28, 28, CANVAS_CHANNELS)``: a crop of a fixed, smooth random field
    (made from ``seed``, not trained) at an offset that is a pseudo-random function of the latent.

    A decoder built only from convolutions of a smooth 7 x 7 map can paint texture only as a periodic
    pattern (its filters repeat); irregular texture (canopy clumps, scattered roofs) needs a
    position-varying input. The crop gives each latent its own irregular canvas, deterministically
    (the same ``z`` always decodes to the same tile), and the decoder learns how much of it to show
    and in which colours. No gradient flows through the offset."""
    from qgan_widgets._tf import keras, tf

    rng = np.random.default_rng([int(seed), 4242])
    white = rng.standard_normal((CANVAS_FIELD, CANVAS_FIELD, CANVAS_CHANNELS))
    freq = np.fft.fftfreq(CANVAS_FIELD)
    radius = np.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)
    field = np.stack([np.real(np.fft.ifft2(np.fft.fft2(white[..., k]) * np.exp(-(radius * 2 * np.pi * 1.2) ** 2 / 2)))
                      for k in range(CANVAS_CHANNELS)], axis=-1)  # blurred over ~1-2 pixels: clump-sized grain
    field = ((field - field.mean()) / field.std()).astype(np.float32)
    project = rng.standard_normal((latent_dim, 2)).astype(np.float32) * 7.0
    span = CANVAS_FIELD - IMAGE_SHAPE[0]
    grid = np.arange(IMAGE_SHAPE[0], dtype=np.int32)

    class Canvas(keras.layers.Layer):
        def call(self, z):
            z = tf.stop_gradient(z)
            u = tf.math.floormod(tf.matmul(z, tf.constant(project)), 1.0)  # (B, 2) in [0, 1)
            off = tf.cast(tf.floor(u * span), tf.int32)
            rows = off[:, 0:1] + grid[None, :]  # (B, 28)
            cols = off[:, 1:2] + grid[None, :]
            return tf.gather(tf.gather(tf.constant(field), rows, axis=0), cols, axis=2, batch_dims=1)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], IMAGE_SHAPE[0], IMAGE_SHAPE[1], CANVAS_CHANNELS)

    return Canvas(name="texture_canvas")

DEFAULT_EPOCHS = 10
FAST_EPOCHS = 8
_WEIGHTS = ("encoder.weights.h5", "decoder.weights.h5")


class VAEError(ValueError):
    """A VAE cannot be built, trained, saved or loaded as asked (the message says why)."""


# ---------------------------------------------------------------------------------------------
# the model

class VAE:
    """Convolutional VAE for float [0, 1] tiles ``(N, 28, 28, 4)`` with latents in [-1, 1].

    ``VAE(latent_dim=4, beta=0.1, base_filters=16, hidden=128, seed=0, texture=0.0, perceptual=0.0,
    decoder="transpose", consistency=0.0)``; ``texture``, ``perceptual``, ``consistency`` and ``decoder`` are explained in the module
    docstring (:data:`TUNED_VAE` holds the tuning study's choice). Encoder: two stride-2
    3x3 convolutions (``base_filters``, ``2*base_filters``), a dense layer of ``hidden`` units, then
    the posterior mean and log-variance. Decoder: the mirror image with a sigmoid output. Weights are
    initialised deterministically from ``seed``. Train with :func:`train_vae`; ``beta`` here is the
    default KL weight it uses. See the module docstring for how the latent is bounded.
    """

    def __init__(self, latent_dim: int = 4, beta: float = 0.1, base_filters: int = 16,
                 hidden: int = 128, seed: int = 0, texture: float = 0.0, perceptual: float = 0.0,
                 decoder: str = "transpose", consistency: float = 0.0):
        cfg = self.make_config(latent_dim, beta, base_filters, hidden, seed, texture, perceptual, decoder,
                               consistency)
        self.decoder_kind = cfg["decoder"]
        self.latent_dim, self.beta = cfg["latent_dim"], cfg["beta"]
        self.texture, self.perceptual = cfg["texture"], cfg["perceptual"]
        self.consistency = cfg["consistency"]
        self.base_filters, self.hidden, self.seed = cfg["base_filters"], cfg["hidden"], cfg["seed"]
        self.encoder, self.decoder = self._build()
        self.history: dict[str, list] = {}
        self.trained_epochs = 0
        self._compile_inference()

    def _build(self):
        from qgan_widgets._tf import keras

        L, f, s = keras.layers, self.base_filters, self.seed
        counter = iter(range(1000))

        def init():
            return keras.initializers.GlorotUniform(seed=s * 1000 + next(counter))

        conv = dict(kernel_size=3, strides=2, padding="same", activation="relu")
        x = keras.Input(IMAGE_SHAPE, name="image")
        h = L.Conv2D(f, kernel_initializer=init(), **conv)(x)  # 14x14
        h = L.Conv2D(2 * f, kernel_initializer=init(), **conv)(h)  # 7x7
        h = L.Dense(self.hidden, activation="relu", kernel_initializer=init())(L.Flatten()(h))
        mu = L.Dense(self.latent_dim, kernel_initializer=init(), name="mu")(h)
        logvar = L.Dense(self.latent_dim, kernel_initializer=init(), name="logvar")(h)
        encoder = keras.Model(x, [mu, logvar], name="vae_encoder")

        z = keras.Input((self.latent_dim,), name="latent")
        g = L.Dense(self.hidden, activation="relu", kernel_initializer=init())(z)
        g = L.Dense(7 * 7 * 2 * f, activation="relu", kernel_initializer=init())(g)
        g = L.Reshape((7, 7, 2 * f))(g)
        up = dict(kernel_size=3, padding="same", activation="relu")
        if self.decoder_kind in ("upsample", "canvas"):  # bilinear upsampling + convolution: no checkerboard grain
            g = L.Conv2D(2 * f, kernel_initializer=init(), **up)(L.UpSampling2D(interpolation="bilinear")(g))
            g = L.Conv2D(f, kernel_initializer=init(), **up)(L.UpSampling2D(interpolation="bilinear")(g))
        elif self.decoder_kind == "canvas-lite":  # the second convolution at 14 x 14, then upsampled
            g = L.Conv2D(2 * f, kernel_initializer=init(), **up)(L.UpSampling2D(interpolation="bilinear")(g))
            g = L.UpSampling2D(interpolation="bilinear")(L.Conv2D(f, kernel_initializer=init(), **up)(g))
        else:
            g = L.Conv2DTranspose(2 * f, kernel_initializer=init(), **conv)(g)  # 14x14
            g = L.Conv2DTranspose(f, kernel_initializer=init(), **conv)(g)  # 28x28
        if self.decoder_kind.startswith("canvas"):  # + a fixed random field cropped where the latent says
            g = L.Concatenate()([g, _canvas_layer(self.latent_dim, self.seed)(z)])
            g = L.Conv2D(f, 3, padding="same", activation="relu", kernel_initializer=init())(g)
        out = L.Conv2D(IMAGE_SHAPE[-1], 3, padding="same", activation="sigmoid",
                       kernel_initializer=init())(g)
        decoder = keras.Model(z, out, name="vae_decoder")
        return encoder, decoder

    def _compile_inference(self) -> None:
        from qgan_widgets._tf import tf

        enc, dec = self.encoder, self.decoder

        @tf.function(autograph=False, input_signature=[tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32)])
        def encode_fn(x):
            return enc(x, training=False)

        @tf.function(autograph=False, input_signature=[tf.TensorSpec((None, self.latent_dim), tf.float32)])
        def decode_fn(z):
            return dec(z, training=False)

        self._encode_fn, self._decode_fn = encode_fn, decode_fn

    # -- configuration ---------------------------------------------------------------------------
    @staticmethod
    def make_config(latent_dim: int = 4, beta: float = 0.1, base_filters: int = 16,
                    hidden: int = 128, seed: int = 0, texture: float = 0.0, perceptual: float = 0.0,
                    decoder: str = "transpose", consistency: float = 0.0) -> dict:
        """The checked configuration dict of ``VAE(...)`` with these arguments, without building it."""
        for name, v in (("latent_dim", latent_dim), ("base_filters", base_filters),
                        ("hidden", hidden)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise VAEError(f"VAE: {name} must be a positive integer, got {v!r}")
        if not isinstance(beta, (int, float, np.number)) or not (math.isfinite(beta) and beta >= 0):
            raise VAEError(f"VAE: beta must be a finite number >= 0, got {beta!r}")
        for name, v in (("texture", texture), ("perceptual", perceptual), ("consistency", consistency)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not (math.isfinite(v) and v >= 0):
                raise VAEError(f"VAE: {name} must be a finite number >= 0 (the {name} term's weight), got {v!r}")
        if decoder not in DECODERS:
            raise VAEError(f"VAE: decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        return {"latent_dim": int(latent_dim), "beta": float(beta), "base_filters": int(base_filters),
                "hidden": int(hidden), "seed": int(seed), "texture": float(texture), "perceptual": float(perceptual),
                "decoder": decoder, "consistency": float(consistency)}

    def config(self) -> dict:
        """The constructor arguments (JSON-able); ``VAE(**vae.config())`` rebuilds the architecture."""
        return {"latent_dim": self.latent_dim, "beta": self.beta,
                "base_filters": self.base_filters, "hidden": self.hidden, "seed": self.seed,
                "texture": self.texture, "perceptual": self.perceptual, "decoder": self.decoder_kind,
                "consistency": self.consistency}

    def count_parameters(self) -> int:
        return int(self.encoder.count_params() + self.decoder.count_params())

    def __repr__(self) -> str:
        c = ", ".join(f"{k}={v}" for k, v in self.config().items())
        return f"VAE({c}; {self.count_parameters():,} parameters, {self.trained_epochs} epochs trained)"

    # -- inference -------------------------------------------------------------------------------
    def _images(self, x) -> np.ndarray:
        a = to_float(x)
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or a.shape[1:] != IMAGE_SHAPE:
            raise VAEError(f"VAE: images must have shape (N, 28, 28, 4), got {a.shape}")
        return a

    def posterior(self, x, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Mean and log-variance ``(N, latent_dim)`` float32 of the unbounded posterior ``q(u|x)``."""
        a = self._images(x)
        mus, lvs = [], []
        for i in range(0, len(a), batch_size):
            mu, lv = self._encode_fn(a[i:i + batch_size])
            mus.append(mu.numpy())
            lvs.append(lv.numpy())
        if not mus:
            return (np.zeros((0, self.latent_dim), np.float32),) * 2
        return np.concatenate(mus), np.concatenate(lvs)

    def encode(self, x, batch_size: int = 1024) -> np.ndarray:
        """Deterministic latents ``tanh(mu(x))``: float32 ``(N, latent_dim)`` in [-1, 1].

        ``x``: uint8 images or float images in [0, 1], ``(N, 28, 28, 4)`` (or one image).
        """
        return np.tanh(self.posterior(x, batch_size)[0]).astype(np.float32)

    def decode(self, z, batch_size: int = 1024) -> np.ndarray:
        """Images float32 ``(N, 28, 28, 4)`` in [0, 1] from latents ``z`` ``(N, latent_dim)`` in [-1, 1]."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise VAEError(f"VAE: latents must have shape (N, {self.latent_dim}), got {z.shape}")
        if not np.all(np.isfinite(z)):
            raise VAEError("VAE: latents contain NaN or inf")
        if z.size and np.max(np.abs(z)) > 1.0 + 1e-5:
            raise VAEError(f"VAE: latents must lie in [-1, 1], got values up to {np.max(np.abs(z)):.3g}")
        out = [self._decode_fn(z[i:i + batch_size]).numpy() for i in range(0, len(z), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, *IMAGE_SHAPE), np.float32)

    def reconstruct(self, x, batch_size: int = 1024) -> np.ndarray:
        """``decode(encode(x))``: the deterministic reconstruction, float32 in [0, 1]."""
        return self.decode(self.encode(x, batch_size), batch_size)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the VAE to directory ``path`` (config.json + Keras HDF5 weights), atomically.

        The training history is kept in config.json; the optimizer state is not saved (training a
        loaded VAE further starts a fresh Adam)."""
        path = Path(path)
        history = {k: [None if isinstance(v, float) and not math.isfinite(v) else v for v in vals]
                   for k, vals in self.history.items()}
        meta = {"format": "qgan_widgets.VAE", "format_version": FORMAT_VERSION,
                "config": self.config(), "trained_epochs": self.trained_epochs,
                "latent_bounding": "z = tanh(mu); KL on the unbounded Gaussian", "history": history}
        with atomic_directory(path) as tmp:
            self.encoder.save_weights(str(tmp / _WEIGHTS[0]))
            self.decoder.save_weights(str(tmp / _WEIGHTS[1]))
            (tmp / "config.json").write_text(json.dumps(meta, indent=1, allow_nan=False))
        return path

    @classmethod
    def load(cls, path) -> "VAE":
        """Read a VAE written by :meth:`save`; :class:`VAEError` names what is missing or wrong."""
        path = Path(path)
        meta = read_config(path, "qgan_widgets.VAE", VAEError)
        try:
            vae = cls(**meta["config"])
        except TypeError as e:
            raise VAEError(f"{path / 'config.json'}: bad VAE configuration: {e}") from None
        load_weights(path, [vae.encoder, vae.decoder], _WEIGHTS, VAEError)
        vae.trained_epochs = int(meta.get("trained_epochs", 0))
        vae.history = meta.get("history") or {}
        return vae


# ---------------------------------------------------------------------------------------------
# training

TEXTURE_BLOCK = 7
"""Side of the square blocks (a 4 x 4 grid on a 28 x 28 tile) over which texture is measured."""


def texture_statistics(x):
    """Local texture of float tiles ``x`` (B, 28, 28, 4) as a (B, 304) tensor, at two scales: per
    7 x 7 block (a 4 x 4 grid) and band, the root mean square of the horizontal and vertical pixel
    differences and the standard deviation; per 14 x 14 block (2 x 2) and band, the same two
    differences of the tile averaged over 2 x 2 pixels (the grain of canopy clumps and roofs rather
    than of single pixels); and per 7 x 7 block the three statistics of the bands' mean (real texture
    is shared by the bands: a shadow is dark in all four, so matching it rules out rainbow noise).
    A mean-squared-error decoder blurs texture away (the blur is the error-optimal guess of where a
    clump or an edge lies); matching these statistics (``VAE(texture=w)``) asks for texture of the
    right strength and grain in the right block, whatever its phase."""
    from qgan_widgets._tf import tf

    def diffs(v, block):
        dx = tf.pad(v[:, :, 1:] - v[:, :, :-1], [[0, 0], [0, 0], [0, 1], [0, 0]])
        dy = tf.pad(v[:, 1:] - v[:, :-1], [[0, 0], [0, 1], [0, 0], [0, 0]])
        return [tf.sqrt(pool(tf.square(d), block) + 1e-6) for d in (dx, dy)]

    def pool(v, block):
        return tf.nn.avg_pool2d(v, block, block, "VALID")

    def sd(v):
        mean = pool(v, TEXTURE_BLOCK)
        return tf.sqrt(tf.nn.relu(pool(tf.square(v), TEXTURE_BLOCK) - tf.square(mean)) + 1e-6)

    luminance = tf.reduce_mean(x, axis=-1, keepdims=True)  # texture shared by the bands, as in real tiles
    parts = [*diffs(x, TEXTURE_BLOCK), sd(x), *diffs(pool(x, 2), TEXTURE_BLOCK), *diffs(luminance, TEXTURE_BLOCK),
             sd(luminance)]
    batch = tf.shape(x)[0]
    return tf.concat([tf.reshape(p, (batch, -1)) for p in parts], axis=1)


def _beta_for(beta, anneal_epochs: int, epoch: int, base: float) -> float:
    if callable(beta):
        return float(beta(epoch))
    target = base if beta is None else float(beta)
    if anneal_epochs > 0:
        return target * min(1.0, (epoch + 1) / anneal_epochs)
    return target


def split_validation(x, validation, seed: int):
    if validation is None or (np.isscalar(validation) and float(validation) == 0.0):
        return x, None
    if np.isscalar(validation):
        frac = float(validation)
        if not 0.0 < frac < 1.0:
            raise VAEError(f"train_vae: validation must be a fraction in (0, 1), images, or None, got {validation!r}")
        n_val = max(1, int(round(len(x) * frac)))
        if n_val >= len(x):
            raise VAEError(f"train_vae: {len(x)} images are too few to hold out {frac:.0%} for validation")
        idx = np.random.default_rng(seed + 7919).permutation(len(x))
        return x[np.sort(idx[n_val:])], x[np.sort(idx[:n_val])]
    return x, np.asarray(validation)


def train_vae(vae: VAE, x, epochs: int | None = None, batch_size: int | None = None, beta=None,
              anneal_epochs: int = 0, validation=0.1, learning_rate: float = 1e-3, seed: int = 0,
              verbose: bool = True, progress: Callable[[int, dict], None] | None = None,
              perceptual_net: Callable | None = None) -> dict:
    """Train ``vae`` on images ``x`` (uint8 or float [0, 1], ``(N, 28, 28, 4)``); return the history.

    - ``epochs``: default 10 (8 when ``QGAN_FAST=1``).
    - ``batch_size``: default 128, or 32 below 5,000 training images (small sets need more,
      smaller steps: 2,000 tiles x 12 epochs at 32 reconstruct as well as 10,000 x 20 at 128).
    - ``beta``: KL weight; None uses ``vae.beta``; a callable ``beta(epoch) -> float`` gives any
      schedule. ``anneal_epochs > 0`` warms the weight up linearly from ``beta/anneal_epochs`` to
      ``beta`` over that many epochs (helps against posterior collapse at large ``beta``).
    - ``validation``: a fraction of ``x`` held out (default 0.1, chosen with ``seed``), validation
      images, or None.
    - ``seed``: batch order and the reparameterisation noise (weights are seeded by the VAE).
    - ``perceptual_net``: for a VAE with a perceptual or class-consistency term, a function from float
      tiles to the frozen activations to match, or to ``(activations, class logits)`` (the consistency
      term needs the logits): :meth:`qgan_widgets.scores.FeatureExtractor.perceptual_net` ``(logits=True)``.
    - ``verbose`` prints one line per epoch; ``progress(epoch, logs)`` is called after each epoch.

    The history dict has one list per key: ``epoch, beta, loss, recon_mse, kl, val_recon_mse,
    val_kl, seconds``; ``recon_mse`` is per value (image pixels x bands), ``kl`` in nats per image
    summed over latent dimensions. It is also appended to ``vae.history``. Notebook ``02_vae_latent_space``.
    """
    from qgan_widgets import FAST
    from qgan_widgets._tf import keras, tf

    epochs = (FAST_EPOCHS if FAST else DEFAULT_EPOCHS) if epochs is None else int(epochs)
    x = np.asarray(x)
    if batch_size is None:
        batch_size = 32 if len(x) < 5000 else 128
    if epochs < 0 or batch_size < 1:
        raise VAEError(f"train_vae: epochs must be >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise VAEError(f"train_vae: images must have shape (N, 28, 28, 4), got {x.shape}")
    if len(x) < 2:
        raise VAEError(f"train_vae: at least 2 images are needed, got {len(x)}")
    uses_net = vae.perceptual > 0 or vae.consistency > 0
    if uses_net and perceptual_net is None:
        term = "a perceptual" if vae.perceptual > 0 else "a class-consistency"
        raise VAEError(f"train_vae: this VAE has {term} term (perceptual {vae.perceptual:g}, consistency "
                       f"{vae.consistency:g}) and needs perceptual_net=, a function from tiles to the activations "
                       f"to match (the pipeline passes an auxiliary classifier's: FeatureExtractor.perceptual_net())")
    x_train, x_val = split_validation(x, validation, seed)
    x_train = x_train if x_train.dtype == np.uint8 else to_float(x_train)
    if x_val is not None:
        x_val = vae._images(x_val)

    opt = keras.optimizers.Adam(learning_rate)
    noise = tf.random.Generator.from_seed(seed)
    variables = vae.encoder.trainable_variables + vae.decoder.trainable_variables
    n_values = float(np.prod(IMAGE_SHAPE))

    def net(images):  # (activations, logits or None)
        out = perceptual_net(images)
        return tuple(out) if isinstance(out, (tuple, list)) else (out, None)

    if vae.consistency > 0 and net(tf.zeros((1, *IMAGE_SHAPE)))[1] is None:  # said before any tracing
        raise VAEError("train_vae: this VAE has a class-consistency term and perceptual_net returns no "
                       "logits; pass FeatureExtractor.perceptual_net(logits=True)")

    @tf.function(input_signature=[tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32)])
    def targets(xb):  # what the tile's reconstruction is asked to match, beyond its pixels
        out = {}
        if vae.texture > 0:
            out["stats"] = texture_statistics(xb)
        if uses_net:
            out["act"], logits = net(xb)
            if vae.consistency > 0:
                out["logp"] = tf.nn.log_softmax(logits)
        return out

    # The real tiles' targets do not change during training: computed once, not once per epoch.
    chunks = [targets(to_float(x_train[i:i + 1024])) for i in range(0, len(x_train), 1024)] \
        if vae.texture > 0 or uses_net else [{}]
    fixed = {k: np.concatenate([c[k].numpy() for c in chunks]) for k in chunks[0]}

    def losses(xb, tb, training):
        mu, logvar = vae.encoder(xb, training=training)
        logvar = tf.clip_by_value(logvar, -12.0, 8.0)
        u = mu + tf.exp(0.5 * logvar) * noise.normal(tf.shape(mu))
        x_hat = vae.decoder(tf.tanh(u), training=training)
        sse = tf.reduce_sum(tf.square(xb - x_hat), axis=[1, 2, 3])
        if vae.texture > 0:  # on the SSE's scale: weight x values x mean squared statistic gap
            gap = tf.square(tb["stats"] - texture_statistics(x_hat))
            sse += vae.texture * n_values * tf.reduce_mean(gap, axis=1)
        if uses_net:
            fx, (fh, logits) = tb["act"], net(x_hat)
            if vae.perceptual > 0:  # feature matching in a frozen auxiliary classifier's activations
                sse += vae.perceptual * n_values * tf.reduce_mean(tf.square(fx - fh),
                                                                  axis=list(range(1, fx.shape.rank)))
            if vae.consistency > 0:  # KL(p(class | x) || p(class | x_hat)) in that classifier, nats
                logp = tb["logp"]
                sse += vae.consistency * tf.reduce_sum(tf.exp(logp) * (logp - tf.nn.log_softmax(logits)), axis=1)
        kl = 0.5 * tf.reduce_sum(tf.square(mu) + tf.exp(logvar) - 1.0 - logvar, axis=1)
        return tf.reduce_mean(sse), tf.reduce_mean(kl)

    @tf.function(input_signature=[tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32),
                                  {k: tf.TensorSpec((None, *f.shape[1:]), tf.float32) for k, f in fixed.items()},
                                  tf.TensorSpec((), tf.float32)])
    def train_step(xb, tb, beta_t):
        with tf.GradientTape() as tape:
            sse, kl = losses(xb, tb, True)
            loss = sse + beta_t * kl
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, sse, kl

    @tf.function(input_signature=[tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32)])
    def eval_step(xb):
        mu, logvar = vae.encoder(xb, training=False)
        x_hat = vae.decoder(tf.tanh(mu), training=False)
        sse = tf.reduce_sum(tf.square(xb - x_hat), axis=[1, 2, 3])
        logvar = tf.clip_by_value(logvar, -12.0, 8.0)
        kl = 0.5 * tf.reduce_sum(tf.square(mu) + tf.exp(logvar) - 1.0 - logvar, axis=1)
        return tf.reduce_sum(sse), tf.reduce_sum(kl)

    history: dict[str, list] = {k: [] for k in ("epoch", "beta", "loss", "recon_mse", "kl",
                                                "val_recon_mse", "val_kl", "seconds")}
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        b = _beta_for(beta, anneal_epochs, epoch, vae.beta)
        if not (math.isfinite(b) and b >= 0):
            raise VAEError(f"train_vae: beta for epoch {epoch} is {b!r}; it must be finite and >= 0")
        order = rng.permutation(len(x_train))
        tot = np.zeros(3)
        for i in range(0, len(order), batch_size):
            idx = np.sort(order[i:i + batch_size])
            xb = to_float(x_train[idx])
            out = train_step(xb, {k: f[idx] for k, f in fixed.items()}, np.float32(b))
            tot += np.array([float(v) for v in out]) * len(idx)
        tot /= len(order)
        if not np.all(np.isfinite(tot)):
            raise VAEError(f"train_vae: the loss became NaN/inf in epoch {epoch + 1}; lower the "
                           f"learning rate ({learning_rate}) or beta ({b})")
        val_mse = val_kl = math.nan
        if x_val is not None and len(x_val):
            sums = np.zeros(2)
            for i in range(0, len(x_val), 1024):
                sums += [float(v) for v in eval_step(x_val[i:i + 1024])]
            val_mse, val_kl = sums[0] / len(x_val) / n_values, sums[1] / len(x_val)
        vae.trained_epochs += 1
        logs = {"epoch": vae.trained_epochs, "beta": b, "loss": tot[0],
                "recon_mse": tot[1] / n_values, "kl": tot[2], "val_recon_mse": val_mse,
                "val_kl": val_kl, "seconds": time.perf_counter() - t0}
        for k, v in logs.items():
            history[k].append(float(v) if k != "epoch" else int(v))
            vae.history.setdefault(k, []).append(history[k][-1])
        if verbose:
            val = f", val recon MSE {val_mse:.5f}" if x_val is not None else ""
            print(f"[vae] epoch {epoch + 1}/{epochs}: recon MSE {logs['recon_mse']:.5f}{val}, "
                  f"KL {tot[2]:.2f} nats, beta {b:g} ({logs['seconds']:.1f} s)")
        if progress is not None:
            progress(epoch, logs)
    return history
