"""Tests of audit.stats.calibration against statsmodels, sklearn and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import optimize, stats
from scipy.special import expit, logit
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression

from audit.stats.calibration import (
    EPSILON,
    Estimate,
    brier,
    calibration_in_the_large,
    calibration_slope,
    clip_scores,
    decision_curve,
    ece_interval,
    expected_calibration_error,
    net_benefit,
    reliability_curve,
)


def _simulate(rng, n, mean=-1.0, sd=1.0, power=1.0):
    """True risk expit(lp); the model reports expit(power * lp)."""
    lp = rng.normal(mean, sd, n)
    y = rng.binomial(1, expit(lp)).astype(float)
    return y, expit(power * lp)


def _glm(y, exog, offset=None):
    return sm.GLM(y, exog, family=sm.families.Binomial(), offset=offset).fit()


# 1. Calibration slope and intercept ---------------------------------------------------------

def test_slope_and_intercept_equal_statsmodels_glm():
    rng = np.random.default_rng(11)
    y, p = _simulate(rng, 1500, power=1.4)
    ref = _glm(y, sm.add_constant(logit(p)))
    slope, intercept = calibration_slope(y, p)
    assert slope.value == pytest.approx(ref.params[1], abs=1e-8)
    assert intercept.value == pytest.approx(ref.params[0], abs=1e-8)
    assert slope.se == pytest.approx(ref.bse[1], abs=1e-8)
    assert intercept.se == pytest.approx(ref.bse[0], abs=1e-8)
    z = stats.norm.ppf(0.975)
    assert slope.low == pytest.approx(ref.params[1] - z * ref.bse[1], abs=1e-8)
    assert slope.high == pytest.approx(ref.params[1] + z * ref.bse[1], abs=1e-8)
    assert slope.reason is None and "Wald" in slope.method and "model SE" in slope.method


def test_scores_of_exactly_0_and_1_are_clipped_before_the_logit():
    rng = np.random.default_rng(14)
    y, p = _simulate(rng, 500)
    p[:3], p[-3:] = 0.0, 1.0
    y[:2], y[-2:] = 1.0, 0.0  # some of them wrong, so the fit is finite
    q = np.clip(p, 1e-6, 1 - 1e-6)
    ref = _glm(y, sm.add_constant(logit(q)))
    slope, intercept = calibration_slope(y, p)
    assert (slope.value, intercept.value) == pytest.approx(tuple(ref.params[::-1]), abs=1e-8)
    citl, _ = calibration_in_the_large(y, p)
    assert citl.value == pytest.approx(_glm(y, np.ones((500, 1)), offset=logit(q)).params[0])


def _sandwich_se(y, p, patient):
    """Cluster-robust SE of (intercept, slope) by hand: bread (X'WX)^-1, meat from
    per-patient score sums, small-sample factor G/(G-1) * (N-1)/(N-K)."""
    _, codes = np.unique(patient, return_inverse=True)
    g, n = codes.max() + 1, y.size
    x = np.column_stack([np.ones(n), logit(np.clip(p, 1e-6, 1 - 1e-6))])

    def nll(b):
        return np.sum(np.logaddexp(0, x @ b) - y * (x @ b))

    beta = np.zeros(2)
    for _ in range(100):  # Newton-Raphson with step halving
        mu = expit(x @ beta)
        step = np.linalg.solve(x.T @ (x * (mu * (1 - mu))[:, None]), x.T @ (y - mu))
        t = 1.0
        while nll(beta + t * step) > nll(beta) and t > 1e-10:
            t /= 2
        beta = beta + t * step
    mu = expit(x @ beta)
    bread = np.linalg.inv(x.T @ (x * (mu * (1 - mu))[:, None]))
    scores = np.zeros((g, 2))
    np.add.at(scores, codes, x * (y - mu)[:, None])
    cov = bread @ (scores.T @ scores) @ bread * g / (g - 1) * (n - 1) / (n - 2)
    return beta, np.sqrt(np.diag(cov))


def test_cluster_robust_se_equals_hand_sandwich():
    rng = np.random.default_rng(12)
    patient = np.repeat(np.arange(400), rng.integers(1, 5, 400))
    lp = rng.normal(-1, 1, 400)[patient] + rng.normal(0, 0.5, patient.size)
    y = rng.binomial(1, expit(lp)).astype(float)
    p = expit(lp)
    slope, intercept = calibration_slope(y, p, clusters=patient)
    _, se = _sandwich_se(y, p, patient)
    assert slope.se == pytest.approx(se[1], rel=1e-6)
    assert intercept.se == pytest.approx(se[0], rel=1e-6)
    assert "cluster-robust SE over 400 patients" in slope.method


def test_cluster_robust_se_with_rows_fitted_at_exactly_0_or_1():
    # Scores of exactly 0 and 1 and a steep slope put some fitted probabilities at exactly
    # 0 or 1 in floating point, where statsmodels' robust covariance divides 0 by 0.
    y = np.array([0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1], dtype=float)
    p = np.array([0.1, 0.5, 0.0, 0.7, 0.3, 0.9, 0.1, 0.1, 0.4, 0.2, 0.5, 0.4, 0.0, 0.2, 0.2,
                  0.2, 1.0])
    patient = np.array([6, 3, 2, 6, 6, 4, 2, 3, 2, 0, 7, 3, 3, 6, 0, 6, 0])
    slope, intercept = calibration_slope(y, p, clusters=patient)
    beta, se = _sandwich_se(y, p, patient)
    assert (intercept.value, slope.value) == pytest.approx(tuple(beta), abs=1e-6)
    assert (intercept.se, slope.se) == pytest.approx(tuple(se), rel=1e-6)
    assert slope.reason is None


def test_calibrated_model_covers_one_and_overconfident_model_has_slope_half():
    rng = np.random.default_rng(13)
    y, p = _simulate(rng, 4000)
    slope, intercept = calibration_slope(y, p)
    assert slope.low <= 1 <= slope.high
    assert intercept.low <= 0 <= intercept.high
    over = expit(2 * logit(p))  # the same true risks, reported twice as far from 0.5 in logit
    slope, _ = calibration_slope(y, over)
    assert slope.value == pytest.approx(0.5, abs=0.04)
    assert slope.low <= 0.5 <= slope.high and slope.high < 1


# 2. Calibration in the large ---------------------------------------------------------------

def test_citl_equals_glm_with_offset():
    rng = np.random.default_rng(21)
    y, p = _simulate(rng, 1000, power=0.8)
    ref = _glm(y, np.ones((y.size, 1)), offset=logit(p))
    citl, _ = calibration_in_the_large(y, p)
    assert citl.value == pytest.approx(ref.params[0], abs=1e-8)
    assert citl.se == pytest.approx(ref.bse[0], abs=1e-8)
    assert citl.low == pytest.approx(ref.conf_int()[0, 0], abs=1e-8)


def test_citl_when_irls_diverges_solves_the_score_equation():
    # Confident wrong scores of exactly 0 and 1 (logit offsets of +-13.8 after clipping):
    # plain IRLS overshoots here; the estimate must still solve sum(y - expit(a + off)) = 0.
    y = np.array([1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1], dtype=float)
    p = np.array([1, 0, 0, 1, 1, 0.5, 1, 0, 1, 0, 1, 1, 0, 0, 0])
    offset = logit(np.clip(p, 1e-6, 1 - 1e-6))
    root = optimize.brentq(lambda a: np.sum(y - expit(a + offset)), -50, 50, xtol=1e-12)
    citl, _ = calibration_in_the_large(y, p)
    assert citl.value == pytest.approx(root, abs=1e-6)
    assert citl.low < root < citl.high and citl.reason is None


def test_observed_over_expected_by_hand():
    _, oe = calibration_in_the_large([1, 0, 1, 0], [0.2, 0.3, 0.4, 0.1])
    assert oe.value == pytest.approx(2.0)  # 2 events / 1.0 expected
    # psi = (y - 2 p) / 1.0 = (0.6, -0.6, 0.2, -0.2); var = 4/3 * 0.8; SE(log) = SE / 2.
    se_log = np.sqrt(4 / 3 * 0.8) / 2
    assert oe.se == pytest.approx(se_log)
    z = stats.norm.ppf(0.975)
    assert oe.low == pytest.approx(2 * np.exp(-z * se_log))
    assert oe.high == pytest.approx(2 * np.exp(z * se_log))
    assert np.log(oe.high) - np.log(oe.value) == pytest.approx(np.log(oe.value) - np.log(oe.low))


# 3. Cluster-robust standard errors ---------------------------------------------------------

def test_tripled_rows_in_one_patient_give_the_original_standard_errors():
    rng = np.random.default_rng(31)
    n = 20000
    y, p = _simulate(rng, n)
    y3, p3, patient = np.repeat(y, 3), np.repeat(p, 3), np.repeat(np.arange(n), 3)
    slope, intercept = calibration_slope(y, p)
    slope3, intercept3 = calibration_slope(y3, p3, clusters=patient)
    naive3, _ = calibration_slope(y3, p3)
    factor = np.sqrt(n / (n - 1) * (3 * n - 1) / (3 * n - 2))  # statsmodels' small-sample factor
    assert slope3.se / factor == pytest.approx(slope.se, rel=0.02)
    assert intercept3.se / factor == pytest.approx(intercept.se, rel=0.02)
    # Exactly the row-robust (HC0) SE of the original data, small-sample factor aside.
    hc0 = sm.GLM(y, sm.add_constant(logit(p)), family=sm.families.Binomial()).fit(cov_type="HC0")
    assert slope3.se / factor == pytest.approx(hc0.bse[1], rel=1e-6)
    assert naive3.se == pytest.approx(slope.se / np.sqrt(3), rel=1e-3)  # far too small
    for fn in (lambda *a, **k: calibration_in_the_large(*a, **k)[1], brier):
        assert fn(y3, p3, clusters=patient).se == pytest.approx(fn(y, p).se, rel=1e-9)
        assert fn(y3, p3).se < 0.6 * fn(y, p).se


def test_bootstraps_over_patients_equal_row_bootstraps_of_the_original():
    # Drawing patient k draws the 3 copies of row k; uniform-bin ECE and net benefit do not
    # change when every row is tripled, so the replicates match the row bootstrap exactly.
    rng = np.random.default_rng(32)
    y, p = _simulate(rng, 300)
    y3, p3, patient = np.repeat(y, 3), np.repeat(p, 3), np.repeat(np.arange(300), 3)
    a = ece_interval(y, p, strategy="uniform", n_boot=200, random_state=5)
    b = ece_interval(y3, p3, strategy="uniform", clusters=patient, n_boot=200, random_state=5)
    assert (a.value, a.low, a.high) == pytest.approx((b.value, b.low, b.high), abs=1e-12)
    assert "over patients" in b.method
    a = decision_curve(y, p, n_boot=100, random_state=6)
    b = decision_curve(y3, p3, clusters=patient, n_boot=100, random_state=6)
    np.testing.assert_allclose(a["model_low"], b["model_low"], atol=1e-12)
    np.testing.assert_allclose(a["model_high"], b["model_high"], atol=1e-12)
    naive = decision_curve(y3, p3, n_boot=100, random_state=6)
    assert np.mean(naive["model_high"] - naive["model_low"]) < 0.7 * np.mean(
        b["model_high"] - b["model_low"])


def test_bootstraps_draw_every_row_of_a_patient():
    # Each patient has one event and one non-event, both scored 0.5: any resample of whole
    # patients is exactly calibrated (ECE 0, net benefit and event rate fixed), while
    # resampling rows is not.
    y, p = np.tile([1.0, 0.0], 100), np.full(200, 0.5)
    patient = np.repeat(np.arange(100), 2)
    est = ece_interval(y, p, clusters=patient, n_boot=100)
    assert (est.value, est.low, est.high) == (0, 0, 0)
    assert ece_interval(y, p, n_boot=100).high > 0.02
    curve = decision_curve(y, p, [0.2, 0.5], clusters=patient, n_boot=100)
    np.testing.assert_allclose(curve["model_low"], curve["model"], atol=1e-12)
    np.testing.assert_allclose(curve["model_high"], curve["model"], atol=1e-12)
    rel = reliability_curve(y, p, clusters=patient, n_boot=100)
    assert (rel.low, rel.high) == (pytest.approx([0.5]), pytest.approx([0.5]))
    rel = reliability_curve(y, p, n_boot=100)
    assert rel.high[0] - rel.low[0] > 0.05


# 4. Expected calibration error -------------------------------------------------------------

Y6 = [0, 1, 0, 1, 1, 0]
P6 = [0.1, 0.2, 0.3, 0.6, 0.8, 0.9]


def test_ece_by_hand():
    # 2 uniform bins [0, .5) and [.5, 1]: |1/3 - 0.2| * 3/6 + |2/3 - 23/30| * 3/6.
    assert expected_calibration_error(Y6, P6, bins=2, strategy="uniform") == pytest.approx(
        (2 / 15 + 0.1) / 2)
    # 3 quantile bins, edges 0.2667 and 0.6667: {.1,.2}, {.3,.6}, {.8,.9}, each 1 event.
    assert expected_calibration_error(Y6, P6, bins=3, strategy="quantile") == pytest.approx(
        (0.35 + 0.05 + 0.35) / 3)
    # Tied scores merge quantile edges into a single bin [0.2, 0.7], whichever end is tied
    # (unmerged, the second case would split into {0.2} and {0.7 x 5}: 0.8/6 + 0.3 * 5/6).
    assert expected_calibration_error([0, 0, 1, 0, 0, 1], [0.2] * 5 + [0.7], bins=4) == (
        pytest.approx(abs(2 / 6 - 1.7 / 6)))
    assert expected_calibration_error([1, 0, 0, 1, 0, 1], [0.2] + [0.7] * 5, bins=4) == (
        pytest.approx(abs(3 / 6 - 3.7 / 6)))
    # Bins are closed on the left, the last one also on the right: 0.5 and 0.9 share
    # [0.5, 1] (else 0.7), and so do 0.95 and 1.0 of 10 bins (else 0.525).
    assert expected_calibration_error([1, 0], [0.5, 0.9], bins=2, strategy="uniform") == (
        pytest.approx(0.2))
    assert expected_calibration_error([1, 0], [0.95, 1.0], strategy="uniform") == (
        pytest.approx(0.475))


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_equals_direct_computation(strategy):
    rng = np.random.default_rng(41)
    y, p = _simulate(rng, 3000, power=1.5)
    edges = (np.linspace(0, 1, 11) if strategy == "uniform"
             else np.quantile(p, np.linspace(0, 1, 11)))
    total = 0.0
    for k in range(10):
        upper = p <= edges[k + 1] if k == 9 else p < edges[k + 1]
        rows = (p >= edges[k]) & upper
        if rows.any():
            total += rows.mean() * abs(y[rows].mean() - p[rows].mean())
    assert expected_calibration_error(y, p, bins=10, strategy=strategy) == pytest.approx(total)


def test_uniform_ece_equals_sklearn_calibration_curve():
    rng = np.random.default_rng(42)
    y, p = _simulate(rng, 2000, power=0.7)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, 11))[0]
    counts = counts[counts > 0]
    expected = np.sum(counts / counts.sum() * np.abs(prob_true - prob_pred))
    assert expected_calibration_error(y, p, strategy="uniform") == pytest.approx(expected)


def test_ece_interval_brackets_the_estimate():
    rng = np.random.default_rng(43)
    y, p = _simulate(rng, 1000, power=1.6)
    est = ece_interval(y, p, n_boot=300, random_state=1)
    assert est.value == expected_calibration_error(y, p)
    assert est.low < est.value < est.high and est.se > 0
    assert est.method == "ECE, 10 quantile bins, percentile bootstrap over rows, B=300"
    assert ece_interval(y, p, n_boot=300, random_state=1) == est  # seeded


# 5. Net benefit and decision curves --------------------------------------------------------

def test_net_benefit_by_hand():
    y = [1, 1, 0, 0, 1, 0]
    p = [0.9, 0.4, 0.6, 0.2, 0.3, 0.1]
    # t=0.25: treated .9 .4 .6 .3 -> TP 3, FP 1.  t=0.4 (p = t is treated): .9 .4 .6 ->
    # TP 2, FP 1.  t=0.5: .9 .6 -> TP 1, FP 1.
    expected = [3 / 6 - 1 / 6 * 0.25 / 0.75, 2 / 6 - 1 / 6 * 0.4 / 0.6, 1 / 6 - 1 / 6 * 1.0]
    np.testing.assert_allclose(net_benefit(y, p, [0.25, 0.4, 0.5]), expected)
    curve = decision_curve(y, p, [0.25, 0.4, 0.5])
    # Prevalence 1/2: treat all = 1/2 - 1/2 * t / (1 - t).
    np.testing.assert_allclose(curve["treat_all"], [0.5 - 0.5 / 3, 0.5 - 0.5 * 2 / 3, 0.0])
    np.testing.assert_array_equal(curve["treat_none"], 0)
    np.testing.assert_allclose(curve["model"], expected)
    assert "model_low" not in curve


def test_perfect_predictor_net_benefit_is_prevalence_and_default_thresholds():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0])
    curve = decision_curve(y, y.astype(float))
    np.testing.assert_allclose(curve["threshold"], np.arange(0.01, 0.51, 0.01))
    np.testing.assert_allclose(curve["model"], 0.3)
    rng = np.random.default_rng(51)
    y, p = _simulate(rng, 800)
    curve = decision_curve(y, p, n_boot=200)
    assert np.all(curve["model_low"] <= curve["model"]) and np.all(
        curve["model"] <= curve["model_high"])


# 6. Reliability curves ---------------------------------------------------------------------

def test_isotonic_curve_equals_sklearn_and_band_contains_it():
    rng = np.random.default_rng(61)
    y, p = _simulate(rng, 1500, power=1.3)
    curve = reliability_curve(y, p, n_boot=200)
    grid = np.linspace(np.quantile(p, 0.01), np.quantile(p, 0.99), 50)
    np.testing.assert_allclose(curve.x, grid)
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(p, y)
    np.testing.assert_allclose(curve.y, iso.predict(grid), atol=1e-12)
    assert np.all(np.diff(curve.y) >= 0)
    assert np.all((curve.low <= curve.y) & (curve.y <= curve.high))
    assert np.mean(curve.high - curve.low) > 0.05
    wide = reliability_curve(y, p, n_boot=200, level=0.99)
    assert np.all(wide.low <= curve.low) and np.all(curve.high <= wide.high)
    # Counts: predictions nearest to each grid point, within half a cell of the grid's ends.
    half = (grid[1] - grid[0]) / 2
    assert curve.counts.sum() == np.sum((p >= grid[0] - half) & (p <= grid[-1] + half))
    assert curve.counts.shape == grid.shape and curve.reason is None


def test_loess_curve_tracks_the_true_rate():
    rng = np.random.default_rng(62)
    p = rng.uniform(0.05, 0.95, 4000)
    y = rng.binomial(1, p).astype(float)
    grid = np.linspace(0.1, 0.9, 9)
    curve = reliability_curve(y, p, method="loess", grid=grid, n_boot=50)
    np.testing.assert_allclose(curve.y, grid, atol=0.05)
    assert np.all((curve.low <= curve.y) & (curve.y <= curve.high))
    assert np.all(curve.low <= grid) and np.all(grid <= curve.high)


# 7. Degenerate and invalid inputs ----------------------------------------------------------

SEPARATED = "perfect separation: the slope is not finite"
DEGENERATE = {
    "no events": ([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], "no events"),
    "no non-events": ([1, 1, 1], [0.5, 0.6, 0.9], "no non-events"),
    "one row": ([1], [0.3], "fewer than 2 rows"),
    "no rows": ([], [], "fewer than 2 rows"),
    "separated": ([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.8], SEPARATED),
    "quasi-separated": ([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.5, 0.5, 0.7, 0.8], SEPARATED),
    "reversed": ([1, 1, 0, 0], [0.1, 0.2, 0.7, 0.8], SEPARATED),
    "exact 0/1": ([0, 1, 0, 1], [0.0, 1.0, 0.0, 1.0], SEPARATED),
    "constant p": ([0, 1, 0, 1], [0.4] * 4, "all scores are equal: the slope is not identifiable"),
}


@pytest.mark.parametrize("case", DEGENERATE)
def test_degenerate_inputs_give_reasons_without_warnings(case):
    y, p, reason = DEGENERATE[case]
    slope, intercept = calibration_slope(y, p)  # pytest turns any warning into an error
    assert np.isnan(slope.value) and np.isnan(intercept.value)
    assert (slope.low, slope.high, slope.se) == (None, None, None)
    assert slope.reason == intercept.reason == reason
    citl, oe = calibration_in_the_large(y, p)
    if reason in ("no events", "no non-events", "fewer than 2 rows"):
        assert np.isnan(citl.value) and citl.reason == reason
    else:
        assert np.isfinite(citl.value) and citl.reason is None
    assert isinstance(oe, Estimate) and isinstance(brier(y, p), Estimate)
    assert isinstance(expected_calibration_error(y, p), float)
    assert isinstance(ece_interval(y, p, n_boot=20), Estimate)
    curve = reliability_curve(y, p, n_boot=20)
    assert curve.x.shape == curve.y.shape == curve.low.shape == curve.counts.shape
    assert decision_curve(y, p, n_boot=20)["model"].shape == (50,)
    for method in ("isotonic", "loess"):
        reliability_curve(y, p, method=method, n_boot=20)


def test_degenerate_intervals_say_why():
    _, oe = calibration_in_the_large([0, 0, 0], [0.1, 0.2, 0.3])
    assert oe.value == 0 and oe.low is None and oe.reason == "no events: no log-scale interval"
    est = brier([1], [0.3])
    assert est.value == pytest.approx(0.49) and est.low is None and est.reason
    slope, _ = calibration_slope([0, 1, 1, 0], [0.2, 0.6, 0.4, 0.7], clusters=[7, 7, 7, 7])
    assert np.isfinite(slope.value) and slope.low is None
    assert slope.reason == "fewer than 2 patients: no cluster-robust interval"
    assert reliability_curve([0, 1, 1], [0.2, 0.5, 0.6], n_boot=0).reason == "n_boot=0: no band"
    assert ece_interval([1], [0.5]).reason == "fewer than 2 rows"


def test_clip_scores_counts_clipped_values():
    clipped, n = clip_scores([0.0, 1.0, 0.5, 1e-9, 0.3])
    assert n == 3
    np.testing.assert_array_equal(clipped, [EPSILON, 1 - EPSILON, 0.5, EPSILON, 0.3])
    assert np.all(np.isfinite(logit(clipped)))
    assert clip_scores([0.2, 0.8])[1] == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: calibration_slope([0, 1], [0.1]), "same shape"),
        (lambda: calibration_slope([0, 2], [0.1, 0.2]), "only 0 and 1"),
        (lambda: brier([0, 1], [0.1, np.nan]), "finite probabilities"),
        (lambda: calibration_in_the_large([0, 1], [0.1, 1.2]), "in \\[0, 1\\]"),
        (lambda: calibration_slope([0, 1], [0.1, 0.2], level=1.0), "level"),
        (lambda: expected_calibration_error([0, 1], [0.1, 0.2], strategy="x"), "strategy"),
        (lambda: expected_calibration_error([0, 1], [0.1, 0.2], bins=0), "bins"),
        (lambda: net_benefit([0, 1], [0.1, 0.2], [0.0, 0.5]), "thresholds"),
        (lambda: decision_curve([0, 1], [0.1, 0.2], [0.5, 1.0]), "thresholds"),
        (lambda: reliability_curve([0, 1], [0.1, 0.2], method="spline"), "method"),
        (lambda: reliability_curve([0, 1], [0.1, 0.2], grid=[0.5, 0.2]), "grid"),
        (lambda: ece_interval([0, 1], [0.1, 0.2], n_boot=0), "n_boot"),
        (lambda: brier([0, 1], [0.1, 0.2], clusters=[1]), "clusters"),
        (lambda: clip_scores([0.5], epsilon=0.0), "epsilon"),
    ],
)
def test_invalid_inputs_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# 8. Coverage simulation --------------------------------------------------------------------

def _independent_rows(rng, n):
    # Calibrated risks, logit ~ N(-2.9, 1): prevalence 7.5%, ~15 events in 200 rows.
    p = expit(rng.normal(-2.9, 1.0, n))
    return rng.binomial(1, p).astype(float), p, None


def _clustered_rows(rng, n_patients, rho=0.5):
    # Patients of 1-4 rows sharing a latent effect in both the risk and the outcome: a
    # Gaussian copula keeps P(y = 1 | p) = p for every row, so slope 1 and O/E 1 are exact.
    patient = np.repeat(np.arange(n_patients), rng.integers(1, 5, n_patients))
    lp = rng.normal(-2.2, 0.8, n_patients)[patient] + rng.normal(0, 0.6, patient.size)
    p = expit(lp)
    z = (np.sqrt(rho) * rng.standard_normal(n_patients)[patient]
         + np.sqrt(1 - rho) * rng.standard_normal(patient.size))
    return (z < stats.norm.ppf(p)).astype(float), p, patient


@pytest.mark.slow
def test_slope_and_oe_intervals_cover():
    # 1000 seeded replicates per setting: Monte Carlo s.e. of a 95% coverage is 0.69 points,
    # so the accepted range 0.93-0.97 is about +-2.9 s.e.
    settings = {
        "200 rows (~15 events)": lambda rng: _independent_rows(rng, 200),
        "2000 rows (~150 events)": lambda rng: _independent_rows(rng, 2000),
        "500 patients, 1-4 rows (~1250 rows)": lambda rng: _clustered_rows(rng, 500),
    }
    for k, (name, draw) in enumerate(settings.items()):
        rng = np.random.default_rng([20240801, k])
        hits = {"slope": [], "O/E": [], "slope ignoring clusters": []}
        events = []
        for _ in range(1000):
            y, p, patient = draw(rng)
            events.append(y.sum())
            slope, _ = calibration_slope(y, p, clusters=patient)
            _, oe = calibration_in_the_large(y, p, clusters=patient)
            hits["slope"].append(slope.low <= 1 <= slope.high)
            hits["O/E"].append(oe.low <= 1 <= oe.high)
            if patient is not None and len(hits["slope ignoring clusters"]) < 200:
                naive, _ = calibration_slope(y, p)
                hits["slope ignoring clusters"].append(naive.low <= 1 <= naive.high)
        cover = {key: float(np.mean(v)) for key, v in hits.items() if v}
        print(f"{name}: events mean {np.mean(events):.1f} (min {min(events):.0f}); coverage "
              + ", ".join(f"{key} {c:.3f}" for key, c in cover.items()))
        assert 0.93 <= cover["slope"] <= 0.97
        assert 0.93 <= cover["O/E"] <= 0.97
