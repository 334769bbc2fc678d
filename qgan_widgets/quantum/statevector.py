"""Exact batched state-vector simulation of the style circuit in TensorFlow: the fast backend.

Taught in notebook ``03_style_quantum_generator`` (the speed-up against TFQ). ``StateVectorBackend``
compiles the very Cirq circuit that :func:`qgan_widgets.quantum.circuits.style_circuit` built (it walks
``style.circuit``'s operations; the circuit is not defined a second time) into a batched TensorFlow
program in which every sample of a batch has its own gate angles::

    backend = StateVectorBackend(style, observables)     # observables: single-qubit Paulis
    values = backend(theta)    # theta (B, num_gates) float32 -> (B, len(observables)) float32

How it works
------------
*Plan (Python, once, :mod:`qgan_widgets.quantum.statevector_plan`).* The circuit's operations are packed
into *steps*: one step applies a 4x4 matrix to the two leading qubits of a cyclic qubit order and
then rotates the order by one qubit (for the style circuit: a qubit's fused RY RZ RY RZ block and
the controlled-RY that follows it, so a ``cry-ring`` layer is ``n`` steps). Operations on a qubit
after its last two-qubit gate (the final RY layer) are not applied to the state: they are folded
into that qubit's observable (``<psi|U^dagger P U|psi>``), read from the qubit's reduced 2x2 density
matrix. Diagonal and controlled gates keep a step's matrix block-diagonal in the leading qubit: two
2x2 blocks, 14 real flops per amplitude (circuits that need a full 4x4, like the 3-qubit
``cry-pairs`` pattern, use a general step with 30).

*Step matrices (TensorFlow, vectorised).* From theta (B, num_gates) the half angles' cosines and
sines are taken once per gate, every operation's 2x2 matrix is built from them, embedded in its
step's block (a *factor*) and the few factors of each step multiplied (unrolled, all steps at once).
The gradient back to the angles, through each fused RY RZ RY RZ block to its four angles, is written
by hand (:meth:`StateVectorBackend._step_matrices_grad`); general 4x4 plans use TensorFlow's
autodiff of this small part. Matrices are kept as tuples of their four entries, never stacked and
never reduced over a short axis inside these products: on CPU, XLA recomputes a whole chain of
products once per stacked entry (or per reduction it feeds), which made this small part 60% of a
step at 5 qubits.

*Core (XLA).* A ``tf.while_loop`` over the steps applies each step's per-sample 2x2 blocks to the
state, shaped (2^n, B) complex64 with the batch innermost, so the same compiled loop body serves
every step and every layer: compiling costs well under a second and does not grow with the number of
layers. The gradient is a hand-written adjoint pass: starting from the final state and
``lambda = (dL/d rho) psi``, a reverse loop un-computes the state one step at a time (applying the
inverse step) while propagating ``lambda`` and reducing each step's matrix gradient
``2 sum_r lambda conj(psi)``, so it stores no intermediate states (O(1) extra states of memory).

Memory
------
One state is ``8 * 2^n * B`` bytes (complex64): 4 MiB at 12 qubits and batch 128, 64 MiB at 16, 1
GiB at 20. Memory therefore doubles with every qubit and grows linearly with the batch; the number
of layers only adds the small per-step matrices. :func:`memory_bytes` estimates the peak of a
forward + gradient step as ``STATE_COPIES`` = 16 states (the peak process growth measured 12.8
states at 16 qubits / batch 128 and 14.7 at 18 / 64: the saved final state, lambda, their
un-rotated and updated copies, XLA's loop buffers and TensorFlow's own copies) plus the per-step
matrices and a fixed allowance. Calling a backend on a batch whose estimate exceeds the available
memory (psutil) raises :class:`MemoryLimitError` with the figure instead of exhausting the machine:
on a 24 GiB machine batch 128 fits up to 20 qubits (16 GiB), batch 8 up to 24.

Options
-------
``jit_compile``: ``"auto"`` (default) means ``True``: the two programs of a step (forward; backward
with the adjoint) are XLA-compiled. Their loops compile once per (circuit, batch) in about a second
whatever the number of layers, and are cached per process, so rebuilding a generator of a size seen
before costs nothing. Both programs are traced without AutoGraph (their loops are explicit
``tf.while_loop`` calls): AutoGraph's conversion alone took 1.5 s of the first step. ``False`` runs
the same graph without XLA: its first step is 0.6-0.7 s shorter but each step 4.5-7x slower
(5x2: 4.8 vs 1.1 ms, 8x4: 28 vs 4.1 ms, 10x4: 122 vs 18 ms at batch 128, first steps 0.8-1.1 s
against 1.5-1.7 s), so it pays only below about 200 steps and is mostly for debugging.
``steps_per_iteration`` (default 1) unrolls that many steps per loop iteration; measured no gain
(4: 1.8, 11.8, 136 ms at 5x2, 8x4, 12x4 against 1.8, 10-12, 110-125 ms), kept for experiments.
Unrolling the whole circuit into one XLA program (no loops) took 9-27 s to compile in a probe, for
at most 2x at 8 qubits: not worth it for a short interactive run, and a long sweep gains little.
The same defaults therefore serve both uses.
Measured figures: ``benchmarks/statevector_probe.py`` and ``python -m qgan_widgets bench generator``.
"""
from __future__ import annotations


