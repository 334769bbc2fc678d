"""The Explorer's runner: trains the state's configuration through the package's training loop.

A run is a :class:`~qgan_widgets.training.trainer.WGANGPTrainer` with a run directory (records, sample
grids, checkpoints) under ``runs_dir``. :meth:`Runner.start` trains in a worker thread, so the
kernel stays responsive and other cells run meanwhile; :meth:`Runner.run_sync` trains in the
calling thread (scripts, tests). Progress reaches the :class:`~qgan_widgets.widgets.state.ExplorerState`
through the trainer's callbacks, throttled to a few updates per second. Pause blocks the loop
between steps (``threading.Event``); Stop ends it after the current step with a checkpoint, and the
run's records stay on disk. Train again with the same configuration continues the run; with another
configuration it starts a new one.

The data, VAE and feature extractor (a :class:`~qgan_widgets.pipeline.Workspace`) are prepared
lazily, once per latent dimension and process, and reused.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

from qgan_widgets.training.config import Callback, TrainConfig, TrainingDiverged
from qgan_widgets.widgets.compare import run_record
from qgan_widgets.widgets.state import (
    ExplorerError, ExplorerState, check_value, critic_config, generator_config, latent_dim_of, run_key,
)

__all__ = ["Runner", "workspace_for", "lower_priority", "CHECKPOINT_EVERY", "TRAIN_NICE_ENV"]

CHECKPOINT_EVERY = 100
"""Steps between checkpoints (Stop and the end of a run write one as well)."""

_WORKSPACES: dict[str, object] = {}
_WORKSPACES_LOCK = threading.Lock()


def prepare_time(fast: bool | None = None) -> str:
    """How long a first workspace of this mode takes on 2 cores (measured: the fast sizes' tuned VAE and
    classifiers ~50-70 s, the full sizes' 4-5 min; ``fast=None`` follows ``QGAN_FAST``)."""
    from qgan_widgets import FAST

    return "about a minute" if (FAST if fast is None else fast) else "4-5 minutes"


TRAIN_NICE_ENV = "QGAN_TRAIN_NICE"
"""Environment variable: the nice value a kernel's threads take when it first trains (the classroom
server sets it), so that on a shared machine the server and the kernels answering pages run before
other students' training."""


def lower_priority(env: dict | None = None) -> int | None:
    """Give every thread of this process the nice value ``$QGAN_TRAIN_NICE`` (Linux: nice is per thread;
    threads started later inherit it from their starter). Returns the value set, or None when the
    variable is unset or the system refuses. Once raised, a nice value cannot be lowered again without
    privileges, so a kernel that has trained stays at it: everything it does afterwards yields to the
    server and to kernels that are opening pages, as its training did."""
    value = (os.environ if env is None else env).get(TRAIN_NICE_ENV, "").strip()
    if not value:
        return None
    nice = int(value) if value.isdecimal() else -1  # digits only: no sign, no point
    if not 0 <= nice <= 19:
        raise ExplorerError(f"${TRAIN_NICE_ENV} must be a whole number from 0 to 19, not {value!r}")
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]  # no /proc: this thread only
    done = False
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            done = True
        except OSError:  # a thread that ended meanwhile, or a system that refuses
            continue
    return nice if done else None


_TRAINING_LOADED = threading.Event()


def load_training() -> None:
    """Import TensorFlow and the training code, once per process (seconds). The dashboard shows its
    controls, counts and circuit without them; Train needs them."""
    if not _TRAINING_LOADED.is_set():
        import importlib

        for name in ("qgan_widgets.pipeline", "qgan_widgets.training.trainer"):  # workspace; TensorFlow
            importlib.import_module(name)

        _TRAINING_LOADED.set()


def preload_in_background() -> threading.Thread | None:
    """:func:`load_training` in a daemon thread (None when already loaded). A failure is not reported
    here: Train imports again and shows the error."""
    if _TRAINING_LOADED.is_set():
        return None

    def quietly():
        try:
            load_training()
        except Exception:  # noqa: BLE001  (Train re-raises it where the user sees it)
            pass

    thread = threading.Thread(target=quietly, name="qgan-explorer-preload", daemon=True)
    thread.start()
    return thread


