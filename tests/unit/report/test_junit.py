from __future__ import annotations

import xml.etree.ElementTree as ET

from audit.core.results import GateResult, Status
from audit.report import render_junit

from .factories import make_result


def _cases(xml: str) -> tuple[ET.Element, dict[str, ET.Element]]:
    root = ET.fromstring(xml)
    suite = root.find("testsuite")
    return suite, {tc.get("name"): tc for tc in suite.findall("testcase")}


def test_one_testcase_per_gate_and_failures_where_fail_on_says(result):
    suite, cases = _cases(render_junit(result))
    assert suite.get("name") == "future-audit"
    assert list(cases) == [g.expression for g in result.gates]
    assert {tc.get("classname") for tc in cases.values()} == {"future-audit.gates"}
    fail, ok, inconclusive, error = cases.values()
    assert fail.find("failure") is not None
    assert fail.find("failure").get("message") == "FAIL: fnr_gap is above 0.05 for sex=F."
    assert list(ok) == []
    assert inconclusive.find("failure") is None
    assert "INCONCLUSIVE: The interval" in inconclusive.find("system-out").text
    assert error.find("error") is not None and error.find("failure") is None
    counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "4", "failures": "1", "errors": "1", "skipped": "0"}


def test_inconclusive_fails_when_fail_on_includes_it():
    xml = render_junit(make_result(config={"fail_on": ["FAIL", "INCONCLUSIVE"]}))
    suite, cases = _cases(xml)
    assert cases["fairness.fnr<=0.3"].find("failure") is not None
    assert cases["fairness.fnr<=0.3"].find("failure").get("type") == "INCONCLUSIVE"
    assert suite.get("failures") == "2"


def test_suppressed_checks_are_hidden(result):
    xml = render_junit(result)
    _, cases = _cases(xml)
    text = cases["fairness.fnr_gap<=0.05"].find("failure").text
    assert "sex=X vs best: suppressed (< 10) -> INCONCLUSIVE" in text
    assert "sex=F vs best: +11.0 pp (+2.0 to +20.0 pp) -> FAIL" in text
    assert "12.3" not in xml and "0.123" not in xml and "40.0" not in xml


def test_without_gates_one_testcase_per_plugin():
    xml = render_junit(make_result(gates=()))
    suite, cases = _cases(xml)
    assert list(cases) == ["fairness"]
    assert cases["fairness"].get("classname") == "future-audit.plugins"
    failure = cases["fairness"].find("failure")
    assert failure.get("message").startswith("FAIL: Women are underdiagnosed")
    assert "INCONCLUSIVE: FNR cannot be computed" in failure.text
    assert suite.get("tests") == "1" and suite.get("failures") == "1"


def test_skipped_and_control_characters():
    gate = GateResult("x.y>=1", "x.y", ">=", 1.0, "all", Status.SKIPPED, "no data\x00 \x1b[31m")
    xml = render_junit(make_result(gates=(gate,)))
    suite, cases = _cases(xml)  # parses although the message had control characters
    assert cases["x.y>=1"].find("skipped") is not None
    assert suite.get("skipped") == "1" and suite.get("failures") == "0"


def test_time_from_provenance(result):
    suite, _ = _cases(render_junit(result))
    assert suite.get("time") == "12.500"
    assert suite.get("timestamp") == "2024-05-01T10:00:00+00:00"
