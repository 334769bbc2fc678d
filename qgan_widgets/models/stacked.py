"""Stacked models: S generators or S critics of one shape as one model with a leading member axis.

An ensemble trains S independent GANs (their own seeds, weights, noise and optimiser state) in one
program (:mod:`qgan_widgets.training.ensemble`). Its models are these: every weight of the S members
is stacked into one variable whose first axis is the member, and a call maps ``(S, B, in)`` to
``(S, B, out)``, member ``s`` computed with member ``s``'s weights only::

    critics = [Critic(4, 64, seed=s + 1) for s in range(5)]
    stacked = stack_models(critics)          # StackedCritic: kernels (5, 4, 64), (5, 64, 64), (5, 64, 1)
    scores = stacked(z)                      # z (5, B, 4) -> (5, B, 1)
    stacked.copy_member_to(2, critics[2])    # member 2's trained weights back into a plain Critic

- critics and classical generators: batched matrix products (one op for all members);
- quantum generators: each member's angles ``w_s * xi + b_s`` for its own noise rows, all members'
  rows handed to the simulator backend as one batch of ``S x B`` circuits (the backends already take
  one angle vector per row), so the simulation of every member is one program.

Members start from the weights of the plain models they are stacked from (built with their seeds),
so member ``s`` computes what model ``s`` computes; only float rounding can differ where a batched
product sums in another order.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from qgan_widgets._tf import keras, tf
from qgan_widgets.models.critic import LEAKY_SLOPE, Critic
from qgan_widgets.models.generators import ClassicalGenerator, GeneratorError, QuantumGenerator

__all__ = ["StackedCritic", "StackedQuantumGenerator", "StackedClassicalGenerator", "stack_models"]


def _same_shapes(models: Sequence, what: str, key) -> None:
    if not models:
        raise ValueError(f"stack_models: no {what} to stack")
    first = key(models[0])
    for i, m in enumerate(models[1:], 1):
        if key(m) != first:
            raise ValueError(f"stack_models: {what} {i} has another shape than {what} 0 ({key(m)} vs {first}); "
                             f"an ensemble stacks models of one shape (members differ only in seed)")


class _Stacked(tf.Module):
    """Stacked variables, one per weight of the members' ``trainable_variables`` (same order)."""

    def __init__(self, models: Sequence, name: str):
        super().__init__(name=name)
        self.size = len(models)
        per_member = [[v.numpy() for v in m.trainable_variables] for m in models]
        self.weights = [tf.Variable(np.stack([w[i] for w in per_member]), name=f"{name}_{i}")
                        for i in range(len(per_member[0]))]

    @property
    def trainable_variables(self):
        return list(self.weights)

    def member_weights(self, s: int) -> list[np.ndarray]:
        """Member ``s``'s weights, in the order of a plain model's ``trainable_variables``."""
        if not 0 <= s < self.size:
            raise IndexError(f"member {s} of an ensemble of {self.size}")
        return [v[s].numpy() for v in self.weights]

    def copy_member_to(self, s: int, model) -> None:
        """Write member ``s``'s weights into a plain model of the same shape (e.g. for decoding or saving)."""
        for var, w in zip(model.trainable_variables, self.member_weights(s), strict=True):
            var.assign(w)

    def count_parameters(self) -> int:
        """Trainable scalars of one member."""
        return int(sum(int(np.prod(v.shape[1:])) for v in self.weights))


class StackedCritic(_Stacked):
    """S :class:`~qgan_widgets.models.critic.Critic` of one shape: ``(S, B, latent_dim) -> (S, B, 1)``."""

    def __init__(self, critics: Sequence[Critic]):
        _same_shapes(critics, "critic", lambda c: (c.latent_dim, c.width, c.depth))
        super().__init__(critics, "stacked_critic")
        self.latent_dim, self.width, self.depth = critics[0].latent_dim, critics[0].width, critics[0].depth

    def __call__(self, z, training=None):
        h = tf.convert_to_tensor(z, dtype=tf.float32)
        pairs = list(zip(self.weights[0::2], self.weights[1::2]))
        for kernel, bias in pairs[:-1]:
            h = tf.nn.leaky_relu(tf.matmul(h, kernel) + bias[:, tf.newaxis, :], alpha=LEAKY_SLOPE)
        kernel, bias = pairs[-1]
        return tf.matmul(h, kernel) + bias[:, tf.newaxis, :]


