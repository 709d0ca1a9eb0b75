"""Comparing two results.json: intervals that no longer overlap, directions, statuses, provenance."""

from __future__ import annotations

import copy
import json

import pytest

from audit.compare import (
    ABSENT,
    Direction,
    FieldChange,
    StatusChange,
    compare_results,
    format_comparison,
    metric_direction,
)
from audit.core.results import SCHEMA_VERSION, AuditResult, GateResult, Metric, PluginResult, Status
from audit.errors import InputError, UnknownMetricError

PROV = {"tool": {"name": "future-audit", "version": "0.1.0"}, "seed": 7,
        "started": "2026-01-01T10:00:00+00:00", "finished": "2026-01-01T10:01:00+00:00",
        "model": {"kind": "sklearn", "source": "m.skops", "sha256": "a" * 64},
        "data": {"file": "test.csv", "sha256": "b" * 64}, "git": None}


def doc(*metrics, plugin="fairness", status="PASS", gates=(), prov=None, config=None):
    result = AuditResult(
        plugins=(PluginResult(plugin, "Fairness", "0.1.0", status, "summary", metrics=metrics),),
        gates=tuple(GateResult(e, e.split("<")[0], "<=", 0.05, "interval", s, "msg") for e, s in gates),
        provenance=copy.deepcopy(prov or PROV), config=config or {"report": {"min_cell": 10}},
        status=status, exit_code=0)
    return json.loads(result.to_json())


def gap(value, ci, group=("sex", "F"), reference="best", id="fnr_gap"):
    return Metric(id, value, n=200, group=dict([group]), ci=ci, ci_method="mover", reference=reference)


def one(a_metric, b_metric):
    return compare_results(doc(a_metric), doc(b_metric))


# -- metrics and the "worse" rule ---------------------------------------------------------

def test_an_interval_that_no_longer_overlaps_is_worse():
    c = one(gap(0.02, (0.01, 0.03)), gap(0.12, (0.08, 0.16)))
    (change,) = c.metrics
    assert (change.kind, change.metric, change.group, change.reference) == ("worse", "fairness.fnr_gap",
                                                                          {"sex": "F"}, "best")
    assert (change.a, change.b, change.a_ci, change.b_ci) == (0.02, 0.12, (0.01, 0.03), (0.08, 0.16))
    assert change.separation == pytest.approx(2.5)  # (0.08 - 0.03) / (0.03 - 0.01)
    assert c.worse("fairness.fnr_gap") and c.worse("fnr_gap") and c.matched == 1


@pytest.mark.parametrize("b_ci", [(0.02, 0.06), (0.03, 0.05)])  # overlapping, touching
def test_overlapping_or_touching_intervals_are_no_change(b_ci):
    c = one(gap(0.02, (0.01, 0.03)), gap(sum(b_ci) / 2, b_ci))
    assert c.metrics == () and not c.worse("fairness.fnr_gap")


def test_lower_gap_is_better_not_worse():
    c = one(gap(0.12, (0.08, 0.16)), gap(0.02, (0.01, 0.03)))
    assert [m.kind for m in c.metrics] == ["better"] and not c.worse("fairness.fnr_gap")


def test_higher_is_better_metrics():
    a, b = Metric("auroc", 0.85, ci=(0.82, 0.88)), Metric("auroc", 0.70, ci=(0.66, 0.74))
    assert one(a, b).worse("fairness.auroc") and not one(b, a).worse("fairness.auroc")


def test_unknown_direction_is_changed_never_worse():
    c = one(Metric("prevalence", 0.2, ci=(0.18, 0.22)), Metric("prevalence", 0.4, ci=(0.37, 0.43)))
    assert [m.kind for m in c.metrics] == ["changed"] and metric_direction("prevalence") is None
    assert not c.worse("fairness.prevalence")


@pytest.mark.parametrize("a_ci,b_ci,kind", [
    ((0.9, 1.1), (1.3, 1.7), "worse"),    # farther from 1 everywhere
    ((0.4, 0.6), (0.9, 1.1), "better"),
    ((0.7, 0.9), (1.1, 1.3), "changed"),  # as far from 1 on the other side
])
def test_calibration_slope_is_judged_by_distance_to_one(a_ci, b_ci, kind):
    c = one(Metric("calibration_slope", sum(a_ci) / 2, ci=a_ci), Metric("calibration_slope", sum(b_ci) / 2, ci=b_ci))
    assert [m.kind for m in c.metrics] == [kind]
    assert c.worse("calibration_slope") is (kind == "worse")


def test_oe_ratio_distance_is_on_the_log_scale():
    # |log| distances: A [0.60, 0.80], B [0.53, 0.64]: they overlap, so not worse, although
    # B is farther from 1 than A on the linear scale.
    c = one(Metric("oe_ratio", 0.5, ci=(0.45, 0.55)), Metric("oe_ratio", 1.8, ci=(1.7, 1.9)))
    assert [m.kind for m in c.metrics] == ["changed"]
    c = one(Metric("oe_ratio", 1.0, ci=(0.9, 1.1)), Metric("oe_ratio", 0.5, ci=(0.45, 0.55)))
    assert c.worse("oe_ratio")


