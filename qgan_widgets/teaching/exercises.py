"""Classroom self-checks: a student writes an answer, a ``check_*`` function says whether it is right.

Every checker prints a friendly verdict and returns ``True`` (correct) or ``False``:

* ``answer = None`` (the placeholder the notebooks ship with) gets "no answer yet" and ``False``,
  nothing more (no hint: try first), so a notebook with unanswered exercises still runs;
* a wrong answer gets "not quite" and a hint aimed at the usual mistake (e.g. counting gates
  instead of parameters), never the solution;
* ``reveal=True``, or ``QGAN_REVEAL=1`` in the environment (a teacher's answer key: run the
  notebooks with it to see every expected answer), also prints the expected answer.

Beside the computed answers there are two kinds of questions about understanding:
:func:`check_choice` (multiple choice, :data:`QUESTIONS`, each wrong option with its own
feedback) and :func:`check_prediction` (predict, then run: the measured value decides).

The correct answers are computed by the package itself (:func:`qgan_widgets.quantum.circuits.count_parameters`,
:func:`qgan_widgets.models.capacity.critic_count_parameters`, :func:`qgan_widgets.scores.metrics.frechet_distance`,
...), so an exercise can never disagree with the code it teaches. Where each is used:

========================================  =====================================
checker                                   notebook
========================================  =====================================
:func:`check_ndvi`                        ``01_sat4_data``
:func:`check_latent_range`                ``00_welcome``, ``02_vae_latent_space``
:func:`check_parameter_count`             ``03_style_quantum_generator``
:func:`check_noise_index`                 ``03_style_quantum_generator``
:func:`check_angle`                       ``03_style_quantum_generator``
:func:`check_latent_dim`                  ``03_style_quantum_generator``
:func:`check_statevector_memory`          ``03_style_quantum_generator``
:func:`check_critic_parameters`           ``04_training_latent_style_qgan``
:func:`check_gp_target`                   ``04_training_latent_style_qgan``
:func:`check_frechet_1d`                  ``04_training_latent_style_qgan``
:func:`check_classical_parameters`        ``05_classical_vs_quantum``
:func:`check_growth_factor`               ``06_capacity_scaling``
:func:`check_choice`                      ``02``, ``05``, ``06``, ``07`` (:data:`QUESTIONS`)
:func:`check_prediction`                  ``03_style_quantum_generator``, ``04_training_latent_style_qgan``
========================================  =====================================
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = [
    "check_ndvi", "check_latent_range", "check_parameter_count", "check_noise_index", "check_angle",
    "check_latent_dim", "check_statevector_memory", "check_critic_parameters", "check_gp_target",
    "check_frechet_1d", "check_classical_parameters", "check_growth_factor", "check_choice", "check_prediction",
    "QUESTIONS", "teacher_mode",
]

_PLACEHOLDER = "No answer yet: replace `answer = None` with your answer and run the cell again."


# ---------------------------------------------------------------------------------------------
# verdicts


def teacher_mode() -> bool:
    """True when ``QGAN_REVEAL=1``: every checker prints the expected answer (the answer key)."""
    from qgan_widgets import env_flag

    return env_flag("QGAN_REVEAL")


def _say(ok: bool | None, title: str, message: str = "", hint: str = "", expected=None,
         reveal: bool = False) -> bool:
    """Print one verdict; ``ok`` None means "no answer yet" (no hint before a first try).
    Returns ``bool(ok)``."""
    reveal = reveal or teacher_mode()
    if ok is None:
        head = f"[ ] {title}: {_PLACEHOLDER}"
    elif ok:
        head = f"[correct] {title}: well done!"
    else:
        head = f"[not quite] {title}: not quite."
    lines = [head]
    if message:
        lines.append("    " + message)
    if hint and ok is False:  # a hint only after a wrong answer
        lines.append("    Hint: " + hint)
    if reveal and expected is not None:
        lines.append(f"    (Teacher) expected answer: {expected}")
    print("\n".join(lines))
    return bool(ok)


def _number(answer):
    """``answer`` as a float, or None if it is not one number."""
    if isinstance(answer, bool):
        return None
    try:
        arr = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.size != 1:
        return None
    value = float(arr.reshape(-1)[0])
    return value if math.isfinite(value) else None


def _integer(answer):
    value = _number(answer)
    if value is None or not float(value).is_integer():
        return None
    return int(value)


def _unreadable(title: str, answer, what: str, hint: str, expected, reveal: bool) -> bool:
    return _say(False, title, f"I could not read {answer!r} as {what}.", hint, expected, reveal)


def _check_whole(title: str, answer, expected: int, hint: str, reveal: bool, right: str = "",
                 mistakes: Sequence[tuple[int | None, str, str]] = ()) -> bool:
    """The common shape of the whole-number checkers: no answer -> hint; unreadable -> say so; right;
    a known mistake ``(wrong value, message, hint)`` -> its targeted hint (``None`` values are
    skipped); anything else -> the general hint."""
    if answer is None:
        return _say(None, title, hint=hint, expected=expected, reveal=reveal)
    got = _integer(answer)
    if got is None:
        return _unreadable(title, answer, "a whole number", hint, expected, reveal)
    if got == expected:
        return _say(True, title, right, expected=expected, reveal=reveal)
    for wrong, message, mistake_hint in mistakes:
        if wrong is not None and got == wrong:
            return _say(False, title, message, mistake_hint, expected, reveal)
    return _say(False, title, hint=hint, expected=expected, reveal=reveal)


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    return abs(a - b) <= atol + rtol * abs(b)


# ---------------------------------------------------------------------------------------------
# 01: the data


def check_ndvi(nir, red, answer, reveal: bool = False) -> bool:
    """NDVI of a pixel with near-infrared value ``nir`` and red value ``red``: (NIR - R) / (NIR + R).

    Values may be 0-255 integers or [0, 1] floats (the ratio does not care). ``answer`` is a
    number (or an array of the same shape for arrays). Tolerance 1e-3. Notebook ``01_sat4_data``.
    """
    title = "NDVI"
    n, r = np.asarray(nir, dtype=np.float64), np.asarray(red, dtype=np.float64)
    total = n + r
    expected = np.divide(n - r, total, out=np.zeros(np.broadcast(n, r).shape), where=total != 0)
    hint = ("NDVI = (NIR - Red) / (NIR + Red). Vegetation reflects near infrared strongly and absorbs "
            "red, so green plants give a clearly positive value.")
    shown = np.round(expected, 4).tolist()
    if answer is None:
        return _say(None, title, hint=hint, expected=shown, reveal=reveal)
    try:
        got = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return _unreadable(title, answer, "a number", hint, shown, reveal)
    if got.shape != expected.shape and got.size != 1:
        return _say(False, title, f"your answer has shape {got.shape}, the pixels have shape {expected.shape}.",
                    hint, shown, reveal)
    if np.allclose(got, expected, atol=1e-3):
        return _say(True, title, "NDVI near 0 means bare ground; 0.2-0.6 means vegetation; below 0, water.",
                    expected=shown, reveal=reveal)
    if np.allclose(got, -expected, atol=1e-3):
        return _say(False, title, "The sign is flipped.", "it is NIR minus red, not red minus NIR.", shown, reveal)
    if np.allclose(got, n - r, atol=1e-3):
        return _say(False, title, "That is the difference only.", "divide by the sum NIR + Red.", shown, reveal)
    return _say(False, title, hint=hint, expected=shown, reveal=reveal)


# ---------------------------------------------------------------------------------------------
# 02 / 03: latents and the circuit


def check_latent_range(answer, reveal: bool = False) -> bool:
    """The range of a qubit's readout <Z> (and of the VAE's latents): give ``(low, high)``.

    Notebooks ``02_vae_latent_space`` and ``03_style_quantum_generator``.
    """
    title = "range of the latent values"
    hint = ("a latent value is an expectation <Z> = P(0) * (+1) + P(1) * (-1) of a qubit: the "
            "eigenvalues of Z are +1 and -1. Give the two ends as (low, high).")
    expected = (-1.0, 1.0)
    if answer is None:
        return _say(None, title, hint=hint, expected=expected, reveal=reveal)
    try:
        vals = [float(v) for v in answer]
    except (TypeError, ValueError):
        return _unreadable(title, answer, "two numbers (low, high)", hint, expected, reveal)
    if len(vals) != 2:
        return _say(False, title, f"give two numbers (low, high), you gave {len(vals)}.", hint, expected, reveal)
    low, high = vals
    if (low, high) == expected:
        return _say(True, title, "Quantum readouts live in [-1, 1], which is why the VAE's latents are "
                    "bounded there with tanh.", expected=expected, reveal=reveal)
    if (high, low) == expected:
        return _say(False, title, "Right numbers, wrong order.", "write (low, high).", expected, reveal)
    if (low, high) == (0.0, 1.0):
        return _say(False, title, "[0, 1] is the range of a probability, e.g. P(0).", hint, expected, reveal)
    return _say(False, title, hint=hint, expected=expected, reveal=reveal)


def check_parameter_count(num_qubits: int, num_layers: int, entangler: str, answer,
                          reveal: bool = False) -> bool:
    """Trainable parameters of the style circuit (``circuits.count_parameters``).

    Counting rule: per layer and qubit RY RZ RY RZ (4 gates); per layer the entangler's controlled-RY
    gates (``cry-ring``: one per qubit, ``cry-pairs``: 2, ``none`` and ``cz-ring``: none with
    parameters); after the last layer one RY per qubit; every parameterised gate has a weight and a
    bias. Notebook ``03_style_quantum_generator``.
    """
    from qgan_widgets.quantum import circuits

    expected = circuits.count_parameters(num_qubits, num_layers, entangler)
    gates = expected // 2
    n = int(num_qubits)
    title = f"parameters of {num_qubits} qubit(s), {num_layers} layer(s), entangler {entangler!r}"
    hint = ("count the parameterised gates: 4 rotations (RY RZ RY RZ) per qubit and layer, the "
            "entangling controlled-RYs of every layer, and one final RY per qubit; then remember that "
            "every gate has two trainable numbers, a weight w and a bias b.")
    cry = expected - 2 * (4 * n * int(num_layers) + n)
    return _check_whole(title, answer, expected, hint, reveal, f"{gates} parameterised gates x (w, b) = {expected}.", [
        (gates, f"{gates} is the number of parameterised gates.",
         "each gate's angle is w * xi + b: two trainable numbers per gate."),
        (expected - 2 * n, "Almost.", "did you forget the final RY layer after the last layer?"),
        (expected - cry if cry else None, "Almost.",
         "the controlled-RY entangling gates have angles too, so they have their own w and b."),
    ])


def check_noise_index(gate: int, noise_dim: int, answer, reveal: bool = False) -> bool:
    """Which noise component ``j`` drives gate ``k``: ``j_k = k mod noise_dim`` (gate order as in
    ``StyleCircuit.gates``). Notebook ``03_style_quantum_generator``."""
    expected = int(gate) % int(noise_dim)
    title = f"noise component of gate {gate} (noise_dim {noise_dim})"
    hint = "the noise vector is used cyclically along the gates: gate 0 gets xi_0, gate 1 xi_1, ..."
    return _check_whole(title, answer, expected, hint, reveal, f"j = {gate} mod {noise_dim} = {expected}.", [
        (expected + 1, "Off by one.", "indices start at 0 (xi_0 is the first component)."),
    ])


def check_angle(w: float, b: float, xi: float, answer, reveal: bool = False) -> bool:
    """The angle of one gate for one sample: ``theta = w * xi + b`` (``xi`` = the gate's noise
    component of that sample). Relative tolerance 1e-4. Notebook ``03_style_quantum_generator``."""
    expected = float(w) * float(xi) + float(b)
    title = "gate angle"
    hint = "every gate's angle is its weight times its noise component plus its bias: w * xi_j + b."
    shown = round(expected, 6)
    if answer is None:
        return _say(None, title, hint=hint, expected=shown, reveal=reveal)
    got = _number(answer)
    if got is None:
        return _unreadable(title, answer, "a number", hint, shown, reveal)
    if _close(got, expected, 1e-4, 1e-6):
        return _say(True, title, "Each sample has its own noise, so each sample gets its own angles.",
                    expected=shown, reveal=reveal)
    if _close(got, float(w) * float(b) + float(xi), 1e-4, 1e-6) or _close(got, float(xi) * float(b) + float(w), 1e-4, 1e-6):
        return _say(False, title, "The roles are mixed up.", "the noise is multiplied by the weight w; the "
                    "bias b is added.", shown, reveal)
    if _close(got, float(w) * float(xi), 1e-4, 1e-6):
        return _say(False, title, "Almost.", "add the bias b.", shown, reveal)
    return _say(False, title, hint=hint, expected=shown, reveal=reveal)


def check_latent_dim(num_qubits: int, readout: str, answer, reveal: bool = False) -> bool:
    """Length of the generator's latent vector: ``num_qubits`` for readout ``"z"``, twice that for
    ``"xz"`` (``circuits.latent_dim_for``). Notebook ``03_style_quantum_generator``."""
    from qgan_widgets.quantum import circuits

    expected = circuits.latent_dim_for(num_qubits, readout)
    title = f"latent size for {num_qubits} qubits, readout {readout!r}"
    hint = "one number per measured observable: readout 'z' measures <Z> on every qubit; 'xz' measures <X> and <Z>."
    return _check_whole(title, answer, expected, hint, reveal, mistakes=[
        (2 ** int(num_qubits), "2^n is the size of the state vector, not of the readout.", hint),
    ])


def check_statevector_memory(num_qubits: int, batch: int, answer, reveal: bool = False) -> bool:
    """Bytes of one batch of state vectors: ``2**num_qubits`` amplitudes x 8 bytes (complex64) x
    ``batch``. Within 1%. Notebook ``03_style_quantum_generator``."""
    expected = 2 ** int(num_qubits) * 8 * int(batch)
    title = f"memory of {batch} state vectors of {num_qubits} qubits (bytes)"
    hint = ("n qubits have 2^n complex amplitudes; a complex64 number takes 8 bytes (two float32); "
            "every sample of the batch has its own state.")
    if answer is None:
        return _say(None, title, hint=hint, expected=expected, reveal=reveal)
    got = _number(answer)
    if got is None:
        return _unreadable(title, answer, "a number of bytes", hint, expected, reveal)
    if _close(got, expected, 0.01, 0.0):
        return _say(True, title, f"{expected / 2**20:.3g} MiB; one more qubit doubles it.", expected=expected,
                    reveal=reveal)
    if _close(got, expected * 2, 0.01, 0.0):
        return _say(False, title, "That is complex128 (16 bytes per amplitude).",
                    "the simulators here use complex64: 8 bytes per amplitude.", expected, reveal)
    if _close(got, expected / int(batch), 0.01, 0.0):
        return _say(False, title, "That is one state vector.", "multiply by the batch size.", expected, reveal)
    if _close(got, 8 * int(num_qubits) * int(batch), 0.01, 0.0) or _close(got, 2 * int(num_qubits) * 8 * int(batch), 0.01, 0.0):
        return _say(False, title, "Memory is not linear in the number of qubits.", hint, expected, reveal)
    return _say(False, title, hint=hint, expected=expected, reveal=reveal)


# ---------------------------------------------------------------------------------------------
# 04 / 05: critic, training, scores


def check_critic_parameters(latent_dim: int, width: int, depth: int, answer, reveal: bool = False) -> bool:
    """Trainable parameters of ``Critic(latent_dim, width, depth)`` (``capacity.critic_count_parameters``):
    dense layers ``latent_dim -> width (-> width)* -> 1``, each with weights and biases.
    Notebook ``04_training_latent_style_qgan``."""
    from qgan_widgets.models.capacity import critic_count_parameters

    expected = critic_count_parameters(latent_dim, width, depth)
    title = f"parameters of Critic(latent_dim={latent_dim}, width={width}, depth={depth})"
    hint = ("a dense layer from a inputs to b outputs has a*b weights plus b biases; the critic is "
            f"{latent_dim} -> {' -> '.join([str(width)] * int(depth))} -> 1.")
    biases = int(depth) * int(width) + 1
    return _check_whole(title, answer, expected, hint, reveal, mistakes=[
        (expected - biases, "Those are the weights only.", "add one bias per unit."),
    ])


def check_gp_target(answer, reveal: bool = False) -> bool:
    """The gradient norm the WGAN-GP penalty pushes the critic towards, at interpolates between real
    and fake samples. Notebook ``04_training_latent_style_qgan``."""
    expected = 1.0
    title = "gradient-penalty target"
    hint = ("the Wasserstein critic must be 1-Lipschitz; the penalty (|grad D(x_hat)| - t)^2 uses the "
            "largest slope such a function may have.")
    if answer is None:
        return _say(None, title, hint=hint, expected=expected, reveal=reveal)
    got = _number(answer)
    if got is None:
        return _unreadable(title, answer, "a number", hint, expected, reveal)
    if got == expected:
        return _say(True, title, "The penalty is mean((|grad D(x_hat)|_2 - 1)^2).", expected=expected,
                    reveal=reveal)
    if got == 0:
        return _say(False, title, "A zero gradient would make the critic constant: it could not tell real "
                    "from fake.", hint, expected, reveal)
    return _say(False, title, hint=hint, expected=expected, reveal=reveal)


def check_frechet_1d(mu1: float, sigma1: float, mu2: float, sigma2: float, answer,
                     reveal: bool = False) -> bool:
    """Frechet distance between two 1-D Gaussians N(mu1, sigma1^2) and N(mu2, sigma2^2) (``sigma``:
    standard deviations). Computed with ``metrics.frechet_distance``; relative tolerance 1e-3.
    Notebook ``04_training_latent_style_qgan``."""
    from qgan_widgets.scores.metrics import frechet_distance

    expected = float(frechet_distance(np.array([mu1]), np.array([[float(sigma1) ** 2]]),
                                      np.array([mu2]), np.array([[float(sigma2) ** 2]]), eps=0.0))
    title = f"FD between N({mu1}, {sigma1}^2) and N({mu2}, {sigma2}^2)"
    hint = ("FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2)). In one dimension S = sigma^2, "
            "so the formula collapses to something short: try it.")
    shown = round(expected, 6)
    if answer is None:
        return _say(None, title, hint=hint, expected=shown, reveal=reveal)
    got = _number(answer)
    if got is None:
        return _unreadable(title, answer, "a number", hint, shown, reveal)
    if _close(got, expected, 1e-3, 1e-6):
        return _say(True, title, "In 1-D, FD = (mu1 - mu2)^2 + (sigma1 - sigma2)^2.", expected=shown,
                    reveal=reveal)
    if _close(got, (float(mu1) - float(mu2)) ** 2, 1e-3, 1e-6):
        return _say(False, title, "That is the mean term only.", "the spreads differ too.", shown, reveal)
    if _close(got, abs(float(mu1) - float(mu2)) + abs(float(sigma1) - float(sigma2)), 1e-3, 1e-6):
        return _say(False, title, "FD is a squared distance.", hint, shown, reveal)
    return _say(False, title, hint=hint, expected=shown, reveal=reveal)


def check_classical_parameters(noise_dim: int, latent_dim: int, hidden: Sequence[int], answer,
                               reveal: bool = False) -> bool:
    """Trainable parameters of ``ClassicalGenerator(noise_dim, latent_dim, hidden)`` (an MLP
    ``noise_dim -> hidden... -> latent_dim``). Notebook ``05_classical_vs_quantum``."""
    from qgan_widgets.models.capacity import classical_count_parameters

    hidden = [int(h) for h in (hidden if not isinstance(hidden, (int, np.integer)) else [hidden])]
    expected = classical_count_parameters(noise_dim, latent_dim, hidden)
    widths = [int(noise_dim), *hidden, int(latent_dim)]
    title = f"parameters of ClassicalGenerator({noise_dim} -> {' -> '.join(map(str, widths[1:]))})"
    hint = "every dense layer from a to b units has a*b weights and b biases; add them over the layers."
    return _check_whole(title, answer, expected, hint, reveal, mistakes=[
        (expected - sum(widths[1:]), "Those are the weights only.", "add one bias per unit."),
    ])


# ---------------------------------------------------------------------------------------------
# 06: scaling


def check_growth_factor(b: float, delta_cg: float, answer, reveal: bool = False) -> bool:
    """By what factor the optimal critic grows when the generator gains ``delta_cg`` parameters,
    under the fit ``ln C_D* = a + b C_G``: ``exp(b * delta_cg)``. Relative tolerance 1%.
    Notebook ``06_capacity_scaling``."""
    expected = math.exp(float(b) * float(delta_cg))
    title = f"growth of C_D* for {delta_cg:g} more generator parameters (b = {b:g})"
    hint = ("subtract the fit at C_G from the fit at C_G + delta: ln C_D*(C_G + delta) - ln C_D*(C_G) "
            "= b * delta. The factor is the exponential of that.")
    shown = round(expected, 6)
    if answer is None:
        return _say(None, title, hint=hint, expected=shown, reveal=reveal)
    got = _number(answer)
    if got is None:
        return _unreadable(title, answer, "a number", hint, shown, reveal)
    if _close(got, expected, 0.01, 1e-9):
        return _say(True, title, "Exponential scaling multiplies the critic by the same factor for every "
                    "fixed step in generator size.", expected=shown, reveal=reveal)
    if _close(got, float(b) * float(delta_cg), 0.01, 1e-9):
        return _say(False, title, "That is the change of ln C_D*.", "take the exponential.", shown, reveal)
    return _say(False, title, hint=hint, expected=shown, reveal=reveal)


# ---------------------------------------------------------------------------------------------
# understanding: multiple choice and predict-then-run

QUESTIONS = {
    "02-traversal": {
        "notebook": "02_vae_latent_space",
        "question": "One latent dimension has a KL of almost 0 nats. Why does its traversal row (moving along "
                    "that dimension only) barely change the decoded tile?",
        "options": {
            "a": "tanh saturates at -1 and +1, so the values along that row cannot move",
            "b": "its posterior equals the prior for every input, so it carries no information and the "
                 "decoder has learned to ignore it",
            "c": "the traversal steps are too small to see",
            "d": "the VAE needs more epochs; every dimension changes the tile once trained",
        },
        "correct": "b",
        "why": "KL(q(z|x) || p(z)) = 0 means the encoder says the same thing about every tile in that "
               "dimension: nothing to decode. Beta trades such unused dimensions for a smoother space.",
        "feedback": {
            "a": "saturation pins values near +-1, but the traversal visits the whole range; look at the KL.",
            "c": "the steps span [-1, 1], the whole range a latent can take.",
            "d": "more epochs do not revive a dimension the KL term has switched off; a smaller beta can.",
        },
    },
    "02-blur": {
        "notebook": "02_vae_latent_space",
        "question": "A VAE trained on squared error with 16 latent dimensions still reconstructs tree tiles as "
                    "flat green squares. Why does adding latent dimensions not bring the canopy back?",
        "options": {
            "a": "16 dimensions are still too few: with 64 the clumps would come back",
            "b": "where each clump lies is random from tile to tile; under squared error the best guess of "
                 "a pixel whose clump position is unknown is the average, a blur, and the encoder gains "
                 "little by spending dimensions on clump positions",
            "c": "beta is too large: the KL term erases the texture",
            "d": "the decoder's sigmoid output cannot produce dark pixels next to light ones",
        },
        "correct": "b",
        "why": "Squared error rewards the conditional mean. Texture is many small random details; a few numbers "
               "cannot say where each one is, so the mean of all placements, a flat colour, wins. A loss on "
               "texture statistics (strength and grain, whatever the placement) changes what is optimal.",
        "feedback": {
            "a": "the study's rows for 4, 8 and 16 plain dimensions keep the same flat texture (texture_ratio "
                 "stays low): the cost of placement does not go away with a few more numbers.",
            "c": "the extra dimensions are used (their KL is above the collapse line), yet the texture is not back.",
            "d": "the sigmoid reaches 0 and 1; a textured decoder (the tuned rows) uses the same output layer.",
        },
    },
    "05-confound": {
        "notebook": "05_classical_vs_quantum",
        "question": "The quantum generator's readouts start near +1 (small angles keep each qubit near |0>), "
                    "the classical MLP's outputs near 0. What does that do to comparing the two?",
        "options": {
            "a": "nothing: both are trained to the same target",
            "b": "early FD differences reflect where each starts, not what it can learn: compare them "
                 "after training, over several seeds, or from matched starting points",
            "c": "it proves the quantum generator learns faster",
            "d": "the classical generator is always better at the start",
        },
        "correct": "b",
        "why": "An initialisation confound: a difference that comes from the starting point, not from the "
               "model's capacity. The real latents sit near 0, so the MLP starts closer to them.",
        "feedback": {
            "a": "the target is the same, but the distance to it at step 0 is not: short runs inherit it.",
            "c": "a head start (or handicap) is not speed; look at the FD at step 0 of both curves.",
            "d": "it starts closer here because the real latents sit near 0; that is the confound, not a law.",
        },
    },
    "06-ci-zero": {
        "notebook": "06_capacity_scaling",
        "question": "A bootstrap confidence interval for the slope b comes out exactly [0, 0]. Why?",
        "options": {
            "a": "the true slope is exactly zero",
            "b": "the fit failed and returned zeros",
            "c": "every resample of the seeds picked the same optimal critic for every generator (a coarse "
                 "grid and few seeds give the optimum few values), so every resample's slope is 0",
            "d": "n_boot was too small",
        },
        "correct": "c",
        "why": "The CI is narrow because of the grid's coarseness, not because the data are precise: a "
               "finer critic grid or a smooth fit of score against ln C_D gives an interval that means something.",
        "feedback": {
            "a": "an interval of width 0 from noisy data says more about the method than the truth.",
            "b": "a failed fit raises an error or gives NaN here; look at optimal.csv instead.",
            "d": "more resamples of the same few values still give the same slopes.",
        },
    },
    "06-excess": {
        "notebook": "06_capacity_scaling",
        "question": "The committed study ranks critics by the FD's excess over the reconstruction floor, and "
                    "judges stability on that excess, not on the total FD. Why?",
        "options": {
            "a": "the excess is smaller, so its differences are easier to see",
            "b": "the floor is the part of the FD no generator can remove (what the VAE loses); judged on the "
                 "total, a swing that is large for what the generator adds looks small next to the floor",
            "c": "the excess is an unbiased estimate and the total FD is not",
            "d": "the ranking changes: subtracting the same floor from every trial reorders the critics",
        },
        "correct": "b",
        "why": "Every trial of a study shares one workspace and so one floor: subtracting it changes no ranking, "
               "but it changes what 'stable' means. A swing of 2 FD units is 10% of a total of 20 but 100% of an "
               "excess of 2.",
        "feedback": {
            "a": "subtracting a constant does not make differences larger; it makes them readable as a share.",
            "c": "both carry the FD's small-sample bias; the floor is measured at the same N, which is why it "
                 "is comparable.",
            "d": "the floor is the same for every trial of one workspace, so the order stays as it was.",
        },
    },
    "07-critic-width": {
        "notebook": "07_explorer",
        "question": "Predict before you train: the same generator against a critic of width 4 and one of width "
                    "128 (same steps, same seed). Which ends with the lower FD excess over the floor?",
        "options": {"a": "width 4", "b": "width 128", "c": "no difference beyond the seed noise"},
        "correct": None,  # decided by the run: check_choice(..., observed=...)
        "why": "A weak critic cannot tell the generator what is wrong; a very strong one can overpower it. "
               "Where the optimum sits is the question of notebook 06.",
        "feedback": {},
    },
}
"""Questions about understanding, by id: the notebook, the options, the right letter (None: decided by
a run) and feedback for each wrong option."""


def check_choice(question: str, answer, observed: str | None = None, reveal: bool = False) -> bool:
    """A multiple-choice question of :data:`QUESTIONS`; ``answer`` is a letter. With no answer yet it
    prints the question and its options. ``observed`` gives the right letter where a run decides it
    (a prediction task)."""
    if question not in QUESTIONS:
        raise ValueError(f"unknown question {question!r}; known: {', '.join(QUESTIONS)}")
    q = QUESTIONS[question]
    correct = observed if observed is not None else q["correct"]
    options = "\n".join(f"      ({k}) {v}" for k, v in q["options"].items())
    title = f"question {question}"
    if answer is None:
        print(f"[ ] {title}: {q['question']}\n{options}\n    Write a letter in `answer` and run the cell again.")
        if reveal or teacher_mode():
            print(f"    (Teacher) expected answer: {correct or 'decided by the run'}")
        return False
    got = str(answer).strip().lower().strip("()")
    if got not in q["options"]:
        return _say(False, title, f"answer with one of the letters {', '.join(q['options'])}, not {answer!r}.",
                    expected=correct, reveal=reveal)
    if correct is None:
        print(f"[noted] {title}: you predicted ({got}) {q['options'][got]}. Now run the comparison and "
              f"check your prediction against what you see.")
        return False
    if got == correct:
        return _say(True, title, q["why"], expected=correct, reveal=reveal)
    return _say(False, title, hint=q["feedback"].get(got, q["why"]), expected=correct, reveal=reveal)


def check_prediction(title: str, answer, measured: float, rel_tol: float = 0.25,
                     mistakes: Sequence[tuple[float, str]] = (), reveal: bool = False) -> bool:
    """Predict, then run: ``answer`` (your prediction, written before running) against the ``measured``
    value. Within ``rel_tol`` (relative) counts as right. ``mistakes``: ``(value, hint)`` pairs for the
    usual wrong predictions (the nearest one within ``rel_tol`` of the answer gives its hint)."""
    measured = float(measured)
    shown = round(measured, 4)
    if answer is None:
        return _say(None, title, "predict first, then compare with the measured value below.", expected=shown,
                    reveal=reveal)
    got = _number(answer)
    if got is None:
        return _unreadable(title, answer, "a number", "", shown, reveal)
    if _close(got, measured, rel_tol, 1e-9):
        return _say(True, title, f"measured {measured:.4g}; you predicted {got:.4g}.", expected=shown, reveal=reveal)
    for value, hint in mistakes:
        if _close(got, float(value), rel_tol, 1e-3):
            return _say(False, title, f"measured {measured:.4g}; you predicted {got:.4g}.", hint, shown, reveal)
    direction = "lower" if got > measured else "higher"
    return _say(False, title, f"measured {measured:.4g}; you predicted {got:.4g}.",
                f"the measured value is {direction}: which effect did your prediction leave out?", shown, reveal)
