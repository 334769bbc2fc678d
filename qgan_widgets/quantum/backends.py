"""Simulator backends of the quantum generator: ``"tfq"``, ``"qsim"`` and ``"statevector"``.

Taught in notebook ``03_style_quantum_generator``. :func:`make_backend` builds one for a
:class:`~qgan_widgets.quantum.circuits.StyleCircuit` and its observables; ``backend(theta)`` maps float32
angles ``(B, num_gates)`` to float32 expectations ``(B, len(observables))`` (the "Simulator backend
contract" of ``docs/DESIGN.md``):

``"tfq"``
    TensorFlow Quantum's ``Expectation`` layer on its C++ qsim simulator with adjoint gradients.
    The symbolic circuit and the observables are converted to tensors once; each call only feeds
    angles as symbol values. Works inside ``tf.function``. The reference backend.
``"qsim"``
    qsimcirq's simulator, sample by sample: exact expectations, or with ``shots=N`` estimates from
    N measurements per sample (and an optional depolarising ``noise`` strength), to show what
    hardware would return. It has no gradient: training with it raises
    :class:`NotDifferentiableError`.
``"statevector"``
    the fast exact batched state-vector backend of :mod:`qgan_widgets.quantum.statevector`.

Also the errors the generators share (:class:`GeneratorError` and its kinds) and the memory probe.
The public names are handed on by :mod:`qgan_widgets.quantum` (``qw.quantum.make_backend``).
"""
from __future__ import annotations

import math
from typing import Sequence

import cirq
import numpy as np

from qgan_widgets.quantum.circuits import StyleCircuit, check_size

__all__ = ["BACKENDS", "TRAINABLE_BACKENDS", "DEFAULT_BACKEND", "MEMORY_FACTOR", "GeneratorError", "NotDifferentiableError",
           "SimulationTooLargeError", "available_memory", "TFQBackend", "QSimBackend", "make_backend"]

BACKENDS = ("tfq", "qsim", "statevector")
TRAINABLE_BACKENDS = ("statevector", "tfq")
"""The backends with gradients (``qsim`` samples and adds noise for scoring; it cannot train)."""
DEFAULT_BACKEND = "statevector"
"""The backend a ``QuantumGenerator`` uses unless told otherwise (the dashboard and sweeps inherit it).

``"statevector"`` (exact, checked against ``cirq.Simulator`` and TFQ's adjoint gradients in the
tests) measured 3-40x faster than TFQ per generator step (forward + gradient, batch 128, 2 cores,
3 to 12 qubits; ``python -m qgan_widgets bench generator``, benchmarks/README.md);
``backend="tfq"`` gives TensorFlow Quantum's qsim, the reference."""

MEMORY_FACTOR = 4
"""Generic memory estimate: ``2**n * batch * 8`` bytes (complex64 states) times this factor."""


class GeneratorError(ValueError):
    """A generator or backend was asked for something it cannot do; the message says what and why."""

    ag_pass_through = True  # raised inside tf.function: reach the caller as is, not as a StagingError


class NotDifferentiableError(GeneratorError):
    """A gradient was requested through a backend that has none (``"qsim"``)."""


class SimulationTooLargeError(GeneratorError, MemoryError):
    """The state vectors for this many qubits and this batch would not fit in memory."""


def _tf():
    """TensorFlow, imported when a backend is built or called (this module is imported without it: the
    dashboard reads :data:`DEFAULT_BACKEND` before anything trains)."""
    from qgan_widgets._tf import tf

    return tf


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB"


def available_memory() -> int:
    """Bytes of memory available to this process now (``psutil.virtual_memory().available``)."""
    import psutil

    return int(psutil.virtual_memory().available)




