"""Capacity scaling: the optimal critic per generator, and how its size grows with the generator's.

Taught in notebook ``06_capacity_scaling``. The paper's claim: with training optimality defined as
"training stable and the FD low and stable", the optimal critic capacity ``C_D*`` (trainable
parameters) grows exponentially with the generator capacity ``C_G``, for quantum and classical
generators alike. This module turns a table of finished trials (one row per generator x critic x
seed, as :mod:`qgan_widgets.experiments` writes to ``trials.csv``) into:

* :func:`optimal_critic`: ``C_D*`` per generator under a stated :class:`OptimalityRule`; ties,
  optima at the edge of the critic grid and generators without a stable trial are kept and flagged;
* :func:`fit_exponential` (``ln C_D* = a + b C_G``) and :func:`fit_power` (``ln C_D* = a + b ln C_G``)
  with R^2 and AIC, so the two descriptions can be compared on the same response;
* :func:`bootstrap_b`: a confidence interval for ``b`` from resampling seeds (the optimum and the
  fit are recomputed on every resample);
* :func:`analyze`: all of the above for a sweep directory, writing ``fit.json``, ``optimal.csv``,
  ``scaling.png`` and ``report.md`` whose verdict says plainly what the data do and do not support.

NumPy, pandas and matplotlib only: no TensorFlow, no Ray.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

KINDS = ("quantum", "classical")
RULES = ("min_fd", "smallest_within")


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


def _cell_stats(grid: _Grid, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: finished count, stable count, mean FD over stable seeds, qualifies (weights = seed counts)."""
    w = weights[None, :]
    n_fin = (grid.finished * w).sum(axis=1)
    n_st = (grid.stable * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fd_mean = np.where(grid.stable, grid.fd, 0.0) @ weights / n_st
    return n_fin, n_st, fd_mean, n_st > 0


def _choose(params: np.ndarray, fd_mean: np.ndarray, ok: np.ndarray, rule: OptimalityRule):
    """Index (into the given arrays) of the optimal critic and the indices it tied with / was within."""
    cand = np.flatnonzero(ok)
    if cand.size == 0:
        return None, cand
    best = fd_mean[cand].min()
    slack = rule.tie_rtol if rule.name == "min_fd" else rule.tolerance
    close = cand[fd_mean[cand] <= best + abs(best) * slack + 1e-12]
    return close[np.argmin(params[close])], close


def _qualifies(grid: _Grid, n_fin: np.ndarray, n_st: np.ndarray, rule: OptimalityRule) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n_fin > 0, n_st / np.maximum(n_fin, 1e-300), 0.0)
    return (n_st > 0) & (frac >= rule.min_stable_fraction - 1e-12)


def _optimum_params(grid: _Grid, weights: np.ndarray, rule: OptimalityRule) -> np.ndarray:
    """C_D* per generator (NaN where none qualifies) for one weighting of the seeds."""
    n_fin, n_st, fd_mean, _ = _cell_stats(grid, weights)
    ok = _qualifies(grid, n_fin, n_st, rule)
    params = grid.cells["critic_params"].to_numpy(dtype=float)
    out = np.full(len(grid.gens), np.nan)
    for g, idx in enumerate(grid.gen_cells):
        pick, _ = _choose(params[idx], fd_mean[idx], ok[idx], rule)
        if pick is not None:
            out[g] = params[idx][pick]
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
    n_fin, n_st, fd_mean, _ = _cell_stats(grid, np.ones(len(grid.seeds)))
    ok = _qualifies(grid, n_fin, n_st, rule)
    params = grid.cells["critic_params"].to_numpy(dtype=float)
    rows = []
    for g, idx in enumerate(grid.gen_cells):
        gen = grid.gens.iloc[g]
        row = {k: gen[k] for k in GEN_KEYS}
        row.update(n_critics=int(idx.size), n_qualifying=int(ok[idx].sum()))
        pick, close = _choose(params[idx], fd_mean[idx], ok[idx], rule)
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
        stable_fds = grid.fd[c][grid.stable[c]]
        widths = grid.cells.iloc[idx[close]]["critic_width"].tolist()
        if rule.name == "min_fd":
            status = "tie" if close.size > 1 else "ok"
            note = f"tied critic widths {widths}; smallest chosen" if close.size > 1 else ""
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
        d = {k: _jsonable(v) for k, v in asdict(self).items() if k not in ("cg", "cd")}
        d["formula"] = "ln C_D* = a + b * C_G" if self.model == "exponential" else "ln C_D* = a + b * ln C_G"
        return d


