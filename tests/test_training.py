"""WGAN-GP training: the loss on toy cases, determinism, kill-and-resume, the divergence guard,
stop_event, callbacks and the run directory. Toy generators fulfil the generator contract."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import qgan_widgets  # noqa: F401  (Keras guard first)
from qgan_widgets._tf import keras, tf
from qgan_widgets.models import Critic, critic_count_parameters
from qgan_widgets.training import rundir
from qgan_widgets.training import config as trainconfig
from qgan_widgets.training import trainer as training
from qgan_widgets.training import latest_checkpoint
from qgan_widgets.training import STEP_KEYS, Callback, TrainConfig, TrainingDiverged
from qgan_widgets.training import WGANGPTrainer, gradient_penalty, run_training

ROOT = Path(__file__).resolve().parents[1]

TOY_SOURCE = '''
import numpy as np
from qgan_widgets._tf import keras, tf


class Toy(keras.Model):
    """A tiny generator fulfilling the generator contract (MLP, tanh output)."""

    kind = "classical"

    def __init__(self, noise_dim=2, latent_dim=2, hidden=16, seed=0):
        super().__init__()
        self.noise_dim, self.latent_dim, self.hidden, self.seed = noise_dim, latent_dim, hidden, seed
        init = keras.initializers.GlorotUniform
        self.h = keras.layers.Dense(hidden, activation="relu", kernel_initializer=init(seed))
        self.o = keras.layers.Dense(latent_dim, activation="tanh", kernel_initializer=init(seed + 1))
        self.build((None, noise_dim))

    def call(self, x, training=None):
        return self.o(self.h(x))

    def count_parameters(self):
        return sum(int(np.prod(v.shape)) for v in self.trainable_variables)

    def config(self):
        return dict(kind="toy", noise_dim=self.noise_dim, latent_dim=self.latent_dim,
                    hidden=self.hidden, seed=self.seed)


def real_latents(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    return (np.array([0.5, -0.3]) + 0.1 * rng.standard_normal((n, 2))).astype(np.float32)
'''
exec(TOY_SOURCE)  # defines Toy and real_latents here; the kill test runs the same code in a child


class Shift(keras.Model):
    """2-D generator G(xi) = 0.1 xi + b with one trainable shift b (starts at 0)."""

    kind = "classical"
    noise_dim = latent_dim = 2

    def __init__(self):
        super().__init__()
        self.b = self.add_weight(name="b", shape=(2,), initializer="zeros")

    def call(self, x, training=None):
        return 0.1 * x + self.b

    def config(self):
        return {"kind": "shift"}


def fast_config(**kw):
    base = dict(steps=30, batch_size=32, n_critic=2, eval_every=10, checkpoint_every=10,
                lr_generator=2e-3, lr_critic=2e-3, eval_samples=256, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def weights(model):
    return [v.numpy().copy() for v in model.trainable_variables]


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------------------ config
def test_train_config_round_trip_and_validation():
    cfg = TrainConfig(steps=10, lr_generator=0.01, seed=5)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert TrainConfig(steps=10.0).steps == 10
    with pytest.raises(ValueError, match="unknown TrainConfig key.*stepz"):
        TrainConfig.from_dict({"stepz": 3})
    for bad in ({"batch_size": 0}, {"n_critic": 1.5}, {"lr_critic": -1}, {"lr_generator": 0},
                {"beta_2": 1.0}, {"gp_weight": float("nan")}, {"steps": "ten"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(**bad)


def test_trainer_rejects_mismatched_inputs():
    g = Toy()
    with pytest.raises(ValueError, match="latent_dim"):
        WGANGPTrainer(g, Critic(3, 8), real_latents(), fast_config())
    with pytest.raises(ValueError, match=r"real_latents must have shape \(N, 2\)"):
        WGANGPTrainer(g, Critic(2, 8), np.zeros((10, 3)), fast_config())
    from qgan_widgets.models import QuantumGenerator

    with pytest.raises(ValueError, match="tfq|statevector"):  # qsim has no gradients
        WGANGPTrainer(QuantumGenerator(2, 1, backend="qsim"), Critic(2, 8), real_latents(), fast_config())
    bad = real_latents()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        WGANGPTrainer(g, Critic(2, 8), bad, fast_config())


# ------------------------------------------------------------------------------ the loss
def test_gradient_penalty_on_linear_critics():
    rng = np.random.default_rng(0)
    real = tf.constant(rng.standard_normal((64, 2)), tf.float32)
    fake = tf.constant(rng.standard_normal((64, 2)), tf.float32)
    eps = tf.constant(rng.uniform(size=(64, 1)), tf.float32)
    for kernel, expected in (([[2.0], [0.0]], 1.0), ([[0.6], [0.8]], 0.0), ([[3.0], [4.0]], 16.0)):
        critic = keras.Sequential([keras.layers.Dense(1, use_bias=False, input_shape=(2,))])
        critic.layers[0].kernel.assign(kernel)
        assert float(gradient_penalty(critic, real, fake, eps)) == pytest.approx(expected, abs=1e-5)


def test_critic_estimates_the_wasserstein_distance_and_the_generator_closes_the_gap():
    """fake = 0.1 xi + b, real = 0.1 xi + (0.3, 0.4): W1 = |b - (0.3, 0.4)| = 0.5 at the start.
    With the generator frozen the critic's estimate approaches 0.5; then the generator moves b to
    the target and the estimate falls to ~0. (In 1-D a WGAN-GP critic can stick in a local minimum
    with the wrong slope sign, because the penalty forbids passing through slope 0; in 2-D its
    gradient can turn, so the toy is 2-D.)"""
    rng = np.random.default_rng(1)
    target = np.array([0.3, 0.4])
    real = (0.1 * rng.standard_normal((4000, 2)) + target).astype(np.float32)
    frozen = WGANGPTrainer(Shift(), Critic(2, 32, seed=0), real,
                           fast_config(steps=120, n_critic=5, batch_size=256, lr_generator=1e-12,
                                       lr_critic=5e-3, eval_every=60))
    frozen.train()
    assert np.abs(frozen.generator.b.numpy()).max() < 1e-6
    w_end = np.mean([r["w_estimate"] for r in frozen.history[-20:]])
    assert 0.45 < w_end < 0.55, w_end  # W1 = 0.5
    assert all(math.isfinite(r[k]) for r in frozen.history for k in STEP_KEYS)
    assert np.mean([r["gp"] for r in frozen.history[-20:]]) < 0.01  # the critic is ~1-Lipschitz

    learner = WGANGPTrainer(Shift(), Critic(2, 32, seed=0), real,
                            fast_config(steps=300, n_critic=5, batch_size=256, lr_generator=3e-3,
                                        lr_critic=5e-3, eval_every=50))
    learner.train()
    assert np.linalg.norm(learner.generator.b.numpy() - target) < 0.1
    w_start = np.mean([r["w_estimate"] for r in learner.history[20:40]])
    w_late = np.mean([r["w_estimate"] for r in learner.history[-30:]])
    assert w_start > 0.3 and abs(w_late) < 0.1
    assert learner.evals[-1]["fd_latent"] < 0.1 * learner.evals[0]["fd_latent"]


def test_two_d_gaussian_target_is_learned_and_runs_are_deterministic():
    cfg = fast_config(steps=300, n_critic=5, batch_size=64, eval_every=50)
    a = WGANGPTrainer(Toy(seed=0), Critic(2, 32, seed=1), real_latents(), cfg)
    noise = np.random.default_rng(5).standard_normal((4000, 2)).astype(np.float32)
    target = np.array([0.5, -0.3])
    start = np.linalg.norm(a.generate(noise).mean(axis=0) - target)
    res = a.train()
    assert res.status == "completed" and res.steps == 300 and len(res.history) == 300
    assert [e["step"] for e in res.evals] == [50, 100, 150, 200, 250, 300]
    assert res.evals[-1]["fd_latent"] < 0.25 * res.evals[0]["fd_latent"]
    end = np.linalg.norm(a.generate(noise).mean(axis=0) - target)
    assert end < 0.35 * start, (start, end)  # the samples moved toward the target
    b = WGANGPTrainer(Toy(seed=0), Critic(2, 32, seed=1), real_latents(), fast_config(steps=40))
    c = WGANGPTrainer(Toy(seed=0), Critic(2, 32, seed=1), real_latents(), fast_config(steps=40))
    b.train(), c.train()
    assert b.history == c.history and b.evals == c.evals
    assert_same_weights(weights(b.generator), weights(c.generator))
    d = WGANGPTrainer(Toy(seed=0), Critic(2, 32, seed=1), real_latents(), fast_config(steps=40, seed=4))
    d.train()
    assert d.history != b.history  # the seed drives the batches and the noise


def test_step_function_is_traced_once():
    trainer = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), fast_config(steps=12))
    trainer.train()
    assert trainer._train_step.experimental_get_tracing_count() == 1


# ------------------------------------------------------------------------------ run directory
class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, trainer):
        self.calls.append(("begin", trainer.step))

    def on_step(self, step, logs):
        assert set(logs) == set(STEP_KEYS)
        self.calls.append(("step", step))

    def on_eval(self, step, scores, samples):
        self.calls.append(("eval", step, samples is not None, scores.get("fd")))

    def on_train_end(self, trainer, result):
        self.calls.append(("end", result.status, result.steps))


def fake_evaluator(generator, step):
    z = np.asarray(generator(tf.constant(np.ones((4, generator.noise_dim)), tf.float32)))
    images = np.random.default_rng(step).integers(0, 256, (6, 28, 28, 4), dtype=np.uint8)
    return {"fd": float(step) / 10, "kid": {"value": 0.5, "name": "KID"}, "note": "text",
            "z0": float(z[0, 0])}, images


def test_run_directory_contents_and_callbacks(tmp_path):
    rec = Recorder()
    out = tmp_path / "run"
    trainer = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), fast_config(steps=25),
                            evaluator=fake_evaluator, out_dir=out, callbacks=[rec], progress=True)
    result = trainer.train()
    assert result.status == "completed" and result.final_fd == pytest.approx(2.5)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints", "config.json", "evals.csv", "metrics.csv",
        "samples_00010.png", "samples_00020.png", "samples_00025.png"]
    config = json.loads((out / "config.json").read_text())
    assert config["train"] == trainer.config.to_dict() and config["seed"] == 3
    assert config["generator"]["kind"] == "toy" and config["critic"]["width"] == 8
    assert config["generator_params"] == trainer.generator.count_parameters()
    assert config["critic_params"] == trainer.critic.count_parameters()
    assert config["real_latents"]["n"] == 2000
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(STEP_KEYS) and len(lines) == 26
    assert [float(x) for x in lines[-1].split(",")[1:]] == [trainer.history[-1][k] for k in STEP_KEYS[1:]]
    evals = (out / "evals.csv").read_text().splitlines()
    assert evals[0] == "step,fd_latent,fd,kid,z0" and len(evals) == 4
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step-000020", "step-000025"]
    assert rec.calls[0] == ("begin", 0) and rec.calls[-1] == ("end", "completed", 25)
    assert [c[1] for c in rec.calls if c[0] == "step"] == list(range(1, 26))
    assert [c[1:] for c in rec.calls if c[0] == "eval"] == [(10, True, 1.0), (20, True, 2.0), (25, True, 2.5)]


# ------------------------------------------------------------------------------ resume
class Crash(Callback):
    """Simulates a crash after a given step (the process state is thrown away afterwards)."""

    def __init__(self, at):
        self.at = at

    def on_step(self, step, logs):
        if step == self.at:
            raise KeyboardInterrupt("simulated kill")


def test_killed_and_resumed_run_equals_an_uninterrupted_run(tmp_path):
    cfg = fast_config(steps=40, eval_every=5, checkpoint_every=10)
    full = WGANGPTrainer(Toy(seed=0), Critic(2, 16, seed=1), real_latents(), cfg,
                         evaluator=fake_evaluator, out_dir=tmp_path / "full")
    full.train()

    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        WGANGPTrainer(Toy(seed=0), Critic(2, 16, seed=1), real_latents(), cfg, evaluator=fake_evaluator,
                      out_dir=out, callbacks=[Crash(27)]).train()
    assert latest_checkpoint(out).name == "step-000020"
    # Fresh models with other initial weights: everything must come from the checkpoint.
    resumed = WGANGPTrainer(Toy(seed=9), Critic(2, 16, seed=1), real_latents(), cfg,
                            evaluator=fake_evaluator, out_dir=out)
    result = resumed.train()
    assert result.steps == 40
    assert_same_weights(weights(full.generator), weights(resumed.generator))
    assert_same_weights(weights(full.critic), weights(resumed.critic))
    assert resumed.history == full.history and resumed.evals == full.evals
    for name in ("metrics.csv", "evals.csv"):
        assert (out / name).read_text() == (tmp_path / "full" / name).read_text()
    # A finished run "resumes" to itself without training.
    again = WGANGPTrainer.resume(out, Toy(seed=5), Critic(2, 16, seed=1), real_latents(),
                                 evaluator=fake_evaluator)
    assert again.step == 40 and again.train().steps == 40
    assert_same_weights(weights(again.generator), weights(full.generator))
    # ... and can be extended.
    longer = WGANGPTrainer.resume(out, Toy(seed=5), Critic(2, 16, seed=1), real_latents(), steps=45)
    assert longer.train().steps == 45 and len(longer.history) == 45


def test_resume_with_another_configuration_is_refused(tmp_path):
    cfg = fast_config(steps=10)
    WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path).train()
    with pytest.raises(ValueError, match=r"different configuration \(train.lr_critic"):
        WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), fast_config(steps=10, lr_critic=1e-4),
                      out_dir=tmp_path).train()
    with pytest.raises(ValueError, match="critic.width"):
        WGANGPTrainer(Toy(), Critic(2, 16, seed=0), real_latents(), cfg, out_dir=tmp_path).train()
    # resume=False starts over in the same directory.
    fresh = WGANGPTrainer(Toy(), Critic(2, 16, seed=0), real_latents(), fast_config(steps=5, checkpoint_every=0),
                          out_dir=tmp_path, resume=False)
    assert fresh.train().steps == 5
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-000005"]
    with pytest.raises(FileNotFoundError, match="config.json"):
        WGANGPTrainer.resume(tmp_path / "nothing", Toy(), Critic(2, 8), real_latents())


def test_sigkilled_process_resumes_to_the_same_result(tmp_path):
    """A real kill -9 of a training process mid-run, then resume in this process."""
    cfg = fast_config(steps=60, eval_every=5, checkpoint_every=10)
    out = tmp_path / "killed"
    script = tmp_path / "child.py"
    script.write_text(TOY_SOURCE + textwrap.dedent(f"""
        import sys, time
        from qgan_widgets.models import Critic, critic_count_parameters
        from qgan_widgets.training import Callback, TrainConfig, WGANGPTrainer

        class Slow(Callback):
            def on_step(self, step, logs):
                if step >= 20:
                    print(step, flush=True)
                    time.sleep(0.05)

        cfg = TrainConfig.from_dict({json.dumps(cfg.to_dict())})
        WGANGPTrainer(Toy(seed=0), Critic(2, 16, seed=1), real_latents(), cfg,
                      out_dir=sys.argv[1], callbacks=[Slow()]).train()
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        for line in child.stdout:
            if int(line) >= 33:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert latest_checkpoint(out).name == "step-000030"
    assert len((out / "metrics.csv").read_text().splitlines()) > 31  # rows past the checkpoint
    resumed = WGANGPTrainer(Toy(seed=9), Critic(2, 16, seed=4), real_latents(), cfg, out_dir=out)
    resumed.train()
    full = WGANGPTrainer(Toy(seed=0), Critic(2, 16, seed=1), real_latents(), cfg, out_dir=tmp_path / "full")
    full.train()
    assert_same_weights(weights(full.generator), weights(resumed.generator))
    assert_same_weights(weights(full.critic), weights(resumed.critic))
    assert resumed.history == full.history and resumed.evals == full.evals


