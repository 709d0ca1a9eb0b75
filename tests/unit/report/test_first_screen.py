"""The first screen: model under audit, overall result explained, overall performance, and a
fairness verdict led by the worst decided finding, in display names."""

from __future__ import annotations

from dataclasses import replace

from audit.core.results import AuditResult, Finding, GateCheck, GateResult, Metric, PluginResult, Status
from audit.report import context
from audit.report.names import DisplayNames
from audit.report.suppression import for_display
from audit.report.templates import environment
from audit.report.text import Names
from audit.report.verdict import NOT_ASSESSED, overall_view, status_reason, verdict_rows

DISPLAY_NAMES = {
    "labels": {"covid": "tested positive for covid"},
    "columns": {"age_band": "age band"},
    "values": {"age_band": {"<1": "infants under 1", "40+": "adults over 40"}},
}
BINS = [{"column": "age", "name": "age_band", "edges": [0, 1, 18, 40, 150], "labels": ["<1", "1-17", "18-39", "40+"]}]


def _rate(metric_id, value, ci, group=None, n=300, flags=()):
    return Metric(metric_id, value, n=n, group=group, ci=ci, level=0.95, flags=flags)


def demo_like(*, gender_status=Status.INCONCLUSIVE, age_status=Status.WARN, flagged=None, op_status=None,
              attestations=None, display_names=True) -> AuditResult:
    """Like the covid demo: gender (listed first) undecided, age band WARNs, a gate FAILs."""
    g = {"gender": "female"}, {"gender": "male"}
    # Emitted in text order, as the plugin sorts values: "18-39", "40+", "<1".
    young, adult, old = {"age_band": "<1"}, {"age_band": "18-39"}, {"age_band": "40+"}
    metrics = [
        Metric("n", 6251, n=6251),
        Metric("positives", 355, n=6251),
        _rate("prevalence", 0.057, (0.051, 0.063), n=6251),
        _rate("sensitivity", 0.862, (0.820, 0.897), n=6251),
        _rate("specificity", 0.369, (0.355, 0.383), n=6251),
        _rate("fnr", 0.138, (0.103, 0.180), n=6251),
        Metric("auroc", 0.679, n=6251, ci=(0.652, 0.705), level=0.95),
        Metric("threshold", 0.0529, n=6251),
        _rate("fnr", 0.15, (0.10, 0.21), g[0]),
        _rate("fnr", 0.12, (0.08, 0.17), g[1]),
        Metric("fnr_gap", 0.03, n=300, group=g[0], ci=(-0.03, 0.09), reference="best", reference_group=g[1]),
        _rate("fnr", 0.10, (0.06, 0.15), adult),
        _rate("fnr", 0.012, (0.002, 0.043), old),
        _rate("fnr", 0.56, (0.349, 0.756), young, n=120),
        Metric("fnr_gap", 0.548, n=120, group=young, ci=(0.33, 0.74), ci_simultaneous=(0.30, 0.76),
               reference="best", reference_group=old),
        Metric("fnr_gap_overall", 0.422, n=120, group=young, ci=(0.222, 0.607), ci_simultaneous=(0.20, 0.63),
               reference="overall"),
    ]
    if flagged is not None:
        metrics.append(_rate("flagged", flagged, (0.63, 0.66), n=6251))
    findings = [
        Finding("fnr_by_gender", "Missed cases (FNR) by gender", gender_status, "gender message", metric="fnr_gap",
                threshold=0.05),
        Finding("fnr_by_age_band", "Missed cases (FNR) by age_band", age_status, "age message", metric="fnr_gap",
                threshold=0.05),
    ]
    if op_status is not None:
        findings.append(Finding("operating_point", "Operating point", op_status,
                                "At this threshold the model flags 64% of patients to find 86% of cases."))
    plugin = PluginResult(
        "fairness", "Fairness", "0.1.0", Status.WARN, "summary", metrics=metrics, findings=findings,
        settings={"labels": ["covid"], "key_metric": "fnr", "groupings": [["gender"], ["age_band"]],
                  "tolerance": 0.05, "min_group_n": 30, "min_positives": 10, "counting_unit": "patients",
                  "threshold_method": "sensitivity:0.8 on the reference data",
                  "multiplicity_correction": "Holm step-down (FWER)"},
    )
    gate = GateResult(
        "fairness.fnr_gap_overall<=0.15", "fairness.fnr_gap_overall", "<=", 0.15, "interval", Status.FAIL,
        "1 group exceeds", checks=(GateCheck(young, 0.422, (0.20, 0.63), Status.FAIL, reference="overall"),
                                   GateCheck(adult, -0.03, (-0.08, 0.02), Status.PASS, reference="overall")),
    )
    report = {"min_cell": 10}
    if display_names:
        report["display_names"] = DISPLAY_NAMES
    return AuditResult(
        plugins=(plugin,), gates=(gate,), status=Status.FAIL, exit_code=1,
        config={"fail_on": ["FAIL"], "report": report, "data": {"label": ["covid"], "bins": BINS}},
        attestations=attestations or {},
    )


