"""A capacity-scaling sweep's definition: :class:`SweepConfig` and the trial grid it spans.

Taught in notebook ``06_capacity_scaling``. A sweep (a YAML or JSON file, or a dict) is a grid of
generator configurations (quantum: qubits x layers x entangler; classical: hidden widths) x critic
widths x seeds with one training configuration. :meth:`SweepConfig.trials` lists every trial as a
JSON-able spec with a stable id (a hash of its configuration); :func:`count_params`,
:func:`generator_label` and :func:`latent_dim_of` describe a trial without building its models.
Bad values raise :class:`SweepConfigError` naming the file and the key. :mod:`qgan_widgets.study.runner`
runs the trials on Ray; :mod:`qgan_widgets.study` hands these names on (``qw.study.SweepConfig``).
"""
from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from qgan_widgets import FAST
from qgan_widgets.study.optimum import OptimalityRule, ScalingError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PACKAGED = {"quick": "sweep-quick.yaml", "study": "sweep-study.yaml", "paper": "sweep-paper.yaml",
            "tiny": "sweep-tiny.yaml"}


class SweepConfigError(ValueError):
    """A sweep definition is malformed; the message names the file (or ``SweepConfig``) and the key."""

# --------------------------------------------------------------------------------------------
# The sweep definition

SECTIONS = {  # section -> its keys and defaults (None = no default beyond "absent")
    "workspace": {"source": None, "latent_dim": 4, "fast": None, "seed": 0, "vae_epochs": None, "n_train": None,
                  "n_test": None, "vae_options": None, "extractor_epochs": None},
    "quantum": {"qubits": [4], "layers": [1], "entangler": ["cry-ring"], "readout": "z",
                "backend": "statevector", "noise_dim": None, "noise_map": "cyclic"},
    "classical": {"hidden": [[8]], "noise_dim": None, "latent_dim": None},
    "critic": {"widths": [16], "depth": 2, "lr_scaling": None},
    "analysis": {"rule": "min_fd", "n_boot": 1000, "level": 0.95, "seed": 0, "power_sims": 40},
}
TOP = ("name", "description", "workspace", "generators", "critic", "seeds", "train", "stability",
       "evaluation", "analysis", "max_retries", "ensemble")


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


def _number(where: str, key: str, value, minimum: float | None = None, maximum: float | None = None,
            integer: bool = False, open_min: bool = False, open_max: bool = False, optional: bool = False):
    """``value`` if it is a finite number (a whole one when ``integer``) within the bounds, or None
    when ``optional``; else SweepConfigError. The value is returned as given (an integer field as
    ``int``), so a trial's id, a hash of its settings, does not change."""
    if value is None and optional:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = isinstance(value, int) or float(value).is_integer()
    if ok and minimum is not None:
        ok = value > minimum if open_min else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if open_max else value <= maximum
    if not ok:
        lo = "" if minimum is None else f"{'>' if open_min else '>='} {minimum}"
        hi = "" if maximum is None else f"{'<' if open_max else '<='} {maximum}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        _fail(where, key, f"expected {'an integer' if integer else 'a number'}{' ' + bounds if bounds else ''}"
                          f"{' or null' if optional else ''}, got {value!r}")
    return int(value) if integer else value


_COUNT = {"minimum": 1, "integer": True, "optional": True}
VALUE_RULES = {  # the values of the sections passed on to other functions: checked before any work
    "workspace": {"seed": {"minimum": 0, "integer": True}, "vae_epochs": _COUNT, "n_train": _COUNT,
                  "n_test": _COUNT, "extractor_epochs": _COUNT},
    "stability": {"window": {"minimum": 2, "integer": True}, "max_rel_spread": {"minimum": 0, "open_min": True},
                  "max_abs_loss": {"minimum": 0, "open_min": True},
                  "max_fd": {"minimum": 0, "open_min": True, "optional": True},
                  "min_excess_share": {"minimum": 0}},
    "evaluation": {"n_samples": {"minimum": 2, "integer": True, "optional": True},
                   "n_grid": {"minimum": 0, "integer": True}, "seed": {"minimum": 0, "integer": True},
                   "images_from_step": {"minimum": 0, "integer": True}},
    "analysis": {"n_boot": {"minimum": 0, "integer": True}, "seed": {"minimum": 0, "integer": True},
                 "power_sims": {"minimum": 0, "integer": True},
                 "level": {"minimum": 0, "maximum": 1, "open_min": True, "open_max": True}},
}
"""Per section and key: the keyword arguments of :func:`_number` that check its value."""


def _check_values(where: str, section: str, values: dict) -> dict:
    out = dict(values)
    for key, rule in VALUE_RULES[section].items():
        if key in out:
            out[key] = _number(where, f"{section}.{key}", out[key], **rule)
    return out


def _section(where: str, name: str, value, prefix: str = "") -> dict:
    got = _mapping(where, prefix + name, value)
    _unknown(where, f"{prefix}{name}.", got, SECTIONS[name])
    return {**SECTIONS[name], **got}


