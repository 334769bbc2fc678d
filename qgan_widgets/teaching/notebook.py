"""Small helpers for the notebooks in ``notebooks/``: mode banner, data banner, live plots, versions.

Nothing here computes anything the package does not already compute; these helpers only *show*
things in Jupyter so that every notebook stays a few short cells:

* :func:`fast_mode` says whether ``QGAN_FAST=1`` (CI and a quick first run) picks the small
  configurations, and :func:`sized` picks a value for the mode;
* :func:`data_banner` labels the data a notebook uses, loudly when it is the synthetic stand-in;
* :class:`LivePlot` is a :class:`qgan_widgets.training.config.Callback` that redraws loss and FD curves
  (and the sample grid) in place while :class:`~qgan_widgets.training.trainer.WGANGPTrainer` runs;
  :func:`plot_training` draws the same figure once from a finished run; :func:`show_figure`
  displays any matplotlib Figure (these figures are made without pyplot, so they show whatever
  backend is active);
* :func:`sequence` is the map of the notebook sequence (notebook 00 and ``notebooks/README.md``);
* :func:`versions_table` is the closing cell of every notebook: Python, TensorFlow, tf_keras, TFQ,
  Cirq, qsimcirq, NumPy and qgan_widgets versions and the platform, for reproducible reports.

matplotlib, pandas and IPython are imported inside the functions that use them.
"""
from __future__ import annotations

import importlib.metadata as md
import math
import os
import platform
import sys

from qgan_widgets.training.config import Callback

__all__ = ["fast_mode", "sized", "data_banner", "LivePlot", "plot_training", "show_figure", "figure_image",
           "sequence", "versions", "versions_table", "NOTEBOOKS", "results_dir", "committed_table"]

NOTEBOOKS = (
    ("00_welcome", "What a latent style-based quantum GAN is; the environment check; this map.", 0.1),
    ("01_sat4_data", "SAT-4 (or the stand-in): class grids, RGB / NIR / NDVI / false colour, class "
                     "statistics, putting the real files in place.", 0.3),
    ("02_vae_latent_space", "The VAE that makes the latent space: training, reconstructions, latent "
                            "histograms, the beta lesson (collapse, saturation, reconstruction floor), texture "
                            "and the tuning study.", 1.3),
    ("03_style_quantum_generator", "The style circuit: anatomy as SVG, the noise-to-angle mapping, "
                                   "parameter counts 10 / 34 / 62, tfq vs qsim (exact and shots), "
                                   "decoherence, barren plateaus, QASM export, backend speed.", 1.0),
    ("04_training_latent_style_qgan", "WGAN-GP in the latent space: live losses and FD, sample grids, "
                                      "the reconstruction floor, noisy hardware, FD's small-N bias, stability.", 0.9),
    ("05_classical_vs_quantum", "A classical generator of similar capacity on the same axes.", 0.8),
    ("06_capacity_scaling", "The paper's capacity study at small scale: sweep, optimal critic, "
                            "exponential vs power-law fit, and what it does and does not show.", 1.5),
    ("07_explorer", "The Explorer dashboard: sliders for qubits, layers, critic width; live FD and "
                    "samples.", 0.5),
)
"""(name, what it teaches, minutes with ``QGAN_FAST=1`` on 2 cores, measured with the VAE already cached;
about a minute more for a notebook that has to train it first)."""


# ---------------------------------------------------------------------------------------------
# committed results

def results_dir(name: str):
    """The directory of a committed result, ``results/<name>/`` in the repository (found from the
    package's location, or from ``$QGAN_RESULTS_DIR``); FileNotFoundError names where it looked and the
    command that makes it."""
    from pathlib import Path

    here = Path(__file__).resolve().parents[2] / "results"
    roots = [Path(os.environ["QGAN_RESULTS_DIR"])] if os.environ.get("QGAN_RESULTS_DIR") else []
    for root in [*roots, here, Path.cwd() / "results", Path.cwd().parent / "results"]:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"no committed results {name!r} under {here} or the working directory; they come from "
                            f"the repository (results/{name}/), or run the study again (e.g. python -m qgan_widgets "
                            f"vae-study)")


