import numpy as np
import pytest

from audit.stats import (
    bootstrap_counts,
    bootstrap_p_value,
    defined_fraction,
    percentile_interval,
    rates_from_counts,
)


def _clustered_data(rng, n_patients=30):
    patient = np.repeat(np.arange(n_patients), rng.integers(1, 6, n_patients))
    group = rng.integers(0, 2, n_patients)[patient]
    cell = rng.choice(4, patient.size, p=[0.3, 0.15, 0.15, 0.4])
    return group * 4 + cell, patient


def test_shape_dtype_and_row_sums_without_clusters():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 8, 500)
    out = bootstrap_counts(codes, 10, n_boot=300, random_state=2)
    assert out.shape == (300, 10)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.sum(axis=1), 500)
    # Categories never observed are never drawn.
    np.testing.assert_array_equal(out[:, 8:], 0)


def test_replicates_with_clusters_sum_to_rows_of_drawn_clusters():
    rng = np.random.default_rng(3)
    codes, patient = _clustered_data(rng, 200)
    # A deterministic category per patient size makes each replicate's total
    # checkable: category = rows of the patient - 1, one row per category count.
    size = np.bincount(patient)[patient]
    out = bootstrap_counts(size - 1, 5, clusters=patient, n_boot=500, random_state=4)
    assert out.shape == (500, 5) and out.dtype == np.int64
    # Count of category k is (k + 1) * (patients of size k + 1 drawn).
    drawn_patients = out / np.arange(1, 6)
    np.testing.assert_array_equal(drawn_patients, np.round(drawn_patients))
    np.testing.assert_array_equal(drawn_patients.sum(axis=1), 200)
    out = bootstrap_counts(codes, 8, clusters=patient, n_boot=500, random_state=4)
    assert out.sum(axis=1).std() > 0  # totals vary with the patients drawn


def test_mean_over_replicates_matches_observed_counts():
    rng = np.random.default_rng(5)
    codes, patient = _clustered_data(rng, 400)
    observed = np.bincount(codes, minlength=8)
    for clusters in (None, patient):
        out = bootstrap_counts(codes, 8, clusters=clusters, n_boot=4000, random_state=6)
        # Tolerance: 5 Monte Carlo standard errors of each mean.
        se = out.std(axis=0) / np.sqrt(len(out))
        assert np.all(np.abs(out.mean(axis=0) - observed) <= 5 * se + 1e-9)


def _naive_cluster_bootstrap(codes, patient, n_boot, rng):
    ids = np.unique(patient)
    rows = [np.flatnonzero(patient == i) for i in ids]
    out = np.empty((n_boot, 8), dtype=np.int64)
    for b in range(n_boot):
        chosen = rng.choice(len(ids), size=len(ids), replace=True)
        out[b] = np.bincount(codes[np.concatenate([rows[c] for c in chosen])], minlength=8)
    return out


@pytest.mark.parametrize("chunk", [None, 7])
def test_cluster_bootstrap_matches_naive_resampling(chunk):
    rng = np.random.default_rng(7)
    codes, patient = _clustered_data(rng, 40)
    n_boot = 2000
    fast = bootstrap_counts(codes, 8, clusters=patient, n_boot=n_boot, random_state=8, chunk=chunk)
    naive = _naive_cluster_bootstrap(codes, patient, n_boot, np.random.default_rng(9))

    # Exact moments of the cluster bootstrap: count_k = sum_c M_c a_ck with
    # M ~ Multinomial(C, 1/C), so E = sum_c a_ck, Var = sum_c a_ck^2 - (sum_c a_ck)^2 / C.
    per_patient = np.zeros((40, 8))
    np.add.at(per_patient, (patient, codes), 1)
    mean = per_patient.sum(0)
    var = (per_patient**2).sum(0) - mean**2 / 40
    for sample in (fast, naive):
        # Mean: 5 SE of a mean of 2000 draws. Variance: the sample variance of
        # 2000 draws has relative SE about sqrt(2 / 1999) = 3.2% (plus kurtosis),
        # so 20% is a wide but still discriminating band (a row bootstrap of
        # these data gives variances off by 30-60%).
        tolerance = 5 * np.sqrt(var / n_boot) + 1e-9
        np.testing.assert_array_less(np.abs(sample.mean(0) - mean), tolerance)
        np.testing.assert_allclose(sample.var(0), var, rtol=0.2)

    # The derived rate (group 1 FNR) agrees between fast and naive: the means
    # differ by < 5 SE of a difference of two independent means, variances by < 20%.
    fnr_fast = rates_from_counts(fast.reshape(-1, 2, 4))["fnr"][:, 1]
    fnr_naive = rates_from_counts(naive.reshape(-1, 2, 4))["fnr"][:, 1]
    se_diff = np.sqrt(np.nanvar(fnr_fast) / n_boot + np.nanvar(fnr_naive) / n_boot)
    assert abs(np.nanmean(fnr_fast) - np.nanmean(fnr_naive)) < 5 * se_diff
    assert np.nanvar(fnr_fast) == pytest.approx(np.nanvar(fnr_naive), rel=0.2)


