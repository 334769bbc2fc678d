"""The optimal critic per generator, and fits of how its size grows with the generator's.

Taught in notebook ``06_capacity_scaling``. The paper's claim: with training optimality defined as
"training stable and the FD low and stable", the optimal critic capacity ``C_D*`` (trainable
parameters) grows exponentially with the generator capacity ``C_G``, for quantum and classical
generators alike. This module holds the numbers behind the claim, computed from a table of
finished trials (one row per generator x critic x seed, as :mod:`qgan_widgets.study.runner` writes
to ``trials.csv``):

* :func:`optimal_critic`: ``C_D*`` per generator under a stated :class:`OptimalityRule`; ties,
  optima at the edge of the critic grid and generators without a stable trial are kept and flagged;
* :func:`fit_exponential` (``ln C_D* = a + b C_G``) and :func:`fit_power` (``ln C_D* = a + b ln C_G``)
  with R^2 and AIC, so the two descriptions can be compared on the same response;
* :func:`fit_box_cox`: the family ``ln C_D* = a + b ((C_G/x0)^lam - 1)/lam`` between them (lam = 1
  exponential, lam -> 0 power law), with a profile-likelihood interval for lam;
* :func:`bootstrap_b`: confidence intervals for ``b`` (and lam) from resampling seeds (the optimum and
  the fit are recomputed on every resample; optima at the edge of the critic grid can be censored);
* :func:`power_analysis`: which growth the sweep's own grid could detect with its measured seed noise.

:mod:`qgan_widgets.study.analysis` turns these into a sweep's ``fit.json``, figure and report.
NumPy, pandas and SciPy only: no TensorFlow, no Ray.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

KINDS = ("quantum", "classical")
RULES = ("min_fd", "smallest_within", "one_se")


class ScalingError(ValueError):
    """Bad input to the scaling analysis (rule, trial table, fit data), with what is wrong."""


# --------------------------------------------------------------------------------------------
# The optimality rule


@dataclass(frozen=True)
class OptimalityRule:
    """Which critic counts as optimal for one generator.

    A (generator, critic) cell *qualifies* when at least one of its seeds finished and at least
    ``min_stable_fraction`` of its finished seeds were judged stable (default 1.0: every seed). Its
    FD is the mean ``fd_column`` over its stable seeds. Among qualifying cells:

    * ``"min_fd"`` (default): the lowest mean FD. Cells within ``tie_rtol`` (relative) of the best
      are a tie, broken towards the smallest critic and reported as ``status="tie"``.
    * ``"smallest_within"``: the smallest critic whose mean FD is within ``tolerance`` (relative,
      e.g. 0.05 = 5 %) of the best: the cheapest critic that is as good as the best.
    * ``"one_se"`` (the one-standard-error rule of model selection): the mean is over *every*
      finished seed, stable or not (an unstable seed counts against its critic; a seed without a
      finite score makes its critic's mean infinite), and the optimum is the smallest critic whose
      mean lies within one standard error (over seeds) of the lowest mean: robust to seed noise
      that is larger than the gaps between critics.

    A generator with no qualifying cell gets ``status="no stable trial"`` (or ``"no finished
    trial"``) and no ``C_D*``; it is listed in the report, never silently dropped.
    """

    name: str = "min_fd"
    tolerance: float = 0.05
    min_stable_fraction: float = 1.0
    tie_rtol: float = 1e-6
    fd_column: str = "final_fd"

    def __post_init__(self):
        if self.name not in RULES:
            raise ScalingError(f"optimality rule must be one of {', '.join(RULES)}; got {self.name!r}")
        for key, lo, hi in (("tolerance", 0.0, math.inf), ("min_stable_fraction", 0.0, 1.0), ("tie_rtol", 0.0, 1.0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
                raise ScalingError(f"optimality rule: {key} must be a number in [{lo}, {hi}], got {value!r}")
        if self.min_stable_fraction == 0:
            raise ScalingError("optimality rule: min_stable_fraction must be > 0 (an optimum must have a stable seed)")

    @classmethod
    def from_value(cls, value: "OptimalityRule | str | Mapping[str, Any] | None") -> "OptimalityRule":
        """A rule from a rule, its name, or a dict of its fields (``None`` -> the default rule)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(name=value)
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(cls.__dataclass_fields__))
            if unknown:
                raise ScalingError(
                    f"optimality rule: unknown key(s) {', '.join(unknown)}; "
                    f"known: {', '.join(cls.__dataclass_fields__)}"
                )
            return cls(**dict(value))
        raise ScalingError(f"optimality rule must be a name, a dict or an OptimalityRule, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        stable = (
            "every finished seed stable"
            if self.min_stable_fraction >= 1
            else f"at least {self.min_stable_fraction:.0%} of its finished seeds stable"
        )
        if self.name == "min_fd":
            pick = f"the critic with the lowest mean {self.fd_column} (ties within {self.tie_rtol:g} relative -> smallest critic)"
        elif self.name == "one_se":
            return (f"among critics with {stable}, the smallest critic whose mean {self.fd_column} over all its "
                    f"finished seeds (unstable ones included) is within one standard error of the lowest mean")
        else:
            pick = f"the smallest critic whose mean {self.fd_column} is within {self.tolerance:.0%} of the lowest"
        return f"among critics with {stable}, {pick}; the mean is over stable seeds"


# --------------------------------------------------------------------------------------------
# The trial table as arrays: cells (generator x critic) by seeds


GEN_KEYS = ("generator_kind", "generator_label", "generator_params")
CELL_KEYS = GEN_KEYS + ("critic_width", "critic_depth", "critic_params")
REQUIRED = CELL_KEYS + ("seed", "status", "stable")


@dataclass
class _Grid:
    """``fd[cell, seed]``, ``stable[cell, seed]``, ``finished[cell, seed]`` plus the cell table."""

    cells: pd.DataFrame  # CELL_KEYS, one row per cell, with "gen" = index into gens
    gens: pd.DataFrame  # GEN_KEYS
    seeds: np.ndarray
    fd: np.ndarray
    stable: np.ndarray
    finished: np.ndarray
    gen_cells: list[np.ndarray] = field(default_factory=list)  # cell indices of each generator


def _grid(trials: pd.DataFrame, rule: OptimalityRule) -> _Grid:
    if not isinstance(trials, pd.DataFrame):
        raise ScalingError(f"trials must be a pandas DataFrame, got {type(trials).__name__}")
    missing = [c for c in REQUIRED + (rule.fd_column,) if c not in trials.columns]
    if missing:
        raise ScalingError(f"trials table lacks column(s) {', '.join(missing)}")
    df = trials.copy()
    if "critic_depth" in df:
        df["critic_depth"] = df["critic_depth"].fillna(-1)
    bad_kind = sorted(set(df["generator_kind"]) - set(KINDS))
    if bad_kind:
        raise ScalingError(f"trials table: generator_kind must be one of {KINDS}, got {bad_kind}")
    gens = df[list(GEN_KEYS)].drop_duplicates().sort_values(["generator_kind", "generator_params", "generator_label"])
    gens = gens.reset_index(drop=True)
    cells = df[list(CELL_KEYS)].drop_duplicates().sort_values(list(CELL_KEYS)).reset_index(drop=True)
    cells = cells.merge(gens.reset_index().rename(columns={"index": "gen"}), on=list(GEN_KEYS))
    seeds = np.array(sorted(df["seed"].unique()))
    fd = np.full((len(cells), len(seeds)), np.nan)
    stable = np.zeros(fd.shape, dtype=bool)
    finished = np.zeros(fd.shape, dtype=bool)
    cell_index = {tuple(r): i for i, r in enumerate(cells[list(CELL_KEYS)].itertuples(index=False))}
    seed_index = {s: j for j, s in enumerate(seeds)}
    done = df[df["status"] == "done"]
    for row in done.itertuples(index=False):
        i = cell_index[tuple(getattr(row, k) for k in CELL_KEYS)]
        j = seed_index[row.seed]
        value = float(getattr(row, rule.fd_column))
        finished[i, j] = True
        fd[i, j] = value
        stable[i, j] = _truthy(row.stable) and math.isfinite(value)
    gen_cells = [np.flatnonzero(cells["gen"].to_numpy() == g) for g in range(len(gens))]
    return _Grid(cells, gens, seeds, fd, stable, finished, gen_cells)


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


def _cell_stats(grid: _Grid, weights: np.ndarray, rule: "OptimalityRule | None" = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: finished count, stable count, mean FD, its standard error (weights = seed counts).

    The mean is over stable seeds, or over every finished seed for the ``one_se`` rule (a finished
    seed without a finite FD then makes the mean infinite); the standard error is that of the same
    seeds (NaN below two)."""
    w = weights[None, :]
    n_fin = (grid.finished * w).sum(axis=1)
    n_st = (grid.stable * w).sum(axis=1)
    use = grid.finished if rule is not None and rule.name == "one_se" else grid.stable
    values = np.where(use, np.where(np.isfinite(grid.fd), grid.fd, np.inf), 0.0)
    n_use = (use * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        fd_mean = (values * w).sum(axis=1) / n_use
        dev = np.where(use, values - fd_mean[:, None], 0.0)
        var = (dev**2 * w).sum(axis=1) / (n_use - 1)
        se = np.where(n_use > 1, np.sqrt(var / n_use), np.nan)
    return n_fin, n_st, fd_mean, se


def _choose(params: np.ndarray, fd_mean: np.ndarray, ok: np.ndarray, rule: OptimalityRule, se=None):
    """Index (into the given arrays) of the optimal critic and the indices it tied with / was within."""
    cand = np.flatnonzero(ok & np.isfinite(fd_mean))
    if cand.size == 0:
        return None, cand
    best_i = cand[np.argmin(fd_mean[cand])]
    best = fd_mean[best_i]
    if rule.name == "one_se":
        margin = se[best_i] if se is not None and np.isfinite(se[best_i]) else 0.0
        close = cand[fd_mean[cand] <= best + margin + 1e-12]
    else:
        slack = rule.tie_rtol if rule.name == "min_fd" else rule.tolerance
        close = cand[fd_mean[cand] <= best + abs(best) * slack + 1e-12]
    return close[np.argmin(params[close])], close


def _qualifies(grid: _Grid, n_fin: np.ndarray, n_st: np.ndarray, rule: OptimalityRule) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n_fin > 0, n_st / np.maximum(n_fin, 1e-300), 0.0)
    return (n_st > 0) & (frac >= rule.min_stable_fraction - 1e-12)


def _optimum_params(grid: _Grid, weights: np.ndarray, rule: OptimalityRule, censor: bool = False) -> np.ndarray:
    """C_D* per generator (NaN where none qualifies, and with ``censor`` where the optimum is the
    smallest or largest critic of the grid: censored) for one weighting of the seeds."""
    n_fin, n_st, fd_mean, se = _cell_stats(grid, weights, rule)
    ok = _qualifies(grid, n_fin, n_st, rule)
    params = grid.cells["critic_params"].to_numpy(dtype=float)
    out = np.full(len(grid.gens), np.nan)
    for g, idx in enumerate(grid.gen_cells):
        pick, _ = _choose(params[idx], fd_mean[idx], ok[idx], rule, se[idx])
        if pick is not None:
            value = params[idx][pick]
            if censor and idx.size > 1 and value in (params[idx].min(), params[idx].max()):
                continue
            out[g] = value
    return out


def optimal_critic(trials: pd.DataFrame, rule: "OptimalityRule | str | Mapping | None" = None) -> pd.DataFrame:
    """The optimal critic capacity ``C_D*`` for every generator in a trial table.

    ``trials`` has one row per trial with at least the columns ``generator_kind``,
    ``generator_label``, ``generator_params``, ``critic_width``, ``critic_depth``,
    ``critic_params``, ``seed``, ``status`` (only ``"done"`` rows count), ``stable`` and the rule's
    ``fd_column``. ``rule`` is an :class:`OptimalityRule`, its name or a dict (default ``"min_fd"``,
    every seed stable). Returns one row per generator: ``generator_kind, generator_label,
    generator_params, critic_width, critic_depth, critic_params, fd_mean, fd_std, n_seeds,
    n_stable, n_critics, n_qualifying, status`` (``"ok"``, ``"tie"``, ``"no stable trial"``,
    ``"no finished trial"``), ``at_edge`` (``"largest"`` / ``"smallest"`` when the optimum is at
    the edge of the critic grid, where the true optimum may lie beyond it) and ``note``.
    """
    rule = OptimalityRule.from_value(rule)
    grid = _grid(trials, rule)
    n_fin, n_st, fd_mean, se_all = _cell_stats(grid, np.ones(len(grid.seeds)), rule)
    ok = _qualifies(grid, n_fin, n_st, rule)
    params = grid.cells["critic_params"].to_numpy(dtype=float)
    rows = []
    for g, idx in enumerate(grid.gen_cells):
        gen = grid.gens.iloc[g]
        row = {k: gen[k] for k in GEN_KEYS}
        row.update(n_critics=int(idx.size), n_qualifying=int(ok[idx].sum()))
        pick, close = _choose(params[idx], fd_mean[idx], ok[idx], rule, se_all[idx])
        if pick is None:
            any_finished = bool(grid.finished[idx].any())
            status = "no stable trial" if any_finished else "no finished trial"
            row.update(
                critic_width=np.nan, critic_depth=np.nan, critic_params=np.nan, fd_mean=np.nan, fd_std=np.nan,
                n_seeds=int(n_fin[idx].sum()), n_stable=int(n_st[idx].sum()), n_rivals=0, status=status, at_edge="",
                note=_no_optimum_note(grid, idx, n_fin, n_st, rule),
            )
            rows.append(row)
            continue
        c = idx[pick]
        cell = grid.cells.iloc[c]
        stable_fds = grid.fd[c][grid.finished[c] if rule.name == "one_se" else grid.stable[c]]
        widths = grid.cells.iloc[idx[close]]["critic_width"].tolist()
        if rule.name == "min_fd":
            status = "tie" if close.size > 1 else "ok"
            note = f"tied critic widths {widths}; smallest chosen" if close.size > 1 else ""
        elif rule.name == "one_se":
            status = "ok"
            note = f"critic widths within one standard error of the lowest mean: {widths}" if close.size > 1 else ""
        else:
            status = "ok"
            note = f"critic widths within {rule.tolerance:.0%} of the best FD: {widths}"
        # Other qualifying critics whose mean FD is within one standard error of the chosen one's:
        # the seeds do not resolve which of them is best.
        fd_std = float(np.std(stable_fds, ddof=1)) if stable_fds.size > 1 else np.nan
        se = fd_std / math.sqrt(stable_fds.size) if stable_fds.size > 1 else 0.0
        rivals = [j for j in idx[ok[idx]] if j != c and j not in idx[close] and fd_mean[j] <= fd_mean[c] + se]
        if rivals:
            rw = grid.cells.iloc[rivals]["critic_width"].tolist()
            note = (note + "; " if note else "") + f"critic widths {rw} are within one standard error of its FD"
        edge = ""
        if params[c] >= params[idx].max() and idx.size > 1:
            edge = "largest"
        elif params[c] <= params[idx].min() and idx.size > 1:
            edge = "smallest"
        row.update(
            critic_width=cell["critic_width"], critic_depth=cell["critic_depth"], critic_params=params[c],
            fd_mean=float(fd_mean[c]), fd_std=fd_std, n_seeds=int(n_fin[c]), n_stable=int(n_st[c]),
            n_rivals=len(rivals), status=status, at_edge=edge, note=note,
        )
        rows.append(row)
    cols = list(GEN_KEYS) + [
        "critic_width", "critic_depth", "critic_params", "fd_mean", "fd_std", "n_seeds", "n_stable",
        "n_critics", "n_qualifying", "n_rivals", "status", "at_edge", "note",
    ]
    return pd.DataFrame(rows, columns=cols)


def _no_optimum_note(grid: _Grid, idx: np.ndarray, n_fin, n_st, rule: OptimalityRule) -> str:
    if not grid.finished[idx].any():
        return "no trial of this generator finished (see the failed trials' errors)"
    parts = [f"w{w}: {int(s)}/{int(f)} stable" for w, s, f in zip(grid.cells.iloc[idx]["critic_width"], n_st[idx], n_fin[idx])]
    return f"no critic reached the stable share {rule.min_stable_fraction:.0%} ({'; '.join(parts)})"


# --------------------------------------------------------------------------------------------
# Fits


@dataclass(frozen=True)
class Fit:
    """Least-squares line ``ln C_D = a + b x`` with ``x = C_G`` (exponential) or ``ln C_G`` (power)."""

    model: str
    a: float
    b: float
    r2: float
    se_b: float
    n: int
    rss: float
    aic: float
    cg: tuple[float, ...]
    cd: tuple[float, ...]

    def predict(self, cg) -> np.ndarray:
        """Fitted C_D at generator capacities ``cg``."""
        x = np.asarray(cg, dtype=float)
        return np.exp(self.a + self.b * (x if self.model == "exponential" else np.log(x)))

    def to_dict(self) -> dict:
        d = {k: jsonable(v) for k, v in asdict(self).items() if k not in ("cg", "cd")}
        d["formula"] = "ln C_D* = a + b * C_G" if self.model == "exponential" else "ln C_D* = a + b * ln C_G"
        return d


def jsonable(v):
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def _as_points(cg, cd) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(cg, dtype=float).reshape(-1)
    y = np.asarray(cd, dtype=float).reshape(-1)
    if x.shape != y.shape:
        raise ScalingError(f"fit: C_G and C_D* must have the same length, got {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ScalingError("fit: C_G and C_D* must be finite numbers (drop generators without an optimum first)")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ScalingError("fit: capacities are parameter counts and must be > 0")
    if x.size < 2 or np.unique(x).size < 2:
        raise ScalingError(f"fit: needs at least 2 distinct generator capacities, got {np.unique(x).size}")
    return x, y


def _ols(model: str, x: np.ndarray, y: np.ndarray, cg, cd) -> Fit:
    n = x.size
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    b = float(((x - xm) * (y - ym)).sum() / sxx)
    a = float(ym - b * xm)
    resid = y - (a + b * x)
    rss = float((resid**2).sum())
    tss = float(((y - ym) ** 2).sum())
    r2 = 1.0 - rss / tss if tss > 0 else math.nan
    se_b = math.sqrt(rss / (n - 2) / sxx) if n > 2 else math.nan
    # Gaussian log-likelihood AIC with k = 3 (a, b, residual variance); both models share the
    # response ln C_D*, so their AICs are comparable. An exact fit gets -inf.
    aic = n * math.log(rss / n) + 6 if rss > 0 else -math.inf
    return Fit(model, a, b, r2, se_b, n, rss, aic, tuple(map(float, cg)), tuple(map(float, cd)))


def fit_exponential(cg, cd) -> Fit:
    """Fit ``ln C_D* = a + b * C_G`` by least squares (the paper's exponential scaling)."""
    x, y = _as_points(cg, cd)
    return _ols("exponential", x, np.log(y), x, y)


def fit_power(cg, cd) -> Fit:
    """Fit ``ln C_D* = a + b * ln C_G`` by least squares (a power law, for comparison)."""
    x, y = _as_points(cg, cd)
    return _ols("power", np.log(x), np.log(y), x, y)


def compare_fits(exponential: Fit, power: Fit, threshold: float = 2.0) -> tuple[str, float]:
    """Which model describes the points better: ``("exponential"|"power"|"indistinguishable", dAIC)``.

    ``dAIC = AIC_power - AIC_exponential`` (> 0 favours the exponential). Differences below
    ``threshold`` (the usual 2) are called indistinguishable; so are exact fits (2 points).
    """
    if not (math.isfinite(exponential.aic) and math.isfinite(power.aic)):
        return "indistinguishable", math.nan
    d = power.aic - exponential.aic
    if abs(d) < threshold:
        return "indistinguishable", d
    return ("exponential" if d > 0 else "power"), d


LAMBDAS = tuple(float(v) for v in np.round(np.linspace(-1.0, 2.0, 61), 3))
"""The Box-Cox exponents searched by :func:`fit_box_cox` (-1 to 2 in steps of 0.05)."""


def box_cox_x(cg, lam: float, x0: float) -> np.ndarray:
    """``((C_G / x0)^lam - 1) / lam`` (``ln(C_G / x0)`` at lam = 0): the family's transformed capacity."""
    z = np.asarray(cg, dtype=float) / float(x0)
    return np.log(z) if abs(lam) < 1e-9 else (z**lam - 1.0) / lam


def fit_box_cox(cg, cd, lambdas=LAMBDAS, x0: float | None = None, level: float = 0.95) -> dict:
    """Fit the family ``ln C_D* = a + b ((C_G/x0)^lam - 1) / lam`` by least squares, profiling ``lam``.

    ``lam = 1`` is the exponential law (a straight line in C_G), ``lam -> 0`` the power law (a line in
    ln C_G); the family moves continuously between them, so the data's preference is one number with
    a confidence interval instead of an AIC comparison of two fixed models. ``x0`` (default: the
    geometric mean of the capacities) makes ``b`` the same quantity for every ``lam``: ``b / x0`` is the
    slope of ln C_D* in C_G at C_G = x0. Returns ``lambda``, ``a``, ``b``, ``x0``, ``rss``, ``n`` and
    ``lambda_ci_profile`` (the lams whose residuals are within the chi-square(1) profile-likelihood
    bound at ``level``; the whole searched range with fewer than 3 capacities, where every lam fits
    exactly), and ``at_range_edge`` when the best lam is the first or last searched.
    """
    x, y = _as_points(cg, cd)
    ly = np.log(y)
    x0 = float(np.exp(np.mean(np.log(x)))) if x0 is None else float(x0)
    lams = np.asarray(lambdas, dtype=float)
    fits = []
    for lam in lams:
        t = box_cox_x(x, lam, x0)
        tm = t.mean()
        sxx = float(((t - tm) ** 2).sum())
        b = float(((t - tm) * (ly - ly.mean())).sum() / sxx)
        a = float(ly.mean() - b * tm)
        fits.append((float(((ly - a - b * t) ** 2).sum()), a, b))
    rss = np.array([f[0] for f in fits])
    i = int(np.argmin(rss))
    n_distinct = np.unique(x).size
    if n_distinct < 3:  # any lam puts a line through 2 capacities
        inside = np.ones(lams.size, dtype=bool)
    else:
        from scipy.stats import chi2

        floor = 1e-24 * max(1.0, float(((ly - ly.mean()) ** 2).sum()))  # an exact fit: only its lam(s)
        inside = x.size * np.log(np.maximum(rss, floor) / max(rss[i], floor)) <= chi2.ppf(level, 1)
    return {"lambda": float(lams[i]), "a": fits[i][1], "b": fits[i][2], "x0": x0, "rss": float(rss[i]),
            "n": int(x.size), "n_distinct_cg": int(n_distinct),
            "lambda_ci_profile": [float(lams[inside].min()), float(lams[inside].max())],
            "lambda_range": [float(lams.min()), float(lams.max())],
            "at_range_edge": bool(i in (0, lams.size - 1))}


def bootstrap_b(
    trials: pd.DataFrame,
    kind: str,
    rule: "OptimalityRule | str | Mapping | None" = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    model: str = "exponential",
    censor: bool = False,
    box_cox: bool = False,
) -> dict:
    """Percentile bootstrap CI for the slope ``b`` of one generator kind, resampling seeds.

    Each resample draws the sweep's seeds with replacement (the same draw for every cell, since
    seeds are shared across the grid), recomputes every generator's optimum under ``rule`` and refits.
    With ``censor``, an optimum at the smallest or largest critic of the grid is censored (the true
    one may lie beyond) and left out of that resample's fit. Resamples leaving fewer than 2 distinct
    generator capacities with an optimum are skipped and counted. Returns ``{"ci_b": [lo, hi] or None,
    "level", "n_boot", "n_valid", "n_seeds", "b_samples"}``; with ``box_cox`` also the
    :func:`fit_box_cox` exponent and slope per resample with 3 or more capacities (``ci_lambda``,
    ``ci_b_box_cox``, ``lambda_samples``, ``n_valid_box_cox``; ``x0`` fixed to the kind's geometric mean).
    """
    if kind not in KINDS:
        raise ScalingError(f"kind must be one of {KINDS}, got {kind!r}")
    if model not in ("exponential", "power"):
        raise ScalingError(f"model must be 'exponential' or 'power', got {model!r}")
    if not 0 < level < 1:
        raise ScalingError(f"level must be in (0, 1), got {level!r}")
    rule = OptimalityRule.from_value(rule)
    sub = trials[trials["generator_kind"] == kind]
    out = {"ci_b": None, "level": level, "n_boot": int(n_boot), "n_valid": 0, "n_seeds": 0, "b_samples": []}
    if sub.empty:
        return out
    grid = _grid(sub, rule)
    n_seeds = len(grid.seeds)
    out["n_seeds"] = n_seeds
    cg = grid.gens["generator_params"].to_numpy(dtype=float)
    x_all = cg if model == "exponential" else np.log(cg)
    x0 = float(np.exp(np.mean(np.log(cg))))
    rng = np.random.default_rng(seed)
    bs, lams, bcs = [], [], []
    for _ in range(int(n_boot)):
        weights = np.bincount(rng.integers(0, n_seeds, n_seeds), minlength=n_seeds).astype(float)
        cd = _optimum_params(grid, weights, rule, censor=censor)
        keep = np.isfinite(cd)
        x, y = x_all[keep], np.log(cd[keep])
        if np.unique(x).size < 2:
            continue
        xm = x.mean()
        bs.append(float(((x - xm) * (y - y.mean())).sum() / ((x - xm) ** 2).sum()))
        if box_cox and np.unique(x).size >= 3:
            fit = fit_box_cox(cg[keep], cd[keep], x0=x0)
            lams.append(fit["lambda"])
            bcs.append(fit["b"])
    out["n_valid"] = len(bs)
    out["b_samples"] = bs
    tail = (1 - level) / 2

    def ci(values):
        return [float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))] if values else None

    out["ci_b"] = ci(bs)
    if box_cox:
        out.update(ci_lambda=ci(lams), ci_b_box_cox=ci(bcs), lambda_samples=lams, n_valid_box_cox=len(lams),
                   x0=x0)
    return out



# --------------------------------------------------------------------------------------------
# Power: which growth the grid can detect


DELTAS = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0)
"""Planted changes of ln C_D* across a kind's C_G range (nats) tried by :func:`power_analysis`."""


