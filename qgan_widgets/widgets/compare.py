"""Comparing the runs of an Explorer session: the run table, presets, and a run to take home.

Every run the Explorer trains is kept as a small record (:func:`run_record`: its settings, parameter
counts, the FD's excess over the reconstruction floor at the end and whether it ended stable, its FD
curve and last sample grid), so a student can overlay earlier FD curves on the current one, put two
runs' samples side by side, and read all runs in one table (:func:`runs_table_html`). The presets
(:data:`PRESETS`) are the comparisons the notebooks teach, each two runs that differ in one thing, and
three seeds of one setting, whose spread says how much any single-run comparison can tell.
:func:`export_zip` packs a run (its settings, records and sample grids) for the browser to download
(:func:`download_html`): a student cannot open a path on the server.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from qgan_widgets.widgets.state import MAX_SEED, ExplorerError, check_config, check_value, parameter_counts

__all__ = ["PRESETS", "STABILITY", "run_record", "run_label", "preset_configs", "seed_spread", "runs_table_html",
           "export_zip", "download_html"]

STABILITY = {"window": 3, "max_rel_spread": 0.5, "min_excess_share": 1.0}
"""How a run's end is judged (as the capacity study judges a trial): over its last 3 image evaluations,
the FD's excess over the floor moves by at most half of max(its median, the floor)."""

PRESETS = {
    "critic 4 vs 128": "the same generator against a weak and a strong critic (notebook 07)",
    "quantum vs classical, equal size": "a quantum generator and the classical one closest in parameters (notebook 05)",
    "layers 1 vs 4": "a shallow and a deeper quantum circuit against one critic (notebook 06)",
    "3 seeds": "the same settings with three seeds: how far apart runs land by chance alone, the spread any "
               "comparison must beat (notebook 07)",
}
"""The comparisons the notebooks ask for: name -> what it shows. Each is two runs (:func:`preset_configs`),
``"3 seeds"`` three."""


def preset_configs(name: str, config: dict) -> list[dict]:
    """The settings of preset ``name`` derived from ``config`` (the rest of the settings stay): two runs, or
    for ``"3 seeds"`` the seed and the next two (the three before it at the largest seed)."""
    if name not in PRESETS:
        raise ExplorerError(f"preset: {name!r} is not one of {', '.join(PRESETS)}")
    if name == "3 seeds":
        first = min(int(config["seed"]), MAX_SEED - 2)
        pair = [{"seed": first + i} for i in range(3)]
    elif name == "critic 4 vs 128":
        pair = [{"critic_width": 4}, {"critic_width": 128}]
    elif name == "layers 1 vs 4":
        pair = [{"kind": "quantum", "num_layers": 1}, {"kind": "quantum", "num_layers": 4}]
    else:
        quantum = {**config, "kind": "quantum"}
        target = parameter_counts(quantum)[0]
        widths = range(1, 257)
        best = min(widths, key=lambda w: (abs(parameter_counts({**config, "kind": "classical",
                                                                 "hidden_width": w})[0] - target), w))
        pair = [{"kind": "quantum"}, {"kind": "classical", "hidden_width": best}]
    out = []
    for change in pair:
        new = {**config, **{k: check_value(k, v) for k, v in change.items()}}
        check_config(new)
        out.append(new)
    return out


def run_label(number: int, config: dict) -> str:
    """``#2 q3x2 c32 lr 0.001 seed 0`` / ``#3 mlp h8 c32 ...``: a run in one short line."""
    gen = (f"q{config['num_qubits']}x{config['num_layers']}" if config["kind"] == "quantum"
           else f"mlp d{config['num_qubits']} h{config['hidden_width']}")
    return f"#{number} {gen} c{config['critic_width']} lr {config['learning_rate']:g} seed {config['seed']}"


def run_record(number: int, config: dict, evals: list[dict], floor: float, status: str, steps: int,
               run_dir: str = "", samples=None, sample_step: int = -1) -> dict:
    """A run's record for the table: settings, parameter counts (``C_G``, ``C_D``), ``fd_excess`` (median
    FD of the last evaluations minus ``floor``), ``stable`` (None with fewer than two image evaluations),
    ``curve`` ((step, fd) pairs) and the last ``samples`` grid."""
    from qgan_widgets.scores.metrics import judge_stability

    gen, critic = parameter_counts(config)
    curve = [(int(e["step"]), float(e["fd"])) for e in evals if math.isfinite(float(e.get("fd", math.nan)))]
    fds = [fd for _, fd in curve]
    window = min(STABILITY["window"], len(fds))
    excess, stable, why = math.nan, None, "fewer than two evaluations"
    if fds and math.isfinite(floor):
        excess = float(np.median(fds[-STABILITY["window"]:])) - float(floor)
    if window >= 2 and math.isfinite(floor):
        judged = judge_stability(fds, window=window, max_rel_spread=STABILITY["max_rel_spread"], floor=floor,
                                 min_excess_share=STABILITY["min_excess_share"])
        stable, why = judged.stable, "; ".join(judged.reasons)
    return {"number": int(number), "label": run_label(number, config), "config": dict(config),
            "generator_params": gen, "critic_params": critic, "status": status, "steps": int(steps),
            "fd_excess": excess, "floor": float(floor), "stable": stable, "stability": why, "curve": curve,
            "samples": None if samples is None else np.asarray(samples), "sample_step": int(sample_step),
            "run_dir": str(run_dir)}