def workspace_for(latent_dim: int, options: dict | None = None, notify: Callable[[str], None] | None = None):
    """A prepared :class:`~qgan_widgets.pipeline.Workspace` for ``latent_dim``, made once per process
    (and per ``options``, cache directory and data path), then reused. ``notify(message)`` is called
    before a workspace has to be prepared (it trains or loads the VAE)."""
    options = {"latent_dim": int(latent_dim), "verbose": False, **(options or {})}
    key = json.dumps({"options": options, "cache": os.environ.get("QGAN_CACHE_DIR"),
                      "data": os.environ.get("QGAN_SAT4_PATH")}, sort_keys=True, default=str)
    with _WORKSPACES_LOCK:
        ws = _WORKSPACES.get(key)
        if ws is None:
            if notify is not None:
                notify(f"preparing the VAE for latent dimension {latent_dim}: data, VAE and feature extractor "
                       f"(the first time for this size takes {prepare_time(options.get('fast'))} on 2 cores; "
                       "then it is cached)...")
            from qgan_widgets.pipeline import Workspace

            ws = Workspace.prepare(**options)
            _WORKSPACES[key] = ws
    return ws


class _Hooks(Callback):
    def __init__(self, runner: "Runner"):
        self.runner = runner

    def on_step(self, step, logs):
        self.runner._on_step(step)

    def on_eval(self, step, scores, samples):
        self.runner._on_eval(step, samples)


