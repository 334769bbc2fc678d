"""Ensembles: S independent WGAN-GP runs of one shape trained side by side in one program.

A capacity study is hundreds of small trainings that differ only in seed; each alone is far too
small to use a core (a 4-qubit step is a millisecond of arithmetic inside several of TensorFlow's
call and op overheads) and pays its own start-up (tracing, compiling the simulator). An ensemble
stacks the S members' generators and critics (:mod:`qgan_widgets.models.stacked`: one variable per
weight with a leading member axis), so one step of the ensemble is one step of every member: the
quantum members' ``S x B`` circuits are one batch of the simulator, the critics one batched matrix
product, and the whole step one traced program. Evaluation scores all members' samples at once
(:meth:`qgan_widgets.pipeline.Workspace.ensemble_evaluator`), decoding them in a solo run's batches.

Every member is the run :class:`~qgan_widgets.training.trainer.WGANGPTrainer` would train alone with
its seed: its own initial weights (built with its seed), its own random stream (a Philox generator
seeded like the solo trainer's, drawn in the same order), its own Adam moments (Adam is elementwise,
and all members step together), its own gradient penalty and its own divergence guard (a diverged
member stops being recorded; the others go on). ``tests/test_ensemble.py`` checks that a member's
losses, scores and weights equal its solo run to float tolerance. Ensembles keep no run directory:
they serve sweeps, whose unit of resumption is the trial (see :mod:`qgan_widgets.study.runner`).

    results = run_ensemble({"kind": "quantum", "num_qubits": 4, "num_layers": 2}, {"width": 64},
                           TrainConfig(steps=800), seeds=[0, 1, 2, 3, 4], workspace=ws)
    # five summaries, each what run_training(..., TrainConfig(steps=800, seed=s)) returns
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import numpy as np

from qgan_widgets._tf import keras, tf
from qgan_widgets.models.stacked import stack_models
from qgan_widgets.scores import metrics
from qgan_widgets.training.config import STEP_KEYS, TrainConfig, TrainResult
from qgan_widgets.training.trainer import (
    build_models, divergence_problem, gradient_penalty, diverged_message, evaluation_record, latent_fd, summarize_run, workspace_or_prepare,
)

__all__ = ["EnsembleTrainer", "run_ensemble"]


class EnsembleTrainer:
    """WGAN-GP training of S (generator, critic) pairs of one shape, member ``s`` seeded with ``seeds[s]``.

    ``generators`` / ``critics``: plain models (built with each member's seeds; they are stacked, and
    :meth:`member_models` writes the trained weights back into them). ``config``: the training settings
    shared by all members (its ``seed`` is replaced by each member's). ``evaluator``: a
    :meth:`~qgan_widgets.pipeline.Workspace.ensemble_evaluator`, ``evaluate(stacked, step) -> [(scores,
    samples)]``. :meth:`train` returns one :class:`~qgan_widgets.training.config.TrainResult` per member.
    """

    def __init__(self, generators: Sequence, critics: Sequence, real_latents, config: TrainConfig | dict,
                 seeds: Sequence[int], evaluator: Callable | None = None, progress: bool = False):
        config = TrainConfig.from_dict(config) if isinstance(config, dict) else config
        seeds = [int(s) for s in seeds]
        if not (len(generators) == len(critics) == len(seeds) >= 1):
            raise ValueError(f"an ensemble needs as many generators, critics and seeds, at least one each; got "
                             f"{len(generators)}, {len(critics)} and {len(seeds)}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"the seeds of an ensemble must differ (each member is one seed's run), got {seeds}")
        for g in generators:
            if hasattr(g, "check_trainable"):
                g.check_trainable()
        self.configs = [dataclasses.replace(config, seed=s) for s in seeds]
        self.config, self.seeds, self.size = self.configs[0], seeds, len(seeds)
        self.generators, self.critics = list(generators), list(critics)
        self.G, self.D = stack_models(generators), stack_models(critics)
        self.noise_dim, self.latent_dim = int(self.G.noise_dim), int(self.G.latent_dim)
        if self.D.latent_dim != self.latent_dim:
            raise ValueError(f"critic.latent_dim is {self.D.latent_dim} but the generators' latent_dim is "
                             f"{self.latent_dim}")
        real = np.asarray(real_latents, dtype=np.float32)
        if real.ndim != 2 or real.shape[1] != self.latent_dim or real.shape[0] < 2 or not np.all(np.isfinite(real)):
            raise ValueError(f"real_latents must be finite with shape (N >= 2, {self.latent_dim}), got {real.shape}")
        self._real = tf.constant(real)
        self._real_stats = metrics.feature_stats(real)
        self.evaluator, self.progress = evaluator, progress
        cfg = self.config
        self._rngs = [tf.random.Generator.from_seed(s, alg="philox") for s in seeds]
        self._g_opt = keras.optimizers.Adam(cfg.lr_generator, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        self._d_opt = keras.optimizers.Adam(cfg.lr_critic, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        self._g_vars, self._d_vars = self.G.trainable_variables, self.D.trainable_variables
        self._g_opt.build(self._g_vars)
        self._d_opt.build(self._d_vars)
        self._eval_noise = np.stack([  # each member's fixed noise, as its solo trainer draws it
            np.random.default_rng([s, 7919]).standard_normal((cfg.eval_samples, self.noise_dim)).astype(np.float32)
            for s in seeds])
        self.step = 0
        self.history: list[list[dict]] = [[] for _ in seeds]
        self.evals: list[list[dict]] = [[] for _ in seeds]
        self.status = ["running"] * self.size
        self.messages = [""] * self.size
        self._streaks = [0] * self.size
        self.timings: dict = {}
        self.jit_compile = config.jit_compile is True
        self._train_step = tf.function(self._step_impl, autograph=False, jit_compile=self.jit_compile or None)

    # ----------------------------------------------------------------------------- one step
    @staticmethod
    def _per_member(tensors) -> tf.Tensor:
        """Global gradient norm of each member: (S,)."""
        squares = [tf.reduce_sum(tf.square(t), axis=list(range(1, t.shape.rank))) for t in tensors]
        return tf.sqrt(tf.add_n(squares))

    def _step_impl(self):
        cfg = self.config
        S, B, K, d = self.size, cfg.batch_size, cfg.n_critic, self.latent_dim
        n_real = tf.cast(tf.shape(self._real)[0], tf.int64)
        draws = []
        for rng in self._rngs:  # each member's draws, in the solo trainer's order
            draws.append((rng.uniform([K, B], minval=0, maxval=n_real, dtype=tf.int64),
                          rng.normal([K * B, self.noise_dim]), rng.uniform([K, B, 1]),
                          rng.normal([B, self.noise_dim])))
        idx, d_noise, eps, g_noise = (tf.stack(list(x)) for x in zip(*draws))

        fake_all = tf.reshape(tf.stop_gradient(self.G(d_noise, training=True)), [S, K, B, d])
        sums = {k: tf.zeros([S]) for k in ("d_loss", "w_estimate", "gp", "grad_norm_d")}
        for k in range(K):
            real = tf.gather(self._real, idx[:, k])
            fake = fake_all[:, k]
            with tf.GradientTape() as tape:
                w = tf.reduce_mean(self.D(real, training=True), axis=[1, 2]) - tf.reduce_mean(
                    self.D(fake, training=True), axis=[1, 2])
                gp = gradient_penalty(self.D, real, fake, eps[:, k])
                loss = -w + cfg.gp_weight * gp
                total = tf.reduce_sum(loss)  # members are independent: d total / d member s = d loss_s
            grads = tape.gradient(total, self._d_vars)
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self._d_vars)]
            self._d_opt.apply_gradients(zip(grads, self._d_vars))
            for key, value in (("d_loss", loss), ("w_estimate", w), ("gp", gp),
                               ("grad_norm_d", self._per_member(grads))):
                sums[key] += value

        with tf.GradientTape() as tape:
            g_loss = -tf.reduce_mean(self.D(self.G(g_noise, training=True), training=True), axis=[1, 2])
            total = tf.reduce_sum(g_loss)
        grads = tape.gradient(total, self._g_vars)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self._g_vars)]
        self._g_opt.apply_gradients(zip(grads, self._g_vars))
        out = {k: v / K for k, v in sums.items()}
        out["g_loss"] = g_loss
        out["grad_norm_g"] = self._per_member(grads)
        return out

    # ----------------------------------------------------------------------------- evaluation
    def alive(self) -> list[int]:
        return [s for s in range(self.size) if self.status[s] == "running"]

    def evaluate(self) -> list[dict | None]:
        """Each running member's evaluation record (as the solo trainer's: :func:`evaluation_record`);
        None for a member that stopped."""
        scored = self.evaluator(self.G, self.step) if self.evaluator is not None else None
        fake = []  # the members' outputs on their own noise: computed only if the evaluator gives no fd_latent

        def own(s: int) -> float:
            if not fake:
                fake.append(np.asarray(self.G(tf.constant(self._eval_noise), training=False)))
            return latent_fd(fake[0][s], self._real_stats)

        records: list[dict | None] = [None] * self.size
        for s in self.alive():
            records[s] = evaluation_record(self.step, scored[s][0] if scored is not None else None,
                                           lambda s=s: own(s))
        return records

    # ----------------------------------------------------------------------------- the loop
    def train(self) -> list[TrainResult]:
        """Train every member up to ``config.steps`` steps; one result per member (status "completed" or
        "diverged", with the solo trainer's message)."""
        t0 = time.perf_counter()
        cfg = self.config
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc=f"WGAN-GP x{self.size}", unit="step")
        self.timings = {"first_step_s": 0.0, "steps_s": 0.0, "eval_s": 0.0}
        first = True
        try:
            while self.step < cfg.steps and self.alive():
                t_step = time.perf_counter()
                out = {k: v.numpy() for k, v in self._train_step().items()}
                self.step += 1
                self.timings["first_step_s" if first else "steps_s"] += time.perf_counter() - t_step
                first = False
                for s in self.alive():
                    row = {"step": self.step, **{k: float(out[k][s]) for k in STEP_KEYS[1:]}}
                    self.history[s].append(row)
                    problem, self._streaks[s] = divergence_problem(row, self._streaks[s], cfg)
                    if problem is not None:
                        self.status[s], self.messages[s] = "diverged", diverged_message(problem, None, cfg)
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self._eval_now()
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        wall = time.perf_counter() - t0
        for s in self.alive():
            self.status[s] = "completed"
        return [TrainResult(status=self.status[s], steps=len(self.history[s]), history=self.history[s],
                            evals=self.evals[s], final_scores=dict(self.evals[s][-1]) if self.evals[s] else {},
                            wall_time_s=wall, message=self.messages[s], timings=dict(self.timings))
                for s in range(self.size)]

    def _eval_now(self) -> None:
        t_eval = time.perf_counter()
        records = self.evaluate()
        self.timings["eval_s"] += time.perf_counter() - t_eval
        for s, record in enumerate(records):
            if record is not None:
                self.evals[s].append(record)

    def member_models(self, s: int) -> tuple:
        """Member ``s``'s (generator, critic): the plain models it was stacked from, holding its trained weights."""
        self.G.copy_member_to(s, self.generators[s])
        self.D.copy_member_to(s, self.critics[s])
        return self.generators[s], self.critics[s]


