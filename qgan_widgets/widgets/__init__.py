"""The Explorer dashboard (``Explorer``, ``ExplorerState``): drag qubits, layers and critic width,
press Train and watch the losses, the Frechet distance and the samples change.

Taught in notebook ``07_explorer``; ``make dashboard`` serves it as a Voila web app
(``notebooks/dashboard.ipynb``) for students who should not see code. Modules:

- :mod:`~qgan_widgets.widgets.state`: the observable state (configuration, run status, curves) and
  the checks every value goes through;
- :mod:`~qgan_widgets.widgets.plots`: the figures and HTML snippets the views show;
- :mod:`~qgan_widgets.widgets.runner`: training in a worker thread through the training loop's
  callbacks (pause, stop, continue), workspaces prepared once per latent size;
- :mod:`~qgan_widgets.widgets.compare`: the session's run table, the presets, a run as a download;
- :mod:`~qgan_widgets.widgets.explorer`: the controls, the views and the buttons.
"""
from __future__ import annotations

from qgan_widgets.widgets.state import ExplorerError, ExplorerState, defaults
from qgan_widgets.widgets.runner import Runner, workspace_for
from qgan_widgets.widgets.explorer import Explorer

__all__ = ["Explorer", "ExplorerState", "ExplorerError", "Runner", "defaults", "workspace_for"]
