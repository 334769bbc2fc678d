"""The style circuit: structure, parameter counts, noise indices, text/SVG/QASM and the gate table."""
from __future__ import annotations

import re

import cirq
import numpy as np
import pytest

from qgan_widgets.quantum import circuits
from qgan_widgets.quantum import count_parameters, gate_table, readout_observables, style_circuit


# -- counts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n, layers, entangler, expected", [
    (1, 1, "none", 10),        # the paper's single-qubit generator
    (3, 1, "cry-pairs", 34),   # the paper's 3-qubit generator, 1 layer
    (3, 2, "cry-pairs", 62),   # ... and 2 layers
])
def test_counts_reproduce_the_style_qgan_paper(n, layers, entangler, expected):
    assert count_parameters(n, layers, entangler) == expected
    assert style_circuit(n, layers, entangler).num_parameters == expected


@pytest.mark.parametrize("n", [2, 3, 4, 6])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_cry_ring_count_is_10nL_plus_2n(n, layers):
    style = style_circuit(n, layers, "cry-ring")
    assert count_parameters(n, layers, "cry-ring") == 10 * n * layers + 2 * n == style.num_parameters
    assert len(cirq.parameter_symbols(style.circuit)) == style.num_gates == style.num_parameters // 2


@pytest.mark.parametrize("entangler", circuits.ENTANGLERS)
def test_count_without_building_matches_the_built_circuit(entangler):
    for n in ([3] if entangler == "cry-pairs" else [1, 2, 3, 5]):
        for layers in (1, 2, 4):
            style = style_circuit(n, layers, entangler)
            assert count_parameters(n, layers, entangler) == style.num_parameters
            assert len(style.symbols) == len(set(style.symbols)) == style.num_gates


def test_cz_ring_and_none_have_only_the_rotations():
    for entangler in ("none", "cz-ring"):
        assert count_parameters(4, 2, entangler) == 2 * (4 * 4 * 2 + 4)
    cz = style_circuit(4, 2, "cz-ring").circuit
    assert sum(isinstance(op.gate, cirq.CZPowGate) for op in cz.all_operations()) == 8


# -- structure --------------------------------------------------------------------------------

def test_gate_order_per_layer_and_qubit():
    style = style_circuit(3, 2, "cry-ring")
    kinds = [g.kind for g in style.gates]
    per_layer = ["ry", "rz", "ry", "rz"] * 3 + ["cry"] * 3
    assert kinds == per_layer * 2 + ["ry"] * 3
    first = style.gates[:12]
    assert [g.qubits for g in first] == [(q,) for q in range(3) for _ in range(4)]
    assert [g.qubits for g in style.gates[12:15]] == [(0, 1), (1, 2), (2, 0)]
    assert [g.layer for g in style.gates[-3:]] == [2, 2, 2]  # the final RY layer
    # Each symbol sits on exactly one operation, of the gate's kind and on the gate's qubits, and
    # on each qubit the symbols come in gate order.
    where = {}
    for op in style.circuit.all_operations():
        (sym,) = cirq.parameter_symbols(op)
        assert str(sym) not in where
        kind = "cry" if isinstance(op, cirq.ControlledOperation) else type(op.gate).__name__.lower()
        where[str(sym)] = (kind, tuple(q.x for q in op.qubits))
    assert where == {str(g.symbol): (g.kind, g.qubits) for g in style.gates}
    for q in range(3):
        on_q = [str(s) for op in style.circuit.all_operations() if q in {x.x for x in op.qubits}
                for s in cirq.parameter_symbols(op)]
        assert on_q == [str(g.symbol) for g in style.gates if q in g.qubits]
    # Every CRY is a controlled RY with the right control and target.
    crys = [op for op in style.circuit.all_operations() if isinstance(op, cirq.ControlledOperation)]
    assert [(op.controls[0].x, op.sub_operation.qubits[0].x) for op in crys] == [(0, 1), (1, 2), (2, 0)] * 2


def test_cry_pairs_alternates_between_layers():
    style = style_circuit(3, 3, "cry-pairs")
    pairs = [(g.layer, g.qubits) for g in style.gates if g.kind == "cry"]
    assert pairs == [(0, (0, 1)), (0, (0, 2)), (1, (1, 2)), (1, (2, 0)), (2, (0, 1)), (2, (0, 2))]


