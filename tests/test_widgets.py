"""The Explorer dashboard without a browser: controls, views, the runner's thread, pause/stop,
locked controls, refused values, the synchronous path. Small configurations (2 qubits, a tiny
workspace) keep the whole module to about a minute on 2 cores."""
from __future__ import annotations

import html
import time

import numpy as np
import pytest

from qgan_widgets.quantum import count_parameters
from qgan_widgets.models import critic_count_parameters
from qgan_widgets.models import classical_count_parameters
from qgan_widgets.training import latest_checkpoint
from qgan_widgets.widgets import Explorer, ExplorerError, ExplorerState
from qgan_widgets.widgets.state import LOCKED_KEYS, MAX_QUBITS

WS_OPTIONS = {"fast": True, "n_train": 600, "n_test": 200, "vae_epochs": 2, "extractor_epochs": 1}
QUICK = {"num_qubits": 2, "num_layers": 1, "critic_width": 8, "batch_size": 16, "n_critic": 2, "eval_every": 4,
         "steps": 12}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from qgan_widgets.pipeline import Workspace

    with pytest.MonkeyPatch.context() as mp:  # the module fixture runs before the per-test cache fixture
        mp.setenv("QGAN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "qgan-cache"))
        mp.delenv("QGAN_SAT4_PATH", raising=False)
        return Workspace.prepare(latent_dim=2, verbose=False, **WS_OPTIONS)


_MADE: list[Explorer] = []


@pytest.fixture(autouse=True)
def _stop_leftover_runs():
    """A failing test must not leave a run training in the background of the next ones."""
    yield
    while _MADE:
        _MADE.pop().stop(wait=True, timeout=60)


def make(workspace, tmp_path, **settings) -> Explorer:
    ex = Explorer(workspace=workspace, runs_dir=tmp_path / "runs", workspace_options=WS_OPTIONS,
                  **{**QUICK, **settings})
    _MADE.append(ex)
    return ex


def wait_for(condition, timeout: float = 90.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def images(ex: Explorer) -> dict:
    return {name: bytes(ex.views[name].value) for name in ("loss", "fd", "samples")}


# ----------------------------------------------------------------------------------- no training
def test_controls_drive_the_state_and_the_static_views(workspace, tmp_path):
    ex = make(workspace, tmp_path)
    assert ex.state.config()["num_qubits"] == 2 and ex.state.status == "idle"
    assert "STAND-IN" in ex.views["info"].value and "2-d latents" in ex.views["info"].value
    counts = ex.views["counts"].value
    assert f"{count_parameters(2, 1, 'cry-ring'):,}" in counts
    assert f"{critic_count_parameters(2, 8, 2):,}" in counts
    assert ex.flush()  # the circuit is drawn in the background
    svg = ex.views["circuit"].value
    assert "<svg" in svg

    ex.controls["num_qubits"].value = 3
    ex.controls["num_layers"].value = 2
    assert (ex.state.num_qubits, ex.state.num_layers) == (3, 2)
    assert f"{count_parameters(3, 2, 'cry-ring'):,}" in ex.views["counts"].value
    assert ex.flush()
    assert ex.views["circuit"].value != svg and "3 qubits x 2 layers" in ex.views["circuit"].value
    ex.set(num_qubits=MAX_QUBITS, num_layers=8)  # the biggest circuit is an SVG too, in a box that scrolls
    assert ex.flush() and "qgan-circuit-svg" in ex.views["circuit"].value and "<svg" in ex.views["circuit"].value
    assert "overflow:auto" in ex.views["circuit"].value  # a wide diagram scrolls, never squeezes

    ex.controls["kind"].value = "classical"
    ex.controls["hidden_width"].value = 5
    assert ex.state.kind == "classical" and ex.state.hidden_width == 5
    assert ex.controls["hidden_width"].layout.display != "none"
    assert ex.controls["num_layers"].layout.display == "none"
    assert ex.controls["num_qubits"].layout.display != "none"  # shared layouts would hide it too
    assert ex.controls["num_qubits"].description == "latent dim"
    assert f"{classical_count_parameters(MAX_QUBITS, MAX_QUBITS, (5, 5)):,}" in ex.views["counts"].value
    assert ex.flush() and "Dense 5" in ex.views["circuit"].value

    ex.set(critic_width=512)  # from code: the control follows, its slider grows
    assert ex.controls["critic_width"].value == 512
    assert f"{critic_count_parameters(MAX_QUBITS, 512, 2):,}" in ex.views["counts"].value
    assert ex.views["message"].value == ""
    # every view is part of the displayed tree
    seen, todo = set(), [ex.widget]
    while todo:
        w = todo.pop()
        seen.add(id(w))
        todo.extend(getattr(w, "children", ()))
    assert all(id(v) in seen for v in [*ex.views.values(), *ex.controls.values(), *ex.buttons.values()])


def test_invalid_values_are_refused_with_a_visible_message(workspace, tmp_path):
    ex = make(workspace, tmp_path)
    ex.controls["learning_rate"].value = "abc"
    assert "learning rate" in ex.views["message"].value and "not a number" in ex.views["message"].value
    assert ex.state.learning_rate == 1e-3 and ex.controls["learning_rate"].value == "0.001"

    ex.controls["learning_rate"].value = "-1"
    assert "out of range" in ex.views["message"].value and ex.state.learning_rate == 1e-3

    ex.controls["steps"].value = "-5"
    assert "steps" in ex.views["message"].value and "too small" in ex.views["message"].value
    assert ex.state.steps == 12 and ex.controls["steps"].value == "12"

    ex.controls["entangler"].value = "cry-pairs"  # the 3-qubit pattern, with 2 qubits
    assert "cry-pairs" in ex.views["message"].value and "num_qubits=3" in ex.views["message"].value
    assert ex.state.entangler == "cry-ring" and ex.controls["entangler"].value == "cry-ring"

    ex.controls["learning_rate"].value = "3e-4"  # a good value clears the message
    assert ex.state.learning_rate == pytest.approx(3e-4) and ex.views["message"].value == ""

    with pytest.raises(ExplorerError, match="qubits: 99 is too large"):
        ex.set(num_qubits=99)
    with pytest.raises(ExplorerError, match="too large"):
        Explorer(workspace=workspace, num_qubits=MAX_QUBITS + 1)
    with pytest.raises(ExplorerError, match="not a whole number"):
        Explorer(workspace=workspace, num_layers="two")
    with pytest.raises(ExplorerError, match="unknown Explorer setting 'qbits'"):
        Explorer(workspace=workspace, qbits=3)
    with pytest.raises(ExplorerError, match="generator kind"):
        ex.set(kind="analog")
    assert ex.state.num_qubits == 2 and ex.state.kind == "quantum"
    # the state refuses bad values whoever sets them
    state = ExplorerState()
    with pytest.raises(Exception, match="critic width: 0 is too small"):
        state.critic_width = 0


# ----------------------------------------------------------------------------------- training
def test_train_updates_state_curves_and_samples_then_stops_cleanly(workspace, tmp_path):
    ex = make(workspace, tmp_path, steps=5000)
    before = images(ex)
    t0 = time.perf_counter()
    ex.buttons["train"].click()
    assert time.perf_counter() - t0 < 5.0  # training runs in a worker thread: the click returns at once
    wait_for(lambda: ex.state.status == "training", what="training to start")

    # shape-changing controls are locked while training, steps and the sample view are not
    for name, control in ex.controls.items():
        assert control.disabled == (name in LOCKED_KEYS), name
    assert ex.buttons["train"].disabled and ex.buttons["reset"].disabled
    assert not ex.buttons["stop"].disabled and not ex.buttons["pause"].disabled
    with pytest.raises(ExplorerError, match="cannot change while a run is in progress"):
        ex.set(num_qubits=3)
    ex.controls["num_layers"].value = 2  # a locked control that still got a value (e.g. a stale page)
    assert ex.state.num_layers == 1 and "cannot change" in ex.views["message"].value
    assert ex.controls["num_layers"].value == 1

    wait_for(lambda: len(ex.state.evals) >= 2 and ex.state.samples is not None, what="two evaluations")
    assert ex.flush()
    after = images(ex)
    for name in ("loss", "fd", "samples"):
        assert after[name] != before[name], f"the {name} view did not change"
    steps = [r["step"] for r in ex.state.history]
    assert steps == list(range(1, len(steps) + 1))
    assert all(np.isfinite(e["fd"]) and np.isfinite(e["fd_latent"]) for e in ex.state.evals)
    assert ex.state.samples.shape == (16, 28, 28, 4) and ex.state.samples.dtype == np.uint8

    ex.buttons["stop"].click()
    assert ex.wait(60), "the worker thread did not end after Stop"
    st = ex.state
    assert st.status == "stopped" and "records and checkpoint are kept" in st.message
    assert not ex.controls["num_qubits"].disabled and not ex.buttons["train"].disabled
    run_dir = tmp_path / "runs" / st.run_dir.rsplit("/", 1)[-1]
    assert st.run_dir == str(run_dir)
    rows = (run_dir / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + st.step == 1 + len(st.history)
    assert latest_checkpoint(run_dir).name == f"step-{st.step:06d}"
    assert ex.errors == []

    # Train again with the same settings continues the run
    stopped_at = st.step
    result = ex.run_sync(steps=3)
    assert result.status == "completed" and result.steps == stopped_at + 3
    assert st.run_dir == str(run_dir) and [r["step"] for r in st.history][-1] == stopped_at + 3
    # Reset forgets it (the directory stays); the next Train starts a new run
    ex.buttons["reset"].click()
    assert st.status == "idle" and st.history == [] and st.samples is None and ex.trainer is None
    ex.run_sync(steps=2)
    assert st.run_dir != str(run_dir) and len(st.history) == 2
    assert latest_checkpoint(run_dir) is not None


def test_pause_resume_and_stop_while_paused(workspace, tmp_path):
    ex = make(workspace, tmp_path, steps=5000)
    ex.train()
    wait_for(lambda: ex.state.step >= 2, what="two steps")
    ex.buttons["pause"].click()
    wait_for(lambda: ex.state.status == "paused", what="the pause")
    assert ex.buttons["pause"].description == "Resume" and ex.controls["num_qubits"].disabled
    frozen = ex.trainer.step
    time.sleep(1.0)
    assert ex.trainer.step == frozen and ex.state.step == frozen
    ex.buttons["pause"].click()  # Resume
    wait_for(lambda: ex.trainer.step > frozen + 1, what="training to go on")
    assert ex.state.status == "training" and ex.buttons["pause"].description == "Pause"

    ex.pause()
    wait_for(lambda: ex.state.status == "paused", what="the second pause")
    ex.stop()
    assert ex.wait(30) and ex.state.status == "stopped"
    assert latest_checkpoint(ex.state.run_dir).name == f"step-{ex.state.step:06d}"


def test_typed_values_are_read_or_refused_never_changed_in_silence(workspace, tmp_path):
    """Issue 17's inputs: a number box in the browser turned "2.5" steps into 25 and "1e3" into 13,
    slider fields clamped 99 qubits to 12 without a word, the critic slider stopped at 256 and a
    learning rate of 1e-30 was taken. Every refused or adjusted value now says so."""
    from qgan_widgets.widgets.explorer import HELP, SLIDERS

    ex = make(workspace, tmp_path)
    msg = lambda: html.unescape(ex.views["message"].value)  # noqa: E731
    ex.controls["steps"].value = "2.5"
    assert "not a whole number" in msg() and ex.state.steps == 12 and ex.controls["steps"].value == "12"
    ex.controls["steps"].value = "1e3"
    assert ex.state.steps == 1000 and "read '1e3' as 1000" in msg() and ex.controls["steps"].value == "1000"
    ex.entries["num_qubits"].value = "99"  # typed beside the slider: refused, not clamped
    assert "qubits: 99 is too large" in msg() and ex.state.num_qubits == 2
    assert ex.entries["num_qubits"].value == "2" and ex.controls["num_qubits"].value == 2
    ex.entries["critic_width"].value = "1024"  # the largest width the code takes
    assert ex.state.critic_width == 1024 and ex.controls["critic_width"].value == 1024 and msg() == ""
    ex.controls["critic_width"].value = 64  # dragging the slider updates the box
    assert ex.entries["critic_width"].value == "64"
    ex.controls["learning_rate"].value = "1e-30"
    assert "out of range" in msg() and ex.state.learning_rate == 1e-3
    ex.controls["learning_rate"].value = "3e-4"
    assert ex.controls["learning_rate"].value == "3e-4" and msg() == ""  # what was typed stays
    ex.controls["seed"].value = "7"
    ex.controls["batch_size"].value = "1"
    assert ex.state.seed == 7 and "batch size: 1 is too small" in msg() and ex.state.batch_size != 1
    ex.entries["num_qubits"].value = "1"
    assert ex.controls["entangler"].disabled and "1 qubit" in ex.controls["entangler"].tooltip
    ex.entries["num_qubits"].value = "3"
    assert not ex.controls["entangler"].disabled
    for name, control in ex.controls.items():  # help on hover, never "null"
        assert control.tooltip == HELP[name] or name == "entangler", name
    assert all(ex.entries[n].tooltip == HELP[n] for n in SLIDERS)


def test_steps_can_change_during_a_run(workspace, tmp_path):
    ex = make(workspace, tmp_path, steps=5000)
    ex.train()
    wait_for(lambda: ex.state.step >= 1, what="a first step")
    assert not ex.controls["steps"].disabled
    ex.controls["steps"].value = "6"
    assert ex.wait(60)
    assert ex.state.status == "completed" and ex.state.step == ex.state.target_steps
    assert ex.state.step == 6 or ex.state.step == len(ex.state.history) > 6  # past 6 already: one more step


def test_run_sync_sample_view_toggle_and_new_run_on_changed_settings(workspace, tmp_path):
    ex = make(workspace, tmp_path)
    placeholder = images(ex)
    result = ex.run_sync(steps=8)
    st = ex.state
    assert result.status == "completed" and result.steps == 8 and st.status == "completed"
    assert [e["step"] for e in st.evals] == [4, 8] and st.sample_step == 8
    assert len(st.history) == 8 and np.isfinite(st.floor)
    rgb = images(ex)
    assert all(rgb[k] != placeholder[k] for k in rgb)
    assert "at step 8" in ex.views["samples_caption"].value
    assert "STAND-IN" in ex.views["samples_caption"].value  # the tests use the built-in stand-in data

    ex.controls["view"].value = "ndvi"
    assert ex.flush()
    assert images(ex)["samples"] != rgb["samples"] and "NDVI" in ex.views["samples_caption"].value

    first = st.run_dir
    ex.set(learning_rate=3e-3)  # another configuration: Train starts a new run
    assert "Train starts a new run" in st.message
    ex.set(learning_rate=1e-3)
    assert "Train continues it" in st.message
    ex.set(learning_rate=3e-3)
    result = ex.run_sync(steps=4)
    assert st.run_dir != first and result.steps == 4 and len(st.history) == 4
    assert ex.trainer.config.lr_generator == pytest.approx(3e-3)


def test_qsim_is_not_offered_and_refused_with_the_reason(workspace, tmp_path):
    """Issue 13, item 9: the Explorer offers only backends that train; qsim is refused with why."""
    from qgan_widgets.widgets.state import check_value

    with pytest.raises(ExplorerError, match="'qsim' cannot train .*no gradients.*choose statevector or tfq"):
        check_value("backend", "qsim")
    with pytest.raises(ExplorerError, match="'qsim' cannot train"):
        make(workspace, tmp_path, backend="qsim")
    assert check_value("backend", "tfq") == "tfq"


def test_errors_land_in_the_output_pane(workspace, tmp_path, monkeypatch):
    from qgan_widgets.models import generators
    from qgan_widgets.quantum import NotDifferentiableError

    def no_gradient(self, *args, **kwargs):  # a generator that cannot train: the error must be shown
        raise NotDifferentiableError("this generator has no gradient")

    monkeypatch.setattr(generators.QuantumGenerator, "check_trainable", no_gradient)
    ex = make(workspace, tmp_path)
    ex.buttons["train"].click()
    assert ex.wait(60)
    assert ex.state.status == "error" and "NotDifferentiableError" in ex.state.message
    text = "".join(o.get("text", "") for o in ex.views["output"].outputs)
    assert "no gradient" in text and "Traceback" in text
    assert not ex.controls["num_qubits"].disabled and not ex.buttons["train"].disabled
    with pytest.raises(NotDifferentiableError):
        ex.run_sync(steps=2)
    assert len(ex.errors) == 2

    from qgan_widgets.widgets import plots

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(plots, "draw_losses", broken)  # a view that cannot draw: shown, not lost
    ex.state.revision += 1
    assert ex.flush()
    assert "could not draw the curves view" in ex.errors[-1] and "drawing failed" in ex.errors[-1]
    assert "drawing failed" in "".join(o.get("text", "") for o in ex.views["output"].outputs)


def test_changing_qubits_prepares_a_workspace_once_with_a_visible_status(workspace, tmp_path):
    ex = make(workspace, tmp_path)
    messages = []
    ex.state.observe(lambda ch: messages.append((ex.state.status, ch["new"])), names="message")
    ex.set(num_qubits=3)
    ex.run_sync(steps=2)
    assert any(status == "preparing" and "preparing the VAE for latent dimension 3" in m for status, m in messages)
    assert ex.runner.workspace.latent_dim == 3 and "3-d latents" in ex.state.data_info

    again = make(workspace, tmp_path, num_qubits=3)  # prepared once per process: reused
    seen = []
    again.state.observe(lambda ch: seen.append(ch["new"]), names="message")
    again.run_sync(steps=2)
    assert not any("preparing the VAE" in m for m in seen)
    assert again.runner.workspace is ex.runner.workspace


@pytest.mark.slow
def test_in_a_kernel_other_cells_run_while_the_explorer_trains(tmp_path):
    """In a real ipykernel (nbclient): training runs in a worker thread, the next cell runs meanwhile,
    and the thread's widget updates raise nothing."""
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    setup = (f"from qgan_widgets.widgets import Explorer\n"
             f"ex = Explorer(runs_dir={str(tmp_path / 'runs')!r}, workspace_options={WS_OPTIONS!r}, "
             f"**{ {**QUICK, 'steps': 5000}!r})\nex.display()")
    cells = [
        setup,
        "import time\nex.train()\ndeadline = time.monotonic() + 120\n"
        "while ex.state.step < 3 and time.monotonic() < deadline and ex.runner.busy:\n    time.sleep(0.05)",
        "print('other cell:', ex.state.status, ex.state.step >= 3)",
        "ex.stop(wait=True, timeout=60)\nex.flush()\nprint('end:', ex.state.status, len(ex.state.evals) > 0, ex.errors)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                            ).execute()
    outputs = [o for cell in nb.cells for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "other cell: training True" in text
    assert "end: stopped True []" in text
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], text


def test_a_diverged_run_is_reported_and_the_next_train_starts_anew(workspace, tmp_path, monkeypatch):
    from qgan_widgets.training import WGANGPTrainer

    real = WGANGPTrainer._divergence
    monkeypatch.setattr(WGANGPTrainer, "_divergence",
                        lambda self, row: "d_loss became NaN or infinite (simulated)" if row["step"] == 3
                        else real(self, row))
    ex = make(workspace, tmp_path)
    result = ex.run_sync(steps=6)
    assert result.status == "diverged" and ex.state.status == "diverged"
    assert "simulated" in ex.state.message and "Train starts a new run" in ex.state.message
    assert "simulated" in ex.errors[-1] and ex.trainer is None
    assert len(ex.state.history) == 3 and not ex.controls["num_qubits"].disabled
    first = ex.state.run_dir
    monkeypatch.setattr(WGANGPTrainer, "_divergence", real)
    assert ex.run_sync(steps=2).status == "completed" and ex.state.run_dir != first


@pytest.mark.notebook
def test_dashboard_notebook_executes_and_shows_the_explorer(tmp_path):
    """notebooks/dashboard.ipynb (the Voila app) runs in a kernel, stripped, with no error or noise;
    the browser test drives it, this one needs no Chromium."""
    nbclient = pytest.importorskip("nbclient")
    import nbformat
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "notebooks" / "dashboard.ipynb"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == 2 and all(not c.outputs and c.execution_count is None for c in code)
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"], outputs


def test_counts_and_circuit_say_1_qubit_not_1_qubits():
    from qgan_widgets.widgets import plots
    from qgan_widgets.widgets.state import defaults

    config = {**defaults(fast=True), "num_qubits": 1, "num_layers": 1}
    text = plots.counts_html(config, 6, 100) + plots.circuit_html(config)
    assert "1 qubit x 1 layer," in text and "1 qubits" not in text and "1 layers" not in text
    assert "3 qubits x 2 layers" in plots.counts_html({**config, "num_qubits": 3, "num_layers": 2}, 30, 100)


def test_the_page_says_how_long_the_first_train_prepares_in_its_mode():
    """The tuned VAE made a first workspace take ~1 min (fast) or 4-5 min (full): the page said 'half a minute'."""
    from qgan_widgets.widgets.runner import prepare_time

    assert prepare_time(True) == "about a minute" and prepare_time(False) == "4-5 minutes"


# ------------------------------------------------------------------------------- comparing runs
def test_runs_are_kept_overlaid_compared_and_exported(workspace, tmp_path):
    """Issue 17: the session's runs in a table (settings, counts, FD excess over the floor, stability),
    earlier FD curves over the current one, two runs' samples side by side, a run as a download."""
    import io
    import zipfile

    ex = make(workspace, tmp_path)
    assert "Finished runs are listed here" in ex.views["runs"].value
    with pytest.raises(ExplorerError, match="no run has ended yet"):
        ex.export()
    ex.run_sync(steps=8)
    first = ex.state.runs[-1]
    assert first["number"] == 1 and first["steps"] == 8 and first["status"] == "completed"
    assert first["curve"] == [(4, pytest.approx(ex.state.evals[0]["fd"])), (8, pytest.approx(ex.state.evals[1]["fd"]))]
    assert first["fd_excess"] == pytest.approx(np.median([fd for _, fd in first["curve"]]) - ex.state.floor)
    assert first["stable"] in (True, False) and first["samples"].shape == (16, 28, 28, 4)
    ex.run_sync(steps=4)  # Train again continues the same run: its record is updated, not duplicated
    assert len(ex.state.runs) == 1 and ex.state.runs[0]["steps"] == 12
    ex.set(critic_width=16)
    ex.run_sync(steps=8)
    assert [r["number"] for r in ex.state.runs] == [1, 2]
    table = ex.views["runs"].value
    assert "#1" in table and "#2" in table and "width 16" in table and "FD excess over floor" in table
    fd_alone = bytes(ex.views["fd"].value)
    ex.compare_controls["overlay"].value = (1,)
    assert ex.state.overlay == [1] and ex.flush()
    assert bytes(ex.views["fd"].value) != fd_alone  # run #1's curve is drawn over run #2's
    ex.compare(1, 2)
    assert ex.flush() and ex.views["pair"].layout.display is None and len(ex.views["pair"].value) > 5_000
    with pytest.raises(ExplorerError, match="there is no run #7"):
        ex.compare(1, 7)
    data = ex.export()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert {"run.json", "config.json", "metrics.csv", "evals.csv"} <= set(names), names
    assert any(n.startswith("samples_") for n in names) and not any(n.startswith("checkpoints") for n in names)
    link = ex.views["download"].value
    assert "download='qgan-run-2-" in link and "data:application/zip;base64," in link


def test_presets_train_both_runs_and_compare_them(workspace, tmp_path):
    from qgan_widgets.widgets import compare

    ex = make(workspace, tmp_path, steps=4)
    configs = ex.run_preset("critic 4 vs 128", sync=True)
    assert [c["critic_width"] for c in configs] == [4, 128]
    assert [r["config"]["critic_width"] for r in ex.state.runs] == [4, 128]
    assert ex.state.overlay == [1, 2] and "preset 'critic 4 vs 128': runs #1 and #2" in ex.state.message
    assert ex.flush() and ex.views["pair"].layout.display is None
    pair = compare.preset_configs("quantum vs classical, equal size", ex.state.config())
    q, c = (compare.parameter_counts(x)[0] for x in pair)
    h = pair[1]["hidden_width"]
    neighbours = [compare.parameter_counts({**pair[1], "hidden_width": w})[0] for w in (h - 1, h + 1) if w >= 1]
    assert pair[1]["kind"] == "classical" and all(abs(c - q) <= abs(n - q) for n in neighbours)  # the closest size
    assert [p["num_layers"] for p in compare.preset_configs("layers 1 vs 4", ex.state.config())] == [1, 4]
    with pytest.raises(ExplorerError, match="preset: 'x' is not one of"):
        ex.run_preset("x")


def test_the_seeds_preset_trains_three_seeds_and_says_their_spread(workspace, tmp_path):
    from qgan_widgets.widgets import compare

    ex = make(workspace, tmp_path, steps=6, eval_every=2, seed=5)
    configs = ex.run_preset("3 seeds", sync=True)
    assert [c["seed"] for c in configs] == [5, 6, 7]
    assert all({**c, "seed": 0} == {**configs[0], "seed": 0} for c in configs)  # nothing else differs
    runs = ex.state.runs
    assert [r["config"]["seed"] for r in runs] == [5, 6, 7] and ex.state.overlay == [1, 2, 3]
    excess = [r["fd_excess"] for r in runs]
    assert len(set(excess)) == 3, excess  # three seeds, three different runs
    spread = f"{max(excess) - min(excess):.3g}"
    assert "runs #1, #2 and #3 are overlaid" in ex.state.message and f"a spread of {spread}" in ex.state.message
    assert [c["seed"] for c in compare.preset_configs("3 seeds", {**ex.state.config(), "seed": 2**31 - 1})] == [
        2**31 - 3, 2**31 - 2, 2**31 - 1]  # the largest seed: the three up to it
    one = [{"fd_excess": 1.0, "stable": None}, {"fd_excess": float("nan"), "stable": None}]
    assert "too few evaluations" in compare.seed_spread(one)
    assert "not judged" in compare.seed_spread([{"fd_excess": 1.0, "stable": None}, {"fd_excess": 2.0, "stable": True}])


def test_long_waits_show_progress_and_the_previous_run_is_marked_stale(workspace, tmp_path):
    """Issue 17, progress and honesty: the data is named before the first Train; the first (tracing)
    step shows a progress bar with its elapsed time; while a new run is prepared the previous run's
    curves and samples are dimmed and captioned as the previous run's, its scores left out of the header."""
    ex = make(workspace, tmp_path)
    assert "Data: STAND-IN" in ex.views["info"].value or "STAND-IN data" in ex.views["info"].value
    fresh = Explorer(runs_dir=tmp_path / "fresh", workspace_options=WS_OPTIONS, num_qubits=5)  # nothing prepared
    assert "Data: STAND-IN" in fresh.views["info"].value and "first press Train" in fresh.views["info"].value

    phases, stale_seen = [], []
    ex.state.observe(lambda ch: phases.append((ch["new"], ex.views["status"].value)), names="phase")
    ex.run_sync(steps=4)
    begun = [(p, view) for p, view in phases if p]
    assert [p for p, _ in begun] == ["building the generator and the critic", "compiling the first step"]
    assert ex.state.phase == "" and "qgan-progress" not in ex.views["status"].value  # over: no bar
    ex.state.observe(lambda ch: stale_seen.append((ch["new"], "qgan-stale" in ex.views["samples"]._dom_classes,
                                                   ex.views["status"].value)), names="stale")
    phases.clear()
    ex.run_sync(steps=2)  # the same run continued: nothing to compile, nothing stale
    assert not [p for p, _ in phases if p] and not stale_seen

    ex.state.phase_since = time.time() - 7  # the view as drawn during a wait
    with ex.state.hold_trait_notifications():
        ex.state.phase = "compiling the first step"
    shown = ex.views["status"].value
    assert "qgan-progress" in shown and "compiling the first step: 7 s" in shown and "5-10 s" in shown
    ex.state.phase = ""

    ex.set(critic_width=16)  # another run: the old pictures are the previous run's until the new one starts
    ex.run_sync(steps=2)
    assert [s for s, _, _ in stale_seen] == [True, False]
    assert stale_seen[0][1] and "previous run's until the new run starts" in stale_seen[0][2]
    assert "FD " not in stale_seen[0][2].split("qgan-status-detail")[1].split("</span>")[0]
    assert "qgan-stale" not in ex.views["samples"]._dom_classes and not ex.state.stale
    assert "previous run" not in ex.views["samples_caption"].value


def test_projector_mode_enlarges_the_dashboard(workspace, tmp_path):
    ex = make(workspace, tmp_path)
    assert "qgan-projector" not in ex.widget._dom_classes
    ex.buttons["projector"].value = True
    assert "qgan-projector" in ex.widget._dom_classes and "zoom" in ex.views["title"].value
    ex.set_projector(False)
    assert "qgan-projector" not in ex.widget._dom_classes and not ex.buttons["projector"].value


def test_the_dashboard_shows_without_tensorflow_and_train_says_it_is_loading_it():
    """A kernel shows the Explorer (controls, counts, circuit) without importing TensorFlow (seconds and
    ~0.3 GiB per classroom kernel); the first Train names the wait, and display() preloads it."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent('''
        import sys
        from qgan_widgets.widgets import Explorer, runner
        ex = Explorer(num_qubits=2, critic_width=8, steps=2)
        assert ex.flush() and "<svg" in ex.views["circuit"].value and "{counts}" in ex.views["counts"].value
        assert "tensorflow" not in sys.modules, "the Explorer imported TensorFlow"
        phases = []
        ex.state.observe(lambda change: phases.append(change["new"]), "phase")
        def stop(config):
            raise RuntimeError("stop here")
        ex.runner._workspace = stop  # end the run once TensorFlow is in
        try:
            ex.run_sync(1)
        except RuntimeError:
            pass
        assert phases[:2] == ["loading TensorFlow", "preparing the data, the VAE and the feature extractor"], phases
        assert "tensorflow" in sys.modules and "qgan_widgets.training.trainer" in sys.modules
        assert runner.preload_in_background() is None  # loaded: nothing to preload
        print("ok")
    ''').replace("{counts}", f"{critic_count_parameters(2, 8, 2):,}")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert run.stdout.strip().endswith("ok"), run.stdout + run.stderr
    preload = ("import sys\nfrom qgan_widgets.widgets import runner\n"
               "thread = runner.preload_in_background(); thread.join(300)\n"
               "print('tensorflow' in sys.modules and runner._TRAINING_LOADED.is_set())")
    run = subprocess.run([sys.executable, "-c", preload], capture_output=True, text=True, timeout=600)
    assert run.stdout.strip() == "True", run.stdout + run.stderr


def test_the_progress_bar_moves_without_relaying_out_the_page():
    """Animating margin-left re-laid-out the page every frame: five pages in headless Chromium took
    three quarters of two cores from the kernels (bench classroom --pages 5)."""
    from qgan_widgets.widgets.explorer import _CSS

    keyframes = _CSS.split("@keyframes qgan-sweep", 1)[1].split("}\n", 1)[0]
    assert "transform" in keyframes and "margin" not in keyframes and "left" not in keyframes
    assert "steps(" in _CSS.split(".qgan-progress > div", 1)[1].split("}", 1)[0]  # a few frames a second
    assert "prefers-reduced-motion" in _CSS
