"""The capacity-scaling study: sweeps of generator x critic x seed trials on Ray, then the fits.

Taught in notebook ``06_capacity_scaling``. A sweep (:class:`SweepConfig`, a YAML or JSON file; defined
in :mod:`qgan_widgets.study.sweep`) is a grid of generator configurations
(quantum: qubits x layers x entangler; classical: hidden widths) x critic widths x seeds with one
training configuration. This module runs it: every trial trains through the package's
own loop (:func:`qgan_widgets.training.trainer.run_training`) and is a Ray task (one CPU, one TensorFlow
thread), locally by default or on an existing cluster with ``address=``. Trials have stable ids
(a hash of their configuration); each result is appended to ``results.jsonl`` as it completes and
``trials.csv`` is rewritten atomically, so an interrupted sweep loses nothing and a re-run runs only
the missing or failed trials. :mod:`qgan_widgets.study.analysis` then finds the optimal critic per
generator and fits ``ln C_D* = a + b C_G`` (:func:`analyze`).

The command line (``python -m qgan_widgets sweep``) is :mod:`qgan_widgets.apps.sweep`.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from qgan_widgets.data.cache import left_behind
from qgan_widgets.study.analysis import analyze
from qgan_widgets.training.rundir import atomic_write_text
from qgan_widgets.study.sweep import SweepConfig, SweepConfigError, count_params, generator_label

RESULTS, TRIALS = "results.jsonl", "trials.csv"
LOSS_KEYS = ("d_loss", "g_loss", "w_estimate")
SCORE_KEYS = ("fd_window", "fd_excess", "fd_latent_window", "kid_window", "n_eval", "extractor")
SUMMARY_KEYS = ("final_fd", "final_fd_latent", "fd_reconstruction_floor", "stable", "stability_reasons",
                "rel_spread", "wall_time_s", "steps", "dataset", "message") + LOSS_KEYS + SCORE_KEYS
IGNORED_KEYS = ("status", "out_dir", "generator_config")  # summary keys with a record column of another meaning
COLUMNS = [
    "trial_id", "generator_kind", "generator_label", "generator_params", "critic_width", "critic_depth",
    "critic_params", "lr_critic", "seed", "final_fd", "final_fd_latent", "fd_reconstruction_floor", *SCORE_KEYS,
    "stable", "stability_reasons", "rel_spread", *LOSS_KEYS, "wall_time_s", "steps", "train_status", "status", "error",
    "message", "dataset", "latent_dim", "generator_config", "finished_at",
]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
               "TF_NUM_INTEROP_THREADS")
PASSED_VARS = ("QGAN_CACHE_DIR", "QGAN_SAT4_PATH", "QGAN_FAST", "TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")


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
    from qgan_widgets._allocator import keep_freed_memory
    from qgan_widgets._tf import tf

    keep_freed_memory()  # a worker is a batch job

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
    """Train one trial through :func:`qgan_widgets.training.trainer.run_training`; return its summary dict.

    Adds the data set's name and TensorFlow's thread count (``tf_threads``). Image scores are computed
    only for the evaluations the record uses (:func:`first_judged_step`; ``evaluation.images_from_step``
    in the sweep file overrides it, 0 scores images at every evaluation). A diverged run is a
    result (unstable), not a failure; other errors propagate so that Ray retries the trial.
    """
    return run_trials([spec])[0]


def run_trials(specs: list[Mapping]) -> list[dict]:
    """Train trials that differ only in seed: one alone through :func:`~qgan_widgets.training.run_training`,
    several as one ensemble (:func:`~qgan_widgets.training.run_ensemble`: one program, each member the
    run its seed gives alone); one summary per spec, in order (see :func:`run_trial`)."""
    first = specs[0]
    for spec in specs[1:]:
        if ensemble_key(spec) != ensemble_key(first):
            raise ValueError(f"trials {first['trial_id']} and {spec['trial_id']} differ in more than their seed: "
                             f"they cannot train as one ensemble")
    limit_threads(1)
    from qgan_widgets import training
    from qgan_widgets._tf import tf

    ws = workspace_for(first["workspace"])
    train = {**first["train"], "seed": first["seed"]}
    evaluation = dict(first["evaluation"])
    if "images_from_step" not in evaluation:  # image scores only where the trial is judged
        evaluation["images_from_step"] = first_judged_step(training.TrainConfig.from_dict(train),
                                                           first["stability"].get("window"))
    options = dict(workspace=ws, evaluator_options=evaluation, stability_options=dict(first["stability"]))
    if len(specs) == 1:
        summaries = [training.run_training(dict(first["generator"]), dict(first["critic"]), train, **options)]
    else:
        summaries = training.run_ensemble(dict(first["generator"]), dict(first["critic"]), train,
                                          seeds=[spec["seed"] for spec in specs], **options)
    for summary in summaries:
        summary["dataset"] = getattr(getattr(ws, "dataset", None), "name", None)
        summary["tf_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
    return summaries


def first_judged_step(train, window: int | None = None) -> int:
    """The step of the first of the last ``window`` evaluations of a run (``window`` default: the
    stability judge's): the evaluations whose image FD a trial's record uses (``final_fd``, stability).
    Earlier evaluations need only the cheap latent FD."""
    from qgan_widgets.scores.metrics import DEFAULT_WINDOW

    window = DEFAULT_WINDOW if window is None else int(window)
    steps = list(range(train.eval_every, train.steps + 1, train.eval_every))
    if not steps or steps[-1] != train.steps:
        steps.append(train.steps)
    return steps[-window] if len(steps) >= window else 0


def ensemble_key(spec: Mapping) -> str:
    """What trials of one ensemble share: everything but the seed (and the id)."""
    return json.dumps({k: v for k, v in spec.items() if k not in ("seed", "trial_id")}, sort_keys=True)


def ensembles(specs: list[dict], size: int) -> list[list[dict]]:
    """``specs`` grouped into ensembles of at most ``size`` trials that differ only in seed (in the
    order of the specs; ``size`` 1: one trial per group)."""
    groups: dict[str, list[dict]] = {}
    for spec in specs:
        groups.setdefault(ensemble_key(spec), []).append(spec)
    return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]


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
        "lr_critic": spec["train"].get("lr_critic"),
        "latent_dim": spec["latent_dim"], "generator_config": json.dumps(gen, sort_keys=True),
        "stable": bool(rec["stable"]) if summary is not None else None,
        "stability_reasons": "; ".join(map(str, reasons)) if isinstance(reasons, (list, tuple)) else (reasons or ""),
        "train_status": s.get("status"), "status": "failed" if error else "done", "error": error or "",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    return rec


# --------------------------------------------------------------------------------------------
# The sweep on Ray


def fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class RayStartError(RuntimeError):
    """A local Ray could not be started (or a cluster not reached); the message says what to do."""


RAY_TMP_PREFIX = "qgan-ray-"
LEGACY_RAY_DIR_AGE_S = 24 * 3600
_LOCAL_PORT_VARS = ("DASHBOARD_METRIC_PORT", "AUTOSCALER_METRIC_PORT")  # fixed defaults (44227, 44217)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_stale_ray_dirs(base: str | None = None) -> list[str]:
    """Remove ``qgan-ray-<pid>-*`` temporary directories whose sweep process is gone (a killed driver
    cannot clean up after itself); return the removed paths."""
    import tempfile

    removed = []
    for path in Path(base or tempfile.gettempdir()).glob(RAY_TMP_PREFIX + "*"):
        pid = path.name[len(RAY_TMP_PREFIX):].split("-", 1)[0]  # older versions' names have no pid
        if left_behind(path, int(pid) if pid.isdigit() else None, LEGACY_RAY_DIR_AGE_S):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


@contextlib.contextmanager
def _agent_port_default(port: int):
    """Ray 2.x starts its dashboard agent on a fixed port (52365) that ``ray.init`` does not expose, so a
    second local Ray on the machine fails to start ("node timed out during startup"). Set RayParams'
    default for this call; a Ray without that parameter is left alone."""
    try:
        from ray._private.parameter import RayParams

        fn = RayParams.__init__
        names = fn.__code__.co_varnames[1:fn.__code__.co_argcount]
        defaults = list(fn.__defaults__ or ())
        i = list(names).index("dashboard_agent_listen_port") - (len(names) - len(defaults))
    except (ImportError, AttributeError, ValueError):
        yield
        return
    old = fn.__defaults__
    defaults[i] = port
    fn.__defaults__ = tuple(defaults)
    try:
        yield
    finally:
        fn.__defaults__ = old


def _start_ray(address, num_cpus, env: dict):
    """Ray, and the temporary directory of the local Ray this call started ("" for a cluster, None if
    Ray was already running): dashboard off, warnings only, workers' output not echoed.

    A local Ray listens on loopback only: its node address is 127.0.0.1 (Ray's own "local cluster"
    switch, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), so the GCS, raylet, workers and agents bind
    127.0.0.1, and the ports Ray would otherwise fix (agent, metrics) are picked free, so two local
    sweeps, or a sweep and another Ray, run side by side. Ray's token authentication stays on. A
    cluster (``address``) exposes what that cluster was started with (see the README).
    """
    import logging
    import tempfile

    import ray

    if ray.is_initialized():
        return ray, None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network at run time
    kwargs = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                  runtime_env={"env_vars": env})
    if address:
        try:
            ray.init(address=address, **kwargs)
        except Exception as err:  # noqa: BLE001 (Ray raises ConnectionError, RuntimeError, ...)
            raise RayStartError(f"could not connect to the Ray cluster at {address!r} ({_first_line(err)}): check "
                                f"the address (`ray status` on the head node prints it) and that this machine "
                                f"can reach it") from None
        return ray, ""
    clean_stale_ray_dirs()
    tmp = tempfile.mkdtemp(prefix=f"{RAY_TMP_PREFIX}{os.getpid()}-")
    # Set for the Ray processes ray.init starts (they keep the environment they start with; the raylet
    # passes it to the workers it starts later), then put back.
    saved = {k: os.environ.get(k) for k in (*_LOCAL_PORT_VARS, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # node IP 127.0.0.1
    for var in _LOCAL_PORT_VARS:
        os.environ[var] = str(_free_port())
    from ray._private import ray_constants

    was_cluster = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    ray_constants.ENABLE_RAY_CLUSTER = False  # read when ray was imported: set it for this process too
    try:
        with _agent_port_default(_free_port()):
            ray.init(num_cpus=num_cpus or os.cpu_count(), _temp_dir=tmp, dashboard_host="127.0.0.1",
                     dashboard_port=_free_port(), _metrics_export_port=_free_port(), **kwargs)
    except BaseException as err:
        _stop_ray(ray, tmp)
        if isinstance(err, KeyboardInterrupt):
            raise
        raise RayStartError(
            f"could not start a local Ray for the sweep ({_first_line(err)}). Nothing was trained. This "
            f"happens on a heavily loaded machine or when Ray's processes from a killed run are still "
            f"alive: wait a minute and run the same command again (finished trials are kept), or stop "
            f"stray Ray processes with `ray stop`; `--num-cpus 1` needs fewer processes") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if was_cluster is not None:
            ray_constants.ENABLE_RAY_CLUSTER = was_cluster
    return ray, tmp


def _stop_ray(ray, started) -> None:
    """Shut down the Ray this sweep started and remove its temporary directory (every exit path)."""
    if started is None:
        return
    try:
        ray.shutdown()
    finally:
        if started:
            shutil.rmtree(started, ignore_errors=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def run_sweep(
    config: "SweepConfig | str | os.PathLike", out_dir, address: str | None = None, num_cpus: int | None = None,
    progress: bool = True, max_retries: int | None = None, trial_fn: Callable[[dict], Mapping] | None = None,
    analyze_results: bool = True, ensemble: int | None = None,
) -> pd.DataFrame:
    """Run every missing trial of a sweep on Ray; return this sweep's ``trials.csv`` table.

    ``config``: a :class:`SweepConfig` or a file. Results go to ``out_dir`` as they complete
    (``results.jsonl``, ``trials.csv``; the config as ``sweep.json``); finished trials found there
    are skipped, failed ones are run again. ``address``: an existing Ray cluster (default: start
    one locally with ``num_cpus`` CPUs, default all cores, unless Ray is already initialised).
    ``max_retries`` (default the config's): Ray retries of a trial that raised or whose worker died.
    ``ensemble`` (default the config's): trials that differ only in seed train together, up to this
    many per Ray task (:func:`run_trials`); 1 trains every trial alone. The records are the same either
    way: one row per trial, and a re-run runs only the trials not done.
    ``trial_fn(spec) -> summary dict`` replaces :func:`run_trial` (tests, other studies; one trial per task).
    Afterwards (``analyze_results``) :func:`analyze` writes ``fit.json``, ``scaling.png``, ``report.md``.
    """
    if not isinstance(config, SweepConfig):
        config = SweepConfig.from_file(config)
    size = config.ensemble if ensemble is None else int(ensemble)
    if size < 1:
        raise SweepConfigError(f"run_sweep: ensemble must be at least 1, got {size}")
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
        env = {v: os.environ[v] for v in PASSED_VARS if v in os.environ}
        env.update({v: "1" for v in THREAD_VARS})
        ray, started = _start_ray(address, num_cpus, env)  # before the expensive preparation
        try:
            if trial_fn is None and not address:  # train the shared VAE (and extractor) once here, not per worker
                for settings in {json.dumps(s["workspace"], sort_keys=True) for s in todo}:
                    workspace_for(json.loads(settings))
            if trial_fn is None:
                groups, group_fn = ensembles(todo, size), run_trials
            else:
                groups, group_fn = [[spec] for spec in todo], _per_trial(trial_fn)
            say(f"{len(groups)} Ray tasks ({'one trial each' if size == 1 or trial_fn else f'ensembles of up to {size} seeds'})")
            _run_on_ray(ray, groups, specs, records, params, out, group_fn,
                        config.max_retries if max_retries is None else max_retries, say)
        finally:
            _stop_ray(ray, started)
    df = write_trials_csv(out, specs, records)
    if analyze_results:
        analyze(out)
        say(f"wrote {out / 'trials.csv'}, fit.json, scaling.png, report.md")
    return df


def _run_on_ray(ray, groups, specs, records, params, out, group_fn, max_retries, say) -> None:
    remote = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=True)(_call_group)
    slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
    fn_ref = ray.put(group_fn)
    queue, running = list(groups), {}
    n_todo = sum(len(g) for g in groups)
    n_done = n_failed = 0
    t0 = time.time()

    def fill():
        while queue and len(running) < slots:
            group = queue.pop(0)
            running[remote.remote(fn_ref, group)] = group

    try:
        fill()
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)  # a timeout keeps Ctrl-C prompt
            for ref in ready:
                group = running.pop(ref)
                fill()
                try:
                    summaries = ray.get(ref)
                    if len(summaries) != len(group):
                        raise RuntimeError(f"{len(summaries)} results for {len(group)} trials")
                    recs = [make_record(spec, params[spec["trial_id"]], summary)
                            for spec, summary in zip(group, summaries)]
                except Exception as e:  # the task failed on its last retry: each of its trials failed
                    recs = [make_record(spec, params[spec["trial_id"]], error=_error_text(e)) for spec in group]
                for rec in recs:
                    records[rec["trial_id"]] = rec
                    append_result(out, rec)
                write_trials_csv(out, specs, records)
                for rec in recs:
                    n_done += rec["status"] == "done"
                    n_failed += rec["status"] == "failed"
                    finished = n_done + n_failed
                    elapsed = time.time() - t0
                    left = elapsed / finished * (n_todo - finished)
                    what = (f"FD {rec['final_fd']:.4g} {'stable' if rec['stable'] else 'unstable'}"
                            if rec["status"] == "done" and rec["final_fd"] is not None else rec["status"])
                    say(f"[{finished}/{n_todo}] done {n_done}, running {sum(len(g) for g in running.values())}, "
                        f"failed {n_failed} | elapsed {fmt_time(elapsed)}, left ~{fmt_time(left)} | "
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


def _call_group(group_fn, group):
    return [dict(summary) for summary in group_fn(group)]


class _per_trial:
    """A per-trial function as a group function (picklable for Ray)."""

    def __init__(self, trial_fn):
        self.trial_fn = trial_fn

    def __call__(self, group):
        return [self.trial_fn(spec) for spec in group]


def _error_text(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e  # RayTaskError wraps the trial's own exception
    text = "".join(traceback.format_exception_only(type(cause), cause)).strip()
    return text[-2000:]
