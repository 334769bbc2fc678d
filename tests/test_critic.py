"""The WGAN critic: parameter counts, architecture, seeding, configs and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

import qgan_widgets  # noqa: F401  (Keras guard first)
from qgan_widgets._tf import keras, tf
from qgan_widgets.models.critic import LEAKY_SLOPE
from qgan_widgets.models import Critic, critic_count_parameters


@pytest.mark.parametrize("latent_dim,width,depth", [(4, 32, 2), (2, 8, 1), (8, 64, 3), (1, 1, 1), (6, 16, 4)])
def test_parameter_count_matches_the_built_model(latent_dim, width, depth):
    critic = Critic(latent_dim, width, depth, seed=0)
    built = sum(int(np.prod(v.shape)) for v in critic.trainable_variables)
    expected = latent_dim * width + width + (depth - 1) * (width * width + width) + width + 1
    assert critic_count_parameters(latent_dim, width, depth) == expected
    assert critic.count_parameters() == built == expected


def test_known_count():
    assert critic_count_parameters(4, 32) == 160 + 1056 + 33 == 1249


def test_architecture_leaky_relu_linear_output_no_batchnorm():
    critic = Critic(3, 5, depth=2, seed=1)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in critic.submodules)
    z = tf.constant(np.random.default_rng(0).uniform(-1, 1, (16, 3)), tf.float32)
    out = critic(z).numpy()
    assert out.shape == (16, 1) and out.dtype == np.float32
    # Reproduce the forward pass by hand: Dense -> LeakyReLU(0.2) twice, then a linear Dense.
    h = z.numpy()
    for layer in critic.hidden:
        k, b = (w.numpy() for w in layer.weights)
        h = h @ k + b
        h = np.where(h > 0, h, LEAKY_SLOPE * h)
    k, b = (w.numpy() for w in critic.out.weights)
    np.testing.assert_allclose(out, h @ k + b, rtol=1e-5, atol=1e-6)
    # A linear output: scores are unbounded (scale the last layer and the scores scale with it).
    critic.out.kernel.assign(critic.out.kernel * 1000.0)
    assert np.abs(critic(z).numpy()).max() > 10 * np.abs(out).max()


def test_seeded_weights_and_config_round_trip():
    a, b, c = Critic(4, 8, seed=7), Critic(4, 8, seed=7), Critic(4, 8, seed=8)
    for va, vb in zip(a.trainable_variables, b.trainable_variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert not np.array_equal(a.trainable_variables[0].numpy(), c.trainable_variables[0].numpy())
    cfg = a.config()
    assert cfg == {"latent_dim": 4, "width": 8, "depth": 2, "seed": 7}
    rebuilt = Critic(**cfg)
    np.testing.assert_array_equal(rebuilt.trainable_variables[0].numpy(), a.trainable_variables[0].numpy())
    assert "params=" in repr(a)


@pytest.mark.parametrize("kwargs,match", [
    ({"latent_dim": 0, "width": 8}, "latent_dim"),
    ({"latent_dim": 4, "width": 2.5}, "width"),
    ({"latent_dim": 4, "width": 8.0}, "write 8"),
    ({"latent_dim": 4, "width": 8, "depth": 0}, "depth"),
    ({"latent_dim": 4, "width": 8, "seed": -1}, "seed"),
    ({"latent_dim": "4", "width": 8}, "latent_dim"),
])
def test_bad_sizes_are_rejected_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Critic(**kwargs)
    if "seed" not in kwargs:
        with pytest.raises(ValueError, match=match):
            critic_count_parameters(**kwargs)