# ------------------------------------------------------------------------------ divergence / stop
class PoisonCritic(Callback):
    def __init__(self, trainer, at):
        self.trainer, self.at = trainer, at

    def on_step(self, step, logs):
        if step == self.at:
            v = self.trainer.critic.trainable_variables[0]
            v.assign(tf.fill(v.shape, np.nan))


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    rec = Recorder()
    trainer = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), fast_config(steps=30),
                            out_dir=tmp_path, callbacks=[rec])
    trainer.callbacks.insert(0, PoisonCritic(trainer, 12))
    with pytest.raises(TrainingDiverged, match="NaN or infinite at step 13") as info:
        trainer.train()
    err = info.value
    assert err.step == 13 and err.checkpoint.endswith("step-000010")
    assert "step-000010" in str(err) and "learning rate" in str(err)
    assert err.result.status == "diverged" and rec.calls[-1] == ("end", "diverged", 13)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-000010"]
    assert not np.all(np.isfinite(trainer.critic.trainable_variables[0].numpy()))
    assert trainer.restore() == 10
    assert all(np.all(np.isfinite(w)) for w in weights(trainer.critic) + weights(trainer.generator))
    assert len(trainer.history) == 10


def test_exploding_losses_stop_after_the_patience(tmp_path):
    cfg = fast_config(steps=30, max_abs_loss=1e-3, divergence_patience=4)
    with pytest.raises(TrainingDiverged, match="exceeded their limits.*for 4 consecutive steps, up to step 4"):
        WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path).train()

    class Explode(Callback):  # a sound run whose learning rates jump after step 10
        def __init__(self, trainer):
            self.trainer = trainer

        def on_step(self, step, logs):
            if step == 10:
                self.trainer._d_opt.learning_rate.assign(100.0)
                self.trainer._g_opt.learning_rate.assign(100.0)

    cfg = fast_config(steps=40, max_abs_loss=1e4, checkpoint_every=1, divergence_patience=3)
    trainer = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path / "huge")
    trainer.callbacks.append(Explode(trainer))
    with pytest.raises(TrainingDiverged, match="3 consecutive steps, up to step 1[1-4]") as info:
        trainer.train()
    ckpt = Path(info.value.checkpoint)
    assert ckpt == latest_checkpoint(tmp_path / "huge") and ckpt.name == "step-000010"
    assert trainer.restore() == 10 and all(np.all(np.isfinite(w)) for w in weights(trainer.critic))


