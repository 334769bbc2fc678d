"""Barren plateaus (notebook 03): the gradient variance of <Z_0> against the qubit count."""
from __future__ import annotations

import math

import numpy as np
import pytest

import qgan_widgets as qw
from qgan_widgets.quantum import plateaus


def test_full_range_angles_flatten_with_qubits_and_small_angles_do_not():
    rows = qw.quantum.gradient_variance(qubits=(2, 4, 6), n_samples=128, seed=0)
    var = {(r["num_qubits"], r["init"]): r["variance"] for r in rows}
    assert var[(6, "full")] < 0.4 * var[(2, "full")]          # a plateau forms at full-range angles
    assert var[(6, "small")] > 3 * var[(6, "full")]           # the small start keeps its gradients
    assert qw.quantum.decay_per_qubit(rows, "full") < 0.85 < qw.quantum.decay_per_qubit(rows, "small")
    assert {r["num_layers"] for r in rows if r["num_qubits"] == 4} == {4} and rows[0]["n_samples"] == 128


def test_the_gradient_is_the_true_derivative_of_z0():
    """The batched adjoint gradient of one row equals a central finite difference through Cirq."""
    import cirq

    style = qw.quantum.style_circuit(3, 3)
    theta = plateaus.random_angles(style, 1, "full", 0.15, np.random.default_rng(1))[0].astype(np.float64)

    def z0(angles):
        state = cirq.Simulator(dtype=np.complex128).simulate(style.resolve(angles)).final_state_vector
        return float(np.real(cirq.Z(style.qubits[0]).expectation_from_state_vector(
            state, {q: i for i, q in enumerate(style.qubits)})))

    eps = 1e-4
    bump = np.zeros_like(theta)
    bump[0] = eps
    fd = (z0(theta + bump) - z0(theta - bump)) / (2 * eps)
    from qgan_widgets._tf import tf

    backend = qw.quantum.make_backend("statevector", style, qw.quantum.readout_observables(style.qubits)[:1])
    t = tf.Variable(theta[None].astype(np.float32))
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(backend(t))
    assert tape.gradient(out, t).numpy()[0, 0] == pytest.approx(fd, abs=1e-3)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="init must be one of small, full"):
        plateaus.random_angles(qw.quantum.style_circuit(2, 1), 4, "wide", 0.15, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_samples"):
        qw.quantum.gradient_variance(qubits=(2,), n_samples=1)
    with pytest.raises(ValueError, match="at least two qubit counts"):
        qw.quantum.decay_per_qubit([{"num_qubits": 2, "init": "full", "variance": 1.0}], "full")
    assert math.isfinite(plateaus.decay_per_qubit(
        [{"num_qubits": 2, "init": "full", "variance": 1.0}, {"num_qubits": 3, "init": "full", "variance": 0.5}],
        "full"))
