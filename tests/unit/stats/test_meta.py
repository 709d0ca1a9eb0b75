"""Tests of audit.stats.meta against hand formulas, scipy root finding and statsmodels.

The confidence-distribution (CD) prediction interval is checked piece by piece (the exact law
of Cochran's Q against numerical integration and simulation, the tau² draws against root
finding), by its limits and Monte Carlo convergence, and by a coverage simulation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from audit.stats import meta
from audit.stats.meta import (
    MetaAnalysis,
    log_ratio,
    logit_auroc,
    logit_proportion,
    random_effects,
)

# Heterogeneous three-site case (Q > df, so DL tau2 > 0 and the DL HK scale q* > 1).
Y3 = np.array([0.20, 1.60, 0.90])
V3 = np.array([0.20, 0.01, 0.01])
# Six sites with mixed precision.
Y6 = np.array([1.10, 1.45, 0.70, 1.90, 1.25, 0.95])
V6 = np.array([0.010, 0.030, 0.020, 0.100, 0.015, 0.050])


def _dl_by_hand(y, v):
    w = 1 / v
    mu_fe = np.sum(w * y) / np.sum(w)
    q = np.sum(w * (y - mu_fe) ** 2)
    df = len(y) - 1
    tau2 = max(0.0, (q - df) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    ws = 1 / (v + tau2)
    mu = np.sum(ws * y) / np.sum(ws)
    se = np.sqrt(1 / np.sum(ws))
    return q, tau2, ws, mu, se


def test_dersimonian_laird_three_sites_by_hand():
    q, tau2, _, mu, se = _dl_by_hand(Y3, V3)
    assert tau2 > 0
    r = random_effects(Y3, V3, method="dl", hartung_knapp=False, prediction="riley")
    z = stats.norm.ppf(0.975)
    half_pi = stats.t.ppf(0.975, 1) * np.sqrt(tau2 + se**2)
    got = [r.pooled, r.se, r.tau2, r.i2, r.q, r.q_p, r.ci_low, r.ci_high, r.pi_low, r.pi_high]
    want = [mu, se, tau2, (q - 2) / q, q, stats.chi2.sf(q, 2), mu - z * se, mu + z * se,
            mu - half_pi, mu + half_pi]  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    assert (r.k, r.q_df, r.scale, r.level) == (3, 2, "identity", 0.95)
    assert "DerSimonian-Laird" in r.method and "normal" in r.method and "Riley" in r.method


@pytest.mark.parametrize("y, v", [(Y3, V3), (Y6, V6)])
def test_paule_mandel_solves_its_estimating_equation(y, v):
    def excess(tau2):
        w = 1 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        return np.sum(w * (y - mu) ** 2) - (len(y) - 1)

    tau2 = optimize.brentq(excess, 0.0, 100.0, xtol=1e-14)
    r = random_effects(y, v, method="pm", hartung_knapp=False)
    assert r.tau2 == pytest.approx(tau2, abs=1e-6)
    w = 1 / (v + tau2)
    assert r.pooled == pytest.approx(np.sum(w * y) / np.sum(w), abs=1e-6)
    assert "Paule-Mandel" in r.method


@pytest.mark.parametrize("method", ["pm", "dl"])
@pytest.mark.parametrize("hk", [True, False])
@pytest.mark.parametrize("y, v", [(Y3, V3), (Y6, V6)])
def test_equals_statsmodels_combine_effects(method, hk, y, v):
    from statsmodels.stats.meta_analysis import combine_effects

    # the module's Paule-Mandel tolerance (statsmodels' default atol 1e-5 moves tau2 by ~1e-6)
    kw = {"atol": meta._PM_ATOL, "maxiter": meta._PM_MAXITER} if method == "pm" else {}
    ref = combine_effects(y, v, method_re=method, use_t=hk, **kw)
    assert ref.tau2 > 0
    r = random_effects(y, v, method=method, hartung_knapp=hk, level=0.9)
    if hk:  # these cases have q* >= 1, where truncation does not bite
        assert ref.scale_hksj_re >= 1 - 1e-9
        se_ref, ci_ref = ref.sd_eff_w_re_hksj, ref.conf_int(alpha=0.1, use_t=True)[3]
    else:
        se_ref, ci_ref = ref.sd_eff_w_re, ref.conf_int(alpha=0.1, use_t=False)[1]
    np.testing.assert_allclose(
        [r.pooled, r.se, r.tau2, r.ci_low, r.ci_high],
        [ref.mean_effect_re, se_ref, ref.tau2, *ci_ref],
        rtol=1e-10,
    )
    np.testing.assert_allclose([r.q, r.q_p], [ref.q, ref.test_homogeneity().pvalue], rtol=1e-10)


def test_hartung_knapp_interval_by_hand():
    q, tau2, ws, mu, _ = _dl_by_hand(Y3, V3)
    qstar = np.sum(ws * (Y3 - mu) ** 2) / 2
    assert qstar > 1  # the untruncated and truncated variants agree here
    se_hk = np.sqrt(qstar / np.sum(ws))
    t = stats.t.ppf(0.975, 2)
    r = random_effects(Y3, V3, method="dl", hartung_knapp=True, prediction="riley")
    half_pi = stats.t.ppf(0.975, 1) * np.sqrt(tau2 + se_hk**2)
    np.testing.assert_allclose(
        [r.se, r.ci_low, r.ci_high, r.pi_low, r.pi_high],
        [se_hk, mu - t * se_hk, mu + t * se_hk, mu - half_pi, mu + half_pi],
        rtol=0, atol=1e-10,
    )  # fmt: skip
    assert "Hartung-Knapp" in r.method and "max(1, q*)" in r.method


def test_hartung_knapp_scale_is_truncated_at_one():
    # Q < df: tau2 = 0 and q* = Q/df < 1; the conservative variant keeps se = sqrt(1/sum w).
    y, v = np.array([1.0, 1.05, 0.97, 1.02]), np.array([0.04, 0.05, 0.03, 0.06])
    w = 1 / v
    mu = np.sum(w * y) / np.sum(w)
    assert np.sum(w * (y - mu) ** 2) / 3 < 1
    for method in ("pm", "dl"):
        r = random_effects(y, v, method=method)
        assert r.tau2 == 0.0
        assert r.pooled == pytest.approx(mu, abs=1e-12)
        assert r.se == pytest.approx(np.sqrt(1 / np.sum(w)), abs=1e-12)
        assert r.ci_high - r.pooled == pytest.approx(stats.t.ppf(0.975, 3) * r.se, abs=1e-12)


@pytest.mark.parametrize("method", ["pm", "dl"])
def test_homogeneous_sites(method):
    y, v = np.full(5, 0.8), np.array([0.01, 0.02, 0.05, 0.1, 0.03])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for hk in (True, False):
            r = random_effects(y, v, method=method, hartung_knapp=hk)
            assert r.tau2 == 0.0 and r.i2 == 0.0
            assert r.q == pytest.approx(0.0, abs=1e-9) and r.q_p == pytest.approx(1.0)
            values = [r.pooled, r.se, r.ci_low, r.ci_high, r.pi_low, r.pi_high]
            assert np.all(np.isfinite(values))
            assert r.pooled == pytest.approx(0.8, abs=1e-12)
            assert r.se == pytest.approx(np.sqrt(1 / np.sum(1 / v)), abs=1e-12)


def test_two_sites_no_prediction_interval_and_input_errors():
    for prediction in ("cd", "cd-untruncated", "riley"):
        r = random_effects([0.1, 0.5], [0.02, 0.03], prediction=prediction)
        assert r.k == 2 and r.pi_low is None and r.pi_high is None
        assert np.isfinite(r.ci_low) and np.isfinite(r.ci_high)
    with pytest.raises(ValueError, match="needs at least 2 sites"):
        random_effects([0.1], [0.02])
    with pytest.raises(ValueError, match="finite"):
        random_effects([0.1, 0.2, 0.3], [0.02, np.nan, 0.01])
    with pytest.raises(ValueError, match="finite"):
        random_effects([0.1, np.inf, 0.3], [0.02, 0.01, 0.01])
    with pytest.raises(ValueError, match="variances must be > 0"):
        random_effects([0.1, 0.2, 0.3], [0.02, -0.01, 0.01])
    with pytest.raises(ValueError, match="one length"):
        random_effects([0.1, 0.2, 0.3], [0.02, 0.01])
    with pytest.raises(ValueError, match="method"):
        random_effects([0.1, 0.2, 0.3], [0.02, 0.01, 0.01], method="reml")
    with pytest.raises(ValueError, match="scale"):
        random_effects([0.1, 0.2, 0.3], [0.02, 0.01, 0.01], scale="probit")
    with pytest.raises(ValueError, match="prediction"):
        random_effects([0.1, 0.2, 0.3], [0.02, 0.01, 0.01], prediction="hts")
    for bad in (999, 5000.0, True):
        with pytest.raises(ValueError, match="n_draws"):
            random_effects([0.1, 0.2, 0.3], [0.02, 0.01, 0.01], n_draws=bad)


def test_logit_proportion_continuity_correction_by_hand():
    lg, var = logit_proportion([0, 3, 10], [10, 10, 10])
    np.testing.assert_allclose(
        lg, [np.log(0.5 / 10.5), np.log(3 / 7), np.log(10.5 / 0.5)], rtol=1e-14
    )
    np.testing.assert_allclose(var, [1 / 0.5 + 1 / 10.5, 1 / 3 + 1 / 7, 1 / 10.5 + 1 / 0.5])
    with pytest.raises(ValueError):
        logit_proportion([1], [0])
    with pytest.raises(ValueError):
        logit_proportion([5], [4])


def test_logit_auroc_and_log_ratio():
    lg, var = logit_auroc([0.8, 0.6], [0.02, 0.05])
    np.testing.assert_allclose(lg, [np.log(4), np.log(1.5)])
    np.testing.assert_allclose(var, [0.02**2 / 0.16**2, 0.05**2 / 0.24**2])
    for bad in (0.0, 1.0, np.nan):
        with pytest.raises(ValueError, match="auc"):
            logit_auroc([0.7, bad], [0.02, 0.02])
    lr, var = log_ratio([2.0, 0.5], [0.1, 0.3])
    np.testing.assert_allclose(lr, [np.log(2), -np.log(2)])
    np.testing.assert_allclose(var, [0.01, 0.09])
    with pytest.raises(ValueError, match="ratio"):
        log_ratio([0.0, 1.0], [0.1, 0.1])


def test_natural_back_transforms():
    lg, var = logit_proportion([12, 30, 0, 45], [40, 60, 25, 50])
    r = random_effects(lg, var, scale="logit")
    n = r.natural()
    assert isinstance(n, MetaAnalysis) and n.scale == "identity"
    np.testing.assert_allclose(
        [n.pooled, n.ci_low, n.ci_high, n.pi_low, n.pi_high],
        special.expit([r.pooled, r.ci_low, r.ci_high, r.pi_low, r.pi_high]),
        rtol=1e-14,
    )
    p = special.expit(r.pooled)
    assert n.se == pytest.approx(r.se * p * (1 - p))
    assert (n.tau2, n.i2, n.q, n.q_p, n.k) == (r.tau2, r.i2, r.q, r.q_p, r.k)
    rl = random_effects(np.log([1.5, 2.0, 1.2]), [0.04, 0.02, 0.05], scale="log").natural()
    raw = random_effects(np.log([1.5, 2.0, 1.2]), [0.04, 0.02, 0.05], scale="log")
    assert rl.pooled == pytest.approx(np.exp(raw.pooled)) and rl.ci_low == pytest.approx(
        np.exp(raw.ci_low)
    )
    two = random_effects([0.1, 0.4], [0.01, 0.02], scale="logit").natural()
    assert two.pi_low is None and two.pi_high is None
    ident = random_effects(Y3, V3)
    assert ident.natural() is ident


def _imhof_cdf(q, lam):
    """P(sum lam_j chi²_1 <= q) by Imhof's (1961) inversion integral (scipy quad)."""

    def f(u):
        theta = 0.5 * np.sum(np.arctan(lam * u)) - 0.5 * q * u
        return np.sin(theta) / (u * np.prod((1 + (lam * u) ** 2) ** 0.25))

    return 0.5 - integrate.quad(f, 0, np.inf, limit=500, epsabs=1e-11)[0] / np.pi


