"""Capacity scaling for a sweep directory: per-kind fits, the verdict, the figure and the report.

Taught in notebook ``06_capacity_scaling``. :func:`analyze` reads a sweep's ``trials.csv`` (as
:mod:`qgan_widgets.study.runner` writes it), finds the optimal critic per generator and fits its
growth (the numbers come from :mod:`qgan_widgets.study.optimum`), and writes ``fit.json``,
``optimal.csv``, ``scaling.png`` (:func:`plot_scaling`) and ``report.md`` (:func:`render_report`)
whose verdict (:func:`verdict`) says plainly what the data do and do not support.

The names of :mod:`qgan_widgets.study.optimum` (``optimal_critic``, ``OptimalityRule``,
``fit_exponential``, ``fit_power``, ...) live there; :mod:`qgan_widgets.study` hands both modules' names on
(``qw.study.analyze``, ``qw.study.optimal_critic``). NumPy, pandas and matplotlib only: no TensorFlow, no Ray.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from qgan_widgets.training.rundir import atomic_write_text
from qgan_widgets.study.optimum import KINDS, REQUIRED, Fit, OptimalityRule, ScalingError, bootstrap_b, compare_fits, fit_box_cox, fit_exponential, fit_power, jsonable, noise_model, optimal_critic, power_analysis

# --------------------------------------------------------------------------------------------
# One kind's analysis, the verdict, the plot


def fit_kind(
    trials: pd.DataFrame, kind: str, rule=None, optimum: pd.DataFrame | None = None,
    n_boot: int = 1000, level: float = 0.95, seed: int = 0, power_sims: int = 40,
) -> dict:
    """Fits, bootstrap CIs and a plain-words verdict for one generator kind (the ``fit.json`` entry).

    Optima at the smallest or largest critic of the grid are **censored** (the true optimum may lie
    beyond the widths tried): they are listed (``censored``) and left out of every fit, and the
    bootstrap leaves out each resample's censored optima. Beside the exponential and power-law lines,
    the Box-Cox family (:func:`~qgan_widgets.study.optimum.fit_box_cox`, lam = 1 exponential, lam -> 0
    power law) gives lam with a profile interval and a bootstrap interval over seeds. With
    ``power_sims`` > 0, :func:`~qgan_widgets.study.optimum.power_analysis` says which growth this grid
    could detect with the measured seed noise (``power_analysis``; ``power_sims`` simulated sweeps of 40
    bootstrap resamples per planted growth).
    """
    rule = OptimalityRule.from_value(rule)
    if optimum is None:
        optimum = optimal_critic(trials, rule)
    opt = optimum[optimum["generator_kind"] == kind]
    found = opt[np.isfinite(opt["critic_params"].astype(float))]
    censored = found["at_edge"].astype(str) != ""
    have = found[~censored]
    all_cg = opt["generator_params"].to_numpy(float)
    result: dict[str, Any] = {
        "n_generators": int(len(opt)),
        "cg_range": [int(all_cg.min()), int(all_cg.max())] if len(all_cg) else None,
        "n_points": int(len(have)),
        "n_distinct_cg": int(have["generator_params"].nunique()),
        "points": [
            {"generator_label": r.generator_label, "C_G": int(r.generator_params), "C_D*": int(r.critic_params),
             "status": r.status, "at_edge": r.at_edge, "n_rivals": int(r.n_rivals)}
            for r in have.itertuples()
        ],
        "censored": [
            {"generator_label": r.generator_label, "C_G": int(r.generator_params), "C_D*": int(r.critic_params),
             "at_edge": r.at_edge}
            for r in found[censored].itertuples()
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
        result["preferred"], result["delta_aic_power_minus_exp"] = preferred, jsonable(d_aic)
        boot = bootstrap_b(trials, kind, rule, n_boot=n_boot, level=level, seed=seed, censor=True, box_cox=True)
        result["ci_b"] = boot["ci_b"]
        result["bootstrap"] = {k: boot[k] for k in ("level", "n_boot", "n_valid", "n_seeds", "n_valid_box_cox")}
        if result["n_distinct_cg"] >= 3:  # through 2 points every lambda fits exactly
            bc = fit_box_cox(cg, cd, x0=boot.get("x0"), level=level)
            bc.update(ci_lambda=boot.get("ci_lambda"), ci_b=boot.get("ci_b_box_cox"),
                      formula="ln C_D* = a + b * ((C_G / x0)^lambda - 1) / lambda")
            result["box_cox"] = bc
    n_critics = trials.loc[trials["generator_kind"] == kind, "critic_params"].nunique() if len(trials) else 0
    if power_sims and len(opt) >= 2 and n_critics >= 3:
        result["power_analysis"] = power_analysis(trials, kind, rule, n_sims=power_sims, level=level, seed=seed)
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
    censored = result.get("censored") or []
    if censored:
        where = ", ".join(f"{p['generator_label']} (C_D* {p['C_D*']}, {p['at_edge']} critic)" for p in censored)
        out.append(f"{len(censored)} {kind} optim{'um is' if len(censored) == 1 else 'a are'} censored: at the edge of "
                   f"the critic grid ({where}), where the true optimum may lie beyond the widths tried; "
                   "left out of the fits (widen the critic grid past them to use them).")
    if n < 3:
        out.append(f"Only {n} {kind} generator capacit{'y has' if n == 1 else 'ies have'} an uncensored optimum: "
                   + ("no trend can be estimated." if n < 2 else "any line passes through 2 points, so R^2 = 1 "
                      "means nothing and the exponential and power law cannot be told apart."))
    if n < 2:
        return out + ["Bottom line: too few uncensored optima to test the scaling claim; the data cannot tell. "
                      "What would: optima inside the critic grid (widen it), for more generator capacities."]
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
    if censored:
        doubts.append("censored optima left out")
    bc = result.get("box_cox") or {}
    family_tells = None
    if bc and n >= 3:
        ci_l = bc.get("ci_lambda")
        prof = bc.get("lambda_ci_profile")
        lo, hi = (ci_l or prof or [None, None])
        span = f"[{lo:g}, {hi:g}]" if lo is not None else "n/a"
        searched = bc.get("lambda_range", [-1, 2])
        if lo is None:
            family_tells = None
        elif lo <= 0 <= hi and lo <= 1 <= hi:
            family_tells = "neither"
        elif lo <= 1 <= hi:
            family_tells = "exponential"
        elif lo <= 0 <= hi:
            family_tells = "power"
        else:
            family_tells = "other"
        meaning = {"neither": "it includes both 1 (exponential) and 0 (power law): the data cannot tell them apart",
                   "exponential": "it includes 1 (exponential) and excludes 0 (power law)",
                   "power": "it includes 0 (power law) and excludes 1 (exponential)",
                   "other": "it excludes both 1 (exponential) and 0 (power law)"}.get(family_tells, "")
        edge = (f" (the interval reaches the searched range [{searched[0]:g}, {searched[1]:g}]: the data bound "
                "lambda no further)") if lo is not None and (lo <= searched[0] or hi >= searched[1]) else ""
        which = f"{level} bootstrap" if ci_l else "profile-likelihood"
        out.append(f"Box-Cox family ln C_D* = a + b((C_G/x0)^lambda - 1)/lambda: lambda = {bc['lambda']:g}, {which} "
                   f"interval {span}{edge}; {meaning}.")
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
    # The bottom line. A CI of zero width (every resample picks the same critics) or one from fewer than half
    # of the resamples measures too little to carry a trend: the data cannot tell.
    degenerate = ci is not None and ci[0] == ci[1] and not flat
    sparse = bool(boot) and boot.get("n_valid", 0) < 0.5 * boot.get("n_boot", 1)
    if ci is None or ci[0] <= 0 <= ci[1] or flat:
        bottom = "no evidence that the optimal critic size changes with the generator size."
    elif degenerate or sparse:
        why = [w for w, on in (("its bootstrap CI has zero width (it measures seed noise, not the critic grid's "
                                "coarseness)", degenerate),
                               (f"only {boot.get('n_valid', 0)} of {boot.get('n_boot', 0)} bootstrap resamples could "
                                "be fitted", sparse)) if on]
        bottom = (f"the data cannot tell: the fitted b = {b:.3g} ({'grows' if b > 0 else 'shrinks'}) is not a "
                  f"finding, because {' and '.join(why)}.")
    else:
        trend = "C_D* grows with C_G" if b > 0 else "C_D* shrinks as C_G grows (against the paper's claim)"
        if family_tells in ("exponential", "power"):
            law = f", and the Box-Cox exponent favours the {'exponential' if family_tells == 'exponential' else 'power'} law"
        elif family_tells == "neither":
            law = ", but the data cannot tell an exponential from a power law"
        else:
            law = {"exponential": ", better described by an exponential than a power law",
                   "power": ", better described by a power law than an exponential"}.get(preferred, "")
        bottom = trend + law
        bottom += f"; tentative: {', '.join(doubts)}." if doubts else "."
    pa = result.get("power_analysis") or {}
    if pa.get("power"):
        d80 = pa.get("detectable_delta")
        noise = f"seed noise sigma = {pa['sigma']:.3g} in the score, score curvature k = {pa['curvature']:.3g} per nat^2"
        if d80 is not None:
            i = pa["deltas"].index(d80)
            out.append(f"Power (simulated sweeps on this grid with its {noise}): a growth of ln C_D* by {d80:g} nats "
                       f"across the C_G range (a factor {math.exp(d80):.3g} in C_D*; exponential b = {pa['b'][i]:.3g}) "
                       f"is detected {pa['power'][i]:.0%} of the time; smaller growth may go unseen.")
        else:
            out.append(f"Power (simulated sweeps on this grid with its {noise}): even a growth of ln C_D* by "
                       f"{pa['deltas'][-1]:g} nats across the C_G range is detected only {pa['power'][-1]:.0%} of "
                       "the time: this grid cannot answer the question.")
        if pa.get("seeds_to_resolve") and pa.get("n_seeds"):
            out.append(f"Against this noise, telling a critic one nat (a factor e in parameters) from the optimum "
                       f"takes about {pa['seeds_to_resolve']:,} seeds per grid point (8 (sigma / k)^2); the grid has "
                       f"{pa['n_seeds']}.")
    elif pa.get("note"):
        out.append(f"Power: not estimated ({pa['note']}).")
    if (family_tells in (None, "neither") or degenerate or sparse) and n >= 2:
        bottom += " What would tell: " + "; ".join(what_would_tell(result)) + "."
    return out + [f"Bottom line: {bottom}"]


def what_would_tell(result: Mapping[str, Any]) -> list[str]:
    """What a kind's result lacks, from its own numbers: the capacity range, censored optima, and the
    seeds (or a sharper score) that its measured noise calls for."""
    needs = []
    span = result.get("cg_range")
    if span and span[0] > 0 and span[1] / span[0] < 10:
        needs.append(f"generator capacities over a decade or more (this grid spans a factor {span[1] / span[0]:.2g})")
    if result.get("censored"):
        needs.append("optima inside the critic grid (widen it past the censored ones)")
    pa = result.get("power_analysis") or {}
    seeds, have = pa.get("seeds_to_resolve"), pa.get("n_seeds")
    if seeds and have and seeds > have:
        needs.append(f"a score that rises more sharply with the critic than its seed noise (longer training, more "
                     f"evaluation tiles) or about {seeds:,} seeds per grid point instead of {have}")
    return needs or ["more seeds"]


def _save(fig, path):
    """Save ``fig`` to ``path`` (if given) through a temporary name and ``os.replace``; return it."""
    if path is not None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp)
        os.replace(tmp, path)
    return fig


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
    return _save(fig, path)


def plot_scores(trials: pd.DataFrame, optimum: pd.DataFrame | None = None, rule=None, path=None):
    """The score the rule ranks (``rule.fd_column``) against critic capacity, one line per generator
    and one panel per kind: the mean over every finished seed (unstable ones included, as the
    ``one_se`` rule counts them) with a band of +- one standard error over seeds, and each seed as a
    faint dot (hollow: unstable). The optimum of ``optimum`` (``optimal_critic``'s table) is ringed.
    Saves to ``path`` (atomically) if given; returns the figure."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    rule = OptimalityRule.from_value(rule)
    col = rule.fd_column
    done = trials[(trials["status"] == "done")] if "status" in trials else trials
    kinds = [k for k in KINDS if (done["generator_kind"] == k).any()] or list(KINDS[:1])
    fig = Figure(figsize=(5.2 * len(kinds), 4.2), dpi=110)
    axes = np.atleast_1d(fig.subplots(1, len(kinds), sharey=True))
    for ax, kind in zip(axes, kinds):
        rows = done[done["generator_kind"] == kind]
        gens = rows.drop_duplicates("generator_label").sort_values("generator_params")
        cmap = colormaps["viridis"]
        for i, (_, gen) in enumerate(gens.iterrows()):
            color = cmap(i / max(1, len(gens) - 1))
            g = rows[rows["generator_label"] == gen["generator_label"]]
            stats = g.groupby("critic_params")[col].agg(["mean", "std", "count"]).sort_index()
            x = stats.index.to_numpy(float)
            se = (stats["std"] / np.sqrt(stats["count"])).fillna(0.0).to_numpy(float)
            ax.plot(x, stats["mean"], color=color, lw=1.5,
                    label=f"{gen['generator_label']} (C_G={int(gen['generator_params'])})")
            ax.fill_between(x, stats["mean"] - se, stats["mean"] + se, color=color, alpha=0.2, lw=0)
            stable = g["stable"].astype(str).str.lower().isin(["true", "1"])
            ax.scatter(g.loc[stable, "critic_params"], g.loc[stable, col], s=6, color=color, alpha=0.5)
            ax.scatter(g.loc[~stable, "critic_params"], g.loc[~stable, col], s=10, facecolors="none",
                       edgecolors=color, alpha=0.6, lw=0.7)
            if optimum is not None and len(optimum):
                o = optimum[optimum["generator_label"] == gen["generator_label"]]
                if len(o) and np.isfinite(float(o["critic_params"].iloc[0])):
                    cp = float(o["critic_params"].iloc[0])
                    if cp in stats.index:
                        ax.scatter([cp], [stats.loc[cp, "mean"]], s=90, facecolors="none", edgecolors="red", lw=1.5,
                                   zorder=4, label="C_D* (rule)" if i == 0 else None)
        ax.set_xscale("log")
        ax.set_xlabel("critic capacity C_D (trainable parameters)")
        ax.set_title(f"{kind} generators")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in axes:
        if col == "fd_excess":
            ax.axhline(0.0, color="#c0392b", ls=":", lw=1.0)  # the reconstruction floor
    axes[0].set_ylabel(f"{BESIDE.get(col, col)}")
    fig.suptitle(f"{BESIDE.get(col, col)} against critic capacity: mean over seeds ± one SE (band), each seed a dot "
                 "(hollow: unstable run)" + ("; dotted: the floor" if col == "fd_excess" else ""), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


# --------------------------------------------------------------------------------------------
# A sweep directory: fit.json, optimal.csv, scaling.png, report.md


def analyze(
    out_dir, rule=None, n_boot: int | None = None, level: float | None = None, seed: int | None = None,
    plot: bool = True, verbose: bool = False, power_sims: int | None = None,
) -> dict:
    """Analyse a sweep directory: optimum per generator, fits, bootstrap CI, figure and report.

    Reads ``trials.csv`` (and the analysis settings in ``sweep.json`` when present: ``rule``,
    ``n_boot``, ``level``, ``seed``, ``power_sims`` (0: no power analysis); arguments override them). Writes ``optimal.csv``, ``fit.json``,
    ``scaling.png`` (if ``plot``) and ``report.md``; returns ``{"optimum": DataFrame, "fits": dict,
    "report": str}``.
    """
    out_dir = Path(out_dir)
    trials_path = out_dir / "trials.csv"
    if not trials_path.exists():
        raise ScalingError(f"{trials_path}: no trials.csv in {out_dir} (run the sweep first)")
    trials = read_table(trials_path)
    sweep = {}
    if (out_dir / "sweep.json").exists():
        sweep = json.loads((out_dir / "sweep.json").read_text())
    settings = dict(sweep.get("analysis") or {})
    rule = OptimalityRule.from_value(rule if rule is not None else settings.get("rule"))
    n_boot = int(n_boot if n_boot is not None else settings.get("n_boot", 1000))
    level = float(level if level is not None else settings.get("level", 0.95))
    seed = int(seed if seed is not None else settings.get("seed", 0))
    power_sims = int(power_sims if power_sims is not None else settings.get("power_sims", 40))
    optimum = optimal_critic(trials, rule) if len(trials) else optimal_critic(_empty_trials(rule), rule)
    fits = {kind: fit_kind(trials, kind, rule, optimum, n_boot=n_boot, level=level, seed=seed, power_sims=power_sims)
            for kind in KINDS}
    fits["rule"] = rule.to_dict()
    fits["rule_description"] = rule.describe()
    fits["beside"] = beside_scores(trials, rule, optimum)
    tmp_csv = out_dir / ".optimal.csv.tmp"
    optimum.to_csv(tmp_csv, index=False)
    os.replace(tmp_csv, out_dir / "optimal.csv")
    atomic_write_text(out_dir / "fit.json", json.dumps(fits, indent=2, default=jsonable) + "\n")
    if plot:
        grid = trials["critic_params"] if "critic_params" in trials else ()
        plot_scaling(optimum, fits, path=out_dir / "scaling.png", critic_grid=grid)
        if len(trials) and rule.fd_column in trials:
            plot_scores(trials, optimum, rule, path=out_dir / "scores.png")
    report = render_report(trials, optimum, fits, rule, sweep)
    atomic_write_text(out_dir / "report.md", report)
    if verbose:
        print(report)
    return {"optimum": optimum, "fits": fits, "report": report}


def read_table(path) -> pd.DataFrame:
    """A sweep table (``trials.csv``, ``optimal.csv``), skipping the ``# data: ...`` lines that
    :func:`publish` puts first."""
    with open(path) as fh:
        skip = 0
        for line in fh:
            if not line.startswith("#"):
                break
            skip += 1
    return pd.read_csv(path, skiprows=skip)


def data_line(trials: pd.DataFrame) -> str:
    """What a sweep's numbers come from, in one line: the data set(s), stand-in or real, the score's
    N and extractor (from the trial table)."""
    names = sorted(trials["dataset"].dropna().astype(str).unique()) if "dataset" in trials else []
    text = ", ".join(names) or "unknown data"
    if any("synthetic" in n for n in names):
        text += " (STAND-IN: the built-in synthetic data, not real SAT-4)"
    for col, what in (("n_eval", "N={} generated and real tiles per score"), ("extractor", "extractor: {}")):
        if col in trials and trials[col].notna().any():
            values = sorted(set(trials[col].dropna().map(lambda v: str(int(v)) if isinstance(v, float) else str(v))))
            text += "; " + what.format("/".join(values))
    return text


PUBLISHED = ("trials.csv", "optimal.csv", "fit.json", "report.md", "scaling.png", "scores.png", "sweep.json")


def publish(out_dir, dest) -> Path:
    """Copy a sweep's results to ``dest`` (e.g. ``results/capacity-study``) with the data they come
    from in their first line: ``# data: ...`` in the CSVs, ``"data"`` first in the JSON files, an HTML
    comment atop ``report.md``. The published ``trials.csv`` re-analyses with :func:`analyze`."""
    import shutil

    out_dir, dest = Path(out_dir), Path(dest)
    missing = [n for n in PUBLISHED[:4] if not (out_dir / n).is_file()]
    if missing:
        raise ScalingError(f"{out_dir}: no {', '.join(missing)} (run the sweep and its analysis first)")
    dest.mkdir(parents=True, exist_ok=True)
    line = data_line(read_table(out_dir / "trials.csv"))
    for name in PUBLISHED:
        src = out_dir / name
        if not src.is_file():
            continue
        if name.endswith(".csv"):
            text = "".join(l for l in src.read_text().splitlines(keepends=True) if not l.startswith("#"))
            atomic_write_text(dest / name, f"# data: {line}\n" + text)
        elif name.endswith(".json"):
            atomic_write_text(dest / name, json.dumps({"data": line, **json.loads(src.read_text())}, indent=2) + "\n")
        elif name.endswith(".md"):
            atomic_write_text(dest / name, f"<!-- data: {line} -->\n" + src.read_text())
        else:
            shutil.copyfile(src, dest / name)
    return dest


BESIDE = {"fd_window": "image FD (total)", "fd_excess": "image FD excess over the floor",
          "fd_latent_window": "latent FD", "kid_window": "KID", "final_fd": "final image FD"}
"""Scores a trial records beside the one its sweep ranks, and their names in the report."""


def beside_scores(trials: pd.DataFrame, rule: OptimalityRule, optimum: pd.DataFrame) -> dict:
    """The same rule applied to the other recorded scores (latent FD, KID): each one's optimum per generator
    and its seed noise and curvature per kind (:func:`~qgan_widgets.study.optimum.noise_model`), with the
    ranked score's for comparison. Reported beside the verdict, never instead of it: the ranked score was
    chosen before the sweep ran."""
    out = {}
    for col in [rule.fd_column] + [c for c in ("fd_latent_window", "kid_window") if c != rule.fd_column]:
        if col not in trials or not np.isfinite(pd.to_numeric(trials[col], errors="coerce")).any():
            continue
        alt = OptimalityRule(**{**rule.to_dict(), "fd_column": col})
        opt = optimum if col == rule.fd_column else optimal_critic(trials, alt)
        out[col] = {"name": BESIDE.get(col, col), "ranked": col == rule.fd_column,
                    "optimum": {r.generator_label: (None if not np.isfinite(float(r.critic_params)) else
                                                    f"{int(r.critic_params)}{' (edge)' if r.at_edge else ''}")
                                for r in opt.itertuples()},
                    **{kind: noise_model(trials, kind, alt) for kind in KINDS}}
    return out


def _beside_lines(trials: pd.DataFrame, beside: Mapping) -> list[str]:
    if len(beside) < 2:
        return []
    cols = list(beside)
    gens = trials.drop_duplicates("generator_label").sort_values(["generator_kind", "generator_params"])
    rows = [{"generator": g.generator_label, "C_G": int(g.generator_params),
             **{f"C_D* by {beside[c]['name']}": beside[c]["optimum"].get(g.generator_label) or "none" for c in cols}}
            for g in gens.itertuples()]
    noise = []
    for c in cols:
        for kind in KINDS:
            m = beside[c].get(kind) or {}
            if m.get("sigma") is not None:
                noise.append({"score": beside[c]["name"] + (" (ranked)" if beside[c]["ranked"] else ""), "kind": kind,
                              "seed noise sigma": _fmt(m["sigma"]), "curvature k per nat^2": _fmt(m["curvature"]),
                              "sigma / k": _fmt(m["sigma"] / m["curvature"]) if m.get("curvature") else "n/a",
                              "seeds to resolve 1 nat": "n/a" if m.get("seeds_to_resolve") is None
                              else f"{m['seeds_to_resolve']:,}"})
    return ["## Beside it: the other scores", "",
            "The same rule on the scores recorded beside the ranked one (the ranked score was fixed before the "
            "sweep ran; these say what another study could rank on, not what this one found). A score whose seed "
            "noise is small next to how sharply it rises away from the best critic (small sigma / k) resolves the "
            "optimum with fewer seeds.", "",
            markdown_table(pd.DataFrame(rows)), "", markdown_table(pd.DataFrame(noise)) if noise else "", ""]


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
    lines += ["## Fits", "", "ln C_D* = a + b C_G (exponential), ln C_D* = a + b ln C_G (power law) and the Box-Cox "
              "family ln C_D* = a + b((C_G/x0)^lambda - 1)/lambda between them (lambda = 1 exponential, 0 power law), "
              "on the uncensored optima (optima at the edge of the critic grid are censored and left out).", ""]
    rows = []
    for kind in KINDS:
        f = fits.get(kind, {})
        p = f.get("power") or {}
        bc = f.get("box_cox") or {}
        ci = f.get("ci_b")
        ci_l = bc.get("ci_lambda")
        rows.append({
            "kind": kind, "points": f.get("n_points", 0), "censored": len(f.get("censored") or []),
            "a": _fmt(f.get("a")), "b": _fmt(f.get("b")),
            "CI b": "n/a" if not ci else f"[{ci[0]:.3g}, {ci[1]:.3g}]",
            "R² exp": _fmt(f.get("r2")), "R² power": _fmt(p.get("r2")), "b power": _fmt(p.get("b")),
            "lambda": _fmt(bc.get("lambda")), "CI lambda": "n/a" if not ci_l else f"[{ci_l[0]:.3g}, {ci_l[1]:.3g}]",
            "preferred (AIC)": f.get("preferred", "n/a"),
        })
    lines += [markdown_table(pd.DataFrame(rows)), ""]
    lines += ["## What the data support", ""]
    for kind in KINDS:
        lines.append(f"**{kind.capitalize()}.** " + " ".join(fits.get(kind, {}).get("verdict", [])))
        lines.append("")
    lines += _beside_lines(trials, fits.get("beside") or {})
    lines += [
        "Caveats: C_D* can only take the critic sizes in the grid; FD from small samples is biased "
        "upwards and noisy, so the stability judgement and the optimum depend on the evaluation size; "
        "a small sweep (few steps, few seeds) shows whether the pipeline works, not whether the paper's "
        "claim holds at scale.",
        "",
        "Figures: `scaling.png` (C_D* against C_G), `scores.png` (the ranked score against critic capacity "
        "per generator, seed bands). Tables: `trials.csv`, `optimal.csv`. Fits: `fit.json`.",
        "",
    ]
    return "\n".join(lines)
