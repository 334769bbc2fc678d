"""Benchmarks: figures to read, never timed tests (``python -m qgan_widgets bench generator|host|seeds|sweep|lr|classroom|explorer``).

``bench sweep`` (sweep trials per hour, one by one against ensembles) is :mod:`qgan_widgets.apps.throughput`;
``bench classroom`` (students at once on the classroom server) :mod:`.classroom_load`; ``bench explorer``
(Train -> first samples as a student changes the settings) :mod:`.first_samples`.

``bench generator`` builds the style-based quantum generator for every backend and size, and
times what training does per generator step: a forward pass on a batch of noise and the gradient
of a loss with respect to the generator's weights (``tf.GradientTape`` inside one
``tf.function``). A backend without gradients (``"qsim"``) is timed forward only and marked so.
For every (backend, size) it reports:

``first_step_s``
    build + trace/compile + the first step: what a student waits for after changing the circuit
    (each backend is first warmed up once on a tiny circuit, so one-off imports are not counted).
``ms_per_step``
    median wall time of the steps after the warm-up; ``samples_per_s`` = batch / step time.
``gflops``
    where :func:`qgan_widgets.quantum.statevector.flops_per_step` exists, the statevector backend's
    floating-point work per step divided by its step time.

A backend whose generator can be compiled whole by XLA (``"statevector"``) is timed twice: as a
``tf.function`` step (``step="graph"``, what training does: the backend's own programs are
XLA-compiled) and as one XLA-compiled step (``step="xla"``, shown as ``statevector+xla``; in
training ``TrainConfig.jit_compile=True``). The XLA step fuses the few small TensorFlow ops around
the simulation into the same program; its first step pays the extra compilation.

The table shows every backend's speed-up against ``"tfq"`` at the same size. Used by notebook
``03_style_quantum_generator`` (:func:`run_generator_bench`, :func:`format_table`) and
``benchmarks/README.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

DEFAULT_SIZES = ((3, 1), (5, 2), (8, 4), (10, 4), (12, 4))
DEFAULT_BACKENDS = ("tfq", "statevector", "qsim")
XLA_BACKENDS = ("statevector",)  # also timed as one XLA-compiled step (column "statevector+xla")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"3x1,5x2"`` -> ``[(3, 1), (5, 2)]`` (qubits x layers), or a clear ValueError."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        try:
            q, l = (int(v) for v in part.split("x"))
        except ValueError:
            raise ValueError(f"--sizes: {part!r} is not QUBITSxLAYERS, e.g. 5x2") from None
        if q < 1 or l < 1:
            raise ValueError(f"--sizes: {part!r} needs at least 1 qubit and 1 layer")
        sizes.append((q, l))
    if not sizes:
        raise ValueError("--sizes: give at least one size, e.g. 5x2")
    return sizes


def _flops_fn():
    try:
        from qgan_widgets.quantum import statevector
    except ImportError:
        return None
    return getattr(statevector, "flops_per_step", None)


def time_generator(
    backend: str,
    num_qubits: int,
    num_layers: int,
    batch: int = 128,
    steps: int = 10,
    warmup: int = 2,
    budget_s: float = 30.0,
    entangler: str = "cry-ring",
    readout: str = "z",
    seed: int = 0,
    xla_step: bool = False,
) -> dict:
    """Time one (backend, size): first step, then ``warmup`` untimed steps, then up to ``steps``
    timed ones (at least 3, fewer than ``steps`` once ``budget_s`` seconds are spent). Returns a row.
    ``xla_step``: compile the whole step with XLA (a ValueError if the generator cannot be)."""
    from qgan_widgets._tf import tf
    from qgan_widgets.models.generators import QuantumGenerator, sample_noise

    row = {"backend": backend, "num_qubits": num_qubits, "num_layers": num_layers, "batch": batch,
           "entangler": entangler, "readout": readout, "step": "xla" if xla_step else "graph"}
    try:  # a first step as for a size never seen before: no compiled programs from earlier rows
        from qgan_widgets.quantum.statevector import clear_caches
    except ImportError:
        pass
    else:
        clear_caches()
    start = time.perf_counter()
    gen = QuantumGenerator(num_qubits, num_layers, entangler, readout, backend=backend, seed=seed)
    if xla_step and not (gen.differentiable and gen.xla_compatible):
        raise ValueError(f"the {backend!r} backend cannot be compiled by XLA")
    noise = tf.constant(sample_noise(batch, gen.noise_dim, seed))
    target = tf.constant(np.random.default_rng(seed).uniform(-1, 1, (batch, gen.latent_dim)).astype(np.float32))
    if gen.differentiable:
        mode = "forward+gradient"

        @tf.function(jit_compile=True if xla_step else None)
        def step(noise):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(gen(noise) - target))
            return [loss] + tape.gradient(loss, gen.trainable_weights)
    else:
        mode = "forward"

        def step(noise):
            return [gen(noise)]

    def run_once() -> float:
        t = time.perf_counter()
        for value in step(noise):
            value.numpy()  # wait for the result
        return time.perf_counter() - t

    run_once()
    row["first_step_s"] = time.perf_counter() - start
    for _ in range(warmup):
        run_once()
    times: list[float] = []
    spent = 0.0
    while len(times) < max(steps, 1) and (len(times) < 3 or spent < budget_s):
        times.append(run_once())
        spent += times[-1]
    ms = 1000.0 * statistics.median(times)
    row.update(mode=mode, steps=len(times), ms_per_step=ms, samples_per_s=batch / (ms / 1000.0), gflops=None)
    flops = _flops_fn()
    if backend == "statevector" and flops is not None:
        row["gflops"] = float(flops(gen.style, batch, gen.latent_dim)) / (ms / 1000.0) / 1e9
    return row


def run_generator_bench(
    backends: Sequence[str] = DEFAULT_BACKENDS,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batch: int = 128,
    steps: int = 10,
    warmup: int = 2,
    budget_s: float = 30.0,
    entangler: str = "cry-ring",
    readout: str = "z",
    seed: int = 0,
    progress: Callable[[str], None] | None = print,
) -> list[dict]:
    """Time every backend at every size; rows as :func:`time_generator`, plus ``speedup_vs_tfq``.

    A backend that cannot run a size (not installed, too large for memory) gives a row with
    ``error`` and no figures, and the benchmark goes on.
    """
    from qgan_widgets.quantum.backends import BACKENDS

    for name in backends:
        if name not in BACKENDS:
            raise ValueError(f"backend must be among {', '.join(BACKENDS)}; got {name!r}")
    # Warm up each backend once on a tiny circuit (imports, TensorFlow's first trace), so that
    # first_step_s is what a running session pays for a new size, as in the dashboard.
    runs = [(name, False) for name in backends] + [(name, True) for name in backends if name in XLA_BACKENDS]
    for name, xla in runs:
        try:
            time_generator(name, 2, 1, batch=2, steps=1, warmup=0, budget_s=0.0, seed=seed, xla_step=xla)
        except (ValueError, MemoryError, ImportError):
            pass  # reported below, size by size
    rows = []
    for n, layers in sizes:
        for name, xla in runs:
            try:
                row = time_generator(name, n, layers, batch, steps, warmup, budget_s, entangler, readout, seed,
                                     xla_step=xla)
            except (ValueError, MemoryError, ImportError) as exc:
                row = {"backend": name, "num_qubits": n, "num_layers": layers, "batch": batch,
                       "entangler": entangler, "readout": readout, "step": "xla" if xla else "graph",
                       "first_step_s": None, "ms_per_step": None, "samples_per_s": None, "gflops": None,
                       "mode": None, "steps": 0, "error": str(exc)}
            rows.append(row)
            if progress:
                progress(_progress_line(row))
    for row in rows:
        ref = next((r for r in rows if r["backend"] == "tfq" and r["num_qubits"] == row["num_qubits"]
                    and r["num_layers"] == row["num_layers"] and r.get("samples_per_s")), None)
        row["speedup_vs_tfq"] = (row["samples_per_s"] / ref["samples_per_s"]
                                 if ref and row.get("samples_per_s") else None)
    return rows


def label(row: dict) -> str:
    """The row's column name: the backend, ``+xla`` when its whole step was XLA-compiled."""
    return row["backend"] + ("+xla" if row.get("step") == "xla" else "")


