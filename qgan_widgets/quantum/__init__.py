"""Quantum: the style-based circuit in Cirq and the simulators that run it.

Bottom wing (with :mod:`qgan_widgets.data`). Taught in notebook ``03_style_quantum_generator``.

- :mod:`.circuits`: the style circuit (RY RZ RY RZ + entanglers + final RY, every angle
  ``w * xi_j + b``), parameter counts, readouts, text / SVG / QASM views;
- :mod:`.statevector_plan`: the circuit compiled into two-qubit-window steps and tables (NumPy, Cirq);
- :mod:`.statevector`: the exact batched state-vector backend (TensorFlow / XLA, adjoint gradient);
- :mod:`.backends`: the backends by name (``statevector``, ``tfq``, ``qsim``) and their errors;
- :mod:`.plateaus`: barren plateaus: the variance of a readout's gradient against the qubit count.
"""
from __future__ import annotations

from qgan_widgets.quantum.circuits import (
    StyleCircuit, style_circuit, count_parameters, readout_observables, latent_dim_for, gate_table,
    entangler_pairs, check_size, ENTANGLERS, READOUTS, NOISE_MAPS, to_text, to_svg, to_qasm, cry_to_cnots,
)
from qgan_widgets.quantum.statevector_plan import Plan, StateVectorError, compile_plan
from qgan_widgets.quantum.backends import (
    BACKENDS, TRAINABLE_BACKENDS, DEFAULT_BACKEND, make_backend, TFQBackend, QSimBackend, GeneratorError,
    NotDifferentiableError, SimulationTooLargeError,
)
from qgan_widgets.quantum.plateaus import decay_per_qubit, gradient_variance
from qgan_widgets import lazy_face

# the state-vector backend imports TensorFlow: loaded on first use
__getattr__, __dir__ = lazy_face(__name__, dict.fromkeys(
    ["StateVectorBackend", "MemoryLimitError", "memory_bytes", "flops_per_step", "clear_caches"], "statevector"))

__all__ = [
    "StyleCircuit", "style_circuit", "count_parameters", "readout_observables", "latent_dim_for",
    "gate_table", "entangler_pairs", "check_size", "ENTANGLERS", "READOUTS", "NOISE_MAPS", "to_text", "to_svg",
    "to_qasm", "cry_to_cnots", "Plan", "StateVectorError", "compile_plan", "StateVectorBackend",
    "MemoryLimitError", "memory_bytes", "flops_per_step", "clear_caches", "BACKENDS", "TRAINABLE_BACKENDS",
    "DEFAULT_BACKEND", "make_backend", "TFQBackend", "QSimBackend", "GeneratorError",
    "NotDifferentiableError", "SimulationTooLargeError", "gradient_variance", "decay_per_qubit",
]
