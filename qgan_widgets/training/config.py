"""What a WGAN-GP run takes and gives: its settings, its hooks and its outcome.

:class:`TrainConfig` (every setting of a run, JSON-able and validated), :class:`Callback` (hooks
called by the loop), :class:`TrainResult` and :class:`TrainingDiverged` (how a run ended) and
:data:`STEP_KEYS` (the per-step record). The loop itself is :class:`qgan_widgets.training.trainer.WGANGPTrainer`;
the face :mod:`qgan_widgets.training` hands on these names (``qw.training.TrainConfig``); see the training contract in
``docs/DESIGN.md``. Taught in notebook ``04_training_latent_style_qgan``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

STEP_KEYS = ("step", "d_loss", "g_loss", "w_estimate", "gp", "grad_norm_g", "grad_norm_d")
"""Columns of ``metrics.csv`` and keys of every ``trainer.history`` row, in order."""


class TrainingDiverged(RuntimeError):
    """Training stopped because a loss or gradient became NaN/inf or kept exceeding its limit.

    ``step`` is the step where it was detected, ``checkpoint`` the last good checkpoint directory
    (or None) and ``result`` the :class:`TrainResult` up to that point.
    """

    def __init__(self, message: str, step: int, checkpoint: str | None = None, result=None):
        super().__init__(message)
        self.step, self.checkpoint, self.result = step, checkpoint, result


# --------------------------------------------------------------------------------- configuration
@dataclass
class TrainConfig:
    """Settings of a WGAN-GP run (all JSON-able; defaults suit the 4-d latent demo).

    ``steps`` generator updates, each after ``n_critic`` critic updates on batches of
    ``batch_size``; penalty weight ``gp_weight``; Adam ``lr_*``, ``beta_1``, ``beta_2``;
    evaluations every ``eval_every`` steps on ``eval_samples`` generated latents; checkpoints every
    ``checkpoint_every`` steps (0 = only at the end, when a run directory is given); ``seed`` for
    every random draw. Divergence guard: NaN/inf anywhere stops at once; ``|d_loss|`` or
    ``|g_loss|`` above ``max_abs_loss`` or a gradient norm above ``max_grad_norm`` for
    ``divergence_patience`` consecutive steps stops the run. ``jit_compile``: ``True``
    compiles the whole step with XLA into one program (the generator and critic must be
    ``xla_compatible``: the statevector and classical generators, not ``tfq``); ``"auto"`` (default)
    is the toolkit's measured choice, currently off: since the statevector backend's own programs
    are XLA-compiled, the whole-step XLA program measured no faster on 2 cores (5 qubits / 2 layers,
    batch 64: 1.7-2.0 ms either way; 8 / 4: 5.0-6.0 against 5.5-5.6 ms; classical 0.8 against 0.9
    ms) and costs 0.9-1.5 s more compilation at the first step. XLA draws the same kind of random
    numbers by other kernels: a run is reproducible within one setting, not across the two.
    """

    steps: int = 1000
    batch_size: int = 64
    n_critic: int = 5
    gp_weight: float = 10.0
    lr_generator: float = 1e-3
    lr_critic: float = 1e-3
    beta_1: float = 0.5
    beta_2: float = 0.9
    eval_every: int = 50
    checkpoint_every: int = 100
    seed: int = 0
    eval_samples: int = 1000
    max_abs_loss: float = 1e6
    max_grad_norm: float = 1e8
    divergence_patience: int = 3
    jit_compile: bool | str = "auto"

    _INTS = ("steps", "batch_size", "n_critic", "eval_every", "checkpoint_every", "seed",
             "eval_samples", "divergence_patience")

    def __post_init__(self):
        minimum = {"steps": 0, "checkpoint_every": 0, "seed": 0, "eval_samples": 2}
        for name in self._INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                if isinstance(value, (float, np.floating)) and float(value).is_integer():
                    value = int(value)
                else:
                    raise ValueError(f"TrainConfig.{name} must be an integer, got {value!r}")
            low = minimum.get(name, 1)
            if value < low:
                raise ValueError(f"TrainConfig.{name} must be >= {low}, got {value}")
            setattr(self, name, int(value))
        for name in ("gp_weight", "lr_generator", "lr_critic", "beta_1", "beta_2", "max_abs_loss",
                     "max_grad_norm"):
            value = getattr(self, name)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"TrainConfig.{name} must be a number, got {value!r}") from None
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be a finite number >= 0, got {value!r}")
            setattr(self, name, value)
        for name in ("lr_generator", "lr_critic", "max_abs_loss", "max_grad_norm"):
            if getattr(self, name) == 0:
                raise ValueError(f"TrainConfig.{name} must be > 0")
        for name in ("beta_1", "beta_2"):
            if not getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.jit_compile not in ("auto", True, False):
            raise ValueError(f"TrainConfig.jit_compile must be 'auto', True or False, got {self.jit_compile!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a dict; unknown keys raise a ValueError naming them."""
        if isinstance(d, cls):
            return d
        if not isinstance(d, dict):
            raise ValueError(f"a train config must be a dict, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**d)


class Callback:
    """Hooks into :meth:`WGANGPTrainer.train`; override any of them (all optional).

    ``trainer`` is the running :class:`~qgan_widgets.training.trainer.WGANGPTrainer`. ``on_step`` gets the
    step's record (a dict with :data:`STEP_KEYS`); ``on_eval`` the evaluation record (``step``,
    ``fd_latent`` and the evaluator's scalar scores) and the sample images or None. A callback can
    stop the run after the current step with ``trainer.request_stop()``.
    """

    def on_train_begin(self, trainer) -> None: ...

    def on_step(self, step: int, logs: dict) -> None: ...

    def on_eval(self, step: int, scores: dict, samples) -> None: ...

    def on_train_end(self, trainer, result: "TrainResult") -> None: ...


@dataclass
class TrainResult:
    """What :meth:`WGANGPTrainer.train` returns.

    ``status``: "completed", "stopped" (stop_event / request_stop) or "diverged" (then carried by
    :class:`TrainingDiverged`). ``final_scores`` is the last evaluation record.
    """

    status: str
    steps: int
    history: list[dict]
    evals: list[dict]
    final_scores: dict
    wall_time_s: float
    out_dir: str | None = None
    checkpoint: str | None = None
    message: str = ""
    timings: dict = field(default_factory=dict)
    """Where the wall time went (this call of ``train``): ``first_step_s`` (the first step: tracing and
    compiling), ``steps_s`` (the other steps), ``eval_s`` (evaluations)."""

    @property
    def final_fd_latent(self) -> float:
        return float(self.final_scores.get("fd_latent", math.nan))

    @property
    def final_fd(self) -> float:
        """The evaluator's ``fd`` at the last evaluation (NaN without an evaluator)."""
        return float(self.final_scores.get("fd", math.nan))