@dataclass
class SweepConfig:
    """One capacity-scaling sweep: what to vary, how to train, how to judge the optimum.

    Mirrors the YAML/JSON file layout (see ``qgan_widgets/study/configs/sweep-quick.yaml``)::

        name, description
        workspace:  source, latent_dim, fast, seed, vae_epochs        (pipeline.Workspace.prepare)
        generators: quantum: {qubits, layers, entangler, readout, backend, noise_dim, noise_map}
                    classical: {hidden: [[w1, ...], ...], noise_dim, latent_dim}
        critic:     widths, depth, lr_scaling ({reference_width, exponent}: the critic's learning rate
                    is train.lr_critic x (reference_width / width) ** exponent; absent: one rate)
        seeds:      [0, 1, ...]
        train:      TrainConfig fields (steps, batch_size, eval_every, ...; the seed is the trial's)
        stability:  keyword arguments of metrics.judge_stability, passed to run_training
        evaluation: keyword arguments of Workspace.evaluator, passed to run_training
        analysis:   rule (name or {name, tolerance, min_stable_fraction, ...}), n_boot, level, seed
        max_retries: Ray retries of a failed or killed trial (or ensemble)
        ensemble:   trials that differ only in seed train together, this many at most per Ray task
                    (one program; each member's result is its solo run's); 1 trains each alone

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
    ensemble: int = 5
    where: str = field(default="SweepConfig", repr=False, compare=False)

    def __post_init__(self):
        w = self.where
        if not isinstance(self.name, str) or not self.name.strip():
            _fail(w, "name", f"expected a non-empty string, got {self.name!r}")
        self.workspace = _section(w, "workspace", self.workspace)
        ld = self.workspace["latent_dim"]
        if ld != "auto" and (isinstance(ld, bool) or not isinstance(ld, int) or ld < 1):
            _fail(w, "workspace.latent_dim", f"expected one integer >= 1 or 'auto', got {ld!r}")
        self.workspace = _check_values(w, "workspace", self.workspace)
        if self.workspace["fast"] is None:  # fixed here so that it is part of every trial's id
            self.workspace["fast"] = FAST
        if not isinstance(self.workspace["fast"], bool):
            _fail(w, "workspace.fast", f"expected true or false, got {self.workspace['fast']!r}")
        if self.workspace["vae_options"] is not None:
            _mapping(w, "workspace.vae_options", self.workspace["vae_options"])
        if self.workspace["source"] is not None and not isinstance(self.workspace["source"], str):
            _fail(w, "workspace.source", f"expected a path or a data set name, got {self.workspace['source']!r}")
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
            from qgan_widgets.quantum.circuits import NOISE_MAPS

            if q["noise_map"] not in NOISE_MAPS:
                _fail(w, "generators.quantum.noise_map", f"expected one of {', '.join(NOISE_MAPS)}, got {q['noise_map']!r}")
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
        if self.critic["lr_scaling"] is not None:
            scaling = _mapping(w, "critic.lr_scaling", self.critic["lr_scaling"])
            _unknown(w, "critic.lr_scaling.", scaling, ("reference_width", "exponent"))
            for key in ("reference_width", "exponent"):
                if key not in scaling:
                    _fail(w, f"critic.lr_scaling.{key}", "missing (give reference_width and exponent)")
            _number(w, "critic.lr_scaling.reference_width", scaling["reference_width"], minimum=1, integer=True)
            _number(w, "critic.lr_scaling.exponent", scaling["exponent"], minimum=-2, maximum=2)
            self.critic["lr_scaling"] = scaling
        self.seeds = _ints(w, "seeds", self.seeds, minimum=0)
        if len(set(self.seeds)) != len(self.seeds):
            _fail(w, "seeds", f"seeds repeat: {self.seeds}")
        self.train, self.stability, self.evaluation = (
            _mapping(w, k, getattr(self, k)) for k in ("train", "stability", "evaluation"))
        if "seed" in self.train:
            _fail(w, "train.seed", "the seed is set per trial from `seeds`; remove it from train")
        self.analysis = _check_values(w, "analysis", _section(w, "analysis", self.analysis))
        try:
            self.analysis["rule"] = OptimalityRule.from_value(self.analysis["rule"]).to_dict()
        except ScalingError as e:
            _fail(w, "analysis.rule", str(e))
        self.max_retries = _ints(w, "max_retries", self.max_retries, minimum=0)[0]
        self.ensemble = _ints(w, "ensemble", self.ensemble, minimum=1)[0]
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
                if q["noise_map"] != "cyclic":  # absent by default: trial ids of earlier versions stay
                    cfg["noise_map"] = q["noise_map"]
                out.append(cfg)
        c = self.generators.get("classical")
        if c:
            dims = c["latent_dim"] or [self.workspace["latent_dim"]]
            for d, hidden in itertools.product(dims, c["hidden"]):
                for nd in c["noise_dim"] or [d]:
                    out.append({"kind": "classical", "noise_dim": nd, "latent_dim": d, "hidden": list(hidden)})
        return out

    def critic_lr(self, width: int) -> float:
        """The critic's learning rate at ``width``: ``train.lr_critic`` (TrainConfig's default when
        absent), scaled by ``critic.lr_scaling`` when the sweep gives one."""
        from qgan_widgets.training.config import TrainConfig

        base = float(self.train.get("lr_critic", TrainConfig().lr_critic))
        scaling = self.critic.get("lr_scaling")
        if not scaling:
            return base
        return base * (scaling["reference_width"] / width) ** scaling["exponent"]

    def train_for(self, width: int) -> dict:
        """The training settings of a trial with critic ``width`` (its own ``lr_critic`` under a scaling)."""
        if not self.critic.get("lr_scaling"):
            return self.train
        return {**self.train, "lr_critic": float(f"{self.critic_lr(width):.4g}")}

    def trials(self) -> list[dict]:
        """Every trial as a JSON-able spec with its stable ``trial_id`` (a hash of the rest)."""
        specs = []
        for gen, width, seed in itertools.product(self.generator_configs(), self.critic["widths"], self.seeds):
            spec = {"generator": gen, "critic": {"width": width, "depth": self.critic["depth"]}, "seed": seed,
                    "latent_dim": latent_dim_of(gen), "train": self.train_for(width), "stability": self.stability,
                    "evaluation": self.evaluation,
                    "workspace": {**self.workspace, "latent_dim": latent_dim_of(gen)}}
            blob = json.dumps(spec, sort_keys=True, separators=(",", ":"))
            spec["trial_id"] = hashlib.sha256(blob.encode()).hexdigest()[:12]
            specs.append(spec)
        return specs

    def _check_generators(self) -> None:
        from qgan_widgets.quantum import circuits
        from qgan_widgets.quantum.backends import BACKENDS

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

        from qgan_widgets.scores import metrics
        from qgan_widgets.pipeline import Workspace
        from qgan_widgets.training.config import TrainConfig

        try:
            TrainConfig.from_dict({**self.train, "seed": 0})
        except (TypeError, ValueError) as e:
            _fail(self.where, "train", f"not valid TrainConfig fields: {e}")
        for key, fn, skip in (("stability", metrics.judge_stability, ("fd_values", "losses")),
                              ("evaluation", Workspace.evaluator, ("self",))):
            known = [p for p in inspect.signature(fn).parameters if p not in skip]
            _unknown(self.where, f"{key}.", getattr(self, key), known)
            setattr(self, key, _check_values(self.where, key, getattr(self, key)))
        floor = self.stability.get("floor", "reconstruction")
        if floor != "reconstruction" and (isinstance(floor, bool) or not isinstance(floor, (int, float))
                                          or not math.isfinite(floor) or floor < 0):
            _fail(self.where, "stability.floor", f"expected 'reconstruction' (the workspace's floor) or a "
                                                 f"number >= 0, got {floor!r}")
        ev = self.evaluation
        if not isinstance(ev.get("kid", False), bool):
            _fail(self.where, "evaluation.kid", f"expected true or false, got {ev['kid']!r}")
        if ev.get("n_samples") is not None and ev.get("n_grid", 16) > ev["n_samples"]:
            _fail(self.where, "evaluation.n_grid", f"{ev['n_grid']} grid tiles need n_samples >= {ev['n_grid']}, "
                                                   f"got n_samples {ev['n_samples']}")


def latent_dim_of(gen: Mapping) -> int:
    """Latent size a generator config produces."""
    if gen["kind"] == "classical":
        return int(gen["latent_dim"])
    from qgan_widgets.quantum.circuits import latent_dim_for

    return latent_dim_for(gen["num_qubits"], gen.get("readout", "z"))


def generator_label(gen: Mapping) -> str:
    """Short readable name: ``q4x2-cry-ring`` (``-sq``: the original style-qGAN noise map), or ``c8-8-d4`` (hidden widths, ``-z6`` when the noise size
    differs from the latent size, latent size)."""
    if gen["kind"] == "quantum":
        label = f"q{gen['num_qubits']}x{gen['num_layers']}-{gen['entangler']}"
        label += f"-{gen['readout']}" if gen.get("readout", "z") != "z" else ""
        return label + ("-sq" if gen.get("noise_map", "cyclic") == "style-qgan" else "")
    label = "c" + "-".join(map(str, gen["hidden"]))
    if gen["noise_dim"] != gen["latent_dim"]:
        label += f"-z{gen['noise_dim']}"
    return label + f"-d{gen['latent_dim']}"


def count_params(spec: Mapping) -> tuple[int, int]:
    """(generator, critic) trainable parameter counts of a trial, without building the models."""
    gen = spec["generator"]
    if gen["kind"] == "quantum":
        from qgan_widgets.quantum.circuits import count_parameters

        cg = count_parameters(gen["num_qubits"], gen["num_layers"], gen["entangler"])
    else:
        from qgan_widgets.models.capacity import classical_count_parameters

        cg = classical_count_parameters(gen["noise_dim"], gen["latent_dim"], tuple(gen["hidden"]))
    from qgan_widgets.models.capacity import critic_count_parameters

    return int(cg), int(critic_count_parameters(spec["latent_dim"], spec["critic"]["width"], spec["critic"]["depth"]))

