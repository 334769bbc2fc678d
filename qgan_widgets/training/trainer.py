"""The WGAN-GP training loop: one step, evaluation, divergence guard, resume, and run_training.

Taught in notebook ``04_training_latent_style_qgan``. One loop trains either generator kind (quantum or classical,
see the generator contract in ``docs/DESIGN.md``) against a :class:`~qgan_widgets.models.critic.Critic` in
the VAE's latent space. Per step (one ``tf.function``, traced once):

1. ``n_critic`` critic updates. Each takes a batch of real latents and a batch of generated ones
   and minimises ``D(fake) - D(real) + gp_weight * GP`` where the gradient penalty
   ``GP = mean((|grad D(x_hat)|_2 - 1)^2)`` is taken at random interpolates
   ``x_hat = e * real + (1 - e) * fake``, ``e ~ U(0, 1)`` per sample (Gulrajani et al. 2017).
2. One generator update minimising ``-D(G(xi))`` with fresh noise ``xi ~ N(0, 1)``.

The step records ``d_loss`` (critic loss incl. penalty), ``w_estimate`` (``mean D(real) - mean
D(fake)``, the critic's estimate of the Wasserstein-1 distance), ``gp`` and ``grad_norm_d`` (each
averaged over the ``n_critic`` updates), ``g_loss`` and ``grad_norm_g`` (global gradient norms).

Every random number (real batch indices, noise, interpolation weights) comes from one seeded
``tf.random.Generator`` whose state is checkpointed with the weights and both Adam optimisers, so
a run is reproducible from its seed and a run killed and resumed from its last checkpoint ends with
the same weights and metrics as an uninterrupted one.

Every ``eval_every`` steps the trainer computes ``fd_latent`` (Frechet distance in the latent space
between the generator's output on a fixed noise batch and the real latents: cheap, for live views)
and calls the optional ``evaluator(generator, step) -> (scores, samples)`` (e.g.
``pipeline.Workspace.evaluator()``, which scores decoded images in classifier features).

With ``out_dir`` the trainer keeps a run directory (``config.json``, ``metrics.csv``, ``evals.csv``,
sample grids and the last two checkpoints), written and restored by :mod:`qgan_widgets.training.rundir`.
The run's settings, hooks and outcome (:class:`TrainConfig`, :class:`Callback`,
:class:`TrainResult`, :class:`TrainingDiverged`) live in :mod:`qgan_widgets.training.config`, and
:func:`latest_checkpoint` in :mod:`qgan_widgets.training.rundir`; :mod:`qgan_widgets.training` hands them all on.

NaN/inf losses or gradients, or losses/gradient norms above the thresholds of :class:`TrainConfig`
for ``divergence_patience`` consecutive steps, stop the run with :class:`TrainingDiverged`; the
last good checkpoint stays on disk (a diverged state is never checkpointed).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from qgan_widgets.scores import metrics
from qgan_widgets._tf import keras, tf
from qgan_widgets.models.critic import Critic
from qgan_widgets.training.rundir import RunDirectory, atomic_write_text, latest_checkpoint, parameter_count
from qgan_widgets.training.config import STEP_KEYS, Callback, TrainConfig, TrainingDiverged, TrainResult

__all__ = ["WGANGPTrainer", "gradient_penalty", "run_training", "summarize_run", "build_models", "evaluation_record"]


# --------------------------------------------------------------------------------- the loss
def gradient_penalty(critic, real, fake, eps) -> tf.Tensor:
    """WGAN-GP penalty ``mean((|grad_x D(x_hat)|_2 - 1)^2)`` at ``x_hat = eps*real + (1-eps)*fake``.

    ``real``/``fake`` ``(B, d)`` with ``eps`` ``(B, 1)`` (one weight per sample) give a scalar; with a
    leading member axis (``(S, B, d)``, a stacked critic of an ensemble) one penalty per member ``(S,)``.
    Differentiable wrt the critic's weights.
    """
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        score = critic(x_hat, training=True)
    grad = tape.gradient(score, x_hat)
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=-1) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0), axis=-1)


def _scalar(v) -> float | None:
    """A number from an evaluator score: a number, a metrics.Score or a dict with 'value'."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    if isinstance(v, metrics.Score):
        return float(v.value)
    if isinstance(v, dict) and isinstance(v.get("value"), (int, float, np.integer, np.floating)):
        return float(v["value"])
    return None



