"""``python -m qgan_widgets bench explorer``: how long a student waits, after pressing Train, for the
first samples, as they change the settings in one dashboard kernel on a warm server.

"Warm server" as the classroom server makes it: the VAEs of the latent sizes asked for are prepared on
disk first (``classroom --latents``), TensorFlow is loaded (the dashboard loads it in the background once
shown), and nothing else is: each new shape's generator, critic and training step are built, traced and
compiled in the timed part, as they are for a student. A shape seen before in the kernel is a new model
too (a new run), so the list may repeat one to show what a second time costs.
"""
from __future__ import annotations

import json
import time

DEFAULT_SETTINGS = "3x2,1x1,4x2,6x4,8x2,8x8,12x2,3x2"
"""QUBITSxLAYERS in the order a student might try them (the last repeats the first shape)."""
GOAL_S = 10.0
"""Issue 17's goal: first samples at most this many seconds after Train, up to 8 qubits."""
GOAL_QUBITS = 8


def parse_settings(spec: str) -> list[tuple[int, int]]:
    """``"3x2,8x8"`` -> ``[(3, 2), (8, 8)]``; ``ValueError`` naming ``--settings``."""
    from qgan_widgets.widgets.state import MAX_LAYERS, MAX_QUBITS

    out = []
    for part in str(spec).replace(" ", "").split(","):
        try:
            q, layers = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise ValueError(f"--settings: {part!r} is not QUBITSxLAYERS (e.g. 8x2) in {spec!r}") from None
        if not (1 <= q <= MAX_QUBITS and 1 <= layers <= MAX_LAYERS):
            raise ValueError(f"--settings: {part!r} is outside the Explorer's 1-{MAX_QUBITS} qubits x "
                             f"1-{MAX_LAYERS} layers")
        out.append((q, layers))
    return out


def measure(settings: list[tuple[int, int]], say=print) -> dict:
    """Prepare the settings' latent sizes on disk (a child process, not timed), then in this process:
    load TensorFlow (not timed: the dashboard does it in the background once shown), and for each
    setting press Train for one evaluation interval and time Train -> first step and Train -> first
    samples. Returns ``{"rows": [...]}``."""
    from qgan_widgets.apps.classroom import prepare_workspaces

    latents = sorted({q for q, _ in settings})  # readout z: latent size = qubits
    say(f"preparing the VAEs for latent sizes {latents} (not timed; cached after the first time)...")
    prepare_workspaces(latents)
    from qgan_widgets.widgets import Explorer
    from qgan_widgets.widgets.runner import load_training

    load_training()
    ex = Explorer()
    rows, seen = [], set()
    for q, layers in settings:
        ex.set(num_qubits=q, num_layers=layers)
        marks: dict[str, float] = {}
        start = time.perf_counter()

        def on_step(change, marks=marks, start=start):
            if "step" not in marks and change["new"] >= 1:
                marks["step"] = time.perf_counter() - start

        def on_samples(change, marks=marks, start=start):
            if "samples" not in marks and change["new"] is not None:
                marks["samples"] = time.perf_counter() - start

        ex.state.observe(on_step, "step")
        ex.state.observe(on_samples, "samples")
        try:
            ex.run_sync(ex.state.eval_every)
        finally:
            ex.state.unobserve(on_step, "step")
            ex.state.unobserve(on_samples, "samples")
        row = {"num_qubits": q, "num_layers": layers, "steps": ex.state.eval_every,
               "batch_size": ex.state.batch_size, "shape_seen_before": (q, layers) in seen,
               "first_step_s": round(marks.get("step", float("nan")), 2),
               "first_samples_s": round(marks.get("samples", float("nan")), 2)}
        seen.add((q, layers))
        rows.append(row)
        say(format_row(row))
    return {"rows": rows}


def format_row(row: dict) -> str:
    again = " (this shape again)" if row["shape_seen_before"] else ""
    q, layers = row["num_qubits"], row["num_layers"]
    return (f"  {q:>2} qubit{'s' if q != 1 else ''} x {layers} layer{'s' if layers != 1 else ''}{again}: first step "
            f"{row['first_step_s']:.1f} s, first samples (step {row['steps']}) {row['first_samples_s']:.1f} s after Train")


def verdict(rows: list[dict]) -> str:
    """One line: the worst first-samples time up to :data:`GOAL_QUBITS` qubits against :data:`GOAL_S`."""
    upto = [r for r in rows if r["num_qubits"] <= GOAL_QUBITS]
    if not upto:
        return f"no setting up to {GOAL_QUBITS} qubits was measured"
    worst = max(upto, key=lambda r: r["first_samples_s"])
    met = "met" if worst["first_samples_s"] <= GOAL_S else "NOT met"
    return (f"goal (first samples <= {GOAL_S:.0f} s after Train up to {GOAL_QUBITS} qubits): {met}; worst "
            f"{worst['first_samples_s']:.1f} s at {worst['num_qubits']} qubits x {worst['num_layers']} layers")


def add_parser(sub) -> None:
    p = sub.add_parser("explorer", help="Train -> first samples in one dashboard kernel as the settings change")
    p.add_argument("--settings", default=DEFAULT_SETTINGS,
                   help="comma-separated QUBITSxLAYERS, in order (default %(default)s)")
    p.add_argument("--json", help="write the result to this JSON file")


def explorer_main(args) -> int:
    settings = parse_settings(args.settings)
    from qgan_widgets.apps.bench import machine_summary

    print("bench explorer: Train -> first samples in one dashboard kernel on a warm server (VAEs prepared)")
    print(machine_summary())
    result = measure(settings)
    print(verdict(result["rows"]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0