class Runner:
    """Runs training for an :class:`ExplorerState` (see the module docstring).

    ``workspace``: a prepared workspace to use for its latent dimension; others are prepared with
    ``workspace_options`` (keywords of ``Workspace.prepare``). ``report_error(text)`` receives
    tracebacks and divergence messages (the Explorer's Output pane). ``publish_interval``: least
    seconds between two updates of the curves in the state (evaluations always publish).
    """

    def __init__(self, state: ExplorerState, runs_dir, workspace=None, workspace_options: dict | None = None,
                 report_error: Callable[[str], None] | None = None, publish_interval: float = 0.5):
        self.state = state
        self.runs_dir = Path(runs_dir)
        self.workspace_options = dict(workspace_options or {})
        self.workspaces: dict[int, object] = {}
        if workspace is not None:
            self.workspaces[int(workspace.latent_dim)] = workspace
        self.report_error = report_error or (lambda text: None)
        self.publish_interval = float(publish_interval)
        self.stop_event = threading.Event()
        self.resume_event = threading.Event()
        self.resume_event.set()
        self.thread: threading.Thread | None = None
        self.trainer = None  # a qgan_widgets.training.WGANGPTrainer while a run exists
        self.workspace = None
        self.result = None
        self.error: BaseException | None = None
        self._key = None
        self._sync = False
        self._start_step = 0
        self._status_lock = threading.RLock()
        self._last_publish = 0.0
        self._rate_mark = (0.0, 0)

    # -- status ----------------------------------------------------------------------------------
    @property
    def run_key(self):
        """What the current run is (``state.run_key(settings)``), or None before the first run."""
        return self._key

    @property
    def busy(self) -> bool:
        """True while a run is in progress (in the worker thread or synchronously)."""
        return self._sync or (self.thread is not None and self.thread.is_alive())

    def _set_status(self, status: str, message: str | None = None, final: bool = False) -> None:
        with self._status_lock:
            if not final and self.stop_event.is_set() and status in ("preparing", "training", "paused"):
                return  # Stop was pressed: only the final status may follow "stopping"
            st = self.state
            if message is not None:
                st.message = message
            st.status = status

    def _notify(self, message: str) -> None:
        self._set_status("preparing", message)

    def _set_phase(self, phase: str) -> None:
        """Name the long wait now under way (shown with a progress bar and its elapsed time), or end it."""
        st = self.state
        if phase != st.phase:
            with st.hold_trait_notifications():
                st.phase_since = time.time()
                st.phase = phase

    # -- controls --------------------------------------------------------------------------------
    def start(self, steps: int | None = None) -> None:
        """Train ``steps`` (default: the state's) more steps in a worker thread; returns at once."""
        config, steps = self._begin(steps)
        self.thread = threading.Thread(target=self._session, args=(config, steps, False),
                                       name="qgan-explorer-runner", daemon=True)
        self.thread.start()

    def run_sync(self, steps: int | None = None):
        """Train ``steps`` (default: the state's) more steps in this thread; returns the
        :class:`~qgan_widgets.training.config.TrainResult` (status ``"diverged"`` included) and re-raises
        any other error after showing it."""
        config, steps = self._begin(steps)
        self._sync = True
        try:
            return self._session(config, steps, True)
        finally:
            self._sync = False

    def _begin(self, steps):
        if self.busy:
            raise ExplorerError("a run is already in progress: pause it, stop it or wait for it to end")
        config = self.state.config()
        steps = config["steps"] if steps is None else check_value("steps", steps)
        lower_priority()  # a classroom's kernels train behind its server and the kernels opening pages
        self.stop_event.clear()
        self.resume_event.set()
        self.error = None
        self._set_status("preparing", "starting the run...")
        return config, steps

    def pause(self) -> None:
        """Pause after the current step (the worker waits; the kernel stays free)."""
        if self.state.status != "training":
            raise ExplorerError(f"nothing to pause: the run is {self.state.status}")
        self.resume_event.clear()
        self.state.message = "pausing after the current step..."

    def resume(self) -> None:
        if self.state.status not in ("paused", "training"):
            raise ExplorerError(f"nothing to resume: the run is {self.state.status}")
        self.resume_event.set()

    def stop(self, wait: bool = False, timeout: float | None = None) -> bool:
        """Stop after the current step (a checkpoint is written; records stay). With ``wait``, block
        until the run has ended (True) or ``timeout`` seconds passed (False)."""
        if self.busy:
            with self._status_lock:
                self.stop_event.set()
                self.resume_event.set()
                if self.state.status in ("training", "paused", "preparing"):
                    self.state.message = "stopping after the current step..."
                    self.state.status = "stopping"
        return self.wait(timeout) if wait else not self.busy

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker thread has ended; False if ``timeout`` passed first."""
        thread = self.thread
        if thread is not None:
            thread.join(timeout)
        return not (thread is not None and thread.is_alive())

    def set_steps(self, steps: int) -> None:
        """Change the length of the run in progress (``steps`` counted from this Train press)."""
        trainer = self.trainer
        if self.busy and trainer is not None and self.state.status != "preparing":
            trainer.config.steps = max(trainer.step + 1, self._start_step + int(steps))
            self.state.target_steps = trainer.config.steps

    def reset(self) -> None:
        """Forget the current run (it stays on disk): the next Train starts a new one."""
        if self.busy:
            self.stop(wait=True)
        self.trainer, self._key, self.result, self.error = None, None, None, None
        self._clear_curves()
        self._set_status("idle", "reset: Train starts a new run", final=True)

    # -- the session -----------------------------------------------------------------------------
    def _workspace(self, config: dict):
        d = latent_dim_of(config)
        ws = self.workspaces.get(d)
        if ws is None:
            ws = workspace_for(d, self.workspace_options, self._notify)
            self.workspaces[d] = ws
        self.describe_workspace(ws)
        return ws

    def describe_workspace(self, ws) -> None:
        """Show a workspace's data (stand-in or real) and reconstruction floor in the state."""
        st, ds = self.state, ws.dataset
        kind = "STAND-IN data (synthetic, not real SAT-4)" if ds.is_standin else "real SAT-4 data"
        st.data_info = (f"{kind}: {ds.name}, {len(ws.real_latents):,} training tiles encoded by the VAE into "
                        f"{ws.latent_dim}-d latents; FD reconstruction floor {ws.floor.value:.3g}")
        st.floor = float(ws.floor.value)

    def _clear_curves(self) -> None:
        st = self.state
        with st.hold_trait_notifications():
            st.history, st.evals, st.step, st.target_steps, st.speed = [], [], 0, 0, math.nan
            st.sample_step, st.run_dir = -1, ""
        st.samples = None
        st.stale = False
        st.revision += 1

    def _new_run(self, config: dict, ws) -> None:
        from qgan_widgets.models.critic import Critic
        from qgan_widgets.models.generators import build_generator
        from qgan_widgets.training.trainer import WGANGPTrainer

        generator = build_generator(**generator_config(config))
        if hasattr(generator, "check_trainable"):
            generator.check_trainable()
        critic = Critic(**critic_config(config))
        lr = config["learning_rate"]
        train_config = TrainConfig(steps=0, batch_size=config["batch_size"], n_critic=config["n_critic"],
                                   lr_generator=lr, lr_critic=lr, eval_every=config["eval_every"],
                                   checkpoint_every=CHECKPOINT_EVERY, seed=config["seed"],
                                   jit_compile=False)  # interactive: a short first step matters most
        out_dir = self._new_run_dir(config)
        self.trainer = WGANGPTrainer(generator, critic, ws.real_latents, train_config,
                                     evaluator=ws.evaluator(n_grid=16, seed=config["seed"]), out_dir=out_dir,
                                     callbacks=[_Hooks(self)], resume=False)
        self.workspace, self._key = ws, run_key(config)
        self._clear_curves()
        self.state.run_dir = str(out_dir)

    def _new_run_dir(self, config: dict) -> Path:
        if config["kind"] == "quantum":
            label = f"quantum-q{config['num_qubits']}-l{config['num_layers']}-{config['entangler']}"
        else:
            label = f"classical-d{latent_dim_of(config)}-h{config['hidden_width']}"
        label += f"-c{config['critic_width']}"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        for i in range(1000):
            path = self.runs_dir / f"{stamp}-{label}{'' if i == 0 else f'-{i}'}"
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
        raise ExplorerError(f"could not make a new run directory under {self.runs_dir}")

    def _session(self, config: dict, steps: int, sync: bool):
        st = self.state
        try:
            if self.trainer is None or self._key != run_key(config):
                # a new run: what is shown until its models exist is the previous run's
                st.stale = bool(st.history or st.samples is not None)
            if not _TRAINING_LOADED.is_set():
                self._set_phase("loading TensorFlow")
                load_training()  # waits for a preload under way (Python's import lock)
            if latent_dim_of(config) not in self.workspaces:
                self._set_phase("preparing the data, the VAE and the feature extractor")
            ws = self._workspace(config)
            if self.stop_event.is_set():
                self._set_status("stopped", "stopped before training began", final=True)
                return None
            if self.trainer is None or self._key != run_key(config) or self.workspace is not ws:
                self._set_phase("building the generator and the critic")
                self._set_status("preparing", "building the generator and the critic...")
                self._new_run(config, ws)
            trainer = self.trainer
            if not trainer.history:  # a new model's first step traces the training step (seconds)
                self._set_phase("compiling the first step")
            else:
                self._set_phase("")
            self._start_step = trainer.step
            trainer.config.steps = trainer.step + steps
            st.target_steps = trainer.config.steps
            self._rate_mark = (time.perf_counter(), trainer.step)
            self._last_publish = time.perf_counter()
            more = f" (continuing from step {self._start_step})" if self._start_step else ""
            self._set_status("training", f"training {steps} steps{more}")
            try:
                result = trainer.train(stop_event=self.stop_event)
            except TrainingDiverged as err:
                self._publish()
                self._record("diverged", config)
                self.trainer, self._key, self.result = None, None, err.result
                self.report_error(f"{err}\n")
                self._set_status("diverged", f"{err} Train starts a new run.", final=True)
                return err.result
            self._publish()
            self._record(result.status, config)
            self.result = result
            fd = result.final_scores.get("fd", math.nan)
            score = f"; FD {fd:.4g} (floor {st.floor:.3g})" if math.isfinite(fd) else ""
            if result.status == "stopped":
                message = (f"stopped at step {result.steps}{score}; the run's records and checkpoint are kept in "
                           f"{result.out_dir}; Train continues this run")
            else:
                message = (f"completed step {result.steps} in {result.wall_time_s:.0f} s{score}; Train trains "
                           f"{st.steps} more steps; records in {result.out_dir}")
            self._set_status(result.status, message, final=True)
            return result
        except Exception as err:  # shown in the Output pane, never lost
            self.error = err
            self.report_error(traceback.format_exc())
            self._set_status("error", f"{type(err).__name__}: {err} (details in the messages pane)", final=True)
            if sync:
                raise
            return None
        finally:
            self._set_phase("")
            self.stop_event.clear()
            self.resume_event.set()

    def _record(self, status: str, config: dict) -> None:
        """Keep the run that just ended (or its continuation) in the session's table (``state.runs``)."""
        st, trainer = self.state, self.trainer
        runs = list(st.runs)
        same = [i for i, r in enumerate(runs) if r["run_dir"] == st.run_dir and st.run_dir]
        number = runs[same[0]]["number"] if same else (max((r["number"] for r in runs), default=0) + 1)
        record = run_record(number, config, list(st.evals), st.floor, status, trainer.step if trainer else st.step,
                            st.run_dir, st.samples, st.sample_step)
        if same:
            runs[same[0]] = record
        else:
            runs.append(record)
        st.runs = runs

    # -- callbacks (in the training thread) ------------------------------------------------------
    def _publish(self) -> None:
        trainer, st = self.trainer, self.state
        if trainer is None:
            return
        now = time.perf_counter()
        t_mark, s_mark = self._rate_mark
        if trainer.step > s_mark and now > t_mark:
            st.speed = (trainer.step - s_mark) / (now - t_mark)
        self._last_publish = now
        with st.hold_trait_notifications():
            st.history = list(trainer.history)
            st.evals = [dict(e) for e in trainer.evals]
            st.step = trainer.step
        st.revision += 1

    def _on_step(self, step: int) -> None:
        if self.state.phase:
            self._set_phase("")
        if time.perf_counter() - self._last_publish >= self.publish_interval:
            self._publish()
        if not self.resume_event.is_set() and not self.stop_event.is_set():
            self._publish()
            self._set_status("paused", f"paused after step {step}; press Resume to go on or Stop to end the run")
            while not self.resume_event.wait(0.1):
                if self.stop_event.is_set():
                    break
            self._rate_mark = (time.perf_counter(), step)
            self._set_status("training", f"training (resumed at step {step})")

    def _on_eval(self, step: int, samples) -> None:
        self._publish()
        if samples is not None:
            self.state.sample_step = step
            self.state.samples = samples
