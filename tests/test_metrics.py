"""Frechet distance against closed forms, KID, Score records and the stability judgement."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qgan_widgets.scores import metrics
from qgan_widgets.scores import MetricError, Score, fd_from_samples, frechet_distance, judge_stability, kid


def _random_cov(d, rng, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / (rank or d)


# --------------------------------------------------------------------------- Frechet distance
def test_identical_gaussians_give_zero():
    rng = np.random.default_rng(0)
    mu, s = rng.normal(size=16), _random_cov(16, rng)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-8)


def test_mean_shift_only_gives_squared_distance():
    rng = np.random.default_rng(1)
    s = _random_cov(8, rng)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    assert frechet_distance(mu1, s, mu2, s) == pytest.approx(float(np.sum((mu1 - mu2) ** 2)), rel=1e-8)


def test_diagonal_covariances_closed_form():
    # FD = |dmu|^2 + sum (sqrt(a_i) - sqrt(b_i))^2 for diagonal covariances
    a = np.array([1.0, 4.0, 0.25, 9.0])
    b = np.array([2.0, 1.0, 0.25, 16.0])
    mu1, mu2 = np.zeros(4), np.array([1.0, 0.0, -2.0, 0.5])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_one_dimensional_case_and_scalars():
    # 1-D: (m1-m2)^2 + (s1-s2)^2 with standard deviations s
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9.0 + 1.0)
    assert frechet_distance(0.0, 4.0, 3.0, 1.0) == pytest.approx(10.0)


def test_commuting_full_covariances_closed_form():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(np.zeros(6), s1, np.zeros(6), s2) == pytest.approx(expected, rel=1e-8)


def test_symmetric_and_float64():
    rng = np.random.default_rng(3)
    m1, m2 = rng.normal(size=10), rng.normal(size=10)
    s1, s2 = _random_cov(10, rng), _random_cov(10, rng)
    d12, d21 = frechet_distance(m1, s1, m2, s2), frechet_distance(m2, s2, m1, s1)
    assert isinstance(d12, float)
    assert d12 == pytest.approx(d21, rel=1e-9)
    # float32 inputs are promoted: same answer
    assert frechet_distance(m1.astype(np.float32), s1.astype(np.float32), m2, s2) == pytest.approx(d12, rel=1e-5)


def test_matches_scipy_sqrtm_reference():
    from scipy import linalg

    rng = np.random.default_rng(4)
    m1, m2 = rng.normal(size=12), rng.normal(size=12)
    s1, s2 = _random_cov(12, rng), _random_cov(12, rng)
    ref = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(ref, rel=1e-7)


def test_near_singular_covariances_stay_finite():
    rng = np.random.default_rng(5)
    d = 64
    s1 = _random_cov(d, rng, rank=5)  # rank 5 in 64 dimensions
    s2 = _random_cov(d, rng, rank=3)
    s2[0, 0] += 1e-14
    value = frechet_distance(np.zeros(d), s1, np.zeros(d), s2)
    assert math.isfinite(value) and value >= 0
    assert frechet_distance(np.zeros(d), s1, np.zeros(d), s1) == pytest.approx(0.0, abs=1e-6)
    zero = np.zeros((d, d))
    assert frechet_distance(np.zeros(d), zero, np.ones(d), zero) == pytest.approx(float(d))


def test_fewer_samples_than_dimensions():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(20, 64)), rng.normal(size=(20, 64)) + 1.0
    value = fd_from_samples(a, b)
    assert math.isfinite(value) and value > 40  # mean shift of 1 in 64 dimensions dominates


def test_fd_from_samples_converges_to_closed_form():
    rng = np.random.default_rng(7)
    a = rng.normal(0.0, 1.0, size=(20000, 3))
    b = rng.normal(1.0, 2.0, size=(20000, 3))
    assert fd_from_samples(a, b) == pytest.approx(3 * 1.0 + 3 * 1.0, rel=0.05)


@pytest.mark.parametrize("bad, match", [
    (dict(mu1=np.zeros(3), sigma1=np.eye(4)), "shape"),
    (dict(mu1=np.array([0.0, np.nan, 0.0])), "NaN"),
    (dict(sigma1=np.array([[1.0, 0.5, 0], [0.0, 1.0, 0], [0, 0, 1.0]])), "symmetric"),
    (dict(sigma1=-np.eye(3)), "positive semi-definite"),
    (dict(mu2=np.zeros(2), sigma2=np.eye(2)), "dimensions"),
])
def test_bad_inputs_raise_clear_errors(bad, match):
    args = dict(mu1=np.zeros(3), sigma1=np.eye(3), mu2=np.zeros(3), sigma2=np.eye(3))
    args.update(bad)
    with pytest.raises(MetricError, match=match):
        frechet_distance(**args)
    assert issubclass(MetricError, ValueError)


def test_fd_from_samples_errors():
    with pytest.raises(MetricError, match="at least 2"):
        fd_from_samples(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(MetricError, match="feature dimensions"):
        fd_from_samples(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(MetricError, match="NaN"):
        fd_from_samples(np.full((5, 3), np.inf), np.zeros((5, 3)))


# --------------------------------------------------------------------------- KID
def test_kid_identical_vs_shifted():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    same, same_std = kid(a, b, n_blocks=8, seed=0)
    shifted, _ = kid(a, b + 0.5, n_blocks=8, seed=0)
    assert abs(same) < 3 * same_std + 1e-3  # unbiased: ~0 for the same distribution
    assert same_std > 0  # the blocks differ
    assert shifted > 10 * max(abs(same), same_std)
    assert kid(a, b, n_blocks=8, seed=0) == (same, same_std)  # seeded


def test_kid_errors():
    a = np.zeros((10, 3))
    with pytest.raises(MetricError, match="block_size"):
        kid(a, a, block_size=20)
    with pytest.raises(MetricError, match="n_blocks"):
        kid(a, a, n_blocks=0)


# --------------------------------------------------------------------------- Score
def test_score_fields_string_and_dict():
    s = Score(value=12.345, name="FD", n_real=1000, n_fake=1000, feature_dim=64, seed=0,
              extractor="SAT-4 classifier features (64-d)")
    assert str(s) == "FD 12.3 (N=1000/1000, d=64, seed 0, SAT-4 classifier features (64-d))"
    d = s.to_dict()
    assert d == {"value": 12.345, "name": "FD", "n_real": 1000, "n_fake": 1000, "feature_dim": 64,
                 "seed": 0, "extractor": "SAT-4 classifier features (64-d)", "std": None}
    json.dumps(d)
    assert Score.from_dict(d) == s
    assert float(s) == 12.345
    k = Score(value=0.0123, std=0.0031, name="KID", n_real=500, n_fake=400, feature_dim=64, seed=3,
              extractor="x")
    assert str(k) == "KID 0.0123 ± 0.0031 (N=500/400, d=64, seed 3, x)"


# --------------------------------------------------------------------------- stability
def test_stable_run():
    fd = [50, 30, 20, 12.0, 11.5, 11.8, 12.2, 11.9]
    st = judge_stability(fd, losses=[{"step": i, "d_loss": -1.0, "g_loss": 0.5} for i in range(100)])
    assert st.stable and bool(st) and st.reasons == []
    assert st.rel_spread == pytest.approx((12.2 - 11.5) / 11.9)
    assert st.final_fd == 11.9
    assert "stable" in str(st)


def test_oscillating_fd_is_unstable():
    st = judge_stability([10, 20, 10, 20, 10, 20])
    assert not st.stable
    assert any("varies by" in r for r in st.reasons)


def test_too_few_evaluations():
    st = judge_stability([1.0, 1.0], window=5)
    assert not st.stable and "only 2 evaluations" in st.reasons[0]


def test_nan_fd_and_losses():
    assert not judge_stability([1.0] * 4 + [math.nan])
    st = judge_stability([1.0] * 6, losses=[0.1, 0.2, math.inf])
    assert not st.stable and any("NaN or infinite" in r for r in st.reasons)


def test_unbounded_losses():
    losses = [[0.1, 0.2]] * 50 + [[5e3, 1.0]] * 10
    st = judge_stability([1.0] * 6, losses=losses)
    assert not st.stable and any("not bounded" in r for r in st.reasons)
    assert judge_stability([1.0] * 6, losses=losses, max_abs_loss=1e4).stable


def test_fd_must_be_low_when_asked():
    fd = [40.0, 41.0, 40.5, 40.2, 40.8]
    assert judge_stability(fd).stable
    st = judge_stability(fd, max_fd=10.0)
    assert not st.stable and "above the allowed" in st.reasons[0]


def test_documented_defaults():
    assert metrics.DEFAULT_WINDOW == 5 and metrics.DEFAULT_MAX_REL_SPREAD == 0.2
    fd = [10.0, 10.0, 10.0, 10.0, 12.1]  # spread 21% > 20%
    assert not judge_stability(fd)
    assert judge_stability(fd, max_rel_spread=0.25)


def test_fallbacks_offset_then_sqrtm(monkeypatch):
    rng = np.random.default_rng(9)
    m1, m2, s1, s2 = rng.normal(size=5), rng.normal(size=5), _random_cov(5, rng), _random_cov(5, rng)
    exact = frechet_distance(m1, s1, m2, s2)
    calls = []

    def failing(a, b):
        calls.append(1)
        raise np.linalg.LinAlgError("no convergence")

    monkeypatch.setattr(metrics, "_trace_sqrt_product", failing)
    # both eigen attempts fail; scipy's sqrtm on the offset covariances gives the same value
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(exact, rel=1e-4)
    assert len(calls) == 2


def test_sqrtm_fallback_refuses_large_imaginary_parts():
    # S1 S2 with a negative eigenvalue: its square root is genuinely complex
    with pytest.raises(MetricError, match="imaginary"):
        metrics._trace_sqrt_product_sqrtm(np.diag([1.0, 1.0]), np.diag([1.0, -4.0]))


def test_stability_on_the_excess_over_the_floor():
    """Judged on the total FD, a floor of 3.5 dilutes a swing of 0.8 around an excess of 1.9 to 15%."""
    fd = [5.0, 5.8, 5.0, 5.8, 5.4]
    assert judge_stability(fd).stable
    st = judge_stability(fd, floor=3.5)
    assert not st.stable and st.rel_spread == pytest.approx(0.8 / 1.9)
    assert "the FD's excess over the floor still varies by 42%" in st.reasons[0]
    # at the floor the excess is near 0: the spread is measured against a tenth of the floor
    at_floor = [3.50, 3.53, 3.52, 3.50, 3.51]
    st = judge_stability(at_floor, floor=3.5)
    assert st.stable and st.rel_spread == pytest.approx(0.03 / 0.35)
    assert not judge_stability(at_floor, floor=3.5, min_excess_share=0.01)
    with pytest.raises(MetricError, match="floor must be a finite number"):
        judge_stability(fd, floor=math.nan)


def test_stability_judges_the_critics_losses_not_the_generators():
    """In a WGAN the generator's loss has a free offset: a large |g_loss| is not instability."""
    fd = [1.0] * 6
    calm = [{"step": i, "d_loss": -1.0, "g_loss": 5e3, "w_estimate": 1.0, "grad_norm_g": 9e9} for i in range(50)]
    assert judge_stability(fd, losses=calm).stable
    wild = [{**row, "w_estimate": 5e3} for row in calm]
    st = judge_stability(fd, losses=wild)
    assert not st.stable and "not bounded" in st.reasons[0]
    assert metrics.JUDGED_LOSS_KEYS == ("d_loss", "w_estimate")
