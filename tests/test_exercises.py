"""The classroom self-checks: right answers pass, wrong ones fail with a hint, placeholders are
handled gracefully (so notebooks with unanswered exercises still run), and the expected answers
agree with the package's own functions."""
from __future__ import annotations

import math

import numpy as np
import pytest

from qgan_widgets.quantum import circuits
from qgan_widgets.teaching import exercises as ex
from qgan_widgets.models import Critic, critic_count_parameters


def verdict(capsys, fn, *args, **kwargs):
    ok = fn(*args, **kwargs)
    out = capsys.readouterr().out
    assert isinstance(ok, bool)
    assert out.strip(), "every checker prints a verdict"
    return ok, out


@pytest.mark.parametrize("n, layers, entangler, expected", [
    (1, 1, "none", 10), (3, 1, "cry-pairs", 34), (3, 2, "cry-pairs", 62), (4, 2, "cry-ring", 88),
    (5, 3, "cz-ring", 130),
])
def test_parameter_count_right_and_wrong(capsys, n, layers, entangler, expected):
    assert circuits.count_parameters(n, layers, entangler) == expected  # the paper's figures
    ok, out = verdict(capsys, ex.check_parameter_count, n, layers, entangler, expected)
    assert ok and "correct" in out
    ok, out = verdict(capsys, ex.check_parameter_count, n, layers, entangler, np.int64(expected))
    assert ok
    ok, out = verdict(capsys, ex.check_parameter_count, n, layers, entangler, expected + 1)
    assert not ok and "not quite" in out and "Hint" in out
    assert str(expected) not in out.replace(f"{expected + 1}", ""), "a wrong answer must not reveal the solution"


def test_parameter_count_diagnoses_common_mistakes(capsys):
    ok, out = verdict(capsys, ex.check_parameter_count, 3, 1, "cry-pairs", 17)  # gates, not parameters
    assert not ok and "two trainable numbers" in out
    ok, out = verdict(capsys, ex.check_parameter_count, 3, 1, "cry-pairs", 34 - 6)  # no final layer
    assert not ok and "final RY" in out
    ok, out = verdict(capsys, ex.check_parameter_count, 3, 1, "cry-pairs", 30)  # forgot the CRYs
    assert not ok and "controlled-RY" in out


@pytest.mark.parametrize("check, args", [
    (ex.check_parameter_count, (3, 1, "cry-pairs")),
    (ex.check_noise_index, (7, 3)),
    (ex.check_angle, (0.1, 0.2, -1.5)),
    (ex.check_latent_dim, (4, "xz")),
    (ex.check_statevector_memory, (10, 128)),
    (ex.check_critic_parameters, (4, 32, 2)),
    (ex.check_classical_parameters, (4, 4, (8, 8))),
    (ex.check_frechet_1d, (0.0, 1.0, 1.0, 2.0)),
    (ex.check_growth_factor, (0.02, 40)),
    (ex.check_ndvi, (200, 50)),
    (ex.check_latent_range, ()),
    (ex.check_gp_target, ()),
])
def test_placeholder_and_garbage_answers_are_handled(capsys, check, args):
    ok, out = verdict(capsys, check, *args, None)
    assert ok is False and "No answer yet" in out and "Hint" not in out  # no hint before a first try
    ok, out = verdict(capsys, check, *args, "forty-two")
    assert ok is False and "could not read" in out
    ok, out = verdict(capsys, check, *args, None, reveal=True)
    assert ok is False and "expected answer" in out


def test_noise_index(capsys):
    assert ex.check_noise_index(7, 3, 1) is True
    assert ex.check_noise_index(7, 3, 2) is False
    assert "Off by one" in capsys.readouterr().out
    style = circuits.style_circuit(3, 2, "cry-ring")
    for g in style.gates:
        assert ex.check_noise_index(g.index, style.noise_dim, g.noise_index)


def test_angle(capsys):
    w, b, xi = 0.3, -0.1, 1.7
    assert ex.check_angle(w, b, xi, w * xi + b)
    assert ex.check_angle(w, b, xi, np.float32(w * xi + b))
    assert not ex.check_angle(w, b, xi, w * b + xi)
    assert "mixed up" in capsys.readouterr().out
    assert not ex.check_angle(w, b, xi, w * xi)
    assert "add the bias" in capsys.readouterr().out
    # agrees with the package's gate table
    style = circuits.style_circuit(2, 1, "cry-ring")
    rng = np.random.default_rng(0)
    wv, bv, noise = rng.normal(size=style.num_gates), rng.normal(size=style.num_gates), rng.normal(size=2)
    table = circuits.gate_table(style, wv, bv, noise)
    row = table.iloc[5]
    assert ex.check_angle(row["w"], row["b"], row["xi_j"], row["angle"])


def test_latent_range(capsys):
    assert ex.check_latent_range((-1, 1))
    assert ex.check_latent_range([-1.0, 1.0])
    assert not ex.check_latent_range((1, -1))
    assert "order" in capsys.readouterr().out
    assert not ex.check_latent_range((0, 1))
    assert "probability" in capsys.readouterr().out
    assert not ex.check_latent_range((-1, 0, 1))
    assert not ex.check_latent_range(5)


def test_latent_dim(capsys):
    assert ex.check_latent_dim(4, "z", 4)
    assert ex.check_latent_dim(4, "xz", 8)
    assert not ex.check_latent_dim(4, "z", 16)
    assert "state vector" in capsys.readouterr().out


def test_statevector_memory(capsys):
    assert ex.check_statevector_memory(10, 128, 2**10 * 8 * 128)
    assert ex.check_statevector_memory(10, 128, 1_048_576 * 1.005)  # within 1 %
    assert not ex.check_statevector_memory(10, 128, 2**10 * 16 * 128)
    assert "complex128" in capsys.readouterr().out
    assert not ex.check_statevector_memory(10, 128, 2**10 * 8)
    assert "batch" in capsys.readouterr().out