def seed_spread(runs: list[dict]) -> str:
    """One sentence on how far apart runs that differ only in seed landed: their FD excess over the floor,
    its range, and how many ended stable (the ``"3 seeds"`` preset's verdict)."""
    values = [r["fd_excess"] for r in runs if math.isfinite(r["fd_excess"])]
    if len(values) < 2:
        return ("too few evaluations to compare the seeds' FD: train more steps (or evaluate more often) "
                "and run the preset again")
    parts = ", ".join(f"{v:+.3g}" for v in values)
    if any(r["stable"] is None for r in runs):
        stability = "stability not judged: fewer than two image evaluations"
    else:
        stability = f"{sum(1 for r in runs if r['stable'])} of {len(runs)} stable"
    return (f"FD excess over the floor {parts}: a spread of {max(values) - min(values):.3g} from the seed "
            f"alone ({stability}); two single runs that differ by less than this cannot be told apart")


def runs_table_html(runs: list[dict]) -> str:
    """The session's runs as an HTML table (newest first)."""
    if not runs:
        return ("<div class='qgan-runs-empty' style='font-size:12px;color:#777'>Finished runs are listed here: "
                "train one, change a setting, train again, then overlay their FD curves.</div>")
    head = ["run", "generator", "C_G", "critic", "C_D", "steps", "status", "FD excess over floor", "stable"]
    rows = []
    for r in reversed(runs):
        c = r["config"]
        gen = (f"quantum {c['num_qubits']} qubits x {c['num_layers']}" if c["kind"] == "quantum"
               else f"classical hidden {c['hidden_width']}")
        excess = "n/a" if not math.isfinite(r["fd_excess"]) else f"{r['fd_excess']:+.3g}"
        stable = {True: "yes", False: "no", None: "n/a"}[r["stable"]]
        cells = [f"#{r['number']}", gen, f"{r['generator_params']:,}", f"width {c['critic_width']}",
                 f"{r['critic_params']:,}", str(r["steps"]), r["status"], excess, stable]
        title = html.escape(r["stability"] or "stable", quote=True)
        rows.append("<tr>" + "".join(f"<td title='{title}'>{html.escape(x)}</td>" for x in cells) + "</tr>")
    style = "border-collapse:collapse;font-size:12px"
    return (f"<table class='qgan-runs-table' style='{style}'><tr>"
            + "".join(f"<th style='text-align:left;padding:2px 8px'>{h}</th>" for h in head) + "</tr>"
            + "".join(rows).replace("<td ", "<td style='padding:2px 8px' ") + "</table>")


EXPORT_SKIP = ("checkpoints",)


def export_zip(record: dict) -> bytes:
    """A run as a zip: its run directory's records and sample grids (``config.json``, ``metrics.csv``,
    ``evals.csv``, ``samples_*.png``; not the checkpoints) and ``run.json`` (the table's record)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        meta = {k: v for k, v in record.items() if k != "samples"}
        zf.writestr("run.json", json.dumps(meta, indent=1, default=float) + "\n")
        run_dir = Path(record["run_dir"]) if record.get("run_dir") else None
        if run_dir is not None and run_dir.is_dir():
            for path in sorted(run_dir.rglob("*")):
                rel = path.relative_to(run_dir)
                if path.is_file() and rel.parts[0] not in EXPORT_SKIP and not path.name.startswith("."):
                    zf.write(path, str(rel))
    return buf.getvalue()


def download_html(data: bytes, filename: str, text: str) -> str:
    """A link that makes the browser save ``data`` as ``filename`` (a data URL: nothing is served)."""
    b64 = base64.b64encode(data).decode("ascii")
    name = html.escape(filename, quote=True)
    return (f"<a class='qgan-download' download='{name}' href='data:application/zip;base64,{b64}' "
            f"style='font-size:12px'>{html.escape(text)} ({len(data) / 1024:.0f} KB)</a>")