def _cochran_q(y, v):  # y: (..., k)
    w = 1 / v
    return np.sum(w * (y - np.sum(w * y, axis=-1, keepdims=True) / np.sum(w)) ** 2, axis=-1)


def test_weighted_chi2_cdf_against_imhof_integral_and_chi2():
    cases = [
        (np.array([0.1, 1.0, 10.0, 3.0, 0.5]), 4.0),
        (np.geomspace(1, 100, 9), 50.0),
        (np.geomspace(1, 300, 12), 400.0),
        (np.geomspace(0.01, 10, 20), 30.0),
    ]
    for lam, q in cases:
        assert meta._q_cdf(q, lam[None])[0] == pytest.approx(_imhof_cdf(q, lam), abs=1e-7)
    # equal weights: lam * chi²_n; rows of one call may need different series lengths
    lam = np.array([[2.0] * 4, [1.0, 1.0, 1.0, 1.0 + 1e-9], [1.0, 5.0, 40.0, 900.0]])
    got = meta._q_cdf(3.0, lam)
    np.testing.assert_allclose(got[:2], [stats.chi2.cdf(1.5, 4), stats.chi2.cdf(3.0, 4)], atol=1e-9)
    assert meta._q_cdf(3.0, lam[2:])[0] == pytest.approx(got[2], abs=1e-12)
    assert got[2] == pytest.approx(_imhof_cdf(3.0, lam[2]), abs=1e-7)


