"""Barren plateaus: how the gradient of a readout shrinks with the number of qubits.

For a parameterised circuit whose parameters are drawn at random, the variance of a gradient
component over the draws measures how much signal training starts with. McClean et al. (2018)
showed that for random circuits deep enough to scramble (here: as many layers as qubits) this
variance falls exponentially with the qubit count, a *barren plateau*: the landscape is flat almost
everywhere, and a gradient estimated from finitely many shots is mostly noise. Cerezo et al. (2021)
showed that local observables (one qubit's ``<Z>``, as the style generator reads out) keep
trainable gradients only for shallow circuits, and that starting near a simple point (small angles)
is a mitigation.

:func:`gradient_variance` measures it on the style circuit with the exact statevector backend:
for each qubit count, ``n_samples`` random parameter draws as one batch (every sample has its own
angles), the gradient of ``<Z_0>`` with respect to the first gate's angle, and its variance. Two
initialisations are compared:

* ``"small"``: the toolkit's generator initialisation: angles ``w * xi + b`` with ``w, b`` uniform in
  ``[-scale, scale]`` (``scale`` 0.15, as :class:`~qgan_widgets.models.QuantumGenerator`) and noise
  ``xi`` standard normal;
* ``"full"``: every angle uniform in ``[0, 2 pi)``, the random circuits of the barren-plateau papers.

Taught in notebook ``03_style_quantum_generator`` (and linked from ``06_capacity_scaling``).
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from qgan_widgets.quantum.backends import make_backend
from qgan_widgets.quantum.circuits import check_size, readout_observables, style_circuit

INITS = ("small", "full")


def random_angles(style, n_samples: int, init: str, scale: float, rng: np.random.Generator) -> np.ndarray:
    """``(n_samples, num_gates)`` float32 angles drawn as ``init`` says (see the module docstring)."""
    if init == "full":
        return rng.uniform(0.0, 2.0 * math.pi, (n_samples, style.num_gates)).astype(np.float32)
    if init != "small":
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    w = rng.uniform(-scale, scale, (n_samples, style.num_gates))
    b = rng.uniform(-scale, scale, (n_samples, style.num_gates))
    xi = rng.standard_normal((n_samples, style.noise_dim))[:, style.noise_index]
    return (w * xi + b).astype(np.float32)


def gradient_variance(qubits: Iterable[int] = range(2, 13, 2), layers: int | None = None,
                      inits: Iterable[str] = INITS, n_samples: int = 256, scale: float = 0.15,
                      entangler: str = "cry-ring", seed: int = 0) -> list[dict]:
    """Variance over random draws of ``d<Z_0>/d theta_0`` for each qubit count and initialisation.

    ``layers``: circuit depth (default: as many layers as qubits, deep enough to scramble).
    Returns one row per (qubits, init): ``num_qubits``, ``num_layers``, ``init``, ``variance``,
    ``mean_abs_grad``, ``n_samples``, ``seed``. Seconds for up to 12 qubits on 2 cores.
    """
    from qgan_widgets._tf import tf

    n_samples = check_size("n_samples", n_samples, minimum=2)
    rng = np.random.default_rng(seed)
    rows = []
    for n in qubits:
        n = check_size("num_qubits", n)
        depth = n if layers is None else check_size("layers", layers)
        style = style_circuit(n, depth, entangler)
        backend = make_backend("statevector", style, readout_observables(style.qubits, "z")[:1])
        for init in inits:
            theta = tf.Variable(random_angles(style, n_samples, init, scale, rng))
            with tf.GradientTape() as tape:
                z0 = tf.reduce_sum(backend(theta))  # samples are independent: one gradient row each
            grad = tape.gradient(z0, theta).numpy()[:, 0].astype(np.float64)
            rows.append({"num_qubits": n, "num_layers": depth, "init": init, "variance": float(np.var(grad)),
                         "mean_abs_grad": float(np.mean(np.abs(grad))), "n_samples": n_samples, "seed": seed})
    return rows


def decay_per_qubit(rows: list[dict], init: str) -> float:
    """The fitted factor by which the variance shrinks per added qubit (least squares on log variance)."""
    sel = [r for r in rows if r["init"] == init and r["variance"] > 0]
    if len(sel) < 2:
        raise ValueError(f"need at least two qubit counts with init {init!r}")
    x = np.array([r["num_qubits"] for r in sel], dtype=np.float64)
    y = np.log([r["variance"] for r in sel])
    slope = np.polyfit(x, y, 1)[0]
    return float(np.exp(slope))