def test_row_bootstrap_is_not_cluster_bootstrap():
    # Guard that the variance check above can fail: ignoring clusters changes it.
    rng = np.random.default_rng(10)
    codes, patient = _clustered_data(rng, 40)
    per_patient = np.zeros((40, 8))
    np.add.at(per_patient, (patient, codes), 1)
    var = (per_patient**2).sum(0) - per_patient.sum(0) ** 2 / 40
    rows = bootstrap_counts(codes, 8, n_boot=2000, random_state=11)
    assert not np.allclose(rows.var(0), var, rtol=0.2)


def test_frequent_and_rare_profiles_mix_correctly():
    # Many patients share few profiles (multinomial path) while others are
    # unique (per-patient draws); both paths must give the exact moments.
    rng = np.random.default_rng(12)
    common = np.repeat(np.arange(300), 2)  # 300 patients with two rows of category 0
    codes = np.concatenate([np.zeros(600, dtype=int), rng.integers(0, 6, 90)])
    patient = np.concatenate([common, 300 + np.repeat(np.arange(30), 3)])
    out = bootstrap_counts(codes, 6, clusters=patient, n_boot=4000, random_state=13)
    per_patient = np.zeros((330, 6))
    np.add.at(per_patient, (patient, codes), 1)
    mean = per_patient.sum(0)
    var = (per_patient**2).sum(0) - mean**2 / 330
    np.testing.assert_array_less(np.abs(out.mean(0) - mean), 5 * np.sqrt(var / 4000) + 1e-9)
    np.testing.assert_allclose(out.var(0), var, rtol=0.15)


def test_singleton_clusters_equal_row_bootstrap():
    codes = np.random.default_rng(14).integers(0, 4, 300)
    ids = np.arange(300)[::-1].astype(str)  # any labels, one per row
    np.testing.assert_array_equal(
        bootstrap_counts(codes, 4, clusters=ids, n_boot=50, random_state=15),
        bootstrap_counts(codes, 4, n_boot=50, random_state=15),
    )


def test_same_seed_same_output_and_generator_accepted():
    rng = np.random.default_rng(16)
    codes, patient = _clustered_data(rng, 100)
    for clusters in (None, patient):
        a = bootstrap_counts(codes, 8, clusters=clusters, n_boot=100, random_state=17)
        b = bootstrap_counts(codes, 8, clusters=clusters, n_boot=100, random_state=17)
        c = bootstrap_counts(codes, 8, clusters=clusters, n_boot=100, random_state=18)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
        g = bootstrap_counts(
            codes, 8, clusters=clusters, n_boot=100, random_state=np.random.default_rng(17)
        )
        np.testing.assert_array_equal(a, g)