def test_cochran_q_law_and_tau2_confidence_distribution_by_simulation():
    # The exact law of Cochran's Q at a true tau² (Biggerstaff & Jackson 2008), and so the CD
    # H(tau²) = P_tau²(Q >= q_obs) evaluated at the true tau² is uniform over data sets.
    rng = np.random.default_rng(7)
    v, tau2, n = np.geomspace(0.01, 0.1, 4), 0.09, 40000
    q = _cochran_q(np.sqrt(v + tau2) * rng.standard_normal((n, 4)), v)
    grid = np.quantile(q, [0.05, 0.25, 0.5, 0.75, 0.95])
    exact = np.array([meta._q_law_cdf(g, v, np.array([tau2]))[0] for g in grid])
    np.testing.assert_allclose(exact, [0.05, 0.25, 0.5, 0.75, 0.95], atol=4 * np.sqrt(0.25 / n))
    h = np.array([1 - meta._q_law_cdf(qi, v, np.array([tau2]))[0] for qi in q[:1000]])
    assert stats.kstest(h, "uniform").pvalue > 0.01
    # Q ~ chi²_{k-1} at tau² = 0, and H tends to 1 as tau² grows
    assert meta._q_law_cdf(2.0, v, np.array([1e-12]))[0] == pytest.approx(stats.chi2.cdf(2, 3))
    assert meta._q_law_cdf(2.0, v, np.array([1e6]))[0] < 1e-5


