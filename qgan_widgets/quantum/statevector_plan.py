"""The plan of the statevector backend: the style circuit compiled into steps (NumPy and Cirq only).

Used by :mod:`qgan_widgets.quantum.statevector`, which turns a plan into TensorFlow programs. Every operation
of the circuit becomes a 2x2 (or controlled 2x2) matrix of its symbol's angle. The state is kept with
its qubits in a cyclic order, and a *step* applies one 4x4 matrix to the two leading qubits
``(p, p+1 mod n)`` and then rotates the order by one qubit, so ``n`` steps sweep once round the ring.
:func:`compile_plan` walks the circuit's dependency graph and packs into each step every operation
that is ready and fits its window (for the style circuit: a qubit's RY RZ RY RZ block and the
controlled-RY that follows it). Operations on a qubit after its last two-qubit gate form that
qubit's *tail*, folded into its observable. Diagonal and controlled gates keep a step's matrix
block-diagonal in the leading qubit (two 2x2 blocks); circuits that need a full 4x4 make the plan
``general``. :func:`tables` lays a plan out as the index and coefficient arrays the programs use.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cirq
import numpy as np

from qgan_widgets.quantum.circuits import StyleCircuit

__all__ = ["Plan", "Tables", "StateVectorError", "compile_plan", "tables"]


class StateVectorError(ValueError):
    """The circuit, observables, angles or options cannot be simulated by this backend."""


_I2 = np.eye(2)
_P0 = np.diag([1.0, 0.0])
_P1 = np.diag([0.0, 1.0])


def _unit(i: int, j: int) -> np.ndarray:
    e = np.zeros((2, 2))
    e[i, j] = 1.0
    return e


@dataclass(frozen=True)
class _Op:
    """One circuit operation: kind, qubit indices ((control, target) for 'cry'), gate index or -1."""

    kind: str
    qubits: tuple[int, ...]
    gate: int


@dataclass
class Plan:
    """The circuit compiled into window steps and per-qubit tails (pure NumPy; no TensorFlow).

    ``ops``: the operations in circuit order. ``steps[s]``: indices into ``ops`` applied at step ``s``
    (window ``(p, p+1 mod n)`` with ``p = (start + s) mod n``), in order. ``tails[q]``: indices of the
    single-qubit operations after qubit ``q``'s last two-qubit gate, folded into its readout.
    ``general``: a step needs a full 4x4 matrix (otherwise every step is block-diagonal in its leading
    qubit).
    """

    num_qubits: int
    num_gates: int
    ops: list[_Op]
    steps: list[list[int]]
    tails: list[list[int]]
    start: int
    general: bool
    fingerprint: str = field(default="")

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    def final_order(self) -> list[int]:
        """Qubit held by each axis position of the state after the last step."""
        n = self.num_qubits
        return [(self.start + self.num_steps + i) % n for i in range(n)]


def _op_from_cirq(op: cirq.Operation, style: StyleCircuit, index_of_symbol: dict, index_of_qubit: dict) -> _Op:
    """Recognise one Cirq operation of the style circuit, or raise StateVectorError."""
    try:
        wires = tuple(index_of_qubit[q] for q in op.qubits)
    except KeyError:
        raise StateVectorError(f"operation {op} acts on a qubit that is not one of the circuit's qubits") from None
    names = cirq.parameter_names(op)
    if not names:
        if len(wires) == 2 and op == cirq.CZ(*op.qubits):
            return _Op("cz", wires, -1)
        raise StateVectorError(
            f"unsupported operation {op}: the statevector backend simulates RY, RZ, controlled-RY with "
            f"one symbol each, and CZ"
        )
    if len(names) != 1:
        raise StateVectorError(f"operation {op} depends on {len(names)} symbols; expected one")
    (name,) = names
    if name not in index_of_symbol:
        raise StateVectorError(f"operation {op} uses symbol {name!r}, which is not one of style.gates")
    k = index_of_symbol[name]
    sym = style.gates[k].symbol
    if len(wires) == 1:
        (q,) = op.qubits
        if op == cirq.ry(sym).on(q):
            return _Op("ry", wires, k)
        if op == cirq.rz(sym).on(q):
            return _Op("rz", wires, k)
    elif len(wires) == 2:
        c, t = op.qubits
        if op == cirq.ry(sym).on(t).controlled_by(c):
            return _Op("cry", wires, k)
    raise StateVectorError(
        f"unsupported operation {op}: the statevector backend simulates ry(theta_k), rz(theta_k), "
        f"ry(theta_k).controlled_by(c) and CZ"
    )


def _fits(op: _Op, lead: int, second: int, general: bool) -> bool:
    """Whether ``op`` can be folded into a step on window (lead, second)."""
    window = {lead, second}
    if not set(op.qubits) <= window:
        return False
    if general:
        return True
    # block-diagonal in the leading qubit: anything acting on the second qubit only, diagonal gates
    # on the leading one, controlled gates whose control is the leading qubit
    if len(op.qubits) == 1:
        return op.qubits[0] == second or op.kind == "rz"
    if op.kind == "cz":
        return True
    return op.qubits[0] == lead  # cry: (control, target)


def _schedule(ops: list[_Op], n: int, start: int, general: bool) -> list[list[int]] | None:
    """Greedy schedule of ``ops`` (dependency order kept) into window steps, or None if stuck."""
    queues: list[list[int]] = [[] for _ in range(n)]
    for i, op in enumerate(ops):
        for q in op.qubits:
            queues[q].append(i)
    heads = [0] * n
    left = len(ops)
    steps: list[list[int]] = []
    idle = 0
    p = start
    while left:
        lead, second = p % n, (p + 1) % n
        taken: list[int] = []
        changed = True
        while changed:
            changed = False
            for q in (lead, second):
                if heads[q] >= len(queues[q]):
                    continue
                i = queues[q][heads[q]]
                op = ops[i]
                ready = all(heads[w] < len(queues[w]) and queues[w][heads[w]] == i for w in op.qubits)
                if ready and _fits(op, lead, second, general):
                    taken.append(i)
                    for w in op.qubits:
                        heads[w] += 1
                    left -= 1
                    changed = True
        steps.append(taken)
        idle = 0 if taken else idle + 1
        if idle > n:
            return None
        p += 1
    while steps and not steps[-1]:
        steps.pop()
    return steps


def compile_plan(style: StyleCircuit) -> Plan:
    """Walk ``style.circuit`` and compile it into window steps and readout tails."""
    if not isinstance(style, StyleCircuit):
        raise StateVectorError(f"style must be a StyleCircuit (from circuits.style_circuit), got {type(style).__name__}")
    n = style.num_qubits
    index_of_symbol = {name: k for k, name in enumerate(style.symbol_names)}
    index_of_qubit = {q: i for i, q in enumerate(style.qubits)}
    ops = [_op_from_cirq(op, style, index_of_symbol, index_of_qubit) for op in style.circuit.all_operations()]
    for op in ops:
        if op.gate >= 0:
            info = style.gates[op.gate]
            if info.kind != op.kind or tuple(info.qubits) != op.qubits:
                raise StateVectorError(
                    f"gate {op.gate}: the circuit has {op.kind} on {op.qubits} but style.gates says "
                    f"{info.kind} on {info.qubits}"
                )
        if len(op.qubits) == 2:
            a, b = op.qubits
            if n > 2 and (a - b) % n not in (1, n - 1):
                raise StateVectorError(
                    f"{op.kind} on qubits {op.qubits}: the statevector backend needs two-qubit gates on "
                    f"neighbours of the ring (i, i+1 mod n)"
                )
    # tails: single-qubit operations after a qubit's last multi-qubit operation
    last_multi = [-1] * n
    for i, op in enumerate(ops):
        if len(op.qubits) > 1:
            for q in op.qubits:
                last_multi[q] = i
    tails: list[list[int]] = [[] for _ in range(n)]
    core: list[int] = []
    for i, op in enumerate(ops):
        if len(op.qubits) == 1 and i > last_multi[op.qubits[0]]:
            tails[op.qubits[0]].append(i)
        else:
            core.append(i)
    core_ops = [ops[i] for i in core]
    best = None
    for general in (False, True):
        for start in range(n):
            sched = _schedule(core_ops, n, start, general) if core_ops else []
            if sched is not None and (best is None or len(sched) < len(best[0])):
                best = (sched, start, general)
        if best is not None:
            break
    if best is None:  # pragma: no cover - every neighbour gate fits a general window
        raise StateVectorError("could not schedule the circuit onto neighbour windows")
    sched, start, general = best
    steps = [[core[i] for i in step] for step in sched]
    plan = Plan(n, style.num_gates, ops, steps, tails, start, general)
    plan.fingerprint = hashlib.sha1(
        repr((n, style.num_gates, ops, steps, tails, start, general)).encode()
    ).hexdigest()
    return plan


def _embedding(op: _Op, lead: int, second: int) -> tuple[np.ndarray, np.ndarray]:
    """(E0, E) with the op's 4x4 matrix on window (lead, second) = E0 + sum_ij E[:, :, i, j] U_ij."""
    e0 = np.zeros((4, 4))
    e = np.zeros((4, 4, 2, 2))
    if op.kind == "cz":
        return np.diag([1.0, 1.0, 1.0, -1.0]), e
    for i in range(2):
        for j in range(2):
            u = _unit(i, j)
            if len(op.qubits) == 1:
                e[:, :, i, j] = np.kron(_I2, u) if op.qubits[0] == second else np.kron(u, _I2)
            elif op.qubits[0] == lead:  # cry(lead -> second)
                e[:, :, i, j] = np.kron(_P1, u)
            else:  # cry(second -> lead)
                e[:, :, i, j] = np.kron(u, _P1)
    if len(op.qubits) == 2:
        e0 = np.kron(_P0, _I2) if op.qubits[0] == lead else np.kron(_I2, _P0)
    return e0, e


