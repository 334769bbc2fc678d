"""The statevector backend is exact: values against cirq.Simulator, gradients against TFQ's adjoint
and finite differences, per-sample independence, tf.function/GradientTape use, clear errors.

Compiling an XLA program costs about a second per configuration, so the exhaustive small-size
checks run the same graph without XLA (``jit_compile=False``); the XLA path is checked on every
code path it has (block-diagonal steps up to 12 qubits, general 4x4 steps, no steps at all).
"""
from __future__ import annotations

import numpy as np
import pytest

from qgan_widgets._tf import tf  # noqa: I001  (TensorFlow before TFQ)
import cirq
import tensorflow_quantum as tfq

from qgan_widgets.quantum import statevector as sv
from qgan_widgets.quantum import ENTANGLERS, READOUTS, readout_observables, style_circuit
from qgan_widgets.quantum import MemoryLimitError, StateVectorBackend, StateVectorError

SMALL = {"none": [(1, 1), (3, 2)], "cry-ring": [(1, 2), (2, 2), (4, 2)], "cry-pairs": [(3, 1), (3, 2)],
         "cz-ring": [(2, 1), (4, 2)]}


def _angles(style, batch, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(-np.pi, np.pi, (batch, style.num_gates)).astype(np.float32)


def _cirq_values(style, observables, theta):
    sim = cirq.Simulator(dtype=np.complex128)
    return np.array(
        [np.real(sim.simulate_expectation_values(style.resolve(t), observables)) for t in theta]
    )


def _value_and_grad(backend, theta, weights):
    theta = tf.constant(theta)
    with tf.GradientTape() as tape:
        tape.watch(theta)
        values = backend(theta)
        loss = tf.reduce_sum(values * weights)
    return values.numpy(), tape.gradient(loss, theta).numpy()


def _tfq_value_and_grad(style, observables, theta, weights):
    layer = tfq.layers.Expectation(differentiator=tfq.differentiators.Adjoint())
    batch = theta.shape[0]
    theta = tf.constant(theta)
    with tf.GradientTape() as tape:
        tape.watch(theta)
        values = layer(
            tfq.convert_to_tensor([style.circuit] * batch), symbol_names=style.symbol_names,
            symbol_values=theta, operators=tfq.convert_to_tensor([observables] * batch),
        )
        loss = tf.reduce_sum(values * weights)
    return values.numpy(), tape.gradient(loss, theta).numpy()


@pytest.mark.parametrize("entangler", ENTANGLERS)
@pytest.mark.parametrize("readout", READOUTS)
def test_values_and_gradients_exact_small(entangler, readout):
    """Every entangler and readout: values = cirq.Simulator to 1e-5, gradients = TFQ adjoint to 1e-4."""
    for seed, (n, layers) in enumerate(SMALL[entangler]):
        style = style_circuit(n, layers, entangler)
        obs = readout_observables(style.qubits, readout)
        backend = StateVectorBackend(style, obs, jit_compile=False)
        theta = _angles(style, 3, seed)
        weights = np.random.default_rng(seed + 100).uniform(0.5, 1.0, (3, len(obs))).astype(np.float32)
        values, grads = _value_and_grad(backend, theta, weights)
        assert values.shape == (3, len(obs)) and values.dtype == np.float32
        np.testing.assert_allclose(values, _cirq_values(style, obs, theta), atol=1e-5, err_msg=f"{n}x{layers}")
        _, tfq_grads = _tfq_value_and_grad(style, obs, theta, weights)
        np.testing.assert_allclose(grads, tfq_grads, atol=1e-4, err_msg=f"{n}x{layers}")


@pytest.mark.parametrize(
    "entangler, n, layers, readout",
    [("cry-ring", 12, 2, "xz"), ("cz-ring", 12, 1, "z"), ("none", 12, 2, "xz"), ("cry-pairs", 3, 2, "xz"),
     ("cry-ring", 5, 2, "z")],
)
def test_xla_path_exact(entangler, n, layers, readout):
    """The default (XLA) programs, up to 12 qubits: values to 1e-5, gradients to TFQ's adjoint to 1e-4."""
    style = style_circuit(n, layers, entangler)
    obs = readout_observables(style.qubits, readout)
    backend = StateVectorBackend(style, obs)
    assert backend.jit_compile is True and backend.name == "statevector" and backend.differentiable
    theta = _angles(style, 2, n + layers)
    weights = np.ones((2, len(obs)), np.float32)
    values, grads = _value_and_grad(backend, theta, weights)
    np.testing.assert_allclose(values, _cirq_values(style, obs, theta), atol=1e-5)
    _, tfq_grads = _tfq_value_and_grad(style, obs, theta, weights)
    np.testing.assert_allclose(grads, tfq_grads, atol=1e-4)


@pytest.mark.parametrize("entangler, n", [("cry-ring", 2), ("cry-pairs", 3), ("cz-ring", 3)])
def test_gradient_matches_float64_finite_differences(entangler, n):
    """Central differences of cirq.Simulator in float64 (tiny circuits): much tighter than 1e-4."""
    style = style_circuit(n, 2, entangler)
    obs = readout_observables(style.qubits, "xz")
    theta = _angles(style, 1, 7)
    weights = np.random.default_rng(8).normal(size=(1, len(obs)))
    _, grads = _value_and_grad(StateVectorBackend(style, obs, jit_compile=False), theta, weights.astype(np.float32))
    sim = cirq.Simulator(dtype=np.complex128)

    def loss(t):
        return float(np.real(sim.simulate_expectation_values(style.resolve(t), obs)) @ weights[0])

    h = 1e-4
    base = theta[0].astype(np.float64)
    fd = np.array([(loss(base + h * e) - loss(base - h * e)) / (2 * h) for e in np.eye(style.num_gates)])
    np.testing.assert_allclose(grads[0], fd, atol=1e-5)


def test_samples_are_independent():
    """Sample i of a batch equals sample i run alone: no angle is shared across the batch."""
    style = style_circuit(4, 2)
    obs = readout_observables(style.qubits, "xz")
    backend = StateVectorBackend(style, obs)
    theta = _angles(style, 5, 3)
    batch_values, batch_grads = _value_and_grad(backend, theta, np.ones((5, len(obs)), np.float32))
    assert np.ptp(batch_values, axis=0).max() > 1e-2  # different angles give different outputs
    for i in range(5):
        alone, alone_grad = _value_and_grad(backend, theta[i : i + 1], np.ones((1, len(obs)), np.float32))
        np.testing.assert_allclose(batch_values[i], alone[0], atol=2e-6)
        np.testing.assert_allclose(batch_grads[i], alone_grad[0], atol=2e-5)


def test_xla_and_plain_graph_agree_and_tf_function_works():
    style = style_circuit(3, 2)
    obs = readout_observables(style.qubits, "z")
    theta = tf.constant(_angles(style, 4, 11))
    results = []
    for jit in (True, False):
        backend = StateVectorBackend(style, obs, jit_compile=jit)

        @tf.function
        def step(t, backend=backend):
            with tf.GradientTape() as tape:
                tape.watch(t)
                loss = tf.reduce_sum(backend(t) ** 2)
            return loss, tape.gradient(loss, t)

        results.append([x.numpy() for x in step(theta)])
        eager = _value_and_grad(backend, theta.numpy(), 2 * backend(theta).numpy())[1]
        np.testing.assert_allclose(results[-1][1], eager, atol=1e-5)
    np.testing.assert_allclose(results[0][0], results[1][0], atol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], atol=1e-5)