@pytest.mark.parametrize(
    "y, v",
    [
        (Y3, V3),
        (Y6, V6),
        (np.array([0.3, -0.2, 0.1, 0.05]), np.geomspace(0.01, 10.0, 4)),  # v spread 1000x
        (np.array([0.8, 1.2, 1.0, 0.9, 1.1]), np.full(5, 0.05)),  # Q = 2 < k - 1, equal v
    ],
)
def test_cd_tau2_draws_match_root_finding(y, v):
    q, n = _cochran_q(y, v), y.size - 1
    h0 = stats.chi2.sf(q, n)
    u = np.random.default_rng(3).uniform(size=100)
    got = meta._cd_tau2_draws(y, v, u)

    def excess(t, ui):  # H(t) - u, H = 1 - P_t(Q <= q)
        return 1 - meta._q_law_cdf(q, v, np.array([t]))[0] - ui

    def root(ui):
        hi = 1.0
        while excess(hi, ui) < 0:
            hi *= 4
        return optimize.brentq(excess, 0, hi, args=(ui,), xtol=1e-14)

    want = np.array([root(ui) if ui > h0 else 0.0 for ui in u])
    np.testing.assert_array_equal(got == 0, u <= h0)  # the CD's mass H(0) at tau² = 0
    # draws in the lowest 0.2% of the CD given tau² > 0 take the lowest node's tau² (by design)
    low = (u > h0) & ((u - h0) / (1 - h0) < 0.002)
    np.testing.assert_allclose(got[~low], want[~low], rtol=1e-2, atol=1e-6 * np.median(v))
    assert np.median(np.abs(got - want)[want > 0] / want[want > 0]) < 1e-3
    assert np.all(got[low] <= np.min(want[~low & (u > h0)]))