# block form of an operation on window (lead, second) when steps are block-diagonal in the lead:
# block_a = alpha_a U + beta_a I + gamma_a Z + delta_a U[a, a] I, for a = 0, 1
def _block_coefficients(op: _Op | None, lead: int, second: int) -> np.ndarray:
    """(4, 2): alpha, beta, gamma, delta for a = 0, 1 (None: the identity)."""
    c = np.zeros((4, 2))
    if op is None:
        c[1] = 1.0
    elif op.kind == "cz":
        c[1] = (1.0, 0.0)
        c[2] = (0.0, 1.0)
    elif op.kind == "cry":  # control lead, target second
        c[0] = (0.0, 1.0)
        c[1] = (1.0, 0.0)
    elif op.qubits[0] == second:
        c[0] = 1.0
    else:  # diagonal single-qubit gate on the lead
        c[3] = 1.0
    return c


@dataclass
class Tables:
    """Constant tables that turn theta into step matrices and tails (NumPy)."""

    op_gate: np.ndarray  # (1 + num_ops,) gate index (0 for the identity and parameter-free ops)
    op_kind: np.ndarray  # (1 + num_ops, 3): is_ry (ry/cry), is_rz, is_const (identity on its qubit)
    step_slot: np.ndarray  # (S, m) int: 1 + op index, 0 = identity
    step_coef: np.ndarray  # (S, m, 4, 2) block coefficients (block-diagonal plans)
    step_e0: np.ndarray  # (S, m, 4, 4) embedding of general plans
    step_e: np.ndarray  # (S, m, 4, 4, 2, 2)
    tail_slot: np.ndarray  # (n, mt) int: 1 + op index, 0 = identity


