"""The Explorer's state: its configuration, the run's status and the curves the views draw.

Controls write into an :class:`ExplorerState`; views observe it (``traitlets`` notifications); the
runner (:mod:`qgan_widgets.widgets.runner`) publishes training progress into it. Every value is
checked here, whoever sets it (a control, ``Explorer(**initial)``, ``Explorer.set`` or a script):
a bad value raises :class:`ExplorerError` naming the control and what is wrong, and the state stays
as it was. Taught in notebook ``07_explorer``.
"""
from __future__ import annotations

import math

from traitlets import Any, Bool, Float, HasTraits, Int, List, TraitError, Unicode, validate

from qgan_widgets import FAST
from qgan_widgets.quantum.circuits import ENTANGLERS, READOUTS, count_parameters, entangler_pairs, latent_dim_for
from qgan_widgets.models.capacity import critic_count_parameters
from qgan_widgets.quantum.backends import DEFAULT_BACKEND, TRAINABLE_BACKENDS
from qgan_widgets.models.capacity import classical_count_parameters

__all__ = ["ExplorerState", "ExplorerError", "defaults", "check_value", "check_config", "CONFIG_KEYS",
           "LOCKED_KEYS", "ACTIVE", "STATUSES", "LABELS", "MAX_QUBITS", "MAX_LAYERS", "MAX_WIDTH",
           "MAX_STEPS", "MAX_SEED", "MIN_LEARNING_RATE"]


class ExplorerError(ValueError):
    """A value or an action of the Explorer was refused; the message says which and why."""


MAX_QUBITS = 12
"""Most qubits the dashboard simulates: every qubit doubles the simulation cost. With the default
``statevector`` backend on 2 cores a training step (batch 64, 5 critic updates) takes about 3 ms at
5 qubits / 2 layers, 20 ms at 10 / 4 and 65 ms at 12 / 4; ``tfq`` is 5-30 times slower
(``python -m qgan_widgets bench generator``)."""
MAX_LAYERS = 8
MAX_WIDTH = 1024
MAX_STEPS = 100_000
MAX_SEED = 2**31 - 1
MIN_LEARNING_RATE = 1e-6
KINDS = ("quantum", "classical")
SAMPLE_VIEWS = ("rgb", "ndvi")

ACTIVE = ("preparing", "training", "paused", "stopping")
"""Statuses while a run is in progress (shape-changing controls are locked)."""
STATUSES = ("idle",) + ACTIVE + ("stopped", "completed", "diverged", "error")

LABELS = {
    "kind": "generator kind", "num_qubits": "qubits", "num_layers": "layers", "entangler": "entangler",
    "readout": "readout", "backend": "simulator backend", "hidden_width": "hidden width",
    "critic_width": "critic width", "critic_depth": "critic depth", "learning_rate": "learning rate",
    "steps": "steps", "batch_size": "batch size", "n_critic": "critic updates per step",
    "eval_every": "evaluate every", "seed": "seed", "view": "sample view",
}
"""The configuration keys and the names messages use for them."""
CONFIG_KEYS = tuple(LABELS)
LOCKED_KEYS = tuple(k for k in CONFIG_KEYS if k not in ("steps", "view"))
"""Keys that define the models or the run: refused while a run is in progress."""

_INT_LIMITS = {
    "num_qubits": (1, MAX_QUBITS), "num_layers": (1, MAX_LAYERS), "hidden_width": (1, MAX_WIDTH),
    "critic_width": (1, MAX_WIDTH), "critic_depth": (1, 8), "steps": (1, MAX_STEPS),
    "batch_size": (2, 4096), "n_critic": (1, 50), "eval_every": (1, MAX_STEPS), "seed": (0, MAX_SEED),
}
_CHOICES = {"kind": KINDS, "entangler": ENTANGLERS, "readout": READOUTS, "backend": TRAINABLE_BACKENDS,
            "view": SAMPLE_VIEWS}
_HINTS = {"num_qubits": " (every qubit doubles the simulation cost; from about 8 qubits a training step "
                        "takes seconds)"}


def defaults(fast: bool | None = None) -> dict:
    """The starting configuration: 3 qubits x 2 layers against a width-32 critic.

    ``fast`` (default: ``QGAN_FAST``) makes runs short (40 steps, evaluations every 10) for tests and
    classroom demos on small machines.
    """
    fast = FAST if fast is None else bool(fast)
    return {
        "kind": "quantum", "num_qubits": 3, "num_layers": 2, "entangler": "cry-ring", "readout": "z",
        "backend": DEFAULT_BACKEND, "hidden_width": 8, "critic_width": 32, "critic_depth": 2,
        "learning_rate": 1e-3, "steps": 40 if fast else 300, "batch_size": 32 if fast else 64,
        "n_critic": 3 if fast else 5, "eval_every": 10 if fast else 25, "seed": 0, "view": "rgb",
    }


