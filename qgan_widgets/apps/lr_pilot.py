"""The learning-rate pilot of the capacity study (``python -m qgan_widgets bench lr``).

One learning rate for critics from 41 to 263,000 parameters confounds "the optimal critic" with "the
critic whose optimizer happens to be tuned". The pilot trains one generator against critics of a few
widths, each at a few critic learning rates, all seeds of a (width, rate) cell as one ensemble, on the
study's workspace and training settings, and scores every trial like the study does (the FD's excess
over the reconstruction floor, median over the stability window; stability judged on that excess).
Per width it reports the rate with the lowest mean excess over all seeds (unstable seeds count) and
the rates within one standard error of it; the study's ``critic.lr_scaling`` is chosen from that
table (``results/capacity-study/lr-pilot.json`` holds the run behind the packaged study).
"""
from __future__ import annotations

import json
import math
import time

import numpy as np

DEFAULT_WIDTHS = (8, 32, 128)
DEFAULT_RATES = (1e-3, 3e-3, 1e-2)
DEFAULT_GENERATOR = {"kind": "quantum", "num_qubits": 4, "num_layers": 2, "entangler": "cry-ring",
                     "readout": "z", "backend": "statevector"}


def run_lr_pilot(widths=DEFAULT_WIDTHS, rates=DEFAULT_RATES, seeds=(0, 1, 2), config: str = "study",
                 generator: dict | None = None, steps: int | None = None, verbose: bool = True) -> dict:
    """Train ``generator`` (default 4 qubits x 2 layers) against critics of ``widths`` at the critic
    learning ``rates``, ``seeds`` as one ensemble per cell, with the training, stability and evaluation
    settings of the sweep ``config`` (``steps`` overrides its step count). Returns ``{"rows": [...],
    "best": {width: rate}, "within_one_se": {width: [rates]}, "settings": {...}}``."""
    from qgan_widgets.pipeline import Workspace
    from qgan_widgets.study.sweep import SweepConfig
    from qgan_widgets.training import run_ensemble

    sweep = SweepConfig.from_file(config)
    ws_options = {k: v for k, v in sweep.workspace.items() if v is not None}
    ws = Workspace.prepare(**ws_options, verbose=False)
    gen = dict(generator or DEFAULT_GENERATOR)
    train = dict(sweep.train)
    if steps is not None:
        train["steps"] = int(steps)
    evaluation = dict(sweep.evaluation)
    if "images_from_step" not in evaluation:  # image scores only where a trial is judged, as the sweep does
        from qgan_widgets.study.runner import first_judged_step
        from qgan_widgets.training import TrainConfig

        evaluation["images_from_step"] = first_judged_step(TrainConfig.from_dict({**train, "seed": 0}),
                                                           sweep.stability.get("window"))
    rows = []
    for width in widths:
        for rate in rates:
            t0 = time.perf_counter()
            summaries = run_ensemble(gen, {"width": int(width), "depth": sweep.critic["depth"]},
                                     {**train, "lr_critic": float(rate), "seed": int(seeds[0])}, seeds=list(seeds),
                                     workspace=ws, evaluator_options=evaluation,
                                     stability_options=dict(sweep.stability))
            excess = np.array([s["fd_excess"] for s in summaries], dtype=np.float64)
            row = {"critic_width": int(width), "critic_params": summaries[0]["critic_params"], "lr_critic": float(rate),
                   "excess_mean": float(np.mean(excess)),
                   "excess_se": float(np.std(excess, ddof=1) / math.sqrt(len(excess))) if len(excess) > 1 else math.nan,
                   "excess": excess.tolist(), "stable": int(sum(bool(s["stable"]) for s in summaries)),
                   "rel_spread": [s["rel_spread"] for s in summaries], "kid": [s["kid_window"] for s in summaries],
                   "steps_s": sum(s["steps_s"] for s in summaries), "eval_s": sum(s["eval_s"] for s in summaries),
                   "seeds": len(summaries), "wall_s": time.perf_counter() - t0}
            rows.append(row)
            if verbose:
                print(f"  critic width {width:4d}  lr {rate:.0e}: excess {row['excess_mean']:.3f} "
                      f"± {row['excess_se']:.3f} (SE), {row['stable']}/{row['seeds']} stable (spreads "
                      f"{', '.join(f'{v:.2f}' for v in row['rel_spread'])}), {row['wall_s']:.0f} s "
                      f"(steps {row['steps_s']:.0f} s, evaluations {row['eval_s']:.0f} s)",
                      flush=True)
    return {"rows": rows, **choose_rates(rows),
            "settings": {"config": sweep.name, "generator": gen, "train": train, "seeds": list(seeds),
                         "evaluation": evaluation, "stability": dict(sweep.stability),
                         "data": ws.dataset.name + (" (stand-in)" if ws.dataset.is_standin else ""),
                         "n_eval": ws.n_eval, "extractor": ws.extractor.name}}


