"""The calibration plugin: every number against statsmodels, sklearn, numpy or a hand
computation, the small-cell rule, the findings and the results.json contract."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import special
from scipy.stats import norm
from sklearn.metrics import brier_score_loss

from audit.core.config import build_config
from audit.core.results import WITHHELD_LABEL, AuditResult, Status
from audit.core.runner import run_audit
from audit.errors import ConfigError
from audit.plugins.base import make_params
from audit.plugins.calibration import CalibrationParams, CalibrationPlugin
from audit.schema import results_schema
from audit.testing import check_plugin

FAST = {"n_boot": 50}


def audit(frame, path, *, label="y", score="p", sensitive=(), site=None, id=None, calibration=None,
          report=None, gates=()):
    """Audit ``frame`` with the calibration plugin only (50 bootstrap replicates unless told)."""
    frame.to_csv(path, index=False)
    data = {"path": str(path), "label": label, "score": score, "sensitive": list(sensitive)}
    if site:
        data["site"] = site
    if id:
        data["id"] = id
    raw = {"data": data, "calibration": {**FAST, **(calibration or {})}, "report": report or {},
           "run": {"seed": 11}}
    cfg = build_config(raw, base_dir=Path(path).parent, plugin_names=("calibration",), flags={"gates": list(gates)})
    return run_audit(cfg, available={"calibration": CalibrationPlugin})


def only(result, metric_id, group=None, label=None):
    found = [m for m in result.plugin("calibration").metrics
             if m.id == metric_id and m.group == group and m.label == label]
    assert len(found) == 1, (metric_id, group, label, found)
    return found[0]


def curve(result, curve_id, group=None, label=None):
    found = [c for c in result.plugin("calibration").curves if c.id == curve_id and c.group == group
             and c.label == label]
    assert len(found) <= 1
    return found[0] if found else None


def simulate(n, seed=0, *, temperature=1.0, shift=0.0):
    """Scores from a known risk model: y ~ Bernoulli(expit(-1 + x)); the model reports
    expit(temperature * (-1 + x) + shift) (temperature 1, shift 0: calibrated)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    eta = -1 + x
    y = rng.binomial(1, special.expit(eta))
    p = special.expit(temperature * eta + shift)
    return pd.DataFrame({"y": y, "p": p, "sex": rng.choice(["F", "M"], n), "site": rng.choice(["A", "B", "C"], n)})


def ref_glm(y, p):
    x = special.logit(np.clip(p, 1e-6, 1 - 1e-6))
    return sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit()


def ref_ece(y, p, bins, strategy):
    """ECE written out: bins [e_k, e_k+1), the last closed; quantile edges with ties merged."""
    if strategy == "uniform":
        edges = np.linspace(0, 1, bins + 1)
    else:
        edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    total = 0.0
    for b in range(len(edges) - 1):
        last = b == len(edges) - 2
        inside = (p >= edges[b]) & ((p <= edges[b + 1]) if last else (p < edges[b + 1]))
        if inside.any():
            total += inside.sum() / len(p) * abs(y[inside].mean() - p[inside].mean())
    return total


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """The shared toy cohort (two rows per patient), audited once with sex, race and a site."""
    rng = np.random.default_rng(7)
    n = 1200
    frame = pd.DataFrame({
        "patient_id": [f"P{i // 2:04d}" for i in range(n)],
        "sex": rng.choice(["F", "M"], n),
        "race": rng.choice(["black", "white", "asian"], n, p=[0.3, 0.5, 0.2]),
        "site": rng.choice(["north", "south"], n),
    })
    y = rng.binomial(1, 0.35, n)
    frame["y"] = y
    frame["p"] = np.clip(0.35 + 0.35 * (y - 0.35) + rng.normal(0, 0.18, n), 0.001, 0.999).round(6)
    path = tmp_path_factory.mktemp("toy") / "d.csv"
    result = audit(frame, path, sensitive=("sex", "race"), site="site", id="patient_id",
                   report={"formats": ["json"]})
    return pd.read_csv(path), result