def _noise_model(grid: _Grid) -> tuple[float, float]:
    """(sigma, curvature) measured from a kind's trials: the pooled seed-to-seed standard deviation of
    the score in each generator's three best cells (the noise that decides which critic looks best),
    and the median curvature k of ``mean score = c + k (ln C_D - m)^2`` fitted per generator (NaN when
    no generator's scores curve upwards)."""
    ok = grid.finished & np.isfinite(grid.fd)
    dev, dof = 0.0, 0
    for idx in grid.gen_cells:
        means = np.array([grid.fd[i][ok[i]].mean() if ok[i].any() else np.inf for i in idx])
        for i in idx[np.argsort(means)[:3]]:
            v = grid.fd[i][ok[i]]
            if v.size > 1:
                dev += float(((v - v.mean()) ** 2).sum())
                dof += v.size - 1
    sigma = math.sqrt(dev / dof) if dof else math.nan
    ln_cp = np.log(grid.cells["critic_params"].to_numpy(dtype=float))
    ks = []
    for idx in grid.gen_cells:
        means = np.array([grid.fd[i][ok[i]].mean() if ok[i].any() else np.nan for i in idx])
        keep = np.isfinite(means)
        if keep.sum() >= 3:
            k = np.polyfit(ln_cp[idx][keep], means[keep], 2)[0]
            if k > 0:
                ks.append(float(k))
    return sigma, (float(np.median(ks)) if ks else math.nan)


