"""``bench sweep``: how many sweep trials an hour, one by one against ensembles of S seeds.

A sweep's Ray task runs :func:`qgan_widgets.study.runner.run_trials` on one core with one TensorFlow
thread: one trial alone, or S trials that differ only in seed as one ensemble
(:mod:`qgan_widgets.training.ensemble`). This benchmark runs exactly that in one process, pinned like
a Ray worker, for each generator (4-qubit and 8-qubit quantum, a classical MLP) and each S, and
reports trials per hour (per core: a sweep on N cores runs N such tasks side by side) and where the
time goes per trial:

``first_step_s``  tracing the training step (and compiling shapes not seen before) with the first step
``steps_s``       the other training steps
``eval_s``        evaluations (decoding and scoring the samples: compute that grows with the trials)
``other_s``       building models and summarising

``x without start-up`` (JSON ``speedup_without_startup``) is what a row's ratio would be if its start-up
(first step and other) cost nothing: one by one's seconds per trial over the row's steps + eval. For an
ensemble it bounds what removing start-up can gain: what is left is each member's own arithmetic (its
circuits, its critic's updates, decoding and classifying its tiles) and the steps' fixed costs.

Sweeps score decoded images only in the evaluations a trial's record uses (the stability window; see
:func:`qgan_widgets.study.runner.first_judged_step`); one row per generator runs one by one with image
scores at every evaluation, as sweeps did before (``x before``: the speed-up against it).

Every configuration is first run once, untimed, with one step and one evaluation, so that the
simulator's compiled programs for its batch sizes exist, as they do in a sweep's long-lived workers
after their first task; each timed run then builds, traces and trains from scratch, as every task does.
The training settings are the quick sweep's (``sweep-quick.yaml``) unless overridden.
"""
from __future__ import annotations

import argparse
import time

BENCH_GENERATORS = {
    "q4": {"kind": "quantum", "num_qubits": 4, "num_layers": 2, "entangler": "cry-ring", "readout": "z",
           "backend": "statevector"},
    "q8": {"kind": "quantum", "num_qubits": 8, "num_layers": 2, "entangler": "cry-ring", "readout": "z",
           "backend": "statevector"},
    "classical": {"kind": "classical", "noise_dim": 4, "latent_dim": 4, "hidden": [8]},
}
DEFAULT_SIZES = (1, 3, 5, 10)


def _specs(generator: dict, critic_width: int, seeds, train: dict, base, all_images: bool = False) -> list[dict]:
    from qgan_widgets.study.sweep import latent_dim_of

    d = latent_dim_of(generator)
    evaluation = {**base.evaluation, **({"images_from_step": 0} if all_images else {})}
    return [{"generator": dict(generator), "critic": {"width": critic_width, "depth": 2}, "seed": s, "latent_dim": d,
             "train": dict(train), "stability": dict(base.stability), "evaluation": evaluation,
             "workspace": {**base.workspace, "latent_dim": d}, "trial_id": f"bench-{s}"} for s in seeds]


def _row(name: str, generator: dict, critic_width: int, size: int, summaries: list[dict], wall: float,
         all_images: bool = False) -> dict:
    n = len(summaries)
    per = {k: sum(float(s.get(k) or 0.0) for s in summaries) / n for k in ("first_step_s", "steps_s", "eval_s")}
    return {"generator": name, "generator_kind": generator["kind"], "images_at_every_evaluation": all_images,
            "num_qubits": generator.get("num_qubits"), "critic_width": critic_width, "ensemble_size": size,
            "trials": n, "wall_s": wall, "trials_per_hour": 3600.0 * n / wall,
            **per, "other_s": wall / n - sum(per.values()),
            "final_fd": [s.get("final_fd") for s in summaries]}