def run_ensemble(generator_config: dict, critic_config: dict | None, train_config: TrainConfig | dict | None,
                 seeds: Sequence[int], workspace=None, workspace_options: dict | None = None,
                 evaluator_options: dict | None = None, stability_options: dict | None = None,
                 progress: bool = False) -> list[dict]:
    """:func:`~qgan_widgets.training.trainer.run_training` for several seeds at once: one summary per seed,
    in the order of ``seeds``, each with the keys ``run_training`` gives (``seed`` the member's; member
    ``s``'s generator and critic seeded as ``run_training`` seeds them: ``s`` and ``s + 1`` unless the
    configs fix them), plus ``ensemble_size`` and ``ensemble_wall_time_s``; ``wall_time_s`` and the
    timings (``first_step_s``, ``steps_s``, ``eval_s``) are the member's share (the ensemble's over its size)."""
    t0 = time.perf_counter()
    base = TrainConfig() if train_config is None else TrainConfig.from_dict(train_config)
    generators, critics, gen_cfgs, crit_cfgs = zip(*(build_models(generator_config, critic_config, s) for s in seeds))
    workspace = workspace_or_prepare(workspace, workspace_options, generators[0].latent_dim)
    trainer = EnsembleTrainer(generators, critics, workspace.real_latents, base, seeds,
                              evaluator=workspace.ensemble_evaluator(**(evaluator_options or {})), progress=progress)
    results = trainer.train()
    wall = time.perf_counter() - t0
    summaries = []
    for s, result in enumerate(results):
        result.timings = {k: v / len(results) for k, v in result.timings.items()}  # the member's share
        summary = summarize_run(result, result.status, result.message, generators[s], critics[s], gen_cfgs[s],
                                crit_cfgs[s], trainer.configs[s], workspace, stability_options, None,
                                wall / len(results), n_eval=(evaluator_options or {}).get("n_samples"))
        summary.update(ensemble_size=len(results), ensemble_wall_time_s=wall)
        summaries.append(summary)
    return summaries