def test_stop_event_stops_cleanly_and_training_continues(tmp_path):
    event = threading.Event()

    class StopAt(Callback):
        def on_step(self, step, logs):
            if step == 7:
                event.set()

    cfg = fast_config(steps=20, checkpoint_every=0)
    trainer = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path / "a",
                            callbacks=[StopAt()])
    result = trainer.train(stop_event=event)
    assert result.status == "stopped" and result.steps == 7 and "step 7" in result.message
    assert latest_checkpoint(tmp_path / "a").name == "step-000007"
    event.clear()
    trainer.callbacks = []
    assert trainer.train(stop_event=event).status == "completed"
    reference = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg)
    reference.train()
    assert trainer.history == reference.history
    assert_same_weights(weights(trainer.generator), weights(reference.generator))


def test_stop_event_from_another_thread(tmp_path):
    event = threading.Event()
    trainer = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), fast_config(steps=100000),
                            out_dir=tmp_path)
    worker = threading.Thread(target=lambda: setattr(trainer, "result", trainer.train(stop_event=event)))
    worker.start()
    deadline = time.monotonic() + 60  # stop once it is training (a slow machine traces longer), not after a fixed time
    while trainer.step < 2 and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    event.set()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert trainer.result.status == "stopped" and 0 < trainer.result.steps < 100000
    assert latest_checkpoint(tmp_path).name == f"step-{trainer.result.steps:06d}"


