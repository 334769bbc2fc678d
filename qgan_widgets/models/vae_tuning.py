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

from qgan_widgets.models.vae import VAE, VAEError, split_validation, train_vae

__all__ = ["vae_diagnostics", "beta_sweep", "SATURATION_LEVEL", "SATURATION_WARN", "COLLAPSE_KL",
           "EXPLAINED_WARN"]

SATURATION_LEVEL = 0.98
"""A latent value with ``|z| > 0.98`` counts as saturated at the bound."""
SATURATION_WARN = 0.05
"""Warn when more than this share of encoded latent values saturate (the prior has ~2%)."""
COLLAPSE_KL = 0.02
"""A latent dimension whose mean KL (nats) is below this carries no information: collapsed."""
EXPLAINED_WARN = 0.6
"""Warn when reconstructions explain less than this share of the pixel variance."""


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
