"""The WGAN critic: a small MLP on latent vectors.

Taught in notebook ``04_training_latent_style_qgan``. The critic scores latent vectors ``(B, latent_dim)`` with a real
number (higher = "more real"); the WGAN-GP trainer (:mod:`qgan_widgets.training.trainer`) keeps it roughly
1-Lipschitz with a gradient penalty, which is why it has **no batch normalisation** (batch norm
couples the samples of a batch, and the penalty is defined per sample). Its layers::

    Dense(width) -> LeakyReLU(0.2)      x depth
    Dense(1)                            (linear output)

``width`` is the capacity knob of the capacity-scaling study (:mod:`qgan_widgets.study.runner`);
:func:`qgan_widgets.models.capacity.critic_count_parameters` gives the parameter count without
building a model.
"""
from __future__ import annotations

from qgan_widgets.quantum.circuits import check_size
from qgan_widgets._tf import keras, tf

__all__ = ["Critic", "LEAKY_SLOPE"]

LEAKY_SLOPE = 0.2
"""Negative slope of the LeakyReLU activations."""


class Critic(keras.Model):
    """WGAN critic: ``depth`` Dense(``width``) + LeakyReLU(0.2) layers and a linear Dense(1) output.

    Called on float32 latents ``(B, latent_dim)`` it returns ``(B, 1)`` float32 scores. Weights are
    built at construction (so :meth:`count_parameters` and checkpoints work at once) and are
    initialised reproducibly from ``seed`` (Glorot uniform kernels, zero biases).
    """

    def __init__(self, latent_dim: int, width: int, depth: int = 2, seed: int | None = None, **kwargs):
        latent_dim = check_size("latent_dim", latent_dim)
        width = check_size("width", width)
        depth = check_size("depth", depth)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        kwargs.setdefault("name", "critic")
        super().__init__(**kwargs)
        self.latent_dim, self.width, self.depth, self.seed = latent_dim, width, depth, seed

        def init(i: int):
            return keras.initializers.GlorotUniform(seed=None if seed is None else seed * 1009 + i)

        self.hidden = [
            keras.layers.Dense(width, kernel_initializer=init(i), name=f"dense_{i}") for i in range(depth)
        ]
        self.act = keras.layers.LeakyReLU(alpha=LEAKY_SLOPE)
        self.out = keras.layers.Dense(1, kernel_initializer=init(depth), name="score")
        self.build((None, latent_dim))

    def call(self, z, training=None):
        h = tf.convert_to_tensor(z, dtype=tf.float32)
        for layer in self.hidden:
            h = self.act(layer(h))
        return self.out(h)

    @property
    def xla_compatible(self) -> bool:
        """Dense layers only: a training step calling this critic can be compiled by XLA."""
        return True

    def count_parameters(self) -> int:
        """Number of trainable scalars (equals :func:`qgan_widgets.models.capacity.critic_count_parameters`)."""
        return int(sum(int(tf.size(v)) for v in self.trainable_variables))

    def config(self) -> dict:
        """JSON-able dict from which ``Critic(**config)`` rebuilds the same architecture."""
        return {"latent_dim": self.latent_dim, "width": self.width, "depth": self.depth, "seed": self.seed}

    def get_config(self) -> dict:  # Keras serialisation hook
        return self.config()

    def __repr__(self) -> str:
        return (f"Critic(latent_dim={self.latent_dim}, width={self.width}, depth={self.depth}, "
                f"params={self.count_parameters()})")
