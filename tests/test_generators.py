"""Quantum and classical generators: noise-to-angle mapping, backend agreement, gradients, guards.

Also the generator benchmark's plumbing (``python -m qgan_widgets bench generator``), on a tiny size.
"""
from __future__ import annotations

import importlib.util
import json

import cirq
import numpy as np
import pytest

from qgan_widgets.models import capacity
from qgan_widgets.models import generators as G
from qgan_widgets._tf import tf
from qgan_widgets.quantum import ENTANGLERS, READOUTS, count_parameters

HAS_STATEVECTOR = importlib.util.find_spec("qgan_widgets.quantum.statevector") is not None


def _cirq_expectations(gen: G.QuantumGenerator, noise: np.ndarray) -> np.ndarray:
    """The independent reference: cirq.Simulator (complex128) on circuit_for(noise[i])."""
    sim = cirq.Simulator(dtype=np.complex128)
    rows = [sim.simulate_expectation_values(gen.circuit_for(xi), gen.observables) for xi in noise]
    return np.real(np.asarray(rows))


# -- counts and initialisation ----------------------------------------------------------------

@pytest.mark.parametrize("n, layers, entangler, expected", [
    (1, 1, "none", 10), (3, 1, "cry-pairs", 34), (3, 2, "cry-pairs", 62), (4, 3, "cry-ring", 10 * 4 * 3 + 2 * 4),
])
def test_trainable_weights_are_the_paper_counts(n, layers, entangler, expected):
    gen = G.QuantumGenerator(n, layers, entangler, seed=0)
    assert gen.count_parameters() == expected == count_parameters(n, layers, entangler)
    assert sum(int(np.prod(v.shape)) for v in gen.trainable_weights) == expected
    assert [v.shape.as_list() for v in gen.trainable_weights] == [[expected // 2]] * 2
    assert gen.kind == "quantum" and gen.noise_dim == n and gen.latent_dim == n
    assert gen.qubits == tuple(cirq.LineQubit.range(n)) and gen.style.num_qubits == n


def test_initialisation_is_seeded_small_and_uniform():
    a, b = G.QuantumGenerator(3, 2, seed=7), G.QuantumGenerator(3, 2, seed=7)
    for x, y in zip(a.trainable_weights, b.trainable_weights):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    c = G.QuantumGenerator(3, 2, seed=8)
    assert not np.array_equal(a.w.numpy(), c.w.numpy())
    big = G.QuantumGenerator(6, 4, seed=0, init_scale=0.05)
    values = np.concatenate([big.w.numpy(), big.b.numpy()])
    assert np.abs(values).max() <= 0.05 and np.abs(values).max() > 0.04 and abs(values.mean()) < 0.01


def test_readout_xz_doubles_the_latent_and_orders_x_then_z():
    gen = G.QuantumGenerator(3, 1, readout="xz", seed=0)
    assert gen.latent_dim == 6
    assert gen.observables == [cirq.X(q) * 1.0 for q in gen.qubits] + [cirq.Z(q) * 1.0 for q in gen.qubits]


# -- the noise-to-angle mapping, per gate and per sample --------------------------------------

@pytest.mark.parametrize("n, noise_dim", [(3, None), (3, 2), (2, 5)])
def test_angles_follow_w_times_xi_j_plus_b_per_gate_and_per_sample(n, noise_dim):
    gen = G.QuantumGenerator(n, 2, seed=1, noise_dim=noise_dim, init_scale=1.0)
    d = gen.noise_dim
    noise = G.sample_noise(6, d, 3)
    theta = gen.angles(noise).numpy()
    w, b = gen.w.numpy(), gen.b.numpy()
    assert theta.shape == (6, gen.style.num_gates)
    for i in range(6):
        for k in range(gen.style.num_gates):
            assert theta[i, k] == pytest.approx(w[k] * noise[i, k % d] + b[k], abs=1e-6), (i, k)
    # Samples never share noise: every row differs, and changing sample 2's noise changes row 2 only.
    assert len({tuple(row) for row in np.round(theta, 6)}) == 6
    other = noise.copy()
    other[2] += 1.0
    changed = np.abs(gen.angles(other).numpy() - theta).max(axis=1) > 1e-6
    assert changed.tolist() == [i == 2 for i in range(6)]


def test_each_sample_of_a_batch_equals_that_sample_run_alone():
    gen = G.QuantumGenerator(3, 2, seed=2, init_scale=1.0)
    noise = G.sample_noise(8, 3, 4)
    batch = gen(noise).numpy()
    alone = np.concatenate([gen(noise[i:i + 1]).numpy() for i in range(8)])
    np.testing.assert_allclose(batch, alone, atol=1e-6)
    assert np.abs(batch - batch[0]).max() > 1e-2  # and they are not all the same


def test_circuit_for_uses_that_samples_noise():
    gen = G.QuantumGenerator(2, 1, seed=3, init_scale=1.0)
    noise = G.sample_noise(2, 2, 5)
    c0, c1 = gen.circuit_for(noise[0]), gen.circuit_for(noise[1:2])
    assert not cirq.is_parameterized(c0) and c0 != c1
    table = gen.gate_table(noise[0])
    np.testing.assert_allclose(table["angle"].to_numpy(), gen.angles(noise[:1]).numpy()[0], atol=1e-6)


# -- backends agree ---------------------------------------------------------------------------

CASES = [(e, r) for e in ENTANGLERS for r in READOUTS]


@pytest.mark.parametrize("entangler, readout", CASES)
def test_backends_agree_with_cirq_simulator(entangler, readout):
    n = 3
    noise = G.sample_noise(4, n, 11)
    common = dict(num_qubits=n, num_layers=2, entangler=entangler, readout=readout, seed=5, init_scale=1.5)
    ref = None
    backends = ["tfq", "qsim"] + (["statevector"] if HAS_STATEVECTOR else [])
    for name in backends:
        gen = G.QuantumGenerator(backend=name, **common)
        if ref is None:
            ref = _cirq_expectations(gen, noise)
            assert np.abs(ref).max() > 0.2  # a non-trivial state
        out = gen(noise)
        assert out.dtype == tf.float32 and out.shape == (4, gen.latent_dim)
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("n, layers, entangler", [(1, 2, "none"), (2, 1, "cry-ring"), (4, 1, "cry-ring"), (7, 2, "cry-ring")])
def test_backends_agree_at_other_sizes(n, layers, entangler):
    noise = G.sample_noise(3, n, 1)
    tfq_gen = G.QuantumGenerator(n, layers, entangler, readout="xz", seed=4, init_scale=1.0)
    qsim_gen = G.build_generator(**{**tfq_gen.config(), "backend": "qsim"})
    ref = _cirq_expectations(tfq_gen, noise)
    np.testing.assert_allclose(tfq_gen(noise).numpy(), ref, atol=1e-5)
    np.testing.assert_allclose(qsim_gen(noise).numpy(), ref, atol=1e-5)


# -- gradients --------------------------------------------------------------------------------

def test_tfq_gradient_matches_finite_differences():
    gen = G.QuantumGenerator(2, 1, "cry-ring", readout="xz", seed=6, init_scale=1.0)
    noise = G.sample_noise(3, 2, 7)
    coef = np.random.default_rng(8).normal(size=(3, gen.latent_dim))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gen(noise) * coef)
    grad_w, grad_b = (g.numpy() for g in tape.gradient(loss, [gen.w, gen.b]))

    style, obs = gen.style, gen.observables
    sim = cirq.Simulator(dtype=np.complex128)
    xi = noise.astype(np.float64)[:, style.noise_index]

    def f(w, b):
        total = 0.0
        for i in range(3):
            values = sim.simulate_expectation_values(style.resolve(w * xi[i] + b), obs)
            total += float(np.real(np.asarray(values)) @ coef[i])
        return total

    w0, b0 = gen.w.numpy().astype(np.float64), gen.b.numpy().astype(np.float64)
    eps = 1e-4
    for k in range(style.num_gates):
        e = np.zeros(style.num_gates)
        e[k] = eps
        fd_w = (f(w0 + e, b0) - f(w0 - e, b0)) / (2 * eps)
        fd_b = (f(w0, b0 + e) - f(w0, b0 - e)) / (2 * eps)
        assert grad_w[k] == pytest.approx(fd_w, abs=1e-4), f"d/dw_{k}"
        assert grad_b[k] == pytest.approx(fd_b, abs=1e-4), f"d/db_{k}"
    assert np.abs(grad_w).max() > 1e-2


def test_tfq_works_inside_tf_function_with_the_same_gradient():
    gen = G.QuantumGenerator(3, 1, seed=9, init_scale=1.0)
    noise = tf.constant(G.sample_noise(5, 3, 10))

    def step(z):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(gen(z)))
        return [loss] + tape.gradient(loss, gen.trainable_weights)

    eager = [t.numpy() for t in step(noise)]
    graph = [t.numpy() for t in tf.function(step)(noise)]
    for e, g in zip(eager, graph):
        np.testing.assert_allclose(g, e, atol=1e-6)
    # A second batch size retraces without complaint.
    assert tf.function(step)(noise[:2])[1].shape == (gen.style.num_gates,)


