from __future__ import annotations

import xml.etree.ElementTree as ET

from audit.core.results import Finding, GateCheck, GateResult, Status
from audit.report import render_junit

from .factories import make_fairness, make_result


def _cases(xml: str) -> tuple[ET.Element, dict[str, ET.Element]]:
    root = ET.fromstring(xml)
    suite = root.find("testsuite")
    return suite, {tc.get("name"): tc for tc in suite.findall("testcase")}


def test_one_testcase_per_gate_and_failures_where_fail_on_says(result):
    suite, cases = _cases(render_junit(result))
    assert suite.get("name") == "future-audit"
    assert list(cases)[:4] == [g.expression for g in result.gates]
    assert {cases[g.expression].get("classname") for g in result.gates} == {"future-audit.gates"}
    fail, ok, inconclusive, error = (cases[g.expression] for g in result.gates)
    assert fail.find("failure") is not None
    assert fail.find("failure").get("message") == "FAIL: fnr_gap is above 0.05 for sex=F."
    assert list(ok) == []
    # the data cannot decide: not a pass, and not a failure unless fail_on says so
    assert inconclusive.find("failure") is None
    assert inconclusive.find("skipped").get("message").startswith("INCONCLUSIVE: The interval")
    assert error.find("error") is not None and error.find("failure") is None
    counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
    # 4 gates and 2 findings (FAIL, INCONCLUSIVE)
    assert counts == {"tests": "6", "failures": "2", "errors": "1", "skipped": "2"}


def test_inconclusive_fails_when_fail_on_includes_it():
    xml = render_junit(make_result(config={"fail_on": ["FAIL", "INCONCLUSIVE"]}))
    suite, cases = _cases(xml)
    assert cases["fairness.fnr<=0.3"].find("failure") is not None
    assert cases["fairness.fnr<=0.3"].find("failure").get("type") == "INCONCLUSIVE"
    assert cases["fairness.fnr_undefined"].find("failure").get("type") == "INCONCLUSIVE"
    assert suite.get("failures") == "4" and suite.get("skipped") == "0"


def test_suppressed_checks_are_hidden(result):
    xml = render_junit(result)
    _, cases = _cases(xml)
    text = cases["fairness.fnr_gap<=0.05"].find("failure").text
    assert "sex X vs the best group: suppressed (< 10) -> INCONCLUSIVE" in text
    assert "sex F vs the best group: +11.0 pp (+2.0 to +20.0 pp) -> FAIL" in text
    assert "threshold: gap in missed cases (FNR) ≤ 5.0 pp (all policy)" in text
    assert "12.3" not in xml and "0.123" not in xml and "40.0" not in xml


def test_without_gates_one_testcase_per_finding():
    xml = render_junit(make_result(gates=()))
    suite, cases = _cases(xml)
    assert list(cases) == ["fairness.fnr_gap_sex", "fairness.fnr_undefined"]
    assert {tc.get("classname") for tc in cases.values()} == {"future-audit.findings"}
    failure = cases["fairness.fnr_gap_sex"].find("failure")
    assert failure.get("message") == "FAIL: Underdiagnosis gap by sex"
    assert failure.text.startswith("The model misses 11 more patients per 100")
    assert "threshold: 5.0 pp (gap in missed cases (FNR))" in failure.text
    undefined = cases["fairness.fnr_undefined"]
    assert undefined.find("skipped").get("message") == "INCONCLUSIVE: FNR undefined"
    assert "FNR cannot be computed" in undefined.find("system-out").text
    assert suite.get("tests") == "2" and suite.get("failures") == "1" and suite.get("skipped") == "1"


def test_skipped_and_control_characters():
    gate = GateResult("x.y>=1", "x.y", ">=", 1.0, "all", Status.SKIPPED, "no data\x00 \x1b[31m")
    xml = render_junit(make_result(gates=(gate,)))
    suite, cases = _cases(xml)  # parses although the message had control characters
    assert cases["x.y>=1"].find("skipped") is not None
    assert cases["x.y>=1"].find("skipped").get("message").startswith("SKIPPED: no data")
    assert suite.get("skipped") == "2" and suite.get("failures") == "1"  # the gate; the findings


