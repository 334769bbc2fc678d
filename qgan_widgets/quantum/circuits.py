"""The style-based quantum generator's circuit (Bravo-Prieto et al. 2022), built in Cirq.

Taught in notebook ``03_style_quantum_generator``. Per layer and qubit: RY, RZ, RY, RZ; then the
layer's entangling gates; after the last layer one RY per qubit. Every parameterised gate ``k``
(controlled ones too) has its own sympy symbol ``theta_k`` whose value, for one noise sample
``xi``, is::

    theta_k = w_k * xi[j_k] + b_k,      j_k = k mod noise_dim     (noise_map="cyclic", the default)

with a trainable weight ``w_k`` and bias ``b_k`` per gate: the noise enters every gate, as the
"style" enters every layer of a style-based GAN. ``noise_map="style-qgan"`` uses the original
implementation's assignment instead (Qibo's ``StyleQGAN.set_params``, the code of Bravo-Prieto et al.):
a counter advances after every gate except the first RZ of each RY RZ RY RZ block, so that RZ and
the RY after it share a noise component (block indices ``c, c+1, c+1, c+2``, then ``c += 3``);
entanglers and the final RY advance it after each gate, all modulo ``noise_dim``. (That code also
reuses its sample index as the entangler loop variable, so after the first layer every sample got
the same noise; that is a bug, not a design, and is not copied.) The circuit is built by small functions of
``(qubits, symbols)``, as in TensorFlow Quantum's tutorials; every simulator backend compiles the
same :class:`StyleCircuit`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cirq
import numpy as np
import sympy

ENTANGLERS = ("none", "cry-ring", "cry-pairs", "cz-ring")
READOUTS = ("z", "xz")
NOISE_MAPS = ("cyclic", "style-qgan")
"""How gate k picks its noise component j_k (see the module docstring)."""


@dataclass(frozen=True)
class GateInfo:
    """One parameterised gate: its symbol, kind ('ry', 'rz', 'cry'), qubit indices and layer.

    ``layer`` is ``num_layers`` for the final RY layer. ``noise_index`` is ``j_k``.
    """

    index: int
    symbol: sympy.Symbol
    kind: str
    qubits: tuple[int, ...]
    layer: int
    noise_index: int


@dataclass(frozen=True)
class StyleCircuit:
    """A built style circuit: the Cirq circuit with symbols plus the table of its gates."""

    num_qubits: int
    num_layers: int
    entangler: str
    noise_dim: int
    qubits: tuple[cirq.LineQubit, ...]
    circuit: cirq.Circuit
    gates: tuple[GateInfo, ...]
    noise_map: str = "cyclic"

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        """The symbols in gate order (the column order of an angle batch)."""
        return tuple(g.symbol for g in self.gates)

    @property
    def symbol_names(self) -> list[str]:
        return [str(s) for s in self.symbols]

    @property
    def noise_index(self) -> np.ndarray:
        """``j_k`` for every gate ``k``, as an int64 array of shape (num_gates,)."""
        return np.array([g.noise_index for g in self.gates], dtype=np.int64)

    @property
    def num_gates(self) -> int:
        return len(self.gates)

    @property
    def num_parameters(self) -> int:
        """Trainable parameters: a weight and a bias per parameterised gate."""
        return 2 * len(self.gates)

    def resolve(self, angles: Sequence[float]) -> cirq.Circuit:
        """The circuit with every symbol replaced by the given angles (gate order)."""
        angles = np.asarray(angles, dtype=np.float64).reshape(-1)
        if angles.shape[0] != self.num_gates:
            raise ValueError(f"angles: expected {self.num_gates} values (one per gate), got {angles.shape[0]}")
        return cirq.resolve_parameters(self.circuit, dict(zip(self.symbol_names, angles.tolist())))


def check_size(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``, else raise a clear ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            raise ValueError(f"{name} must be an integer, got the float {value!r}; write {int(value)}")
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def entangler_pairs(entangler: str, num_qubits: int, layer: int) -> list[tuple[int, int]]:
    """(control, target) qubit indices of one layer's entangling gates."""
    if entangler not in ENTANGLERS:
        raise ValueError(f"entangler must be one of {', '.join(ENTANGLERS)}; got {entangler!r}")
    if entangler == "none" or num_qubits == 1:
        return []
    if entangler == "cry-pairs":
        if num_qubits != 3:
            raise ValueError(
                f"entangler 'cry-pairs' is the original 3-qubit pattern and needs num_qubits=3, got "
                f"{num_qubits}; use 'cry-ring' for other sizes"
            )
        return [(0, 1), (0, 2)] if layer % 2 == 0 else [(1, 2), (2, 0)]
    if num_qubits == 2:  # a ring of two would repeat the same pair twice for CZ
        return [(0, 1), (1, 0)] if entangler == "cry-ring" else [(0, 1)]
    return [(i, (i + 1) % num_qubits) for i in range(num_qubits)]


