"""Tuning the VAE for a latent GAN: diagnostics in plain words and the beta / latent-size sweep.

The paper stresses that careful tuning of the autoencoder is crucial. A latent GAN needs a VAE
that reconstructs well, uses every latent dimension (no posterior collapse) and keeps its latents
inside [-1, 1] rather than at the bound (where a generator's Pauli readouts rarely go).
:func:`vae_diagnostics` checks one trained :class:`~qgan_widgets.models.vae.VAE` for all three and warns in
plain sentences; :func:`beta_sweep` trains one VAE per (latent size, beta) and tabulates the same
figures with the reconstruction floor. Notebook ``02_vae_latent_space`` teaches both.
"""
from __future__ import annotations

import math
import time

import numpy as np

from qgan_widgets.models.vae import TEXTURE_BLOCK, VAE, VAEError, split_validation, train_vae

__all__ = ["vae_diagnostics", "beta_sweep", "tuning_study", "config_label", "within_tile_sd", "TUNING_COLUMNS", "SATURATION_LEVEL", "SATURATION_WARN", "COLLAPSE_KL",
           "EXPLAINED_WARN"]

SATURATION_LEVEL = 0.98
"""A latent value with ``|z| > 0.98`` counts as saturated at the bound."""
SATURATION_WARN = 0.05
"""Warn when more than this share of encoded latent values saturate (the prior has ~2%)."""
COLLAPSE_KL = 0.02
"""A latent dimension whose mean KL (nats) is below this carries no information: collapsed."""
EXPLAINED_WARN = 0.6
"""Warn when reconstructions explain less than this share of the pixel variance."""