@pytest.mark.parametrize(
    ("codes", "kwargs", "match"),
    [
        (np.array([0, 1, 4]), {}, r"codes must lie in \[0, 4\).*from 0 to 4"),
        (np.array([-1, 1]), {}, r"from -1 to 1"),
        (np.array([0.0, 1.0]), {}, "integer array"),
        (np.array([], dtype=int), {}, "empty"),
        (np.array([[0, 1]]), {}, "1-D"),
        (np.array([0, 1]), {"clusters": [1, 2, 3]}, "one label per row"),
        (np.array([0, 1]), {"n_boot": 0}, "n_boot must be a positive integer"),
        (np.array([0, 1]), {"chunk": -2}, "chunk must be a positive integer"),
        (np.array([0, 1]), {"random_state": 1.5}, "random_state must be"),
    ],
)
def test_bad_input_raises(codes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_counts(codes, 4, **kwargs)


def test_bad_n_categories_raises():
    with pytest.raises(ValueError, match="n_categories must be a positive integer"):
        bootstrap_counts(np.array([0]), 0)


def test_percentile_interval_matches_numpy_and_ignores_nan():
    rng = np.random.default_rng(19)
    s = rng.standard_normal((1000, 3))
    s[:300, 1] = np.nan  # 70% defined: still reported
    low, high = percentile_interval(s, level=0.9)
    for j in range(3):
        expected = np.nanpercentile(s[:, j], [5, 95]) if j == 1 else np.percentile(s[:, j], [5, 95])
        assert low[j] == pytest.approx(expected[0], abs=1e-12)
        assert high[j] == pytest.approx(expected[1], abs=1e-12)


def test_percentile_interval_axis_and_scalar_output():
    s = np.arange(101, dtype=float)
    low, high = percentile_interval(s)
    assert (low, high) == (pytest.approx(2.5), pytest.approx(97.5))
    assert np.ndim(low) == 0
    low2, high2 = percentile_interval(np.stack([s, s]), axis=1)
    np.testing.assert_allclose(low2, [2.5, 2.5])


def test_percentile_interval_nan_when_under_half_defined():
    s = np.ones((10, 3))
    s[:6, 0] = np.nan  # 40% defined
    s[:5, 1] = np.nan  # exactly 50%: kept
    s[:, 2] = np.nan  # none
    low, high = percentile_interval(s)
    assert np.isnan(low[0]) and np.isnan(high[0]) and np.isnan(low[2])
    assert low[1] == 1.0 and high[1] == 1.0
    np.testing.assert_allclose(defined_fraction(s), [0.4, 0.5, 0.0])
    with pytest.raises(ValueError, match="level must be in"):
        percentile_interval(s, level=95)


def test_bootstrap_p_value_hand_computed():
    # 3 of 9 replicates <= 0, 7 >= 0 (0 counts on both sides).
    d = np.array([-2, -1, 0, 1, 2, 3, 4, 5, 6], dtype=float)
    assert bootstrap_p_value(d) == pytest.approx(2 * (1 + 3) / 10)
    # All positive: never exactly 0.
    assert bootstrap_p_value(np.arange(1, 100.0)) == pytest.approx(2 / 100)
    # NaN replicates are dropped; all-zero differences give p = 1.
    assert bootstrap_p_value(np.array([np.nan, 1.0, 2.0, 3.0])) == pytest.approx(2 / 4)
    assert bootstrap_p_value(np.zeros(10)) == 1.0
    assert np.isnan(bootstrap_p_value(np.full(5, np.nan)))
    np.testing.assert_allclose(
        bootstrap_p_value(np.stack([d, -d], axis=1)), [0.8, 0.8]
    )


def test_cluster_index_integer_and_label_paths_agree():
    from audit.stats.clusters import cluster_index

    labels = np.array(["p3", "p1", "p3", "p9", "p1"])
    ints = np.array([30, 10, 30, 90, 10])          # sparse non-negative codes: bincount path
    idx_l, c_l = cluster_index(labels, labels.shape)
    idx_i, c_i = cluster_index(ints, ints.shape)
    assert c_l == c_i == 3
    assert idx_l.tolist() == idx_i.tolist() == [1, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="one label per row"):
        cluster_index(ints[:3], ints.shape)