def test_qsim_cannot_train_and_says_what_to_use():
    gen = G.QuantumGenerator(2, 1, backend="qsim", seed=0)
    assert not gen.differentiable and gen.backend_name == "qsim"
    noise = G.sample_noise(2, 2, 0)
    with pytest.raises(G.NotDifferentiableError, match="backend='tfq' or backend='statevector'"):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(gen(noise))
        tape.gradient(loss, gen.trainable_weights)

    @tf.function
    def step(z):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(gen(z))
        return tape.gradient(loss, gen.trainable_weights)

    with pytest.raises(G.NotDifferentiableError, match="has no gradient"):
        step(tf.constant(noise))
    with pytest.raises(G.NotDifferentiableError, match="'qsim' backend"):
        gen.check_trainable()
    G.QuantumGenerator(2, 1, seed=0).check_trainable()  # tfq: fine


# -- outputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 128])
def test_batch_sizes_shapes_and_range(batch):
    gen = G.QuantumGenerator(3, 2, readout="xz", seed=12, init_scale=3.0)
    out = gen(G.sample_noise(batch, 3, 13))
    assert out.shape == (batch, 6) and out.dtype == tf.float32
    values = out.numpy()
    assert np.all(values >= -1.0) and np.all(values <= 1.0)
    if batch == 128:
        assert values.std() > 0.1  # the outputs spread over the range