def _render(result: AuditResult, with_first_screen: bool = True) -> str:
    result = for_display(result)
    ctx = {
        **context.header(result),
        "prose": Names.of(result).html,
        "status_reason": status_reason(result, context.fail_on(result)),
        "verdict": verdict_rows(result),
        "not_assessed": NOT_ASSESSED,
        "checklists": [],
    }
    if with_first_screen:
        ctx["first_screen"] = context.first_screen(result)
    return environment().get_template("_first_screen.html.j2").render(ctx)


def test_the_verdict_leads_with_the_worst_decided_finding_not_the_first_attribute():
    row = verdict_rows(for_display(demo_like()))[0]
    assert row.principle == "Fairness"
    assert row.sentence.startswith(
        "The model misses 56.0% (95% CI 34.9%–75.6%) of infants under 1 who tested positive for covid"
    )
    assert "1.2% (0.2%–4.3%) of adults over 40" in row.sentence
    assert "tolerance of 5 points" in row.sentence
    assert "Also checked: gender, INCONCLUSIVE." in row.sentence
    # no data names in the prose
    assert "=" not in row.sentence and "fnr_gap" not in row.sentence and "covid=1" not in row.sentence


def test_a_fail_outranks_a_warn_and_undecided_findings_fall_back_to_the_first():
    fail = verdict_rows(for_display(demo_like(gender_status=Status.FAIL, age_status=Status.WARN)))[0]
    assert fail.sentence.startswith("Among patients who tested positive for covid, the model misses 15.0%")
    undecided = verdict_rows(for_display(demo_like(age_status=Status.INCONCLUSIVE)))[0]
    assert undecided.sentence.startswith("Among patients who tested positive for covid, the model misses 15.0%")
    assert "of gender female" in undecided.sentence and "cannot show" in undecided.sentence


def test_without_display_names_the_defaults_are_plain_words():
    row = verdict_rows(for_display(demo_like(display_names=False)))[0]
    assert row.sentence.startswith("The model misses 56.0% (95% CI 34.9%–75.6%) of age band <1 with covid")
    assert "of age band 40+" in row.sentence


def test_overall_result_names_its_thresholds_and_explains_fail_versus_warn():
    view = overall_view(for_display(demo_like()), ["FAIL"])
    assert view.sentence == (
        "FAIL: the gate 'gap in missed cases (FNR) to all patients ≤ 15 points' "
        "(fairness.fnr_gap_overall<=0.15) failed for infants under 1."
    )
    assert view.meaning == (
        "The fairness check itself says WARN at its own tolerance of 5 points: WARN means a gap above "
        "5 points that is worth review; FAIL means a configured gate failed."
    )
    assert view.thresholds == (
        "Gate: gap in missed cases (FNR) to all patients ≤ 15 points (fairness.fnr_gap_overall<=0.15)",
        "Fairness check's own tolerance: 5 points",
    )
    html = _render(demo_like())
    assert "WARN means a gap above 5 points that is worth review; FAIL means a configured gate failed." in html


def test_model_box_says_not_stated_in_words_without_attestations():
    facts = context.model_facts(demo_like())
    assert [(f.what, f.stated, f.text) for f in facts] == [
        ("Intended use", False, "NOT STATED"),
        ("Population", False, "NOT STATED"),
        ("Outcome", False, "NOT STATED"),
    ]
    assert facts[0].hint.startswith("Answer CLAIM-2024:3 (")
    assert "covid (patients who tested positive for covid)" in facts[2].note
    html = _render(demo_like())
    box = html.split('<section id="model-under-audit"')[1].split("</section>")[0]
    assert box.count(">NOT STATED</strong>") == 3 and 'class="not-stated"' in box
    assert "label=1" not in html and "score columns" not in html


