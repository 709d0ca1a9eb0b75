"""What a gate records per value: each check's threshold and a baseline gate's baseline.

A hand-built fairness result with three published FNR gaps (F, M, and B, which has no
baseline record) and one suppressed gap (X), judged by ``fnr_gap<=baseline+0.02`` against
a baseline run whose value for X was published (the group was larger then).
"""

from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
import pytest

from audit.core.config import Baseline, BaselineRecord, GateSpec
from audit.core.gates import evaluate_gate
from audit.core.results import (
    AuditResult,
    GateCheck,
    GateResult,
    Metric,
    PluginResult,
    Status,
    public_record,
)
from audit.report import render_json, render_junit, render_markdown
from audit.report.verdict import gate_words, overall_view
from audit.schema import results_schema

RUN_ID = "0123abcd-aaaa-bbbb-cccc-0123456789ab"
OFFSET = 0.02
BASE = {"F": 0.05, "M": 0.0318, "X": 0.4321}  # X: published in the baseline, suppressed now
X_THRESHOLD = BASE["X"] + OFFSET


def gap(sex: str, value: float, ci: tuple[float, float], *, suppressed: bool = False) -> Metric:
    return Metric("fnr_gap", value, n=7 if suppressed else 180, group={"sex": sex}, ci=ci,
                  ci_method="newcombe", level=0.95, reference="best", suppressed=suppressed)


def plugin() -> PluginResult:
    metrics = (
        gap("F", 0.06, (0.05, 0.065)),     # ≤ 0.07: PASS
        gap("M", 0.12, (0.09, 0.15)),      # > 0.0518: FAIL
        gap("B", 0.01, (0.0, 0.02)),       # no baseline record: INCONCLUSIVE
        gap("X", 0.3, (0.1, 0.5), suppressed=True),
    )
    return PluginResult("fairness", "Fairness", "0.1.0", Status.FAIL, "Gaps by sex.", metrics=metrics)


def spec(history: str = "audit-history.db", run_id: str | None = RUN_ID, offset: float = OFFSET) -> GateSpec:
    records = tuple(BaselineRecord(label=None, group=(("sex", s),), reference="best", value=v)
                    for s, v in BASE.items())
    return GateSpec("fairness", "fnr_gap", "<=", offset, baseline=True,
                    baseline_run=Baseline(history=history, run_id=run_id, records=records if run_id else ()))


def result(gates: tuple[GateResult, ...]) -> AuditResult:
    return AuditResult(plugins=(plugin(),), gates=gates, config={"fail_on": ["FAIL"], "report": {"min_cell": 10}},
                       status=Status.FAIL, exit_code=1)


@pytest.fixture
def gate() -> GateResult:
    return evaluate_gate(spec(), plugin(), "interval")


def by_sex(g: GateResult) -> dict[str, GateCheck]:
    return {c.group["sex"]: c for c in g.checks}


# -- what the gate records ----------------------------------------------------------------

def test_each_check_records_the_threshold_it_was_judged_against(gate):
    checks = by_sex(gate)
    assert checks["F"].threshold == BASE["F"] + OFFSET and checks["F"].status == Status.PASS
    assert checks["M"].threshold == BASE["M"] + OFFSET and checks["M"].status == Status.FAIL
    assert checks["B"].threshold is None and checks["B"].status == Status.INCONCLUSIVE
    assert gate.baseline == {"run_id": RUN_ID, "history": "audit-history.db", "offset": OFFSET}
    # The loosest threshold of the checks that are not suppressed: X's would be looser still.
    assert gate.threshold == BASE["F"] + OFFSET
    assert f"{X_THRESHOLD:.4g}" not in gate.message and "sex=X" not in gate.message
    assert "sex=F <= 0.07" in gate.message


def test_a_fixed_gate_records_its_threshold_on_every_check_and_no_baseline():
    g = evaluate_gate(GateSpec("fairness", "fnr_gap", "<=", 0.1), plugin(), "interval")
    assert g.baseline is None
    assert [c.threshold for c in g.checks] == [0.1] * 4