def test_critic_parameters_match_the_model(capsys):
    for d, w, depth in [(4, 32, 2), (2, 4, 1), (8, 16, 3)]:
        expected = Critic(d, w, depth, seed=0).count_parameters()
        assert expected == critic_count_parameters(d, w, depth)
        assert ex.check_critic_parameters(d, w, depth, expected)
        assert not ex.check_critic_parameters(d, w, depth, expected - (depth * w + 1))
        assert "weights only" in capsys.readouterr().out


def test_classical_parameters(capsys):
    from qgan_widgets.models import ClassicalGenerator

    gen = ClassicalGenerator(4, 4, (8, 8), seed=0)
    n = gen.count_parameters()
    assert n == sum(int(np.prod(v.shape)) for v in gen.trainable_weights)
    assert ex.check_classical_parameters(4, 4, (8, 8), n)
    assert ex.check_classical_parameters(4, 4, 8, (4 * 8 + 8) + (8 * 4 + 4))  # 76
    assert not ex.check_classical_parameters(4, 4, (8, 8), n + 3)


def test_frechet_1d(capsys):
    # 1-D: FD = (mu1 - mu2)^2 + (sigma1 - sigma2)^2
    assert ex.check_frechet_1d(0.0, 1.0, 1.0, 2.0, 2.0)
    assert ex.check_frechet_1d(3.0, 0.5, 3.0, 0.5, 0.0)
    assert not ex.check_frechet_1d(0.0, 1.0, 1.0, 2.0, 1.0)
    assert "mean term" in capsys.readouterr().out
    assert not ex.check_frechet_1d(0.0, 1.0, 1.0, 2.0, 5.0)


def test_growth_factor(capsys):
    assert ex.check_growth_factor(0.02, 40, math.exp(0.8))
    assert not ex.check_growth_factor(0.02, 40, 0.8)
    assert "exponential" in capsys.readouterr().out


def test_ndvi(capsys):
    assert ex.check_ndvi(200, 50, 150 / 250)
    assert ex.check_ndvi(0.8, 0.2, 0.6)
    assert ex.check_ndvi([200, 10], [50, 30], [0.6, -0.5])
    assert not ex.check_ndvi(200, 50, -0.6)
    assert "sign" in capsys.readouterr().out
    assert not ex.check_ndvi(200, 50, 150)
    assert not ex.check_ndvi([200, 10], [50, 30], [0.6, 0.5, 0.1])
    assert "shape" in capsys.readouterr().out
    # the package's NDVI view agrees
    from qgan_widgets.data import ndvi

    tile = np.zeros((1, 1, 4), np.uint8)
    tile[..., 0], tile[..., 3] = 50, 200
    assert ex.check_ndvi(200, 50, float(ndvi(tile)[0, 0]))


def test_gp_target(capsys):
    assert ex.check_gp_target(1)
    assert not ex.check_gp_target(0)
    assert "constant" in capsys.readouterr().out
    assert not ex.check_gp_target(True)  # a bool is not a number here


def test_hints_come_only_after_a_wrong_answer(capsys):
    ok, out = verdict(capsys, ex.check_gp_target, None)
    assert not ok and "Hint" not in out and "expected answer" not in out
    ok, out = verdict(capsys, ex.check_gp_target, 2.0)
    assert not ok and "Hint" in out and "expected answer" not in out


def test_teacher_mode_reveals_every_answer(capsys, monkeypatch):
    monkeypatch.setenv("QGAN_REVEAL", "1")
    ok, out = verdict(capsys, ex.check_parameter_count, 4, 3, "cry-ring", None)
    assert not ok and "(Teacher) expected answer: 128" in out
    ok, out = verdict(capsys, ex.check_choice, "06-ci-zero", None)
    assert "(Teacher) expected answer: c" in out


@pytest.mark.parametrize("qid", list(ex.QUESTIONS))
def test_choice_questions(capsys, qid):
    q = ex.QUESTIONS[qid]
    ok, out = verdict(capsys, ex.check_choice, qid, None)
    assert not ok and q["question"] in out and all(f"({k})" in out for k in q["options"])
    ok, out = verdict(capsys, ex.check_choice, qid, "z")
    assert not ok and "one of the letters" in out
    if q["correct"] is None:  # decided by a run
        ok, out = verdict(capsys, ex.check_choice, qid, "a")
        assert not ok and "you predicted (a)" in out
        assert ex.check_choice(qid, "A", observed="a") is True
        return
    assert ex.check_choice(qid, q["correct"].upper()) is True
    for wrong in set(q["options"]) - {q["correct"]}:
        ok, out = verdict(capsys, ex.check_choice, qid, wrong)
        assert not ok and "Hint: " + q["feedback"][wrong] in out
    with pytest.raises(ValueError, match="unknown question"):
        ex.check_choice("nope", "a")


def test_predictions_are_judged_against_the_measurement(capsys):
    ok, out = verdict(capsys, ex.check_prediction, "FD(real, real) at N = 50", None, 3.2)
    assert not ok and "predict first" in out and "Hint" not in out
    assert ex.check_prediction("FD(real, real) at N = 50", 3.0, 3.2) is True
    ok, out = verdict(capsys, ex.check_prediction, "FD(real, real) at N = 50", 0.0, 3.2,
                      mistakes=[(0.0, "two samples of one distribution still differ at small N")])
    assert not ok and "still differ at small N" in out
    ok, out = verdict(capsys, ex.check_prediction, "x", 10.0, 3.2)
    assert not ok and "the measured value is lower" in out