def latent_fd(fake: np.ndarray, real_stats) -> float:
    """Frechet distance of generated latents to the real ones' (mean, covariance); NaN if it cannot be computed."""
    try:
        return metrics.frechet_distance(*metrics.feature_stats(fake), *real_stats)
    except metrics.MetricError:
        return math.nan


def evaluation_record(step: int, scores: dict | None, own_fd_latent: Callable[[], float]) -> dict:
    """An evaluation record: ``step``, ``fd_latent`` and the evaluator's scalar ``scores``. The
    evaluator's ``fd_latent`` (on its noise batch) is the record's; the trainer's own (``own_fd_latent()``,
    on its noise batch) is computed only when the evaluator gives none."""
    scalars = {k: n for k, v in (scores or {}).items() if k != "step" and (n := _scalar(v)) is not None}
    record = {"step": step, "fd_latent": scalars["fd_latent"] if "fd_latent" in scalars else own_fd_latent()}
    record.update(scalars)
    return record


def over_limits(row: dict, cfg: TrainConfig) -> bool:
    """Whether a step's losses or gradient norms exceed the limits of ``cfg``."""
    return (abs(row["d_loss"]) > cfg.max_abs_loss or abs(row["g_loss"]) > cfg.max_abs_loss
            or row["grad_norm_d"] > cfg.max_grad_norm or row["grad_norm_g"] > cfg.max_grad_norm)


def divergence_problem(row: dict, streak: int, cfg: TrainConfig) -> tuple[str | None, int]:
    """The divergence guard for one step: (what went wrong or None, the new count of consecutive steps
    over the limits). NaN/inf fires at once; limits after ``cfg.divergence_patience`` steps in a row."""
    bad = [k for k in STEP_KEYS[1:] if not math.isfinite(row[k])]
    if bad:
        return f"{', '.join(bad)} became NaN or infinite at step {row['step']}", streak
    streak = streak + 1 if over_limits(row, cfg) else 0
    if streak >= cfg.divergence_patience:
        return (f"the losses or gradients exceeded their limits (|loss| > {cfg.max_abs_loss:g} or "
                f"gradient norm > {cfg.max_grad_norm:g}) for {streak} consecutive steps, "
                f"up to step {row['step']} (d_loss {row['d_loss']:.3g}, g_loss {row['g_loss']:.3g}, "
                f"grad_norm_d {row['grad_norm_d']:.3g}, grad_norm_g {row['grad_norm_g']:.3g})"), streak
    return None, streak


def diverged_message(problem: str, checkpoint, cfg: TrainConfig) -> str:
    return (f"training diverged: {problem}. The run was stopped; the last good "
            f"checkpoint is {checkpoint or 'none (no checkpoint was written yet)'}. "
            f"Try a smaller learning rate (lr_generator {cfg.lr_generator:g}, "
            f"lr_critic {cfg.lr_critic:g}) or a different seed.")