def tables(plan: Plan) -> Tables:
    n = plan.num_qubits
    ops = plan.ops
    # row 0 is the identity (padding), row 1 + i is operation i
    op_gate = np.array([0] + [max(op.gate, 0) for op in ops], dtype=np.int32)
    op_kind = np.array(
        [[0, 0, 1]] + [[op.kind in ("ry", "cry"), op.kind == "rz", op.kind == "cz"] for op in ops], dtype=np.float32
    )
    S = plan.num_steps
    m = max([len(s) for s in plan.steps] + [1])
    slot = np.zeros((S, m), dtype=np.int32)
    coef = np.zeros((S, m, 4, 2))
    e0 = np.tile(np.eye(4), (S, m, 1, 1))
    e = np.zeros((S, m, 4, 4, 2, 2))
    for s, step in enumerate(plan.steps):
        lead, second = (plan.start + s) % n, (plan.start + s + 1) % n
        for j in range(m):
            op = ops[step[j]] if j < len(step) else None
            if op is not None:
                slot[s, j] = step[j] + 1
                e0[s, j], e[s, j] = _embedding(op, lead, second)
            if not plan.general:
                coef[s, j] = _block_coefficients(op, lead, second)
    mt = max([len(t) for t in plan.tails] + [1])
    tail_slot = np.zeros((n, mt), dtype=np.int32)
    for q, tail in enumerate(plan.tails):
        for j, i in enumerate(tail):
            tail_slot[q, j] = i + 1
    f32 = np.float32
    return Tables(op_gate, op_kind, slot, coef.astype(f32), e0.astype(f32), e.astype(f32), tail_slot)
