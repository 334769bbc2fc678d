"""Models: the generators (quantum and classical), the VAE and the critic.

Imports :mod:`qgan_widgets.data` and :mod:`qgan_widgets.quantum`. Taught in notebooks
``02_vae_latent_space`` (VAE), ``03_style_quantum_generator`` and ``04_training_latent_style_qgan``.

- :mod:`.generators`: :class:`QuantumGenerator`, :class:`ClassicalGenerator`, noise, rebuilding from a config;
- :mod:`.vae`: the convolutional VAE with latents in [-1, 1], and its training;
- :mod:`.vae_tuning`: the VAE's diagnostics, the beta / latent-size sweep and the tuning study;
- :mod:`.critic`: the WGAN critic with a width knob;
- :mod:`.capacity`: parameter counts of the critic and the classical generator, without building them;
- :mod:`.stacked`: S generators or critics of one shape as one model with a member axis (ensembles);
- :mod:`.files`: saved models (atomic directories of ``config.json`` + Keras weights).
"""
from __future__ import annotations

from qgan_widgets import lazy_face
from qgan_widgets.models.capacity import critic_count_parameters, classical_count_parameters, classical_hidden_for_budget

# the models themselves import TensorFlow: each loads on first use (the counts above do not need it)
__getattr__, __dir__ = lazy_face(__name__, {
    **dict.fromkeys(["QuantumGenerator", "ClassicalGenerator", "build_generator", "sample_noise"], "generators"),
    **dict.fromkeys(["VAE", "VAEError", "train_vae", "texture_statistics", "TUNED_VAE"], "vae"),
    **dict.fromkeys(["COLLAPSE_KL", "SATURATION_LEVEL", "vae_diagnostics", "beta_sweep", "tuning_study"], "vae_tuning"),
    "Critic": "critic",
    **dict.fromkeys(["StackedCritic", "StackedQuantumGenerator", "StackedClassicalGenerator", "stack_models"], "stacked"),
})

__all__ = [
    "QuantumGenerator", "ClassicalGenerator", "build_generator", "sample_noise",
    "classical_count_parameters", "classical_hidden_for_budget", "VAE", "VAEError", "train_vae",
    "texture_statistics", "TUNED_VAE", "COLLAPSE_KL", "SATURATION_LEVEL", "vae_diagnostics", "beta_sweep", "tuning_study", "Critic", "critic_count_parameters",
    "StackedCritic", "StackedQuantumGenerator", "StackedClassicalGenerator", "stack_models",
]
