"""How much a score moves, and for which reasons: ``bench host`` and ``bench seeds``.

``bench host`` runs one small pipeline (data, VAE, classifier, a short quantum training: what the
quick demo does, with ``--steps`` training steps) in fresh processes under host variations it can
make on one machine: beside a CPU hog, one core instead of all (CPU affinity), oneDNN capped to
AVX2 or switched off, BLAS on one thread, and TensorFlow's thread count left to the machine (``QGAN_THREADS=0``) on
one core and on all. With the toolkit's fixed thread count the scores must be identical; the last
two rows show what the machine's core count does without it.

``bench seeds`` runs the demo (quick or full) for several seeds, each in a fresh process with an empty
cache as ``make demo`` runs it, and prints each seed's scores, time and their spread: the range a
reader's own run should land near (on another CPU the same seed is another draw: README, "The stack").
The README quotes both tables.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

KEYS = ("fd_untrained", "fd_generated", "fd_classical", "fd_reconstruction_floor")
EXTRA_KEYS = ("gap_closed", "classifier_accuracy_ratio", "class_mix_tv", "class_mix_tv_classical")
"""Summarised over seeds beside ``KEYS`` (shares and ratios: no FD scale)."""
LABELS = {"fd_untrained": "untrained", "fd_generated": "quantum", "fd_classical": "classical",
          "fd_reconstruction_floor": "floor"}

class Variant(NamedTuple):
    """One host variation: extra environment, CPU affinity (None: as given), a busy loop per core beside
    it, and whether its scores must equal the default's."""

    name: str
    env: dict = {}
    cpus: set | None = None
    must_match: bool = True
    hog: bool = False


HOST_VARIANTS = [
    Variant("default (this machine's cores)"),
    Variant("beside a CPU hog (busy loop per core)", hog=True),
    Variant("one core (CPU affinity)", cpus={0}),
    Variant("oneDNN capped to AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    Variant("oneDNN off", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    Variant("oneDNN allowed its newest code", {"ONEDNN_MAX_CPU_ISA": "ALL"}, must_match=False),
    Variant("BLAS on one thread", {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}),
    Variant("QGAN_THREADS=0, all cores", {"QGAN_THREADS": "0"}, must_match=False),
    Variant("QGAN_THREADS=0, one core", {"QGAN_THREADS": "0"}, {0}, must_match=False),
]


def pipeline_scores(steps: int = 80, seed: int = 0, quick: bool = True, out: str | None = None) -> dict:
    """The demo's scores (``KEYS``) from a fresh cache: what ``bench host`` compares across variants."""
    from qgan_widgets.apps.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="qgan-probe-") as tmp:
        summary = run_demo(quick=quick, out=out or os.path.join(tmp, "demo"), seed=seed, steps=steps,
                           verbose=False, progress=False, inception=False)
    return {k: summary[k] for k in (*KEYS, *EXTRA_KEYS, "wall_time_s")}


def _child(args_json: str) -> None:  # runs in the probe process, a batch job like `make demo`
    from qgan_widgets._allocator import keep_freed_memory

    keep_freed_memory()
    print("RESULT " + json.dumps(pipeline_scores(**json.loads(args_json))), flush=True)


