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
* :func:`bootstrap_b`: a confidence interval for ``b`` from resampling seeds (the optimum and the
  fit are recomputed on every resample).

:mod:`qgan_widgets.study.analysis` turns these into a sweep's ``fit.json``, figure and report.
NumPy and pandas only: no TensorFlow, no Ray.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

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