# -- the numbers ---------------------------------------------------------------------------

def test_overall_values_against_statsmodels_sklearn_and_hand(tmp_path):
    frame = simulate(3000, seed=1, temperature=0.8, shift=0.2)
    r = audit(frame, tmp_path / "d.csv", calibration={"bins": 8, "binning": "uniform"})
    back = pd.read_csv(tmp_path / "d.csv")
    y, p = back.y.to_numpy(), back.p.to_numpy()
    fit = ref_glm(y, p)
    slope, intercept = only(r, "calibration_slope"), only(r, "calibration_intercept")
    assert slope.value == pytest.approx(fit.params[1], abs=1e-8)
    assert intercept.value == pytest.approx(fit.params[0], abs=1e-8)
    z = norm.ppf(0.975)
    assert slope.ci == pytest.approx((fit.params[1] - z * fit.bse[1], fit.params[1] + z * fit.bse[1]), abs=1e-6)
    assert only(r, "oe_ratio").value == pytest.approx(y.sum() / p.sum(), rel=1e-12)
    offset = special.logit(np.clip(p, 1e-6, 1 - 1e-6))
    citl = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=offset).fit()
    assert only(r, "calibration_in_the_large").value == pytest.approx(citl.params[0], abs=1e-8)
    assert only(r, "brier").value == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    ece = only(r, "ece")
    assert ece.value == pytest.approx(ref_ece(y, p, 8, "uniform"), abs=1e-12)
    assert "8 uniform bins" in ece.ci_method and ece.ci[0] <= ece.value <= ece.ci[1]
    for m in (slope, intercept, ece, only(r, "brier"), only(r, "oe_ratio")):
        assert m.level == 0.95 and m.ci_method and not m.suppressed and m.reason is None
    assert only(r, "clipped_scores").value == 0 and r.plugin("calibration").warnings == ()
    assert (only(r, "n").value, only(r, "positives").value) == (3000, y.sum())


def test_quantile_ece_and_group_values_equal_the_group_rows(toy_run):
    back, r = toy_run
    y, p = back.y.to_numpy(), back.p.to_numpy()
    assert only(r, "ece").value == pytest.approx(ref_ece(y, p, 10, "quantile"), abs=1e-12)
    for col in ("sex", "race", "site"):
        for v in sorted(back[col].unique()):
            mask = (back[col] == v).to_numpy()
            group = {col: v}
            yg, pg = y[mask], p[mask]
            fit = ref_glm(yg, pg)
            assert only(r, "calibration_slope", group).value == pytest.approx(fit.params[1], abs=1e-8)
            assert only(r, "calibration_intercept", group).value == pytest.approx(fit.params[0], abs=1e-8)
            assert only(r, "oe_ratio", group).value == pytest.approx(yg.sum() / pg.sum(), rel=1e-12)
            assert only(r, "brier", group).value == pytest.approx(brier_score_loss(yg, pg), abs=1e-12)
            assert only(r, "ece", group).value == pytest.approx(ref_ece(yg, pg, 10, "quantile"), abs=1e-12)
            assert only(r, "n", group).value == mask.sum()


def test_cluster_robust_intervals_with_a_patient_identifier(toy_run):
    back, r = toy_run
    y, p = back.y.to_numpy(), back.p.to_numpy()
    x = special.logit(np.clip(p, 1e-6, 1 - 1e-6))
    codes = pd.factorize(back.patient_id)[0]
    fit = sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": codes})
    slope = only(r, "calibration_slope")
    z = norm.ppf(0.975)
    assert slope.ci == pytest.approx((fit.params[1] - z * fit.bse[1], fit.params[1] + z * fit.bse[1]), abs=1e-6)
    assert "cluster-robust" in slope.ci_method
    # Simultaneous intervals: Bonferroni over every value of the id (overall + 7 groups).
    zs = norm.ppf(1 - 0.05 / 8 / 2)
    assert slope.ci_simultaneous == pytest.approx((fit.params[1] - zs * fit.bse[1], fit.params[1] + zs * fit.bse[1]),
                                                  abs=1e-6)
    settings = r.plugin("calibration").settings
    assert settings["counting_unit"] == "patients" and settings["groupings"] == [["sex"], ["race"], ["site"]]
    assert only(r, "patients").value == back.patient_id.nunique()