def _hog(n: int) -> list:
    """``n`` busy-loop processes (one per core): the load that thread timing would have to survive."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run_variant(variant: Variant, steps: int, seed: int, timeout: float = 1800) -> dict:
    """``pipeline_scores`` in a fresh process with its own empty cache, under ``variant``."""
    hogs = _hog(os.cpu_count() or 1) if variant.hog else []
    try:
        return _run_probe(variant.env, variant.cpus, steps, seed, timeout)
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def _run_probe(env: dict, cpus: set | None, steps: int | None, seed: int, timeout: float, quick: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="qgan-host-") as cache:
        full_env = {**os.environ, **env, "QGAN_CACHE_DIR": cache}
        for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):  # the probe must pick its own
            full_env.pop(var, None)
        code = ("from qgan_widgets.apps.reproduce import _child; "
                f"_child({json.dumps(json.dumps({'steps': steps, 'seed': seed, 'quick': quick}))})")
        preexec = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
                             timeout=timeout, preexec_fn=preexec)
        lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
        if run.returncode != 0 or not lines:
            raise RuntimeError(f"the probe failed (exit {run.returncode}): {run.stderr[-2000:]}")
        return {**json.loads(lines[-1][len("RESULT "):]), "process_s": round(time.perf_counter() - t0, 1)}


def host_table(steps: int = 80, seed: int = 0, variants=None) -> list[dict]:
    rows = []
    for v in variants or HOST_VARIANTS:
        rows.append({"variant": v.name, "must_match": v.must_match, **run_variant(v, steps, seed)})
        print(_row_text(rows[-1], rows[0]), flush=True)
    return rows


def _row_text(row: dict, ref: dict) -> str:
    same = all(row[k] == ref[k] for k in KEYS)
    verdict = "identical" if same else ("DIFFERENT" if row["must_match"] else "different (expected)")
    scores = "  ".join(f"{LABELS[k]} {row[k]:.6g}" for k in KEYS)
    return f"  {row['variant']:<34} {scores}  {row['process_s']:6.1f} s  {verdict}"


def seed_table(seeds, quick: bool, steps: int | None = None, timeout: float = 3600) -> list[dict]:
    """The demo for each seed, each in a fresh process with an empty cache, as ``make demo`` runs it: the
    VAE and the classifier are seeded too, and ``wall_time_s`` is a first run's (several demos in one
    process ran slower each time: 284, 276, 306, 328 and 362 s for seeds 0-4 of the full demo)."""
    rows = []
    for seed in seeds:
        row = {"seed": seed, **_run_probe({}, None, steps, seed, timeout, quick=quick)}
        rows.append(row)
        print("  seed {seed}: ".format(**row) + "  ".join(f"{LABELS[k]} {row[k]:.4g}" for k in KEYS)
              + f"  gap closed {row['gap_closed']:.0%}  accuracy ratio {row['classifier_accuracy_ratio']:.2f}"
              f"  class-mix TV {row['class_mix_tv']:.2f} / {row['class_mix_tv_classical']:.2f}"
              f"  ({row['wall_time_s']:.0f} s; {row['process_s']:.0f} s with Python's start)", flush=True)
    return rows


def spread_summary(rows: list[dict]) -> dict:
    """Mean, standard deviation, min and max per score over the seeds."""
    import math

    out = {}
    for k in (*KEYS, *EXTRA_KEYS):
        values = [float(r[k]) for r in rows if r.get(k) is not None and math.isfinite(float(r[k]))]
        if not values:  # e.g. gap_closed is undefined when the floor is not below the untrained score
            out[k] = {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n": 0}
            continue
        out[k] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                  "min": min(values), "max": max(values), "n": len(values)}
    return out


def host_main(args) -> int:
    from qgan_widgets.apps.bench import machine_summary

    print(f"bench host: the quick demo's pipeline with {args.steps} training steps, seed {args.seed}, "
          f"each variant in a fresh process with an empty cache")
    print(machine_summary())
    rows = host_table(args.steps, args.seed)
    bad = [r["variant"] for r in rows if r["must_match"] and any(r[k] != rows[0][k] for k in KEYS)]
    print("\nall variants that must match are identical" if not bad else f"\nDIFFERENT: {', '.join(bad)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if bad else 0


def seeds_main(args) -> int:
    from qgan_widgets.apps.bench import machine_summary

    seeds = _parse_seeds(args.seeds)
    print(f"bench seeds: the {'quick' if args.quick else 'full'} demo for seeds {seeds} (fresh cache each)")
    print(machine_summary())
    rows = seed_table(seeds, args.quick, args.steps)
    summary = spread_summary(rows)
    print("\nscore        mean     std      min      max   seeds")
    for k, s in summary.items():
        name = LABELS.get(k, k)
        print(f"  {name:<10} {s['mean']:8.4g} {s['std']:8.3g} {s['min']:8.4g} {s['max']:8.4g}   {s['n']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "spread": summary, "quick": args.quick},
                                              indent=2) + "\n")
    return 0


def _parse_seeds(text: str) -> list[int]:
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(v) for v in text.split("-", 1))
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds must be like 0-4 or 0,1,2 (seeds >= 0), got {text!r}")
    return seeds