import cirq
import numpy as np

from qgan_widgets._tf import tf
from qgan_widgets.quantum.circuits import StyleCircuit
from qgan_widgets.quantum.statevector_plan import Plan, StateVectorError, Tables, compile_plan, tables

__all__ = ["StateVectorBackend", "MemoryLimitError", "memory_bytes", "flops_per_step", "available_memory_bytes", "STATE_COPIES", "clear_caches"]


STATE_COPIES = 16  # states at the peak of a forward + adjoint step: measured 13-15 (16 and 18 qubits)
_JIT_DEFAULT = True  # what "auto" means: measured in benchmarks/statevector_probe.py


class MemoryLimitError(StateVectorError):
    """The state vectors of a batch would not fit in the available memory."""


def _select(x, rows, n: int):
    """x[rows] for a float (n, ...) tensor and static rows, as a one-hot matmul (no gather/scatter)."""
    pick = np.zeros((len(rows), n), np.float32)
    pick[np.arange(len(rows)), np.asarray(rows)] = 1.0
    return tf.tensordot(tf.constant(pick), x, axes=1)


def _dagger(a):
    """Conjugate transpose of a 2x2 entry tuple."""
    a00, a01, a10, a11 = a
    return (tf.math.conj(a00), tf.math.conj(a10), tf.math.conj(a01), tf.math.conj(a11))


def _mul2(a, b):
    """a @ b for 2x2 matrices given as tuples of their entries (m00, m01, m10, m11), elementwise."""
    a00, a01, a10, a11 = a
    b00, b01, b10, b11 = b
    return (a00 * b00 + a01 * b10, a00 * b01 + a01 * b11, a10 * b00 + a11 * b10, a10 * b01 + a11 * b11)


def _entries(x):
    """Entry tuple of a tensor whose axis -2 holds [m00, m01, m10, m11]."""
    return tuple(x[..., i, :] for i in range(4))


def _identity_like(x):
    """The 2x2 identity as an entry tuple of tensors shaped like ``x``."""
    one, zero = tf.ones_like(x), tf.zeros_like(x)
    return (one, zero, zero, one)


def _over_blocks(alpha, g):
    """sum_a alpha[a] g[:, a] over the two blocks, written out: a ``reduce_sum`` would start a new
    XLA fusion, and each such fusion recomputed the whole chain of products it reads (4x the
    compiled code, +0.9 s of compilation at 5 qubits)."""
    return alpha[0] * g[:, 0] + alpha[1] * g[:, 1]


def _chain(F):
    """(F[m-1] @ ... @ F[0], prefixes) for a list F of m entry tuples: the product's entry tuple
    and prefixes[j] = F[j-1] ... F[0] (prefixes[0] the identity) that :func:`_chain_grad` needs.

    Entries stay separate tensors: stacking them (``tf.stack``) inside the fused computation made
    XLA's CPU code recompute every shared product once per stacked entry, 5x slower (measured at 5
    qubits). Unrolled in Python: m is a handful of factors, and a loop carrying a TensorArray cost
    more than the products themselves."""
    prefixes, prod = [_identity_like(F[0][0])], F[0]
    for j in range(1, len(F)):
        prefixes.append(prod)
        prod = _mul2(F[j], prod)
    return prod, prefixes


def _chain_grad(F, G, prefixes):
    """Gradients (a list of m entry tuples) of the factors of P = F[m-1] ... F[0] given the entry
    tuple G = dL/dP (TensorFlow's complex convention): g_j = L_j^H G R_j^H with R_j = prefixes[j]
    (from :func:`_chain`) and L_j = F[m-1] ... F[j+1], accumulated from the last factor back."""
    m = len(F)
    after = _identity_like(G[0])
    grads = [None] * m
    for j in reversed(range(m)):
        grads[j] = _mul2(_mul2(_dagger(after), G), _dagger(prefixes[j]))
        after = _mul2(after, F[j])
    return grads