def _as_int(label: str, value) -> int:
    if isinstance(value, bool):
        raise ExplorerError(f"{label}: {value!r} is not a whole number")
    if isinstance(value, str):
        text = value.strip().replace("_", "").replace(",", "")
        try:
            value = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ExplorerError(f"{label}: {value!r} is not a whole number") from None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ExplorerError(f"{label}: {value!r} is not a whole number") from None
    if not math.isfinite(number) or not number.is_integer():
        raise ExplorerError(f"{label}: {value!r} is not a whole number")
    return int(number)


def _as_float(label: str, value) -> float:
    if isinstance(value, bool):
        raise ExplorerError(f"{label}: {value!r} is not a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ExplorerError(f"{label}: {value!r} is not a number (write e.g. 0.001 or 1e-3)") from None
    if not math.isfinite(number):
        raise ExplorerError(f"{label}: {value!r} is not a finite number")
    return number


def check_value(name: str, value):
    """``value`` for the configuration key ``name``, normalised (``"3"`` -> 3), or ExplorerError."""
    if name not in LABELS:
        raise ExplorerError(f"unknown Explorer setting {name!r}; known: {', '.join(CONFIG_KEYS)}")
    label = LABELS[name]
    if name == "backend" and value == "qsim":
        raise ExplorerError(f"{label}: 'qsim' cannot train (it samples shots, with optional noise, and has no "
                            f"gradients; notebook 03 uses it to score a trained generator): choose "
                            f"{' or '.join(TRAINABLE_BACKENDS)}")
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            raise ExplorerError(f"{label}: {value!r} is not one of {', '.join(_CHOICES[name])}")
        return value
    if name in _INT_LIMITS:
        low, high = _INT_LIMITS[name]
        number = _as_int(label, value)
        if number > high:
            raise ExplorerError(f"{label}: {number} is too large; the Explorer takes {low} to {high}"
                                f"{_HINTS.get(name, '')}")
        if number < low:
            raise ExplorerError(f"{label}: {number} is too small; the Explorer takes {low} to {high}")
        return number
    number = _as_float(label, value)  # learning_rate
    if not MIN_LEARNING_RATE <= number <= 1:
        raise ExplorerError(f"{label}: {number:g} is out of range; it must be between {MIN_LEARNING_RATE:g} and 1 "
                            f"(e.g. 1e-3; below {MIN_LEARNING_RATE:g} the weights barely move in a run)")
    return number


def check_config(config: dict) -> None:
    """Checks across keys (a complete configuration): e.g. entangler ``cry-pairs`` needs 3 qubits."""
    if config["kind"] == "quantum":
        try:
            entangler_pairs(config["entangler"], config["num_qubits"], 0)
        except ValueError as err:
            raise ExplorerError(f"entangler: {err}") from None


def latent_dim_of(config: dict) -> int:
    """The latent size a configuration trains in (the classical generator matches the quantum one)."""
    return latent_dim_for(config["num_qubits"], config["readout"])


def generator_config(config: dict) -> dict:
    """``generators.build_generator`` keywords for a configuration."""
    d = latent_dim_of(config)
    if config["kind"] == "quantum":
        return {"kind": "quantum", "num_qubits": config["num_qubits"], "num_layers": config["num_layers"],
                "entangler": config["entangler"], "readout": config["readout"],
                "backend": config["backend"], "seed": config["seed"]}
    return {"kind": "classical", "noise_dim": d, "latent_dim": d,
            "hidden": [config["hidden_width"]] * 2, "seed": config["seed"]}


def critic_config(config: dict) -> dict:
    """``Critic`` keywords for a configuration (its seed is the run's seed + 1)."""
    return {"latent_dim": latent_dim_of(config), "width": config["critic_width"],
            "depth": config["critic_depth"], "seed": config["seed"] + 1}


def parameter_counts(config: dict) -> tuple[int, int]:
    """(generator, critic) trainable parameters of a configuration, without building models."""
    d = latent_dim_of(config)
    if config["kind"] == "quantum":
        gen = count_parameters(config["num_qubits"], config["num_layers"], config["entangler"])
    else:
        gen = classical_count_parameters(d, d, (config["hidden_width"],) * 2)
    return gen, critic_count_parameters(d, config["critic_width"], config["critic_depth"])


def run_key(config: dict) -> tuple:
    """What a run is: everything but the step count and the sample view (same key: Train continues)."""
    return tuple((k, config[k]) for k in CONFIG_KEYS if k not in ("steps", "view"))


class ExplorerState(HasTraits):
    """Configuration + run status + curves, observed by the Explorer's views.

    Configuration traits (see :data:`LABELS`): ``kind``, ``num_qubits``, ``num_layers``,
    ``entangler``, ``readout``, ``backend``, ``hidden_width`` (classical), ``critic_width``,
    ``critic_depth``, ``learning_rate`` (both Adam optimisers), ``steps`` (per Train press),
    ``batch_size``, ``n_critic``, ``eval_every``, ``seed``, ``view`` (``"rgb"`` / ``"ndvi"``).
    Change them with :meth:`update` (checked together, applied at once, or refused).

    Run traits, written by the runner: ``status`` (one of :data:`STATUSES`), ``message``, ``step``,
    ``target_steps``, ``history`` (per-step loss records), ``evals`` (evaluation records with
    ``fd`` and ``fd_latent``), ``samples`` (uint8 tiles of the last evaluation, from the fixed noise
    batch) and ``sample_step``, ``revision`` (bumped whenever the curves change), ``speed`` (steps per second),
    ``run_dir``,
    ``floor`` (the workspace's FD reconstruction floor) and ``data_info``; ``phase`` (what a long wait
    is spent on: preparing the data and VAE, building the models, compiling the first step; empty
    otherwise) and ``phase_since`` (its ``time.time()`` start); ``stale`` (True while the curves and
    samples shown are the previous run's and a new run is being prepared).

    Session traits: ``runs`` (a record per run trained, :func:`qgan_widgets.widgets.compare.run_record`,
    written by the runner when a run ends) and ``overlay`` (numbers of earlier runs whose FD curves are
    drawn over the current one).
    """

    kind = Unicode("quantum")
    num_qubits = Int(3)
    num_layers = Int(2)
    entangler = Unicode("cry-ring")
    readout = Unicode("z")
    backend = Unicode(DEFAULT_BACKEND)
    hidden_width = Int(8)
    critic_width = Int(32)
    critic_depth = Int(2)
    learning_rate = Float(1e-3)
    steps = Int(300)
    batch_size = Int(64)
    n_critic = Int(5)
    eval_every = Int(20)
    seed = Int(0)
    view = Unicode("rgb")

    status = Unicode("idle")
    message = Unicode("")
    step = Int(0)
    target_steps = Int(0)
    history = List()
    evals = List()
    samples = Any(None)
    sample_step = Int(-1)
    revision = Int(0)
    speed = Float(math.nan)
    run_dir = Unicode("")
    floor = Float(math.nan)
    data_info = Unicode("")
    phase = Unicode("")
    phase_since = Float(0.0)
    stale = Bool(False)
    runs = List()
    overlay = List()

    @validate(*CONFIG_KEYS)
    def _check(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        try:
            value = check_value(name, value)
            if self.active and name in LOCKED_KEYS and value != getattr(self, name):
                raise ExplorerError(self._locked_message([name]))
            check_config({**self.config(), name: value})
        except ExplorerError as err:
            raise TraitError(str(err)) from None
        return value

    @validate("status")
    def _check_status(self, proposal):
        if proposal["value"] not in STATUSES:
            raise TraitError(f"status must be one of {', '.join(STATUSES)}, got {proposal['value']!r}")
        return proposal["value"]

    # -- reading -------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True while a run is preparing, training, paused or stopping."""
        return self.status in ACTIVE

    def config(self) -> dict:
        """The configuration as a plain dict (a snapshot)."""
        return {k: getattr(self, k) for k in CONFIG_KEYS}

    @property
    def latent_dim(self) -> int:
        return latent_dim_of(self.config())

    @property
    def parameter_counts(self) -> tuple[int, int]:
        """(generator, critic) parameters of the current configuration."""
        return parameter_counts(self.config())

    # -- writing -------------------------------------------------------------------------------
    @staticmethod
    def _locked_message(names) -> str:
        which = ", ".join(LABELS[n] for n in names)
        return (f"{which}: cannot change while a run is in progress (it changes the models or the run); "
                "press Stop first")

    def update(self, **values) -> None:
        """Check ``values`` (configuration keys) together and apply them at once, or raise
        :class:`ExplorerError` and change nothing."""
        clean = {name: check_value(name, value) for name, value in values.items()}
        check_config({**self.config(), **clean})
        if self.active:
            locked = [n for n, v in clean.items() if n in LOCKED_KEYS and v != getattr(self, n)]
            if locked:
                raise ExplorerError(self._locked_message(locked))
        try:
            with self.hold_trait_notifications():
                for name, value in clean.items():
                    setattr(self, name, value)
        except TraitError as err:
            raise ExplorerError(str(err)) from None