# ------------------------------------------------------------------------------ run_training
class TinyWorkspace:
    """Duck-typed stand-in for pipeline.Workspace: real latents, an evaluator and a floor."""

    def __init__(self):
        self.real_latents = real_latents()
        self.floor = {"value": 0.01, "name": "FD floor"}
        self.calls = []

    def evaluator(self, **options):
        self.calls.append(options)

        def evaluate(generator, step):
            z = np.asarray(generator(tf.constant(np.random.default_rng(0).standard_normal(
                (500, generator.noise_dim)), tf.float32)))
            from qgan_widgets.scores import metrics

            return {"fd": metrics.fd_from_samples(z, self.real_latents)}, None

        return evaluate


def test_run_training_builds_trains_and_summarises(tmp_path):
    ws = TinyWorkspace()
    summary = run_training({"kind": "classical", "noise_dim": 2, "latent_dim": 2, "hidden": [16]},
                           {"width": 16}, {**fast_config(steps=60, n_critic=3).to_dict()}, workspace=ws,
                           out_dir=tmp_path / "run", evaluator_options={"n_grid": 0})
    assert ws.calls == [{"n_grid": 0}]
    assert summary["status"] == "completed" and summary["steps"] == 60
    assert summary["generator_kind"] == "classical" and summary["generator_params"] == 2 * 16 + 16 + 16 * 2 + 2
    assert summary["critic_width"] == 16 and summary["critic_params"] == critic_count_parameters(2, 16)
    assert summary["final_fd"] == pytest.approx(json.loads(json.dumps(summary))["final_fd"])
    assert math.isfinite(summary["final_fd"]) and math.isfinite(summary["final_fd_latent"])
    assert summary["fd_reconstruction_floor"] == 0.01 and summary["seed"] == 3
    assert isinstance(summary["stable"], bool) and isinstance(summary["stability_reasons"], list)
    assert summary["generator_config"]["seed"] == 3  # defaults to the train seed
    assert (tmp_path / "run" / "config.json").is_file() and summary["wall_time_s"] > 0
    json.dumps(summary)
    # Too few evaluations to judge: not stable, and the reason says so.
    assert not summary["stable"] and "evaluations" in summary["stability_reasons"][0]

    diverged = run_training({"kind": "classical", "noise_dim": 2, "latent_dim": 2, "hidden": [16]},
                            {"width": 16}, fast_config(steps=20, max_abs_loss=1e-6, divergence_patience=1),
                            workspace=ws)
    assert diverged["status"] == "diverged" and not diverged["stable"]
    assert "diverged" in diverged["stability_reasons"][0]
    with pytest.raises(ValueError, match="latent_dim"):
        run_training({"kind": "classical", "noise_dim": 2, "latent_dim": 2}, {"width": 4, "latent_dim": 3},
                     fast_config(), workspace=ws)