def _block_means(a: np.ndarray) -> np.ndarray:
    n, h, w, c = a.shape
    b = TEXTURE_BLOCK
    return a.reshape(n, h // b, b, w // b, b, c).mean(axis=(2, 4), dtype=np.float64)


def vae_diagnostics(vae: VAE, x, batch_size: int = 1024) -> dict:
    """Check a trained VAE on images ``x``: reconstruction, KL per dimension, saturation, warnings.

    Returns a dict: ``n_images``, ``recon_mse`` (per value, images in [0, 1]), ``pixel_variance``,
    ``explained_variance`` (1 - recon_mse / pixel_variance), ``explained_variance_blocks`` (the same for
    7 x 7 block means: what a VAE with a texture term is judged on, since it paints texture of the
    right kind rather than in the same place), ``kl_per_dim`` (mean KL in nats per
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
    blocks = _block_means(a), _block_means(recon)
    block_var = float(np.var(blocks[0]))
    explained_blocks = 1.0 - float(np.mean((blocks[1] - blocks[0]) ** 2)) / block_var if block_var > 0 else math.nan
    # A VAE with a texture term paints texture of the right kind, not in the same place (where a clump lies
    # is unknowable from a few numbers): judge what it must keep in place, the 7 x 7 block means.
    judged, what = (explained_blocks, "of the variance of 7 x 7 block means") if vae.texture > 0 else \
        (explained, "of the pixel variance")
    if math.isfinite(judged) and judged < EXPLAINED_WARN:
        warnings.append(
            f"reconstructions are poor: they explain only {judged:.0%} {what} "
            f"(MSE {mse:.4f}); train longer, lower beta, or use more latent dimensions")
    return {"n_images": int(len(a)), "latent_dim": vae.latent_dim, "recon_mse": mse,
            "pixel_variance": var, "explained_variance": explained, "explained_variance_blocks": explained_blocks,
            "kl_per_dim": [float(v) for v in kl], "kl_total": float(kl.sum()),
            "collapsed_dims": collapsed, "latent_std": [float(v) for v in z.std(axis=0)],
            "saturation": sat, "saturation_per_dim": [float(v) for v in sat_dim],
            "warnings": warnings}


def beta_sweep(x, betas=(0.03, 0.1, 0.3, 1.0), latent_dims=(4,), epochs: int | None = None,
               extractor=None, x_eval=None, seed: int = 0, base_filters: int = 16,
               batch_size: int | None = None, anneal_epochs: int = 0, verbose: bool = True):
    """Train one VAE per (latent_dim, beta) and tabulate how well each serves a latent GAN.

    ``x``: training images; ``x_eval``: held-out images to judge on (default: 20% of ``x`` held
    out with ``seed``). With a feature ``extractor`` (a :class:`qgan_widgets.scores.features.FeatureExtractor`
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
        x, x_eval = split_validation(x, 0.2, seed)
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


TUNING_COLUMNS = ("label", "latent_dim", "beta", "texture", "perceptual", "consistency", "decoder", "base_filters", "floor_fd",
                  "untrained_fd", "accuracy_real", "accuracy_reconstructed", "accuracy_ratio", "texture_ratio",
                  "recon_mse", "kl_mean", "kl_min", "collapsed_dims", "saturation", "train_seconds", "n_train",
                  "n_eval", "epochs", "seed", "extractor")


def within_tile_sd(x) -> float:
    """Mean over tiles and bands of the pixels' standard deviation within a tile (texture strength)."""
    a = np.asarray(x, dtype=np.float64)
    a = a / 255.0 if np.asarray(x).dtype == np.uint8 else a
    return float(np.mean(np.std(a.reshape(len(a), -1, a.shape[-1]), axis=1)))


def config_label(config: dict) -> str:
    """The study's name of a configuration (VAE arguments, optionally ``epochs``; its ``label`` if it has
    one), e.g. ``"d8 b0.1 tex30 perc10 canvas"`` or ``"... canvas e10"``."""
    if config.get("label"):
        return str(config["label"])
    c = VAE.make_config(**{k: v for k, v in config.items() if k not in ("epochs", "label")})
    return (f"d{c['latent_dim']} b{c['beta']:g} tex{c['texture']:g} perc{c['perceptual']:g}"
            + (f" cons{c['consistency']:g}" if c["consistency"] else "") + f" {c['decoder']}"
            + (f" e{config['epochs']}" if config.get("epochs") is not None else ""))


def tuning_study(dataset, configs, extractor, perceptual_net=None, epochs: int | None = None, seed: int = 0,
                 untrained_layers: int = 2, verbose: bool = True, on_model=None):
    """Train one VAE per configuration and measure what a latent GAN needs from it.

    ``dataset``: a :class:`qgan_widgets.data.dataset.Dataset` (trained on ``x_train``, judged on
    ``x_test``); ``configs``: dicts of :class:`~qgan_widgets.models.vae.VAE` arguments (``latent_dim``,
    ``beta``, ``texture``, ``perceptual``, ``decoder``, ``base_filters``, ...), each optionally with a
    ``label`` and its own ``epochs``; ``extractor``: the feature classifier that scores (a
    :class:`qgan_widgets.scores.features.FeatureExtractor`); ``perceptual_net``: for configurations with
    a perceptual or class-consistency term, the auxiliary classifier's activations and logits
    (:meth:`~qgan_widgets.scores.features.FeatureExtractor.perceptual_net` ``(logits=True)`` of ANOTHER
    classifier).

    One row per configuration (``TUNING_COLUMNS``): ``floor_fd`` (FD of reconstructions of as many
    training tiles as there are test tiles against the test tiles: the best a latent GAN can score),
    ``untrained_fd`` (an untrained style-qGAN with ``latent_dim`` qubits, ``untrained_layers`` layers,
    readout z, decoded: where training starts), ``accuracy_real`` / ``accuracy_reconstructed`` (the
    classifier on the test tiles and on their reconstructions) and their ratio, ``texture_ratio``
    (within-tile standard deviation of reconstructions over that of the real tiles: 1 keeps the
    texture's strength, near 0 is flat colour), ``recon_mse``, KL per dimension (mean, min), collapsed
    dimensions, saturation, and the training time. Returns a ``pandas.DataFrame``; ``on_model(label,
    vae)`` is called with each trained VAE.
    """
    import pandas as pd

    from qgan_widgets.models.generators import QuantumGenerator, sample_noise

    x_eval, y_eval = dataset.x_test, dataset.y_test
    pick = np.sort(np.random.default_rng(seed).permutation(len(dataset.x_train))[:len(x_eval)])
    x_floor = dataset.x_train[pick]
    acc_real = float(extractor.accuracy(x_eval, y_eval))
    sd_real = within_tile_sd(x_eval)
    rows = []
    for cfg in configs:
        cfg = dict(cfg)
        label = cfg.pop("label", None)
        own_epochs = cfg.pop("epochs", None)
        vae = VAE(**{"seed": seed, **cfg})
        t0 = time.perf_counter()
        train_vae(vae, dataset.x_train, epochs=own_epochs if own_epochs is not None else epochs, validation=None,
                  seed=seed, verbose=False,
                  perceptual_net=perceptual_net if vae.perceptual > 0 or vae.consistency > 0 else None)
        seconds = time.perf_counter() - t0
        d = vae_diagnostics(vae, x_eval)
        recon = vae.reconstruct(x_eval)
        gen = QuantumGenerator(num_qubits=vae.latent_dim, num_layers=untrained_layers, entangler="cry-ring",
                               readout="z", seed=seed)
        z = np.clip(np.asarray(gen(sample_noise(len(x_eval), gen.noise_dim, seed + 1))), -1.0, 1.0)
        kl = np.array(d["kl_per_dim"])
        acc_rec = float(extractor.accuracy(recon, y_eval))
        c = vae.config()
        rows.append({
            "label": label or config_label({**c, "epochs": own_epochs}),
            **{k: c[k] for k in ("latent_dim", "beta", "texture", "perceptual", "consistency", "decoder",
                                 "base_filters")},
            "floor_fd": float(extractor.score(x_eval, vae.reconstruct(x_floor), seed=seed).value),
            "untrained_fd": float(extractor.score(x_eval, vae.decode(z), seed=seed).value),
            "accuracy_real": acc_real, "accuracy_reconstructed": acc_rec,
            "accuracy_ratio": acc_rec / acc_real if acc_real > 0 else math.nan,
            "texture_ratio": within_tile_sd(recon) / sd_real if sd_real > 0 else math.nan,
            "recon_mse": d["recon_mse"], "kl_mean": float(kl.mean()), "kl_min": float(kl.min()),
            "collapsed_dims": len(d["collapsed_dims"]), "saturation": d["saturation"],
            "train_seconds": seconds, "n_train": int(len(dataset.x_train)), "n_eval": int(len(x_eval)),
            "epochs": int(vae.trained_epochs), "seed": int(seed), "extractor": extractor.name})
        if on_model is not None:
            on_model(rows[-1]["label"], vae)
        if verbose:
            r = rows[-1]
            print(f"[vae study] {r['label']}: floor FD {r['floor_fd']:.3g}, untrained {r['untrained_fd']:.3g}, "
                  f"accuracy {r['accuracy_reconstructed']:.0%} of reconstructions vs {acc_real:.0%} real "
                  f"(ratio {r['accuracy_ratio']:.2f}), texture {r['texture_ratio']:.2f}, KL/dim min "
                  f"{r['kl_min']:.2f}, saturation {r['saturation']:.1%} ({seconds:.0f} s)", flush=True)
    return pd.DataFrame(rows, columns=list(TUNING_COLUMNS))