# --------------------------------------------------------------------------------- the trainer
class WGANGPTrainer(RunDirectory):
    """WGAN-GP training of ``generator`` against ``critic`` on ``real_latents`` (N, latent_dim).

    ``evaluator(generator, step) -> (scores, samples)`` is called every ``eval_every`` steps;
    ``out_dir`` (optional) receives the run directory described in :mod:`qgan_widgets.training.rundir`;
    ``callbacks`` are :class:`Callback` objects; ``progress`` shows a tqdm bar. With
    ``resume=True`` (default), :meth:`train` continues from the newest checkpoint in ``out_dir``
    if there is one (the run's configuration must match, ``steps`` excepted); ``resume=False``
    starts over and deletes the old run's checkpoints and records.
    """

    def __init__(self, generator, critic, real_latents, config: TrainConfig | dict | None = None,
                 evaluator: Callable | None = None, out_dir=None, callbacks: Sequence[Callback] = (),
                 progress: bool = False, resume: bool = True):
        self.config = TrainConfig() if config is None else TrainConfig.from_dict(config)
        for attr in ("noise_dim", "latent_dim"):
            if not hasattr(generator, attr):
                raise ValueError(f"generator lacks the attribute {attr!r} of the generator contract "
                                 f"(see docs/DESIGN.md)")
        if hasattr(generator, "check_trainable"):  # e.g. a quantum generator on a gradient-free backend
            generator.check_trainable()
        self.generator, self.critic = generator, critic
        self.noise_dim, self.latent_dim = int(generator.noise_dim), int(generator.latent_dim)
        critic_dim = getattr(critic, "latent_dim", None)
        if critic_dim is not None and int(critic_dim) != self.latent_dim:
            raise ValueError(f"critic.latent_dim is {critic_dim} but the generator's latent_dim is "
                             f"{self.latent_dim}")
        real = np.asarray(real_latents, dtype=np.float32)
        if real.ndim != 2 or real.shape[1] != self.latent_dim:
            raise ValueError(f"real_latents must have shape (N, {self.latent_dim}) to match the "
                             f"generator's latent_dim, got {real.shape}")
        if real.shape[0] < 2:
            raise ValueError(f"real_latents needs at least 2 rows, got {real.shape[0]}")
        if not np.all(np.isfinite(real)):
            raise ValueError("real_latents contains NaN or inf")
        self.real_latents = real
        self._real_stats = metrics.feature_stats(real)
        self.evaluator = evaluator
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.callbacks = list(callbacks)
        self.progress = progress
        self.resume_enabled = bool(resume)
        self._damaged: set[str] = set()  # unreadable checkpoints found on resume (replaced when retrained)

        self.history: list[dict] = []
        self.evals: list[dict] = []
        self.step = 0
        self.last_samples = None
        self.last_scores: dict = {}
        self._stop_requested = False
        self.timings: dict = {}
        self._prepared = False
        self._bad_streak = 0

        cfg = self.config
        self._step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self._rng = tf.random.Generator.from_seed(cfg.seed, alg="philox")
        self._g_opt = keras.optimizers.Adam(cfg.lr_generator, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        self._d_opt = keras.optimizers.Adam(cfg.lr_critic, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        self._g_vars = list(generator.trainable_variables)
        self._d_vars = list(critic.trainable_variables)
        if not self._g_vars or not self._d_vars:
            raise ValueError("the generator and the critic must be built and have trainable weights")
        self._g_opt.build(self._g_vars)
        self._d_opt.build(self._d_vars)
        self._real = tf.constant(real)
        self._eval_noise = np.random.default_rng([cfg.seed, 7919]).standard_normal(
            (cfg.eval_samples, self.noise_dim)).astype(np.float32)
        self._ckpt = tf.train.Checkpoint(generator=generator, critic=critic, g_opt=self._g_opt,
                                         d_opt=self._d_opt, step=self._step_var, rng=self._rng)
        # No AutoGraph: the step has no tensor-dependent Python control flow, and AutoGraph
        # re-reads source files at trace time (wrong code if a file was edited since import).
        self.jit_compile = self._resolve_jit(cfg.jit_compile)
        self._train_step = tf.function(self._step_impl, autograph=False, jit_compile=self.jit_compile or None)

    def _resolve_jit(self, setting) -> bool:
        """``TrainConfig.jit_compile`` made True or False for this generator and critic: ``"auto"``
        is off (measured no faster, 1-1.5 s more compilation: see :class:`TrainConfig`)."""
        able = bool(getattr(self.generator, "xla_compatible", False) and getattr(self.critic, "xla_compatible", False))
        if setting is True and not able:
            what = getattr(self.generator, "backend_name", type(self.generator).__name__)
            raise ValueError(f"TrainConfig.jit_compile=True needs a generator and a critic that XLA can compile "
                             f"(xla_compatible), but this generator ({what}) or critic cannot; use 'auto' or False")
        return False if setting == "auto" else bool(setting)

    # ----------------------------------------------------------------------------- one step
    def _step_impl(self):
        cfg = self.config
        B, K, d = cfg.batch_size, cfg.n_critic, self.latent_dim
        n_real = tf.cast(tf.shape(self._real)[0], tf.int64)
        # All random draws first, in a fixed order, from the one checkpointed generator.
        idx = self._rng.uniform([K, B], minval=0, maxval=n_real, dtype=tf.int64)
        d_noise = self._rng.normal([K * B, self.noise_dim])
        eps = self._rng.uniform([K, B, 1])
        g_noise = self._rng.normal([B, self.noise_dim])

        # The generator does not change during the critic updates: one batched call for all K.
        fake_all = tf.reshape(tf.stop_gradient(self.generator(d_noise, training=True)), [K, B, d])
        sums = {k: tf.constant(0.0) for k in ("d_loss", "w_estimate", "gp", "grad_norm_d")}
        for k in range(K):
            real = tf.gather(self._real, idx[k])
            fake = fake_all[k]
            with tf.GradientTape() as tape:
                w = tf.reduce_mean(self.critic(real, training=True)) - tf.reduce_mean(
                    self.critic(fake, training=True))
                gp = gradient_penalty(self.critic, real, fake, eps[k])
                loss = -w + cfg.gp_weight * gp
            grads = tape.gradient(loss, self._d_vars)
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self._d_vars)]
            self._d_opt.apply_gradients(zip(grads, self._d_vars))
            for key, value in (("d_loss", loss), ("w_estimate", w), ("gp", gp),
                               ("grad_norm_d", tf.linalg.global_norm(grads))):
                sums[key] += value

        with tf.GradientTape() as tape:
            g_loss = -tf.reduce_mean(self.critic(self.generator(g_noise, training=True), training=True))
        grads = tape.gradient(g_loss, self._g_vars)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self._g_vars)]
        self._g_opt.apply_gradients(zip(grads, self._g_vars))
        self._step_var.assign_add(1)
        out = {k: v / K for k, v in sums.items()}
        out["g_loss"] = g_loss
        out["grad_norm_g"] = tf.linalg.global_norm(grads)
        return out

    # ----------------------------------------------------------------------------- evaluation
    def generate(self, noise) -> np.ndarray:
        """Generator output for a noise batch, as float32 numpy (batched)."""
        return np.asarray(self.generator(tf.constant(noise, tf.float32), training=False))

    def evaluate(self) -> tuple[dict, Any]:
        """Score the generator now: the evaluator's scores, and ``fd_latent`` on the trainer's fixed noise
        batch when the evaluator gives none (see :func:`evaluation_record`)."""
        samples = None
        if self.evaluator is not None:
            scores, samples = self.evaluator(self.generator, self.step)
            self.last_scores = dict(scores or {})
        record = evaluation_record(self.step, self.last_scores if self.evaluator is not None else None,
                                   lambda: latent_fd(self.generate(self._eval_noise), self._real_stats))
        self.last_samples = samples
        return record, samples

    # ----------------------------------------------------------------------------- divergence
    def _over_limits(self, row: dict) -> bool:
        return over_limits(row, self.config)

    def _divergence(self, row: dict) -> str | None:
        problem, self._bad_streak = divergence_problem(row, self._bad_streak, self.config)
        return problem

    # ----------------------------------------------------------------------------- the loop
    def request_stop(self) -> None:
        """Stop after the current step (writes a checkpoint when there is a run directory)."""
        self._stop_requested = True

    @property
    def final_scores(self) -> dict:
        return dict(self.evals[-1]) if self.evals else {}

    def _result(self, status: str, t0: float, checkpoint=None, message: str = "") -> TrainResult:
        return TrainResult(status=status, steps=self.step, history=self.history, evals=self.evals,
                           final_scores=self.final_scores, wall_time_s=time.perf_counter() - t0,
                           out_dir=None if self.out_dir is None else str(self.out_dir),
                           checkpoint=None if checkpoint is None else str(checkpoint), message=message,
                           timings=dict(self.timings))

    def train(self, stop_event=None) -> TrainResult:
        """Train up to ``config.steps`` steps; see the class and module docstrings.

        ``stop_event`` (a ``threading.Event``) stops the run cleanly after the current step, with a
        checkpoint. Raises :class:`TrainingDiverged` when the divergence guard fires.
        """
        t0 = time.perf_counter()
        cfg = self.config
        self._stop_requested = False
        self.timings = {"first_step_s": 0.0, "steps_s": 0.0, "eval_s": 0.0}
        first = True
        if self.out_dir is not None and not self._prepared:
            self._prepare_out_dir()
        elif self.out_dir is not None:  # e.g. training again after a stop, maybe with more steps
            path = self.out_dir / "config.json"
            saved = json.loads(path.read_text()) if path.is_file() else self._run_config()
            saved["train"]["steps"] = cfg.steps
            atomic_write_text(path, json.dumps(saved, indent=2) + "\n")
        for cb in self.callbacks:
            cb.on_train_begin(self)
        bar = None
        if self.progress and self.step < cfg.steps:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc="WGAN-GP", unit="step")
        status, message, checkpoint = "completed", "", latest_checkpoint(self.out_dir) if self.out_dir else None
        try:
            while self.step < cfg.steps:
                t_step = time.perf_counter()
                out = self._train_step()
                self.step += 1
                row = {"step": self.step, **{k: float(out[k]) for k in STEP_KEYS[1:]}}
                self.timings["first_step_s" if first else "steps_s"] += time.perf_counter() - t_step
                first = False
                self.history.append(row)
                self._append_metrics(row)
                problem = self._divergence(row)
                if problem is not None:
                    message = diverged_message(problem, checkpoint, cfg)
                    result = self._result("diverged", t0, checkpoint, message)
                    for cb in self.callbacks:
                        cb.on_train_end(self, result)
                    raise TrainingDiverged(message, self.step, None if checkpoint is None else str(checkpoint),
                                           result)
                for cb in self.callbacks:
                    cb.on_step(self.step, row)
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self._eval_now()
                if bar is not None:
                    bar.update(1)
                    if self.step % 10 == 0 or self.step == cfg.steps:
                        post = {"d": f"{row['d_loss']:.3g}", "g": f"{row['g_loss']:.3g}"}
                        if self.evals:
                            post["fd_lat"] = f"{self.evals[-1]['fd_latent']:.3g}"
                            if "fd" in self.evals[-1]:
                                post["fd"] = f"{self.evals[-1]['fd']:.3g}"
                        bar.set_postfix(post)
                stopping = self._stop_requested or (stop_event is not None and stop_event.is_set())
                periodic = cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
                if (periodic and self._bad_streak == 0) or stopping or self.step == cfg.steps:
                    # never a periodic checkpoint while the losses are over their limits
                    checkpoint = self.save_checkpoint() or checkpoint
                if stopping and self.step < cfg.steps:
                    status, message = "stopped", f"stopped after step {self.step} of {cfg.steps}"
                    break
        finally:
            if bar is not None:
                bar.close()
        if status == "completed" and self.history and (not self.evals or self.evals[-1]["step"] != self.step):
            self._eval_now()  # e.g. resuming a finished run whose last eval was lost
        result = self._result(status, t0, checkpoint, message)
        for cb in self.callbacks:
            cb.on_train_end(self, result)
        return result

    def _eval_now(self) -> None:
        t_eval = time.perf_counter()
        record, samples = self.evaluate()
        self.timings["eval_s"] = self.timings.get("eval_s", 0.0) + time.perf_counter() - t_eval
        self.evals.append(record)
        self._append_eval(record, samples)
        for cb in self.callbacks:
            cb.on_eval(self.step, record, samples)

    # ----------------------------------------------------------------------------- resume
    @classmethod
    def resume(cls, out_dir, generator=None, critic=None, real_latents=None, evaluator=None,
               callbacks: Sequence[Callback] = (), progress: bool = False, steps: int | None = None
               ) -> "WGANGPTrainer":
        """A trainer restored from the newest checkpoint of a run directory.

        ``generator`` / ``critic`` default to new models built from ``config.json``
        (``generators.build_generator`` and :class:`Critic`); their weights come from the
        checkpoint. ``real_latents`` must be the run's (a fingerprint is checked). ``steps``
        extends (or shortens) the run.
        """
        out = Path(out_dir)
        config_path = out / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"{config_path} not found: {out} is not a training run directory")
        saved = cls._read_run_config(config_path)
        config = TrainConfig.from_dict(saved["train"])
        if steps is not None:
            config = dataclasses.replace(config, steps=steps)
        if real_latents is None:
            raise ValueError("resume needs the run's real_latents (e.g. Workspace.real_latents)")
        if generator is None:
            from qgan_widgets.models.generators import build_generator

            generator = build_generator(**saved["generator"])
        if critic is None:
            critic = Critic(**saved["critic"])
        if latest_checkpoint(out) is None:
            raise FileNotFoundError(f"no checkpoint in {out / 'checkpoints'} to resume from")
        trainer = cls(generator, critic, real_latents, config, evaluator=evaluator, out_dir=out,
                      callbacks=callbacks, progress=progress, resume=True)
        trainer._prepare_out_dir()
        return trainer



