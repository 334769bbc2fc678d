"""Training: the WGAN-GP trainer, its configuration and its run directory.

Imports the wings below and :mod:`qgan_widgets.pipeline`. Taught in notebook ``04_training_latent_style_qgan``.

- :mod:`.config`: what a run takes and gives (:class:`TrainConfig`, :class:`Callback`, :class:`TrainResult`);
- :mod:`.rundir`: a run's directory: CSV records, sample grids, checkpoints, resume checks;
- :mod:`.trainer`: the WGAN-GP step and loop, evaluation, divergence guard, :func:`run_training`;
- :mod:`.ensemble`: S seeds of one shape trained together in one program (:func:`run_ensemble`).
"""
from __future__ import annotations

from qgan_widgets.training.config import TrainConfig, Callback, TrainResult, TrainingDiverged, STEP_KEYS
from qgan_widgets.training.rundir import RunDirectory, RunDirectoryError, latest_checkpoint
from qgan_widgets import lazy_face

# the trainers import TensorFlow: loaded on first use
__getattr__, __dir__ = lazy_face(__name__, {
    **dict.fromkeys(["WGANGPTrainer", "gradient_penalty", "run_training"], "trainer"),
    **dict.fromkeys(["EnsembleTrainer", "run_ensemble"], "ensemble"),
})

__all__ = [
    "TrainConfig", "Callback", "TrainResult", "TrainingDiverged", "STEP_KEYS", "RunDirectory",
    "latest_checkpoint", "WGANGPTrainer", "gradient_penalty", "run_training", "EnsembleTrainer", "run_ensemble",
]