def test_cd_prediction_interval_converges_in_draws():
    intervals = [random_effects(Y6, V6, n_draws=20000, random_state=s) for s in (1, 2)]
    width = intervals[0].pi_high - intervals[0].pi_low
    assert abs(intervals[0].pi_low - intervals[1].pi_low) < 0.03 * width
    assert abs(intervals[0].pi_high - intervals[1].pi_high) < 0.03 * width
    default = random_effects(Y6, V6)  # B = 5000, random_state = 0
    assert abs(default.pi_low - intervals[0].pi_low) < 0.05 * width
    assert abs(default.pi_high - intervals[0].pi_high) < 0.05 * width
    assert default.pi_low < default.ci_low and default.pi_high > default.ci_high  # here


def test_cd_prediction_interval_reproducible_and_method_free():
    r = random_effects(Y6, V6)
    assert "Nagashima" in r.method and "max(1, q*)" in r.method and "5000 draws" in r.method
    again = random_effects(Y6, V6, method="dl", hartung_knapp=False, random_state=0)
    assert (again.pi_low, again.pi_high) == (r.pi_low, r.pi_high)  # CD uses neither option
    gen = random_effects(Y6, V6, random_state=np.random.default_rng(0))
    assert (gen.pi_low, gen.pi_high) == (r.pi_low, r.pi_high)
    other = random_effects(Y6, V6, random_state=1)
    assert other.pi_low != r.pi_low
    u = random_effects(Y6, V6, prediction="cd-untruncated")
    assert "untruncated" in u.method and u.pi_low != r.pi_low


def test_cd_prediction_interval_is_location_scale_equivariant():
    r = random_effects(Y6, V6)
    for a, c in ((0.0, 1e-4), (5.0, 1e3), (-2.0, 1.0)):
        s = random_effects(a + c * Y6, c**2 * V6)
        assert (s.pi_low - a) / c == pytest.approx(r.pi_low, abs=1e-9)
        assert (s.pi_high - a) / c == pytest.approx(r.pi_high, abs=1e-9)


def test_cd_homogeneous_sites_tend_to_the_fixed_effect_interval():
    # Q(0) far below chi²_{k-1} quantiles: H(0) = P(chi²_7 >= Q) ~ 1, so almost every tau²
    # draw is 0 and the CD interval is the fixed-effect mean's Hartung interval with the
    # scale truncated at 1: mu_FE ± t_{k-1} sqrt(1 / sum w) (the z fixed-effect interval
    # with t_{k-1} for z). The paper's untruncated scale q* = Q / (k - 1) shrinks it instead.
    y = np.array([0.80, 0.81, 0.79, 0.80, 0.805, 0.795, 0.80, 0.81])
    v = np.array([0.01, 0.02, 0.015, 0.03, 0.01, 0.025, 0.02, 0.012])
    w = 1 / v
    mu, q = np.sum(w * y) / np.sum(w), _cochran_q(y, v)
    assert stats.chi2.sf(q, 7) > 0.9999
    r = random_effects(y, v, n_draws=20000)
    half = stats.t.ppf(0.975, 7) / np.sqrt(np.sum(w))
    assert r.pi_low == pytest.approx(mu - half, abs=0.03 * half)
    assert r.pi_high == pytest.approx(mu + half, abs=0.03 * half)
    assert r.pi_high - r.pi_low == pytest.approx(r.ci_high - r.ci_low, rel=0.03)
    fixed_z = stats.norm.ppf(0.975) / np.sqrt(np.sum(w))
    assert (r.pi_high - r.pi_low) / (2 * fixed_z) == pytest.approx(
        stats.t.ppf(0.975, 7) / stats.norm.ppf(0.975), rel=0.03
    )
    paper = random_effects(y, v, n_draws=20000, prediction="cd-untruncated")
    assert paper.pi_high - paper.pi_low == pytest.approx(
        2 * half * np.sqrt(q / 7), rel=0.03
    )  # far narrower than the interval for the mean
    same = random_effects(np.full(8, 0.8), v)  # Q = 0: the paper's interval has width 0
    assert same.pi_high - same.pi_low == pytest.approx(2 * half, rel=0.03)
    degenerate = random_effects(np.full(8, 0.8), v, prediction="cd-untruncated")
    assert degenerate.pi_high - degenerate.pi_low == pytest.approx(0.0, abs=1e-12)