def _jsonable(v):
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
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


def bootstrap_b(
    trials: pd.DataFrame,
    kind: str,
    rule: "OptimalityRule | str | Mapping | None" = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    model: str = "exponential",
) -> dict:
    """Percentile bootstrap CI for the slope ``b`` of one generator kind, resampling seeds.

    Each resample draws the sweep's seeds with replacement (the same draw for every cell, since
    seeds are shared across the grid), recomputes every generator's optimum under ``rule`` and refits.
    Resamples leaving fewer than 2 distinct generator capacities with an optimum are skipped and
    counted. Returns ``{"ci_b": [lo, hi] or None, "level", "n_boot", "n_valid", "n_seeds", "b_samples"}``.
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
    rng = np.random.default_rng(seed)
    bs = []
    for _ in range(int(n_boot)):
        weights = np.bincount(rng.integers(0, n_seeds, n_seeds), minlength=n_seeds).astype(float)
        cd = _optimum_params(grid, weights, rule)
        keep = np.isfinite(cd)
        x, y = x_all[keep], np.log(cd[keep])
        if np.unique(x).size < 2:
            continue
        xm = x.mean()
        bs.append(float(((x - xm) * (y - y.mean())).sum() / ((x - xm) ** 2).sum()))
    out["n_valid"] = len(bs)
    out["b_samples"] = bs
    if bs:
        tail = (1 - level) / 2
        out["ci_b"] = [float(np.quantile(bs, tail)), float(np.quantile(bs, 1 - tail))]
    return out


# --------------------------------------------------------------------------------------------
# One kind's analysis, the verdict, the plot


def fit_kind(
    trials: pd.DataFrame, kind: str, rule=None, optimum: pd.DataFrame | None = None,
    n_boot: int = 1000, level: float = 0.95, seed: int = 0,
) -> dict:
    """Fits, bootstrap CI and a plain-words verdict for one generator kind (the ``fit.json`` entry)."""
    rule = OptimalityRule.from_value(rule)
    if optimum is None:
        optimum = optimal_critic(trials, rule)
    opt = optimum[optimum["generator_kind"] == kind]
    have = opt[np.isfinite(opt["critic_params"].astype(float))]
    result: dict[str, Any] = {
        "n_generators": int(len(opt)),
        "n_points": int(len(have)),
        "n_distinct_cg": int(have["generator_params"].nunique()),
        "points": [
            {"generator_label": r.generator_label, "C_G": int(r.generator_params), "C_D*": int(r.critic_params),
             "status": r.status, "at_edge": r.at_edge, "n_rivals": int(r.n_rivals)}
            for r in have.itertuples()
        ],
        "no_optimum": [
            {"generator_label": r.generator_label, "C_G": int(r.generator_params), "status": r.status, "note": r.note}
            for r in opt[~np.isfinite(opt["critic_params"].astype(float))].itertuples()
        ],
        "a": None, "b": None, "r2": None, "ci_b": None, "se_b": None, "aic": None,
    }
    exp_fit = pow_fit = None
    if result["n_distinct_cg"] >= 2:
        cg, cd = have["generator_params"].to_numpy(float), have["critic_params"].to_numpy(float)
        exp_fit, pow_fit = fit_exponential(cg, cd), fit_power(cg, cd)
        result.update({k: v for k, v in exp_fit.to_dict().items() if k in ("a", "b", "r2", "se_b", "aic", "rss", "formula")})
        result["power"] = pow_fit.to_dict()
        preferred, d_aic = compare_fits(exp_fit, pow_fit)
        result["preferred"], result["delta_aic_power_minus_exp"] = preferred, _jsonable(d_aic)
        boot = bootstrap_b(trials, kind, rule, n_boot=n_boot, level=level, seed=seed)
        result["ci_b"] = boot["ci_b"]
        result["bootstrap"] = {k: boot[k] for k in ("level", "n_boot", "n_valid", "n_seeds")}
    result["verdict"] = verdict(kind, result, exp_fit, pow_fit)
    return result


def verdict(kind: str, result: Mapping[str, Any], exp_fit: Fit | None, pow_fit: Fit | None) -> list[str]:
    """Plain sentences on what one kind's data support (``report.md``, ``fit.json``); the last is the bottom line."""
    n, n_gen = result["n_distinct_cg"], result["n_generators"]
    if n_gen == 0:
        return [f"No {kind} generator was in the sweep."]
    out, doubts = [], []
    if result["no_optimum"]:
        labels = ", ".join(f"{p['generator_label']} ({p['status']})" for p in result["no_optimum"])
        out.append(f"{len(result['no_optimum'])} of {n_gen} {kind} generators have no optimal critic: {labels}.")
    if n < 3:
        out.append(f"Only {n} {kind} generator capacit{'y has' if n == 1 else 'ies have'} an optimum: "
                   + ("no trend can be estimated." if n < 2 else "any line passes through 2 points, so R^2 = 1 "
                      "means nothing and the exponential and power law cannot be told apart."))
    if n < 2:
        return out + ["Bottom line: too few optima to test the scaling claim."]
    b, ci = exp_fit.b, result.get("ci_b")
    boot = result.get("bootstrap", {})
    level = f"{boot.get('level', 0.95):.0%}"
    flat = len(set(exp_fit.cd)) == 1
    if flat:
        out.append(f"Every {kind} generator with an optimum has the same optimal critic (C_D* = {exp_fit.cd[0]:.0f}): "
                   "no change with C_G within this grid.")
    if ci is None:
        out.append("No bootstrap resample kept 2 distinct capacities with an optimum: no CI for b.")
    elif ci[0] <= 0 <= ci[1]:
        out.append(f"b = {b:.3g} per generator parameter; its {level} bootstrap CI [{ci[0]:.3g}, {ci[1]:.3g}] "
                   "includes 0.")
    else:
        how = f"doubles every {math.log(2) / b:.3g}" if b > 0 else f"halves every {math.log(2) / -b:.3g}"
        out.append(f"C_D* {'grows' if b > 0 else 'shrinks'} with C_G: b = {b:.3g} per generator parameter (C_D* {how} "
                   f"generator parameters), {level} bootstrap CI [{ci[0]:.3g}, {ci[1]:.3g}] excludes 0.")
    if ci is not None and ci[0] == ci[1] and not flat:
        out.append("Every bootstrap resample picks the same critics, so the CI has zero width: it reflects "
                   "seed-to-seed variation only, not the coarseness of the critic grid.")
    if boot.get("n_seeds", 0) and boot["n_seeds"] < 3:
        doubts.append("few seeds")
        out.append(f"Only {boot['n_seeds']} seed(s): the bootstrap over seeds has few distinct resamples.")
    if boot and boot.get("n_valid", 0) < 0.9 * boot.get("n_boot", 1):
        out.append(f"{boot['n_boot'] - boot['n_valid']} of {boot['n_boot']} bootstrap resamples had too few "
                   "optima to fit and were skipped.")
    preferred = "indistinguishable"
    if n > 2 and not flat:
        preferred, d = result["preferred"], result["delta_aic_power_minus_exp"]
        r2e, r2p = _fmt(exp_fit.r2), _fmt(pow_fit.r2)
        if preferred == "indistinguishable":
            dtxt = "" if d is None else f" (AIC difference {d:+.2f}, below 2)"
            out.append(f"Exponential (R^2 {r2e}) and power law (R^2 {r2p}) describe the points equally well{dtxt}.")
        else:
            out.append(f"The {preferred} law fits better: R^2 exponential {r2e} vs power law {r2p}, "
                       f"AIC(power) - AIC(exponential) = {d:+.2f}.")
    edges = [p for p in result["points"] if p["at_edge"]]
    if edges:
        doubts.append("optima at the edge of the critic grid")
        where = ", ".join(f"{p['generator_label']} ({p['at_edge']})" for p in edges)
        out.append(f"{len(edges)} of {n} optima sit at the edge of the critic grid ({where}): the true optimum may "
                   "lie outside the widths tried; widen the grid.")
    unresolved = [p for p in result["points"] if p.get("n_rivals")]
    if unresolved:
        doubts.append("critics the seeds cannot separate")
        out.append(f"For {len(unresolved)} of {n} generators another critic's mean FD lies within one standard error "
                   "of the optimum's: the seeds do not resolve which critic is best (more seeds or longer "
                   "training would).")
    ties = [p for p in result["points"] if p["status"] == "tie"]
    if ties:
        out.append(f"{len(ties)} optima are ties broken towards the smallest critic.")
    if n == 2:
        doubts.append("only 2 capacities")
    # The bottom line.
    if ci is None or ci[0] <= 0 <= ci[1] or flat:
        bottom = "no evidence that the optimal critic size changes with the generator size."
    else:
        trend = "C_D* grows with C_G" if b > 0 else "C_D* shrinks as C_G grows (against the paper's claim)"
        law = {"exponential": ", better described by an exponential than a power law",
               "power": ", better described by a power law than an exponential"}.get(preferred, "")
        bottom = trend + law
        bottom += f"; tentative: {', '.join(doubts)}." if doubts else "."
    return out + [f"Bottom line: {bottom}"]