def test_net_benefit_by_hand(toy_run):
    back, r = toy_run
    y, p = back.y.to_numpy(), back.p.to_numpy()
    nb = curve(r, "net_benefit")
    assert nb.thresholds[0] == 0.01 and nb.thresholds[-1] == 0.5 and len(nb.thresholds) == 50
    for t in (0.2, 0.35):
        i = nb.thresholds.index(t)
        tp, fp = ((p >= t) & (y == 1)).sum(), ((p >= t) & (y == 0)).sum()
        assert nb.values[i] == pytest.approx(tp / len(y) - fp / len(y) * t / (1 - t), abs=1e-12)
        assert nb.low[i] <= nb.values[i] <= nb.high[i]
        prev = y.mean()
        assert curve(r, "net_benefit_treat_all").values[i] == pytest.approx(prev - (1 - prev) * t / (1 - t), abs=1e-12)
    # Per site too, each against its own rows.
    south = (back.site == "south").to_numpy()
    t = 0.3
    i = nb.thresholds.index(t)
    tp, fp = ((p >= t) & (y == 1) & south).sum(), ((p >= t) & (y == 0) & south).sum()
    site_nb = curve(r, "net_benefit", {"site": "south"})
    assert site_nb.values[i] == pytest.approx((tp - fp * t / (1 - t)) / south.sum(), abs=1e-12)
    assert curve(r, "net_benefit", {"sex": "F"}) is None  # decision curves: overall and sites only
    rel = curve(r, "reliability", {"race": "asian"})
    assert rel is not None and len(rel.low) == len(rel.thresholds) == len(rel.values)
    assert all(0 <= v <= 1 for v in rel.values)
    assert "treat_none" in r.plugin("calibration").settings


def test_results_json_validates_and_round_trips(toy_run):
    _, r = toy_run
    text = r.to_json()
    jsonschema.validate(json.loads(text), results_schema())
    again = AuditResult.from_json(text)
    assert again == r
    assert {c.id for c in again.plugin("calibration").curves} == {"reliability", "net_benefit",
                                                                  "net_benefit_treat_all"}
    produced = {m.id for m in r.plugin("calibration").metrics}
    assert produced <= set(CalibrationPlugin.metrics)
    assert produced == set(CalibrationPlugin.metrics)


# -- small cells, clipping, undefined values ------------------------------------------------

def test_small_group_is_suppressed_everywhere(tmp_path):
    frame = simulate(2000, seed=2)
    frame.loc[:5, "sex"] = "X"  # six rows: below min_cell 10
    r = audit(frame, tmp_path / "d.csv", sensitive=("sex",))
    # The public record withholds the small group's name as well as its numbers.
    withheld = {"sex": WITHHELD_LABEL.format(k=1)}
    assert not any(m.group == {"sex": "X"} for m in r.plugin("calibration").metrics)
    small = [m for m in r.plugin("calibration").metrics if m.group == withheld]
    assert {m.id for m in small} == {"n", "positives", "prevalence", "calibration_slope", "calibration_intercept",
                                     "calibration_in_the_large", "oe_ratio", "ece", "brier"}
    assert all(m.suppressed and m.value is None and m.ci is None for m in small)
    assert not any(c.group in ({"sex": "X"}, withheld) for c in r.plugin("calibration").curves)
    # Its complements are hidden too, so that the total minus the others does not give it back.
    big = [m for m in r.plugin("calibration").metrics if m.group in ({"sex": "F"}, {"sex": "M"}) and m.id == "n"]
    assert any(m.suppressed for m in big)
    assert "sex X" not in json.dumps([f.message for f in r.plugin("calibration").findings])