class StackedClassicalGenerator(_Stacked):
    """S :class:`~qgan_widgets.models.generators.ClassicalGenerator` of one shape:
    noise ``(S, B, noise_dim) -> (S, B, latent_dim)``."""

    kind = "classical"

    def __init__(self, generators: Sequence[ClassicalGenerator]):
        _same_shapes(generators, "generator",
                     lambda g: (g.noise_dim, g.latent_dim, g.hidden, g.config()["activation"]))
        super().__init__(generators, "stacked_classical_generator")
        g = generators[0]
        self.noise_dim, self.latent_dim = g.noise_dim, g.latent_dim
        activation = g.config()["activation"]  # as ClassicalGenerator resolves it
        self._activation = tf.nn.leaky_relu if activation == "leaky_relu" else keras.activations.get(activation)

    def __call__(self, noise, training=None):
        h = tf.convert_to_tensor(noise, dtype=tf.float32)
        pairs = list(zip(self.weights[0::2], self.weights[1::2]))
        for kernel, bias in pairs[:-1]:
            h = self._activation(tf.matmul(h, kernel) + bias[:, tf.newaxis, :])
        kernel, bias = pairs[-1]
        return tf.tanh(tf.matmul(h, kernel) + bias[:, tf.newaxis, :])


class StackedQuantumGenerator(_Stacked):
    """S :class:`~qgan_widgets.models.generators.QuantumGenerator` of one circuit (qubits, layers,
    entangler, readout, backend): noise ``(S, B, noise_dim) -> (S, B, latent_dim)``, all ``S x B``
    circuits simulated as one batch by the first member's backend."""

    kind = "quantum"

    def __init__(self, generators: Sequence[QuantumGenerator]):
        def shape(g):
            c = dict(g.config())
            c.pop("seed", None)
            c.pop("init_scale", None)
            return tuple(sorted((k, str(v)) for k, v in c.items()))

        _same_shapes(generators, "generator", shape)
        g = generators[0]
        if not g.differentiable:
            raise GeneratorError(f"an ensemble trains its generators: the {g.backend_name!r} backend has no gradient")
        super().__init__(generators, "stacked_quantum_generator")
        self.noise_dim, self.latent_dim = g.noise_dim, g.latent_dim
        self._first = g  # its backend and memory check serve all members
        self._noise_index = g._noise_index

    def __call__(self, noise, training=None):
        noise = tf.convert_to_tensor(noise, dtype=tf.float32)
        S, B = self.size, tf.shape(noise)[1]
        if noise.shape[1] is not None:
            self._first._check_memory(int(noise.shape[1]) * self.size)
        w, b = self.weights
        xi = tf.gather(noise, self._noise_index, axis=2)  # (S, B, num_gates)
        theta = xi * w[:, tf.newaxis, :] + b[:, tf.newaxis, :]
        values = self._first.backend(tf.reshape(theta, [S * B, -1]))
        values = tf.reshape(tf.cast(values, tf.float32), [S, B, self.latent_dim])
        return tf.clip_by_value(values, -1.0, 1.0)


def stack_models(models: Sequence):
    """The stacked model of a list of critics or generators of one kind and shape."""
    models = list(models)
    if models and all(isinstance(m, Critic) for m in models):
        return StackedCritic(models)
    if models and all(isinstance(m, QuantumGenerator) for m in models):
        return StackedQuantumGenerator(models)
    if models and all(isinstance(m, ClassicalGenerator) for m in models):
        return StackedClassicalGenerator(models)
    kinds = sorted({type(m).__name__ for m in models})
    raise ValueError(f"stack_models: expected Critics, QuantumGenerators or ClassicalGenerators of one kind, "
                     f"got {', '.join(kinds) or 'nothing'}")
