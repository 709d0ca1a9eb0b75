"""Tabular perturbations: seeding, severity monotonicity, dtypes, and reference values."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audit.errors import ConfigError, InputError
from audit.robustness import TABULAR_PERTURBATIONS, get_tabular_perturbations

NAMES = list(TABULAR_PERTURBATIONS)
NUMERIC = ["age", "crp", "score", "count"]


@pytest.fixture
def features():
    rng = np.random.default_rng(3)
    n = 2000
    return pd.DataFrame({
        "age": rng.integers(18, 95, n),                              # int64
        "crp": rng.lognormal(2.0, 1.0, n),                           # skewed float64
        "score": rng.normal(0, 1, n).astype("float32"),
        "count": pd.array(rng.integers(0, 20, n), dtype="Int64"),    # nullable integer
        "sex": rng.choice(["F", "M"], n),                            # pandas string
        "site": pd.Categorical(rng.choice(["A", "B", "C"], n)),
        "smoker": rng.random(n) < 0.3,                               # bool
        "note": pd.Series(rng.choice(["x", "y"], n), dtype=object),
    })


def _mean_abs_change(before, after, columns=NUMERIC):
    return float(np.mean([np.nanmean(np.abs(after[c].to_numpy(float, na_value=np.nan)
                                            - before[c].to_numpy(float, na_value=np.nan)))
                          for c in columns]))


def test_registry_and_lookup():
    assert set(NAMES) == {"gaussian_noise", "missing", "unit_shift", "rounding"}
    for name, p in TABULAR_PERTURBATIONS.items():
        assert p.name == name and len(p.severities) == 5
        assert p.description and "{" not in p.description
    assert [p.name for p in get_tabular_perturbations(["rounding", "missing", "rounding"])] == [
        "rounding", "missing"]
    assert len(get_tabular_perturbations(None)) == 4


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError, match=r"'jitter'.*Valid names: gaussian_noise, missing, "
                                          r"rounding, unit_shift"):
        get_tabular_perturbations(["jitter"])


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_and_input_untouched(name, features):
    p = TABULAR_PERTURBATIONS[name]
    before = features.copy()
    out = p.apply(features, 3, seed=4)
    pd.testing.assert_frame_equal(features, before)
    pd.testing.assert_frame_equal(out, p.apply(features, 3, seed=4))
    assert list(out.columns) == list(features.columns)
    assert out.index.equals(features.index)


@pytest.mark.parametrize("name", ["gaussian_noise", "missing"])
def test_a_different_seed_gives_a_different_output(name, features):
    p = TABULAR_PERTURBATIONS[name]
    assert not p.apply(features, 3, seed=1).equals(p.apply(features, 3, seed=2))


@pytest.mark.parametrize("name", ["unit_shift", "rounding"])
def test_deterministic_ones_ignore_the_seed(name, features):
    p = TABULAR_PERTURBATIONS[name]
    pd.testing.assert_frame_equal(p.apply(features, 3, seed=1), p.apply(features, 3, seed=2))


@pytest.mark.parametrize("name", ["gaussian_noise", "unit_shift", "rounding"])
def test_mean_absolute_change_grows_strictly_with_severity(name, features):
    p = TABULAR_PERTURBATIONS[name]
    changes = [_mean_abs_change(features, p.apply(features, s, seed=0)) for s in range(1, 6)]
    assert all(0 < a < b for a, b in itertools.pairwise(changes)), changes


def test_missing_share_is_exact_and_nested_across_severities(features):
    p = TABULAR_PERTURBATIONS["missing"]
    n = len(features)
    previous = None
    for severity, share in zip(range(1, 6), p.severities):
        mask = p.apply(features, severity, seed=0).isna()
        assert (mask.sum() == round(share * n)).all()
        if previous is not None:
            assert (mask | ~previous).all().all()  # rows missing before are still missing
        previous = mask


def test_missing_markers_and_dtypes(features):
    out = TABULAR_PERTURBATIONS["missing"].apply(features, 5, seed=0)
    assert out["age"].dtype == np.float64 and np.isnan(out["age"]).sum() == 1000
    assert out["count"].dtype == "Float64"
    assert out["site"].dtype == features["site"].dtype  # categories kept
    assert out["note"].dtype == object and out["note"].isna().sum() == 1000
    assert all(v is None for v in out["note"][out["note"].isna()])
    assert out["sex"].isna().sum() == 1000


@pytest.mark.parametrize("name", ["gaussian_noise", "unit_shift", "rounding"])
def test_numeric_ones_leave_other_columns_alone_and_cast_integers(name, features):
    out = TABULAR_PERTURBATIONS[name].apply(features, 4, seed=0)
    for column in ("sex", "site", "smoker", "note"):
        pd.testing.assert_series_equal(out[column], features[column])
    assert out["age"].dtype == np.float64
    assert out["count"].dtype == "Float64"
    assert out["score"].dtype == np.float32
    assert out["crp"].dtype == np.float64


@pytest.fixture
def wide():
    """Columns whose observed range lies far beyond the noise (outliers at both ends), so that
    keeping the noise within the range never clips it."""
    rng = np.random.default_rng(5)
    bulk = {"crp": rng.lognormal(2.0, 0.5, 2000), "age": rng.integers(40, 60, 2000).astype(float)}
    return pd.DataFrame({c: np.r_[x, x.min() - 1000, x.max() + 1000] for c, x in bulk.items()})


def test_gaussian_noise_sd_is_a_share_of_the_robust_spread(wide):
    out = TABULAR_PERTURBATIONS["gaussian_noise"].apply(wide, 5, seed=0)  # 0.5 spread
    for column in ("crp", "age"):
        x = wide[column].to_numpy(float)
        spread = stats.iqr(x, scale="normal")  # IQR / 1.349, independently computed (outliers ignored)
        noise = out[column].to_numpy() - x
        assert noise.std() == pytest.approx(0.5 * spread, rel=0.05)
        assert abs(noise.mean()) < 0.05 * spread


def test_noise_shares_draws_across_severities(wide):
    p = TABULAR_PERTURBATIONS["gaussian_noise"]
    d1 = p.apply(wide, 1, 7)["crp"] - wide["crp"]
    d5 = p.apply(wide, 5, 7)["crp"] - wide["crp"]
    np.testing.assert_allclose(d5, 10 * d1, rtol=1e-9, atol=1e-9)


def test_unit_shift_multiplies_exactly(features):
    out = TABULAR_PERTURBATIONS["unit_shift"].apply(features, 5, seed=0)
    np.testing.assert_allclose(out["crp"], features["crp"] * 1.5)
    np.testing.assert_allclose(out["age"], features["age"] * 1.5)


def test_rounding_gives_multiples_of_the_step(features):
    out = TABULAR_PERTURBATIONS["rounding"].apply(features, 3, seed=0)  # 0.25 spread
    x = features["crp"].to_numpy()
    step = 0.25 * stats.iqr(x, scale="normal")
    ratio = out["crp"].to_numpy() / step
    np.testing.assert_allclose(ratio, np.round(ratio), atol=1e-6)
    assert np.abs(out["crp"].to_numpy() - x).max() <= step / 2 + 1e-9


def test_spread_falls_back_to_sd_and_constant_columns_are_kept():
    # 90% of the values are 5 (IQR 0); the others span 0 to 10, far beyond the noise.
    frame = pd.DataFrame({"flag": [5.0] * 90 + list(np.linspace(0.0, 10.0, 10)), "const": [5.0] * 100})
    out = TABULAR_PERTURBATIONS["gaussian_noise"].apply(frame, 5, seed=0)
    noise = out["flag"] - frame["flag"]
    assert noise[:90].std() == pytest.approx(0.5 * frame["flag"].std(), rel=0.2)
    pd.testing.assert_series_equal(out["const"], frame["const"])


def test_column_selection_and_column_wise_seeding(features):
    p = TABULAR_PERTURBATIONS["gaussian_noise"]
    only = p.apply(features, 2, seed=0, columns=["crp"])
    for column in features.columns.drop("crp"):
        pd.testing.assert_series_equal(only[column], features[column])
    # A column's draw does not depend on which other columns are perturbed.
    pd.testing.assert_series_equal(only["crp"], p.apply(features, 2, seed=0)["crp"])
    assert p.apply(features, 2, 0, columns="crp").equals(only)


def test_nan_in_input_stays_nan():
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0, 5.0]})
    for p in TABULAR_PERTURBATIONS.values():
        assert np.isnan(p.apply(frame, 3, seed=0)["x"].iloc[1])


def test_bad_arguments(features):
    p = TABULAR_PERTURBATIONS["gaussian_noise"]
    with pytest.raises(InputError, match=r"Column\(s\) 'weight' to perturb with "
                                         r"'gaussian_noise' not found.*columns: age, crp"):
        p.apply(features, 1, 0, columns=["age", "weight"])
    with pytest.raises(ConfigError, match="Severity 6 for perturbation 'gaussian_noise' is "
                                          "not valid"):
        p.apply(features, 6, 0)
    with pytest.raises(ConfigError, match="non-negative integer; got -2"):
        p.apply(features, 1, -2)
    with pytest.raises(InputError, match="needs a pandas DataFrame; got ndarray"):
        p.apply(features.to_numpy(), 1, 0)
    twice = pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])
    with pytest.raises(InputError, match="'a' appear more than once"):
        p.apply(twice, 1, 0)


def test_gaussian_noise_stays_within_the_observed_range():
    # A turnaround time of 0.1 h with noise of half its spread would often go negative; a
    # model taking log1p of it would then fail on an impossible input, not on noise.
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"tat": rng.exponential(2.0, 500)})
    out = TABULAR_PERTURBATIONS["gaussian_noise"].apply(frame, 5, seed=1)
    assert out["tat"].min() >= frame["tat"].min() and out["tat"].max() <= frame["tat"].max()
    assert (out["tat"] != frame["tat"]).mean() > 0.9  # still noisy