def test_trains_through_keras_variables():
    """Gradients reach variables that produce theta (the generator's use)."""
    style = style_circuit(2, 1)
    backend = StateVectorBackend(style, readout_observables(style.qubits, "z"))
    w = tf.Variable(tf.fill((1, style.num_gates), 0.3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(backend(w * tf.ones((4, 1))))
    grad = tape.gradient(loss, w)
    assert grad is not None and np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).sum() > 0


def test_plan_fuses_rotations_and_folds_final_layer():
    """A cry-ring layer is n window steps (fused RY RZ RY RZ + CRY each); the final RY layer is read out."""
    for n, layers in [(3, 1), (5, 2), (8, 4)]:
        plan = sv.compile_plan(style_circuit(n, layers))
        assert not plan.general
        assert plan.num_steps == n * layers + 1
        assert all(len(tail) >= 1 for tail in plan.tails)
        assert sum(len(s) for s in plan.steps) + sum(len(t) for t in plan.tails) == len(plan.ops)
    assert sv.compile_plan(style_circuit(4, 3, "none")).num_steps == 0
    assert sv.compile_plan(style_circuit(3, 2, "cry-pairs")).general


def test_memory_estimate_and_refusal(monkeypatch):
    assert sv.memory_bytes(13, 64) - sv.memory_bytes(12, 64) == pytest.approx(
        sv.STATE_COPIES * 8 * 2**12 * 64, rel=0.01)
    assert sv.memory_bytes(10, 256) > 1.9 * sv.memory_bytes(10, 128) - (64 << 20) * 2
    style = style_circuit(4, 1)
    backend = StateVectorBackend(style, readout_observables(style.qubits))
    monkeypatch.setattr(sv, "available_memory_bytes", lambda: 1000)
    with pytest.raises(MemoryLimitError, match=r"4 qubits at batch 8 need about .* GiB .* only 0.00 GiB"):
        backend(np.zeros((8, style.num_gates), np.float32))


def test_flops_per_step_counts_the_work():
    small, big = style_circuit(9, 2), style_circuit(10, 2)
    f = sv.flops_per_step(small, 128, 9)
    assert f > 0
    assert 1.8 < sv.flops_per_step(big, 128, 10) / f < 3.0  # twice the amplitudes, a few more steps
    assert sv.flops_per_step(small, 256, 9) == pytest.approx(2 * f, rel=1e-6)


def test_clear_errors():
    style = style_circuit(3, 1)
    q = style.qubits
    with pytest.raises(StateVectorError, match="acts on 2 qubits"):
        StateVectorBackend(style, [cirq.Z(q[0]) * cirq.Z(q[1])])
    with pytest.raises(StateVectorError, match="coefficient"):
        StateVectorBackend(style, [2.0 * cirq.Z(q[0])])
    with pytest.raises(StateVectorError, match="not one of the circuit's qubits"):
        StateVectorBackend(style, [cirq.Z(cirq.LineQubit(7))])
    with pytest.raises(StateVectorError, match="PauliString"):
        StateVectorBackend(style, ["Z0"])
    with pytest.raises(StateVectorError, match="at least one"):
        StateVectorBackend(style, [])
    with pytest.raises(StateVectorError, match="jit_compile"):
        StateVectorBackend(style, readout_observables(q), jit_compile="yes")
    with pytest.raises(StateVectorError, match="steps_per_iteration"):
        StateVectorBackend(style, readout_observables(q), steps_per_iteration=0)
    with pytest.raises(StateVectorError, match="StyleCircuit"):
        StateVectorBackend(style.circuit, readout_observables(q))
    backend = StateVectorBackend(style, readout_observables(q))
    with pytest.raises(StateVectorError, match=rf"shape \(batch, {style.num_gates}\)"):
        backend(np.zeros((2, style.num_gates + 1), np.float32))
    with pytest.raises(StateVectorError, match="dtype"):
        backend(tf.zeros((2, style.num_gates), tf.complex64))
    assert issubclass(StateVectorError, ValueError)


def test_unsupported_circuit_is_refused():
    import dataclasses

    style = style_circuit(3, 1)
    with_h = dataclasses.replace(style, circuit=style.circuit + cirq.H(style.qubits[0]))
    with pytest.raises(StateVectorError, match="unsupported operation"):
        StateVectorBackend(with_h, readout_observables(style.qubits))
    far = style_circuit(4, 1, "cz-ring")
    far = dataclasses.replace(far, circuit=far.circuit + cirq.CZ(far.qubits[0], far.qubits[2]))
    with pytest.raises(StateVectorError, match="neighbours"):
        StateVectorBackend(far, readout_observables(far.qubits))