def test_shots_estimates_are_within_statistical_error():
    shots = 4000
    exact = G.QuantumGenerator(3, 2, readout="xz", backend="qsim", seed=14, init_scale=1.0)
    sampled = G.build_generator(**{**exact.config(), "shots": shots, "seed": 14})
    noise = G.sample_noise(6, 3, 15)
    want, got = exact(noise).numpy(), sampled(noise).numpy()
    sigma = np.sqrt(np.clip(1 - want**2, 1e-3, None) / shots)
    assert np.all(np.abs(got - want) <= 5 * sigma + 1e-6)
    assert np.any(got != want)  # really sampled
    np.testing.assert_array_equal(G.build_generator(**sampled.config())(noise).numpy(), got)  # seeded
    # Estimates are means of +-1 outcomes: multiples of 2 / shots.
    half_counts = got * shots / 2
    np.testing.assert_allclose(half_counts, np.round(half_counts), atol=1e-2)


def test_depolarising_noise_pulls_expectations_towards_zero():
    exact = G.QuantumGenerator(2, 1, backend="qsim", seed=16, init_scale=0.3)
    noisy = G.build_generator(**{**exact.config(), "shots": 2000, "noise": 0.1, "seed": 1})
    noise = G.sample_noise(3, 2, 17)
    want, got = exact(noise).numpy(), noisy(noise).numpy()
    assert np.abs(want).mean() > 0.5
    assert np.abs(got).mean() < 0.85 * np.abs(want).mean()
    with pytest.raises(G.GeneratorError, match="give shots=N with noise"):
        G.QuantumGenerator(2, 1, backend="qsim", noise=0.1)
    with pytest.raises(G.GeneratorError, match=r"noise is a depolarising probability in \[0, 1\]"):
        G.QuantumGenerator(2, 1, backend="qsim", shots=10, noise=1.5)