def rotation_layer(qubits: Sequence[cirq.Qid], symbols: Sequence[sympy.Symbol]) -> list[cirq.Operation]:
    """RY RZ RY RZ on every qubit: four symbols per qubit, in qubit-major order."""
    ops = []
    for i, q in enumerate(qubits):
        s = symbols[4 * i : 4 * i + 4]
        ops += [cirq.ry(s[0]).on(q), cirq.rz(s[1]).on(q), cirq.ry(s[2]).on(q), cirq.rz(s[3]).on(q)]
    return ops


def entangling_layer(
    qubits: Sequence[cirq.Qid], pairs: Sequence[tuple[int, int]], symbols: Sequence[sympy.Symbol] | None
) -> list[cirq.Operation]:
    """Controlled-RY gates on the (control, target) pairs, or parameter-free CZs if ``symbols`` is None."""
    if symbols is None:
        return [cirq.CZ(qubits[c], qubits[t]) for c, t in pairs]
    return [cirq.ry(s).on(qubits[t]).controlled_by(qubits[c]) for (c, t), s in zip(pairs, symbols)]


def final_layer(qubits: Sequence[cirq.Qid], symbols: Sequence[sympy.Symbol]) -> list[cirq.Operation]:
    """One RY per qubit."""
    return [cirq.ry(s).on(q) for q, s in zip(qubits, symbols)]


def style_circuit(
    num_qubits: int, num_layers: int, entangler: str = "cry-ring", noise_dim: int | None = None,
    noise_map: str = "cyclic",
) -> StyleCircuit:
    """Build the style-based generator circuit with one sympy symbol per parameterised gate.

    ``noise_map``: which noise component each gate takes, ``"cyclic"`` or ``"style-qgan"`` (module docstring).
    """
    n = check_size("num_qubits", num_qubits)
    layers = check_size("num_layers", num_layers)
    noise_dim = n if noise_dim is None else check_size("noise_dim", noise_dim)
    if noise_map not in NOISE_MAPS:
        raise ValueError(f"noise_map must be one of {', '.join(NOISE_MAPS)}; got {noise_map!r}")
    qubits = tuple(cirq.LineQubit.range(n))
    gates: list[GateInfo] = []
    counter = [0]  # the original implementation's noise counter

    def noise_of(k: int) -> int:
        return (k if noise_map == "cyclic" else counter[0]) % noise_dim

    def new_symbols(count: int, kinds: Sequence[str], wires: Sequence[tuple[int, ...]], layer: int,
                    shared: Sequence[bool] = ()):
        out = []
        for i, (kind, wire) in enumerate(zip(kinds, wires)):
            k = len(gates)
            sym = sympy.Symbol(f"theta_{k}")
            gates.append(GateInfo(k, sym, kind, tuple(wire), layer, noise_of(k)))
            if not (shared and shared[i]):  # the first RZ of a block does not advance the counter
                counter[0] += 1
            out.append(sym)
        assert len(out) == count
        return out

    circuit = cirq.Circuit()
    for layer in range(layers):
        kinds = ["ry", "rz", "ry", "rz"] * n
        wires = [(q,) for q in range(n) for _ in range(4)]
        circuit += rotation_layer(qubits, new_symbols(4 * n, kinds, wires, layer, [False, True, False, False] * n))
        pairs = entangler_pairs(entangler, n, layer)
        if entangler == "cz-ring":
            circuit += entangling_layer(qubits, pairs, None)
        elif pairs:
            circuit += entangling_layer(qubits, pairs, new_symbols(len(pairs), ["cry"] * len(pairs), pairs, layer))
    circuit += final_layer(qubits, new_symbols(n, ["ry"] * n, [(q,) for q in range(n)], layers))
    return StyleCircuit(n, layers, entangler, noise_dim, qubits, circuit, tuple(gates), noise_map)