@pytest.mark.parametrize("metric_id,better", [
    ("fnr", "lower"), ("fpr", "lower"), ("brier", "lower"), ("ece", "lower"),
    ("fnr_gap", "lower"), ("auroc_gap", "lower"), ("sensitivity_gap_overall", "lower"),
    ("sensitivity_transfer_loss", "lower"), ("auroc_tau2", "lower"), ("auroc_i2", "lower"),
    ("site_identifiability_auroc", "lower"), ("universality.fnr_gap", "lower"),
    ("auroc", "higher"), ("sensitivity", "higher"), ("specificity", "higher"), ("ppv", "higher"),
    ("npv", "higher"), ("auroc_pooled", "higher"), ("sensitivity_pi_low", "higher"),
    ("calibration_slope", "target"), ("calibration_slope_pooled", "target"), ("oe_ratio", "target"),
    ("calibration_intercept", "target"), ("calibration_in_the_large", "target"),
    ("n", None), ("positives", None), ("prevalence", None), ("flagged", None), ("threshold", None),
    ("auroc_q", None), ("auroc_pi_high", None), ("sensitivity_own", None), ("mystery", None),
])
def test_direction_table(metric_id, better):
    d = metric_direction(metric_id)
    assert (d.better if d else None) == better
    if metric_id == "calibration_slope":
        assert d == Direction("target", 1.0) and d.describe() == "closer to 1 is better"


def test_records_in_one_run_only_and_undefined_values():
    a = doc(gap(0.02, (0.01, 0.03)), gap(0.02, (0.01, 0.03), group=("sex", "M")),
            Metric("fnr", 0.2, group={"sex": "U"}, ci=(0.1, 0.3)))
    b = doc(gap(0.02, (0.01, 0.03)), gap(0.02, (0.01, 0.03), group=("race", "asian")),
            Metric("fnr", None, group={"sex": "U"}, suppressed=True, reason="suppressed"))
    kinds = {(m.kind, m.id, json.dumps(m.group)) for m in compare_results(a, b).metrics}
    assert kinds == {("only_a", "fnr_gap", '{"sex": "M"}'), ("only_b", "fnr_gap", '{"race": "asian"}'),
                     ("now_undefined", "fnr", '{"sex": "U"}')}
    back = compare_results(b, a).metrics
    assert next(m for m in back if m.id == "fnr").kind == "now_defined"
    assert next(m for m in compare_results(a, b).metrics if m.id == "fnr").note == "suppressed"


def test_a_value_without_interval_is_value_changed():
    c = one(Metric("n", 200.0, n=200), Metric("n", 180.0, n=180))
    assert [m.kind for m in c.metrics] == ["value_changed"]


def test_label_and_reference_are_part_of_the_key():
    a = doc(gap(0.02, (0.01, 0.03)), gap(0.02, (0.01, 0.03), reference="overall", id="fnr_gap_overall"))
    b = doc(gap(0.02, (0.01, 0.03), reference="overall"), gap(0.02, (0.01, 0.03), reference="overall",
                                                             id="fnr_gap_overall"))
    assert sorted(m.kind for m in compare_results(a, b).metrics) == ["only_a", "only_b"]


def test_metric_filter_and_unknown_ids():
    a = doc(gap(0.02, (0.01, 0.03)), Metric("auroc", 0.85, ci=(0.82, 0.88)))
    b = doc(gap(0.12, (0.08, 0.16)), Metric("auroc", 0.70, ci=(0.66, 0.74)))
    only = compare_results(a, b, metric="fairness.auroc")
    assert [m.id for m in only.metrics] == ["auroc"] and only.metric_ids == {"fairness.auroc"}
    with pytest.raises(UnknownMetricError, match="'fairness.fnr_gapp' is in neither"):
        compare_results(a, b, metric="fairness.fnr_gapp")
    with pytest.raises(UnknownMetricError, match="'universality.auroc' is in neither results file"):
        compare_results(a, b).worse("universality.auroc")


# -- statuses, gates, provenance ----------------------------------------------------------

def test_plugin_status_change():
    c = compare_results(doc(status="PASS"), doc(status="FAIL"))
    assert c.plugins == (StatusChange("fairness", "PASS", "FAIL"),) and c.status == ("PASS", "FAIL")


def test_gate_changes():
    a = doc(gates=[("fairness.fnr_gap<=0.05", Status.PASS), ("fairness.fpr_gap<=0.05", Status.PASS)])
    b = doc(gates=[("fairness.fnr_gap<=0.05", Status.FAIL), ("fairness.auroc_gap<=0.05", Status.PASS)])
    assert set(compare_results(a, b).gates) == {
        StatusChange("fairness.fnr_gap<=0.05", "PASS", "FAIL"), StatusChange("fairness.fpr_gap<=0.05", "PASS", None),
        StatusChange("fairness.auroc_gap<=0.05", None, "PASS")}