def test_small_positive_count_hides_oe_and_fit_but_not_the_group(tmp_path):
    frame = simulate(4000, seed=3)
    frame["clinic"] = "big"
    few = frame.index[(frame.y == 1)][:4].tolist() + frame.index[frame.y == 0][:200].tolist()
    frame.loc[few, "clinic"] = "small"  # 204 patients, 4 with the outcome
    r = audit(frame, tmp_path / "d.csv", sensitive=("clinic",), calibration={"min_positives": 1})
    g = {"clinic": "small"}
    for mid in ("oe_ratio", "calibration_in_the_large", "calibration_slope", "calibration_intercept", "ece", "brier"):
        assert only(r, mid, g).suppressed, mid
    assert curve(r, "reliability", g) is None


def test_exact_zero_and_one_scores_are_counted_and_warned(tmp_path):
    frame = simulate(1500, seed=4)
    frame.loc[:2, "p"] = 0.0
    frame.loc[3:6, "p"] = 1.0
    r = audit(frame, tmp_path / "d.csv")
    assert only(r, "clipped_scores").value == 7
    warnings = r.plugin("calibration").warnings
    assert len(warnings) == 1 and "7 score(s)" in warnings[0] and "1e-06" in warnings[0]
    assert only(r, "calibration_slope").value is not None
    assert r.plugin("calibration").settings["epsilon"] == 1e-6


def test_group_without_positives_is_undefined_with_a_reason(tmp_path):
    frame = simulate(3000, seed=5)
    frame["unit"] = "ward"
    negatives = frame.index[frame.y == 0][:300]
    frame.loc[negatives, "unit"] = "clinic"
    r = audit(frame, tmp_path / "d.csv", sensitive=("unit",))
    g = {"unit": "clinic"}
    slope = only(r, "calibration_slope", g)
    assert slope.value is None and not slope.suppressed and "no events" in slope.reason
    assert only(r, "positives", g).value == 0
    assert only(r, "brier", g).value == pytest.approx(brier_score_loss(np.zeros(300), frame.p[negatives]), abs=1e-12)
    assert r.plugin("calibration").warnings == ()
    assert r.plugin("calibration").status != Status.ERROR


# -- findings ----------------------------------------------------------------------------

def test_overconfident_model_warns_and_calibrated_model_passes(tmp_path):
    over = audit(simulate(20000, seed=6, temperature=2.0), tmp_path / "over.csv")
    slope = only(over, "calibration_slope")
    assert slope.value == pytest.approx(0.5, abs=0.03)
    finding = next(f for f in over.plugin("calibration").findings if f.id == "calibration")
    assert finding.status == Status.WARN
    assert finding.message.startswith("The model is poorly calibrated overall: the model's risks are too extreme")
    assert "high risks are overstated" in finding.message

    good = audit(simulate(20000, seed=7), tmp_path / "good.csv", sensitive=("sex",), site="site")
    findings = {f.id: f for f in good.plugin("calibration").findings}
    assert findings["calibration"].status == Status.PASS, findings["calibration"].message
    assert findings["calibration"].message.startswith("The model is well calibrated overall")
    assert set(findings) == {"calibration", "calibration_by_sex", "calibration_by_site"}
    assert findings["calibration_by_sex"].status == Status.PASS
    assert good.plugin("calibration").status == Status.PASS


def test_predicting_too_many_events_is_said_in_words(tmp_path):
    r = audit(simulate(8000, seed=8, shift=1.0), tmp_path / "d.csv", sensitive=("sex",))
    oe = only(r, "oe_ratio")
    assert oe.ci[1] < 0.8
    f = next(f for f in r.plugin("calibration").findings if f.id == "calibration")
    assert f.status == Status.WARN and f"predicts {1 / oe.value:.1f} times as many events as occur" in f.message
    by_sex = next(f for f in r.plugin("calibration").findings if f.id == "calibration_by_sex")
    assert by_sex.status == Status.WARN and by_sex.message.startswith("Poorly calibrated for sex ")