def _progress_line(row: dict) -> str:
    size = f"{row['num_qubits']}x{row['num_layers']}"
    if row.get("error"):
        return f"  {size:>6} {label(row):<16} skipped: {row['error']}"
    return (f"  {size:>6} {label(row):<16} first step {row['first_step_s']:.2f} s, "
            f"{row['ms_per_step']:.2f} ms/step ({row['mode']}, {row['steps']} steps)")


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def format_table(rows: Sequence[dict]) -> str:
    """Aligned tables: every backend side by side per size (ms/step, first step, speed-up vs tfq),
    then one line per (size, backend) with all figures, then the reasons for skipped rows."""
    backends = list(dict.fromkeys(label(r) for r in rows))
    sizes = list(dict.fromkeys((r["num_qubits"], r["num_layers"]) for r in rows))
    by = {(label(r), r["num_qubits"], r["num_layers"]): r for r in rows}

    def cell(r) -> str:
        if r is None:
            return ""
        if r.get("error"):
            return "skipped"
        mark = " " if r["mode"] == "forward+gradient" else "*"
        speed = "-" if r.get("speedup_vs_tfq") is None else f"{r['speedup_vs_tfq']:.1f}x"
        return f"{r['ms_per_step']:9.1f}{mark} {r['first_step_s']:7.2f} {speed:>7}"

    legend = f"{'ms/step':>10} {'first s':>7} {'vs tfq':>7}"
    wide = [["", ""] + backends, ["qubits x layers", "batch"] + [legend] * len(backends)]
    for n, layers in sizes:
        batch = next(r["batch"] for r in rows if (r["num_qubits"], r["num_layers"]) == (n, layers))
        wide.append([f"{n} x {layers}", str(batch)] + [cell(by.get((b, n, layers))) for b in backends])
    out = [_align(wide, sep=" | ")]
    if any(r.get("mode") == "forward" for r in rows):
        out.append("* forward only (the backend has no gradient); the others time forward + gradient.")
    detail = [["size", "backend", "mode", "first_step_s", "ms_per_step", "samples_per_s", "vs tfq", "GFLOP/s"]]
    for r in rows:
        detail.append([
            f"{r['num_qubits']}x{r['num_layers']}", label(r), "skipped" if r.get("error") else r["mode"],
            _fmt(r["first_step_s"], ".2f"), _fmt(r["ms_per_step"], ".2f"), _fmt(r["samples_per_s"], ",.0f"),
            _fmt(r.get("speedup_vs_tfq"), ".1f"), _fmt(r.get("gflops"), ".2f"),
        ])
    out += ["", _align(detail, left=3)]
    skipped = {(label(r), r["error"]) for r in rows if r.get("error")}
    out += [f"skipped {b}: {e}" for b, e in sorted(skipped)]
    return "\n".join(out)


