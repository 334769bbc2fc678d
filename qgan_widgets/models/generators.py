"""The two generators of the toolkit: the style-based quantum generator and a classical MLP.

Taught in notebook ``03_style_quantum_generator``. Both follow the generator contract of
``docs/DESIGN.md``: a ``keras.Model`` called on float32 noise ``(B, noise_dim)`` returning float32
latent vectors ``(B, latent_dim)`` in [-1, 1], with ``noise_dim``, ``latent_dim``, ``kind``,
``count_parameters()`` and ``config()`` (rebuilt by :func:`build_generator`).

The quantum generator turns every noise sample ``xi`` (one row of the batch) into the angles of
its own circuit::

    theta[i, k] = w_k * xi[i, j_k] + b_k          (j_k = k mod noise_dim, or the original
                                                   implementation's map: noise_map, see circuits.py)

and hands the ``(B, num_gates)`` angle batch to a simulator backend of :mod:`qgan_widgets.quantum.backends`
(``"statevector"``, the default; ``"tfq"``, the reference; ``"qsim"``, with shots; the "Simulator
backend contract" of ``docs/DESIGN.md``). Backend names, :func:`make_backend` and the errors live
there (``qw.quantum``).

The classical generator is an MLP with a tanh output, sized by :func:`qgan_widgets.models.capacity.classical_hidden_for_budget`
to match a quantum generator's parameter count, so both capacities sit on one axis.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import cirq
import numpy as np

from qgan_widgets.quantum import circuits
from qgan_widgets._tf import keras, tf
from qgan_widgets.quantum.circuits import StyleCircuit, check_size
from qgan_widgets.quantum import backends
from qgan_widgets.quantum.backends import BACKENDS, DEFAULT_BACKEND, MEMORY_FACTOR, GeneratorError, NotDifferentiableError, SimulationTooLargeError, _gib, make_backend
from qgan_widgets.models.capacity import _check_hidden, classical_count_parameters

# called inside Keras' traced call: kept out of AutoGraph (psutil is plain Python)
available_memory = tf.autograph.experimental.do_not_convert(backends.available_memory)


# ---------------------------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------------------------


def sample_noise(batch: int, noise_dim: int, seed_or_rng=None):
    """Standard-normal noise ``(batch, noise_dim)`` float32, the generators' input.

    ``seed_or_rng`` is an int seed, ``None`` (fresh entropy), a ``numpy.random.Generator`` (all three
    give a NumPy array) or a ``tf.random.Generator`` (gives a ``tf.Tensor``; usable inside
    ``tf.function``, and its state can be checkpointed).
    """
    batch = check_size("batch", batch)
    noise_dim = check_size("noise_dim", noise_dim)
    if isinstance(seed_or_rng, tf.random.Generator):
        return seed_or_rng.normal((batch, noise_dim), dtype=tf.float32)
    if isinstance(seed_or_rng, np.random.Generator):
        rng = seed_or_rng
    elif seed_or_rng is None or (isinstance(seed_or_rng, (int, np.integer)) and not isinstance(seed_or_rng, bool)):
        rng = np.random.default_rng(seed_or_rng)
    else:
        raise GeneratorError(
            f"seed_or_rng must be an int, None, a numpy.random.Generator or a tf.random.Generator; "
            f"got {type(seed_or_rng).__name__}"
        )
    return rng.standard_normal((batch, noise_dim)).astype(np.float32)


@tf.autograph.experimental.do_not_convert
def _check_noise(noise, noise_dim: int, owner: str) -> tf.Tensor:
    """``noise`` as a float32 tensor of shape (B, noise_dim), or a clear error (NaN/inf too)."""
    if isinstance(noise, (tf.Tensor, tf.Variable)):
        if not (noise.dtype.is_floating or noise.dtype.is_integer):
            raise GeneratorError(f"{owner}: noise must be a float array, got dtype {noise.dtype.name}")
        noise = tf.cast(noise, tf.float32)
    else:
        arr = np.asarray(noise)
        if arr.dtype.kind not in "fiu":
            raise GeneratorError(f"{owner}: noise must be a float array, got dtype {arr.dtype}")
        noise = tf.constant(arr, tf.float32)
    shape = noise.shape
    if shape.rank != 2 or (shape[1] is not None and shape[1] != noise_dim):
        hint = " (for one sample use noise[None, :])" if shape.rank == 1 else ""
        raise GeneratorError(
            f"{owner}: noise must have shape (batch, noise_dim={noise_dim}), got {tuple(shape)}{hint}"
        )
    if shape[0] == 0:
        raise GeneratorError(f"{owner}: the noise batch is empty (shape {tuple(shape)})")
    if tf.executing_eagerly():
        if not np.all(np.isfinite(noise.numpy())):
            bad = int(np.size(noise.numpy()) - np.isfinite(noise.numpy()).sum())
            raise GeneratorError(f"{owner}: noise contains {bad} NaN or infinite values")
    else:
        noise = tf.debugging.assert_all_finite(noise, f"{owner}: noise contains NaN or infinite values")
    return noise


# ---------------------------------------------------------------------------------------------
# The quantum generator
# ---------------------------------------------------------------------------------------------


class QuantumGenerator(keras.Model):
    """The style-based quantum generator: noise -> per-sample gate angles -> circuit -> <P> readout.

    ``readout="z"`` gives ``latent_dim = num_qubits`` (column k = <Z_k>); ``readout="xz"`` gives
    ``2 * num_qubits`` (all <X_k>, then all <Z_k>). The trainable weights are ``w`` and ``b``, one
    each per parameterised gate (``count_parameters()`` = ``circuits.count_parameters``), drawn
    uniformly from ``[-init_scale, init_scale]`` with ``seed`` (same seed, same weights; for
    ``"qsim"`` also the same measurement samples). ``noise_map`` picks each gate's noise component:
    ``"cyclic"`` (``k mod noise_dim``) or ``"style-qgan"`` (the original implementation's; see
    :mod:`qgan_widgets.quantum.circuits`). Extra keyword arguments are options of the
    backend (e.g. ``shots=1000`` or ``noise=0.01`` for ``"qsim"``).
    Taught in notebook ``03_style_quantum_generator``.
    """

    kind = "quantum"

    def __init__(
        self,
        num_qubits: int,
        num_layers: int,
        entangler: str = "cry-ring",
        readout: str = "z",
        backend: str = DEFAULT_BACKEND,
        noise_dim: int | None = None,
        seed: int | None = None,
        init_scale: float = 0.15,
        name: str | None = None,
        noise_map: str = "cyclic",
        **backend_options: Any,
    ):
        style = circuits.style_circuit(num_qubits, num_layers, entangler, noise_dim, noise_map)
        observables = circuits.readout_observables(style.qubits, readout)
        if seed is not None:
            seed = check_size("seed", seed, minimum=0)
        init_scale = float(init_scale)
        if not (init_scale >= 0 and math.isfinite(init_scale)):
            raise GeneratorError(f"init_scale must be a finite number >= 0, got {init_scale}")
        if backend not in BACKENDS:
            raise GeneratorError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        super().__init__(name=name or "quantum_generator")
        # Plain attributes (not tracked by Keras: they hold no weights).
        object.__setattr__(self, "_style", style)
        object.__setattr__(self, "_observables", tuple(observables))
        object.__setattr__(self, "_settings", {
            "num_qubits": style.num_qubits, "num_layers": style.num_layers, "entangler": entangler,
            "readout": readout, "backend": backend, "noise_dim": style.noise_dim, "seed": seed,
            "init_scale": init_scale, **({"noise_map": noise_map} if noise_map != "cyclic" else {}),
            **backend_options,
        })
        object.__setattr__(self, "_memory_checked", set())
        self._check_memory(1)
        options = dict(backend_options)
        if backend == "qsim":
            options["seed"] = seed  # same seed, same shots and trajectories
        object.__setattr__(self, "_backend", make_backend(backend, style, observables, **options))
        rng = np.random.default_rng(seed)
        g = style.num_gates
        w0 = rng.uniform(-init_scale, init_scale, g).astype(np.float32)
        b0 = rng.uniform(-init_scale, init_scale, g).astype(np.float32)
        self.w = self.add_weight(name="w", shape=(g,), initializer=keras.initializers.Constant(w0), trainable=True)
        self.b = self.add_weight(name="b", shape=(g,), initializer=keras.initializers.Constant(b0), trainable=True)
        self._noise_index = style.noise_index.astype(np.int32)
        self.built = True

    # -- what it is ---------------------------------------------------------------------------
    @property
    def style(self) -> StyleCircuit:
        """The :class:`~qgan_widgets.quantum.circuits.StyleCircuit` (symbolic circuit and gate table)."""
        return self._style

    @property
    def backend(self):
        """The simulator backend object (``.name``, ``.differentiable``)."""
        return self._backend

    @property
    def backend_name(self) -> str:
        return self._backend.name

    @property
    def differentiable(self) -> bool:
        """Whether gradients flow through the backend (False for ``"qsim"``)."""
        return bool(self._backend.differentiable)

    @property
    def xla_compatible(self) -> bool:
        """Whether a training step calling this generator can be compiled whole by XLA
        (``jit_compile=True``): the ``"statevector"`` backend is plain TensorFlow; TFQ's and
        qsimcirq's ops have no XLA kernels."""
        return self._settings["backend"] == "statevector"

    @property
    def num_qubits(self) -> int:
        return self._style.num_qubits

    @property
    def num_layers(self) -> int:
        return self._style.num_layers

    @property
    def entangler(self) -> str:
        return self._style.entangler

    @property
    def readout(self) -> str:
        return self._settings["readout"]

    @property
    def noise_dim(self) -> int:
        return self._style.noise_dim

    @property
    def latent_dim(self) -> int:
        return len(self._observables)

    @property
    def qubits(self) -> tuple[cirq.LineQubit, ...]:
        return self._style.qubits

    @property
    def observables(self) -> list[cirq.PauliString]:
        """The Pauli observables in output-column order."""
        return list(self._observables)

    def count_parameters(self) -> int:
        """Trainable parameters: ``w`` and ``b``, one each per parameterised gate."""
        return self._style.num_parameters

    def config(self) -> dict:
        """JSON-able keywords from which :func:`build_generator` rebuilds this architecture."""
        return {"kind": self.kind, **self._settings}

    def get_config(self) -> dict:
        return self.config()

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**{k: v for k, v in config.items() if k != "kind"})

    def check_trainable(self) -> None:
        """Raise :class:`NotDifferentiableError` if this generator's backend cannot be trained."""
        if not self.differentiable:
            raise NotDifferentiableError(
                f"this QuantumGenerator uses the {self.backend_name!r} backend, which has no gradient; "
                "train with backend='tfq' or backend='statevector'"
            )

    # -- memory -------------------------------------------------------------------------------
    def memory_bytes(self, batch: int) -> int:
        """Estimated peak memory in bytes of simulating a batch of ``batch`` samples."""
        if self._settings["backend"] == "statevector":
            try:
                from qgan_widgets.quantum import statevector

                return int(statevector.memory_bytes(self.num_qubits, batch))
            except (ImportError, AttributeError):
                pass
        fn = getattr(getattr(self, "_backend", None), "memory_bytes", None)
        if self._settings["backend"] in ("tfq", "qsim") and callable(fn):
            return int(fn(batch))
        return 2**self.num_qubits * 8 * MEMORY_FACTOR * int(batch)

    @tf.autograph.experimental.do_not_convert
    def _check_memory(self, batch: int) -> None:
        if batch in self._memory_checked:
            return
        need, have = self.memory_bytes(batch), available_memory()
        if need > have:
            raise SimulationTooLargeError(
                f"{self.num_qubits} qubits with a batch of {batch} need about {_gib(need)} for the state "
                f"vectors (2^{self.num_qubits} amplitudes x 8 bytes x batch x overhead, backend "
                f"{self._settings['backend']!r}), but only {_gib(have)} is available; use fewer qubits "
                "or a smaller batch"
            )
        self._memory_checked.add(batch)

    # -- the computation ----------------------------------------------------------------------
    def angles(self, noise) -> tf.Tensor:
        """Per-sample gate angles ``theta[i, k] = w_k * noise[i, j_k] + b_k``, shape (B, num_gates)."""
        noise = _check_noise(noise, self.noise_dim, "QuantumGenerator")
        if noise.shape[0] is not None:
            self._check_memory(int(noise.shape[0]))
        xi = tf.gather(noise, self._noise_index, axis=1)  # (B, num_gates): sample i's own noise
        return xi * self.w[tf.newaxis, :] + self.b[tf.newaxis, :]

    def call(self, noise, training=None):
        values = self._backend(self.angles(noise))
        return tf.clip_by_value(tf.cast(values, tf.float32), -1.0, 1.0)

    def circuit_for(self, noise_vector) -> cirq.Circuit:
        """The circuit of one sample with every angle resolved (for inspection, QASM, checking)."""
        xi = np.asarray(noise_vector, dtype=np.float64)
        if xi.ndim == 2 and xi.shape[0] == 1:
            xi = xi[0]
        if xi.shape != (self.noise_dim,):
            raise GeneratorError(
                f"circuit_for takes one noise vector of length noise_dim={self.noise_dim}, got shape {xi.shape}"
            )
        if not np.all(np.isfinite(xi)):
            raise GeneratorError("circuit_for: the noise vector contains NaN or infinite values")
        w = self.w.numpy().astype(np.float64)
        b = self.b.numpy().astype(np.float64)
        return self._style.resolve(w * xi[self._noise_index] + b)

    def gate_table(self, noise_vector=None):
        """:func:`circuits.gate_table` with this generator's weights (and one noise vector, if given)."""
        return circuits.gate_table(self._style, self.w.numpy(), self.b.numpy(), noise_vector)