# --------------------------------------------------------------------------------- for sweeps
def run_training(generator_config: dict, critic_config: dict | None = None,
                 train_config: TrainConfig | dict | None = None, workspace=None,
                 workspace_options: dict | None = None, out_dir=None, evaluator_options: dict | None = None,
                 callbacks: Sequence[Callback] = (), progress: bool = False, stop_event=None,
                 stability_options: dict | None = None) -> dict:
    """Build a generator, a critic and a trainer from plain configs, train, and summarise.

    ``generator_config``: ``generators.build_generator`` keywords (incl. ``kind``; ``seed``
    defaults to the train seed). ``critic_config``: ``{"width": .., "depth": ..}`` (``latent_dim``
    is the generator's; ``seed`` defaults to train seed + 1). ``workspace``: a prepared
    ``pipeline.Workspace``, else one is prepared with ``workspace_options`` (``latent_dim`` defaults
    to the generator's). Returns a JSON-able dict: status, steps, final_fd (classifier features),
    final_fd_latent, fd_reconstruction_floor, the window medians of :func:`window_scores` (fd_window,
    fd_excess, fd_latent_window, kid_window), n_eval (generated tiles per score), extractor, stable,
    stability_reasons, rel_spread,
    generator_kind, generator_params, critic_width, critic_params, latent_dim, wall_time_s,
    first_step_s, steps_s, eval_s (where the time went), d_loss, g_loss, w_estimate (means over the
    last tenth of the steps), out_dir, message. A diverged run is a result (status "diverged", stable
    False), not an error. ``stability_options``: :func:`~qgan_widgets.scores.metrics.judge_stability`
    keywords; ``floor: reconstruction`` judges the FD's excess over this workspace's floor.
    """
    t0 = time.perf_counter()
    cfg = TrainConfig() if train_config is None else TrainConfig.from_dict(train_config)
    generator, critic, gen_cfg, crit_cfg = build_models(generator_config, critic_config, cfg.seed)
    workspace = workspace_or_prepare(workspace, workspace_options, generator.latent_dim)
    evaluator = workspace.evaluator(**(evaluator_options or {}))
    trainer = WGANGPTrainer(generator, critic, workspace.real_latents, cfg, evaluator=evaluator,
                            out_dir=out_dir, callbacks=callbacks, progress=progress)
    try:
        result = trainer.train(stop_event=stop_event)
        status, message = result.status, result.message
    except TrainingDiverged as err:
        result, status, message = err.result, "diverged", str(err)
    return summarize_run(result, status, message, generator, critic, gen_cfg, crit_cfg, cfg, workspace,
                         stability_options, out_dir, time.perf_counter() - t0,
                         n_eval=(evaluator_options or {}).get("n_samples"))


