"""Sweep definitions (``sweepconfig``), the Ray harness (results as they complete, retries, resume) and a tiny real sweep."""
from __future__ import annotations

import functools
import json
import math
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from qgan_widgets.apps import sweep as sweep_cli
from qgan_widgets.study import runner as experiments
from qgan_widgets.study import sweep as sweepconfig
from qgan_widgets.study import run_sweep
from qgan_widgets.study import CONFIG_DIR, SweepConfig, SweepConfigError

TINY = {
    "name": "unit",
    "workspace": {"latent_dim": 2, "fast": True},
    "generators": {"quantum": {"qubits": [2], "layers": [1, 2]}, "classical": {"hidden": [[4], [8]]}},
    "critic": {"widths": [4, 8]},
    "seeds": [0, 1],
    "train": {"steps": 5, "eval_every": 1},
    "analysis": {"n_boot": 20},
}


def write(tmp_path: Path, text: str, name="sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------ sweep definitions


@pytest.mark.parametrize("text, where", [
    ("name: x\ngenerators: {quantum: {qubits: [4]}}\ncritc: {widths: [4]}\n", "critc: unknown key (did you mean 'critic'?)"),
    ("generators: {quantum: {layers: [1, two]}}\n", "generators.quantum.layers: expected a non-empty list of integers"),
    ("generators: {quantum: {qubits: [3]}}\n", "generators.quantum.qubits: 3 qubits with readout 'z' give latent_dim 3"),
    ("generators: {quantum: {entangler: [ring]}}\n", "generators.quantum: entangler must be one of"),
    ("generators: {classical: {hidden: [[8, 0]]}}\n", "generators.classical.hidden[0]"),
    ("generators: {classical: {hidden: [4, 8]}}\n", "generators.classical.hidden: expected a list of hidden-layer lists"),
    ("generators: {classical: {}}\ncritic: {widths: []}\n", "critic.widths"),
    ("generators: {classical: {}}\nseeds: [0, 0]\n", "seeds: seeds repeat"),
    ("generators: {classical: {}}\ntrain: {stepz: 5}\n", "train: not valid TrainConfig fields: unknown TrainConfig key(s) stepz"),
    ("generators: {classical: {}}\ntrain: {seed: 5}\n", "train.seed"),
    ("generators: {classical: {}}\nanalysis: {rule: best}\n", "analysis.rule"),
    ("generators: {quantum: {backend: qsim}}\n", "generators.quantum.backend: must be a trainable backend"),
    ("generators: {classical: {}}\nstability: {windows: 3}\n", "stability.windows: unknown key (did you mean 'window'?)"),
    ("generators: {classical: {}}\nevaluation: {n_sample: 3}\n", "evaluation.n_sample: unknown key"),
    ("generators: {classical: {}}\nworkspace: {latent_dim: 0}\n", "workspace.latent_dim"),
    ("generators: {}\n", "generators: no generators"),
    ("generators: {quantum: {qubits: [4]}\n", "not readable as YAML"),
    ("- 1\n- 2\n", "expected a mapping of sections"),
    # values, not only keys, are checked before any work (issue 13, item 3)
    ("generators: {classical: {}}\nstability: {window: x}\n", "stability.window: expected an integer >= 2, got 'x'"),
    ("generators: {classical: {}}\nstability: {window: -5}\n", "stability.window: expected an integer >= 2"),
    ("generators: {classical: {}}\nstability: {max_rel_spread: 0}\n", "stability.max_rel_spread: expected a number > 0"),
    ("generators: {classical: {}}\nanalysis: {n_boot: x}\n", "analysis.n_boot: expected an integer >= 0, got 'x'"),
    ("generators: {classical: {}}\nanalysis: {n_boot: -5}\n", "analysis.n_boot: expected an integer >= 0, got -5"),
    ("generators: {classical: {}}\nanalysis: {level: 2}\n", "analysis.level: expected a number > 0 and < 1, got 2"),
    ("generators: {classical: {}}\nanalysis: {seed: .nan}\n", "analysis.seed"),
    ("generators: {classical: {}}\nevaluation: {n_samples: 1}\n", "evaluation.n_samples: expected an integer >= 2"),
    ("generators: {classical: {}}\nevaluation: {n_samples: 8, n_grid: 16}\n", "evaluation.n_grid: 16 grid tiles need"),
    ("generators: {classical: {}}\nworkspace: {vae_epochs: 0}\n", "workspace.vae_epochs: expected an integer >= 1"),
    ("generators: {classical: {}}\nworkspace: {fast: maybe}\n", "workspace.fast: expected true or false"),
    ("generators: {classical: {}}\nworkspace: {n_train: 2.5}\n", "workspace.n_train: expected an integer"),
    ("generators: {classical: {}}\nstability: {floor: lowest}\n", "stability.floor: expected 'reconstruction'"),
    ("generators: {classical: {}}\nstability: {min_excess_share: -1}\n", "stability.min_excess_share: expected a number >= 0"),
    ("generators: {classical: {}}\nevaluation: {kid: 3}\n", "evaluation.kid: expected true or false"),
    ("generators: {classical: {}}\ncritic: {lr_scaling: {exponent: 0.5}}\n", "critic.lr_scaling.reference_width: missing"),
    ("generators: {classical: {}}\ncritic: {lr_scaling: {reference_width: 32, exponent: 9}}\n",
     "critic.lr_scaling.exponent: expected a number >= -2 and <= 2"),
    ("generators: {classical: {}}\ncritic: {lr_scaling: {reference_width: 32, power: 1}}\n", "critic.lr_scaling.power: unknown key"),
])
def test_bad_sweep_files_name_the_file_and_the_key(tmp_path, text, where):
    path = write(tmp_path, text)
    with pytest.raises(SweepConfigError) as err:
        SweepConfig.from_file(path)
    assert str(err.value).startswith(str(path)) and where in str(err.value)


def test_bad_values_are_refused_before_any_trial_trains(tmp_path, monkeypatch):
    """A bad stability / analysis value used to train every trial and then fail each one."""
    trained = []
    monkeypatch.setattr(experiments, "workspace_for", lambda settings: trained.append(settings))
    for bad in ({"stability": {"window": "x"}}, {"analysis": {"level": 2}}, {"analysis": {"n_boot": -5}}):
        path = write(tmp_path, json.dumps({**TINY, **bad}), "bad.json")
        with pytest.raises(SweepConfigError, match=str(path)):
            run_sweep(path, tmp_path / "out", trial_fn=lambda spec: trained.append(spec) or {})
        assert sweep_cli.main(["--config", str(path), "--out", str(tmp_path / "out2")]) == 2
    assert trained == [] and not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_missing_file_and_json_files(tmp_path):
    with pytest.raises(SweepConfigError, match="no such sweep file"):
        SweepConfig.from_file(tmp_path / "nope.yaml")
    path = write(tmp_path, json.dumps(TINY), "sweep.json")
    assert SweepConfig.from_file(path).to_dict() == SweepConfig(**TINY).to_dict()
    with pytest.raises(SweepConfigError, match="not readable as JSON"):
        SweepConfig.from_file(write(tmp_path, "{name: x}", "bad.json"))


def test_packaged_sweeps_parse_and_have_the_promised_grids():
    quick, paper = SweepConfig.from_file("quick"), SweepConfig.from_file(CONFIG_DIR / "sweep-paper.yaml")
    assert SweepConfig.from_file("tiny").trials().__len__() == 2
    for cfg in (quick, paper):
        gens = cfg.generator_configs()
        for kind in ("quantum", "classical"):
            caps = {sweepconfig.count_params({"generator": g, "latent_dim": sweepconfig.latent_dim_of(g),
                                              "critic": {"width": 4, "depth": 2}})[0] for g in gens if g["kind"] == kind}
            assert len(caps) >= 3, (cfg.name, kind, caps)
        assert len(cfg.critic["widths"]) >= 3 and cfg.generators["quantum"]["backend"] == "statevector"
    assert len(paper.trials()) > 2 * len(quick.trials()) and len(paper.seeds) > len(quick.seeds)
    assert paper.train["steps"] > quick.train["steps"]


def test_the_study_grid_has_the_range_and_spacing_the_question_needs():
    """Issue 15: generator capacities over at least a decade per kind at one latent space, critic
    widths about x sqrt(2) apart, N >= 2,000 tiles per score, the excess judged, seeds in ensembles."""
    import numpy as np

    study = SweepConfig.from_file("study")
    for kind in ("quantum", "classical"):
        caps = sorted({sweepconfig.count_params({"generator": g, "latent_dim": 4, "critic": {"width": 4, "depth": 2}})[0]
                       for g in study.generator_configs() if g["kind"] == kind})
        assert len(caps) >= 5 and caps[-1] / caps[0] >= 10, (kind, caps)
    ratios = np.diff(np.log(study.critic["widths"]))
    assert np.all(np.abs(ratios - np.log(np.sqrt(2))) < 0.2), study.critic["widths"]
    assert study.workspace["fast"] is False  # the full sizes: 2,000 evaluation tiles, the default VAE
    assert study.analysis["rule"]["fd_column"] == "fd_excess" and study.stability["floor"] == "reconstruction"
    assert study.evaluation["kid"] is True and study.ensemble == len(study.seeds) >= 4
    assert {t["workspace"]["latent_dim"] for t in study.trials()} == {4}


def test_critic_learning_rate_scaling():
    cfg = SweepConfig(**{**TINY, "critic": {"widths": [4, 16, 64], "depth": 2,
                                            "lr_scaling": {"reference_width": 16, "exponent": 0.5}},
                         "train": {**TINY["train"], "lr_critic": 0.002}})
    rates = {t["critic"]["width"]: t["train"]["lr_critic"] for t in cfg.trials()}
    assert rates == {4: 0.004, 16: 0.002, 64: 0.001}
    assert cfg.critic_lr(64) == pytest.approx(0.001)
    plain = SweepConfig(**TINY)  # no scaling: the trials' settings (and ids) are as before
    assert all(t["train"] is plain.train for t in plain.trials())


def test_trial_ids_are_stable_unique_and_follow_the_config():
    cfg = SweepConfig(**TINY)
    ids = [t["trial_id"] for t in cfg.trials()]
    assert len(ids) == len(set(ids)) == 4 * 2 * 2
    assert ids == [t["trial_id"] for t in SweepConfig(**TINY).trials()]
    changed = SweepConfig(**{**TINY, "train": {"steps": 6, "eval_every": 1}})
    assert not set(ids) & {t["trial_id"] for t in changed.trials()}
    more = SweepConfig(**{**TINY, "seeds": [0, 1, 2]})  # extending a grid keeps the old trials' ids
    assert set(ids) < {t["trial_id"] for t in more.trials()}


def test_auto_latent_dim_gives_each_qubit_count_its_own_workspace():
    cfg = SweepConfig(name="auto", workspace={"latent_dim": "auto"},
                      generators={"quantum": {"qubits": [2, 3]}, "classical": {"hidden": [[4]], "latent_dim": [2]}})
    dims = {t["generator"].get("num_qubits", "c"): t["workspace"]["latent_dim"] for t in cfg.trials()}
    assert dims == {2: 2, 3: 3, "c": 2}
    with pytest.raises(SweepConfigError, match="generators.classical.latent_dim"):
        SweepConfig(workspace={"latent_dim": "auto"}, generators={"classical": {}})


def test_labels():
    assert sweepconfig.generator_label({"kind": "quantum", "num_qubits": 4, "num_layers": 2,
                                        "entangler": "cry-ring", "readout": "z"}) == "q4x2-cry-ring"
    assert sweepconfig.generator_label({"kind": "classical", "noise_dim": 4, "latent_dim": 4,
                                        "hidden": [8, 8]}) == "c8-8-d4"


# ------------------------------------------------------------------------------------ Ray harness


def fake_trial(spec, marks: str, fail_first: bool = False, always_fail_width: int | None = None):
    """A stand-in for run_trial: records that it ran (one file per attempt) and returns a summary."""
    import os
    from pathlib import Path

    tid = spec["trial_id"]
    attempt = len(list(Path(marks).glob(f"{tid}.*"))) + 1
    Path(marks, f"{tid}.{attempt}.{os.getpid()}").touch()
    if spec["critic"]["width"] == always_fail_width:
        raise RuntimeError(f"boom in {tid}")
    if fail_first and attempt == 1:
        os._exit(3)  # the worker dies, as if killed
    g = spec["generator"]
    size = g.get("num_layers", 0) * 10 + sum(g.get("hidden", []))
    fd = (math.log(spec["critic"]["width"]) - math.log(4 + size / 4)) ** 2 + 0.1 * spec["seed"] + 0.5
    return {"final_fd": fd, "final_fd_latent": fd / 2, "stable": True, "stability_reasons": [], "wall_time_s": 0.01,
            "status": "completed", "threads": os.environ.get("TF_NUM_INTRAOP_THREADS")}


def slow_trial(spec, marks: str):
    import time

    time.sleep(1.0)
    return fake_trial(spec, marks)


def ran(marks: Path) -> list[str]:
    return sorted({p.name.split(".")[0] for p in marks.iterdir()})


@pytest.fixture(scope="class")
def local_ray():
    """One local Ray for the harness tests (run_sweep reuses an initialised Ray and leaves it up)."""
    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    _, tmp = experiments._start_ray(None, 2, {v: "1" for v in experiments.THREAD_VARS})
    yield ray
    experiments._stop_ray(ray, tmp)


def listening_trial(spec, driver_pid: int, exclude_pid: int | None = None):
    """A trial that reports the listening sockets of the sweep's Ray (the driver and its descendants,
    less the process tree of ``exclude_pid``)."""
    import psutil

    procs = [psutil.Process(driver_pid)]
    procs += procs[0].children(recursive=True)
    if exclude_pid is not None:
        other = psutil.Process(exclude_pid)
        skip = {other.pid} | {p.pid for p in other.children(recursive=True)}
        procs = [p for p in procs if p.pid not in skip]
    addrs = set()
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        addrs |= {f"{c.laddr.ip}:{c.laddr.port}" for c in conns if c.status == psutil.CONN_LISTEN}
    return {"final_fd": 1.0, "final_fd_latent": 0.5, "stable": True, "stability_reasons": [], "wall_time_s": 0.01,
            "status": "completed", "listening": " ".join(sorted(addrs))}


@pytest.mark.slow
def test_local_ray_listens_on_loopback_only_beside_another_ray(tmp_path):
    """Issue 13 items 2 and 5: the sweep's local Ray binds 127.0.0.1 only, and starts while another
    local Ray (default settings: its agent holding Ray's fixed ports) runs on the machine."""
    import subprocess
    import time

    other = subprocess.Popen(
        [sys.executable, "-c", "import ray, time; ray.init(num_cpus=1, include_dashboard=False); "
                               "print('ready', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        assert other.stdout.readline().strip() == "ready"
        import ray

        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        cfg = SweepConfig(**{**TINY, "generators": {"classical": {"hidden": [[4]]}}, "critic": {"widths": [4]}})
        df = run_sweep(cfg, tmp_path / "out", trial_fn=functools.partial(listening_trial, driver_pid=os.getpid(), exclude_pid=other.pid),
                       analyze_results=False)
        assert set(df["status"]) == {"done"}, df["error"].tolist()
        addrs = " ".join(df["listening"].astype(str)).split()
        assert addrs, "no listening sockets found"
        hosts = {a.rsplit(":", 1)[0].replace("::ffff:", "") for a in addrs}
        assert hosts <= {"127.0.0.1", "::1"}, sorted(addrs)
    finally:
        other.kill()
        other.wait(timeout=60)
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") is None  # the switch is put back


def test_a_failed_ray_start_says_what_to_do_trains_nothing_and_cleans_up(tmp_path, monkeypatch, capsys):
    import tempfile

    import ray

    prepared = []
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(experiments, "workspace_for", lambda settings: prepared.append(settings))

    def timed_out(*args, **kwargs):
        raise Exception("The current node timed out during startup. This could happen because some of the "
                        "Ray processes failed to startup.")

    monkeypatch.setattr(ray, "init", timed_out)
    with pytest.raises(experiments.RayStartError, match=r"could not start a local Ray .*timed out during startup.*"
                                                        r"Nothing was trained.*run the same command again"):
        run_sweep(SweepConfig(**TINY), tmp_path / "out", progress=False)
    assert prepared == []  # Ray is started before the VAE is prepared
    assert not list(tmp_path.glob(experiments.RAY_TMP_PREFIX + "*"))  # no leaked temporary directory
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") is None
    assert sweep_cli.main(["--config", str(write(tmp_path, json.dumps(TINY), "s.json")),
                           "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sweep: could not start a local Ray") and "Traceback" not in err


def test_stale_ray_directories_of_dead_drivers_are_removed(tmp_path):
    import subprocess
    import time

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{experiments.RAY_TMP_PREFIX}{dead.pid}-abc"
    mine = tmp_path / f"{experiments.RAY_TMP_PREFIX}{os.getpid()}-def"
    other = tmp_path / "qgan-ray-notapid"
    legacy = tmp_path / "qgan-ray-abc123"  # an older version's name, without a pid, two days old
    for d in (stale, mine, other, legacy):
        (d / "session").mkdir(parents=True)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(legacy, (two_days_ago, two_days_ago))
    assert sorted(experiments.clean_stale_ray_dirs(str(tmp_path))) == sorted([str(stale), str(legacy)])
    assert not stale.exists() and not legacy.exists() and mine.exists() and other.exists()


@pytest.mark.usefixtures("local_ray")
class TestRayHarness:
    def test_sweep_writes_every_trial_and_the_analysis(self, tmp_path, capsys):
        marks = tmp_path / "marks"
        marks.mkdir()
        df = run_sweep(SweepConfig(**TINY), tmp_path / "out", trial_fn=functools.partial(fake_trial, marks=str(marks)))
        assert len(df) == 16 and set(df["status"]) == {"done"} and len(ran(marks)) == 16
        assert set(df["threads"].astype(str)) == {"1"}  # one TensorFlow thread per trial
        csv = pd.read_csv(tmp_path / "out" / "trials.csv")
        for col in ("trial_id", "generator_kind", "generator_params", "critic_width", "critic_params", "seed",
                    "final_fd", "final_fd_latent", "stable", "stability_reasons", "wall_time_s", "status", "error"):
            assert col in csv.columns
        assert csv.loc[csv.generator_label == "q2x1-cry-ring", "generator_params"].unique().tolist() == [24]
        for name in ("fit.json", "scaling.png", "report.md", "sweep.json", "results.jsonl", "optimal.csv"):
            assert (tmp_path / "out" / name).exists(), name
        fits = json.loads((tmp_path / "out" / "fit.json").read_text())
        assert {"a", "b", "r2", "ci_b"} <= set(fits["quantum"]) and {"a", "b", "r2", "ci_b"} <= set(fits["classical"])
        out = capsys.readouterr().out
        assert "[16/16] done 16, running 0, failed 0" in out and "left ~" in out

    def test_resume_runs_only_the_missing_trials(self, tmp_path):
        cfg, out = SweepConfig(**TINY), tmp_path / "out"
        first, second = tmp_path / "m1", tmp_path / "m2"
        first.mkdir(), second.mkdir()
        run_sweep(cfg, out, trial_fn=functools.partial(fake_trial, marks=str(first)), analyze_results=False)
        # The sweep "was interrupted": keep 5 finished results and a torn last line.
        lines = (out / "results.jsonl").read_text().splitlines()
        kept = [json.loads(line)["trial_id"] for line in lines[:5]]
        (out / "results.jsonl").write_text("\n".join(lines[:5]) + "\n" + lines[5][:40])
        df = run_sweep(cfg, out, trial_fn=functools.partial(fake_trial, marks=str(second)), analyze_results=False)
        assert ran(second) == sorted(set(t["trial_id"] for t in cfg.trials()) - set(kept))
        assert len(df) == 16 and set(df["status"]) == {"done"}
        third = tmp_path / "m3"
        third.mkdir()
        run_sweep(cfg, out, trial_fn=functools.partial(fake_trial, marks=str(third)), analyze_results=False)
        assert ran(third) == []  # nothing left to do

    def test_an_interrupted_sweep_keeps_its_results_and_resumes(self, tmp_path):
        import _thread
        import threading
        import time

        cfg, out = SweepConfig(**TINY), tmp_path / "out"
        first, second = tmp_path / "m1", tmp_path / "m2"
        first.mkdir(), second.mkdir()
        stop = threading.Event()

        def ctrl_c_after_three_results():
            # Ctrl-C while trials run: triggered by progress, not by a timer, so a fast machine
            # cannot finish the sweep first and leave a stray interrupt for a later test.
            results, deadline = out / "results.jsonl", time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < deadline:
                if results.exists() and len(results.read_text().splitlines()) >= 3:
                    _thread.interrupt_main()
                    return
                time.sleep(0.02)

        import signal

        before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background
        watcher = threading.Thread(target=ctrl_c_after_three_results, daemon=True)  # job inherits it ignored)
        watcher.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                run_sweep(cfg, out, trial_fn=functools.partial(slow_trial, marks=str(first)), analyze_results=False)
        finally:
            stop.set()
            watcher.join()
            signal.signal(signal.SIGINT, before)
        done = pd.read_csv(out / "trials.csv")
        assert 0 < len(done) < 16 and set(done.status) == {"done"}
        df = run_sweep(cfg, out, trial_fn=functools.partial(fake_trial, marks=str(second)), analyze_results=False)
        assert set(ran(second)) == {t["trial_id"] for t in cfg.trials()} - set(done.trial_id)
        assert len(df) == 16 and set(df.status) == {"done"}

    def test_ctrl_c_between_the_result_and_the_table_loses_nothing(self, tmp_path, monkeypatch, capsys):
        # The CI race: Ctrl-C after a result reached results.jsonl but before trials.csv was rewritten.
        cfg, out = SweepConfig(**TINY), tmp_path / "out"
        first, second = tmp_path / "m1", tmp_path / "m2"
        first.mkdir(), second.mkdir()
        real_write, calls = experiments.write_trials_csv, []

        def write_then_ctrl_c(out_dir, specs, records):
            calls.append(len(records))
            if len(calls) == 4:  # the sweep's first table, then three results: interrupt the third
                raise KeyboardInterrupt
            return real_write(out_dir, specs, records)

        monkeypatch.setattr(experiments, "write_trials_csv", write_then_ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            run_sweep(cfg, out, trial_fn=functools.partial(fake_trial, marks=str(first)), analyze_results=False)
        monkeypatch.setattr(experiments, "write_trials_csv", real_write)
        on_disk = experiments.load_results(out)
        table = pd.read_csv(out / "trials.csv")
        assert len(on_disk) >= 3 and set(table.trial_id) == set(on_disk)
        assert f"interrupted: {len(on_disk)} of 16 trials done" in capsys.readouterr().out
        run_sweep(cfg, out, trial_fn=functools.partial(fake_trial, marks=str(second)), analyze_results=False)
        assert set(ran(second)) == {t["trial_id"] for t in cfg.trials()} - set(on_disk)

    def test_failed_trials_are_retried_recorded_and_rerun(self, tmp_path):
        cfg, out = SweepConfig(**{**TINY, "generators": {"quantum": {"qubits": [2]}}}), tmp_path / "out"
        marks = tmp_path / "m1"
        marks.mkdir()
        df = run_sweep(cfg, out, max_retries=1, analyze_results=False, progress=False,
                       trial_fn=functools.partial(fake_trial, marks=str(marks), fail_first=True, always_fail_width=8))
        attempts = {}
        for p in marks.iterdir():
            attempts[p.name.split(".")[0]] = attempts.get(p.name.split(".")[0], 0) + 1
        assert set(attempts.values()) == {2}  # the killed worker and the raising trial were retried once
        done, failed = df[df.status == "done"], df[df.status == "failed"]
        assert len(done) == len(failed) == 2 and set(failed.critic_width) == {8}
        assert failed["error"].str.contains("RuntimeError: boom in").all() and not failed["stable"].any()
        marks2 = tmp_path / "m2"
        marks2.mkdir()
        df = run_sweep(cfg, out, analyze_results=False, trial_fn=functools.partial(fake_trial, marks=str(marks2)))
        assert ran(marks2) == sorted(failed.trial_id) and set(df.status) == {"done"}
        assert len(pd.read_csv(out / "trials.csv")) == 4


def test_cli_reports_bad_config_and_analyzes_existing_results(tmp_path, capsys):
    assert sweep_cli.main(["--config", str(write(tmp_path, "generators: {}\n"))]) == 2
    assert "generators: no generators" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sweep_cli.main(["--out", str(tmp_path)])  # neither --config nor --quick
    rows = [{"generator_kind": "classical", "generator_label": f"c{cg}", "generator_params": cg, "critic_width": w,
             "critic_depth": 2, "critic_params": cp, "seed": 0, "final_fd": 1.0 + abs(w - cg / 10), "stable": True,
             "status": "done"} for cg in (40, 80, 160) for w, cp in ((4, 45), (8, 121), (16, 369))]
    pd.DataFrame(rows).to_csv(tmp_path / "trials.csv", index=False)
    assert sweep_cli.main(["--analyze-only", "--out", str(tmp_path)]) == 0
    assert "## What the data support" in capsys.readouterr().out
    fit = json.loads((tmp_path / "fit.json").read_text())["classical"]
    # c40's optimum is the smallest critic and c160's the largest: censored, so one point is left
    assert fit["n_points"] == 1 and [p["generator_label"] for p in fit["censored"]] == ["c40", "c160"]


# ------------------------------------------------------------------------------- a real tiny sweep


@pytest.mark.slow
def test_tiny_real_sweep_on_local_ray(tmp_path):
    out = tmp_path / "tiny"
    assert sweep_cli.main(["--config", "tiny", "--out", str(out), "--num-cpus", "2"]) == 0
    df = pd.read_csv(out / "trials.csv")
    assert len(df) == 2 and set(df["status"]) == {"done"}, df[["status", "error"]]
    assert set(df["generator_kind"]) == {"quantum", "classical"}
    assert df["final_fd"].map(math.isfinite).all() and (df["wall_time_s"] > 0).all()
    assert (df["critic_params"] == 4 * 2 + 4 + 20 + 5).all()  # latent 2, width 4, depth 2
    assert (df["tf_threads"] == 1).all()  # one TensorFlow thread per trial
    assert {"fit.json", "report.md", "scaling.png"} <= {p.name for p in out.iterdir()}
    assert not os.environ.get("RAY_ADDRESS")


def test_study_face_hands_on_the_sweep_definition_and_the_analysis():
    # notebook 06 and the README reach these as qw.study.X; each has one home module
    import qgan_widgets as qw

    for name in ("SweepConfig", "SweepConfigError", "count_params", "generator_label", "CONFIG_DIR"):
        assert getattr(qw.study, name) is getattr(sweepconfig, name), name
    for name in ("analyze", "plot_scaling", "optimal_critic", "OptimalityRule", "run_sweep", "load_results"):
        assert callable(getattr(qw.study, name)), name
    assert not hasattr(experiments, "plot_scaling")  # the runner no longer re-exports the analysis


def test_the_quick_sweeps_run_time_is_stated_the_same_everywhere():
    """README, `sweep --help` and the packaged config quote one measured figure (issue 12)."""
    import re

    root = Path(__file__).resolve().parents[1]
    places = {
        "README": (root / "README.md").read_text(),
        "config": (CONFIG_DIR / "sweep-quick.yaml").read_text().splitlines()[0],
        "help": (root / "qgan_widgets" / "apps" / "sweep.py").read_text(),
    }
    figures = {}
    for name, text in places.items():
        found = set(re.findall(r"about (\d+) minutes on 2 cores", text))
        assert len(found) == 1, (name, found)
        figures[name] = found.pop()
    assert len(set(figures.values())) == 1, figures


def test_checking_values_leaves_trial_ids_as_they_were():
    """Value checks return values unchanged (an int stays an int), so trial ids, hashes of the settings,
    match those of earlier versions and a re-run still skips the finished trials of an old sweep
    (2554d226c4bf: the first quick trial's id before the checks existed)."""
    assert SweepConfig.from_file("quick").trials()[0]["trial_id"] == "2554d226c4bf"
    cfg = SweepConfig(**{**TINY, "stability": {"max_fd": 50, "window": 3}})
    assert cfg.stability == {"max_fd": 50, "window": 3} and isinstance(cfg.stability["max_fd"], int)