def test_noise_index_cycles_through_the_noise_vector():
    style = style_circuit(3, 1, "cry-ring", noise_dim=2)
    assert style.noise_index.tolist() == [k % 2 for k in range(style.num_gates)]
    assert style_circuit(2, 1, "none").noise_index.tolist() == [k % 2 for k in range(10)]


def test_one_qubit_ring_has_no_entangler_and_two_qubits_no_duplicate_cz():
    assert count_parameters(1, 3, "cry-ring") == count_parameters(1, 3, "none") == 2 * (4 * 3 + 1)
    cz = style_circuit(2, 1, "cz-ring").circuit
    assert sum(isinstance(op.gate, cirq.CZPowGate) for op in cz.all_operations()) == 1


def test_readout_observables_order():
    q = cirq.LineQubit.range(3)
    assert readout_observables(q, "z") == [cirq.Z(x) * 1.0 for x in q]
    assert readout_observables(q, "xz") == [cirq.X(x) * 1.0 for x in q] + [cirq.Z(x) * 1.0 for x in q]
    assert circuits.latent_dim_for(3, "xz") == 6 and circuits.latent_dim_for(3, "z") == 3


# -- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    ({"num_qubits": 0, "num_layers": 1}, "num_qubits must be an integer >= 1, got 0"),
    ({"num_qubits": 3.0, "num_layers": 1}, "must be an integer, got the float 3.0"),
    ({"num_qubits": "3", "num_layers": 1}, "num_qubits must be an integer"),
    ({"num_qubits": True, "num_layers": 1}, "num_qubits must be an integer"),
    ({"num_qubits": 3, "num_layers": -1}, "num_layers must be an integer >= 1, got -1"),
    ({"num_qubits": 3, "num_layers": 1, "entangler": "cnot"}, "entangler must be one of none, cry-ring"),
    ({"num_qubits": 4, "num_layers": 1, "entangler": "cry-pairs"}, "needs num_qubits=3"),
    ({"num_qubits": 3, "num_layers": 1, "noise_dim": 0}, "noise_dim must be an integer >= 1"),
])
def test_bad_circuits_are_refused_clearly(kwargs, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        style_circuit(**kwargs)
    if "noise_dim" not in kwargs:
        with pytest.raises(ValueError, match=re.escape(words)):
            count_parameters(**kwargs)


def test_bad_readout_and_angles_are_refused():
    with pytest.raises(ValueError, match="readout must be one of z, xz"):
        readout_observables(cirq.LineQubit.range(2), "y")
    with pytest.raises(ValueError, match="expected 5 values \(one per gate\), got 9"):
        style_circuit(1, 1, "none").resolve([0.1] * 9)


# -- looking at it ----------------------------------------------------------------------------

def test_text_and_svg():
    style = style_circuit(3, 1, "cry-ring")
    text = circuits.to_text(style)
    assert "Ry(theta_0)" in text and "Rz(theta_1)" in text and "@" in text
    svg = circuits.to_svg(style)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>") and "theta_12" in svg
    resolved = circuits.to_svg(style.resolve(np.linspace(-1, 1, style.num_gates)))
    assert resolved.startswith("<svg") and "theta" not in resolved
    with pytest.raises(ValueError, match="StyleCircuit or a cirq.Circuit"):
        circuits.to_text("not a circuit")


def test_svg_label_widths_never_clip():
    """to_svg sizes gate boxes from font advance widths instead of Cirq's outline extents (20-30x
    faster): never narrower than Cirq's box (a label would clip), at most a few pixels wider."""
    import matplotlib.textpath
    from cirq.contrib.svg import svg

    def cirq_width(t):  # cirq.contrib.svg.svg._get_text_width, as Cirq 1.5 writes it
        return matplotlib.textpath.TextPath((0, 0), svg.fixup_text(t), size=14, prop=svg.FONT).get_extents().width + 10

    for label in ["Ry(theta_0)", "Rz(theta_491)", "Ry(-0.5π)", "Ry(0.123π)", "@", "X", "Ry(theta_12)^-1"]:
        assert cirq_width(label) <= circuits._text_width(label) <= cirq_width(label) + 4, label
    assert circuits._text_width("") == svg.EMPTY_MOMENT_COLWIDTH


_QASM_OP = re.compile(r"^(ry|rz|cx|cz)(?:\((.*)\))? q\[(\d+)\](?:,q\[(\d+)\])?;$")


def _circuit_from_our_qasm(text: str, n: int) -> cirq.Circuit:
    """A tiny independent reader for the QASM subset the style circuit exports (ry rz cx cz)."""
    q = cirq.LineQubit.range(n)
    ops = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("//", "OPENQASM", "include", "qreg")):
            continue
        m = _QASM_OP.match(line)
        assert m, f"unexpected QASM line {line!r}"
        name, arg, a, b = m.groups()
        angle = float(eval(arg, {"pi": np.pi})) if arg else None  # noqa: S307 - 'pi*0.12' from our own export
        if name == "ry":
            ops.append(cirq.ry(angle).on(q[int(a)]))
        elif name == "rz":
            ops.append(cirq.rz(angle).on(q[int(a)]))
        elif name == "cx":
            ops.append(cirq.CNOT(q[int(a)], q[int(b)]))
        else:
            ops.append(cirq.CZ(q[int(a)], q[int(b)]))
    return cirq.Circuit(ops)