def count_parameters(num_qubits: int, num_layers: int, entangler: str = "cry-ring") -> int:
    """Trainable parameters (weights and biases) of the style circuit, without building it.

    Reproduces the style-qGAN paper: 1 qubit, 1 layer, no entangler = 10; 3 qubits with
    ``"cry-pairs"``: 1 layer = 34, 2 layers = 62; ``"cry-ring"``: 10 n L + 2 n.
    """
    n = check_size("num_qubits", num_qubits)
    layers = check_size("num_layers", num_layers)
    gates = 4 * n * layers + n
    if entangler != "cz-ring":
        gates += sum(len(entangler_pairs(entangler, n, layer)) for layer in range(layers))
    else:
        entangler_pairs(entangler, n, 0)  # validates the name
    return 2 * gates


def readout_observables(qubits: Sequence[cirq.Qid], readout: str = "z") -> list[cirq.PauliString]:
    """Pauli observables in output-column order: ``"z"`` -> Z_k; ``"xz"`` -> all X_k, then all Z_k."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}; got {readout!r}")
    zs = [cirq.Z(q) * 1.0 for q in qubits]
    if readout == "z":
        return zs
    return [cirq.X(q) * 1.0 for q in qubits] + zs


def latent_dim_for(num_qubits: int, readout: str = "z") -> int:
    """Length of the latent vector the circuit's readout produces."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}; got {readout!r}")
    return num_qubits if readout == "z" else 2 * num_qubits


# ---------------------------------------------------------------------------------------------
# Looking at a circuit: text, SVG, QASM and the noise-to-angle gate table (notebook 03).
# ---------------------------------------------------------------------------------------------


def _as_circuit(circuit) -> cirq.Circuit:
    """Accept a :class:`StyleCircuit` or a ``cirq.Circuit`` and return the Cirq circuit."""
    if isinstance(circuit, StyleCircuit):
        return circuit.circuit
    if isinstance(circuit, cirq.AbstractCircuit):
        return cirq.Circuit(circuit)
    raise ValueError(f"expected a StyleCircuit or a cirq.Circuit, got {type(circuit).__name__}")


def to_text(circuit) -> str:
    """The circuit (``StyleCircuit`` or ``cirq.Circuit``) as Cirq's text diagram (notebook 03)."""
    return _as_circuit(circuit).to_text_diagram(transpose=False)


def to_svg(circuit) -> str:
    """The circuit as an SVG string (``cirq.contrib.svg``), for notebooks and the dashboard.

    In a notebook, ``IPython.display.SVG(to_svg(style))`` shows it; symbols are printed by name,
    resolved angles as multiples of pi (notebook 03).
    """
    from cirq.contrib.svg import circuit_to_svg, svg

    if getattr(svg, "_get_text_width", None) is not None and svg._get_text_width is not _text_width:
        svg._get_text_width = _text_width  # 20-30x faster at 12 qubits: see _text_width
    return circuit_to_svg(_as_circuit(circuit))


def _text_width(text: str) -> float:
    """Width of a gate label in Cirq's SVG, from the font's advance widths. Cirq measures the outline of
    every label (``TextPath(...).get_extents()``: 16 ms a label, 3 s for a 12-qubit, 4-layer circuit);
    the advance width is 0-3 px wider (never clips) and takes microseconds."""
    from cirq.contrib.svg import svg
    from matplotlib.textpath import TextToPath

    if text == "":
        return svg.EMPTY_MOMENT_COLWIDTH
    prop = svg.FONT.copy()
    prop.set_size(14)
    width, _height, _descent = TextToPath().get_text_width_height_descent(svg.fixup_text(text), prop, ismath=False)
    return width + 10


