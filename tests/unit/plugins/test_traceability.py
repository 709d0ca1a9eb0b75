"""The traceability plugin against independent references (scipy for the drift statistics,
sklearn for AUROC, pandas for window counts), a simulated step change over time, and the bad
inputs of the issue (types that differ, a feature in one file only, a time column that does
not parse, empty windows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from sklearn.metrics import roc_auc_score

from audit.core.config import build_config
from audit.core.results import Status
from audit.core.runner import run_audit
from audit.errors import InputError
from audit.plugins.traceability import TraceabilityPlugin

AVAILABLE = {"traceability": TraceabilityPlugin}


def cohort(rng, n, *, age_shift=0.0, separation=1.6, start="2021-01-01", days=365, ward_p=(0.5, 0.3, 0.2)):
    y = rng.binomial(1, 0.3, n)
    logit = -0.8 + separation * (y - 0.3) + rng.normal(0, 1, n)
    return pd.DataFrame({
        "y": y, "p": special.expit(logit).round(6),
        "age": rng.normal(50 + age_shift, 10, n).round(1),
        "ward": rng.choice(["A", "B", "C"], n, p=list(ward_p)),
        "date": (pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days, n), unit="D")).strftime("%Y-%m-%d"),
    })


def audit(tmp_path, data, reference=None, traceability=None, **cfg):
    data.to_csv(tmp_path / "d.csv", index=False)
    raw = {"data": {"path": "d.csv", "label": "y", "score": "p", **cfg},
           "traceability": {k: v for k, v in {"threshold": 0.4, **(traceability or {})}.items() if v is not None},
           "report": {"min_cell": 10}}
    if reference is not None:
        reference.to_csv(tmp_path / "r.csv", index=False)
        raw["data"]["reference"] = "r.csv"
    config = build_config(raw, base_dir=tmp_path, plugin_names=("traceability",))
    return run_audit(config, available=AVAILABLE, cwd=tmp_path).plugin("traceability")


def records(result, mid):
    return [m for m in result.metrics if m.id == mid]


def test_skipped_without_reference_or_time(tmp_path):
    r = audit(tmp_path, cohort(np.random.default_rng(0), 200))
    assert r.status == Status.SKIPPED and "no reference data" in r.summary


def test_feature_drift_equals_scipy_and_performance_change_equals_sklearn(tmp_path):
    rng = np.random.default_rng(1)
    ref, cur = cohort(rng, 800), cohort(rng, 900, age_shift=5.0, ward_p=(0.3, 0.3, 0.4), separation=1.0)
    r = audit(tmp_path, cur, ref, features=["age", "ward"])
    [ks] = [m for m in records(r, "ks") if m.feature == "age"]
    want = stats.ks_2samp(ref.age, cur.age)
    assert ks.value == pytest.approx(want.statistic, abs=1e-12) and ks.p_value == pytest.approx(want.pvalue, rel=1e-9)
    [w] = [m for m in records(r, "wasserstein") if m.feature == "age"]
    assert w.value == pytest.approx(stats.wasserstein_distance(ref.age, cur.age), abs=1e-9)
    [chi] = [m for m in records(r, "chi2") if m.feature == "ward"]
    table = pd.crosstab(np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref.ward, cur.ward])
    assert chi.value == pytest.approx(stats.chi2_contingency(table, correction=False)[0], rel=1e-9)
    effects = {m.feature: m for m in records(r, "drift_effect")}
    assert "drift_large" in effects["age"].flags  # a shift of half a reference SD
    [auc] = records(r, "auroc_change")
    assert auc.value == pytest.approx(roc_auc_score(cur.y, cur.p) - roc_auc_score(ref.y, ref.p), abs=1e-12)
    assert auc.ci[0] < auc.value < auc.ci[1] and auc.ci[1] < 0  # weaker separation: a real loss
    [prev] = records(r, "prevalence_change")
    assert prev.value == pytest.approx(cur.y.mean() - ref.y.mean(), abs=1e-12)
    [sens] = records(r, "sensitivity_change")
    s = lambda d: ((d.p >= 0.4) & (d.y == 1)).sum() / d.y.sum()  # noqa: E731
    assert sens.value == pytest.approx(s(cur) - s(ref), abs=1e-12)
    finding = {f.id: f for f in r.findings}
    assert finding["performance_change"].status == Status.WARN and "sensitivity fell" in finding["performance_change"].message
    assert "age" in finding["feature_drift"].message


def test_windows_count_like_pandas_and_show_empty_and_small_windows(tmp_path):
    rng = np.random.default_rng(2)
    cur = cohort(rng, 1200, days=240)
    # Nothing in month 5 (May), five tests in month 7 (July): empty and small.
    month = pd.to_datetime(cur.date).dt.month
    cur = cur[month != 5]
    july = cur[pd.to_datetime(cur.date).dt.month == 7]
    cur = pd.concat([cur[pd.to_datetime(cur.date).dt.month != 7], july.head(5)], ignore_index=True)
    r = audit(tmp_path, cur, time="date", traceability={"window": "month"})
    n = {m.group["window"]: m for m in records(r, "n")}
    want = pd.to_datetime(cur.date).dt.to_period("M").astype(str).value_counts()
    shown = [label for label in want.index if not n[label].suppressed]
    assert len(shown) >= 5 and all(n[label].value == want[label] for label in shown)
    # July (5 tests) is hidden, and so is one complement: else July = total - the other months.
    assert n["2021-07"].suppressed and sum(m.suppressed for m in n.values()) >= 2
    assert n["2021-05"].value == 0
    aucs = {m.group["window"]: m for m in records(r, "auroc")}
    jan = cur[pd.to_datetime(cur.date).dt.month == 1]
    assert aucs["2021-01"].value == pytest.approx(roc_auc_score(jan.y, jan.p), abs=1e-12)
    assert list(n) == [f"2021-{k:02d}" for k in range(1, 9)]  # time order, empty month included
    means = {m.group["window"]: m for m in records(r, "score_mean")}
    assert means["2021-01"].value == pytest.approx(jan.p.mean(), abs=1e-12)
    assert means["2021-01"].ci[0] < jan.p.mean() < means["2021-01"].ci[1]
    # No reference and no fixed threshold here: the threshold came from the audited data, said.
    r2 = audit(tmp_path, cur, time="date", traceability={"window": "month", "threshold": None})
    assert any("chosen on the audited data itself" in w for w in r2.warnings)


def test_a_step_change_is_found_at_its_window_and_a_flat_series_raises_none(tmp_path):
    rng = np.random.default_rng(3)
    parts = []
    for k in range(12):
        part = cohort(rng, 500, separation=1.8 if k < 8 else 0.6, start=f"2021-{k + 1:02d}-01", days=28)
        parts.append(part)
    stepped = audit(tmp_path, pd.concat(parts, ignore_index=True), time="date", traceability={"window": "month"})
    [shift] = records(stepped, "auroc_shift")
    assert shift.group == {"window": "2021-09"} and shift.value < -0.1
    assert {f.id: f for f in stepped.findings}["change_over_time"].status == Status.WARN
    flat = [cohort(rng, 500, start=f"2021-{k + 1:02d}-01", days=28) for k in range(12)]
    steady = audit(tmp_path, pd.concat(flat, ignore_index=True), time="date", traceability={"window": "month"})
    assert all(m.value is None for m in steady.metrics if m.id.endswith("_shift"))
    assert {f.id: f for f in steady.findings}["change_over_time"].status == Status.PASS


def test_numeric_time_and_row_windows(tmp_path):
    rng = np.random.default_rng(4)
    cur = cohort(rng, 600).assign(day=lambda d: rng.integers(0, 70, len(d)))
    r = audit(tmp_path, cur, time="day", traceability={"window": "7"})
    labels = [m.group["window"] for m in records(r, "n")]
    assert labels[0] == "0–7" and len(labels) == 10
    r = audit(tmp_path, cur, time="day", traceability={"window": "100 rows"})
    assert [m.value for m in records(r, "n")] == [100.0] * 6


def test_bad_inputs_name_the_column_and_an_example(tmp_path):
    rng = np.random.default_rng(5)
    cur = cohort(rng, 300)
    cur.loc[7, "date"] = "last tuesday"
    with pytest.raises(InputError, match="'date'.*'last tuesday'"):
        audit(tmp_path, cur, time="date", traceability={"window": "month"})
    with pytest.raises(InputError, match="numeric"):
        audit(tmp_path, cohort(rng, 300).assign(day=3), time="day", traceability={"window": "week"})
    ref = cohort(rng, 300).assign(age=lambda d: d.age.astype(str) + " y")
    with pytest.raises(InputError, match="age"):
        audit(tmp_path, cohort(rng, 300), ref, features=["age"])


def test_a_gate_on_drift_checks_each_feature_and_names_it(tmp_path):
    from audit.report import render_junit, render_markdown

    rng = np.random.default_rng(6)
    ref, cur = cohort(rng, 800), cohort(rng, 800, age_shift=5.0)
    cur.to_csv(tmp_path / "d.csv", index=False)
    ref.to_csv(tmp_path / "r.csv", index=False)
    raw = {"data": {"path": "d.csv", "reference": "r.csv", "label": "y", "score": "p", "features": ["age", "ward"]},
           "traceability": {"threshold": 0.4}, "report": {"min_cell": 10},
           "gates": [{"metric": "traceability.drift_effect", "op": "<=", "threshold": 0.25}]}
    config = build_config(raw, base_dir=tmp_path, plugin_names=("traceability",))
    result = run_audit(config, available=AVAILABLE, cwd=tmp_path)
    [gate] = result.gates
    checks = {c.feature: c for c in gate.checks}
    assert set(checks) == {"age", "ward"}
    assert checks["age"].status == Status.FAIL and checks["ward"].status == Status.PASS
    assert "age" in render_markdown(result) and "age" in render_junit(result)


def test_distributions_of_drifting_features_are_published_small_cell_safe(tmp_path):
    rng = np.random.default_rng(5)
    ref, cur = cohort(rng, 600), cohort(rng, 500, age_shift=6.0, ward_p=(0.2, 0.2, 0.6))
    cur.loc[:3, "age"] = np.nan  # 4 missing ages: fewer than min_cell, never shown alone
    r = audit(tmp_path, cur, ref, features=["age", "ward"])
    dists = {d.feature: d for d in r.distributions}
    assert set(dists) == {"age", "ward"}
    ward = dists["ward"]
    want_ref = ref.ward.value_counts(normalize=True)
    want_cur = cur.ward.value_counts(normalize=True)
    for b, pr, pc in zip(ward.bins, ward.reference, ward.audited, strict=True):
        assert pr == pytest.approx(want_ref[b], abs=1e-12) and pc == pytest.approx(want_cur[b], abs=1e-12)
    age = dists["age"]
    assert "missing" not in age.bins and sum(b.endswith("or missing") for b in age.bins) == 1
    for shares, n in ((age.reference, len(ref)), (age.audited, len(cur))):
        counts = np.round(np.asarray(shares) * n)
        assert counts.sum() == n and all(k == 0 or k >= 10 for k in counts)
    # The largest audited share moved up: the audited ages are older.
    edges = np.asarray(age.edges)
    assert np.sum(np.asarray(age.audited)[-3:]) > np.sum(np.asarray(age.reference)[-3:]) and edges.size >= 3


def test_no_distributions_without_drift_or_when_switched_off(tmp_path):
    data = cohort(np.random.default_rng(6), 600)
    same = audit(tmp_path, data, data.copy(), features=["age", "ward"])
    assert not any(m.flags for m in records(same, "drift_effect")) and same.distributions == ()
    rng = np.random.default_rng(5)
    off = audit(tmp_path, cohort(rng, 600, age_shift=6.0), cohort(rng, 500), features=["age", "ward"],
                traceability={"plot_features": 0})
    assert off.distributions == ()
