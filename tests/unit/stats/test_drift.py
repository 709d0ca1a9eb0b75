"""Tests of audit.stats.drift against scipy, statsmodels, sklearn and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from audit.stats.drift import (
    PSI_EPSILON,
    DriftThresholds,
    FeatureDrift,
    domain_classifier,
    feature_drift,
    psi,
    score_drift,
)


def _one(ref, cur, **kw) -> FeatureDrift:
    return feature_drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), **kw)[0]


def _hist(ref, cur, bins):
    """Reference-quantile bins [e_(j-1), e_j), outer bins open, counted with np.digitize."""
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    k = edges.size + 1
    return (np.bincount(np.digitize(ref, edges), minlength=k),
            np.bincount(np.digitize(cur, edges), minlength=k))


# 1. Numeric features -------------------------------------------------------------------------

@pytest.mark.parametrize("n_ref, n_cur", [(300, 450), (15_000, 12_000)])
def test_ks_and_wasserstein_equal_scipy(n_ref, n_cur):
    # 15,000 rows take the sorted-array path with scipy's asymptotic p; rounding makes ties.
    rng = np.random.default_rng(1)
    ref = np.round(rng.normal(0, 1, n_ref), 2)
    cur = np.round(rng.normal(0.03, 1.1, n_cur), 2)
    res = _one(ref, cur)
    ks = stats.ks_2samp(ref, cur)
    assert res.test == "ks_2samp" and res.df is None and res.kind == "numeric"
    assert res.statistic == pytest.approx(ks.statistic, abs=1e-12)
    assert res.p_value == pytest.approx(ks.pvalue, abs=1e-9, rel=1e-9)
    assert res.wasserstein == pytest.approx(stats.wasserstein_distance(ref, cur), abs=1e-9)
    assert res.scale == pytest.approx(np.std(ref), abs=1e-12)
    assert res.effect == res.wasserstein_normalised == pytest.approx(res.wasserstein / np.std(ref))
    assert res.effect_name == "wasserstein_normalised"


def test_ks_p_value_equals_scipy_across_the_asymptotic_regimes():
    # D from no drift to strong drift crosses scipy's kstwo branches (Pelz-Good, smirnov, 0).
    rng = np.random.default_rng(2)
    ref = rng.normal(size=20_000)
    for shift in (0.0, 0.02, 0.05, 0.3):
        cur = rng.normal(shift, 1, 11_000)
        res, ks = _one(ref, cur), stats.ks_2samp(ref, cur)
        assert res.statistic == pytest.approx(ks.statistic, abs=1e-12)
        assert res.p_value == pytest.approx(ks.pvalue, abs=1e-9, rel=1e-9)


def test_numeric_js_and_psi_on_reference_quantile_bins():
    rng = np.random.default_rng(3)
    ref, cur = rng.gamma(2, 1, 5000), rng.gamma(2.4, 1, 4000)
    cur[:50] = 40.0  # beyond the reference range: counted in the top bin
    hr, hc = _hist(ref, cur, 10)
    res = _one(ref, cur)
    assert res.n_bins == 10
    assert res.jensen_shannon == pytest.approx(jensenshannon(hr, hc, base=2), abs=1e-12)
    pr, pc = np.maximum(hr / hr.sum(), PSI_EPSILON), np.maximum(hc / hc.sum(), PSI_EPSILON)
    assert res.psi == pytest.approx(np.sum((pc - pr) * np.log(pc / pr)), abs=1e-12)
    res4 = _one(ref, cur, bins=4)
    h4 = _hist(ref, cur, 4)
    assert res4.n_bins == 4 and res4.jensen_shannon == pytest.approx(
        jensenshannon(*h4, base=2), abs=1e-12)


def test_numeric_psi_hand_computed():
    # bins=2: one edge, the reference median 5.5. Reference 5 | 5, current 2 | 6, so
    # PSI = (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.25 ln 3.
    res = _one(np.arange(1.0, 11.0), np.array([1, 2, 6, 7, 8, 9, 10, 11.0]), bins=2)
    assert res.n_bins == 2
    assert res.psi == pytest.approx(0.25 * math.log(3), abs=1e-12)


def test_tied_quantiles_are_merged_into_fewer_bins():
    ref = np.r_[np.zeros(700), np.arange(1.0, 301.0)]  # 70% zeros: deciles 1-7 are all 0
    cur = np.r_[np.zeros(500), np.arange(1.0, 501.0)]
    res = _one(ref, cur)
    hr, hc = _hist(ref, cur, 10)
    # Edges 0 (deciles 1-6), 0.3, 100.2, 200.1: five bins, the first empty in the reference.
    assert res.n_bins == hr.size == 5 and hr[0] == 0
    assert res.jensen_shannon == pytest.approx(jensenshannon(hr, hc, base=2), abs=1e-12)


def test_constant_reference_is_scaled_by_the_pooled_sd():
    ref, cur = np.zeros(200), np.r_[np.zeros(150), np.ones(50)]
    res = _one(ref, cur)
    pooled = np.std(np.r_[ref, cur])
    assert res.scale == pytest.approx(pooled)
    assert res.effect == pytest.approx(stats.wasserstein_distance(ref, cur) / pooled)
    assert "pooled SD" in res.method
    same = _one(np.ones(50), np.ones(60))
    assert same.effect == 0.0 and same.status == "none" and same.p_value == 1.0


def test_score_drift_is_the_numeric_case_on_scores():
    rng = np.random.default_rng(4)
    a, b = rng.beta(2, 5, 800), rng.beta(2.5, 5, 900)
    res = score_drift(a, b)
    assert res.feature == "score" and res.p_adjusted == res.p_value
    assert res == _one(a, b).__class__(**{**_one(a, b).__dict__, "feature": "score"})
    with pytest.raises(ValueError, match="1-D"):
        score_drift(a.reshape(-1, 2), b)


# 2. Categorical features ---------------------------------------------------------------------

def _cat_frames():
    ref = pd.DataFrame({"site": ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + ["old"] * 7})
    cur = pd.DataFrame({"site": ["a"] * 40 + ["b"] * 30 + ["c"] * 20 + ["new"] * 10})
    return ref, cur


def test_chi_square_with_categories_in_one_sample_only_equals_scipy():
    ref, cur = _cat_frames()
    res = feature_drift(ref, cur)[0]
    table = np.array([[50, 30, 20, 7, 0], [40, 30, 20, 0, 10]])
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    assert res.kind == "categorical" and res.test == "chi2_homogeneity"
    assert res.statistic == pytest.approx(chi2, abs=1e-9)
    assert res.p_value == pytest.approx(p, abs=1e-9)
    assert res.df == dof == 4 and res.n_bins == 5
    assert res.effect_name == "jensen_shannon"
    assert res.effect == res.jensen_shannon == pytest.approx(
        jensenshannon(table[0], table[1], base=2), abs=1e-12)
    assert res.new_categories == ("new",) and res.lost_categories == ("old",)
    assert res.wasserstein is None and res.scale is None


def test_categorical_psi_hand_computed():
    # Proportions a .5/.4, b .3/.3, c .2/.2, d 0 (-> 1e-4)/.1:
    # PSI = (.4 - .5) ln(.4 / .5) + (.1 - 1e-4) ln(.1 / 1e-4).
    ref = pd.DataFrame({"v": ["a"] * 50 + ["b"] * 30 + ["c"] * 20})
    cur = pd.DataFrame({"v": ["a"] * 40 + ["b"] * 30 + ["c"] * 20 + ["d"] * 10})
    expected = -0.1 * math.log(0.8) + (0.1 - 1e-4) * math.log(1000)
    assert feature_drift(ref, cur)[0].psi == pytest.approx(expected, abs=1e-12)
    assert psi([50, 30, 20, 0], [40, 30, 20, 10]) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="positive total"):
        psi([0, 0], [1, 2])


def test_pandas_categorical_unused_categories_are_dropped():
    ref, cur = _cat_frames()
    cats = ["a", "b", "c", "old", "new", "never"]
    as_cat = feature_drift(ref.astype(pd.CategoricalDtype(cats)),
                           cur.astype(pd.CategoricalDtype(cats)))[0]
    plain = feature_drift(ref, cur)[0]
    assert as_cat.n_bins == 5 and as_cat.df == 4
    for name in ("statistic", "p_value", "jensen_shannon", "psi"):
        assert getattr(as_cat, name) == pytest.approx(getattr(plain, name), abs=1e-12)


def test_numeric_codes_listed_as_categorical_are_compared_as_categories():
    ref = pd.DataFrame({"scanner": [1, 2, 3] * 40})
    cur = pd.DataFrame({"scanner": [1.0, 2.0, 2.0, np.nan] * 30})  # int vs float with NaN
    res = feature_drift(ref, cur, categorical=["scanner"])[0]
    table = np.array([[40, 40, 40], [30, 60, 0]])
    assert res.kind == "categorical"
    assert res.statistic == pytest.approx(stats.chi2_contingency(table, correction=False)[0])
    assert res.lost_categories == ("3.0",) and res.missing_current == pytest.approx(0.25)


def test_bool_features_are_categorical():
    rng = np.random.default_rng(5)
    res = _one(rng.random(300) < 0.3, rng.random(300) < 0.5)
    assert res.kind == "categorical" and res.df == 1


# 3. Missing values, corrections, statuses ----------------------------------------------------

def test_missing_shares_and_their_two_proportion_test():
    rng = np.random.default_rng(6)
    ref, cur = rng.normal(size=1000), rng.normal(size=800)
    ref[:30], cur[:64] = np.nan, np.nan
    res = _one(ref, cur)
    assert (res.n_reference, res.n_current) == (970, 736)
    assert res.missing_reference == pytest.approx(0.03)
    assert res.missing_current == pytest.approx(0.08)
    assert res.missing_difference == pytest.approx(0.05)
    z_p = proportions_ztest([30, 64], [1000, 800])[1]
    chi_p = stats.chi2_contingency([[30, 970], [64, 736]], correction=False)[1]
    assert res.missing_p_value == pytest.approx(z_p, abs=1e-12)
    assert res.missing_p_value == pytest.approx(chi_p, abs=1e-12)
    ks = stats.ks_2samp(ref[~np.isnan(ref)], cur[~np.isnan(cur)])
    assert res.p_value == pytest.approx(ks.pvalue, abs=1e-12)
    assert _one(rng.normal(size=50), rng.normal(size=50)).missing_p_value == 1.0


@pytest.mark.parametrize("correction, sm_method", [("holm", "holm"), ("bh", "fdr_bh")])
def test_p_values_are_adjusted_across_features_with_multipletests(correction, sm_method):
    rng = np.random.default_rng(7)
    n = 400
    ref = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(6)})
    cur = pd.DataFrame({f"x{j}": rng.normal(0.04 * j, 1, n) for j in range(6)})
    ref["c"], cur["c"] = rng.choice(list("ab"), n), rng.choice(list("abb"), n)
    ref.loc[:20, "x1"] = np.nan
    res = feature_drift(ref, cur, correction=correction)
    raw = np.array([r.p_value for r in res])
    assert np.allclose([r.p_adjusted for r in res], multipletests(raw, method=sm_method)[1],
                       atol=1e-15)
    miss = np.array([r.missing_p_value for r in res])
    assert np.allclose([r.missing_p_adjusted for r in res],
                       multipletests(miss, method=sm_method)[1], atol=1e-15)
    assert [r.feature for r in res] == list(ref.columns)
    assert f"{correction}-adjusted over 7 features" in res[0].method


def test_status_follows_the_effect_not_the_p_value():
    rng = np.random.default_rng(8)
    n = 200_000  # a 0.03 SD shift: every test rejects, yet the effect is negligible
    big = _one(rng.normal(size=n), rng.normal(0.03, 1, n))
    assert big.p_adjusted < 1e-6 and big.effect < 0.1 and big.status == "none"
    large = _one(rng.normal(size=2000), rng.normal(0.5, 1, 2000))
    assert large.status == "large" and "large" in large.reason
    moderate = _one(rng.normal(size=5000), rng.normal(0.15, 1, 5000))
    assert moderate.status == "moderate"
    # 12 rows each: an effect beyond the threshold that the test cannot confirm.
    small = _one(np.array([0.1, -0.4, 1.2, 0.3, -1.1, 0.8, -0.2, 0.5, -0.7, 1.5, 0.0, -0.9]),
                 np.array([0.5, 0.1, 1.6, 0.9, -0.6, 1.0, 0.2, 0.8, -0.3, 1.9, 0.3, -0.4]))
    assert small.effect >= 0.25 and small.p_adjusted > 0.05 and small.status == "inconclusive"


def test_missing_share_alone_can_set_the_status():
    rng = np.random.default_rng(9)
    ref, cur = rng.normal(size=4000), rng.normal(size=4000)
    cur[:800] = np.nan  # 20% missing in the current sample only
    res = _one(ref, cur)
    assert res.effect < 0.1 and res.status == "large" and "missing share change +0.2" in res.reason
    strict = _one(ref, cur, thresholds=DriftThresholds(missing_moderate=0.3, missing_large=0.4))
    assert strict.status == "none"


def test_thresholds_are_validated():
    assert DriftThresholds().numeric_moderate == 0.1
    with pytest.raises(ValueError, match="numeric_moderate <= numeric_large"):
        DriftThresholds(numeric_moderate=0.5, numeric_large=0.2)
    with pytest.raises(ValueError, match="alpha"):
        DriftThresholds(alpha=0.0)


# 4. Bad input --------------------------------------------------------------------------------

def test_type_mismatch_names_the_feature_both_dtypes_and_a_fix():
    ref = pd.DataFrame({"age": [30.0, 41.0, 52.0]})
    cur = pd.DataFrame({"age": pd.Series(["30", "unknown", "52"], dtype=object)})
    with pytest.raises(ValueError, match=r"'age' is numeric \(dtype float64\) in the reference "
                                         r"sample but categorical \(dtype object\) in the "
                                         r"current sample.*pd.to_numeric"):
        feature_drift(ref, cur)


def test_feature_in_one_sample_only():
    ref = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0]})
    with pytest.raises(ValueError, match="'b' is missing from the current sample but present "
                                         "in the reference"):
        feature_drift(ref, ref[["a"]])
    with pytest.raises(ValueError, match=r"\['b'\] are in the current sample but not in the "
                                         "reference"):
        feature_drift(ref[["a"]], ref)
    with pytest.raises(ValueError, match="'z' is missing from the reference and current"):
        feature_drift(ref, ref, ["z"])


def test_feature_without_values_in_one_sample():
    ref = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    cur = pd.DataFrame({"a": [np.nan, np.nan]})
    with pytest.raises(ValueError, match=r"'a' has no non-missing values in the current sample "
                                         r"\(2 rows, dtype float64\)"):
        feature_drift(ref, cur)
    with pytest.raises(ValueError, match="no non-missing values in the reference sample"):
        feature_drift(ref.iloc[:0], ref)


def test_other_bad_input():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "t": pd.to_datetime(["2024-01-01"] * 3)})
    with pytest.raises(ValueError, match="'t' has dtype datetime64.*neither numeric nor"):
        feature_drift(df, df)
    with pytest.raises(ValueError, match="infinite values in the current sample"):
        feature_drift(df[["a"]], pd.DataFrame({"a": [1.0, np.inf]}))
    with pytest.raises(ValueError, match="bins must be an integer >= 2"):
        feature_drift(df, df, ["a"], bins=1)
    with pytest.raises(ValueError, match="correction must be 'holm' or 'bh'"):
        feature_drift(df, df, ["a"], correction="bonferroni")
    with pytest.raises(ValueError, match="categorical names"):
        feature_drift(df, df, ["a"], categorical=["b"])
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        feature_drift(df["a"], df)


# 5. Domain classifier ------------------------------------------------------------------------

def _tabular(rng, n, shift=0.0):
    return pd.DataFrame({
        "age": rng.normal(60 + 8 * shift, 8, n), "bmi": rng.normal(27, 4, n),
        "sex": rng.choice(["F", "M"], n),
        "site": pd.Categorical(rng.choice(["s1", "s2", "s3"], n), ["s1", "s2", "s3"]),
    })


def test_domain_classifier_is_near_half_on_one_distribution():
    rng = np.random.default_rng(11)
    res = domain_classifier(_tabular(rng, 500), _tabular(rng, 500), random_state=1)
    assert abs(res.auroc - 0.5) < 0.07 and res.low < 0.5 < res.high
    assert res.status == "none" and (res.n_reference, res.n_current) == (500, 500)
    assert len(res.top_features) == 4 and "StratifiedKFold" in res.method


def test_domain_classifier_finds_a_shifted_feature():
    rng = np.random.default_rng(12)
    res = domain_classifier(_tabular(rng, 500), _tabular(rng, 500, shift=2.0), random_state=2)
    assert res.auroc > 0.8 and res.low > 0.5 and res.status == "large"
    assert res.top_features[0][0] == "age" and res.top_features[0][1] > 0.1


def test_domain_classifier_on_embeddings_with_patient_groups():
    rng = np.random.default_rng(13)
    d = 8
    ref, cur = rng.normal(size=(400, d)), rng.normal(size=(300, d))
    cur[:, 5] += 3.0
    groups = (np.repeat(np.arange(200), 2), np.repeat(np.arange(1000, 1150), 2))
    res = domain_classifier(ref, cur, groups=groups, n_top=3, random_state=3)
    assert res.auroc > 0.95 and res.top_features[0][0] == "x5" and len(res.top_features) == 3
    assert "StratifiedGroupKFold" in res.method and "350 patients" in res.method
    same = domain_classifier(ref, rng.normal(size=(300, d)), groups=groups, n_repeats=0, random_state=3)
    assert abs(same.auroc - 0.5) < 0.07 and same.low < 0.5 < same.high
    assert same.status == "none" and same.top_features == ()


def test_domain_classifier_subsamples_and_validates():
    rng = np.random.default_rng(14)
    a, b = rng.normal(size=(300, 2)), rng.normal(size=(250, 2))
    res = domain_classifier(a, b, max_rows=100, n_repeats=0)
    assert (res.n_reference, res.n_current) == (100, 100)
    with pytest.raises(ValueError, match="same number of columns"):
        domain_classifier(a, b[:, :1])
    with pytest.raises(ValueError, match="both be DataFrames or both arrays"):
        domain_classifier(pd.DataFrame(a), b)
    with pytest.raises(ValueError, match="groups must be a pair"):
        domain_classifier(a, b, groups=np.arange(550))
    with pytest.raises(ValueError, match="fewer than folds=5"):
        domain_classifier(a, b, groups=(np.zeros(300), np.ones(250)), folds=5)
    with pytest.raises(ValueError, match="'age' is numeric"):
        domain_classifier(pd.DataFrame({"age": [1.0] * 10}),
                          pd.DataFrame({"age": ["x"] * 10}))


@pytest.mark.slow
@pytest.mark.parametrize("n", [40, 300])
def test_domain_classifier_interval_covers_one_half_without_drift(n):
    # The hard end: no drift, small samples (40 + 40 rows: 20 per held-out fold and class),
    # where a bootstrap of pooled out-of-fold scores with the models held fixed covered 0.5
    # in 84% at 300 + 300. The fold-wise DeLong bound must cover at least 95% up to
    # Monte Carlo error (150 replicates: s.e. about 1.8 points).
    rng = np.random.default_rng(40 + n)
    reps, covered = 150, 0
    for r in range(reps):
        res = domain_classifier(rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), n_repeats=0,
                                random_state=r)
        covered += res.low <= 0.5 <= res.high
    print(f"\n{n} + {n} rows without drift: interval covered 0.5 in {covered / reps:.3f}")
    assert covered / reps >= 0.93