# ---------------------------------------------------------------------------------------------
# The classical generator
# ---------------------------------------------------------------------------------------------


class ClassicalGenerator(keras.Model):
    """An MLP generator: noise -> hidden layers (leaky ReLU) -> tanh latent vector in [-1, 1].

    Weights are seeded (``seed``; same seed, same weights). ``count_parameters()`` equals
    :func:`qgan_widgets.models.capacity.classical_count_parameters`. Taught in notebook ``03_style_quantum_generator``.
    """

    kind = "classical"
    ACTIVATIONS = ("leaky_relu", "relu", "tanh", "elu")

    def __init__(
        self,
        noise_dim: int,
        latent_dim: int,
        hidden: Sequence[int] = (32, 32),
        seed: int | None = None,
        activation: str = "leaky_relu",
        name: str | None = None,
    ):
        noise_dim = check_size("noise_dim", noise_dim)
        latent_dim = check_size("latent_dim", latent_dim)
        hidden = _check_hidden(hidden)
        if seed is not None:
            seed = check_size("seed", seed, minimum=0)
        if activation not in self.ACTIVATIONS:
            raise GeneratorError(f"activation must be one of {', '.join(self.ACTIVATIONS)}; got {activation!r}")
        super().__init__(name=name or "classical_generator")
        object.__setattr__(self, "_settings", {
            "noise_dim": noise_dim, "latent_dim": latent_dim, "hidden": list(hidden), "seed": seed,
            "activation": activation,
        })
        act = tf.nn.leaky_relu if activation == "leaky_relu" else activation

        def init(i):
            return keras.initializers.GlorotUniform(seed=None if seed is None else seed * 1000 + i)

        self.hidden_layers = [
            keras.layers.Dense(h, activation=act, kernel_initializer=init(i), name=f"hidden_{i}")
            for i, h in enumerate(hidden)
        ]
        self.output_layer = keras.layers.Dense(latent_dim, activation="tanh", kernel_initializer=init(len(hidden)), name="out")
        self.build((None, noise_dim))

    @property
    def noise_dim(self) -> int:
        return self._settings["noise_dim"]

    @property
    def latent_dim(self) -> int:
        return self._settings["latent_dim"]

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(self._settings["hidden"])

    @property
    def xla_compatible(self) -> bool:
        """Dense layers only: a training step calling this generator can be compiled by XLA."""
        return True

    def count_parameters(self) -> int:
        return classical_count_parameters(self.noise_dim, self.latent_dim, self.hidden)

    def config(self) -> dict:
        """JSON-able keywords from which :func:`build_generator` rebuilds this architecture."""
        return {"kind": self.kind, **self._settings, "hidden": list(self._settings["hidden"])}

    def get_config(self) -> dict:
        return self.config()

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**{k: v for k, v in config.items() if k != "kind"})

    def call(self, noise, training=None):
        x = _check_noise(noise, self.noise_dim, "ClassicalGenerator")
        for layer in self.hidden_layers:
            x = layer(x)
        return self.output_layer(x)


# ---------------------------------------------------------------------------------------------
# Rebuilding from a config
# ---------------------------------------------------------------------------------------------

GENERATORS = {"quantum": QuantumGenerator, "classical": ClassicalGenerator}


def build_generator(kind: str = "quantum", **config) -> keras.Model:
    """Build a generator from ``kind`` and the keywords of its ``config()``.

    ``build_generator(**generator.config())`` rebuilds the same architecture (with the same seeded
    initial weights); checkpoints, sweeps and the dashboard use this.
    """
    if kind not in GENERATORS:
        raise GeneratorError(f"kind must be one of {', '.join(GENERATORS)}; got {kind!r}")
    try:
        return GENERATORS[kind](**config)
    except TypeError as exc:
        raise GeneratorError(f"build_generator(kind={kind!r}): {exc}") from exc
