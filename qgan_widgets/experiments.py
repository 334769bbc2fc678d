"""The capacity-scaling study: sweeps of generator x critic x seed trials on Ray, then the fits.

Taught in notebook ``06_capacity_scaling``. A sweep (:class:`SweepConfig`, a YAML or JSON file) is a
grid of generator configurations (quantum: qubits x layers x entangler; classical: hidden widths) x
critic widths x seeds with one training configuration. Every trial trains through the package's
own loop (:func:`qgan_widgets.training.run_training`) and is a Ray task (one CPU, one TensorFlow
thread), locally by default or on an existing cluster with ``address=``. Trials have stable ids
(a hash of their configuration); each result is appended to ``results.jsonl`` as it completes and
``trials.csv`` is rewritten atomically, so an interrupted sweep loses nothing and a re-run runs only
the missing or failed trials. :mod:`qgan_widgets.scaling` then finds the optimal critic per
generator and fits ``ln C_D* = a + b C_G`` (:func:`analyze`).

Command line::

    python -m qgan_widgets sweep --quick --out runs/sweep-quick
    python -m qgan_widgets sweep --config my-sweep.yaml --out DIR [--address ADDR] [--num-cpus N]
"""
from __future__ import annotations

import argparse
import difflib
import hashlib
import itertools
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from qgan_widgets import FAST
from qgan_widgets.scaling import (  # noqa: F401  (re-exported: the study's API lives here)
    OptimalityRule, ScalingError, analyze, atomic_write_text, bootstrap_b, fit_exponential, fit_power,
    optimal_critic, plot_scaling,
)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PACKAGED = {"quick": "sweep-quick.yaml", "paper": "sweep-paper.yaml", "tiny": "sweep-tiny.yaml"}
RESULTS, TRIALS = "results.jsonl", "trials.csv"
LOSS_KEYS = ("d_loss", "g_loss", "w_estimate")
SUMMARY_KEYS = ("final_fd", "final_fd_latent", "fd_reconstruction_floor", "stable", "stability_reasons",
                "rel_spread", "wall_time_s", "steps", "dataset", "message") + LOSS_KEYS
IGNORED_KEYS = ("status", "out_dir", "generator_config")  # summary keys with a record column of another meaning
COLUMNS = [
    "trial_id", "generator_kind", "generator_label", "generator_params", "critic_width", "critic_depth",
    "critic_params", "seed", "final_fd", "final_fd_latent", "fd_reconstruction_floor", "stable",
    "stability_reasons", "rel_spread", *LOSS_KEYS, "wall_time_s", "steps", "train_status", "status", "error",
    "message", "dataset", "latent_dim", "generator_config", "finished_at",
]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
               "TF_NUM_INTEROP_THREADS")
PASSED_VARS = ("QGAN_CACHE_DIR", "QGAN_SAT4_PATH", "QGAN_FAST", "TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")


class SweepConfigError(ValueError):
    """A sweep definition is malformed; the message names the file (or ``SweepConfig``) and the key."""


# --------------------------------------------------------------------------------------------
# The sweep definition

SECTIONS = {  # section -> its keys and defaults (None = no default beyond "absent")
    "workspace": {"source": None, "latent_dim": 4, "fast": None, "seed": 0, "vae_epochs": None, "n_train": None,
                  "n_test": None, "vae_options": None, "extractor_epochs": None},
    "quantum": {"qubits": [4], "layers": [1], "entangler": ["cry-ring"], "readout": "z",
                "backend": "statevector", "noise_dim": None},
    "classical": {"hidden": [[8]], "noise_dim": None, "latent_dim": None},
    "critic": {"widths": [16], "depth": 2},
    "analysis": {"rule": "min_fd", "n_boot": 1000, "level": 0.95, "seed": 0},
}
TOP = ("name", "description", "workspace", "generators", "critic", "seeds", "train", "stability",
       "evaluation", "analysis", "max_retries")


def _fail(where: str, key: str, msg: str):
    raise SweepConfigError(f"{where}: {key}: {msg}")