def committed_table(name: str, file: str = "table.csv"):
    """A committed result's table as a ``pandas.DataFrame``; its first line (``# data: ...``, which data and
    extractor the numbers come from) is kept in ``df.attrs["data"]``."""
    import pandas as pd

    path = results_dir(name) / file
    with open(path) as f:
        first = f.readline().strip()
    df = pd.read_csv(path, comment="#")
    df.attrs["data"] = first.lstrip("# ").strip()
    return df


# ---------------------------------------------------------------------------------------------
# mode


def fast_mode(verbose: bool = True) -> bool:
    """True when ``QGAN_FAST=1`` (read when ``qgan_widgets`` was imported); prints which mode.

    Notebooks use it in their ``parameters`` cell to pick small configurations for CI and a quick
    first run, and full-size ones otherwise.
    """
    from qgan_widgets import FAST

    if verbose:
        if FAST:
            print("QGAN_FAST=1: small configurations (a quick run, as in CI). Unset QGAN_FAST and "
                  "restart the kernel for the full-size run.")
        else:
            print("Full-size configurations. Set QGAN_FAST=1 before starting Jupyter for a quick run.")
    return bool(FAST)


def sized(fast, full):
    """``fast`` when ``QGAN_FAST=1``, else ``full``: ``steps = sized(60, 600)``."""
    from qgan_widgets import FAST

    return fast if FAST else full


# ---------------------------------------------------------------------------------------------
# data banner


def data_banner(dataset):
    """An HTML note naming the data a notebook uses; a red STAND-IN box for ``sat4-synthetic``.

    ``dataset`` is a :class:`qgan_widgets.data.dataset.Dataset`, a ``Workspace`` (its dataset is used) or a
    :class:`qgan_widgets.data.dataset.DataSource` (what ``data.resolve_source`` would use).
    Returns an ``IPython.display.HTML`` object (displayed when it is the last line of a cell); its
    ``data`` is plain enough to read in a text-only front end.
    """
    from IPython.display import HTML
    from html import escape

    ds = getattr(dataset, "dataset", dataset)
    line = escape(ds.describe())
    if getattr(ds, "is_standin", False):
        from qgan_widgets.data.dataset import GET_REAL_DATA

        return HTML(
            '<div style="border:2px solid #c0392b;background:#fdecea;padding:6px 10px;border-radius:4px">'
            "<b>STAND-IN DATA</b>: these are synthetic tiles (<code>sat4-synthetic</code>) calibrated to "
            "real SAT-4 statistics, <b>not real SAT-4 images</b>; every figure and score below is about "
            f"the stand-in.<br><small>{line}</small><br><small>To use real data: "
            f"{escape(GET_REAL_DATA)}.</small></div>")
    return HTML('<div style="border:1px solid #27ae60;background:#eafaf1;padding:6px 10px;'
                f'border-radius:4px">Data: {line}</div>')


# ---------------------------------------------------------------------------------------------
# training curves


def _curves(fig, history, evals, floor=None, title=None, samples=None, standin=False):
    """Draw losses, Wasserstein estimate, FD (``views.plot_losses`` / ``views.plot_fd``, as the
    dashboard does) and a sample grid into ``fig`` (cleared first)."""
    from qgan_widgets.data import views

    fig.clear()
    ncols = 3 if samples is not None else 2
    axes = fig.subplots(1, ncols, gridspec_kw={"width_ratios": [1, 1, 1][:ncols]})
    if history:
        views.plot_losses(axes[0], history)
    if evals:
        views.plot_fd(axes[1], evals, floor)
    if samples is not None:
        views.plot_grid(samples, view="rgb", ncols=int(math.ceil(math.sqrt(len(samples)))), ax=axes[2],
                  title="samples (fixed noise)", standin=standin)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _new_figure(width: float, height: float):
    """A matplotlib Figure outside pyplot: never shown twice, safe from any thread, and not affected
    by whatever backend pyplot uses."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def figure_image(fig):
    """The figure as an ``IPython.display.Image`` (PNG), whatever matplotlib's backend."""
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return Image(data=buf.getvalue(), format="png")


def show_figure(fig):
    """Display a matplotlib Figure in the notebook as a PNG and return it (works with figures made
    without pyplot, e.g. by :func:`qgan_widgets.study.analysis.plot_scaling`)."""
    from IPython.display import display

    display(figure_image(fig))
    return fig


