"""Small-cell-safe histograms: every count a published share implies is 0 or >= min_cell."""

import numpy as np
import pandas as pd
import pytest

from audit.stats.histogram import safe_histogram


def implied_counts(h, n_ref, n_cur):
    r = np.asarray(h.reference) * n_ref
    c = np.asarray(h.current) * n_cur
    # An attacker multiplies the shares by the published n: the counts come out as integers.
    np.testing.assert_allclose(r, np.round(r), atol=1e-9)
    np.testing.assert_allclose(c, np.round(c), atol=1e-9)
    return np.round(r).astype(int), np.round(c).astype(int)


def safe(counts, min_cell):
    return all(k == 0 or k >= min_cell for k in counts)


def test_hand_computed_numeric_case():
    # Reference: 20 rows at 1, 20 at 5; audited: 10 at 1, 30 at 5. Two bins split at 5.
    ref = pd.Series([1.0] * 20 + [5.0] * 20)
    cur = pd.Series([1.0] * 10 + [5.0] * 30)
    h = safe_histogram(ref, cur, kind="numeric", min_cell=10, max_bins=2)
    assert h.bins == ("< 5", ">= 5")
    assert h.reference == (0.5, 0.5)
    assert h.current == (0.25, 0.75)
    assert h.edges == (5.0,)


def test_small_bins_merge_until_every_count_passes():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n_r, n_c = rng.integers(20, 400, size=2)
        ref = pd.Series(rng.lognormal(0, 1, n_r))
        cur = pd.Series(rng.lognormal(rng.normal(0, 0.7), 1, n_c))
        cur[rng.random(n_c) < rng.uniform(0, 0.1)] = np.nan  # a few missing values: 0 to ~40
        min_cell = int(rng.integers(5, 12))
        h = safe_histogram(ref, cur, kind="numeric", min_cell=min_cell)
        if h is None:
            continue
        r, c = implied_counts(h, n_r, n_c)
        assert safe(r, min_cell) and safe(c, min_cell), (h, r, c)
        assert r.sum() == n_r and c.sum() == n_c  # every row is in a bin: nothing to subtract
        n_missing = int(cur.isna().sum())
        if 0 < n_missing < min_cell:
            assert "missing" not in h.bins and sum("or missing" in b for b in h.bins) == 1


def test_outer_bins_are_open_so_no_extreme_value_is_shown():
    ref = pd.Series(np.r_[np.linspace(20, 80, 200), 103.7])  # one patient of 103.7
    cur = pd.Series(np.r_[np.linspace(25, 85, 200), 17.2])
    h = safe_histogram(ref, cur, kind="numeric", min_cell=10)
    assert h.bins[0].startswith("< ") and h.bins[-1].startswith(">= ")
    text = " ".join(h.bins)
    assert "103.7" not in text and "17.2" not in text
    assert all(20 < e <= 85 for e in h.edges)


def test_missing_rows_get_a_bin_only_when_they_pass():
    ref = pd.Series([1.0] * 30 + [9.0] * 30 + [None] * 12)
    cur = pd.Series([1.0] * 30 + [9.0] * 30 + [None] * 15)
    h = safe_histogram(ref, cur, kind="numeric", min_cell=10, max_bins=2)
    assert h.bins == ("< 5", ">= 5", "missing")  # the pooled median, 5, splits them
    assert h.reference[-1] == pytest.approx(12 / 72)
    few = pd.Series([1.0] * 30 + [9.0] * 30 + [None] * 3)
    h = safe_histogram(ref, few, kind="numeric", min_cell=10, max_bins=2)
    assert "missing" not in h.bins and any(b.endswith("or missing") for b in h.bins)
    r, c = implied_counts(h, 72, 63)
    assert safe(r, 10) and safe(c, 10)


def test_categories_rare_ones_pooled_and_a_small_pool_joins_the_smallest():
    ref = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 12 + ["d"] * 4 + ["e"] * 3)
    cur = pd.Series(["a"] * 40 + ["b"] * 40 + ["c"] * 15 + ["d"] * 5 + ["e"] * 6)
    h = safe_histogram(ref, cur, kind="categorical", min_cell=10)
    # d and e pass neither alone (4, 3 / 5, 6) nor pooled in the reference (7): they join c.
    assert h.bins == ("a", "b", "c and 2 other categories")
    r, c = implied_counts(h, ref.size, cur.size)
    assert list(r) == [50, 30, 19] and list(c) == [40, 40, 26]


def test_new_category_with_zero_reference_rows_is_shown():
    ref = pd.Series(["CR"] * 100)
    cur = pd.Series(["CR"] * 70 + ["DX"] * 30)
    h = safe_histogram(ref, cur, kind="categorical", min_cell=10)
    assert h.bins == ("CR", "DX") and h.reference == (1.0, 0.0) and h.current == (0.7, 0.3)


def test_nothing_to_compare_gives_none():
    assert safe_histogram(pd.Series([1.0] * 50), pd.Series([1.0] * 50), kind="numeric", min_cell=10) is None
    assert safe_histogram(pd.Series([1.0] * 5), pd.Series([2.0] * 50), kind="numeric", min_cell=10) is None
    # Two categories, one of them small in a sample: pooled into one bin, nothing to draw.
    assert safe_histogram(pd.Series(["a"] * 50 + ["b"] * 3), pd.Series(["a"] * 50), kind="categorical",
                          min_cell=10) is None