def plot_scaling(optimum: pd.DataFrame, fits: Mapping[str, Mapping[str, Any]] | None = None, ax=None, path=None,
                 critic_grid: Iterable[float] = ()):
    """``ln C_D*`` against ``C_G`` for both kinds with their exponential (solid) and power-law (dashed) fits.

    ``optimum`` is :func:`optimal_critic`'s table; ``fits`` maps kind -> ``fit.json`` entry (needs
    ``a``, ``b`` and ``power``). Optima at the edge of the critic grid are drawn hollow; the critic
    sizes tried (``critic_grid``, parameter counts) are drawn as faint lines, the only values C_D*
    can take. Saves to ``path`` (atomically) if given; returns the figure.
    """
    if ax is None:
        from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend needed

        fig = Figure(figsize=(6.4, 4.4), dpi=120)
        ax = fig.subplots()
    else:
        fig = ax.figure
    colors = {"quantum": "tab:purple", "classical": "tab:green"}
    for i, cp in enumerate(sorted(set(float(c) for c in critic_grid if c == c and c > 0))):
        ax.axhline(np.log(cp), color="0.6", lw=0.8, ls=":", zorder=0, label="critic sizes tried" if i == 0 else None)
    for kind in KINDS:
        opt = optimum[(optimum["generator_kind"] == kind) & np.isfinite(optimum["critic_params"].astype(float))]
        if opt.empty:
            continue
        cg = opt["generator_params"].to_numpy(float)
        y = np.log(opt["critic_params"].to_numpy(float))
        edge = opt["at_edge"].astype(str).to_numpy() != ""
        ax.scatter(cg[~edge], y[~edge], color=colors[kind], label=f"{kind} C_D*", zorder=3)
        if edge.any():
            ax.scatter(cg[edge], y[edge], facecolors="none", edgecolors=colors[kind], zorder=3,
                       label=f"{kind} C_D* at grid edge")
        fit = (fits or {}).get(kind) or {}
        if fit.get("b") is not None and fit.get("a") is not None:
            xs = np.linspace(cg.min(), cg.max(), 100)
            ax.plot(xs, fit["a"] + fit["b"] * xs, color=colors[kind],
                    label=f"{kind} exp: b={fit['b']:.3g}, R²={_fmt(fit.get('r2'))}")
            p = fit.get("power") or {}
            if p.get("b") is not None:
                ax.plot(xs, p["a"] + p["b"] * np.log(xs), color=colors[kind], ls="--",
                        label=f"{kind} power: R²={_fmt(p.get('r2'))}")
    ax.set_xlabel("generator capacity C_G (trainable parameters)")
    ax.set_ylabel("ln C_D* (optimal critic parameters)")
    ax.set_title("Optimal critic capacity vs generator capacity")
    ax.grid(axis="x", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no generator has an optimal critic", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp)
        os.replace(tmp, path)
    return fig


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


# --------------------------------------------------------------------------------------------
# A sweep directory: fit.json, optimal.csv, scaling.png, report.md


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace`` (no half-written file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def analyze(
    out_dir, rule=None, n_boot: int | None = None, level: float | None = None, seed: int | None = None,
    plot: bool = True, verbose: bool = False,
) -> dict:
    """Analyse a sweep directory: optimum per generator, fits, bootstrap CI, figure and report.

    Reads ``trials.csv`` (and the analysis settings in ``sweep.json`` when present: ``rule``,
    ``n_boot``, ``level``, ``seed``; arguments override them). Writes ``optimal.csv``, ``fit.json``,
    ``scaling.png`` (if ``plot``) and ``report.md``; returns ``{"optimum": DataFrame, "fits": dict,
    "report": str}``.
    """
    out_dir = Path(out_dir)
    trials_path = out_dir / "trials.csv"
    if not trials_path.exists():
        raise ScalingError(f"{trials_path}: no trials.csv in {out_dir} (run the sweep first)")
    trials = pd.read_csv(trials_path)
    sweep = {}
    if (out_dir / "sweep.json").exists():
        sweep = json.loads((out_dir / "sweep.json").read_text())
    settings = dict(sweep.get("analysis") or {})
    rule = OptimalityRule.from_value(rule if rule is not None else settings.get("rule"))
    n_boot = int(n_boot if n_boot is not None else settings.get("n_boot", 1000))
    level = float(level if level is not None else settings.get("level", 0.95))
    seed = int(seed if seed is not None else settings.get("seed", 0))
    optimum = optimal_critic(trials, rule) if len(trials) else optimal_critic(_empty_trials(rule), rule)
    fits = {kind: fit_kind(trials, kind, rule, optimum, n_boot=n_boot, level=level, seed=seed) for kind in KINDS}
    fits["rule"] = rule.to_dict()
    fits["rule_description"] = rule.describe()
    tmp_csv = out_dir / ".optimal.csv.tmp"
    optimum.to_csv(tmp_csv, index=False)
    os.replace(tmp_csv, out_dir / "optimal.csv")
    atomic_write_text(out_dir / "fit.json", json.dumps(fits, indent=2, default=_jsonable) + "\n")
    if plot:
        grid = trials["critic_params"] if "critic_params" in trials else ()
        plot_scaling(optimum, fits, path=out_dir / "scaling.png", critic_grid=grid)
    report = render_report(trials, optimum, fits, rule, sweep)
    atomic_write_text(out_dir / "report.md", report)
    if verbose:
        print(report)
    return {"optimum": optimum, "fits": fits, "report": report}


def _empty_trials(rule: OptimalityRule) -> pd.DataFrame:
    return pd.DataFrame(columns=list(REQUIRED) + [rule.fd_column])


def markdown_table(df: pd.DataFrame, columns: Iterable[str] | None = None) -> str:
    """A small GitHub-markdown table (no extra dependency)."""
    cols = list(columns or df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df[cols].iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, (float, np.floating)):
                v = "" if math.isnan(v) else (f"{v:.4g}" if not float(v).is_integer() else f"{int(v)}")
            cells.append(str(v).replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_report(trials: pd.DataFrame, optimum: pd.DataFrame, fits: Mapping, rule: OptimalityRule,
                  sweep: Mapping | None = None) -> str:
    """``report.md``: what was run, the optimum per generator, the fits, and what the data support."""
    sweep = sweep or {}
    status = trials["status"].value_counts().to_dict() if "status" in trials else {}
    lines = [f"# Capacity-scaling sweep{': ' + sweep['name'] if sweep.get('name') else ''}", ""]
    n_seeds = trials["seed"].nunique() if "seed" in trials else 0
    lines.append(
        f"{len(trials)} trials ({', '.join(f'{v} {k}' for k, v in sorted(status.items())) or 'none'}), "
        f"{n_seeds} seed(s)."
    )
    if "dataset" in trials and trials["dataset"].notna().any():
        names = sorted(trials["dataset"].dropna().astype(str).unique())
        lines.append(f"Data: {', '.join(names)}.")
        if any("synthetic" in n for n in names):
            lines.append("**The data are the built-in synthetic stand-in, not SAT-4: the scaling shown is that "
                         "of the stand-in.**")
    train = sweep.get("train") or {}
    if train:
        lines.append("Training: " + ", ".join(f"{k}={v}" for k, v in train.items()) + ".")
    if "wall_time_s" in trials and trials["wall_time_s"].notna().any():
        lines.append(f"Trial wall time: total {trials['wall_time_s'].sum():.0f} s, "
                     f"median {trials['wall_time_s'].median():.1f} s.")
    lines += ["", f"Optimality rule `{rule.name}`: {rule.describe()}.", ""]
    failed = trials[trials["status"] == "failed"] if "status" in trials else trials.iloc[0:0]
    if len(failed):
        lines.append(f"**{len(failed)} trial(s) failed** (after retries; see `error` in trials.csv); "
                     "re-running the sweep retries them.")
        lines.append("")
    lines += ["## Optimal critic per generator", ""]
    cols = ["generator_kind", "generator_label", "generator_params", "critic_width", "critic_params",
            "fd_mean", "fd_std", "n_stable", "n_seeds", "status", "at_edge", "note"]
    lines += [markdown_table(optimum, cols) if len(optimum) else "(no trials)", ""]
    lines += ["## Fits", "", "ln C_D* = a + b C_G (exponential) and ln C_D* = a + b ln C_G (power law).", ""]
    rows = []
    for kind in KINDS:
        f = fits.get(kind, {})
        p = f.get("power") or {}
        ci = f.get("ci_b")
        rows.append({
            "kind": kind, "points": f.get("n_points", 0), "a": _fmt(f.get("a")), "b": _fmt(f.get("b")),
            "CI b": "n/a" if not ci else f"[{ci[0]:.3g}, {ci[1]:.3g}]",
            "R² exp": _fmt(f.get("r2")), "R² power": _fmt(p.get("r2")), "b power": _fmt(p.get("b")),
            "preferred": f.get("preferred", "n/a"),
        })
    lines += [markdown_table(pd.DataFrame(rows)), ""]
    lines += ["## What the data support", ""]
    for kind in KINDS:
        lines.append(f"**{kind.capitalize()}.** " + " ".join(fits.get(kind, {}).get("verdict", [])))
        lines.append("")
    lines += [
        "Caveats: C_D* can only take the critic sizes in the grid; FD from small samples is biased "
        "upwards and noisy, so the stability judgement and the optimum depend on the evaluation size; "
        "a small sweep (few steps, few seeds) shows whether the pipeline works, not whether the paper's "
        "claim holds at scale.",
        "",
        "Figure: `scaling.png`. Tables: `trials.csv`, `optimal.csv`. Fits: `fit.json`.",
        "",
    ]
    return "\n".join(lines)