def plot_training(result, floor=None, title=None, samples=None, standin=False, show: bool = True):
    """Loss curves and FD curves of a finished run (a ``TrainResult`` or a ``WGANGPTrainer``).

    ``floor``: the reconstruction floor (a number or a ``Score``) drawn as a dotted line;
    ``samples``: uint8 tiles to show beside the curves. Displays the figure (``show``) and returns
    it. Notebooks ``04``, ``05`` and ``07``.
    """
    fig = _new_figure(11 if samples is not None else 8.5, 3.2)
    _curves(fig, result.history, result.evals, None if floor is None else float(floor), title, samples, standin)
    if show:
        show_figure(fig)
    return fig


class LivePlot(Callback):
    """A training callback that redraws loss / FD curves and the sample grid in place.

    ``trainer = WGANGPTrainer(..., callbacks=[LivePlot(floor=ws.floor)])``: the figure below the
    cell updates every ``every`` steps and at every evaluation, so students watch the run. Drawn as
    PNG into one display slot, so it works whatever matplotlib backend is active. Notebook ``04``.
    """

    def __init__(self, floor=None, every: int = 25, title: str | None = None, standin: bool = False):
        self.floor = None if floor is None else float(floor)
        self.every = max(1, int(every))
        self.title, self.standin = title, standin
        self.trainer = None
        self._handle = None
        self._fig = None
        self._samples = None

    def on_train_begin(self, trainer) -> None:
        from IPython.display import display

        self.trainer = trainer
        self._fig = _new_figure(11, 3.2)
        self._handle = display(self._draw(), display_id=True)

    def _draw(self):
        t = self.trainer
        _curves(self._fig, t.history, t.evals, self.floor, self.title, self._samples, self.standin)
        return figure_image(self._fig)

    def _update(self) -> None:
        if self._handle is not None:
            self._handle.update(self._draw())

    def on_step(self, step: int, logs: dict) -> None:
        if step % self.every == 0:
            self._update()

    def on_eval(self, step: int, scores: dict, samples) -> None:
        if samples is not None:
            self._samples = samples
        self._update()

    def on_train_end(self, trainer, result) -> None:
        self._update()


# ---------------------------------------------------------------------------------------------
# the sequence and the versions


def sequence():
    """The notebook sequence as a pandas DataFrame: notebook, what it teaches, minutes (fast mode)."""
    import pandas as pd

    return pd.DataFrame([{"notebook": n, "teaches": t, "minutes (QGAN_FAST=1)": m} for n, t, m in NOTEBOOKS]
                        ).set_index("notebook")


_PACKAGES = (("TensorFlow", "tensorflow"), ("tf_keras", "tf-keras"), ("TensorFlow Quantum", "tensorflow-quantum"),
             ("Cirq", "cirq-core"), ("qsimcirq", "qsimcirq"), ("NumPy", "numpy"), ("qgan_widgets", "qgan_widgets"))


def versions() -> dict:
    """``{component: version}`` for Python, the pinned stack, qgan_widgets and the platform.

    Read from the installed package metadata (nothing heavy is imported); a missing package reads
    ``"not installed"``.
    """
    out = {"Python": platform.python_version()}
    for label, dist in _PACKAGES:
        try:
            out[label] = md.version(dist)
        except md.PackageNotFoundError:
            out[label] = "not installed"
    if out["qgan_widgets"] == "not installed":
        from qgan_widgets import __version__

        out["qgan_widgets"] = __version__
    keras_mode = "Keras 2 (tf_keras)" if os.environ.get("TF_USE_LEGACY_KERAS") == "1" else "not set"
    out["Keras mode"] = keras_mode
    out["QGAN_FAST"] = os.environ.get("QGAN_FAST", "0")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out["Platform"] = f"{platform.platform()}, {platform.machine()}, {cores} CPU cores"
    out["Executable"] = sys.executable
    return out


def versions_table():
    """The closing cell of every notebook: a one-column pandas DataFrame of :func:`versions`."""
    import pandas as pd

    return pd.DataFrame({"version": versions()}).rename_axis("component")
