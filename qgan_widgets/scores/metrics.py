"""Scores for generated samples: Frechet distance, KID, the :class:`Score` record and a stability
judgement for a training run.

Pure numpy/scipy (no TensorFlow), all arithmetic in float64. The features these functions compare
come from elsewhere: :mod:`qgan_widgets.scores.features` (a SAT-4 classifier's penultimate layer, for
images) or the VAE latent space (for the cheap live score). :mod:`qgan_widgets.pipeline` wires them
together; notebooks ``02_vae_latent_space`` (the floor), ``04_training_latent_style_qgan`` (FD
during training, stability) and ``05_classical_vs_quantum`` teach the scores.

Frechet distance between two Gaussians ``N(mu1, S1)`` and ``N(mu2, S2)``::

    FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr( (S1^1/2 S2 S1^1/2)^1/2 )

The last trace is computed from the *symmetric* matrix ``S1^1/2 S2 S1^1/2`` by an eigen
decomposition, so it is real and stable even when a covariance is singular (fewer samples than
feature dimensions, dead features). FD is biased upwards at small sample counts, so every score
carries its sample counts; prefer :func:`kid` (unbiased) when N is below about 10x the feature
dimension.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "MetricError",
    "frechet_distance",
    "feature_stats",
    "fd_from_samples",
    "kid",
    "Score",
    "Stability",
    "judge_stability",
]


class MetricError(ValueError):
    """Inputs a score cannot be computed from (wrong shapes, NaN/inf, not a covariance)."""


# ---------------------------------------------------------------------------------------------
# Frechet distance

_REL_NEG_TOL = 1e-6  # eigenvalues below -tol * largest mean "not positive semi-definite"
_IMAG_TOL = 1e-3  # largest imaginary part (relative) dropped from scipy's sqrtm fallback


def _as_stats(mu, sigma, which: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1:
        raise MetricError(f"{which}: the mean must be a vector, got shape {mu.shape}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise MetricError(f"{which}: the covariance must have shape ({d}, {d}) to match its mean, "
                          f"got {sigma.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise MetricError(f"{which}: the mean or covariance contains NaN or inf")
    scale = max(float(np.max(np.abs(sigma))), 1e-300)
    if np.max(np.abs(sigma - sigma.T)) > 1e-6 * scale:
        raise MetricError(f"{which}: the covariance is not symmetric")
    return mu, (sigma + sigma.T) / 2.0


def _psd_sqrt(sigma: np.ndarray, which: str) -> np.ndarray:
    """Symmetric square root of a PSD matrix; tiny negative eigenvalues (round-off) become 0."""
    w, v = np.linalg.eigh(sigma)
    top = max(float(np.max(np.abs(w))), 1e-300)
    if w.min() < -_REL_NEG_TOL * top - 1e-12:
        raise MetricError(f"{which}: the covariance is not positive semi-definite "
                          f"(eigenvalue {w.min():.3g}, largest {top:.3g})")
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2), via eigenvalues of the symmetric form."""
    r1 = _psd_sqrt(s1, "sigma1")
    m = r1 @ s2 @ r1
    w = np.linalg.eigvalsh((m + m.T) / 2.0)
    top = max(float(np.max(np.abs(w))), 1e-300)
    if w.min() < -1e-6 * top - 1e-12:
        raise MetricError(f"sigma2 is not positive semi-definite (eigenvalue {w.min():.3g} of "
                          f"S1^1/2 S2 S1^1/2)")
    return float(np.sum(np.sqrt(np.clip(w, 0.0, None))))