# Measured Riley prediction-interval coverage (PM, seed below, 2000 replicates) where it falls
# short of the 0.93 floor: a FINDING, kept for comparison with the default CD interval. Riley's
# interval undercovers because tau2 is often underestimated with few sites (tau2 = 0 in ~6% of
# replicates at k = 6); at k = 4 the wide t(2) quantile compensates. Ad hoc runs at another
# seed with 6000 replicates gave 0.927 (k=4), 0.911 (k=6), 0.921 (k=10), 0.936 (k=20).
# Cf. Partlett C, Riley RD (2017) Stat Med 36:301.
PI_UNDERCOVERAGE_FOUND = {6: 0.901, 10: 0.9285}


@pytest.mark.slow
def test_coverage_simulation_logit_auroc_sites():
    """HK interval for the mean, CD and Riley prediction intervals, v spread 10x.

    True site effects logit(0.8) + N(0, tau²), within-site variances geometric from 0.01 to
    0.1. tau = 0.3: k = 4, 6, 10 with 2000 replicates each (Monte Carlo s.e. of a 95%
    coverage 0.49 points); tau = 0 (homogeneous truth): k = 4, 10 with 1000 (0.69 points).
    The CD interval uses 2000 draws per fit (default seed); Riley's is
    pooled ± t_{k-2} sqrt(tau2 + se²) of the same fit. About 30-60 s.
    """
    rng = np.random.default_rng(20240611)
    mu = special.logit(0.8)
    measured = {}
    for tau, ks, reps in ((0.3, (4, 6, 10), 2000), (0.0, (4, 10), 1000)):
        for k in ks:
            v = np.geomspace(0.01, 0.1, k)
            theta = mu + tau * rng.standard_normal((reps, k))
            y = theta + np.sqrt(v) * rng.standard_normal((reps, k))
            new_site = mu + tau * rng.standard_normal(reps)
            crit = stats.t.ppf(0.975, k - 2)
            cover = dict.fromkeys(("ci pm", "ci dl", "cd", "riley"), 0)
            for i in range(reps):
                r = random_effects(y[i], v, n_draws=2000)
                half = crit * np.sqrt(r.tau2 + r.se**2)
                if i == 0:
                    ri = random_effects(y[i], v, prediction="riley")
                    riley = (r.pooled - half, r.pooled + half)
                    assert (ri.pi_low, ri.pi_high) == pytest.approx(riley, abs=1e-12)
                cover["ci pm"] += r.ci_low <= mu <= r.ci_high
                cover["cd"] += r.pi_low <= new_site[i] <= r.pi_high
                cover["riley"] += r.pooled - half <= new_site[i] <= r.pooled + half
                if tau > 0:
                    d = random_effects(y[i], v, method="dl", prediction="riley")
                    cover["ci dl"] += d.ci_low <= mu <= d.ci_high
            measured[(tau, k)] = {key: c / reps for key, c in cover.items()}
    for (tau, k), m in measured.items():
        dl = f"{m['ci dl']:.4f}" if tau > 0 else "-"
        print(
            f"tau={tau} k={k:2d}: HK CI coverage pm {m['ci pm']:.4f} dl {dl}; "
            f"prediction interval coverage CD {m['cd']:.4f}, Riley {m['riley']:.4f}"
        )
    for (tau, k), m in measured.items():
        if tau > 0:
            assert 0.93 <= m["ci pm"] <= 0.97 and 0.93 <= m["ci dl"] <= 0.97, (k, m)
            assert 0.93 <= m["cd"] <= 0.985, (k, m)
            if k in PI_UNDERCOVERAGE_FOUND:
                assert m["riley"] < 0.93
                assert m["riley"] == pytest.approx(PI_UNDERCOVERAGE_FOUND[k], abs=0.005)
            else:
                assert m["riley"] >= 0.93, (k, m)
        else:  # homogeneous truth: the new site's effect is the mean
            assert m["ci pm"] >= 0.93 and m["cd"] >= 0.93 and m["riley"] >= 0.93, (k, m)
