"""The Explorer dashboard: controls, live views and the buttons that drive a run.

Taught in notebook ``07_explorer``; served to students as a web app by ``make dashboard`` (Voila on
``notebooks/dashboard.ipynb``)::

    from qgan_widgets.widgets import Explorer
    Explorer().display()                    # or just `Explorer()` as the last line of a cell

    ex = Explorer(num_qubits=2, steps=50)   # in a script or a test: no browser needed
    result = ex.run_sync()

Controls write into an :class:`~qgan_widgets.widgets.state.ExplorerState`; the views observe it;
the :class:`~qgan_widgets.widgets.runner.Runner` trains in a worker thread and publishes progress
into it. Widget updates from that thread only set widget values (``Image.value``,
``HTML.value``, ``Output.append_stderr``), which ipywidgets sends safely from any thread; nothing
prints or uses ``with output:`` there.
"""
from __future__ import annotations

import html
import math
import threading
import time
import traceback
from pathlib import Path

import ipywidgets as W

from qgan_widgets.quantum.circuits import ENTANGLERS
from qgan_widgets.widgets import compare, plots
from qgan_widgets.widgets.runner import Runner, preload_in_background, prepare_time
from qgan_widgets.widgets.state import (
    ACTIVE, LABELS, LOCKED_KEYS, MAX_LAYERS, MAX_QUBITS, MAX_WIDTH, ExplorerError, ExplorerState, defaults,
    latent_dim_of, run_key,
)

__all__ = ["Explorer"]

_STATUS_COLOURS = {"idle": "#7f8c8d", "preparing": "#8e44ad", "training": "#2471a3", "paused": "#b9770e",
                   "stopping": "#b9770e", "stopped": "#566573", "completed": "#1e8449", "diverged": "#c0392b",
                   "error": "#c0392b"}
_STYLE = {"description_width": "110px"}
_CSS = """<style>
@keyframes qgan-sweep { from { transform: translateX(-100%); } to { transform: translateX(286%); } }
.qgan-progress { height: 6px; width: 100%; max-width: 720px; background: #e8e3f0; border-radius: 3px;
                 overflow: hidden; margin: 4px 0 2px 0; }
.qgan-progress > div { height: 100%; width: 35%; background: #8e44ad; border-radius: 3px;
                       animation: qgan-sweep 1.4s steps(7) infinite; will-change: transform; }
@media (prefers-reduced-motion: reduce) { .qgan-progress > div { animation: none; width: 100%; opacity: 0.5; } }
.qgan-stale { opacity: 0.35; filter: grayscale(60%); }
.qgan-explorer.qgan-projector { zoom: 1.4; }
</style>"""
"""The dashboard's own rules: the indeterminate progress bar, dimmed stale views, projector mode. The bar
moves by ``transform`` (the compositor's work) in 5 steps a second: moving it by ``margin-left``
re-laid-out the whole page 60 times a second, and five pages doing so in headless Chromium took three
quarters of two cores from the kernels they were waiting for (``bench classroom --pages 5``: 545 of 702
core-seconds); smoothly by ``transform``, ten pages waiting on a first step still took 476 of 766."""
PHASE_HINTS = {
    "loading TensorFlow": "once per kernel: about 5 s on 2 cores; the dashboard shows without it",
    "compiling the first step": "a new model's first step is traced into a TensorFlow graph: "
                                "about 5-10 s on 2 cores, then each step takes milliseconds",
    "building the generator and the critic": "under a second",
}
"""What each long wait is and how long it usually takes (shown beside its progress bar)."""


def _row() -> W.Layout:
    return W.Layout(width="330px")  # one Layout per widget: hiding one control must not hide others


HELP = {
    "kind": "quantum: the style-based circuit; classical: an MLP of about the same size",
    "num_qubits": "qubits of the circuit = latent dimensions it outputs (readout z); each one doubles the "
                  "simulation cost",
    "num_layers": "layers of RY RZ RY RZ + CRY entanglers; every gate angle is w * noise + b",
    "entangler": "which qubit pairs the CRY gates connect (none at 1 qubit: nothing to entangle)",
    "hidden_width": "units in each of the classical generator's two hidden layers",
    "critic_width": "units per hidden layer of the critic (the capacity the paper varies), 1 to 1024",
    "learning_rate": "Adam's step size for generator and critic, between 1e-6 and 1 (e.g. 1e-3)",
    "steps": "generator steps per Train press (a whole number; Train again continues)",
    "batch_size": "latent vectors per step, 2 to 4096",
    "seed": "seeds the weights, the noise and the batches: the same seed gives the same run",
    "view": "samples in true colour (RGB) or as vegetation index (NDVI)",
}
"""The help shown when the pointer rests on a control (its tooltip)."""
SLIDERS = ("num_qubits", "num_layers", "hidden_width", "critic_width")
"""Integer settings with a slider to drag and a box to type in: a typed value the Explorer cannot take
is refused with a message, never clamped in silence (a slider's own number field clamps silently)."""
TYPED = ("learning_rate", "steps", "batch_size", "seed")
"""Settings typed as text and read by the Explorer (a number box in the browser turns "2.5" into 25)."""