def cry_to_cnots(op: cirq.Operation) -> list[cirq.Operation] | cirq.Operation:
    """Replace a controlled RY by the exact ``RY(t/2); CX; RY(-t/2); CX`` sequence; keep other ops.

    With the control in |0> the two half-rotations cancel; with it in |1> the CXs flip the sign of
    the middle rotation (X RY(a) X = RY(-a)), giving RY(t) on the target. No global phase.
    """
    if isinstance(op, cirq.ControlledOperation) and len(op.controls) == 1:
        sub = op.sub_operation
        if isinstance(sub.gate, cirq.Ry) and all(v == (1,) for v in op.control_values.expand()):
            (control,), (target,) = op.controls, sub.qubits
            half = sub.gate.exponent * np.pi / 2  # cirq.ry(t) has exponent t / pi
            return [
                cirq.ry(half).on(target),
                cirq.CNOT(control, target),
                cirq.ry(-half).on(target),
                cirq.CNOT(control, target),
            ]
    return op


def to_qasm(resolved_circuit) -> str:
    """OpenQASM 2.0 text of a fully resolved circuit, to run the generator on hardware (notebook 03).

    Take the circuit of one sample from ``QuantumGenerator.circuit_for(noise)`` or
    ``StyleCircuit.resolve(angles)``. Controlled RYs are written as ``ry`` / ``cx`` (see
    :func:`cry_to_cnots`); RZ is exported as ``rz``, equal up to a global phase.
    """
    circuit = _as_circuit(resolved_circuit)
    if cirq.is_parameterized(circuit):
        names = sorted(str(s) for s in cirq.parameter_symbols(circuit))
        shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        raise ValueError(
            f"to_qasm needs a resolved circuit, but {len(names)} symbols are unresolved ({shown}); use "
            "QuantumGenerator.circuit_for(noise_vector) or StyleCircuit.resolve(angles) first"
        )
    flat = cirq.map_operations_and_unroll(circuit, lambda op, _: cry_to_cnots(op))
    return cirq.qasm(flat)


def gate_table(style: StyleCircuit, weights=None, biases=None, noise=None):
    """One row per parameterised gate: how the noise reaches the angles (notebook 03).

    Columns ``gate`` (k), ``symbol``, ``kind`` ('ry', 'rz', 'cry'), ``qubits`` ('2' or '0->1' for
    control -> target), ``layer`` (``num_layers`` is the final RY layer) and ``noise_index`` (j_k).
    Given the weights ``w`` and biases ``b`` (length ``num_gates``) it adds them; given one noise
    vector ``xi`` (length ``noise_dim``) too, it adds ``xi_j`` and ``angle = w_k * xi_j + b_k``.
    """
    import pandas as pd

    if not isinstance(style, StyleCircuit):
        raise ValueError(f"gate_table needs a StyleCircuit (from style_circuit), got {type(style).__name__}")
    rows = {
        "gate": [g.index for g in style.gates],
        "symbol": [str(g.symbol) for g in style.gates],
        "kind": [g.kind for g in style.gates],
        "qubits": ["->".join(str(q) for q in g.qubits) for g in style.gates],
        "layer": [g.layer for g in style.gates],
        "noise_index": [g.noise_index for g in style.gates],
    }

    def vector(name, value, length, what):
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
        if arr.shape[0] != length:
            raise ValueError(f"{name}: expected {length} values ({what}), got {arr.shape[0]}")
        return arr

    if (weights is None) != (biases is None):
        raise ValueError("gate_table: give both weights and biases, or neither")
    if noise is not None and weights is None:
        raise ValueError("gate_table: the angles need weights and biases as well as the noise")
    if weights is not None:
        w = vector("weights", weights, style.num_gates, "one per gate")
        b = vector("biases", biases, style.num_gates, "one per gate")
        rows["w"], rows["b"] = w, b
        if noise is not None:
            xi = vector("noise", noise, style.noise_dim, "one noise vector of length noise_dim")
            rows["xi_j"] = xi[style.noise_index]
            rows["angle"] = w * rows["xi_j"] + b
    return pd.DataFrame(rows)
