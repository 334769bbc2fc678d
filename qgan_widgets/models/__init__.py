"""Models: the generators (quantum and classical), the VAE and the critic.

Imports :mod:`qgan_widgets.data` and :mod:`qgan_widgets.quantum`. Taught in notebooks
``02_vae_latent_space`` (VAE), ``03_style_quantum_generator`` and ``04_training_latent_style_qgan``.

- :mod:`.generators`: :class:`QuantumGenerator`, :class:`ClassicalGenerator`, noise, rebuilding from a config;
- :mod:`.vae`: the convolutional VAE with latents in [-1, 1], and its training;
- :mod:`.vae_tuning`: the VAE's diagnostics, the beta / latent-size sweep and the tuning study;
- :mod:`.critic`: the WGAN critic with a width knob;
- :mod:`.stacked`: S generators or critics of one shape as one model with a member axis (ensembles);
- :mod:`.files`: saved models (atomic directories of ``config.json`` + Keras weights).
"""
from __future__ import annotations

from qgan_widgets.models.generators import (
    QuantumGenerator, ClassicalGenerator, build_generator, sample_noise, classical_count_parameters,
    classical_hidden_for_budget,
)
from qgan_widgets.models.vae import VAE, VAEError, train_vae, texture_statistics, TUNED_VAE
from qgan_widgets.models.vae_tuning import COLLAPSE_KL, SATURATION_LEVEL, vae_diagnostics, beta_sweep, tuning_study
from qgan_widgets.models.critic import Critic, critic_count_parameters
from qgan_widgets.models.stacked import StackedCritic, StackedQuantumGenerator, StackedClassicalGenerator, stack_models

__all__ = [
    "QuantumGenerator", "ClassicalGenerator", "build_generator", "sample_noise",
    "classical_count_parameters", "classical_hidden_for_budget", "VAE", "VAEError", "train_vae",
    "texture_statistics", "TUNED_VAE", "COLLAPSE_KL", "SATURATION_LEVEL", "vae_diagnostics", "beta_sweep", "tuning_study", "Critic", "critic_count_parameters",
    "StackedCritic", "StackedQuantumGenerator", "StackedClassicalGenerator", "stack_models",
]