class _Renderer:
    """Redraws the figure views in one background thread. Requests coalesce: a view asked for
    several times while busy is drawn once, from the newest state, so training never waits for
    matplotlib, and drawing takes at most about a third of a core (it pauses twice as long as the
    last drawing of a ``paced`` view took, at least ``min_pause`` seconds)."""

    def __init__(self, jobs: dict, paced: tuple = (), min_pause: float = 0.25, on_error=None):
        self.jobs, self.paced, self.min_pause = jobs, set(paced), float(min_pause)
        self.on_error = on_error
        self._dirty: list[str] = []
        self._urgent = False
        self._requested = 0  # requests made so far
        self._drawn = 0  # requests made before the last finished drawing
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def request(self, name: str, urgent: bool = False) -> None:
        """Draw view ``name`` soon; ``urgent`` skips the pause (e.g. when a run has ended)."""
        with self._cond:
            if name not in self._dirty:
                self._dirty.append(name)
            self._requested += 1
            self._urgent = self._urgent or urgent
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="qgan-explorer-views", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every view requested before this call is drawn (False on timeout). Views
        requested meanwhile (a run keeps training) do not make it wait longer."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._requested
            while self._drawn < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._dirty:
                    self._cond.wait()
                names, self._dirty = self._dirty, []
                taken = self._requested
            elapsed = 0.0
            for name in names:
                t0 = time.perf_counter()
                try:
                    self.jobs[name]()
                except Exception:  # a drawing problem must not end the view thread, nor be lost
                    if self.on_error is not None:
                        self.on_error(f"could not draw the {name} view:\n{traceback.format_exc()}")
                if name in self.paced:
                    elapsed += time.perf_counter() - t0
            with self._cond:
                self._drawn = taken
                self._cond.notify_all()
                deadline = time.monotonic() + (max(self.min_pause, 2 * elapsed) if elapsed else 0.0)
                while not self._urgent and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                self._urgent = False