# ------------------------------------------------------------------------------ memory and flops
@tf.autograph.experimental.do_not_convert
def available_memory_bytes() -> int:
    """Memory the process may still use (psutil's ``available``); never converted by AutoGraph."""
    import psutil

    return int(psutil.virtual_memory().available)


def memory_bytes(num_qubits: int, batch: int, num_steps: int | None = None) -> int:
    """Estimated peak bytes of one forward + gradient step for ``num_qubits`` and ``batch``.

    ``STATE_COPIES`` complex64 states of ``8 * 2^n * batch`` bytes each (the adjoint loop holds the
    state, lambda, their un-rotated and updated copies and XLA's loop buffers), plus the per-step
    matrices (``num_steps`` x 2 x 2 x 2 x batch complex64 for K, its gradient and the prefixes of
    each step's product; default ``6 n`` steps). Doubles with every qubit, linear in the batch.
    """
    n, b = int(num_qubits), int(batch)
    steps = 6 * n if num_steps is None else int(num_steps)
    state = 8 * (2**n) * b
    matrices = 12 * steps * 8 * 8 * b  # K, its gradient and the chain's prefixes (complex64)
    return STATE_COPIES * state + matrices + (64 << 20)  # + a fixed allowance for TensorFlow itself


def check_memory(num_qubits: int, batch: int, num_steps: int | None = None) -> int:
    """Return the estimate of :func:`memory_bytes`, or raise MemoryLimitError if it does not fit."""
    need = memory_bytes(num_qubits, batch, num_steps)
    have = available_memory_bytes()
    if need > have:
        raise MemoryLimitError(
            f"{num_qubits} qubits at batch {batch} need about {need / 2**30:.2f} GiB for the state "
            f"vectors of a forward + gradient step ({STATE_COPIES} states of {8 * 2**num_qubits * batch / 2**20:.1f} MiB), "
            f"but only {have / 2**30:.2f} GiB is available: use fewer qubits or a smaller batch"
        )
    return need


def flops_per_step(style: StyleCircuit, batch: int, n_obs: int | None = None) -> float:
    """Real floating-point operations of one forward + gradient step of this backend.

    Counts the work the implementation actually does, per sample: per step, 14 flops per amplitude
    forward (two 2x2 complex blocks; 30 for general 4x4 steps) and 44 backward (un-compute the
    state and lambda, reduce the step's matrix gradient); 8 flops per amplitude and qubit for the
    reduced density matrices and 16 for lambda's start; the 2x2 products that build each step's
    matrix (56 flops each: m - 1 forward, as many again in the backward pass, 4 m for their
    gradient, per step and block) and the readout. ``n_obs`` defaults to one per qubit.
    """
    plan = _cached_plan(style)
    n, b = plan.num_qubits, float(batch)
    n_obs = n if n_obs is None else int(n_obs)
    amps = float(2**n) * b
    per_fwd, per_bwd = (30.0, 92.0) if plan.general else (14.0, 44.0)
    core = plan.num_steps * amps * (per_fwd + per_bwd)
    if plan.num_steps:
        core += amps * n * (8.0 + 16.0)
    m = max([len(s) for s in plan.steps] + [1])
    products = (2 * (m - 1) + 4 * m) * 56.0 * plan.num_steps * 2 * b
    angles = 3 * 40.0 * len(plan.ops) * b  # cos, sin and entries, forward and backward
    mt = max([len(t) for t in plan.tails] + [1])
    readout = 3 * n_obs * b * (56.0 * (mt + 2) + 16)
    return float(core + products + angles + readout)


# --------------------------------------------------------------------------------------- kernels
def _core_forward(K, n: int, general: bool, steps_per_iteration: int):
    """Run the steps from |0...0> and return (rho (n_positions, 4, B) float32, final state (2^n, B))."""
    N, R = 2**n, 2 ** (n - 2)
    S = K.shape[0]
    batch = tf.shape(K)[-1]
    psi = tf.concat([tf.ones((1, batch), tf.complex64), tf.zeros((N - 1, batch), tf.complex64)], axis=0)

    def step(psi, k):
        x = tf.reshape(psi, (2, 2, R, -1))
        if general:  # k: (a, b, a', b', B)
            y = (
                k[:, :, 0, 0, None, :] * x[0, 0]
                + k[:, :, 0, 1, None, :] * x[0, 1]
                + k[:, :, 1, 0, None, :] * x[1, 0]
                + k[:, :, 1, 1, None, :] * x[1, 1]
            )
        else:  # k: (a, i, j, B), block a maps x[a] by k[a]
            y = k[:, :, 0, None, :] * x[:, 0:1] + k[:, :, 1, None, :] * x[:, 1:2]
        y = tf.transpose(tf.reshape(y, (2, 2 * R, -1)), (1, 0, 2))
        return tf.reshape(y, (N, -1))

    psi = _loop(step, psi, K, S, steps_per_iteration)
    return _reduced_density(psi, n), psi