def _trace_sqrt_product_sqrtm(s1: np.ndarray, s2: np.ndarray) -> float:
    """Fallback: scipy's general sqrtm of S1 S2, keeping the real part only if the imaginary
    part is tiny (it is pure round-off then); otherwise the inputs are not covariances."""
    from scipy import linalg

    root = linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(root):
        imag = float(np.max(np.abs(root.imag)))
        if imag > _IMAG_TOL * max(1.0, float(np.max(np.abs(root.real)))):
            raise MetricError(f"sqrt(sigma1 @ sigma2) has a large imaginary part ({imag:.3g}): "
                              f"the covariances are not valid")
        root = root.real
    return float(np.trace(root))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Frechet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``, as a float64 >= 0.

    Symmetric in its two Gaussians. The trace term uses the symmetric square root (eigen
    decomposition of ``S1^1/2 S2 S1^1/2``), which stays real for singular covariances. If that
    fails (``LinAlgError`` or a non-finite result), it is retried with ``eps * I`` added to both
    covariances, then with scipy's ``sqrtm``, whose imaginary part is dropped only when it is tiny
    (relative 1e-3), else :class:`MetricError` is raised. The result is never NaN: bad inputs
    (shape mismatch, NaN/inf, asymmetric or clearly non-PSD covariance) raise :class:`MetricError`.
    Round-off can push identical inputs a hair below zero; the result is clipped at 0.
    """
    mu1, s1 = _as_stats(mu1, sigma1, "first Gaussian")
    mu2, s2 = _as_stats(mu2, sigma2, "second Gaussian")
    if mu1.shape != mu2.shape:
        raise MetricError(f"the two Gaussians have different dimensions: {mu1.shape[0]} and "
                          f"{mu2.shape[0]}")
    diff = mu1 - mu2
    offset = np.eye(mu1.shape[0]) * eps
    attempts = (
        lambda: _trace_sqrt_product(s1, s2),
        lambda: _trace_sqrt_product(s1 + offset, s2 + offset),
        lambda: _trace_sqrt_product_sqrtm(s1 + offset, s2 + offset),
    )
    tr_covmean = math.nan
    for attempt in attempts:
        try:
            tr_covmean = attempt()
        except np.linalg.LinAlgError:
            continue
        if math.isfinite(tr_covmean):
            break
    if not math.isfinite(tr_covmean):
        raise MetricError("the Frechet distance could not be computed: the covariance square "
                          "root failed even with a diagonal offset")
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def _as_samples(x, which: str, min_rows: int = 2) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise MetricError(f"{which}: expected samples of shape (N, d), got {x.shape}")
    if x.shape[0] < min_rows:
        raise MetricError(f"{which}: at least {min_rows} samples are needed, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise MetricError(f"{which}: the samples contain NaN or inf")
    return x


def feature_stats(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64, ``ddof=1``) of samples ``x`` of shape ``(N, d)``."""
    x = _as_samples(x, "samples")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def fd_from_samples(a, b, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to samples ``a`` (N1, d) and ``b`` (N2, d)."""
    a = _as_samples(a, "first samples")
    b = _as_samples(b, "second samples")
    if a.shape[1] != b.shape[1]:
        raise MetricError(f"the samples have different feature dimensions: {a.shape[1]} and "
                          f"{b.shape[1]}")
    return frechet_distance(*feature_stats(a), *feature_stats(b), eps=eps)


# ---------------------------------------------------------------------------------------------
# Kernel Inception-style distance (KID)

def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the polynomial kernel k(a, b) = (a.b / d + 1)^3 (as in KID)."""
    d = x.shape[1]
    m, n = x.shape[0], y.shape[0]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(a, b, n_blocks: int = 10, block_size: int | None = None, seed: int = 0
        ) -> tuple[float, float]:
    """Kernel distance (KID) between samples ``a`` and ``b`` (N, d): ``(mean, std)`` over blocks.

    Each of ``n_blocks`` blocks draws ``block_size`` rows of each set without replacement
    (default: half the smaller set, at most 1000, so that blocks differ and the std means
    something) with a generator seeded by ``seed`` and computes the
    unbiased MMD^2 with the cubic polynomial kernel ``(a.b/d + 1)^3``. Unbiased, so it can be
    slightly negative for identical distributions and is comparable across sample counts.
    """
    a = _as_samples(a, "first samples")
    b = _as_samples(b, "second samples")
    if a.shape[1] != b.shape[1]:
        raise MetricError(f"the samples have different feature dimensions: {a.shape[1]} and "
                          f"{b.shape[1]}")
    if n_blocks < 1:
        raise MetricError(f"n_blocks must be at least 1, got {n_blocks}")
    size = min(max(min(len(a), len(b)) // 2, 2), 1000) if block_size is None else int(block_size)
    if not 2 <= size <= min(len(a), len(b)):
        raise MetricError(f"block_size must be between 2 and the smaller sample count "
                          f"({min(len(a), len(b))}), got {size}")
    rng = np.random.default_rng(seed)
    values = np.array([
        _mmd2_unbiased(a[rng.choice(len(a), size, replace=False)],
                       b[rng.choice(len(b), size, replace=False)])
        for _ in range(n_blocks)
    ])
    return float(values.mean()), float(values.std(ddof=1) if n_blocks > 1 else 0.0)


# ---------------------------------------------------------------------------------------------
# A score with everything needed to read it honestly

@dataclass(frozen=True)
class Score:
    """One score with its provenance: sample counts, feature dimension, seed and extractor.

    ``str(score)`` reads like ``FD 12.3 (N=1000/1000, d=64, seed 0, SAT-4 classifier features)``;
    ``std`` is set for block-averaged scores such as KID (``KID 0.012 ± 0.003 (...)``).
    """

    value: float
    name: str
    n_real: int
    n_fake: int
    feature_dim: int
    seed: int | None
    extractor: str
    std: float | None = None

    def to_dict(self) -> dict:
        """Plain JSON-able dict (all fields)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Score":
        return cls(**{f.name: d.get(f.name) for f in dataclasses.fields(cls)})

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        value = _fmt(self.value)
        if self.std is not None:
            value += f" ± {_fmt(self.std)}"
        seed = "no seed" if self.seed is None else f"seed {self.seed}"
        return (f"{self.name} {value} (N={self.n_real}/{self.n_fake}, d={self.feature_dim}, "
                f"{seed}, {self.extractor})")


def _fmt(x: float) -> str:
    x = float(x)
    if x == 0 or 0.01 <= abs(x) < 1e5:
        return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"
    return f"{x:.3g}"


# ---------------------------------------------------------------------------------------------
# Stability of a run

DEFAULT_WINDOW = 5
"""Evaluations at the end of a run that the stability judgement looks at."""
DEFAULT_MAX_REL_SPREAD = 0.2
"""Largest allowed (max - min) / median of the FD over the window."""
DEFAULT_MIN_EXCESS_SHARE = 0.1
"""With a floor, the smallest excess the spread is measured against, as a share of the floor."""
JUDGED_LOSS_KEYS = ("d_loss", "w_estimate")
"""The per-step values :func:`judge_stability` checks in history rows: the critic's, not the generator's."""
DEFAULT_MAX_ABS_LOSS = 1e3
"""Largest allowed absolute critic/generator loss over the window (WGAN losses are unbounded, so
a run whose losses grow past this is diverging)."""


@dataclass
class Stability:
    """Outcome of :func:`judge_stability`: ``stable`` and, when not, the reasons in plain words."""

    stable: bool
    reasons: list[str] = field(default_factory=list)
    rel_spread: float = math.nan
    final_fd: float = math.nan
    window: int = DEFAULT_WINDOW
    max_abs_loss: float = math.nan

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __bool__(self) -> bool:
        return self.stable

    def __str__(self) -> str:
        if self.stable:
            return (f"stable: FD {_fmt(self.final_fd)} varies by {self.rel_spread:.0%} over the "
                    f"last {self.window} evaluations")
        return "unstable: " + "; ".join(self.reasons)


def judge_stability(fd_values, losses=None, window: int = DEFAULT_WINDOW,
                    max_rel_spread: float = DEFAULT_MAX_REL_SPREAD,
                    max_abs_loss: float = DEFAULT_MAX_ABS_LOSS,
                    max_fd: float | None = None, floor: float | None = None,
                    min_excess_share: float = DEFAULT_MIN_EXCESS_SHARE) -> Stability:
    """Judge whether a run ended stable.

    Stable means all of:

    - at least ``window`` evaluations exist (default 5) and the last ``window`` FD values are
      finite;
    - their relative spread ``(max - min) / median`` is at most ``max_rel_spread`` (default 0.2);
    - if ``max_fd`` is given, the median FD of the window is at most ``max_fd`` ("low": e.g. a
      multiple of the reconstruction floor);
    - if ``losses`` is given (per step: a number, a sequence of numbers, or a dict such as
      ``WGANGPTrainer.history`` rows, of which the critic's ``d_loss`` and Wasserstein estimate
      ``w_estimate`` are used, or else every key containing ``"loss"``; the generator's loss is not
      judged: its offset is free in a WGAN), every value is finite, and over the last
      ``max(window, len(losses) // 5)`` steps every absolute value is at most ``max_abs_loss``
      (default 1e3).

    With ``floor`` (the reconstruction floor of the same score), the window is judged on the
    *excess* over the floor, ``fd - floor``: the spread is ``(max - min) / max(median excess,
    min_excess_share * floor)``. Judged on the total FD, a floor of 5 dilutes a swing of 4 units
    around an excess of 2 into "stable"; the ``min_excess_share`` term (default 0.1) keeps a
    generator that sits at the floor (excess near 0, where the FD estimate's own noise dominates)
    from being called unstable for noise of a tenth of the floor.
    """
    if window < 2:
        raise MetricError(f"window must be at least 2, got {window}")
    fd = np.asarray([float(v) for v in fd_values], dtype=np.float64)
    reasons: list[str] = []
    result = Stability(stable=False, reasons=reasons, window=window)
    if fd.size < window:
        reasons.append(f"only {fd.size} evaluations, {window} are needed to judge stability")
    else:
        tail = fd[-window:]
        if not np.all(np.isfinite(tail)):
            reasons.append(f"the FD is NaN or infinite in the last {window} evaluations")
        else:
            median = float(np.median(tail))
            scale = abs(median)
            if floor is not None:
                floor = float(floor)
                if not math.isfinite(floor) or floor < 0:
                    raise MetricError(f"floor must be a finite number >= 0, got {floor}")
                scale = max(median - floor, min_excess_share * floor)
            spread = float(tail.max() - tail.min()) / max(scale, 1e-12)
            result.rel_spread, result.final_fd = spread, float(tail[-1])
            if spread > max_rel_spread:
                what = "the FD" if floor is None else "the FD's excess over the floor"
                reasons.append(f"{what} still varies by {spread:.0%} over the last {window} "
                               f"evaluations (allowed {max_rel_spread:.0%})")
            if max_fd is not None and median > max_fd:
                reasons.append(f"the FD ({_fmt(median)}) is above the allowed {_fmt(max_fd)}")
    if losses is not None:
        values = _loss_matrix(losses)
        if values.size:
            if not np.all(np.isfinite(values)):
                reasons.append("a loss became NaN or infinite")
            else:
                k = max(window, len(values) // 5)
                biggest = float(np.max(np.abs(values[-k:])))
                result.max_abs_loss = biggest
                if biggest > max_abs_loss:
                    reasons.append(f"the losses are not bounded: |loss| reached {biggest:.3g} in "
                                   f"the last {k} steps (allowed {max_abs_loss:.3g})")
    result.stable = not reasons
    return result


def _loss_matrix(losses) -> np.ndarray:
    """Per-step losses as a 2-D float array: numbers, sequences, or dicts of numbers per step."""
    rows = []
    for row in losses:
        if isinstance(row, dict):
            judged = [k for k in JUDGED_LOSS_KEYS if k in row] or [k for k in row if "loss" in k]
            row = [row[k] for k in judged if row[k] is not None]
        rows.append(np.atleast_1d(np.asarray(row, dtype=np.float64)))
    if not rows:
        return np.zeros((0, 1))
    width = max(len(r) for r in rows)
    return np.array([np.pad(r, (0, width - len(r)), constant_values=0.0) for r in rows])