def run_throughput_bench(generators=("q4", "q8", "classical"), sizes=DEFAULT_SIZES, solo_trials: int = 3,
                         critic_width: int = 32, steps: int | None = None, say=print) -> list[dict]:
    """Rows of the benchmark (see the module docstring); ``ensemble_size`` 0 is one by one."""
    from qgan_widgets.study.runner import limit_threads, run_trials
    from qgan_widgets.study.sweep import SweepConfig

    limit_threads(1)
    base = SweepConfig.from_file("quick")
    train = dict(base.train)
    if steps is not None:
        train["steps"] = int(steps)
    rows = []
    for name in generators:
        gen = BENCH_GENERATORS[name]
        say(f"{name}: preparing (workspace, compiled shapes)")
        for size in (1, *sizes):  # untimed: one step, one evaluation
            run_trials(_specs(gen, critic_width, range(1000, 1000 + size), {**train, "steps": 1, "eval_every": 1}, base))
        for all_images in (True, False):  # before: as sweeps ran until 0.2.0; after: image scores where judged
            t0 = time.perf_counter()
            summaries = [run_trials(_specs(gen, critic_width, [s], train, base, all_images))[0]
                         for s in range(solo_trials)]
            rows.append(_row(name, gen, critic_width, 0, summaries, time.perf_counter() - t0, all_images))
            say(_line(rows[-1]))
        for size in sizes:
            t0 = time.perf_counter()
            summaries = run_trials(_specs(gen, critic_width, range(size), train, base))
            rows.append(_row(name, gen, critic_width, size, summaries, time.perf_counter() - t0))
            say(_line(rows[-1]))
    for row in rows:
        solo, before = (next(r for r in rows if r["generator"] == row["generator"] and r["ensemble_size"] == 0
                             and r["images_at_every_evaluation"] is flag) for flag in (False, True))
        row["speedup"] = row["trials_per_hour"] / solo["trials_per_hour"]
        row["speedup_vs_before"] = row["trials_per_hour"] / before["trials_per_hour"]
        row["speedup_without_startup"] = (3600.0 / solo["trials_per_hour"]) / (row["steps_s"] + row["eval_s"])
    return rows


def _how(row: dict) -> str:
    if row["images_at_every_evaluation"]:
        return "one by one, images at every evaluation (before)"
    return "one by one" if row["ensemble_size"] == 0 else f"ensemble S={row['ensemble_size']}"


def _line(row: dict) -> str:
    how = _how(row)
    return (f"  {row['generator']:>9} {how:>16}: {row['trials_per_hour']:7.0f} trials/h  "
            f"(per trial: first step {row['first_step_s']:.2f} s, steps {row['steps_s']:.2f} s, "
            f"eval {row['eval_s']:.2f} s, other {row['other_s']:.2f} s)")


def format_table(rows) -> str:
    head = ["generator", "how", "trials/h", "x one by one", "x before", "x without start-up", "first step s", "steps s",
            "eval s", "other s"]
    lines = [head]
    for r in rows:
        lines.append([r["generator"], _how(r), f"{r['trials_per_hour']:.0f}", f"{r.get('speedup', float('nan')):.2f}",
                      f"{r.get('speedup_vs_before', float('nan')):.2f}",
                      f"{r.get('speedup_without_startup', float('nan')):.2f}",
                      f"{r['first_step_s']:.2f}", f"{r['steps_s']:.2f}", f"{r['eval_s']:.2f}", f"{r['other_s']:.2f}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="sweep trials per hour: one by one against ensembles of S seeds")
    p.add_argument("--generators", default="q4,q8,classical",
                   help=f"comma-separated, of {', '.join(BENCH_GENERATORS)} (default %(default)s)")
    p.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="ensemble sizes (default %(default)s)")
    p.add_argument("--solo-trials", type=int, default=3, help="trials timed one by one (default 3)")
    p.add_argument("--critic-width", type=int, default=32, help="critic width (default 32)")
    p.add_argument("--steps", type=int, default=None, help="training steps per trial (default: the quick sweep's 800)")
    p.add_argument("--json", help="write one object per row to this JSON file")


def throughput_main(args: argparse.Namespace) -> int:
    from qgan_widgets.apps.bench import machine_summary, print_rows

    names = [g.strip() for g in args.generators.split(",") if g.strip()]
    unknown = [g for g in names if g not in BENCH_GENERATORS]
    if unknown or not names:
        raise ValueError(f"--generators: unknown {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(BENCH_GENERATORS)}")
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--sizes: expected comma-separated integers, got {args.sizes!r}") from None
    if not sizes or min(sizes) < 1 or args.solo_trials < 1 or args.critic_width < 1 or (
            args.steps is not None and args.steps < 1):
        raise ValueError("--sizes, --solo-trials, --critic-width and --steps must be >= 1")
    print(f"bench sweep: trials per hour on one core (one TensorFlow thread, as a sweep's Ray task), "
          f"critic width {args.critic_width}, quick-sweep training settings"
          + (f", {args.steps} steps" if args.steps else ""))
    print(machine_summary())
    rows = run_throughput_bench(names, sizes, args.solo_trials, args.critic_width, args.steps)
    print_rows(format_table(rows), rows, args.json)
    return 0