def choose_rates(rows: list[dict]) -> dict:
    """Per critic width, the rate with the lowest mean excess (``best``) and the rates within one standard
    error of it (``within_one_se``); ``at_edge`` lists the widths whose best rate is the smallest or largest
    rate tried there (the optimum may lie beyond)."""
    best, within, edge = {}, {}, []
    for width in sorted({r["critic_width"] for r in rows}):
        cell = sorted((r for r in rows if r["critic_width"] == width), key=lambda r: r["lr_critic"])
        top = min(cell, key=lambda r: r["excess_mean"])
        best[int(width)] = top["lr_critic"]
        limit = top["excess_mean"] + (top["excess_se"] if math.isfinite(top["excess_se"]) else 0.0)
        within[int(width)] = [r["lr_critic"] for r in cell if r["excess_mean"] <= limit]
        if len(cell) > 1 and top["lr_critic"] in (cell[0]["lr_critic"], cell[-1]["lr_critic"]):
            edge.append(int(width))
    return {"best": best, "within_one_se": within, "at_edge": edge}


def format_pilot(result: dict) -> str:
    """The pilot as a text table: rows per (width, rate), then the best rate per width."""
    lines = [f"{'width':>6} {'C_D':>7} {'lr_critic':>9} {'excess':>8} {'SE':>7} {'stable':>7}"]
    for r in result["rows"]:
        lines.append(f"{r['critic_width']:>6} {r['critic_params']:>7} {r['lr_critic']:>9.0e} {r['excess_mean']:>8.3f} "
                     f"{r['excess_se']:>7.3f} {r['stable']:>3}/{r['seeds']:<3}")
    lines.append("best rate per width (rates within one SE of it): " + "; ".join(
        f"w{w}: {b:.0e} ({', '.join(f'{x:.0e}' for x in result['within_one_se'][w])})"
        for w, b in result["best"].items()))
    if result.get("at_edge"):
        lines.append(f"at the edge of the rates tried (the best may lie beyond): widths {result['at_edge']}")
    return "\n".join(lines)


def lr_main(args) -> int:
    """``bench lr``: run the pilot, print its table, write ``--json``."""
    widths = [int(w) for w in args.widths.split(",")]
    rates = [float(r) for r in args.rates.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    if any(w < 1 for w in widths) or any(not (0 < r < 1) for r in rates) or len(seeds) < 2:
        raise ValueError("--widths must be >= 1, --rates in (0, 1), and --seeds at least two seeds")
    print(f"bench lr: critic widths {widths} x critic learning rates {rates}, seeds {seeds}, "
          f"the {args.config!r} sweep's settings" + (f", {args.steps} steps" if args.steps else ""), flush=True)
    result = run_lr_pilot(widths, rates, seeds, config=args.config, steps=args.steps)
    print(format_pilot(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
            fh.write("\n")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("lr", help="the capacity study's learning-rate pilot: critic widths x critic learning rates")
    p.add_argument("--widths", default=",".join(map(str, DEFAULT_WIDTHS)), help="critic widths (default %(default)s)")
    p.add_argument("--rates", default=",".join(f"{r:g}" for r in DEFAULT_RATES),
                   help="critic learning rates (default %(default)s)")
    p.add_argument("--seeds", default="0,1,2", help="seeds, trained as one ensemble per cell (default %(default)s)")
    p.add_argument("--config", default="study", help="the sweep whose settings the pilot uses (default %(default)s)")
    p.add_argument("--steps", type=int, default=None, help="override the sweep's training steps")
    p.add_argument("--json", help="write the rows and the choice to this JSON file")