def test_provenance_and_config_changes():
    prov = copy.deepcopy(PROV)
    prov["model"]["sha256"] = "c" * 64
    prov["seed"] = 8
    prov["tool"]["version"] = "0.2.0"
    prov["finished"] = "2026-02-01T00:00:00+00:00"  # times always differ: not a change
    prov["git"] = {"commit": "abc", "dirty": False}
    c = compare_results(doc(), doc(prov=prov, config={"report": {"min_cell": 5}, "gates": ["x"]}))
    assert [f.key for f in c.provenance] == ["model.sha256", "seed", "tool.version", "git"]
    assert c.provenance[0] == FieldChange("model.sha256", "a" * 64, "c" * 64)
    assert c.config == (FieldChange("gates", ABSENT, ["x"]), FieldChange("report.min_cell", 10, 5))
    assert c.metrics == () and c.has_changes


def test_identical_runs_have_no_changes():
    a = doc(gap(0.02, (0.01, 0.03)), gates=[("fairness.fnr_gap<=0.05", Status.PASS)])
    c = compare_results(a, copy.deepcopy(a))
    assert not c.has_changes and c.matched == 1
    assert "Nothing changed." in format_comparison(c)


# -- refusing files -----------------------------------------------------------------------

def test_different_major_versions_are_refused():
    b = doc()
    b["schema_version"] = "2.0"
    with pytest.raises(InputError, match=rf"a.json has results schema {SCHEMA_VERSION} and b.json has 2.0") as info:
        compare_results(doc(), b, names=("a.json", "b.json"))
    assert "\n" not in str(info.value)
    a = doc()
    a["schema_version"] = "2.1"
    with pytest.raises(InputError, match="newer future-audit.*upgrade"):
        compare_results(a, b)


@pytest.mark.parametrize("bad,match", [
    ([1, 2], "expected a JSON object, found list"),
    ({"plugins": []}, "'schema_version' is missing"),
    ({"schema_version": "one", "plugins": [], "gates": [], "provenance": {}, "status": "PASS", "exit_code": 0},
     "schema_version 'one' is not 'major.minor'"),
    ({"schema_version": "1.3", "plugins": [{"plugin": "x"}], "gates": [], "provenance": {}, "status": "PASS",
      "exit_code": 0}, r"plugins\[0\] lacks"),
])
def test_not_a_results_json_is_refused(bad, match):
    with pytest.raises(InputError, match=f"B is not a future-audit results.json: {match}"):
        compare_results(doc(), bad)


# -- rendering ----------------------------------------------------------------------------

def test_format_lists_the_most_important_changes_first():
    prov = copy.deepcopy(PROV)
    prov["data"]["sha256"] = "d" * 64
    a = doc(gap(0.02, (0.01, 0.03)), Metric("n", 200.0), Metric("auroc", 0.7, ci=(0.66, 0.74)),
            gates=[("fairness.fnr_gap<=0.05", Status.PASS)])
    b = doc(gap(0.12, (0.08, 0.16)), Metric("n", 180.0), Metric("auroc", 0.85, ci=(0.82, 0.88)),
            status="FAIL", gates=[("fairness.fnr_gap<=0.05", Status.FAIL)], prov=prov)
    text = format_comparison(compare_results(a, b), names=("run1", "run2"))
    order = ["# run1 → run2", "## Gates", "fairness.fnr_gap<=0.05: PASS → FAIL", "## Worse beyond the interval",
             "fairness.fnr_gap (sex=F, vs best): 0.02 [0.01, 0.03] → 0.12 [0.08, 0.16]; lower is better",
             "## Plugin status", "## What was audited", "data.sha256: bbbbbbbbbbbb → dddddddddddd",
             "## Better beyond the interval", "## Changed, without an interval"]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)


def test_format_limits_long_sections():
    a = doc(*(gap(0.02, (0.01, 0.03), group=("site", str(i))) for i in range(30)))
    b = doc(*(gap(0.12, (0.08, 0.16), group=("site", str(i))) for i in range(30)))
    text = format_comparison(compare_results(a, b), limit=5)
    assert "## Worse beyond the interval (30)" in text and "- ... and 25 more" in text


def test_records_of_one_id_are_paired_by_perturbation_and_severity_not_by_order():
    def drop(pert, sev, value):
        return Metric("auroc_drop", value, n=500, ci=(value - 0.01, value + 0.01), ci_method="paired_wald",
                      perturbation=pert, severity=sev)

    a = doc(drop("blur", 1, 0.01), drop("blur", 2, 0.10), plugin="robustness")
    b = doc(drop("blur", 2, 0.10), drop("blur", 1, 0.05), plugin="robustness")  # order swapped
    comp = compare_results(a, b)
    assert [(c.detail, c.kind) for c in comp.metrics] == [("blur at severity 1", "worse")]
    assert comp.metrics[0].where == "overall, blur at severity 1"