def build_models(generator_config: dict, critic_config: dict | None, seed: int) -> tuple:
    """(generator, critic, generator config, critic config) of a run with training seed ``seed``: the
    generator seeded ``seed`` and the critic ``seed + 1`` unless the configs fix them; the critic's
    ``latent_dim`` is the generator's (a different one given is an error), width 32 and depth 2 by default."""
    from qgan_widgets.models.generators import build_generator

    gen_cfg = dict(generator_config)
    gen_cfg.setdefault("seed", int(seed))
    generator = build_generator(**gen_cfg)
    crit_cfg = {"width": 32, "depth": 2, "seed": int(seed) + 1, **(critic_config or {})}
    if crit_cfg.setdefault("latent_dim", generator.latent_dim) != generator.latent_dim:
        raise ValueError(f"critic_config latent_dim {crit_cfg['latent_dim']} does not match the "
                         f"generator's {generator.latent_dim}")
    return generator, Critic(**crit_cfg), gen_cfg, crit_cfg


def workspace_or_prepare(workspace, workspace_options: dict | None, latent_dim: int):
    """``workspace``, or a quietly prepared :class:`~qgan_widgets.pipeline.Workspace` for ``latent_dim``
    (``workspace_options``: more keywords of ``Workspace.prepare``)."""
    if workspace is not None:
        return workspace
    from qgan_widgets.pipeline import Workspace

    return Workspace.prepare(**{"latent_dim": latent_dim, "verbose": False, **(workspace_options or {})})