@pytest.mark.parametrize(("run_id", "read"), [(None, True), (RUN_ID, False)])
def test_a_baseline_gate_without_a_baseline_run_records_what_it_had(run_id, read):
    s = spec(run_id=run_id) if read else GateSpec("fairness", "fnr_gap", "<=", OFFSET, baseline=True)
    g = evaluate_gate(s, plugin(), "interval")
    assert g.baseline == {"run_id": None, "history": "audit-history.db" if read else None, "offset": OFFSET}
    assert all(c.threshold is None for c in g.checks)


def test_the_history_is_recorded_by_its_file_name_only():
    for history in ("/srv/audits/h.db", "C:\\audits\\h.db", "h.db"):
        g = GateResult("e", "fairness.fnr_gap", "<=", 0.02, "interval", Status.PASS, "m",
                       baseline={"run_id": RUN_ID, "history": history, "offset": 0.02})
        assert g.baseline["history"] == "h.db"
    with pytest.raises(ValueError, match="baseline.offset"):
        GateResult("e", "fairness.fnr_gap", "<=", 0.02, "interval", Status.PASS, "m",
                   baseline={"run_id": RUN_ID, "history": "h.db"})


# -- results.json -------------------------------------------------------------------------

def test_round_trip_keeps_thresholds_and_baseline(gate):
    fixed = evaluate_gate(GateSpec("fairness", "fnr_gap", "<=", 0.1), plugin(), "interval")
    r = result((gate, fixed))
    assert AuditResult.from_dict(r.to_dict()) == r
    assert AuditResult.from_json(r.to_json()) == r
    public = public_record(r)
    assert AuditResult.from_json(public.to_json()) == public
    doc = json.loads(public.to_json())
    assert doc["gates"][0]["baseline"] == {"run_id": RUN_ID, "history": "audit-history.db", "offset": OFFSET}
    assert doc["gates"][1]["baseline"] is None


def test_a_results_json_written_before_the_fields_reads_as_none(gate):
    doc = result((gate,)).to_dict()
    del doc["gates"][0]["baseline"]
    for c in doc["gates"][0]["checks"]:
        del c["threshold"]
    old = AuditResult.from_dict(doc)
    assert old.gates[0].baseline is None and all(c.threshold is None for c in old.gates[0].checks)


def test_a_suppressed_check_carries_no_threshold_in_the_public_record(gate):
    full = result((gate,))
    assert by_sex(full.gates[0])["X"].threshold == X_THRESHOLD  # in the run, before publishing
    public = public_record(full)
    x = by_sex(public.gates[0])["X"]
    assert x.suppressed and x.value is None and x.ci is None and x.threshold is None
    assert by_sex(public.gates[0])["M"].threshold == BASE["M"] + OFFSET
    text = public.to_json()
    assert repr(X_THRESHOLD) not in text and f"{X_THRESHOLD:.4g}" not in text
    # A private record (report.full_record) keeps it, as it keeps the value.
    kept = public_record(AuditResult(plugins=full.plugins, gates=full.gates, full_record=True))
    assert by_sex(kept.gates[0])["X"].threshold == X_THRESHOLD


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = results_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_results_json_with_a_baseline_gate_validates(validator, gate):
    fixed = evaluate_gate(GateSpec("fairness", "fnr_gap", "<=", 0.1), plugin(), "interval")
    doc = json.loads(render_json(public_record(result((gate, fixed)))))
    validator.validate(doc)
    assert any(c["threshold"] is None for c in doc["gates"][0]["checks"])


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda g: g["baseline"].update(history="/srv/h.db"), "does not match"),
        (lambda g: g["baseline"].update(history="audits\\h.db"), "does not match"),
        (lambda g: g["baseline"].update(run_id=1), "is not of type"),
        (lambda g: g["baseline"].pop("offset"), "is not valid under any of the given schemas"),
        (lambda g: g["baseline"].update(offset="0.02"), "is not valid under any of the given schemas"),
        (lambda g: g.update(baseline="h.db"), "is not valid under any of the given schemas"),
        (lambda g: g["checks"][0].update(threshold="0.07"), "is not of type"),
    ],
)
def test_a_broken_baseline_record_does_not_validate(validator, gate, breakage, message):
    doc = json.loads(render_json(public_record(result((gate,)))))
    breakage(doc["gates"][0])
    errors = [m for e in validator.iter_errors(doc) for m in _messages(e)]
    assert errors and any(message in e for e in errors), errors


