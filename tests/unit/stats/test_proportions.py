"""audit.stats.proportions against independent references and hand computations.

References: scipy's binomtest intervals (exact and Wilson), statsmodels' proportion_confint
where installed, Newcombe's (1998) worked example for the MOVER difference, and the
Korn-Graubard effective sample size worked by hand for three and four patients.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from audit.stats.proportions import (
    INTERVAL_METHODS,
    Proportion,
    cluster_proportions,
    difference_interval,
    difference_p_value,
    proportion_interval,
)

# (k, n) pairs: the degenerate ends, single rows, a rare event, a rate near 1 and larger n.
COUNTS = [
    (0, 1), (1, 1), (0, 5), (5, 5), (1, 5), (4, 5), (0, 29), (26, 29), (29, 29),
    (1, 83), (0, 83), (82, 83), (83, 83), (3, 10), (50, 100), (7, 1000), (999, 1000),
    (0, 10_000), (1, 10_000),
]
LEVELS = (0.8, 0.9, 0.95, 0.99, 0.999)


def _rows(k, n) -> Proportion:
    """Proportions of independent rows (every row its own patient: design effect 1)."""
    k, n = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    return Proportion(k.copy(), n.copy(), n.copy(), np.ones_like(n))


def _p_value(a, b, method="clopper-pearson"):
    return difference_p_value(a, b, method)


def _mover(pa, la, ua, pb, lb, ub):
    d = pa - pb
    return d - np.hypot(pa - la, ub - pb), d + np.hypot(ua - pa, pb - lb)


def _scipy_ci(k, n, level, method):
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method=method)
    return ci.low, ci.high


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("method", "scipy_method"), [("clopper-pearson", "exact"),
                                                      ("wilson", "wilson")])
def test_unclustered_interval_matches_scipy_binomtest(method, scipy_method, level):
    k, n = np.array(COUNTS, dtype=float).T
    low, high = proportion_interval(_rows(k, n), level, method)
    ref = np.array([_scipy_ci(int(a), int(b), level, scipy_method) for a, b in COUNTS])
    # scipy finds the exact bounds by root-finding to ~3e-8 relative (see the closed forms
    # below for the tighter check).
    np.testing.assert_allclose(low, ref[:, 0], rtol=1e-7, atol=1e-13)
    np.testing.assert_allclose(high, ref[:, 1], rtol=1e-7, atol=1e-13)


@pytest.mark.parametrize("level", LEVELS)
def test_clopper_pearson_closed_forms_at_the_ends(level):
    # k = 0: upper bound 1 - (alpha/2)^(1/n); k = 1: lower bound 1 - (1 - alpha/2)^(1/n);
    # and the mirror images for k = n and k = n - 1.
    n = np.array([1, 2, 5, 29, 83, 1000, 10_000, 1_000_000], dtype=float)
    tail = (1 - level) / 2
    up0 = -np.expm1(np.log(tail) / n)
    low1 = -np.expm1(np.log1p(-tail) / n)
    low, high = proportion_interval(_rows(0, n), level)
    np.testing.assert_array_equal(low, 0)
    np.testing.assert_allclose(high, up0, rtol=1e-12)
    low, high = proportion_interval(_rows(n, n), level)
    np.testing.assert_allclose(low, 1 - up0, rtol=1e-12)
    np.testing.assert_array_equal(high, 1)
    low, _ = proportion_interval(_rows(1, n), level)
    np.testing.assert_allclose(low, low1, rtol=1e-10)
    _, high = proportion_interval(_rows(n - 1, n), level)
    np.testing.assert_allclose(1 - high, low1, rtol=1e-6)  # 1 - high cancels digits


@pytest.mark.parametrize(("method", "sm_method"), [("clopper-pearson", "beta"),
                                                   ("wilson", "wilson")])
def test_unclustered_interval_matches_statsmodels(method, sm_method):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    k, n = np.array(COUNTS, dtype=float).T
    for level in LEVELS:
        low, high = proportion_interval(_rows(k, n), level, method)
        ref_low, ref_high = proportion.proportion_confint(k, n, alpha=1 - level, method=sm_method)
        np.testing.assert_allclose(low, ref_low, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(high, ref_high, rtol=1e-8, atol=1e-12)


def test_interval_shapes_nan_for_empty_and_bad_arguments():
    low, high = proportion_interval(_rows([0, 3], [0, 10]))
    assert np.isnan(low[0]) and np.isnan(high[0]) and 0 < low[1] < 0.3 < high[1] < 1
    low, high = proportion_interval(_rows(3, 10))
    assert np.ndim(low) == 0 and np.ndim(high) == 0
    with pytest.raises(ValueError, match="level must be in"):
        proportion_interval(_rows(3, 10), level=95)
    with pytest.raises(ValueError, match="method must be one of"):
        proportion_interval(_rows(3, 10), method="wald")


def test_newcombe_worked_example_method_10():
    # Newcombe (1998) Table II, example (a): 56/70 - 48/80, hybrid score interval
    # (method 10) 0.0524 to 0.3339.
    low, high = difference_interval(_rows(56, 70), _rows(48, 80), 0.95, method="wilson")
    assert low == pytest.approx(0.0524, abs=5e-5)
    assert high == pytest.approx(0.3339, abs=5e-5)
    # ... and the same by hand from scipy's two Wilson intervals.
    la, ua = _scipy_ci(56, 70, 0.95, "wilson")
    lb, ub = _scipy_ci(48, 80, 0.95, "wilson")
    ref = _mover(56 / 70, la, ua, 48 / 80, lb, ub)
    assert (low, high) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize(("method", "scipy_method"), [("clopper-pearson", "exact"),
                                                      ("wilson", "wilson")])
def test_difference_is_mover_of_the_two_intervals(method, scipy_method):
    pairs = [((56, 70), (48, 80)), ((12, 12), (20, 200)), ((0, 5), (150, 300)),
             ((0, 10), (0, 10)), ((1, 83), (26, 29)), ((5, 5), (0, 7))]
    a = _rows([p[0][0] for p in pairs], [p[0][1] for p in pairs])
    b = _rows([p[1][0] for p in pairs], [p[1][1] for p in pairs])
    for level in (0.9, 0.95, 0.99):
        low, high = difference_interval(a, b, level, method)
        for i, ((ka, na), (kb, nb)) in enumerate(pairs):
            ref = _mover(ka / na, *_scipy_ci(ka, na, level, scipy_method),
                         kb / nb, *_scipy_ci(kb, nb, level, scipy_method))
            assert (low[i], high[i]) == pytest.approx(ref, rel=1e-9, abs=1e-13)
        # Never a point, even when both sides are 0/n or n/n.
        assert np.all(high - low > 0.05)


def _p_value_pairs():
    """Independent and clustered pairs of proportions with p-values from ~1e-9 to 1."""
    rng = np.random.default_rng(11)
    pa = _rows([56, 12, 0, 3, 40, 9, 30, 2], [70, 12, 5, 10, 100, 10, 500, 40])
    pb = _rows([48, 20, 150, 4, 30, 1, 0, 2], [80, 200, 300, 10, 100, 10, 500, 40])
    # Clustered: 8 units of 30-120 rows in 2-4-row patients with patient-level effects.
    sizes = rng.integers(2, 5, 400)
    unit = np.repeat(np.arange(8), 50)
    q = rng.beta(np.repeat([0.3, 0.9, 0.5, 0.2, 3, 1, 0.1, 2], 50), 1.5)
    y = rng.binomial(sizes, q)
    ca = cluster_proportions(y[:200], sizes[:200], unit[:200], 4)
    cb = cluster_proportions(y[200:], sizes[200:], unit[200:] - 4, 4)
    return [(pa, pb), (ca, cb)]


@pytest.mark.parametrize("method", INTERVAL_METHODS)
def test_p_value_inverts_the_difference_interval(method):
    for a, b in _p_value_pairs():
        p = _p_value(a, b, method)
        d = a.p - b.p
        check = (p > 1e-11) & (p < 0.99)  # level 1 - p is still well resolved
        assert check.sum() >= 4
        a, b, p, d = a.take(check), b.take(check), p[check], d[check]
        low, high = difference_interval(a, b, 1 - p, method)
        bound = np.where(d > 0, low, high)  # the bound nearest 0 touches it at level 1 - p
        np.testing.assert_allclose(bound, 0, atol=1e-6)
        low, high = difference_interval(a, b, 1 - p * 1.01, method)
        assert np.all((low > 0) | (high < 0))  # a slightly narrower interval excludes 0
        low, high = difference_interval(a, b, 1 - p * 0.99, method)
        assert np.all((low < 0) & (high > 0))  # a slightly wider one includes it


def test_p_value_edge_cases():
    a = _rows([3, 0, 5, 2, 3], [10, 7, 5, 0, 10])
    b = _rows([6, 0, 9, 1, 3], [20, 9, 9, 4, 0])
    p = _p_value(a, b)
    assert p[0] == 1 and p[1] == 1 and p[2] == 1  # equal estimates, 0/n and n/n included
    assert np.isnan(p[3]) and np.isnan(p[4])  # a side with no rows
    assert np.ndim(_p_value(_rows(3, 10), _rows(7, 10))) == 0
    # Symmetric in the sign of the difference.
    assert _p_value(_rows(3, 10), _rows(9, 12)) == pytest.approx(
        _p_value(_rows(9, 12), _rows(3, 10)), rel=1e-12)


@pytest.mark.parametrize("method", INTERVAL_METHODS)
def test_p_value_is_tiny_for_big_clear_differences(method):
    a = _rows([0, 400, 12, 0], [500, 500, 12, 80])
    b = _rows([400, 0, 20, 150], [500, 500, 200, 300])
    p = _p_value(a, b, method)
    assert np.all(p < 1e-10)
    assert np.all(p > 0)
    # Clustered: 0/200 rows vs 150/300 rows, each from 2-row patients.
    unit = np.repeat([0, 1], [100, 150])
    y = np.concatenate([np.zeros(100), np.repeat([2, 0, 1], 50)])
    prop = cluster_proportions(y, np.full(250, 2.0), unit, 2)
    assert _p_value(prop.take([0]), prop.take([1]), method)[0] < 1e-10


def test_p_value_raises_no_floating_point_warnings():
    with np.errstate(invalid="raise", divide="raise"):
        difference_p_value(_rows(3, 10), _rows(7, 10), method="wilson")
        # 0/20 rows from 7 patients (design effect n/C) vs 9/200 from 75 patients.
        a = Proportion(np.array([0.0]), np.array([20.0]), np.array([7.0]), np.array([20 / 7]))
        b = Proportion(np.array([9.0]), np.array([200.0]), np.array([75.0]), np.array([1.4152]))
        difference_p_value(a, b)


def test_p_value_resolves_below_1e_16():
    p = _p_value(_rows([400, 100, 60], 500), _rows(0, 500))
    assert p[0] < 1e-100
    assert p[0] < p[1] < p[2]


def test_design_effect_is_one_without_clustering():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(float)
    unit = rng.integers(0, 5, 300)
    prop = cluster_proportions(y, np.ones(300), unit, 5)  # one row per patient
    np.testing.assert_array_equal(prop.deff, 1.0)
    np.testing.assert_array_equal(prop.clusters, prop.n)
    low, high = proportion_interval(prop)
    ref_low, ref_high = proportion_interval(_rows(prop.k, prop.n))
    np.testing.assert_allclose(low, ref_low, rtol=1e-14)
    np.testing.assert_allclose(high, ref_high, rtol=1e-14)


def test_design_effect_is_at_least_one():
    rng = np.random.default_rng(4)
    n_units = 2000
    unit = np.repeat(np.arange(n_units), 12)
    m = rng.integers(0, 5, unit.size).astype(float)
    # Patient rates from very concordant to anti-correlated-looking (all patients alike).
    q = np.where(np.repeat(rng.random(n_units) < 0.5, 12), rng.beta(0.2, 0.2, unit.size),
                 np.repeat(rng.random(n_units), 12))
    y = rng.binomial(m.astype(int), q).astype(float)
    prop = cluster_proportions(y, m, unit, n_units)
    defined = prop.n > 0
    assert np.all(prop.deff[defined] >= 1)
    assert np.any(prop.deff[defined] > 1.5)  # the sample does exercise clustering


def test_design_effect_is_n_over_clusters_at_rate_zero_or_one():
    # Unit 0: 0/6 rows from 3 patients; unit 1: 5/5 rows from 2 patients (plus a patient
    # with no rows in the denominator, which is not a cluster); unit 2: 0/4 single rows.
    y = [0, 0, 0, 2, 3, 0, 0, 0, 0, 0]
    m = [2, 3, 1, 2, 3, 0, 1, 1, 1, 1]
    unit = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    prop = cluster_proportions(y, m, unit, 3)
    np.testing.assert_array_equal(prop.clusters, [3, 2, 4])
    np.testing.assert_allclose(prop.deff, [6 / 3, 5 / 2, 1])


def _hand_deff(pairs):
    """Korn-Graubard design effect by hand, in exact fractions: C/(C-1) sum (y - p m)^2 / n^2
    over p(1-p)/n."""
    k = sum(Fraction(y) for y, _ in pairs)
    n = sum(Fraction(m) for _, m in pairs)
    p = k / n
    c = len(pairs)
    var_cluster = Fraction(c, c - 1) * sum((y - p * m) ** 2 for y, m in pairs) / n**2
    return var_cluster / (p * (1 - p) / n)


def test_korn_graubard_interval_by_hand():
    cases = [
        [(2, 3), (0, 2), (0, 1)],          # 2/6 from 3 patients: deff 7/4
        [(2, 2), (0, 2), (3, 3), (0, 1)],  # 5/8 from 4 patients: deff 121/45
        [(1, 2), (0, 1), (2, 3), (1, 1)],  # 4/7 from 4 patients: 10/21, floored to 1
    ]
    assert [_hand_deff(c) for c in cases] == [Fraction(7, 4), Fraction(121, 45), Fraction(10, 21)]
    # All three in one call as units, pairs shuffled, plus an empty pair that is no cluster.
    pairs = [(y, m, u) for u, case in enumerate(cases) for y, m in case] + [(0, 0, 1)]
    order = np.random.default_rng(5).permutation(len(pairs))
    y, m, unit = np.array(pairs, dtype=float)[order].T
    prop = cluster_proportions(y, m, unit.astype(int), 3)
    np.testing.assert_array_equal(prop.k, [2, 5, 4])
    np.testing.assert_array_equal(prop.n, [6, 8, 7])
    np.testing.assert_array_equal(prop.clusters, [3, 4, 4])
    np.testing.assert_allclose(prop.deff, [7 / 4, 121 / 45, 1], rtol=1e-13)

    for level in (0.9, 0.95, 0.99):
        q = (1 + level) / 2
        k, n, c, deff = prop.k, prop.n, prop.clusters, np.array([7 / 4, 121 / 45, 1])
        n_eff = n / deff * (stats.t.ppf(q, n - 1) / stats.t.ppf(q, c - 1)) ** 2
        k_eff = k / n * n_eff
        k_got, n_got = prop.effective(level)
        np.testing.assert_allclose(n_got, n_eff, rtol=1e-12)
        np.testing.assert_allclose(k_got, k_eff, rtol=1e-12)
        # Clopper-Pearson at the (non-integer) effective counts: beta quantiles.
        low, high = proportion_interval(prop, level)
        np.testing.assert_allclose(low, stats.beta.ppf((1 - level) / 2, k_eff, n_eff - k_eff + 1),
                                   rtol=1e-9)
        np.testing.assert_allclose(high, stats.beta.ppf(q, k_eff + 1, n_eff - k_eff), rtol=1e-9)
        # Wilson at the effective n.
        z, p = stats.norm.ppf(q), k / n
        centre = (p + z**2 / (2 * n_eff)) / (1 + z**2 / n_eff)
        half = z / (1 + z**2 / n_eff) * np.sqrt(p * (1 - p) / n_eff + z**2 / (4 * n_eff**2))
        low, high = proportion_interval(prop, level, "wilson")
        np.testing.assert_allclose(low, centre - half, rtol=1e-12)
        np.testing.assert_allclose(high, centre + half, rtol=1e-12)
    # Clustering only ever widens the interval relative to independent rows.
    low, high = proportion_interval(prop)
    ref_low, ref_high = proportion_interval(_rows(prop.k, prop.n))
    assert np.all(low < ref_low) and np.all(high > ref_high)


@pytest.mark.parametrize("method", INTERVAL_METHODS)
def test_bounds_sit_at_zero_or_one_only_when_the_rate_does(method):
    sizes = np.concatenate([np.arange(1, 151), [500, 1000, 5000, 100_000]])
    k = np.concatenate([np.arange(s + 1) for s in sizes]).astype(float)
    n = np.concatenate([np.full(s + 1, s) for s in sizes]).astype(float)
    for level in (0.8, 0.95, 0.99, 0.999, 0.99999):
        low, high = proportion_interval(_rows(k, n), level, method)
        np.testing.assert_array_equal(low == 0, k == 0)
        np.testing.assert_array_equal(high == 1, k == n)
        assert np.all((low <= k / n) & (k / n <= high))
    # Clustered: 2-4-row patients, 10-100 rows per unit, rates from 0 to 1.
    rng = np.random.default_rng(6)
    n_units = 3000
    patients = rng.integers(5, 30, n_units)
    unit = np.repeat(np.arange(n_units), patients)
    m = rng.integers(2, 5, unit.size)
    some_positive = np.repeat(rng.random(n_units) < 0.9, patients)  # else 0/n
    y = rng.binomial(m, rng.beta(0.5, 0.5, unit.size) * some_positive)
    prop = cluster_proportions(y, m, unit, n_units)
    assert np.all(prop.deff >= 1) and np.any(prop.deff > 1.5)
    for level in (0.95, 0.99):
        low, high = proportion_interval(prop, level, method)
        np.testing.assert_array_equal(low == 0, prop.k == 0)
        np.testing.assert_array_equal(high == 1, prop.k == prop.n)
        assert np.all((low <= prop.p) & (prop.p <= high))