@pytest.mark.parametrize("n, layers, entangler", [(3, 2, "cry-ring"), (3, 2, "cry-pairs"), (4, 1, "cz-ring"), (2, 2, "cry-ring")])
def test_qasm_export_runs_the_same_circuit(n, layers, entangler):
    style = style_circuit(n, layers, entangler)
    angles = np.random.default_rng(1).uniform(-np.pi, np.pi, style.num_gates)
    resolved = style.resolve(angles)
    text = circuits.to_qasm(resolved)
    assert text.count("OPENQASM 2.0") == 1 and "cry" not in text.lower().replace("// ", "")
    if entangler.startswith("cry"):
        assert "cx q[" in text
    reread = _circuit_from_our_qasm(text, n)
    # Same final state up to a global phase (QASM's rz differs from Cirq's by a phase only).
    want = cirq.final_state_vector(resolved, qubit_order=style.qubits, dtype=np.complex128)
    got = cirq.final_state_vector(reread, qubit_order=cirq.LineQubit.range(n), dtype=np.complex128)
    assert cirq.allclose_up_to_global_phase(got, want, atol=1e-8)


def test_cry_decomposition_is_exact():
    c, t = cirq.LineQubit.range(2)
    for angle in (0.3, -2.1, np.pi):
        op = cirq.ry(angle).on(t).controlled_by(c)
        u = cirq.unitary(cirq.Circuit(circuits.cry_to_cnots(op)))
        np.testing.assert_allclose(u, cirq.unitary(op), atol=1e-12)  # no global phase either


def test_qasm_refuses_a_symbolic_circuit():
    with pytest.raises(ValueError, match="needs a resolved circuit.*circuit_for"):
        circuits.to_qasm(style_circuit(2, 1))


def test_gate_table_shows_the_noise_to_angle_mapping():
    style = style_circuit(3, 1, "cry-ring", noise_dim=2)
    table = gate_table(style)
    assert list(table.columns) == ["gate", "symbol", "kind", "qubits", "layer", "noise_index"]
    assert len(table) == style.num_gates
    assert table["noise_index"].tolist() == [k % 2 for k in range(style.num_gates)]
    assert table.loc[12, "qubits"] == "0->1" and table.loc[12, "kind"] == "cry"
    rng = np.random.default_rng(0)
    w, b, xi = rng.normal(size=style.num_gates), rng.normal(size=style.num_gates), np.array([0.5, -2.0])
    full = gate_table(style, w, b, xi)
    assert list(full.columns)[-4:] == ["w", "b", "xi_j", "angle"]
    for k in range(style.num_gates):
        assert full.loc[k, "xi_j"] == xi[k % 2]
        assert full.loc[k, "angle"] == pytest.approx(w[k] * xi[k % 2] + b[k])
    with pytest.raises(ValueError, match="noise: expected 2 values"):
        gate_table(style, w, b, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=f"weights: expected {style.num_gates} values"):
        gate_table(style, w[:3], b)
    with pytest.raises(ValueError, match="both weights and biases"):
        gate_table(style, w)