def test_time_from_provenance(result):
    suite, _ = _cases(render_junit(result))
    assert suite.get("time") == "12.500"
    assert suite.get("timestamp") == "2024-05-01T10:00:00+00:00"


# ------------------------------------------------------------------------ findings and statuses
def _findings_result(config=None, gates=()):
    findings = (
        Finding("operating_point", "Operating point", Status.WARN,
                "Overall sensitivity is 42.0%, below 50%: the threshold misses most cases."),
        Finding("fnr_by_sex", "Missed cases (FNR) by sex", Status.INCONCLUSIVE,
                "The data cannot show that every gap is below 5.0 points.", metric="fnr_gap", threshold=0.05),
        Finding("fnr_by_site", "Missed cases (FNR) by site", Status.PASS, "Every gap is below 5.0 points."),
    )
    return make_result(plugins=(make_fairness(status=Status.WARN, findings=findings),), gates=gates,
                       config={"report": {"min_cell": 10}, **(config or {})})


def test_a_testcase_per_finding_warn_passes_and_inconclusive_is_skipped_by_default():
    suite, cases = _cases(render_junit(_findings_result()))
    assert list(cases) == ["fairness.operating_point", "fairness.fnr_by_sex", "fairness.fnr_by_site"]
    warn, inconclusive, ok = cases.values()
    assert warn.find("failure") is None and warn.find("skipped") is None
    assert warn.find("system-out").text.startswith("WARN: Operating point\nOverall sensitivity is 42.0%")
    assert inconclusive.find("skipped").get("message") == "INCONCLUSIVE: Missed cases (FNR) by sex"
    assert inconclusive.find("failure") is None
    assert list(ok) == []
    assert {k: suite.get(k) for k in ("tests", "failures", "skipped")} == {"tests": "3", "failures": "0",
                                                                          "skipped": "1"}


def test_warn_and_inconclusive_fail_when_fail_on_includes_them():
    _, cases = _cases(render_junit(_findings_result({"fail_on": ["FAIL", "WARN"]})))
    assert cases["fairness.operating_point"].find("failure").get("type") == "WARN"
    assert cases["fairness.fnr_by_sex"].find("skipped") is not None
    suite, cases = _cases(render_junit(_findings_result({"fail_on": ["FAIL", "INCONCLUSIVE", "WARN"]})))
    assert cases["fairness.fnr_by_sex"].find("failure").get("type") == "INCONCLUSIVE"
    assert suite.get("failures") == "2" and suite.get("skipped") == "0"


def test_an_empty_gate_fails_unless_empty_gates_are_allowed():
    empty = GateResult("fairness.fnr_gap<=0.05", "fairness.fnr_gap", "<=", 0.05, "interval", Status.INCONCLUSIVE,
                       "none of its 1 values can be judged", checks=(GateCheck({"sex": "F"}, None, None,
                                                                             Status.INCONCLUSIVE),), empty=True)
    _, cases = _cases(render_junit(_findings_result(gates=(empty,))))
    assert cases[empty.expression].find("failure").get("type") == "INCONCLUSIVE"
    _, cases = _cases(render_junit(_findings_result({"allow_empty_gates": True}, gates=(empty,))))
    gate = cases[empty.expression]
    assert gate.find("failure") is None and gate.find("skipped") is not None


def test_a_plugin_that_failed_is_an_error_and_one_without_findings_has_its_own_testcase():
    failed = make_fairness(status=Status.ERROR, findings=(), summary="The plugin failed: boom", error="boom")
    skipped = make_fairness(plugin="robustness", status=Status.SKIPPED, findings=(), summary="no images")
    suite, cases = _cases(render_junit(make_result(plugins=(failed, skipped), gates=())))
    assert cases["fairness"].get("classname") == "future-audit.plugins"
    assert cases["fairness"].find("error").get("message") == "ERROR: The plugin failed: boom Error: boom"
    assert cases["robustness"].find("skipped").get("message") == "SKIPPED: no images"
    assert suite.get("errors") == "1" and suite.get("skipped") == "1"