class TFQBackend:
    """TFQ ``Expectation`` (qsim C++) with adjoint gradients, for one :class:`StyleCircuit`.

    ``backend(theta)`` maps angles ``(B, num_gates)`` to ``(B, len(observables))`` expectations.
    The circuit and observables are serialised once here; a call only tiles them to the batch and
    feeds ``theta`` as symbol values.
    """

    name = "tfq"
    differentiable = True

    def __init__(self, style: StyleCircuit, observables: Sequence[cirq.PauliString]):
        tf = _tf()  # first: qgan_widgets' Keras guard and quiet import, then TFQ
        import tensorflow_quantum as tfq

        self.style = style
        self.num_observables = len(observables)
        self._layer = tfq.layers.Expectation(differentiator=tfq.differentiators.Adjoint())
        self._circuit = tfq.convert_to_tensor([style.circuit])  # (1,) serialised circuit
        self._operators = tfq.convert_to_tensor([list(observables)])  # (1, n_obs)
        self._symbols = tf.constant(style.symbol_names)

    def memory_bytes(self, batch: int) -> int:
        """Rough peak: TFQ simulates the batch's circuits in parallel, a few states each."""
        return 2**self.style.num_qubits * 8 * MEMORY_FACTOR * int(batch)

    def __call__(self, theta):
        tf = _tf()
        theta = tf.convert_to_tensor(theta, tf.float32)
        batch = tf.shape(theta)[0]
        values = self._layer(
            tf.tile(self._circuit, [batch]),
            symbol_names=self._symbols,
            symbol_values=theta,
            operators=tf.tile(self._operators, [batch, 1]),
        )
        return tf.reshape(values, [-1, self.num_observables])


def _measurement_groups(observables: Sequence[cirq.PauliString]) -> list[tuple[dict, list[int]]]:
    """Group observables measurable together (same Pauli on every shared qubit).

    Returns ``[(basis {qubit: pauli}, [observable indices]), ...]``.
    """
    groups: list[tuple[dict, list[int]]] = []
    for i, obs in enumerate(observables):
        paulis = dict(obs.items())
        for basis, members in groups:
            if all(basis.get(q, p) == p for q, p in paulis.items()):
                basis.update(paulis)
                members.append(i)
                break
        else:
            groups.append((dict(paulis), [i]))
    return groups