class Explorer:
    """The dashboard. ``Explorer(workspace=None, runs_dir=None, workspace_options=None, **initial)``.

    - ``initial``: starting values of the configuration (see ``ExplorerState``; e.g.
      ``num_qubits=2, critic_width=16, steps=100``); bad values raise :class:`ExplorerError`.
    - ``workspace``: a prepared :class:`~qgan_widgets.pipeline.Workspace` to use for its latent
      dimension (``num_qubits`` defaults to it); other latent sizes are prepared on demand with
      ``workspace_options`` (keywords of ``Workspace.prepare``), once per process.
    - ``runs_dir``: where run directories go (default ``<cache>/explorer-runs``).

    ``display()`` shows it; ``set(...)`` changes settings like the controls do; ``train()``,
    ``pause()``, ``resume()``, ``stop()``, ``reset()`` are the buttons; ``run_sync(steps)``
    trains in the calling thread and returns the ``TrainResult``.
    """

    def __init__(self, workspace=None, runs_dir=None, workspace_options: dict | None = None, **initial):
        if workspace is not None and not hasattr(workspace, "real_latents"):
            raise ExplorerError(f"workspace must be a prepared pipeline.Workspace, got {type(workspace).__name__}")
        start = defaults()
        if workspace is not None and "num_qubits" not in initial and initial.get("readout", "z") == "z" \
                and workspace.latent_dim <= MAX_QUBITS:
            start["num_qubits"] = int(workspace.latent_dim)
        self.state = ExplorerState()
        self.state.update(**{**start, **initial})
        if runs_dir is None:
            from qgan_widgets import data

            runs_dir = data.cache_dir() / "explorer-runs"
        self.errors: list[str] = []
        self.runner = Runner(self.state, Path(runs_dir), workspace=workspace,
                             workspace_options=workspace_options, report_error=self._report_error)
        self._syncing = False
        self._ticker: threading.Thread | None = None
        self._data_text: str | None = None
        self._status_lock = threading.Lock()
        self._render_lock = threading.Lock()
        if workspace is not None and workspace.latent_dim == latent_dim_of(self.state.config()):
            self.runner.describe_workspace(workspace)
        self._build()
        self._renderer = _Renderer({"curves": self._draw_curves, "samples": self._draw_samples,
                                    "circuit": self._draw_circuit, "pair": self._draw_pair},
                                   paced=("curves", "samples"),
                                   on_error=self._report_error)
        self.views["circuit"].value = "<i style='font-size:12px;color:#777'>drawing the circuit...</i>"
        self._wire()
        self._render_config()
        self._draw_curves()
        self._draw_samples()
        self._render_status()
        self._apply_lock()

    # -- public API ------------------------------------------------------------------------------
    @property
    def widget(self) -> W.Widget:
        """The whole dashboard as one ipywidgets container."""
        return self._app

    def display(self) -> None:
        """Show the dashboard in the current notebook output (or Voila page), then import TensorFlow in
        the background: the page shows without it, and by the time Train is pressed it is usually loaded."""
        from IPython.display import display

        display(self._app)
        preload_in_background()

    def _ipython_display_(self) -> None:
        self.display()

    def set(self, **values) -> None:
        """Change settings (as the controls do): checked together and applied at once, or
        :class:`ExplorerError` and nothing changes. Shape-changing settings are refused while a run
        is in progress."""
        self.state.update(**values)

    def train(self, steps: int | None = None) -> None:
        """Start (or continue) training in a worker thread; returns at once (the Train button)."""
        self.runner.start(steps)

    def run_sync(self, steps: int | None = None):
        """Train in the calling thread and return the ``TrainResult`` (for scripts and tests); the
        views are drawn when it returns."""
        try:
            return self.runner.run_sync(steps)
        finally:
            self.flush()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the figure views show the current state (False on timeout)."""
        return self._renderer.flush(timeout)

    def pause(self) -> None:
        self.runner.pause()

    def resume(self) -> None:
        self.runner.resume()

    def stop(self, wait: bool = False, timeout: float | None = None) -> bool:
        """Stop after the current step; the run's records and checkpoint stay on disk."""
        return self.runner.stop(wait=wait, timeout=timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run in the worker thread has ended (False on timeout)."""
        return self.runner.wait(timeout)

    def reset(self) -> None:
        """Forget the current run and its curves (its directory stays): Train starts a new run."""
        self.runner.reset()

    @property
    def trainer(self):
        """The current run's ``WGANGPTrainer`` (None before the first Train and after Reset)."""
        return self.runner.trainer

    # -- comparing runs --------------------------------------------------------------------------
    def run_preset(self, name: str, sync: bool = False) -> list[dict]:
        """Train the runs of preset ``name`` (:data:`~qgan_widgets.widgets.compare.PRESETS`; two, or three for
        ``"3 seeds"``) one after the other from the current settings, each a new run of ``steps`` steps, then
        overlay their FD curves and show the first two runs' samples side by side; ``"3 seeds"`` also says
        how far apart the three runs' FD excess landed. In a worker thread (returns at once) unless ``sync``;
        returns the settings."""
        if self.runner.busy:
            raise ExplorerError("a run is in progress: stop it or wait for it to end before a preset")
        configs = compare.preset_configs(name, self.state.config())
        if sync:
            self._preset(name, configs)
        else:
            threading.Thread(target=self._preset, args=(name, configs), name="qgan-explorer-preset",
                             daemon=True).start()
        return configs

    def _preset(self, name: str, configs: list[dict]) -> None:
        done = []
        for i, config in enumerate(configs):
            self.runner.reset()
            self.state.update(**config)
            self.state.message = f"preset '{name}': run {i + 1} of {len(configs)}"
            try:
                self.runner.run_sync()
            except Exception:
                return  # shown by the runner (status "error", the messages pane)
            if self.state.status != "completed":
                self.state.message = f"preset '{name}' ended after run {i + 1}: the run was {self.state.status}"
                return
            done.append(self.state.runs[-1]["number"])
        self.compare(*done)
        runs = ", ".join(f"#{n}" for n in done[:-1]) + f" and #{done[-1]}"
        message = f"preset '{name}': runs {runs} are overlaid"
        message += " and shown side by side below" if len(done) == 2 else f", #{done[0]} and #{done[1]} side by side below"
        if name == "3 seeds":
            message += "; " + compare.seed_spread([r for r in self.state.runs if r["number"] in done])
        self.state.message = message

    def compare(self, first: int, second: int, *others: int) -> None:
        """Overlay the FD of runs ``first``, ``second`` and any ``others`` on the plot (the current run is drawn
        anyway) and show the first two runs' last samples side by side (run numbers of the table)."""
        numbers = {r["number"] for r in self.state.runs}
        for n in (first, second, *others):
            if n not in numbers:
                raise ExplorerError(f"compare: there is no run #{n} (runs: {', '.join(f'#{m}' for m in sorted(numbers))})")
        k = self.compare_controls  # its options follow state.runs (_render_runs observes it)
        k["overlay"].value = tuple(sorted({first, second, *others}))  # the control sets state.overlay
        k["first"].value, k["second"].value = first, second
        self._renderer.request("pair", urgent=True)

    def export(self, number: int | None = None) -> bytes:
        """The current run (or run ``number``) as zip bytes (:func:`~qgan_widgets.widgets.compare.export_zip`);
        also offered as a download link in the dashboard."""
        runs = self.state.runs
        if not runs:
            raise ExplorerError("export: no run has ended yet; train one first")
        if number is None:
            current = [r for r in runs if r["run_dir"] == self.state.run_dir]
            record = current[-1] if current else runs[-1]
        else:
            match = [r for r in runs if r["number"] == number]
            if not match:
                raise ExplorerError(f"export: there is no run #{number}")
            record = match[0]
        data = compare.export_zip(record)
        name = f"qgan-run-{record['number']}-{Path(record['run_dir']).name or 'explorer'}.zip"
        self.views["download"].value = compare.download_html(data, name, f"download run #{record['number']}")
        return data

    def _set_overlay(self, numbers) -> None:
        self.state.overlay = [int(n) for n in numbers]

    def _render_runs(self) -> None:
        runs, k = self.state.runs, self.compare_controls
        self.views["runs"].value = compare.runs_table_html(runs)
        options = [(r["label"], r["number"]) for r in runs]
        self._syncing = True
        try:
            keep = [n for n in k["overlay"].value if n in {o[1] for o in options}]
            k["overlay"].options = options
            k["overlay"].value = tuple(keep)
            for name, default in (("first", -2), ("second", -1)):
                old = k[name].value
                k[name].options = options
                if old in {o[1] for o in options}:
                    k[name].value = old
                elif len(options) >= 2:
                    k[name].value = options[default][1]
        finally:
            self._syncing = False
        self._renderer.request("pair")

    def _draw_pair(self) -> None:
        k, runs = self.compare_controls, {r["number"]: r for r in self.state.runs}
        first, second = runs.get(k["first"].value), runs.get(k["second"].value)
        view = self.views["pair"]
        if first is None or second is None or first is second:
            view.layout.display = "none"
            return
        view.value = plots.pair_png(first, second, self.state.view)
        view.layout.display = None

    # -- building --------------------------------------------------------------------------------
    def _build(self) -> None:
        st = self.state
        def slider(**kw):  # no readout: the box beside it takes typed values (see SLIDERS)
            return W.IntSlider(continuous_update=False, readout=False, style=_STYLE,
                               layout=W.Layout(width="262px"), **kw)

        def typed(name):
            return W.Text(value=self._text(name), description=LABELS[name], continuous_update=False,
                          style=_STYLE, layout=_row())

        c = self.controls = {
            "kind": W.ToggleButtons(options=[("quantum", "quantum"), ("classical", "classical")],
                                    value=st.kind, description="generator", style={"button_width": "100px",
                                                                                   **_STYLE}),
            "num_qubits": slider(value=st.num_qubits, min=1, max=MAX_QUBITS, description="qubits"),
            "num_layers": slider(value=st.num_layers, min=1, max=MAX_LAYERS, description="layers"),
            "entangler": W.Dropdown(options=list(ENTANGLERS), value=st.entangler, description="entangler",
                                    style=_STYLE, layout=_row()),
            "hidden_width": slider(value=st.hidden_width, min=1, max=max(128, st.hidden_width),
                                   description="hidden width"),
            "critic_width": slider(value=st.critic_width, min=1, max=MAX_WIDTH, description="critic width"),
            **{name: typed(name) for name in TYPED},
            "view": W.ToggleButtons(options=[("RGB", "rgb"), ("NDVI", "ndvi")], value=st.view,
                                    description="samples", style={"button_width": "70px", **_STYLE}),
        }
        b = self.buttons = {
            "train": W.Button(description="Train", button_style="success", icon="play",
                              tooltip="train (or continue) with these settings"),
            "pause": W.Button(description="Pause", button_style="warning", icon="pause"),
            "stop": W.Button(description="Stop", button_style="danger", icon="stop",
                             tooltip="stop after the current step; the run stays on disk"),
            "reset": W.Button(description="Reset", icon="refresh", tooltip="forget this run; Train starts anew"),
        }
        for name, button in b.items():
            button.layout = W.Layout(width={"pause": "92px", "stop": "70px"}.get(name, "80px"))
            button.add_class(f"qgan-{name}")
        self.entries = {name: W.Text(value=self._text(name), continuous_update=False,
                                     layout=W.Layout(width="62px", margin="0 0 0 4px")) for name in SLIDERS}
        for name, control in c.items():
            control.add_class(f"qgan-control-{name.replace('_', '-')}")
            control.tooltip = HELP[name]
        for name, entry in self.entries.items():
            entry.add_class(f"qgan-entry-{name.replace('_', '-')}")
            entry.tooltip = HELP[name]
        rows = {name: W.HBox([c[name], self.entries[name]], layout=W.Layout(align_items="center"))
                for name in SLIDERS}
        image = dict(format="png")
        v = self.views = {
            "title": W.HTML(_CSS + "<h2 style='margin:4px 0'>Latent style-QGAN Explorer</h2>"),
            "info": W.HTML(),
            "message": W.HTML(),
            "status": W.HTML(),
            "counts": W.HTML(),
            "circuit": W.HTML(),
            "loss": W.Image(layout=W.Layout(width="440px", margin="0 12px 0 0"), **image),
            "fd": W.Image(layout=W.Layout(width="440px"), **image),
            "samples": W.Image(layout=W.Layout(width="724px"), **image),
            "samples_caption": W.HTML(),
            "output": W.Output(layout=W.Layout(border="1px solid #ddd", max_height="180px", overflow="auto",
                                                width="100%")),
        }
        v.update({
            "runs": W.HTML(compare.runs_table_html([])),
            "pair": W.Image(layout=W.Layout(width="724px", display="none"), **image),
            "download": W.HTML(),
        })
        k = self.compare_controls = {
            "overlay": W.SelectMultiple(options=[], rows=4, description="overlay FD of", style=_STYLE,
                                        layout=W.Layout(width="330px")),
            "first": W.Dropdown(options=[], description="side by side", style=_STYLE, layout=_row()),
            "second": W.Dropdown(options=[], description="with", style=_STYLE, layout=_row()),
            "preset": W.Dropdown(options=list(compare.PRESETS), description="preset", style=_STYLE,
                                 layout=W.Layout(width="400px")),
        }
        k["overlay"].tooltip = "earlier runs whose FD curves are drawn over the current one (Ctrl/Cmd-click for several)"
        k["first"].tooltip = k["second"].tooltip = "two runs whose last sample grids are shown side by side"
        k["preset"].tooltip = "; ".join(f"{n}: {t}" for n, t in compare.PRESETS.items())
        for name, control in k.items():
            control.add_class(f"qgan-compare-{name}")
        b["preset"] = W.Button(description="Run preset", tooltip="train the preset's runs (two; three seeds "
                                                                 "for '3 seeds') one after the other, then compare them")
        b["export"] = W.Button(description="Export run", tooltip="download the current run: settings, records "
                                                                 "and sample grids as a zip")
        b["projector"] = W.ToggleButton(description="Projector", icon="desktop", value=False,
                                        tooltip="larger text and pictures for a projector or a big screen")
        for name in ("preset", "export", "projector"):
            b[name].layout = W.Layout(width="110px")
            b[name].add_class(f"qgan-{name}")
        for name, view in v.items():
            view.add_class(f"qgan-{name.replace('_', '-')}")
        self._figures = {"loss": plots.new_figure(5.5, 3.4), "fd": plots.new_figure(5.5, 3.4)}
        placeholder = plots.new_figure(9.0, 1.4)
        plots.draw_placeholder(placeholder, "", "samples from a fixed noise batch appear here at the first "
                                                "evaluation")
        self._sample_placeholder = plots.to_png(placeholder)
        left = W.VBox([c["kind"], rows["num_qubits"], rows["num_layers"], c["entangler"], rows["hidden_width"],
                       rows["critic_width"], c["learning_rate"], c["steps"], c["batch_size"], c["seed"],
                       W.HBox([b["train"], b["pause"], b["stop"], b["reset"]]), v["message"]],
                      layout=W.Layout(width="350px", margin="0 16px 0 0"))
        right = W.VBox([v["counts"], v["circuit"]], layout=W.Layout(flex="1", min_width="360px"))
        self._app = W.VBox([
            W.HBox([v["title"], b["projector"]], layout=W.Layout(align_items="center",
                                                                 justify_content="space-between")),
            v["info"],
            W.HBox([left, right], layout=W.Layout(align_items="flex-start", flex_flow="row wrap")),  # narrow: wraps
            v["status"],
            W.HBox([v["loss"], v["fd"]], layout=W.Layout(flex_flow="row wrap")),
            W.HBox([c["view"], v["samples_caption"]], layout=W.Layout(align_items="center")), v["samples"],
            W.HTML("<b style='font-size:13px'>Compare runs</b>"), v["runs"],
            W.HBox([k["overlay"], W.VBox([k["first"], k["second"]])], layout=W.Layout(flex_flow="row wrap")),
            v["pair"],
            W.HBox([k["preset"], b["preset"]], layout=W.Layout(flex_flow="row wrap", align_items="center")),
            W.HBox([b["export"], v["download"]], layout=W.Layout(align_items="center")),
            W.HTML("<b style='font-size:12px'>messages and errors</b>"), v["output"],
        ], layout=W.Layout(padding="4px 8px"))
        self._app.add_class("qgan-explorer")

    def _wire(self) -> None:
        guard = self.views["output"].capture()
        for name, control in self.controls.items():
            control.observe(guard(lambda change, name=name: self._on_control(name, change["new"])), names="value")
        for name, entry in self.entries.items():
            entry.observe(guard(lambda change, name=name: self._on_control(name, change["new"])), names="value")
        self.buttons["train"].on_click(guard(lambda _: self._act(self.train)))
        self.buttons["pause"].on_click(guard(lambda _: self._act(
            self.resume if self.state.status == "paused" else self.pause)))
        self.buttons["stop"].on_click(guard(lambda _: self._act(self.stop)))
        self.buttons["reset"].on_click(guard(lambda _: self._act(self.reset)))
        self.buttons["preset"].on_click(guard(lambda _: self._act(
            lambda: self.run_preset(self.compare_controls["preset"].value))))
        self.buttons["export"].on_click(guard(lambda _: self._act(self.export)))
        self.buttons["projector"].observe(guard(lambda ch: self.set_projector(ch["new"])), names="value")
        k = self.compare_controls
        k["overlay"].observe(guard(lambda ch: self._set_overlay(ch["new"])), names="value")
        for name in ("first", "second"):
            k[name].observe(guard(lambda ch: self._renderer.request("pair")), names="value")
        st = self.state
        st.observe(lambda ch: self._sync_control(ch["name"]), names=list(self.controls))
        st.observe(lambda ch: self._render_config(), names=["kind", "num_qubits", "num_layers", "entangler",
                                                              "readout", "hidden_width", "critic_width",
                                                              "critic_depth"])
        st.observe(lambda ch: self._render_curves(), names=["revision", "floor", "overlay"])
        st.observe(lambda ch: self._render_runs(), names=["runs"])
        st.observe(lambda ch: self._render_samples(), names=["samples", "view"])
        st.observe(lambda ch: self._render_status(), names=["status", "message", "step", "target_steps",
                                                              "data_info", "run_dir", "phase", "stale"])
        st.observe(lambda ch: self._on_phase(), names=["phase"])
        st.observe(lambda ch: self._mark_stale(), names=["stale"])
        st.observe(lambda ch: self._apply_lock(), names=["status"])
        st.observe(lambda ch: self._on_final(), names=["status"])
        st.observe(lambda ch: self.runner.set_steps(ch["new"]), names=["steps"])
        st.observe(lambda ch: self._on_settings_changed(), names=list(LOCKED_KEYS))

    # -- controls -> state -----------------------------------------------------------------------
    def _on_control(self, name: str, value) -> None:
        if self._syncing:
            return
        try:
            self.state.update(**{name: value})
        except ExplorerError as err:
            self._show_message(str(err))
            self._sync_control(name)
            return
        now = getattr(self.state, name)
        if isinstance(value, str) and name != "learning_rate" and value.strip() != str(now):
            self._show_message(f"{LABELS[name]}: read {value.strip()!r} as {now}")  # e.g. 1e3 -> 1000
            self._sync_control(name)
        else:
            self._show_message("")

    def _on_settings_changed(self) -> None:
        """Say what Train will do now that the settings differ from (or match again) the last run's."""
        runner, st = self.runner, self.state
        if st.active or runner.trainer is None:
            return
        if run_key(st.config()) == runner.run_key:
            st.message = f"the settings of the current run (step {runner.trainer.step}): Train continues it"
        else:
            st.message = (f"new settings: Train starts a new run (the last one stays in {st.run_dir}); "
                          "its curves are shown until then")

    def _act(self, action) -> None:
        try:
            action()
        except ExplorerError as err:
            self._show_message(str(err))
        else:
            self._show_message("")

    def _text(self, name: str) -> str:
        value = getattr(self.state, name)
        return f"{value:g}" if name == "learning_rate" else str(value)

    def _sync_control(self, name: str) -> None:
        """Show the state's value in the control (after a refused input, or a change from code)."""
        control, value = self.controls[name], getattr(self.state, name)
        targets = [(control, value)]
        if name in TYPED:  # text: leave what the user typed when it already says the value ("3e-4")
            try:
                same = (float(control.value) if name == "learning_rate" else int(control.value.strip())) == value
            except ValueError:
                same = False
            targets = [] if same else [(control, self._text(name))]
        if name in SLIDERS:
            targets.append((self.entries[name], self._text(name)))
            if value > control.max:
                control.max = value  # e.g. a width from code beyond the slider: it grows to show it
        for widget, shown in targets:
            if widget.value != shown:
                self._syncing = True
                try:
                    widget.value = shown
                finally:
                    self._syncing = False

    def _show_message(self, text: str) -> None:
        self.views["message"].value = ("" if not text else
                                       f"<div style='color:#c0392b;font-size:12px;white-space:normal'>&#9888; "
                                       f"{html.escape(text)}</div>")

    def _report_error(self, text: str) -> None:
        self.errors.append(text)
        self.views["output"].append_stderr(text if text.endswith("\n") else text + "\n")

    # -- state -> views --------------------------------------------------------------------------
    def _apply_lock(self) -> None:
        status = self.state.status
        active = status in ACTIVE
        for name, control in self.controls.items():
            control.disabled = self._disabled(name)
            if name in self.entries:
                self.entries[name].disabled = control.disabled
        b = self.buttons
        b["train"].disabled = active
        b["reset"].disabled = active
        b["stop"].disabled = not active or status == "stopping"
        b["preset"].disabled = active
        b["export"].disabled = active
        b["pause"].disabled = status not in ("training", "paused")
        b["pause"].description = "Resume" if status == "paused" else "Pause"
        b["pause"].icon = "play" if status == "paused" else "pause"

    def _disabled(self, name: str) -> bool:
        """Locked while a run is active; the entangler also at 1 qubit (nothing to entangle)."""
        st = self.state
        return (st.status in ACTIVE and name in LOCKED_KEYS) or (name == "entangler" and st.num_qubits == 1)

    def _render_config(self) -> None:
        st, c = self.state, self.controls
        quantum = st.kind == "quantum"
        for name in ("num_layers", "entangler", "hidden_width"):
            shown = quantum != (name == "hidden_width")
            c[name].layout.display = None if shown else "none"
            if name in self.entries:
                self.entries[name].layout.display = c[name].layout.display
        c["entangler"].disabled = self._disabled("entangler")
        c["entangler"].tooltip = ("1 qubit: no entangling gates (CRY needs two qubits)" if st.num_qubits == 1
                                  else HELP["entangler"])
        c["num_qubits"].description = "qubits" if quantum else "latent dim"
        config = st.config()
        gen, critic = st.parameter_counts
        self.views["counts"].value = plots.counts_html(config, gen, critic)
        self._renderer.request("circuit")  # drawn in the view thread, never in the caller's

    def _draw_circuit(self) -> None:
        try:
            text = plots.circuit_html(self.state.config())
        except Exception as err:  # a drawing problem must not break the dashboard
            text = f"<i>circuit diagram unavailable: {html.escape(str(err))}</i>"
        self.views["circuit"].value = text

    def _on_final(self) -> None:
        if not self.state.active:  # a run ended: show its last records at once
            self._renderer.request("curves", urgent=True)
            self._renderer.request("samples", urgent=True)

    def _render_curves(self) -> None:
        self._renderer.request("curves")

    def _render_samples(self) -> None:
        self._renderer.request("samples")

    def _draw_curves(self) -> None:
        st = self.state
        history, evals, floor = st.history, st.evals, st.floor
        chosen = set(st.overlay)
        overlays = [(r["label"], r["curve"]) for r in st.runs if r["number"] in chosen and r["run_dir"] != st.run_dir]
        with self._render_lock:
            for name, draw in (("loss", lambda fig: plots.draw_losses(fig, history)),
                               ("fd", lambda fig: plots.draw_fd(fig, evals, floor, overlays))):
                fig = self._figures[name]
                draw(fig)
                self.views[name].value = plots.to_png(fig)

    def _draw_samples(self) -> None:
        st = self.state
        samples, view, step = st.samples, st.view, st.sample_step
        ws = self.runner.workspace
        standin = bool(ws is not None and ws.dataset.is_standin)
        with self._render_lock:
            self.views["samples_caption"].value = plots.samples_caption(step if samples is not None else -1,
                                                                        view, standin, stale=st.stale)
            self.views["samples"].value = (self._sample_placeholder if samples is None else
                                           plots.image_png(plots.sample_mosaic(samples, view)))

    def set_projector(self, on: bool = True) -> None:
        """Projector mode: the whole dashboard drawn 1.4 times larger (text, controls, figures)."""
        (self._app.add_class if on else self._app.remove_class)("qgan-projector")
        if self.buttons["projector"].value != bool(on):
            self.buttons["projector"].value = bool(on)

    def _on_phase(self) -> None:
        """While a long wait is under way, redraw the status once a second (its elapsed time)."""
        if not self.state.phase or (self._ticker is not None and self._ticker.is_alive()):
            return

        def tick():
            while self.state.phase:
                time.sleep(1.0)
                self._render_status()

        self._ticker = threading.Thread(target=tick, name="qgan-explorer-ticker", daemon=True)
        self._ticker.start()

    def _mark_stale(self) -> None:
        stale = self.state.stale
        for name in ("loss", "fd", "samples"):
            (self.views[name].add_class if stale else self.views[name].remove_class)("qgan-stale")
        self._renderer.request("samples", urgent=True)  # its caption says whose samples they are

    def _data_name(self) -> str:
        """Which data the first Train will use, said before it is loaded."""
        if self._data_text is None:
            from qgan_widgets.data import resolve_source

            try:
                src = resolve_source(self.runner.workspace_options.get("source"))
            except Exception as err:  # e.g. QGAN_SAT4_PATH names a missing file: Train will say so too
                self._data_text = f"Data: cannot be read ({err})"
            else:
                self._data_text = ("Data: STAND-IN (synthetic tiles, not real SAT-4: no SAT-4 files found)"
                                   if src.is_standin else f"Data: real SAT-4 from {src.path} ({src.origin})")
        return self._data_text

    def _progress_html(self) -> str:
        st = self.state
        if not st.phase:
            return ""
        elapsed = max(0.0, time.time() - st.phase_since)
        hint = PHASE_HINTS.get(st.phase) or (
            f"about {prepare_time(self.runner.workspace_options.get('fast'))} on 2 cores the first time for a "
            "latent size, then cached")
        return (f"<div class='qgan-progress' role='progressbar' aria-label='{html.escape(st.phase)}'><div></div></div>"
                f"<div class='qgan-phase' style='font-size:12px;color:#6c3483'>{html.escape(st.phase)}: "
                f"{elapsed:.0f} s <span style='color:#777'>({html.escape(hint)})</span></div>")

    def _render_status(self) -> None:
        with self._status_lock:  # the ticker and the observers: the last to draw reads the newest state
            self._draw_status()

    def _draw_status(self) -> None:
        st = self.state
        colour = _STATUS_COLOURS.get(st.status, "#555")
        parts = []
        if st.stale:
            parts.append("the curves and samples below are the previous run's until the new run starts")
        elif st.target_steps:
            parts.append(f"step {st.step} / {st.target_steps}")
        if st.evals and not st.stale:
            last = st.evals[-1]
            fd = last.get("fd", math.nan)
            if math.isfinite(fd):
                parts.append(f"FD {fd:.4g} (floor {st.floor:.3g})")
            elif math.isfinite(last.get("fd_latent", math.nan)):
                parts.append(f"FD latent {last['fd_latent']:.4g}")
        if st.status == "training" and math.isfinite(st.speed):
            parts.append(f"{st.speed:.1f} steps/s")
        detail = " &middot; ".join(parts)
        message = html.escape(st.message)
        self.views["status"].value = (
            f"<div style='margin:6px 0;font-size:13px'><span class='qgan-status-pill' "
            f"data-status='{st.status}' style='background:{colour};color:white;border-radius:10px;"
            f"padding:2px 10px;font-weight:bold'>{st.status}</span> <span class='qgan-status-detail'>{detail}"
            f"</span><div style='color:#444;font-size:12px;margin-top:2px'>{message}</div>"
            f"{self._progress_html()}</div>")
        info = st.data_info or (f"{self._data_name()}. The VAE and the feature extractor are prepared when you "
                                f"first press Train ({prepare_time(self.runner.workspace_options.get('fast'))} "
                                "per latent size on 2 cores, then cached).")
        self.views["info"].value = f"<div style='font-size:12px;color:#555'>{html.escape(info)}</div>"
