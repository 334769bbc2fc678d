"""Study: the capacity-scaling sweep (its definition, running it on Ray) and its analysis.

Taught in notebook ``06_capacity_scaling``; ``python -m qgan_widgets sweep`` runs it.

- :mod:`.sweep`: a sweep's definition (:class:`SweepConfig`) and its trial grid;
- :mod:`.runner`: trials on Ray, results on disk, the ``sweep`` command;
- :mod:`.optimum`: the optimality rule, the optimal critic per generator, fits and bootstrap CIs;
- :mod:`.analysis`: a sweep's analysis: per-kind fits, verdict, figure, report.
"""
from __future__ import annotations

from qgan_widgets.study.sweep import SweepConfig, SweepConfigError, CONFIG_DIR, count_params, generator_label, latent_dim_of
from qgan_widgets.study.optimum import (
    OptimalityRule, ScalingError, Fit, optimal_critic, fit_exponential, fit_power, bootstrap_b,
    compare_fits, fit_box_cox, power_analysis,
)
from qgan_widgets.study.analysis import analyze, verdict, plot_scaling, plot_scores, publish, read_table
from qgan_widgets.study.runner import RayStartError, run_sweep, run_trial, load_results

__all__ = [
    "SweepConfig", "SweepConfigError", "CONFIG_DIR", "count_params", "generator_label", "latent_dim_of",
    "OptimalityRule", "ScalingError", "Fit", "optimal_critic", "fit_exponential", "fit_power",
    "bootstrap_b", "compare_fits", "fit_box_cox", "power_analysis", "analyze", "verdict", "plot_scaling", "plot_scores", "publish", "read_table", "run_sweep", "run_trial",
    "load_results",
]