def seeds_to_resolve(sigma: float, curvature: float, nats: float = 1.0) -> int | None:
    """Seeds per grid point that tell a critic ``nats`` (in ln C_D) from the optimum apart against seed noise
    ``sigma``, when the score rises as ``curvature * (ln C_D - ln C_D*)^2``: the gap ``k nats^2`` must be two
    standard errors of a difference of two means, ``2 sigma sqrt(2 / n)``, so ``n >= 8 (sigma / (k nats^2))^2``.
    None when either is not a positive finite number."""
    if not (math.isfinite(sigma) and math.isfinite(curvature)) or sigma <= 0 or curvature <= 0:
        return None
    return int(math.ceil(8.0 * (sigma / (curvature * nats ** 2)) ** 2))


def noise_model(trials: pd.DataFrame, kind: str, rule=None) -> dict:
    """A kind's measured seed noise ``sigma`` and score curvature ``k`` (see :func:`power_analysis`), the
    seeds it has per grid point and the seeds that would resolve critics one nat apart."""
    rule = OptimalityRule.from_value(rule)
    sub = trials[trials["generator_kind"] == kind]
    if sub.empty:
        return {"sigma": None, "curvature": None, "n_seeds": 0, "seeds_to_resolve": None}
    grid = _grid(sub, rule)
    sigma, k = _noise_model(grid)
    return {"sigma": jsonable(sigma), "curvature": jsonable(k), "n_seeds": len(grid.seeds),
            "seeds_to_resolve": seeds_to_resolve(sigma, k)}