def _loop(step, psi, K, S: int, unroll: int):
    """Apply ``step`` for s in range(S) (forward only) with ``unroll`` steps per loop iteration."""
    unroll = max(1, min(unroll, S))
    full = S // unroll

    def body(i, psi):
        for u in range(unroll):
            psi = step(psi, K[i * unroll + u])
        return i + 1, psi

    if full:
        _, psi = tf.while_loop(lambda i, _: i < full, body, (tf.constant(0), psi))
    for s in range(full * unroll, S):
        psi = step(psi, K[s])
    return psi


def _reduced_density(psi, n: int):
    """Per axis position p: [rho00, rho11, Re rho01, Im rho01] summed over the other qubits.

    The diagonals come from one matmul of the probabilities with the bit table, the off-diagonals
    from one reduction over the n pairings (few XLA kernels: compiling stays quick)."""
    N = 2**n
    bits = ((np.arange(N)[None, :] >> (n - 1 - np.arange(n))[:, None]) & 1).astype(np.float32)  # (n, N)
    probs = tf.math.real(psi * tf.math.conj(psi))  # (N, B)
    p1 = tf.matmul(tf.constant(bits), probs)  # (n, B)
    p0 = tf.matmul(tf.constant(1.0 - bits), probs)
    pairs = []
    for p in range(n):
        v = tf.reshape(psi, (2**p, 2, 2 ** (n - p - 1), -1))
        pairs.append(tf.reshape(v[:, 0] * tf.math.conj(v[:, 1]), (N // 2, -1)))
    r01 = tf.reduce_sum(tf.stack(pairs), axis=1)  # (n, B)
    return tf.stack([p0, p1, tf.math.real(r01), tf.math.imag(r01)], axis=1)


def _core_backward(K, psi, g_rho, n: int, general: bool):
    """Adjoint pass: gradient of the loss wrt K (TensorFlow's complex convention) from dL/drho.

    ``lambda`` is set so that dL = 2 Re <lambda|d psi>; walking the steps backwards the state is
    un-computed (psi_before = K^dagger psi_after, un-rotated) and lambda propagated the same way;
    the step's gradient is 2 sum_r lambda_after conj(psi_before) (= dL/dRe K + i dL/dIm K).
    """
    N, R = 2**n, 2 ** (n - 2)
    S = K.shape[0]
    # lambda = sum_p M_p psi (on position p), M_p = [[g00, (gr + i gi)/2], [(gr - i gi)/2, g11]]
    lam = tf.zeros_like(psi)
    g = tf.cast(g_rho, tf.complex64)
    for p in range(n):
        v = tf.reshape(psi, (2**p, 2, 2 ** (n - p - 1), -1))
        x0, x1 = v[:, 0], v[:, 1]
        g00, g11 = g[p, 0], g[p, 1]
        c = tf.complex(g_rho[p, 2], g_rho[p, 3]) * 0.5
        l0 = g00 * x0 + c * x1
        l1 = tf.math.conj(c) * x0 + g11 * x1
        lam += tf.reshape(tf.stack([l0, l1], axis=1), (N, -1))

    def unrotate(z):
        return tf.reshape(tf.transpose(tf.reshape(z, (2 * R, 2, -1)), (1, 0, 2)), (2, 2, R, -1))

    def body(i, psi, lam, grads):
        s = S - 1 - i
        k = tf.math.conj(K[s])
        y, ly = unrotate(psi), unrotate(lam)
        if general:  # x[a', b'] = sum_ab conj(k[a, b, a', b']) y[a, b]
            def apply(z):
                return (
                    k[0, 0, :, :, None, :] * z[0, 0]
                    + k[0, 1, :, :, None, :] * z[0, 1]
                    + k[1, 0, :, :, None, :] * z[1, 0]
                    + k[1, 1, :, :, None, :] * z[1, 1]
                )

            x, lx = apply(y), apply(ly)
            gk = 2.0 * tf.reduce_sum(ly[:, :, None, None] * tf.math.conj(x)[None, None], axis=4)
        else:  # x[a, j] = sum_i conj(k[a, i, j]) y[a, i]
            def apply(z):
                return k[:, 0, :, None, :] * z[:, 0:1] + k[:, 1, :, None, :] * z[:, 1:2]

            x, lx = apply(y), apply(ly)
            gk = 2.0 * tf.reduce_sum(ly[:, :, None] * tf.math.conj(x)[:, None], axis=3)
        return i + 1, tf.reshape(x, (N, -1)), tf.reshape(lx, (N, -1)), grads.write(s, gk)

    grads = tf.TensorArray(tf.complex64, size=S, element_shape=K.shape[1:-1].concatenate([None]))
    _, _, _, grads = tf.while_loop(lambda i, *_: i < S, body, (tf.constant(0), psi, lam, grads))
    return grads.stack()


# ---------------------------------------------------------------------------------- the backend
_PAULI = {
    "X": np.array([[0, 1], [1, 0]], dtype=np.complex64),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=np.complex64),
    "Z": np.array([[1, 0], [0, -1]], dtype=np.complex64),
}
_PLANS: dict = {}
_PROGRAMS: dict = {}


def _cached_plan(style: StyleCircuit) -> Plan:
    key = id(style)
    hit = _PLANS.get(key)
    if hit is None or hit[0] is not style:
        hit = (style, compile_plan(style))
        _PLANS[key] = hit
    return hit[1]


def _parse_observables(observables, style: StyleCircuit) -> tuple[np.ndarray, np.ndarray]:
    """(qubit index per observable, 2x2 Pauli matrix per observable) or StateVectorError."""
    if isinstance(observables, (cirq.PauliString, cirq.Operation)):
        observables = [observables]
    observables = list(observables)
    if not observables:
        raise StateVectorError("observables: expected at least one single-qubit Pauli observable")
    index_of_qubit = {q: i for i, q in enumerate(style.qubits)}
    wires, mats = [], []
    for k, obs in enumerate(observables):
        if isinstance(obs, cirq.Operation) and not isinstance(obs, cirq.PauliString):
            try:
                obs = cirq.PauliString(obs)
            except (TypeError, ValueError):
                pass
        if not isinstance(obs, cirq.PauliString):
            raise StateVectorError(f"observable {k} ({obs!r}) is not a cirq.PauliString; expected e.g. cirq.Z(q)")
        if len(obs) != 1:
            raise StateVectorError(
                f"observable {k} ({obs}) acts on {len(obs)} qubits; the statevector backend reads out "
                f"single-qubit Paulis (X_k, Y_k, Z_k) only"
            )
        coef = complex(obs.coefficient)
        if abs(coef - 1.0) > 1e-12:
            raise StateVectorError(f"observable {k} ({obs}) has coefficient {coef}; only coefficient 1 is supported")
        ((qubit, pauli),) = obs.items()
        if qubit not in index_of_qubit:
            raise StateVectorError(f"observable {k} ({obs}) acts on {qubit}, which is not one of the circuit's qubits")
        wires.append(index_of_qubit[qubit])
        mats.append(_PAULI[str(pauli)])
    return np.array(wires, dtype=np.int32), np.stack(mats)


class StateVectorBackend:
    """Exact batched state-vector simulation of a :class:`StyleCircuit`, differentiable in theta.

    ``StateVectorBackend(style, observables, jit_compile="auto", steps_per_iteration=1,
    check_memory=True)``; ``backend(theta)`` maps angles (B, num_gates) float32 (gate ``k``'s angle
    is symbol ``theta_k``) to expectation values (B, len(observables)) float32, with a hand-written
    adjoint gradient. Works eagerly, inside ``tf.function`` and under ``tf.GradientTape``.
    """

    name = "statevector"
    differentiable = True

    def __init__(self, style: StyleCircuit, observables, jit_compile="auto", steps_per_iteration: int = 1,
                 check_memory: bool = True):
        if jit_compile not in ("auto", True, False):
            raise StateVectorError(f"jit_compile must be 'auto', True or False, got {jit_compile!r}")
        if isinstance(steps_per_iteration, bool) or not isinstance(steps_per_iteration, (int, np.integer)) \
                or steps_per_iteration < 1:
            raise StateVectorError(f"steps_per_iteration must be an integer >= 1, got {steps_per_iteration!r}")
        self.style = style
        self.plan = compile_plan(style)
        self.observables = list(observables) if not isinstance(observables, cirq.PauliString) else [observables]
        self._wires, self._paulis = _parse_observables(observables, style)
        self.jit_compile = _JIT_DEFAULT if jit_compile == "auto" else bool(jit_compile)
        self.steps_per_iteration = int(steps_per_iteration)
        self.check_memory = bool(check_memory)
        self.num_gates = style.num_gates
        self._forward, self._backward = self._programs()

    # -- public ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        p = self.plan
        return (
            f"StateVectorBackend({p.num_qubits} qubits, {p.num_steps} steps"
            f"{' (general 4x4)' if p.general else ''}, {len(self._wires)} observables, "
            f"jit_compile={self.jit_compile})"
        )

    def memory_bytes(self, batch: int) -> int:
        """Estimated peak bytes of a forward + gradient step at this batch size."""
        return memory_bytes(self.plan.num_qubits, batch, self.plan.num_steps)

    @tf.autograph.experimental.do_not_convert  # plain Python checks; nothing for AutoGraph to convert
    def __call__(self, theta):
        theta = tf.convert_to_tensor(theta)
        if theta.dtype != tf.float32:
            if not (theta.dtype.is_floating or theta.dtype.is_integer):
                raise StateVectorError(f"theta must be float32 angles, got dtype {theta.dtype.name}")
            theta = tf.cast(theta, tf.float32)
        shape = theta.shape
        if shape.rank != 2 or (shape[1] is not None and shape[1] != self.num_gates):
            raise StateVectorError(
                f"theta must have shape (batch, {self.num_gates}) (one angle per gate of the circuit), "
                f"got {tuple(shape)}"
            )
        if self.check_memory and shape[0] is not None and self.plan.num_steps:
            check_memory(self.plan.num_qubits, int(shape[0]), self.plan.num_steps)
        if not self.plan.num_steps:  # product state: only tails, plain autodiff
            return self._readout(self._const_rho(tf.shape(theta)[0]), tf.transpose(theta))
        forward, backward = self._forward, self._backward

        @tf.custom_gradient
        def simulate(theta):
            # stop_gradient: the programs are differentiated by hand, so no tape may trace into them
            values, saved = forward(tf.stop_gradient(theta))

            def grad(dvalues):
                return backward(tf.stop_gradient(theta), saved, tf.stop_gradient(dvalues))

            return values, grad

        return simulate(theta)

    # -- internals ------------------------------------------------------------------------------
    def _programs(self):
        key = (self.plan.fingerprint, tuple(self._wires), self._paulis.tobytes(), self.jit_compile,
               self.steps_per_iteration)
        hit = _PROGRAMS.get(key)
        if hit is None:
            hit = self._make_programs()
            _PROGRAMS[key] = hit
        return hit

    def _make_programs(self):
        plan, n = self.plan, self.plan.num_qubits
        general, unroll = plan.general, self.steps_per_iteration

        def forward(theta):
            theta_t = tf.transpose(theta)
            K = self._step_matrices(theta_t)
            rho_pos, psi = _core_forward(K, n, general, unroll)
            rho = self._by_qubit(rho_pos)
            return self._readout(rho, theta_t), (rho, psi, K)

        def backward(theta, saved, dvalues):
            rho, psi, K = saved
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(theta)
                tape.watch(rho)
                theta_t = tf.transpose(theta)
                values = self._readout(rho, theta_t)
                if general:  # small 3-qubit plans: autodiff through the 4x4 products
                    K = self._step_matrices(theta_t)
            g_rho, g_tail = tape.gradient(values, [rho, theta], output_gradients=dvalues)
            g_pos = _select(g_rho, self.plan.final_order(), n)
            dK = _core_backward(K, psi, g_pos, n, general)
            if general:
                g_core = tape.gradient(K, theta, output_gradients=dK)
            else:
                g_core = tf.transpose(self._step_matrices_grad(theta_t, dK))
            del tape
            return g_core if g_tail is None else g_core + g_tail

        fwd = tf.function(forward, jit_compile=self.jit_compile, reduce_retracing=True, autograph=False)
        bwd = tf.function(backward, jit_compile=self.jit_compile, reduce_retracing=True, autograph=False)
        return fwd, bwd

    def _by_qubit(self, rho_pos):
        inverse = np.argsort(self.plan.final_order())  # qubit q sits at position inverse[q]
        return _select(rho_pos, inverse, self.plan.num_qubits)

    def _const_rho(self, batch):
        one = tf.ones((self.plan.num_qubits, 1, batch))
        zero = tf.zeros((self.plan.num_qubits, 3, batch))
        return tf.concat([one, zero], axis=1)

    def _cos_sin(self, theta_t, rows: np.ndarray):
        """cos and sin of the half angles, each (rows.size, B), of operation rows ``rows`` (row 0 the
        identity, 1 + i operation i) from ``theta_t`` (num_gates, B).

        cos/sin are taken once per gate and then picked per row by a one-hot matmul (its gradient is
        a matmul too; XLA's scatter on CPU is slow). Picking first and taking cos/sin per row let
        XLA fuse the transcendentals into every consumer: at 5 qubits the step matrices cost 8x
        more sines and cosines than angles. A row without an angle (identity, CZ) has cos 1, sin 0.
        """
        pick = self._pick(rows)
        half = theta_t * 0.5
        c = tf.matmul(tf.constant(pick), tf.cos(half)) + tf.constant(1.0 - pick.sum(axis=1, keepdims=True))
        return c, tf.matmul(tf.constant(pick), tf.sin(half))

    def _pick(self, rows: np.ndarray) -> np.ndarray:
        t = _tables_for(self.plan)
        flat = np.asarray(rows).reshape(-1)
        pick = np.zeros((flat.size, self.plan.num_gates), np.float32)
        pick[np.arange(flat.size), t.op_gate[flat]] = 1.0 - t.op_kind[flat, 2]
        return pick

    def _op_matrices(self, theta_t, rows: np.ndarray):
        """Entries (m00, m01, m10, m11) of the 2x2 matrices of operation rows ``rows`` (any shape;
        row 0 the identity, row 1 + i operation i), each of shape rows.shape + (B,) complex64."""
        t = _tables_for(self.plan)
        flat = np.asarray(rows).reshape(-1)
        c, s = self._cos_sin(theta_t, rows)
        kinds = t.op_kind[flat]
        is_ry, is_rz, is_const = (tf.constant(kinds[:, i, None]) for i in range(3))
        zero = tf.zeros_like(c)
        # ry: [[c, -s], [s, c]]; rz: [[c - i s, 0], [0, c + i s]]; identity and CZ: identity
        re_diag = (is_ry + is_rz) * c + is_const
        entries = (
            tf.complex(re_diag, -is_rz * s),
            tf.complex(-is_ry * s, zero),
            tf.complex(is_ry * s, zero),
            tf.complex(re_diag, is_rz * s),
        )
        shape = tuple(np.shape(rows)) + (-1,)
        return tuple(tf.reshape(e, shape) for e in entries)

    def _factors(self, theta_t):
        """Block-diagonal plans: the factors of every step, a list over slot j of entry tuples
        (m00, m01, m10, m11), each (S, 2, B) complex64 (step, block a, sample)."""
        t = _tables_for(self.plan)
        u = self._op_matrices(theta_t, t.step_slot)  # 4 x (S, m, B)
        coef = t.step_coef[..., None].astype(np.complex64)  # (S, m, 4, 2, 1): alpha, beta, gamma, delta
        F = []
        for j in range(t.step_slot.shape[1]):
            alpha, beta, gamma = (tf.constant(coef[:, j, i]) for i in range(3))  # (S, 2, 1) over a
            d0, d1 = (tf.constant(coef[:, j, 3] * np.eye(2, dtype=np.complex64)[:, a, None]) for a in (0, 1))
            u00, u01, u10, u11 = (x[:, j, None, :] for x in u)  # (S, 1, B)
            scalar = beta + d0 * u00 + d1 * u11  # block a gets U[a, a] I where delta_a = 1 (no concat)
            F.append((alpha * u00 + scalar + gamma, alpha * u01, alpha * u10, alpha * u11 + scalar - gamma))
        return F

    def _step_matrices(self, theta_t):
        """Per-step matrices for the core from theta_t (num_gates, B): (S, 2, 2, 2, B) block-diagonal
        (block a, row i, column j), or (S, 2, 2, 2, 2, B) for general plans."""
        t = _tables_for(self.plan)
        S = self.plan.num_steps
        if self.plan.general:
            m = t.step_slot.shape[1]
            slots = self._op_matrices(theta_t, t.step_slot)  # 4 x (S, m, B)
            u = tf.reshape(tf.stack(slots, axis=2), (S, m, 2, 2, -1))  # (S, m, i, j, B)
            e = tf.constant(t.step_e, tf.complex64)
            e0 = tf.constant(t.step_e0, tf.complex64)
            M = e0[..., None] + tf.einsum("smxyij,smijb->smxyb", e, u)  # (S, m, 4, 4, B)
            M = tf.transpose(M, (0, 1, 4, 2, 3))  # (S, m, B, 4, 4)
            prod = M[:, 0]
            for j in range(1, m):
                prod = tf.matmul(M[:, j], prod)
            K = tf.transpose(tf.reshape(prod, (S, -1, 2, 2, 2, 2)), (0, 2, 3, 4, 5, 1))
            return K
        K, _ = _chain(self._factors(theta_t))
        return tf.reshape(tf.stack(K, axis=2), (S, 2, 2, 2, -1))

    def _step_matrices_grad(self, theta_t, dK):
        """Hand-written vector-Jacobian product of :meth:`_step_matrices` (block-diagonal plans):
        from dK (TensorFlow's complex convention) back to theta_t (num_gates, B).

        For K = F[m-1] ... F[0], the gradient of factor j is L_j^H dK R_j^H with L_j, R_j the
        products after and before it (the factors and prefixes are recomputed here: cheaper than
        saving them from the forward pass); then the chain rule through the block embedding to each
        operation's 2x2 matrix and through cos/sin to its angle. Written slot by slot with entry
        tuples and no stacks or reductions, so that XLA fuses it into few kernels: 0.33 ms at 5
        qubits / 2 layers, batch 128, against 0.8 ms for the stacked form."""
        t = _tables_for(self.plan)
        S, m = t.step_slot.shape
        F = self._factors(theta_t)
        gf = _chain_grad(F, _entries(tf.reshape(dK, (S, 2, 4, -1))), _chain(F)[1])  # m x 4 x (S, 2, B)
        coef = t.step_coef[..., None].astype(np.complex64)  # (S, m, 4, 2, 1)
        rows = t.step_slot
        kinds = t.op_kind[rows.reshape(-1)].reshape(rows.shape + (3,)).astype(np.float32)  # (S, m, 3)
        c, s = (tf.reshape(x, (S, m, -1)) for x in self._cos_sin(theta_t, rows))
        pick = self._pick(rows).reshape(S, m, -1)  # (S, m, num_gates)
        re, im = tf.math.real, tf.math.imag
        g_theta = 0.0
        for j in range(m):  # one slot at a time: no stacking inside the fused computation
            g00, g01, g10, g11 = gf[j]  # (S, 2, B) over block a
            alpha = (tf.constant(coef[:, j, 0, 0]), tf.constant(coef[:, j, 0, 1]))  # (S, 1) per block
            d0, d1 = tf.constant(coef[:, j, 3, 0]), tf.constant(coef[:, j, 3, 1])
            gu00 = _over_blocks(alpha, g00) + d0 * (g00[:, 0] + g11[:, 0])
            gu11 = _over_blocks(alpha, g11) + d1 * (g00[:, 1] + g11[:, 1])
            gu01, gu10 = _over_blocks(alpha, g01), _over_blocks(alpha, g10)
            # d entries / d half-angle; dL/dh = sum_e Re(conj(u_e') g_e)
            is_ry, is_rz = tf.constant(kinds[:, j, 0, None]), tf.constant(kinds[:, j, 1, None])  # (S, 1)
            cj, sj = c[:, j], s[:, j]
            dh = (
                -(is_ry + is_rz) * sj * (re(gu00) + re(gu11))
                + is_rz * cj * (im(gu11) - im(gu00))
                + is_ry * cj * (re(gu10) - re(gu01))
            )
            g_theta += tf.matmul(tf.constant(pick[:, j] * 0.5), dh, transpose_a=True)
        return g_theta  # (num_gates, B)

    def _readout(self, rho, theta_t):
        """<P> per observable, (B, obs), from qubit-ordered rho (n, 4, B) and the tail unitaries."""
        t = _tables_for(self.plan)
        r = _select(rho, self._wires, self.plan.num_qubits)  # (obs, 4, B)
        r00, r11, r01_re, r01_im = (r[:, i] for i in range(4))
        P = [tf.constant(self._paulis[:, i, j][:, None]) for i in range(2) for j in range(2)]  # (obs, 1)
        tail_slots = t.tail_slot[self._wires]  # (obs, mt)
        if np.any(tail_slots):
            U = self._op_matrices(theta_t, tail_slots)  # (obs, mt, B) each
            T = tuple(u[:, 0] for u in U)
            for j in range(1, tail_slots.shape[1]):
                T = _mul2(tuple(u[:, j] for u in U), T)
            Q = _mul2(_dagger(T), _mul2(P, T))  # T^dagger P T
        else:
            Q = P
        q00, q11, q10 = tf.math.real(Q[0]), tf.math.real(Q[3]), Q[2]
        values = q00 * r00 + q11 * r11 + 2.0 * (tf.math.real(q10) * r01_re - tf.math.imag(q10) * r01_im)
        return tf.transpose(values)


_TABLES: dict = {}


def clear_caches() -> None:
    """Forget every compiled plan and program of this process (the benchmark does this so that a
    first step is timed as for a circuit never seen before)."""
    _PLANS.clear()
    _PROGRAMS.clear()
    _TABLES.clear()


def _tables_for(plan: Plan) -> Tables:
    hit = _TABLES.get(plan.fingerprint)
    if hit is None:
        hit = tables(plan)
        _TABLES[plan.fingerprint] = hit
    return hit