@pytest.mark.slow
def test_quantum_generator_resumes_exactly(tmp_path):
    """The demo's path: a style-circuit generator on the fast state-vector backend."""
    from qgan_widgets.models import QuantumGenerator

    z = np.random.default_rng(0).uniform(-0.5, 0.5, (500, 2)).astype(np.float32)
    cfg = fast_config(steps=24, eval_every=6, checkpoint_every=8, lr_generator=1e-2, jit_compile=True)

    def gen(seed=0):
        return QuantumGenerator(2, 1, backend="statevector", seed=seed)

    full = WGANGPTrainer(gen(), Critic(2, 8, seed=1), z, cfg)
    assert full.jit_compile  # the statevector generator and the critic compile whole with XLA
    full.train()
    with pytest.raises(KeyboardInterrupt):
        WGANGPTrainer(gen(), Critic(2, 8, seed=1), z, cfg, out_dir=tmp_path, callbacks=[Crash(13)]).train()
    resumed = WGANGPTrainer(gen(seed=5), Critic(2, 8, seed=2), z, cfg, out_dir=tmp_path)
    resumed.train()
    assert_same_weights(weights(full.generator), weights(resumed.generator))
    assert resumed.history == full.history and resumed.evals == full.evals


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path):
    cfg = fast_config(steps=20, checkpoint_every=10)
    WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path).train()
    data = next((tmp_path / "checkpoints" / "step-000020").glob("ckpt.data-*"))
    data.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="step-000020 cannot be read"):
        trainer = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path)
        trainer._prepare_out_dir()
    assert trainer.step == 10 and len(trainer.history) == 10
    reference = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg)
    reference.train()
    trainer.train()
    assert trainer.history == reference.history
    assert_same_weights(weights(trainer.generator), weights(reference.generator))