LOSS_TAIL_KEYS = ("d_loss", "g_loss", "w_estimate")


def loss_tail(history: Sequence[dict], steps: int) -> dict:
    """Mean ``d_loss``, ``g_loss`` and ``w_estimate`` over the last ``max(10, steps // 10)`` steps (None
    without steps): the critic's end-of-run Wasserstein estimate, beside the scores."""
    tail = list(history)[-max(10, steps // 10):]
    return {key: (sum(float(r[key]) for r in tail) / len(tail) if tail else None) for key in LOSS_TAIL_KEYS}


def window_scores(evals: Sequence[dict], window: int, floor: float | None) -> dict:
    """Medians over the last ``window`` evaluations that have each score: ``fd_window`` (image FD),
    ``fd_excess`` (``fd_window`` minus the reconstruction ``floor``: what the generator adds to what
    the VAE loses), ``fd_latent_window`` and ``kid_window`` (NaN where a score was never computed).
    One final evaluation is a noisy sample of a still-moving run; the window median is not."""
    def median(name):
        values = [float(e[name]) for e in evals if e.get(name) is not None][-window:]
        return float(np.median(values)) if values else math.nan

    fd = median("fd")
    return {"fd_window": fd, "fd_excess": fd - floor if floor is not None else math.nan,
            "fd_latent_window": median("fd_latent"), "kid_window": median("kid")}


def summarize_run(result: TrainResult, status: str, message: str, generator, critic, gen_cfg: dict,
                  crit_cfg: dict, cfg: TrainConfig, workspace, stability_options: dict | None, out_dir,
                  wall_time_s: float, n_eval: int | None = None) -> dict:
    """The JSON-able summary of one finished run (see :func:`run_training`; ensembles use it per member)."""
    evals = result.evals
    key = "fd" if evals and "fd" in evals[-1] else "fd_latent"
    fd_values = [e.get(key, math.nan) for e in evals]
    floor = getattr(workspace, "floor", None)
    floor = _scalar(floor) if floor is not None else None
    options = dict(stability_options or {})
    if options.get("floor") == "reconstruction":  # judge the excess over the workspace's floor
        options["floor"] = floor if key == "fd" else None
    stability = metrics.judge_stability(fd_values, losses=result.history, **options)
    reasons = list(stability.reasons)
    if status == "diverged":
        reasons.insert(0, message)
    return {
        "status": status,
        "steps": result.steps,
        "final_fd": float(evals[-1].get("fd", math.nan)) if evals else math.nan,
        "final_fd_latent": float(evals[-1].get("fd_latent", math.nan)) if evals else math.nan,
        "fd_reconstruction_floor": floor,
        **window_scores(evals, int(options.get("window", metrics.DEFAULT_WINDOW)), floor),
        "n_eval": int(n_eval) if n_eval is not None else getattr(workspace, "n_eval", None),
        "extractor": getattr(getattr(workspace, "extractor", None), "name", None),
        "stable": bool(stability.stable and status != "diverged"),
        "stability_reasons": reasons,
        "rel_spread": stability.rel_spread,
        "generator_kind": getattr(generator, "kind", None),
        "generator_config": gen_cfg,
        "generator_params": parameter_count(generator),
        "critic_width": crit_cfg["width"],
        "critic_depth": crit_cfg["depth"],
        "critic_params": parameter_count(critic),
        "latent_dim": generator.latent_dim,
        "seed": cfg.seed,
        "wall_time_s": wall_time_s,
        **{key: float(value) for key, value in result.timings.items()},  # first_step_s, steps_s, eval_s
        **loss_tail(result.history, cfg.steps),
        "out_dir": None if out_dir is None else str(out_dir),
        "message": message,
    }