def test_multi_label_runs_one_analysis_per_label(tmp_path):
    frame = simulate(3000, seed=9)
    other = simulate(3000, seed=10, temperature=2.0)
    frame["y2"], frame["p2"] = other.y, other.p
    r = audit(frame, tmp_path / "d.csv", label=["y", "y2"], score=["p", "p2"], sensitive=("sex",))
    findings = {f.id for f in r.plugin("calibration").findings}
    assert findings == {"calibration_y", "calibration_y2", "calibration_by_sex_y", "calibration_by_sex_y2"}
    back = pd.read_csv(tmp_path / "d.csv")
    for label, ycol, pcol in (("y", "y", "p"), ("y2", "y2", "p2")):
        fit = ref_glm(back[ycol].to_numpy(), back[pcol].to_numpy())
        assert only(r, "calibration_slope", label=label).value == pytest.approx(fit.params[1], abs=1e-8)
        assert curve(r, "reliability", label=label) is not None
    assert r.plugin("calibration").settings["mode"] == "multi-label"


def test_no_sensitive_attributes_still_assesses_overall(tmp_path):
    r = audit(simulate(2000, seed=12), tmp_path / "d.csv")
    result = r.plugin("calibration")
    assert result.status != Status.SKIPPED
    assert [f.id for f in result.findings] == ["calibration"]
    assert all(m.group is None for m in result.metrics)


def test_gate_on_the_slope(tmp_path):
    r = audit(simulate(20000, seed=6, temperature=2.0), tmp_path / "d.csv",
              gates=("calibration.calibration_slope>=0.8",))
    assert r.gates[0].status == Status.FAIL and r.exit_code == 1


# -- parameters and contract -----------------------------------------------------------------

@pytest.mark.parametrize(("raw", "message"), [
    ({"bins": 1}, r"^calibration.bins: expected an integer >= 2, got 1\.$"),
    ({"binning": "equal"}, r"^calibration.binning: 'equal' is not one of quantile, uniform"),
    ({"smoother": "spline"}, r"^calibration.smoother"),
    ({"n_boot": 3}, r"^calibration.n_boot: expected an integer from 50"),
    ({"level": 1.2}, r"^calibration.level"),
    ({"slope_range": [1.1, 1.3]}, r"^calibration.slope_range: expected two numbers"),
    ({"oe_range": [0.9]}, r"^calibration.oe_range"),
    ({"decision_thresholds": [0.5, 0.1]}, r"^calibration.decision_thresholds"),
    ({"decision_step": 0}, r"^calibration.decision_step"),
    ({"min_positives": 0}, r"^calibration.min_positives"),
])
def test_params_are_validated_with_one_line_messages(raw, message):
    with pytest.raises(ConfigError, match=message) as info:
        make_params(CalibrationPlugin, raw)
    assert "\n" not in str(info.value)


def test_defaults_and_threshold_grid():
    p = CalibrationParams()
    assert (p.bins, p.binning, p.smoother, p.n_boot, p.level) == (10, "quantile", "isotonic", 500, 0.95)
    assert p.n_boot_groups == 100 and CalibrationParams(n_boot=2000).n_boot_groups == 400
    grid = p.threshold_grid()
    assert grid[0] == 0.01 and grid[-1] == 0.5 and len(grid) == 50
    assert make_params(CalibrationPlugin, {"slope_range": [0.9, 1.1]}).slope_range == (0.9, 1.1)


def test_check_plugin_contract():
    result = check_plugin(CalibrationPlugin, make_params(CalibrationPlugin, FAST))
    assert result.principle == "General" and result.metrics and result.curves
