import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from audit.stats import (
    auroc_influence,
    brier_influence,
    influence_se,
    wald_interval,
    wald_p_value,
)


def test_auroc_hand_computed():
    auc, psi = auroc_influence([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1])
    # Positives beat 2/2 and 1/2 negatives; negatives are beaten by 1/2 and 2/2.
    assert auc == 0.75
    np.testing.assert_allclose(psi, [0.125, -0.125, -0.125, 0.125])


@pytest.mark.parametrize("levels", [None, 2, 5, 20])
def test_auroc_equals_sklearn_with_ties(levels):
    rng = np.random.default_rng(0 if levels is None else levels)
    y = rng.random(3000) < 0.2
    score = y + rng.standard_normal(3000)
    if levels is not None:  # heavy ties
        score = np.digitize(score, np.quantile(score, np.linspace(0, 1, levels + 1)[1:-1]))
    auc, psi = auroc_influence(y, score)
    assert abs(auc - roc_auc_score(y, score)) < 1e-12
    assert abs(psi.sum()) < 1e-12


def test_auroc_se_matches_delong_variance():
    # Independent O(n1 * n0) DeLong computation from pairwise comparisons.
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.3
    score = np.round(y + rng.standard_normal(300), 1)
    pos, neg = score[y], score[~y]
    kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = kernel.mean(axis=1), kernel.mean(axis=0)
    n1, n0, n = len(pos), len(neg), len(y)
    delong_var = v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0
    auc, psi = auroc_influence(y, score)
    assert auc == pytest.approx(kernel.mean(), abs=1e-12)
    # Our estimator: n/(n-1) * sum psi^2, i.e. DeLong with (n_k - 1)/n_k factors.
    expected = (
        n / (n - 1)
        * ((n1 - 1) / n1 * v10.var(ddof=1) / n1 + (n0 - 1) / n0 * v01.var(ddof=1) / n0)
    )
    assert influence_se(psi) ** 2 == pytest.approx(expected, rel=1e-10)
    assert influence_se(psi) ** 2 == pytest.approx(delong_var, rel=0.02)


def test_auroc_single_class_is_undefined():
    auc, psi = auroc_influence([1, 1, 1], [0.1, 0.2, 0.3])
    assert np.isnan(auc) and psi is None
    assert np.isnan(influence_se(psi))