def test_saving_sample_grids_leaves_a_notebooks_matplotlib_alone(tmp_path):
    """Grids are saved without pyplot: a notebook's inline backend and open figures stay as they were."""
    import matplotlib
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    matplotlib.use("module://matplotlib_inline.backend_inline")
    try:
        open_figures = plt.get_fignums()
        rundir._save_grid(np.zeros((16, 28, 28, 4), np.uint8), tmp_path / "grid.png", "step 1")
        assert (tmp_path / "grid.png").stat().st_size > 0
        assert matplotlib.get_backend() == "module://matplotlib_inline.backend_inline"
        assert plt.get_fignums() == open_figures
    finally:
        matplotlib.use(before)


def test_jit_compile_is_chosen_per_generator_and_refused_where_xla_cannot_go():
    from qgan_widgets.models import ClassicalGenerator, QuantumGenerator

    z = real_latents(200)
    critic = Critic(2, 8, seed=1)
    cases = [(QuantumGenerator(2, 1, backend="statevector", seed=0), True),
             (ClassicalGenerator(2, 2, (8,), seed=0), True),
             (QuantumGenerator(2, 1, backend="tfq", seed=0), False),
             (Toy(seed=0), False)]  # a model that does not say it is xla_compatible
    for gen, able in cases:
        assert WGANGPTrainer(gen, critic, z, fast_config()).jit_compile is False  # "auto": measured no gain
        assert WGANGPTrainer(gen, critic, z, fast_config(jit_compile=False)).jit_compile is False
        if able:
            assert WGANGPTrainer(gen, critic, z, fast_config(jit_compile=True)).jit_compile is True
    with pytest.raises(ValueError, match=r"jit_compile=True needs .* \(tfq\)"):
        WGANGPTrainer(cases[2][0], critic, z, fast_config(jit_compile=True))
    with pytest.raises(ValueError, match=r"jit_compile=True needs .* \(Toy\)"):
        WGANGPTrainer(cases[3][0], critic, z, fast_config(jit_compile=True))
    with pytest.raises(ValueError, match="jit_compile must be 'auto', True or False"):
        TrainConfig(jit_compile="yes")
    # Both settings train the same model (the random draws differ, the losses fall alike).
    losses = {}
    for jit in (True, False):
        trainer = WGANGPTrainer(ClassicalGenerator(2, 2, (8,), seed=0), Critic(2, 8, seed=1), z,
                                fast_config(steps=30, jit_compile=jit))
        trainer.train()
        losses[jit] = [r["d_loss"] for r in trainer.history]
        assert trainer.jit_compile is jit and all(math.isfinite(v) for v in losses[jit])
    assert abs(np.mean(losses[True][-10:]) - np.mean(losses[False][-10:])) < 0.5 * abs(np.mean(losses[False][:3]))