class QSimBackend:
    """qsimcirq, one resolved circuit per sample: exact, or ``shots`` measurements per sample.

    Options: ``shots`` (None: exact expectation values; N: the mean of N measured eigenvalues per
    observable and sample, one measurement setting per group of compatible observables, so with
    ``readout="xz"`` the X and the Z columns each use N shots), ``noise`` (depolarising
    probability after every moment, on every qubit; needs ``shots``; simulated by quantum
    trajectories), ``seed`` (the measurement and trajectory randomness), ``num_threads``.
    No gradient: ``differentiable`` is False and a gradient through it raises
    :class:`NotDifferentiableError`.
    """

    name = "qsim"
    differentiable = False

    def __init__(
        self,
        style: StyleCircuit,
        observables: Sequence[cirq.PauliString],
        shots: int | None = None,
        noise: float = 0.0,
        seed: int | None = None,
        num_threads: int | None = None,
    ):
        import qsimcirq

        self.style = style
        self.observables = list(observables)
        self.shots = None if shots is None else check_size("shots", shots)
        noise = float(noise)
        if not 0.0 <= noise <= 1.0 or math.isnan(noise):
            raise GeneratorError(f"noise is a depolarising probability in [0, 1], got {noise}")
        if noise > 0 and self.shots is None:
            raise GeneratorError(
                "the qsim backend simulates depolarising noise by sampling: give shots=N with noise"
            )
        self.noise = noise
        for obs in self.observables:
            if abs(np.imag(obs.coefficient)) > 1e-12:
                raise GeneratorError(f"observable {obs} has a complex coefficient; only Hermitian ones are allowed")
        options = {} if num_threads is None else {"t": check_size("num_threads", num_threads)}
        self._sim = qsimcirq.QSimSimulator(qsim_options=options, seed=seed)
        circuit = style.circuit.with_noise(cirq.depolarize(noise)) if noise > 0 else style.circuit
        self._programs = []
        if self.shots is not None:
            for basis, members in _measurement_groups(self.observables):
                change = []
                for q, p in basis.items():
                    if p == cirq.X:
                        change.append(cirq.H(q))
                    elif p == cirq.Y:
                        change += [(cirq.S**-1)(q), cirq.H(q)]
                program = circuit + cirq.Circuit(change) + cirq.measure(*style.qubits, key="m")
                self._programs.append((program, members))

    def memory_bytes(self, batch: int) -> int:
        """One circuit at a time: a few states, whatever the batch."""
        return 2**self.style.num_qubits * 8 * MEMORY_FACTOR

    def expectations(self, theta: np.ndarray) -> np.ndarray:
        """NumPy version of ``__call__``: (B, num_gates) angles -> (B, n_obs) float32."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1, self.style.num_gates)
        names = self.style.symbol_names
        params = [cirq.ParamResolver(dict(zip(names, row.tolist()))) for row in theta]
        if self.shots is None:
            values = self._sim.simulate_expectation_values_sweep(self.style.circuit, self.observables, params)
            return np.real(np.asarray(values)).astype(np.float32).reshape(len(params), len(self.observables))
        out = np.zeros((len(params), len(self.observables)), dtype=np.float64)
        index = {q: i for i, q in enumerate(self.style.qubits)}
        for program, members in self._programs:
            results = self._sim.run_sweep(program, params, repetitions=self.shots)
            for i, result in enumerate(results):
                signs = 1.0 - 2.0 * result.measurements["m"]  # (shots, n) eigenvalues +-1
                for m in members:
                    obs = self.observables[m]
                    cols = [index[q] for q in obs.qubits]
                    out[i, m] = np.real(obs.coefficient) * np.prod(signs[:, cols], axis=1).mean()
        return out.astype(np.float32)

    def __call__(self, theta):
        tf = _tf()
        theta = tf.convert_to_tensor(theta, tf.float32)
        n_obs = len(self.observables)

        @tf.custom_gradient
        def forward(t):
            values = tf.numpy_function(self.expectations, [t], tf.float32, stateful=True)
            values = tf.reshape(values, [-1, n_obs])

            @tf.autograph.experimental.do_not_convert
            def grad(upstream):
                raise NotDifferentiableError(
                    "the 'qsim' backend has no gradient (it simulates circuits one by one, exactly or "
                    "with shots, for inspection); train with backend='tfq' or backend='statevector'"
                )

            return values, grad

        return forward(theta)


def make_backend(name: str, style: StyleCircuit, observables: Sequence[cirq.PauliString], **options):
    """The simulator backend ``name`` (one of :data:`BACKENDS`) for ``style`` and ``observables``.

    ``backend(theta)`` maps float32 angles ``(B, num_gates)`` (gate order of ``style.gates``) to
    float32 expectations ``(B, len(observables))``; ``backend.differentiable`` and ``backend.name``
    describe it (see "Simulator backend contract" in ``docs/DESIGN.md``).
    """
    if not isinstance(style, StyleCircuit):
        raise GeneratorError(f"make_backend needs a StyleCircuit (from style_circuit), got {type(style).__name__}")
    observables = list(observables)
    if not observables:
        raise GeneratorError("make_backend needs at least one observable")
    if name == "tfq":
        if options:
            raise GeneratorError(f"the 'tfq' backend takes no options, got {sorted(options)}")
        return TFQBackend(style, observables)
    if name == "qsim":
        allowed = {"shots", "noise", "seed", "num_threads"}
        if set(options) - allowed:
            raise GeneratorError(
                f"the 'qsim' backend takes the options {sorted(allowed)}, got {sorted(set(options) - allowed)}"
            )
        return QSimBackend(style, observables, **options)
    if name == "statevector":
        allowed = {"jit_compile", "steps_per_iteration", "check_memory"}
        if set(options) - allowed:
            raise GeneratorError(
                f"the 'statevector' backend takes the options {sorted(allowed)}, got {sorted(set(options) - allowed)}"
                + ("; shots are sampled by backend='qsim'" if "shots" in options else "")
            )
        try:
            from qgan_widgets.quantum.statevector import StateVectorBackend
        except ImportError as exc:
            raise GeneratorError(
                f"the 'statevector' backend is not available ({exc}); use backend='tfq'"
            ) from exc
        return StateVectorBackend(style, observables, **options)
    raise GeneratorError(f"backend must be one of {', '.join(BACKENDS)}; got {name!r}")
