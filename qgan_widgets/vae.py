"""A small convolutional VAE for 28x28x4 SAT-4 tiles, with latents bounded to [-1, 1].

The latent GAN never sees pixels: generators produce latent vectors in [-1, 1] (quantum readouts
live there) and this VAE's decoder turns them into tiles. The paper stresses that tuning the
autoencoder is crucial, so the module ships the diagnostics for it: :func:`vae_diagnostics`
(reconstruction error, KL per latent dimension, saturation at +-1, warnings in plain words) and
:func:`beta_sweep`. Notebook ``02_vae_latent_space`` teaches all of it.

How latents are bounded (the choice, and why it is exact)
    The encoder outputs a Gaussian posterior ``q(u|x) = N(mu(x), diag(sigma^2(x)))`` over an
    unbounded pre-latent ``u``. The latent is ``z = tanh(u)``: in training the decoder sees
    ``tanh(mu + sigma * eps)``, and downstream (``encode``, the GAN's real latents) the latent is
    the deterministic ``z = tanh(mu(x))``. ``decode`` takes any ``z`` in [-1, 1]. The KL term is the
    usual closed form on ``u``, ``0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2)`` against ``N(0, I)``;
    because ``tanh`` is an invertible map applied to both posterior and prior, this *equals* the KL
    between the bounded posterior and the bounded prior (``tanh`` of a standard normal), so nothing
    is approximated. Under that prior only ~2% of values lie beyond +-0.98 (``|u| > 2.3``); many
    more in the encoded data means the encoder is saturating the bound (:func:`vae_diagnostics`
    warns).

Loss per image: sum of squared errors over the 28*28*4 values (a Gaussian decoder with fixed
variance 1/2) plus ``beta`` times the KL. Defaults: ``latent_dim=4``, ``beta=0.1``,
``base_filters=16``, Adam 1e-3, batch 128 (32 for small sets), 20 epochs (12 with ``QGAN_FAST=1``). On the stand-in,
``beta=1`` left two of four dimensions collapsed and ``beta=0.03`` saturated one; 0.1 uses all four
with almost no saturation and the same reconstruction error. Training 10,000 tiles x 20 epochs takes
~25 s on 2 CPU cores (2,000 x 12 in ``QGAN_FAST`` mode: ~10 s).

Saved models are a directory with ``config.json`` and Keras HDF5 weights (``encoder.weights.h5``,
``decoder.weights.h5``), written atomically; no pickle.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from qgan_widgets.data import IMAGE_SHAPE, to_float

__all__ = [
    "VAE",
    "VAEError",
    "train_vae",
    "vae_diagnostics",
    "beta_sweep",
    "SATURATION_LEVEL",
    "COLLAPSE_KL",
]

SATURATION_LEVEL = 0.98
"""A latent value with ``|z| > 0.98`` counts as saturated at the bound."""
SATURATION_WARN = 0.05
"""Warn when more than this share of encoded latent values saturate (the prior has ~2%)."""
COLLAPSE_KL = 0.02
"""A latent dimension whose mean KL (nats) is below this carries no information: collapsed."""
EXPLAINED_WARN = 0.6
"""Warn when reconstructions explain less than this share of the pixel variance."""
DEFAULT_EPOCHS = 20
FAST_EPOCHS = 12
FORMAT_VERSION = 1
_WEIGHTS = ("encoder.weights.h5", "decoder.weights.h5")


class VAEError(ValueError):
    """A VAE cannot be built, trained, saved or loaded as asked (the message says why)."""


# ---------------------------------------------------------------------------------------------
# the model

class VAE:
    """Convolutional VAE for float [0, 1] tiles ``(N, 28, 28, 4)`` with latents in [-1, 1].

    ``VAE(latent_dim=4, beta=0.1, base_filters=16, hidden=128, seed=0)``. Encoder: two stride-2
    3x3 convolutions (``base_filters``, ``2*base_filters``), a dense layer of ``hidden`` units, then
    the posterior mean and log-variance. Decoder: the mirror image with a sigmoid output. Weights are
    initialised deterministically from ``seed``. Train with :func:`train_vae`; ``beta`` here is the
    default KL weight it uses. See the module docstring for how the latent is bounded.
    """

    def __init__(self, latent_dim: int = 4, beta: float = 0.1, base_filters: int = 16,
                 hidden: int = 128, seed: int = 0):
        cfg = self.make_config(latent_dim, beta, base_filters, hidden, seed)
        self.latent_dim, self.beta = cfg["latent_dim"], cfg["beta"]
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
        g = L.Conv2DTranspose(2 * f, kernel_initializer=init(), **conv)(g)  # 14x14
        g = L.Conv2DTranspose(f, kernel_initializer=init(), **conv)(g)  # 28x28
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
                    hidden: int = 128, seed: int = 0) -> dict:
        """The checked configuration dict of ``VAE(...)`` with these arguments, without building it."""
        for name, v in (("latent_dim", latent_dim), ("base_filters", base_filters),
                        ("hidden", hidden)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise VAEError(f"VAE: {name} must be a positive integer, got {v!r}")
        if not isinstance(beta, (int, float, np.number)) or not (math.isfinite(beta) and beta >= 0):
            raise VAEError(f"VAE: beta must be a finite number >= 0, got {beta!r}")
        return {"latent_dim": int(latent_dim), "beta": float(beta), "base_filters": int(base_filters),
                "hidden": int(hidden), "seed": int(seed)}

    def config(self) -> dict:
        """The constructor arguments (JSON-able); ``VAE(**vae.config())`` rebuilds the architecture."""
        return {"latent_dim": self.latent_dim, "beta": self.beta,
                "base_filters": self.base_filters, "hidden": self.hidden, "seed": self.seed}

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
# saving helpers (shared with qgan_widgets.features)

@contextlib.contextmanager
def atomic_directory(path: Path):
    """Yield a fresh temporary directory beside ``path``; on success it replaces ``path``.

    On an error or interrupt the temporary directory is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_config(path: Path, kind: str, error: type[Exception]) -> dict:
    """Read and check ``path/config.json`` written by a ``save`` of ``kind``."""
    cfg = Path(path) / "config.json"
    if not Path(path).is_dir():
        raise error(f"{path}: no saved model here (expected a directory with config.json)")
    try:
        meta = json.loads(cfg.read_text())
    except FileNotFoundError:
        raise error(f"{path}: config.json is missing") from None
    except (OSError, ValueError) as e:
        raise error(f"{cfg}: unreadable ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != kind or "config" not in meta:
        raise error(f"{cfg}: not a saved {kind} (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise error(f"{cfg}: written by a newer qgan_widgets (format {meta['format_version']})")
    return meta


def load_weights(path: Path, models, files, error: type[Exception]) -> None:
    for model, name in zip(models, files):
        f = Path(path) / name
        if not f.is_file():
            raise error(f"{path}: weights file {name} is missing")
        try:
            model.load_weights(str(f))
        except (OSError, ValueError) as e:
            raise error(f"{f}: the weights do not fit the configured architecture or are "
                        f"corrupt ({str(e).splitlines()[0][:200]})") from None


# ---------------------------------------------------------------------------------------------
# training

def _beta_for(beta, anneal_epochs: int, epoch: int, base: float) -> float:
    if callable(beta):
        return float(beta(epoch))
    target = base if beta is None else float(beta)
    if anneal_epochs > 0:
        return target * min(1.0, (epoch + 1) / anneal_epochs)
    return target


def _split_validation(x, validation, seed: int):
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
              verbose: bool = True, progress: Callable[[int, dict], None] | None = None) -> dict:
    """Train ``vae`` on images ``x`` (uint8 or float [0, 1], ``(N, 28, 28, 4)``); return the history.

    - ``epochs``: default 20 (12 when ``QGAN_FAST=1``).
    - ``batch_size``: default 128, or 32 below 5,000 training images (small sets need more,
      smaller steps: 2,000 tiles x 12 epochs at 32 reconstruct as well as 10,000 x 20 at 128).
    - ``beta``: KL weight; None uses ``vae.beta``; a callable ``beta(epoch) -> float`` gives any
      schedule. ``anneal_epochs > 0`` warms the weight up linearly from ``beta/anneal_epochs`` to
      ``beta`` over that many epochs (helps against posterior collapse at large ``beta``).
    - ``validation``: a fraction of ``x`` held out (default 0.1, chosen with ``seed``), validation
      images, or None.
    - ``seed``: batch order and the reparameterisation noise (weights are seeded by the VAE).
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
    x_train, x_val = _split_validation(x, validation, seed)
    x_train = x_train if x_train.dtype == np.uint8 else to_float(x_train)
    if x_val is not None:
        x_val = vae._images(x_val)

    opt = keras.optimizers.Adam(learning_rate)
    noise = tf.random.Generator.from_seed(seed)
    variables = vae.encoder.trainable_variables + vae.decoder.trainable_variables
    n_values = float(np.prod(IMAGE_SHAPE))

    def losses(xb, training):
        mu, logvar = vae.encoder(xb, training=training)
        logvar = tf.clip_by_value(logvar, -12.0, 8.0)
        u = mu + tf.exp(0.5 * logvar) * noise.normal(tf.shape(mu))
        x_hat = vae.decoder(tf.tanh(u), training=training)
        sse = tf.reduce_sum(tf.square(xb - x_hat), axis=[1, 2, 3])
        kl = 0.5 * tf.reduce_sum(tf.square(mu) + tf.exp(logvar) - 1.0 - logvar, axis=1)
        return tf.reduce_mean(sse), tf.reduce_mean(kl)

    @tf.function(input_signature=[tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32),
                                  tf.TensorSpec((), tf.float32)])
    def train_step(xb, beta_t):
        with tf.GradientTape() as tape:
            sse, kl = losses(xb, True)
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
            out = train_step(xb, np.float32(b))
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


# ---------------------------------------------------------------------------------------------
# diagnostics

def vae_diagnostics(vae: VAE, x, batch_size: int = 1024) -> dict:
    """Check a trained VAE on images ``x``: reconstruction, KL per dimension, saturation, warnings.

    Returns a dict: ``n_images``, ``recon_mse`` (per value, images in [0, 1]), ``pixel_variance``,
    ``explained_variance`` (1 - recon_mse / pixel_variance), ``kl_per_dim`` (mean KL in nats per
    latent dimension; ~0 means posterior collapse), ``collapsed_dims`` (KL below
    ``COLLAPSE_KL`` = 0.02), ``latent_std`` per dimension, ``saturation`` (share of encoded values
    with ``|z| > 0.98``; ~0.02 for the prior) and ``saturation_per_dim``, and ``warnings``: plain
    sentences, empty when all looks fine. Notebook ``02_vae_latent_space``.
    """
    a = vae._images(x)
    if len(a) < 2:
        raise VAEError(f"vae_diagnostics: at least 2 images are needed, got {len(a)}")
    mu, logvar = (v.astype(np.float64) for v in vae.posterior(a, batch_size))
    logvar = np.clip(logvar, -12.0, 8.0)
    z = np.tanh(mu)
    recon = vae.decode(z.astype(np.float32), batch_size)
    mse = float(np.mean((recon.astype(np.float64) - a) ** 2))
    var = float(np.var(a, dtype=np.float64))
    explained = 1.0 - mse / var if var > 0 else math.nan
    kl = (0.5 * (mu ** 2 + np.exp(logvar) - 1.0 - logvar)).mean(axis=0)
    sat_dim = (np.abs(z) > SATURATION_LEVEL).mean(axis=0)
    sat = float(sat_dim.mean())
    collapsed = [int(i) for i in np.flatnonzero(kl < COLLAPSE_KL)]
    warnings = []
    if collapsed:
        warnings.append(
            f"posterior collapse: latent dimension(s) {collapsed} carry almost no information "
            f"(KL < {COLLAPSE_KL} nats); lower beta, anneal it (anneal_epochs), or use fewer latent "
            f"dimensions")
    if sat > SATURATION_WARN:
        worst = int(np.argmax(sat_dim))
        warnings.append(
            f"{sat:.0%} of latent values sit at the +-1 bound (|z| > {SATURATION_LEVEL}; worst: "
            f"dimension {worst} with {sat_dim[worst]:.0%}); a generator cannot reach them easily: "
            f"raise beta")
    if math.isfinite(explained) and explained < EXPLAINED_WARN:
        warnings.append(
            f"reconstructions are poor: they explain only {explained:.0%} of the pixel variance "
            f"(MSE {mse:.4f}); train longer, lower beta, or use more latent dimensions")
    return {"n_images": int(len(a)), "latent_dim": vae.latent_dim, "recon_mse": mse,
            "pixel_variance": var, "explained_variance": explained,
            "kl_per_dim": [float(v) for v in kl], "kl_total": float(kl.sum()),
            "collapsed_dims": collapsed, "latent_std": [float(v) for v in z.std(axis=0)],
            "saturation": sat, "saturation_per_dim": [float(v) for v in sat_dim],
            "warnings": warnings}


def beta_sweep(x, betas=(0.03, 0.1, 0.3, 1.0), latent_dims=(4,), epochs: int | None = None,
               extractor=None, x_eval=None, seed: int = 0, base_filters: int = 16,
               batch_size: int | None = None, anneal_epochs: int = 0, verbose: bool = True):
    """Train one VAE per (latent_dim, beta) and tabulate how well each serves a latent GAN.

    ``x``: training images; ``x_eval``: held-out images to judge on (default: 20% of ``x`` held
    out with ``seed``). With a feature ``extractor`` (a :class:`qgan_widgets.features.FeatureExtractor`
    or anything with ``score(real, fake, seed) -> Score``) each row also gets ``floor_fd``, the
    reconstruction floor as :class:`qgan_widgets.pipeline.Workspace` computes it: FD between the
    extractor's features of the held-out images and of reconstructions of as many training images,
    what a latent GAN matching the real latents exactly would score on that VAE.

    Returns a ``pandas.DataFrame``, one row per model: ``latent_dim, beta, recon_mse,
    explained_variance, floor_fd, kl_mean, kl_min, kl_max, collapsed_dims, saturation, warnings,
    train_seconds``. Notebook ``02_vae_latent_space``.
    """
    import pandas as pd

    x = np.asarray(x)
    if x_eval is None:
        x, x_eval = _split_validation(x, 0.2, seed)
    x_floor = x[np.sort(np.random.default_rng(seed).permutation(len(x))[:len(x_eval)])]
    rows = []
    for latent_dim in latent_dims:
        for beta in betas:
            t0 = time.perf_counter()
            vae = VAE(latent_dim=latent_dim, beta=beta, base_filters=base_filters, seed=seed)
            train_vae(vae, x, epochs=epochs, batch_size=batch_size, validation=None, seed=seed,
                      anneal_epochs=anneal_epochs, verbose=False)
            seconds = time.perf_counter() - t0
            d = vae_diagnostics(vae, x_eval)
            floor = math.nan
            if extractor is not None:
                floor = float(extractor.score(x_eval, vae.reconstruct(x_floor), seed=seed).value)
            kl = np.array(d["kl_per_dim"])
            rows.append({"latent_dim": latent_dim, "beta": float(beta), "recon_mse": d["recon_mse"],
                         "explained_variance": d["explained_variance"], "floor_fd": floor,
                         "kl_mean": float(kl.mean()), "kl_min": float(kl.min()),
                         "kl_max": float(kl.max()), "collapsed_dims": len(d["collapsed_dims"]),
                         "saturation": d["saturation"], "warnings": " | ".join(d["warnings"]),
                         "train_seconds": seconds})
            if verbose:
                r = rows[-1]
                print(f"[beta_sweep] latent_dim {latent_dim}, beta {beta:g}: recon MSE "
                      f"{r['recon_mse']:.5f}, floor FD {floor:.3g}, KL/dim {r['kl_min']:.2f}.."
                      f"{r['kl_max']:.2f}, saturation {r['saturation']:.1%} ({seconds:.0f} s)"
                      + (" WARNING: " + r["warnings"] if r["warnings"] else ""))
    return pd.DataFrame(rows)