def test_training_face_hands_on_the_contract_names_from_their_homes():
    # notebooks, the dashboard and the demo use qw.training.X for these
    import qgan_widgets as qw

    for name in ("TrainConfig", "Callback", "TrainResult", "TrainingDiverged", "STEP_KEYS"):
        assert getattr(qw.training, name) is getattr(trainconfig, name), name
    assert qw.training.latest_checkpoint is rundir.latest_checkpoint
    assert qw.training.WGANGPTrainer is training.WGANGPTrainer
    assert issubclass(WGANGPTrainer, rundir.RunDirectory)


def _flip_bytes(path: Path, n: int = 64) -> None:
    raw = bytearray(path.read_bytes())
    for i in range(min(n, len(raw))):
        raw[len(raw) // 2 - n // 2 + i] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_a_retrained_step_replaces_its_damaged_checkpoint(tmp_path):
    """Flip 64 bytes in the newest checkpoint: resuming retrains from the one before, and the retrained
    step replaces the damaged files, so the result names a readable checkpoint and later resumes are quiet."""
    import warnings

    cfg = fast_config(steps=80, checkpoint_every=10, eval_every=40)
    WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path).train()
    _flip_bytes(next((tmp_path / "checkpoints" / "step-000080").glob("ckpt.data-*")))
    with pytest.warns(UserWarning, match="step-000080 cannot be read"):
        result = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path).train()
    assert Path(result.checkpoint).name == "step-000080"
    reference = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg)
    reference.train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "cannot be read" warning any more
        again = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path)
        again._prepare_out_dir()
    assert again.step == 80 and again.history == reference.history
    assert_same_weights(weights(again.generator), weights(reference.generator))
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_unreadable_run_directories_are_refused_by_name(tmp_path):
    cfg = fast_config(steps=20, checkpoint_every=10)
    WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path).train()
    for ckpt in (tmp_path / "checkpoints").glob("step-*"):  # every checkpoint damaged
        for f in ckpt.glob("ckpt.*"):
            f.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="cannot be read"):
        with pytest.raises(rundir.RunDirectoryError, match=r"no checkpoint in .*checkpoints can be read.*resume=False"):
            WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path).train()
    fresh = WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path, resume=False)
    assert fresh.train().steps == 20  # the flag the message names works
    (tmp_path / "config.json").write_text("{ torn")
    with pytest.raises(rundir.RunDirectoryError, match=r"config.json cannot be read .*JSONDecodeError.*delete the directory"):
        WGANGPTrainer(Toy(), Critic(2, 8, seed=0), real_latents(), cfg, out_dir=tmp_path).train()
    with pytest.raises(rundir.RunDirectoryError, match=str(tmp_path)):
        WGANGPTrainer.resume(tmp_path, real_latents=real_latents())


def test_window_scores_are_medians_over_the_judged_evaluations():
    """A sweep trial's scores: medians over the last evaluations that have each score, and the FD's
    excess over the reconstruction floor (issue 15), not one noisy final evaluation."""
    from qgan_widgets.training.trainer import window_scores

    evals = [{"step": s, "fd_latent": 10.0 / s} for s in (1, 2, 3)]  # early: latent FD only
    evals += [{"step": s, "fd_latent": 0.1 * s, "fd": f, "kid": f / 100} for s, f in ((4, 6.0), (5, 9.0), (6, 5.0))]
    scores = window_scores(evals, window=3, floor=4.0)
    assert scores == {"fd_window": 6.0, "fd_excess": 2.0, "fd_latent_window": pytest.approx(0.5),
                      "kid_window": pytest.approx(0.06)}
    none = window_scores([{"step": 1, "fd_latent": 1.0}], window=5, floor=None)
    assert math.isnan(none["fd_window"]) and math.isnan(none["fd_excess"]) and math.isnan(none["kid_window"])