def _align(table: list[list[str]], left: int = 2, sep: str = "  ") -> str:
    """Columns padded to equal width: the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    lines = []
    for row in table:
        cells = [str(v).ljust(widths[i]) if i < left else str(v).rjust(widths[i]) for i, v in enumerate(row)]
        lines.append((cells[0] + "  " + sep.join(cells[1:]) if len(cells) > 1 else cells[0]).rstrip())
    return "\n".join(lines)


def machine_summary() -> str:
    """One line: CPU, cores, Python, TensorFlow, and whether a GPU is visible."""
    from qgan_widgets._tf import tf

    gpus = tf.config.list_physical_devices("GPU")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{platform.processor() or platform.machine()}, {cores} CPU cores available, Python "
            f"{platform.python_version()}, TensorFlow {tf.__version__}, "
            f"{len(gpus)} GPU(s) visible" + (f" ({gpus[0].name})" if gpus else ""))


def write_json(rows: list[dict], path: str | Path) -> None:
    """Write the rows as a JSON list, atomically (a temporary file, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(rows, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def print_rows(table: str, rows: list[dict], json_path) -> None:
    """Print a benchmark's table and, with ``json_path``, write its rows there (every ``bench`` command)."""
    print()
    print(table)
    if json_path:
        write_json(rows, json_path)
        print(f"\nwrote {len(rows)} rows to {json_path}")


def _generator_main(args) -> int:
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    sizes = parse_sizes(args.sizes)
    print(f"bench generator: batch {args.batch}, {args.entangler}, readout {args.readout}; "
          f"{args.warmup} warm-up + up to {args.steps} timed steps per configuration")
    print(machine_summary())
    rows = run_generator_bench(backends, sizes, args.batch, args.steps, args.warmup, args.budget_s,
                               args.entangler, args.readout, args.seed)
    print_rows(format_table(rows), rows, args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m qgan_widgets bench generator|host|seeds|sweep|lr|classroom|explorer [options]``."""
    parser = argparse.ArgumentParser(prog="python -m qgan_widgets bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    gen = sub.add_parser("generator", help="forward + gradient steps of the quantum generator, per backend")
    gen.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                     help="comma-separated backends (default %(default)s)")
    gen.add_argument("--sizes", default=",".join(f"{q}x{l}" for q, l in DEFAULT_SIZES),
                     help="comma-separated QUBITSxLAYERS (default %(default)s)")
    gen.add_argument("--batch", type=int, default=128)
    gen.add_argument("--steps", type=int, default=10, help="timed steps per configuration (default 10)")
    gen.add_argument("--warmup", type=int, default=2, help="untimed steps after the first (default 2)")
    gen.add_argument("--budget-s", type=float, default=30.0,
                     help="stop timing a configuration after this many seconds (at least 3 steps)")
    gen.add_argument("--entangler", default="cry-ring")
    gen.add_argument("--readout", default="z")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--json", help="write the rows to this JSON file")
    host = sub.add_parser("host", help="the same seed under host variations (cores, oneDNN, BLAS): identical?")
    host.add_argument("--steps", type=int, default=80, help="training steps of the probe (default 80)")
    host.add_argument("--seed", type=int, default=0)
    host.add_argument("--json", help="write the rows to this JSON file")
    seeds = sub.add_parser("seeds", help="the demo over several seeds: each seed's scores and their spread")
    seeds.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,3,7 (default 0-4)")
    seeds.add_argument("--quick", action="store_true", help="the quick demo (default: the full one)")
    seeds.add_argument("--steps", type=int, default=None, help="override the demo's training steps")
    seeds.add_argument("--json", help="write the rows and the spread to this JSON file")
    from qgan_widgets.apps import classroom_load, first_samples, lr_pilot
    from qgan_widgets.apps.throughput import add_parser, throughput_main

    add_parser(sub)
    lr_pilot.add_parser(sub)
    classroom_load.add_parser(sub)
    first_samples.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.what == "host":
            from qgan_widgets.apps.reproduce import host_main

            return host_main(args)
        if args.what == "seeds":
            from qgan_widgets.apps.reproduce import seeds_main

            return seeds_main(args)
        if args.what == "sweep":
            return throughput_main(args)
        if args.what == "lr":
            return lr_pilot.lr_main(args)
        if args.what == "classroom":
            return classroom_load.classroom_main(args)
        if args.what == "explorer":
            return first_samples.explorer_main(args)
        if args.batch < 1 or args.steps < 1 or args.warmup < 0:
            raise ValueError("--batch and --steps must be >= 1 and --warmup >= 0")
        return _generator_main(args)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