def _unknown(where: str, prefix: str, got, known) -> None:
    for k in got:
        if k not in known:
            near = difflib.get_close_matches(str(k), list(known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f"; known keys: {', '.join(known)}"
            _fail(where, f"{prefix}{k}", f"unknown key{hint}")


def _mapping(where: str, key: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        _fail(where, key, f"expected a mapping of settings, got {value!r}")
    return dict(value)


def _ints(where: str, key: str, value, minimum: int = 1, nested: bool = False) -> list:
    """A list of ints >= minimum (a lone int is a one-element list); ``nested``: a list of such lists."""
    if nested:
        if not (isinstance(value, list) and value and all(isinstance(v, list) for v in value)):
            _fail(where, key, f"expected a list of hidden-layer lists such as [[8], [16, 16]], got {value!r} "
                              "([[4], [8]] is two one-layer generators, [[4, 8]] one two-layer generator)")
        return [_ints(where, f"{key}[{i}]", v, minimum) for i, v in enumerate(value)]
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in items):
        _fail(where, key, f"expected a non-empty list of integers >= {minimum}, got {value!r}")
    return list(items)


def _section(where: str, name: str, value, prefix: str = "") -> dict:
    got = _mapping(where, prefix + name, value)
    _unknown(where, f"{prefix}{name}.", got, SECTIONS[name])
    return {**SECTIONS[name], **got}


@dataclass
class SweepConfig:
    """One capacity-scaling sweep: what to vary, how to train, how to judge the optimum.

    Mirrors the YAML/JSON file layout (see ``qgan_widgets/configs/sweep-quick.yaml``)::

        name, description
        workspace:  source, latent_dim, fast, seed, vae_epochs        (pipeline.Workspace.prepare)
        generators: quantum: {qubits, layers, entangler, readout, backend, noise_dim}
                    classical: {hidden: [[w1, ...], ...], noise_dim, latent_dim}
        critic:     widths, depth
        seeds:      [0, 1, ...]
        train:      TrainConfig fields (steps, batch_size, eval_every, ...; the seed is the trial's)
        stability:  keyword arguments of metrics.judge_stability, passed to run_training
        evaluation: keyword arguments of Workspace.evaluator, passed to run_training
        analysis:   rule (name or {name, tolerance, min_stable_fraction, ...}), n_boot, level, seed
        max_retries: Ray retries of a failed or killed trial

    All generators of a sweep share ``workspace.latent_dim`` (the same data): the quantum latent
    size is qubits (readout ``z``) or 2 x qubits (``xz``), so vary layers at fixed qubits, or set
    ``latent_dim: auto`` to give each latent size its own Workspace (then classical generators need
    ``latent_dim``). Bad values raise :class:`SweepConfigError` naming the file and the key.
    """

    name: str = "sweep"
    description: str = ""
    workspace: dict = field(default_factory=dict)
    generators: dict = field(default_factory=dict)
    critic: dict = field(default_factory=dict)
    seeds: list = field(default_factory=lambda: [0])
    train: dict = field(default_factory=dict)
    stability: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    analysis: dict = field(default_factory=dict)
    max_retries: int = 2
    where: str = field(default="SweepConfig", repr=False, compare=False)

    def __post_init__(self):
        w = self.where
        if not isinstance(self.name, str) or not self.name.strip():
            _fail(w, "name", f"expected a non-empty string, got {self.name!r}")
        self.workspace = _section(w, "workspace", self.workspace)
        ld = self.workspace["latent_dim"]
        if ld != "auto" and (isinstance(ld, bool) or not isinstance(ld, int) or ld < 1):
            _fail(w, "workspace.latent_dim", f"expected one integer >= 1 or 'auto', got {ld!r}")
        if self.workspace["fast"] is None:  # fixed here so that it is part of every trial's id
            self.workspace["fast"] = FAST
        gens = _mapping(w, "generators", self.generators)
        _unknown(w, "generators.", gens, ("quantum", "classical"))
        if not gens:
            _fail(w, "generators", "no generators: give generators.quantum and/or generators.classical")
        self.generators = {}
        if gens.get("quantum") is not None:
            q = _section(w, "quantum", gens["quantum"], "generators.")
            q["qubits"], q["layers"] = _ints(w, "generators.quantum.qubits", q["qubits"]), _ints(
                w, "generators.quantum.layers", q["layers"])
            q["entangler"] = q["entangler"] if isinstance(q["entangler"], list) else [q["entangler"]]
            if q["noise_dim"] is not None:
                q["noise_dim"] = _ints(w, "generators.quantum.noise_dim", q["noise_dim"])[0]
            self.generators["quantum"] = q
        if gens.get("classical") is not None:
            c = _section(w, "classical", gens["classical"], "generators.")
            c["hidden"] = _ints(w, "generators.classical.hidden", c["hidden"], nested=True)
            for k in ("noise_dim", "latent_dim"):
                if c[k] is not None:
                    c[k] = _ints(w, f"generators.classical.{k}", c[k])
            if ld == "auto" and c["latent_dim"] is None:
                _fail(w, "generators.classical.latent_dim", "needed when workspace.latent_dim is 'auto'")
            self.generators["classical"] = c
        self.critic = _section(w, "critic", self.critic)
        self.critic["widths"] = _ints(w, "critic.widths", self.critic["widths"])
        self.critic["depth"] = _ints(w, "critic.depth", self.critic["depth"])[0]
        self.seeds = _ints(w, "seeds", self.seeds, minimum=0)
        if len(set(self.seeds)) != len(self.seeds):
            _fail(w, "seeds", f"seeds repeat: {self.seeds}")
        self.train, self.stability, self.evaluation = (
            _mapping(w, k, getattr(self, k)) for k in ("train", "stability", "evaluation"))
        if "seed" in self.train:
            _fail(w, "train.seed", "the seed is set per trial from `seeds`; remove it from train")
        self.analysis = _section(w, "analysis", self.analysis)
        try:
            self.analysis["rule"] = OptimalityRule.from_value(self.analysis["rule"]).to_dict()
        except ScalingError as e:
            _fail(w, "analysis.rule", str(e))
        self.max_retries = _ints(w, "max_retries", self.max_retries, minimum=0)[0]
        self._check_generators()
        self._check_train()

    @classmethod
    def from_file(cls, path) -> "SweepConfig":
        """Read a sweep definition (YAML or JSON; a packaged name ``quick``/``paper``/``tiny`` also works)."""
        path = Path(path)
        if not path.exists() and str(path) in PACKAGED:
            path = CONFIG_DIR / PACKAGED[str(path)]
        if not path.is_file():
            raise SweepConfigError(f"{path}: no such sweep file (packaged ones: {', '.join(PACKAGED)})")
        import yaml

        try:
            text = path.read_text()
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
            raise SweepConfigError(f"{path}: not readable as {'JSON' if path.suffix == '.json' else 'YAML'}: {e}") from e
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data, where: str = "SweepConfig") -> "SweepConfig":
        if not isinstance(data, Mapping):
            raise SweepConfigError(f"{where}: expected a mapping of sections ({', '.join(TOP)}), got {type(data).__name__}")
        _unknown(where, "", data, TOP)
        return cls(**dict(data), where=where)

    def to_dict(self) -> dict:
        return json.loads(json.dumps({k: getattr(self, k) for k in TOP}))

    # -- the trial grid ------------------------------------------------------------------------
    def generator_configs(self) -> list[dict]:
        """Every generator of the grid as a ``generators.build_generator`` config (with ``kind``)."""
        out = []
        q = self.generators.get("quantum")
        if q:
            for n, layers, ent in itertools.product(q["qubits"], q["layers"], q["entangler"]):
                cfg = {"kind": "quantum", "num_qubits": n, "num_layers": layers, "entangler": ent,
                       "readout": q["readout"], "backend": q["backend"]}
                if q["noise_dim"] is not None:
                    cfg["noise_dim"] = q["noise_dim"]
                out.append(cfg)
        c = self.generators.get("classical")
        if c:
            dims = c["latent_dim"] or [self.workspace["latent_dim"]]
            for d, hidden in itertools.product(dims, c["hidden"]):
                for nd in c["noise_dim"] or [d]:
                    out.append({"kind": "classical", "noise_dim": nd, "latent_dim": d, "hidden": list(hidden)})
        return out

    def trials(self) -> list[dict]:
        """Every trial as a JSON-able spec with its stable ``trial_id`` (a hash of the rest)."""
        specs = []
        for gen, width, seed in itertools.product(self.generator_configs(), self.critic["widths"], self.seeds):
            spec = {"generator": gen, "critic": {"width": width, "depth": self.critic["depth"]}, "seed": seed,
                    "latent_dim": latent_dim_of(gen), "train": self.train, "stability": self.stability,
                    "evaluation": self.evaluation,
                    "workspace": {**self.workspace, "latent_dim": latent_dim_of(gen)}}
            blob = json.dumps(spec, sort_keys=True, separators=(",", ":"))
            spec["trial_id"] = hashlib.sha256(blob.encode()).hexdigest()[:12]
            specs.append(spec)
        return specs

    def _check_generators(self) -> None:
        from qgan_widgets import circuits
        from qgan_widgets.generators import BACKENDS

        q = self.generators.get("quantum")
        for gen in self.generator_configs():
            if gen["kind"] != "quantum":
                continue
            key = "generators.quantum"
            try:
                circuits.count_parameters(gen["num_qubits"], gen["num_layers"], gen["entangler"])
                d = circuits.latent_dim_for(gen["num_qubits"], gen["readout"])
            except ValueError as e:
                _fail(self.where, key, str(e))
            if gen["backend"] not in BACKENDS or gen["backend"] == "qsim":
                _fail(self.where, f"{key}.backend", f"must be a trainable backend (statevector or tfq; qsim has "
                                                     f"no gradients), got {gen['backend']!r}")
            ld = self.workspace["latent_dim"]
            if ld != "auto" and d != ld:
                _fail(self.where, f"{key}.qubits", (
                    f"{gen['num_qubits']} qubits with readout {q['readout']!r} give latent_dim {d}, but "
                    f"workspace.latent_dim is {ld}: all generators share the Workspace's latent size. Vary "
                    "layers at fixed qubits, or set workspace.latent_dim: auto (one VAE per latent size)"))

    def _check_train(self) -> None:
        """Check train / stability / evaluation keys against the functions they are passed to."""
        import inspect

        from qgan_widgets import metrics
        from qgan_widgets.pipeline import Workspace
        from qgan_widgets.training import TrainConfig

        try:
            TrainConfig.from_dict({**self.train, "seed": 0})
        except (TypeError, ValueError) as e:
            _fail(self.where, "train", f"not valid TrainConfig fields: {e}")
        for key, fn, skip in (("stability", metrics.judge_stability, ("fd_values", "losses")),
                              ("evaluation", Workspace.evaluator, ("self",))):
            known = [p for p in inspect.signature(fn).parameters if p not in skip]
            _unknown(self.where, f"{key}.", getattr(self, key), known)


def latent_dim_of(gen: Mapping) -> int:
    """Latent size a generator config produces."""
    if gen["kind"] == "classical":
        return int(gen["latent_dim"])
    from qgan_widgets.circuits import latent_dim_for

    return latent_dim_for(gen["num_qubits"], gen.get("readout", "z"))


def generator_label(gen: Mapping) -> str:
    """Short readable name: ``q4x2-cry-ring``, or ``c8-8-d4`` (hidden widths, ``-z6`` when the noise size
    differs from the latent size, latent size)."""
    if gen["kind"] == "quantum":
        label = f"q{gen['num_qubits']}x{gen['num_layers']}-{gen['entangler']}"
        return label + (f"-{gen['readout']}" if gen.get("readout", "z") != "z" else "")
    label = "c" + "-".join(map(str, gen["hidden"]))
    if gen["noise_dim"] != gen["latent_dim"]:
        label += f"-z{gen['noise_dim']}"
    return label + f"-d{gen['latent_dim']}"


def count_params(spec: Mapping) -> tuple[int, int]:
    """(generator, critic) trainable parameter counts of a trial, without building the models."""
    gen = spec["generator"]
    if gen["kind"] == "quantum":
        from qgan_widgets.circuits import count_parameters

        cg = count_parameters(gen["num_qubits"], gen["num_layers"], gen["entangler"])
    else:
        from qgan_widgets.generators import classical_count_parameters

        cg = classical_count_parameters(gen["noise_dim"], gen["latent_dim"], tuple(gen["hidden"]))
    from qgan_widgets.critic import critic_count_parameters

    return int(cg), int(critic_count_parameters(spec["latent_dim"], spec["critic"]["width"], spec["critic"]["depth"]))


# --------------------------------------------------------------------------------------------
# One trial (runs inside a Ray worker)

_WORKSPACES: dict[str, Any] = {}


def limit_threads(n: int = 1) -> None:
    """Make this process use ``n`` CPU threads: OpenMP/BLAS variables and TensorFlow's thread pools.

    Called at the start of every trial; TensorFlow accepts the setting only before its first op, so
    later calls in the same (reused) Ray worker keep the first setting.
    """
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    from qgan_widgets._tf import tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        pass  # TensorFlow already started in this worker, with the setting of its first trial


def workspace_for(settings: Mapping):
    """The prepared :class:`~qgan_widgets.pipeline.Workspace` for these settings, once per process."""
    key = json.dumps(settings, sort_keys=True)
    if key not in _WORKSPACES:
        from qgan_widgets.pipeline import Workspace

        kwargs = {k: v for k, v in settings.items() if v is not None}
        _WORKSPACES[key] = Workspace.prepare(**kwargs, verbose=False)
    return _WORKSPACES[key]


def run_trial(spec: Mapping) -> dict:
    """Train one trial through :func:`qgan_widgets.training.run_training`; return its summary dict.

    Adds the data set's name, TensorFlow's thread count (``tf_threads``) and the mean ``d_loss``,
    ``g_loss`` and ``w_estimate`` over the last tenth of the steps. A diverged run is a result
    (unstable), not a failure; other errors propagate so that Ray retries the trial.
    """
    limit_threads(1)
    from collections import deque

    from qgan_widgets import training
    from qgan_widgets._tf import tf

    ws = workspace_for(spec["workspace"])
    train = training.TrainConfig.from_dict({**spec["train"], "seed": spec["seed"]})
    tail: deque = deque(maxlen=max(10, train.steps // 10))

    class LossTail(training.Callback):
        def on_step(self, step, logs):
            tail.append(logs)

    summary = training.run_training(
        dict(spec["generator"]), dict(spec["critic"]), train, workspace=ws,
        evaluator_options=dict(spec["evaluation"]), stability_options=dict(spec["stability"]),
        callbacks=[LossTail()], progress=False,
    )
    summary["dataset"] = getattr(getattr(ws, "dataset", None), "name", None)
    summary["tf_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
    for key in LOSS_KEYS:
        values = [float(row[key]) for row in tail if key in row]
        summary[key] = sum(values) / len(values) if values else None
    return summary


# --------------------------------------------------------------------------------------------
# Results on disk


def load_results(out_dir) -> dict[str, dict]:
    """The latest record per trial id in ``results.jsonl`` (a "done" record is never replaced by a failure).

    A torn last line (the sweep was killed mid-write) is ignored.
    """
    path = Path(out_dir) / RESULTS
    records: dict[str, dict] = {}
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(rec, dict) or "trial_id" not in rec:
            continue
        old = records.get(rec["trial_id"])
        if old is None or old.get("status") != "done" or rec.get("status") == "done":
            records[rec["trial_id"]] = rec
    return records


def append_result(out_dir, record: Mapping) -> None:
    """Append one record to ``results.jsonl`` (one line, flushed and synced; after a torn line, on a new line)."""
    with open(Path(out_dir) / RESULTS, "ab+") as f:
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write((json.dumps(record, default=_json_default) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())


def _json_default(v):
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def write_trials_csv(out_dir, specs: list[dict], records: Mapping[str, dict]) -> pd.DataFrame:
    """Rewrite ``trials.csv`` (atomically) with this sweep's recorded trials; return the table."""
    rows = [records[s["trial_id"]] for s in specs if s["trial_id"] in records]
    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df:
            df[col] = pd.Series(dtype=object)
    df = df[COLUMNS + sorted(set(df.columns) - set(COLUMNS))]
    path = Path(out_dir) / TRIALS
    tmp = path.with_name(f".{TRIALS}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return df


def make_record(spec: Mapping, params: tuple[int, int], summary: Mapping | None = None, error: str | None = None) -> dict:
    """A ``trials.csv`` row from a spec and its trial's summary (or the error that ended it)."""
    gen, s = spec["generator"], dict(summary or {})
    for key, expected in zip(("generator_params", "critic_params"), params):
        if key in s and int(s[key]) != expected:
            raise RuntimeError(f"trial {spec['trial_id']}: {key} {s[key]} differs from the expected {expected}")
    rec = {k: v for k, v in s.items() if isinstance(v, (int, float, str, bool)) and k not in IGNORED_KEYS}
    rec.update({k: s.get(k) for k in SUMMARY_KEYS})
    reasons = rec["stability_reasons"]
    rec.update({
        "trial_id": spec["trial_id"], "generator_kind": gen["kind"], "generator_label": generator_label(gen),
        "generator_params": params[0], "critic_width": spec["critic"]["width"],
        "critic_depth": spec["critic"]["depth"], "critic_params": params[1], "seed": spec["seed"],
        "latent_dim": spec["latent_dim"], "generator_config": json.dumps(gen, sort_keys=True),
        "stable": bool(rec["stable"]) if summary is not None else None,
        "stability_reasons": "; ".join(map(str, reasons)) if isinstance(reasons, (list, tuple)) else (reasons or ""),
        "train_status": s.get("status"), "status": "failed" if error else "done", "error": error or "",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    return rec


# --------------------------------------------------------------------------------------------
# The sweep on Ray


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _start_ray(address, num_cpus, env: dict):
    """Ray, and the temporary directory of the local Ray this call started ("" for a cluster, None if
    Ray was already running): dashboard off, warnings only, workers' output not echoed."""
    import logging
    import tempfile

    import ray

    if ray.is_initialized():
        return ray, None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network at run time
    kwargs = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                  runtime_env={"env_vars": env})
    if address:
        ray.init(address=address, **kwargs)
        return ray, ""
    tmp = tempfile.mkdtemp(prefix="qgan-ray-")
    ray.init(num_cpus=num_cpus or os.cpu_count(), _temp_dir=tmp, **kwargs)
    return ray, tmp


def run_sweep(
    config: "SweepConfig | str | os.PathLike", out_dir, address: str | None = None, num_cpus: int | None = None,
    progress: bool = True, max_retries: int | None = None, trial_fn: Callable[[dict], Mapping] | None = None,
    analyze_results: bool = True,
) -> pd.DataFrame:
    """Run every missing trial of a sweep on Ray; return this sweep's ``trials.csv`` table.

    ``config``: a :class:`SweepConfig` or a file. Results go to ``out_dir`` as they complete
    (``results.jsonl``, ``trials.csv``; the config as ``sweep.json``); finished trials found there
    are skipped, failed ones are run again. ``address``: an existing Ray cluster (default: start
    one locally with ``num_cpus`` CPUs, default all cores, unless Ray is already initialised).
    ``max_retries`` (default the config's): Ray retries of a trial that raised or whose worker died.
    ``trial_fn(spec) -> summary dict`` replaces :func:`run_trial` (tests, other studies).
    Afterwards (``analyze_results``) :func:`analyze` writes ``fit.json``, ``scaling.png``, ``report.md``.
    """
    if not isinstance(config, SweepConfig):
        config = SweepConfig.from_file(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sweep.json", json.dumps(config.to_dict(), indent=2) + "\n")
    specs = config.trials()
    params = {s["trial_id"]: count_params(s) for s in specs}
    records = load_results(out)
    todo = [s for s in specs if records.get(s["trial_id"], {}).get("status") != "done"]
    say = print if progress else (lambda *a, **k: None)
    done_before = len(specs) - len(todo)
    say(f"sweep {config.name!r}: {len(specs)} trials, {done_before} already done in {out}, {len(todo)} to run")
    write_trials_csv(out, specs, records)
    if todo:
        real = trial_fn is None
        if real and not address:  # train the shared VAE (and extractor) once here, not in every worker
            for settings in {json.dumps(s["workspace"], sort_keys=True) for s in todo}:
                workspace_for(json.loads(settings))
        env = {v: os.environ[v] for v in PASSED_VARS if v in os.environ}
        env.update({v: "1" for v in THREAD_VARS})
        ray, started = _start_ray(address, num_cpus, env)
        try:
            _run_on_ray(ray, todo, specs, records, params, out, trial_fn or run_trial,
                        config.max_retries if max_retries is None else max_retries, say)
        finally:
            if started is not None:
                ray.shutdown()
            if started:
                shutil.rmtree(started, ignore_errors=True)
    df = write_trials_csv(out, specs, records)
    if analyze_results:
        analyze(out)
        say(f"wrote {out / 'trials.csv'}, fit.json, scaling.png, report.md")
    return df


def _run_on_ray(ray, todo, specs, records, params, out, trial_fn, max_retries, say) -> None:
    remote = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=True)(_call_trial)
    slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
    fn_ref = ray.put(trial_fn)
    queue, running = list(todo), {}
    n_done = n_failed = 0
    t0 = time.time()

    def fill():
        while queue and len(running) < slots:
            spec = queue.pop(0)
            running[remote.remote(fn_ref, spec)] = spec

    try:
        fill()
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)  # a timeout keeps Ctrl-C prompt
            for ref in ready:
                spec = running.pop(ref)
                fill()
                try:
                    rec = make_record(spec, params[spec["trial_id"]], ray.get(ref))
                except Exception as e:  # the trial failed on its last retry
                    rec = make_record(spec, params[spec["trial_id"]], error=_error_text(e))
                records[spec["trial_id"]] = rec
                append_result(out, rec)
                write_trials_csv(out, specs, records)
                n_done += rec["status"] == "done"
                n_failed += rec["status"] == "failed"
                finished = n_done + n_failed
                elapsed = time.time() - t0
                left = elapsed / finished * (len(todo) - finished)
                what = (f"FD {rec['final_fd']:.4g} {'stable' if rec['stable'] else 'unstable'}"
                        if rec["status"] == "done" and rec["final_fd"] is not None else rec["status"])
                say(f"[{finished}/{len(todo)}] done {n_done}, running {len(running)}, "
                    f"failed {n_failed} | elapsed {_fmt_time(elapsed)}, left ~{_fmt_time(left)} | "
                    f"{rec['generator_label']} critic {rec['critic_width']} seed {rec['seed']}: {what}")
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref, force=True)
        # Ctrl-C may land between appending a result and rewriting trials.csv: results.jsonl is
        # the record, so rebuild the table from it and count what a re-run will skip.
        on_disk = load_results(out)
        write_trials_csv(out, specs, on_disk)
        n_kept = sum(on_disk.get(s["trial_id"], {}).get("status") == "done" for s in specs)
        say(f"interrupted: {n_kept} of {len(specs)} trials done in {out}; run the same command again to resume")
        raise


def _call_trial(trial_fn, spec):
    return dict(trial_fn(spec))


def _error_text(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e  # RayTaskError wraps the trial's own exception
    text = "".join(traceback.format_exception_only(type(cause), cause)).strip()
    return text[-2000:]


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qgan_widgets sweep", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", help="sweep file (YAML or JSON), or a packaged name: " + ", ".join(PACKAGED))
    src.add_argument("--quick", action="store_true", help="the small packaged grid (~15 min on 2 cores)")
    p.add_argument("--out", help="output directory (default runs/sweep-NAME); re-running resumes it")
    p.add_argument("--address", help="connect to this Ray cluster instead of starting one locally")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all cores)")
    p.add_argument("--max-retries", type=int, help="Ray retries of a failed trial (default: the config's)")
    p.add_argument("--analyze-only", action="store_true", help="only re-analyse the results in --out")
    args = p.parse_args(argv)
    try:
        if args.analyze_only:
            if not args.out:
                p.error("--analyze-only needs --out DIR")
            print(analyze(args.out)["report"])
            return 0
        if not (args.config or args.quick):
            p.error("give --config FILE (or a packaged name) or --quick")
        config = SweepConfig.from_file(CONFIG_DIR / PACKAGED["quick"] if args.quick else args.config)
        out = Path(args.out or f"runs/sweep-{config.name}")
        t0 = time.time()
        run_sweep(config, out, address=args.address, num_cpus=args.num_cpus, max_retries=args.max_retries)
        print((out / "report.md").read_text())
        print(f"sweep {config.name!r} finished in {_fmt_time(time.time() - t0)}; outputs in {out}")
    except (SweepConfigError, ScalingError) as e:
        print(f"sweep: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