def _messages(error: jsonschema.ValidationError) -> list[str]:
    # An error under oneOf says only "not valid under any"; the reasons are in its context.
    return [error.message, *(m for sub in error.context for m in _messages(sub))]


# -- renderers ----------------------------------------------------------------------------

def test_markdown_names_the_baseline_and_each_groups_threshold(gate):
    md = render_markdown(public_record(result((gate,))))
    assert "against gap in missed cases (FNR) ≤ baseline + 2.0 pp (interval policy)" in md
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")]
            for line in md.splitlines() if line.startswith("| sex")}
    assert rows["sex M"][4] == "≤ 5.2 pp"  # Group | Compared with | Value | Threshold | Status
    assert rows["sex B"][4] == "no baseline value"
    assert rows["sex X"][3] == "suppressed" and rows["sex X"][4] == "≤ baseline + 2.0 pp"
    assert "45.2" not in md and "0.4521" not in md  # X's threshold, 43.21% + 2 pp: suppressed now


def test_junit_names_the_baseline_and_each_groups_threshold(gate):
    xml = render_junit(public_record(result((gate,))))
    assert "threshold: " in xml and "≤ baseline + 2.0 pp" in xml
    assert "sex M vs the best group: +12.0 pp (+9.0 to +15.0 pp) -&gt; FAIL (threshold ≤ 5.2 pp)" in xml
    assert "-&gt; INCONCLUSIVE (no baseline value)" in xml
    assert "suppressed (&lt; 10) -&gt; INCONCLUSIVE (threshold ≤ baseline + 2.0 pp)" in xml
    assert "45.2" not in xml and "0.4521" not in xml


def test_verdict_words_say_baseline(gate):
    r = public_record(result((gate,)))
    assert gate_words(r.gates[0]).endswith("≤ baseline + 2 points")
    view = overall_view(r, ["FAIL"])
    assert any("baseline + 2 points" in t for t in view.thresholds)
    assert "baseline + 2 points" in view.sentence
    minus = evaluate_gate(spec(offset=-0.01), plugin(), "interval")
    assert gate_words(minus).endswith("≤ baseline - 1 points")
    assert gate_words(evaluate_gate(spec(offset=0.0), plugin(), "interval")).endswith("≤ baseline")


def test_fixed_gates_still_print_their_number(gate):
    fixed = evaluate_gate(GateSpec("fairness", "fnr_gap", "<=", 0.05), plugin(), "interval")
    r = public_record(result((fixed,)))
    assert gate_words(r.gates[0]).endswith("≤ 5 points")
    assert "baseline" not in render_markdown(r) and "baseline" not in render_junit(r)


def test_a_baseline_gate_over_perturbations_matches_each_perturbation_and_severity():
    # Two robustness records of one id, group and label: only the perturbation and severity
    # tell them apart, in the run and in the baseline.
    def drop(pert, sev, value):
        return Metric("auroc_drop", value, n=500, ci=(value - 0.01, value + 0.01), ci_method="paired_wald",
                      level=0.95, perturbation=pert, severity=sev)

    p = PluginResult("robustness", "Robustness", "0.1.0", Status.PASS, "Drops.",
                     metrics=(drop("blur", 1, 0.03), drop("blur", 2, 0.10)))
    records = (BaselineRecord(label=None, group=None, reference=None, value=0.02, perturbation="blur", severity=1),
               BaselineRecord(label=None, group=None, reference=None, value=0.09, perturbation="blur", severity=2))
    spec_ = GateSpec("robustness", "auroc_drop", "<=", 0.02, baseline=True,
                     baseline_run=Baseline(history="h.db", run_id=RUN_ID, records=records))
    g = evaluate_gate(spec_, p, "interval")
    assert [c.threshold for c in g.checks] == pytest.approx([0.04, 0.11])
    assert [c.status for c in g.checks] == [Status.PASS, Status.PASS]
    assert [c.detail for c in g.checks] == ["blur at severity 1", "blur at severity 2"]
    # Without the scope both records would be one ambiguous key: no baseline value at all.
    plain = tuple(BaselineRecord(label=None, group=None, reference=None, value=r.value) for r in records)
    g = evaluate_gate(replace(spec_, baseline_run=Baseline(history="h.db", run_id=RUN_ID, records=plain)), p, "interval")
    assert all(c.threshold is None and c.status == Status.INCONCLUSIVE for c in g.checks)