def power_analysis(trials: pd.DataFrame, kind: str, rule=None, deltas=DELTAS, law: str = "exponential",
                   n_sims: int = 40, n_boot: int = 40, level: float = 0.95, seed: int = 0,
                   sigma: float | None = None, curvature: float | None = None) -> dict:
    """Which growth of the optimal critic this sweep's grid could detect, with its measured noise.

    For each planted change ``delta`` of ln C_D* across the kind's C_G range (``law`` exponential:
    ``ln C_D* = a + b C_G`` with ``b = delta / (max C_G - min C_G)``; power: ``b = delta / ln(max/min)``),
    centred in the critic grid, trials are simulated on the sweep's own grid (its generators, critics
    and number of seeds) with scores ``c + k (ln C_D - ln C_D*(C_G))^2 + N(0, sigma)``, where ``sigma``
    (seed noise) and ``k`` (how sharply the score rises away from the optimum) are measured from the
    trials (:func:`_noise_model`) unless given. Each simulated sweep goes through the same analysis
    (optimum by ``rule``, censored edges left out, bootstrap over seeds); the **power** is the share of
    simulations whose ``level`` bootstrap interval of ``b`` excludes 0. All simulated runs count as
    stable (the real ones need not be: the power is an upper bound). Returns ``law``, ``sigma``,
    ``curvature``, ``deltas``, ``b``, ``power`` and ``detectable_delta`` (the smallest delta with power
    >= 0.8, or None).
    """
    rule = OptimalityRule.from_value(rule)
    if law not in ("exponential", "power"):
        raise ScalingError(f"law must be 'exponential' or 'power', got {law!r}")
    sub = trials[trials["generator_kind"] == kind]
    out = {"law": law, "sigma": None, "curvature": None, "deltas": [float(d) for d in deltas], "b": [],
           "power": [], "detectable_delta": None, "n_sims": int(n_sims), "n_boot": int(n_boot), "level": level}
    if sub.empty:
        return out
    grid = _grid(sub, rule)
    measured = _noise_model(grid)
    sigma = measured[0] if sigma is None else float(sigma)
    k = measured[1] if curvature is None else float(curvature)
    out.update(sigma=jsonable(sigma), curvature=jsonable(k), n_seeds=len(grid.seeds),
               seeds_to_resolve=seeds_to_resolve(sigma, k))
    cg = grid.gens["generator_params"].to_numpy(dtype=float)
    if not (math.isfinite(sigma) and math.isfinite(k)) or np.unique(cg).size < 2:
        out["note"] = ("no seed noise or no score curvature could be measured (one seed, or scores that do not "
                       "depend on the critic): no planted growth can be simulated")
        return out
    x = cg if law == "exponential" else np.log(cg)
    span = float(x.max() - x.min())
    ln_cp = np.log(grid.cells["critic_params"].to_numpy(dtype=float))
    centre = 0.5 * (ln_cp.min() + ln_cp.max())
    gen_of_cell = grid.cells["gen"].to_numpy()
    n_seeds = len(grid.seeds)
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2
    sim = _Grid(grid.cells, grid.gens, grid.seeds, np.zeros_like(grid.fd), np.ones_like(grid.stable),
                np.ones_like(grid.finished), grid.gen_cells)
    for delta in deltas:
        b = float(delta) / span
        opt = centre + b * (x - x.mean())  # ln C_D* per generator, centred in the grid
        hits = 0
        for _ in range(int(n_sims)):
            sim.fd = (k * (ln_cp - opt[gen_of_cell]) ** 2)[:, None] + rng.normal(0.0, sigma, (len(ln_cp), n_seeds))
            slopes = []
            for _b in range(int(n_boot)):
                weights = np.bincount(rng.integers(0, n_seeds, n_seeds), minlength=n_seeds).astype(float)
                cd = _optimum_params(sim, weights, rule, censor=True)
                keep = np.isfinite(cd)
                xs, ys = x[keep], np.log(cd[keep])
                if np.unique(xs).size >= 2:
                    xm = xs.mean()
                    slopes.append(float(((xs - xm) * (ys - ys.mean())).sum() / ((xs - xm) ** 2).sum()))
            if len(slopes) >= 0.5 * n_boot and np.quantile(slopes, tail) > 0:
                hits += 1
        out["b"].append(b)
        out["power"].append(hits / max(1, int(n_sims)))
    out["detectable_delta"] = next((d for d, p in zip(out["deltas"], out["power"]) if p >= 0.8), None)
    return out
