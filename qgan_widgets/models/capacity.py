"""Parameter counts of the classical models without building them (no TensorFlow: the dashboard shows
its counts before anything is trained).

- :func:`critic_count_parameters`: the WGAN critic (:class:`qgan_widgets.models.critic.Critic`);
- :func:`classical_count_parameters`, :func:`classical_hidden_for_budget`: the classical generator
  (:class:`qgan_widgets.models.generators.ClassicalGenerator`) and its width for a parameter budget.

The quantum generator's count is :func:`qgan_widgets.quantum.count_parameters`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from qgan_widgets.quantum.backends import GeneratorError
from qgan_widgets.quantum.circuits import check_size

__all__ = ["critic_count_parameters", "classical_count_parameters", "classical_hidden_for_budget"]


def critic_count_parameters(latent_dim: int, width: int, depth: int = 2) -> int:
    """Trainable parameters of ``Critic(latent_dim, width, depth)``, without building it.

    ``latent_dim*width + width`` (first layer) ``+ (depth-1)*(width*width + width)`` (hidden
    layers) ``+ width + 1`` (output). E.g. latent_dim 4, width 32, depth 2: 160 + 1056 + 33 = 1249.
    """
    d = check_size("latent_dim", latent_dim)
    w = check_size("width", width)
    n = check_size("depth", depth)
    return d * w + w + (n - 1) * (w * w + w) + w + 1


def _check_hidden(hidden) -> tuple[int, ...]:
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise GeneratorError(f"hidden must be a sequence of layer widths, e.g. (32, 32); got {hidden!r}") from None
    return tuple(check_size("hidden layer width", h) for h in hidden)


def classical_count_parameters(noise_dim: int, latent_dim: int, hidden: Sequence[int] = (32, 32)) -> int:
    """Weights and biases of :class:`ClassicalGenerator`, without building it."""
    widths = [check_size("noise_dim", noise_dim), *_check_hidden(hidden), check_size("latent_dim", latent_dim)]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


def classical_hidden_for_budget(noise_dim: int, latent_dim: int, target_params: int, depth: int = 2) -> tuple[int, ...]:
    """Hidden widths ``(h,) * depth`` whose parameter count is closest to ``target_params``.

    Use it to give a classical generator about the capacity of a quantum one, e.g.
    ``classical_hidden_for_budget(4, 4, QuantumGenerator(4, 2).count_parameters())``.
    Ties go to the smaller width; ``depth=0`` gives ``()`` (a single tanh layer).
    """
    target = check_size("target_params", target_params)
    depth = check_size("depth", depth, minimum=0)
    if depth == 0:
        return ()

    def count(h):
        return classical_count_parameters(noise_dim, latent_dim, (h,) * depth)

    lo, hi = 1, 1
    while count(hi) < target:
        hi *= 2
    while lo < hi:  # smallest width whose count reaches the target
        mid = (lo + hi) // 2
        if count(mid) < target:
            lo = mid + 1
        else:
            hi = mid
    best = min((h for h in (lo - 1, lo) if h >= 1), key=lambda h: (abs(count(h) - target), h))
    return (best,) * depth