# -- guards -----------------------------------------------------------------------------------

def test_bad_noise_is_refused_clearly():
    gen = G.QuantumGenerator(3, 1, seed=0)
    with pytest.raises(G.GeneratorError, match=r"shape \(batch, noise_dim=3\), got \(3,\).*noise\[None, :\]"):
        gen(np.zeros(3, np.float32))
    with pytest.raises(G.GeneratorError, match=r"got \(4, 2\)"):
        gen(np.zeros((4, 2), np.float32))
    bad = np.zeros((4, 3), np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(G.GeneratorError, match="1 NaN or infinite"):
        gen(bad)
    with pytest.raises(G.GeneratorError, match="empty"):
        gen(np.zeros((0, 3), np.float32))
    with pytest.raises(G.GeneratorError, match="float array"):
        gen(np.array([["a", "b", "c"]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite"):
        tf.function(gen)(tf.constant(bad))
    with pytest.raises(G.GeneratorError, match="one noise vector of length noise_dim=3"):
        gen.circuit_for(np.zeros((2, 3)))


@pytest.mark.parametrize("kwargs, words", [
    ({"num_qubits": 0, "num_layers": 1}, "num_qubits must be an integer >= 1"),
    ({"num_qubits": 2.5, "num_layers": 1}, "num_qubits must be an integer"),
    ({"num_qubits": 2, "num_layers": 1.0}, "num_layers must be an integer, got the float 1.0"),
    ({"num_qubits": 2, "num_layers": 1, "backend": "pennylane"}, "backend must be one of tfq, qsim, statevector"),
    ({"num_qubits": 2, "num_layers": 1, "readout": "y"}, "readout must be one of z, xz"),
    ({"num_qubits": 2, "num_layers": 1, "entangler": "cx"}, "entangler must be one of"),
    ({"num_qubits": 2, "num_layers": 1, "backend": "tfq", "shots": 10}, "the 'tfq' backend takes no options"),
    ({"num_qubits": 2, "num_layers": 1, "shots": 10}, "the 'statevector' backend takes the options.*backend='qsim'"),
    ({"num_qubits": 2, "num_layers": 1, "backend": "qsim", "shots": 0}, "shots must be an integer >= 1"),
    ({"num_qubits": 2, "num_layers": 1, "backend": "qsim", "shot": 5}, "takes the options"),
    ({"num_qubits": 2, "num_layers": 1, "init_scale": -1}, "init_scale must be a finite number >= 0"),
])
def test_bad_generators_are_refused_clearly(kwargs, words):
    with pytest.raises(ValueError, match=words):
        G.QuantumGenerator(**kwargs)


def test_memory_guard_names_the_figure(monkeypatch):
    monkeypatch.setattr(G, "available_memory", lambda: 2**20)  # 1 MiB free
    with pytest.raises(G.SimulationTooLargeError, match=r"18 qubits with a batch of 1 need about 0\.01 GiB.*0\.00 GiB is available"):
        G.QuantumGenerator(18, 1, backend="tfq")
    gen = G.QuantumGenerator(12, 1, backend="tfq", seed=0)  # 2^12 * 8 * 4 = 128 KiB per sample fits once ...
    with pytest.raises(G.SimulationTooLargeError, match="12 qubits with a batch of 64 need about"):
        gen(G.sample_noise(64, 12, 0))  # ... but not 64 times
    assert gen.memory_bytes(64) > 2**20 > gen.memory_bytes(1)


def test_memory_guard_uses_the_real_machine_by_default():
    with pytest.raises(G.SimulationTooLargeError, match="GiB is available; use fewer qubits"):
        G.QuantumGenerator(45, 1)


# -- configs ----------------------------------------------------------------------------------

def test_config_round_trip_rebuilds_the_same_generator():
    gen = G.QuantumGenerator(3, 2, "cry-pairs", readout="xz", seed=21, init_scale=0.4)
    cfg = gen.config()
    assert json.loads(json.dumps(cfg)) == cfg and cfg["kind"] == "quantum"
    again = G.build_generator(**cfg)
    noise = G.sample_noise(4, 3, 22)
    np.testing.assert_array_equal(again(noise).numpy(), gen(noise).numpy())
    qsim = G.build_generator(**{**cfg, "backend": "qsim", "shots": 100})
    assert qsim.config()["shots"] == 100 and qsim.backend_name == "qsim"
    with pytest.raises(ValueError, match="kind must be one of quantum, classical"):
        G.build_generator(kind="hybrid")
    with pytest.raises(ValueError, match="build_generator\\(kind='classical'\\)"):
        G.build_generator(kind="classical", noise_dim=2, latent_dim=2, qubits=3)


# -- classical generator ----------------------------------------------------------------------

def test_classical_generator_counts_range_and_config():
    gen = G.ClassicalGenerator(4, 6, hidden=(16, 8), seed=0)
    expected = (4 + 1) * 16 + (16 + 1) * 8 + (8 + 1) * 6
    assert gen.count_parameters() == expected == capacity.classical_count_parameters(4, 6, (16, 8))
    assert sum(int(np.prod(v.shape)) for v in gen.trainable_weights) == expected
    assert gen.kind == "classical" and gen.noise_dim == 4 and gen.latent_dim == 6
    out = gen(G.sample_noise(128, 4, 1) * 50).numpy()  # large noise saturates tanh, still in range
    assert out.shape == (128, 6) and out.dtype == np.float32 and np.all(np.abs(out) <= 1.0)
    cfg = gen.config()
    assert json.loads(json.dumps(cfg)) == cfg
    again = G.build_generator(**cfg)
    noise = G.sample_noise(5, 4, 2)
    np.testing.assert_array_equal(again(noise).numpy(), gen(noise).numpy())
    other = G.ClassicalGenerator(4, 6, hidden=(16, 8), seed=1)
    assert not np.allclose(other(noise).numpy(), gen(noise).numpy())
    with pytest.raises(ValueError, match="hidden layer width must be an integer >= 1, got 0"):
        G.ClassicalGenerator(4, 6, hidden=(16, 0))
    with pytest.raises(ValueError, match=r"shape \(batch, noise_dim=4\)"):
        gen(np.zeros((3, 5), np.float32))


def test_classical_hidden_for_budget_matches_a_quantum_generator():
    target = G.QuantumGenerator(4, 2, seed=0).count_parameters()  # 88
    hidden = capacity.classical_hidden_for_budget(4, 4, target)
    count = capacity.classical_count_parameters(4, 4, hidden)
    assert len(hidden) == 2 and hidden[0] == hidden[1]
    for h in (hidden[0] - 1, hidden[0] + 1):  # no other width is closer
        if h >= 1:
            assert abs(capacity.classical_count_parameters(4, 4, (h, h)) - target) >= abs(count - target)
    assert capacity.classical_hidden_for_budget(3, 3, 10_000, depth=3)[0] > 40
    assert capacity.classical_hidden_for_budget(2, 2, 1) == (1, 1)
    assert capacity.classical_hidden_for_budget(2, 2, 50, depth=0) == ()


def test_sample_noise_is_seeded_standard_normal():
    a, b = G.sample_noise(1000, 3, 5), G.sample_noise(1000, 3, 5)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (1000, 3)
    assert abs(a.mean()) < 0.1 and abs(a.std() - 1) < 0.1
    rng = np.random.default_rng(0)
    assert not np.array_equal(G.sample_noise(4, 3, rng), G.sample_noise(4, 3, rng))
    t = G.sample_noise(4, 3, tf.random.Generator.from_seed(1))
    assert isinstance(t, tf.Tensor) and t.shape == (4, 3) and t.dtype == tf.float32
    with pytest.raises(ValueError, match="seed_or_rng must be"):
        G.sample_noise(4, 3, "seed")


# -- the benchmark's plumbing (figures are not tested) ----------------------------------------

def test_bench_generator_runs_and_writes_rows(tmp_path, capsys):
    from qgan_widgets.apps import bench

    assert bench.parse_sizes("3x1, 5X2") == [(3, 1), (5, 2)]
    with pytest.raises(ValueError, match="not QUBITSxLAYERS"):
        bench.parse_sizes("3-1")
    out = tmp_path / "rows.json"
    code = bench.main(["generator", "--backends", "tfq,qsim,statevector", "--sizes", "2x1", "--batch", "4",
                       "--steps", "2", "--warmup", "0", "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())
    assert [bench.label(r) for r in rows] == ["tfq", "qsim", "statevector", "statevector+xla"]
    keys = {"backend", "num_qubits", "num_layers", "batch", "first_step_s", "ms_per_step", "samples_per_s", "gflops"}
    for r in rows:
        assert keys <= set(r) and r["ms_per_step"] > 0 and r["samples_per_s"] > 0 and r["steps"] == 2
    assert [r["mode"] for r in rows] == ["forward+gradient", "forward", "forward+gradient", "forward+gradient"]
    assert [r["step"] for r in rows] == ["graph", "graph", "graph", "xla"]
    assert rows[0]["speedup_vs_tfq"] == 1.0 and rows[3]["gflops"] > 0
    text = capsys.readouterr().out
    assert "vs tfq" in text and "forward only" in text and "statevector+xla" in text
    with pytest.raises(ValueError, match="cannot be compiled by XLA"):
        bench.time_generator("tfq", 2, 1, batch=2, steps=1, warmup=0, xla_step=True)
    assert bench.main(["generator", "--sizes", "abc"]) == 2


def test_xla_compatible_says_which_generators_a_whole_step_xla_compile_accepts():
    noise = tf.constant(G.sample_noise(4, 3, 0))
    for gen in (G.QuantumGenerator(3, 1, backend="statevector", seed=0), G.ClassicalGenerator(3, 3, (8,), seed=0)):
        assert gen.xla_compatible
        np.testing.assert_allclose(tf.function(gen, jit_compile=True)(noise).numpy(), gen(noise).numpy(), atol=1e-5)
    tfq_gen = G.QuantumGenerator(3, 1, backend="tfq", seed=0)
    assert not tfq_gen.xla_compatible
    with pytest.raises(Exception):  # TFQ's ops have no XLA kernels: why xla_compatible is False
        tf.function(tfq_gen, jit_compile=True)(noise)


def test_checkpoints_restore_into_a_rebuilt_generator(tmp_path):
    noise = G.sample_noise(3, 3, 0)
    for gen in (G.QuantumGenerator(3, 1, seed=0), G.ClassicalGenerator(3, 3, (8,), seed=0)):
        path = tf.train.Checkpoint(generator=gen).write(str(tmp_path / gen.kind))
        other = G.build_generator(**{**gen.config(), "seed": 1})
        assert not np.allclose(other(noise).numpy(), gen(noise).numpy())
        tf.train.Checkpoint(generator=other).read(path).assert_consumed()
        np.testing.assert_array_equal(other(noise).numpy(), gen(noise).numpy())


@pytest.mark.skipif(not HAS_STATEVECTOR, reason="qgan_widgets.quantum.statevector is not there yet")
def test_statevector_backend_gives_tfqs_outputs_and_gradients_through_the_generator():
    tfq_gen = G.QuantumGenerator(4, 2, readout="xz", seed=30, init_scale=1.0)
    sv_gen = G.build_generator(**{**tfq_gen.config(), "backend": "statevector"})
    assert sv_gen.differentiable and sv_gen.backend_name == "statevector"
    noise = tf.constant(G.sample_noise(16, 4, 31))

    @tf.function
    def step(gen, z):
        with tf.GradientTape() as tape:
            out = gen(z)
            loss = tf.reduce_sum(out * tf.range(1.0, 9.0))
        return [out] + tape.gradient(loss, gen.trainable_weights)

    for want, got in zip(step(tfq_gen, noise), step(sv_gen, noise)):
        want = want.numpy()  # float32 sums over 16 samples: compare relative to the largest entry
        np.testing.assert_allclose(got.numpy(), want, atol=3e-5 * max(1.0, np.abs(want).max()))


# -- the original style-qGAN noise map (issue 15) -----------------------------------------------

def _original_noise_index(n: int, layers: int, noise_dim: int) -> list[int]:
    """Transcribed from the structure of the original implementation's parameter loop (Qibo's
    ``StyleQGAN.set_params``): the counter advances after every gate but the first RZ of a block."""
    out, noise = [], 0
    for _ in range(layers):
        for _q in range(n):
            out.append(noise); noise = (noise + 1) % noise_dim   # RY
            out.append(noise)                                     # RZ (no advance)
            out.append(noise); noise = (noise + 1) % noise_dim   # RY
            out.append(noise); noise = (noise + 1) % noise_dim   # RZ
        for _e in range(n if n > 1 else 0):                       # the CRY ring: n gates
            out.append(noise); noise = (noise + 1) % noise_dim
    for _q in range(n):                                           # final RY
        out.append(noise); noise = (noise + 1) % noise_dim
    return out


@pytest.mark.parametrize("n, layers, noise_dim", [(2, 1, 2), (3, 2, 3), (4, 2, 4), (4, 1, 3)])
def test_the_style_qgan_noise_map_is_the_original_ones(n, layers, noise_dim):
    from qgan_widgets.quantum.circuits import style_circuit

    style = style_circuit(n, layers, "cry-ring", noise_dim, noise_map="style-qgan")
    assert list(style.noise_index) == _original_noise_index(n, layers, noise_dim)
    cyclic = style_circuit(n, layers, "cry-ring", noise_dim)
    assert list(cyclic.noise_index) == [k % noise_dim for k in range(cyclic.num_gates)]
    assert list(style.noise_index) != list(cyclic.noise_index)


def test_backends_agree_with_cirq_under_the_style_qgan_noise_map():
    n = 3
    noise = G.sample_noise(4, n, 3)
    common = dict(num_qubits=n, num_layers=2, entangler="cry-ring", seed=2, init_scale=1.5, noise_map="style-qgan")
    gens = {b: G.QuantumGenerator(backend=b, **common) for b in ["tfq", "qsim"] + (["statevector"] if HAS_STATEVECTOR else [])}
    # the reference: Cirq on the circuit with angles w_k * xi[j_k] + b_k, j_k from the transcription above
    g = gens["tfq"]
    j = _original_noise_index(n, 2, n)
    sim = cirq.Simulator(dtype=np.complex128)
    ref = []
    for xi in noise:
        angles = g.w.numpy().astype(np.float64) * xi.astype(np.float64)[j] + g.b.numpy().astype(np.float64)
        ref.append(sim.simulate_expectation_values(g.style.resolve(angles), g.observables))
    ref = np.real(np.asarray(ref))
    for name, gen in gens.items():
        np.testing.assert_allclose(gen(noise).numpy(), ref, atol=1e-5, err_msg=name)
    cyclic = G.QuantumGenerator(**{**common, "noise_map": "cyclic"})
    assert np.abs(cyclic(noise).numpy() - ref).max() > 1e-3  # the map matters
    assert G.build_generator(**g.config()).style.noise_map == "style-qgan"  # the config keeps it
    with pytest.raises(ValueError, match="noise_map must be one of cyclic, style-qgan"):
        G.QuantumGenerator(2, 1, noise_map="qibo")