def test_auroc_rejects_bad_scores():
    with pytest.raises(ValueError, match="NaN or infinite"):
        auroc_influence([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        auroc_influence([0, 1], [0.1, 0.2, 0.3])


def test_brier_equals_sklearn_and_psi():
    rng = np.random.default_rng(2)
    p = rng.random(500)
    y = rng.random(500) < p
    brier, psi = brier_influence(y, p)
    assert abs(brier - brier_score_loss(y, p)) < 1e-12
    np.testing.assert_allclose(psi, ((p - y) ** 2 - brier) / 500)
    assert brier_influence([1, 0], [0.5, 0.5])[0] == 0.25
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        brier_influence([1, 0], [1.5, 0.5])


def test_influence_se_sums_within_clusters():
    psi = np.array([1.0, -1.0, 2.0, -2.0])
    assert influence_se(psi, ["a", "a", "b", "b"]) == 0.0
    assert influence_se(psi, ["a", "b", "a", "b"]) == pytest.approx(np.sqrt(2 / 1 * 18))
    assert influence_se(psi) == pytest.approx(np.sqrt(4 / 3 * 10))
    assert influence_se(psi, [0, 1, 2, 3]) == influence_se(psi)
    assert np.isnan(influence_se(psi, [7, 7, 7, 7]))
    with pytest.raises(ValueError, match="one label per row"):
        influence_se(psi, [1, 2])


def test_embedded_subgroup_psi_gives_the_subgroup_se():
    # Rows outside a subgroup carry psi 0: only the C/(C-1) factor changes.
    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.3
    score = y + rng.standard_normal(400)
    group = rng.random(400) < 0.4
    _, psi_g = auroc_influence(y[group], score[group])
    embedded = np.zeros(400)
    embedded[group] = psi_g
    c_all, c_g = 400, group.sum()
    ratio = (c_all / (c_all - 1)) / (c_g / (c_g - 1))
    assert influence_se(embedded) ** 2 == pytest.approx(influence_se(psi_g) ** 2 * ratio)


def test_se_of_group_minus_overall_auroc_matches_bootstrap():
    # psi_group - psi_overall, aligned by row, gives the SE of the difference;
    # compare with the bootstrap SD of the same difference (400 replicates:
    # relative SE of an SD ~ 3.5%, tolerance 15%).
    rng = np.random.default_rng(4)
    n = 600
    group = rng.random(n) < 0.3
    y = rng.random(n) < 0.3
    score = (1 + 0.8 * group) * y + rng.standard_normal(n)

    def diff_and_psi(idx):
        auc_all, psi_all = auroc_influence(y[idx], score[idx])
        g = group[idx]
        auc_g, psi_g = auroc_influence(y[idx][g], score[idx][g])
        psi = -psi_all
        psi[g] += psi_g
        return auc_g - auc_all, psi

    _, psi = diff_and_psi(np.arange(n))
    boot = [diff_and_psi(rng.integers(0, n, n))[0] for _ in range(400)]
    assert influence_se(psi) == pytest.approx(np.std(boot, ddof=1), rel=0.15)


def test_wald_interval_plain_and_logit():
    low, high = wald_interval(0.5, 0.1)
    half = 1.959963984540054 * 0.1
    assert (low, high) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    low, high = wald_interval(0.8, 0.05, level=0.9, transform="logit")
    z, centre = 1.6448536269514722, np.log(0.8 / 0.2)
    half = z * 0.05 / (0.8 * 0.2)
    assert low == pytest.approx(1 / (1 + np.exp(-(centre - half))))
    assert high == pytest.approx(1 / (1 + np.exp(-(centre + half))))
    low, high = wald_interval(0.99, 0.02, transform="logit")
    assert 0 < low < 0.99 < high < 1  # plain Wald would pass 1


def test_wald_interval_boundary_is_nan_without_warning():
    low, high = wald_interval(np.array([0.0, 1.0, 0.5]), 0.1, transform="logit")
    assert np.isnan(low[:2]).all() and np.isnan(high[:2]).all()
    assert np.isfinite(low[2])
    with pytest.raises(ValueError, match=r"estimates in \[0, 1\]"):
        wald_interval(1.2, 0.1, transform="logit")
    with pytest.raises(ValueError, match="transform must be None or 'logit'"):
        wald_interval(0.5, 0.1, transform="log")
    with pytest.raises(ValueError, match="non-negative"):
        wald_interval(0.5, -0.1)


def test_wald_p_value():
    assert wald_p_value(1.959963984540054, 1.0) == pytest.approx(0.05)
    assert wald_p_value(-0.3, 0.1) == pytest.approx(0.0026997960632601)
    assert wald_p_value(0.0, 1.0) == 1.0
    assert wald_p_value(0.1, 0.0) == 0.0
    assert np.isnan(wald_p_value(0.0, 0.0))
    assert np.isnan(wald_p_value(0.1, np.nan))
    np.testing.assert_allclose(wald_p_value([0.0, 1.959963984540054], 1.0), [1.0, 0.05])


def test_mover_interval_by_hand_and_its_test_agrees():
    from scipy import special, stats as st

    from audit.stats import mover_interval, mover_p_value

    a, sa, b, sb = 0.95, 0.03, 0.70, 0.06
    sd = np.hypot(sa, sb)  # independent samples: r = 0
    z = st.norm.ppf(0.975)

    def logit_ci(x, s):
        half = z * s / (x * (1 - x))
        return special.expit(special.logit(x) - half), special.expit(special.logit(x) + half)

    (la, ua), (lb, ub) = logit_ci(a, sa), logit_ci(b, sb)
    low, high = mover_interval(a, sa, b, sb, sd)
    assert low == pytest.approx(a - b - np.hypot(a - la, ub - b), abs=1e-12)
    assert high == pytest.approx(a - b + np.hypot(ua - a, b - lb), abs=1e-12)
    # Asymmetric, as the logit-scale intervals are; a raw Wald interval is symmetric.
    assert abs((high - (a - b)) - ((a - b) - low)) > 0.005
    # The test inverts the interval: p = 0.05 exactly where the 95% interval touches 0.
    for b2 in (0.70, 0.85, 0.90, 0.93):
        lo2, _ = mover_interval(a, sa, b2, sb, np.hypot(sa, sb))
        p = mover_p_value(a, sa, b2, sb, np.hypot(sa, sb))
        assert (p < 0.05) == (lo2 > 0)
        lo_at_p, _ = mover_interval(a, sa, b2, sb, np.hypot(sa, sb), level=1 - p)
        assert lo_at_p == pytest.approx(0.0, abs=1e-6)
    # Perfectly correlated (se of the difference 0): the arms subtract, r = 1 in the formula.
    (l8, u8) = logit_ci(0.8, 0.05)
    assert mover_interval(0.8, 0.05, 0.8, 0.05, 0.0) == pytest.approx((-abs((0.8 - l8) - (u8 - 0.8)),
                                                                       abs((u8 - 0.8) - (0.8 - l8))), abs=1e-12)