def test_model_box_quotes_the_attested_answers():
    attestations = {
        "claim-2024": {"3": {"answer": "Triage while the PCR is pending.", "by": "Dr A", "date": "2026-01-02"}},
        "tripod-ai": {"6b": {"answer": "Children tested at one hospital."}, "8a": {"answer": "PCR result."}},
    }
    facts = context.model_facts(demo_like(attestations=attestations))
    assert [(f.stated, f.text, f.source) for f in facts] == [
        (True, "Triage while the PCR is pending.", "CLAIM-2024:3"),
        (True, "Children tested at one hospital.", "TRIPOD+AI:6b"),
        (True, "PCR result.", "TRIPOD+AI:8a"),
    ]
    html = _render(demo_like(attestations=attestations))
    assert "NOT STATED" not in html and "Triage while the PCR is pending." in html and "Dr A" in html


def test_overall_performance_comes_before_the_gaps():
    [perf] = context.performance(for_display(demo_like()))
    by_id = {i.id: i for i in perf.items}
    assert [i.id for i in perf.items] == ["auroc", "sensitivity", "specificity", "prevalence", "flagged"]
    assert (by_id["auroc"].value, by_id["auroc"].interval) == ("0.679", "(0.652–0.705)")
    assert by_id["sensitivity"].value == "86.2%" and by_id["specificity"].value == "36.9%"
    # no flagged metric: worked out from sensitivity, specificity and prevalence, and said so
    assert by_id["flagged"].state == "derived" and by_id["flagged"].value == "64.4%"
    assert "worked out from sensitivity" in perf.caption
    assert perf.flagged_sentence == (
        "The model flags 64.4% of all patients as positive, against a prevalence of 5.7% "
        "(patients who tested positive for covid)."
    )
    assert perf.operating_point.threshold == "0.0529" and not perf.operating_point.warn
    html = _render(demo_like())
    # the verdict stays on the first screen; model and performance follow it, before any finding
    assert html.index('id="verdict"') < html.index('id="model-under-audit"') < html.index('id="overall-performance"')
    assert "<caption>How well the model works for all patients (covid)" in html


def test_a_reported_flagged_share_is_used_and_a_poor_operating_point_is_shown_first():
    result = demo_like(flagged=0.645, op_status=Status.WARN)
    [perf] = context.performance(for_display(result))
    flagged = {i.id: i for i in perf.items}["flagged"]
    assert (flagged.value, flagged.interval, flagged.state) == ("64.5%", "(63.0%–66.0%)", "ok")
    assert perf.operating_point.warn and perf.operating_point.status == "WARN"
    html = _render(result)
    warning = html.index('class="operating-point-warning"')
    assert warning < html.index('id="model-under-audit"')
    assert ("Poor operating point (covid, threshold 0.0529):</strong> the model flags 64.5% of all patients as "
            "positive, against a prevalence of 5.7%; it finds 86.2% of those with the condition and clears 36.9% "
            "of those without.") in html
    assert "flags 64% of patients to find 86% of cases" in html  # the finding's own words, further down


def test_the_partial_renders_without_first_screen_data_as_before():
    html = _render(demo_like(), with_first_screen=False)
    assert '<section id="verdict">' in html and "model-under-audit" not in html
    assert "Set by the gates: fairness.fnr_gap_overall&lt;=0.15 fails." in html


def test_first_screen_keys():
    data = context.first_screen(for_display(demo_like()))
    assert set(data) == {"model", "overall", "performance", "operating_point_warnings", "calibration"}
    assert data["calibration"] == []  # no calibration plugin ran
    assert data["operating_point_warnings"] == []
    other = replace(demo_like(), gates=())
    assert "no gates were configured" in overall_view(other, ["FAIL"]).sentence
    assert "FAIL would need a configured gate" in overall_view(other, ["FAIL"]).meaning


def test_display_names_reach_the_gate_checks_and_findings_views():
    result = for_display(demo_like())
    display = DisplayNames.from_result(result)
    gate = context.gate_view(result.gates[0], 10, display)
    assert [c.group_name for c in gate.checks] == ["infants under 1", "age band 18-39"]
    finding = context.finding_view(result.plugins[0].findings[0], "fairness", display)
    assert finding.metric_words == "gap in missed cases (FNR)" and finding.group_name == ""
    assert not context.findings_have_groups([finding])
