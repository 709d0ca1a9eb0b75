"""junit.xml: the audit as a test suite, so CI systems show gates and findings as tests.

One testcase per gate (classname ``future-audit.gates``, name = the gate expression), one per
finding (classname ``future-audit.findings``, name = ``plugin.finding_id``), and one per
plugin that has no finding to show or that failed (classname ``future-audit.plugins``):

========================  ===============================================================
status                    testcase
========================  ===============================================================
PASS                      passes
FAIL, WARN                ``<failure>`` when the status is in ``config["fail_on"]``; else
                          passes, with the status and details in ``<system-out>``
INCONCLUSIVE              ``<failure>`` when ``fail_on`` includes it; else ``<skipped>``
                          (the data cannot decide: neither a pass nor a failure)
SKIPPED                   ``<skipped>``
ERROR                     ``<error>``
========================  ===============================================================

A gate with nothing to judge (``GateResult.empty``) is a ``<failure>``, as it makes the
audit exit 1, unless ``run.allow_empty_gates`` is set. The exit code itself depends on the
gates only; a finding's testcase reports what the finding says, so with no gates configured
a failing finding can show as a failure while the audit exits 0 (the ``exit_code``
property says which).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from audit.core.results import AuditResult, PluginResult, Status
from audit.report import context
from audit.report.formatting import check_text, fmt_number, min_cell
from audit.report.markdown import check_threshold_text, gate_threshold_text
from audit.report.names import DisplayNames
from audit.report.suppression import for_display
from audit.report.text import clean, for_plain_text, shorten

# Characters XML 1.0 cannot carry at all; ElementTree would write them and break parsers.
# text.clean removes them already; this stays as the guarantee for the XML itself.
_INVALID_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_REFERENCE = {"best": "the best group", "overall": "all patients"}


def _clean(text: object) -> str:
    """One line of text: no control or bidi characters (:func:`~audit.report.text.clean`)."""
    return _INVALID_XML.sub("\ufffd", clean(text))


def _lines(text: str) -> str:
    """Several lines (details): each line cleaned, the line breaks kept."""
    return _INVALID_XML.sub("\ufffd", clean(text, lines=True))


@dataclass(frozen=True)
class _Case:
    classname: str
    name: str
    status: Status
    message: str
    details: str
    empty: bool = False  # a gate with nothing to judge: a failure unless empty gates are allowed


def _gate_cases(result: AuditResult, names: DisplayNames) -> list[_Case]:
    limit = min_cell(result)
    cases = []
    for g in result.gates:
        metric_id = g.metric.rsplit(".", 1)[-1]
        threshold = gate_threshold_text(g)
        lines = [f"threshold: {names.metric(metric_id)} {threshold} ({g.policy} policy)"] if g.checks else []
        for c in g.checks:
            if c.status == Status.PASS:
                continue
            where = names.group(c.group)
            if c.detail:
                where = c.detail if not c.group else f"{where}, {c.detail}"
            if c.label:
                where += f" [{shorten(c.label)}]"
            if c.reference:
                where += f" vs {_REFERENCE.get(c.reference, c.reference)}"
            value = check_text(metric_id, c.value, c.ci, c.suppressed, limit)
            # A baseline gate holds each group to its own number: name it beside the value.
            own = ""
            if g.baseline is not None:
                own = (" (no baseline value)" if c.threshold is None and not c.suppressed
                       else f" (threshold {check_threshold_text(g, c)})")
            lines.append(f"{where}: {value} -> {c.status}{own}")
        cases.append(_Case("future-audit.gates", g.expression, g.status, g.message, "\n".join(lines),
                           empty=g.empty))
    return cases


def _finding_cases(plugin: PluginResult) -> list[_Case]:
    cases = []
    for f in plugin.findings:
        details = f.message
        if f.threshold is not None and f.metric:
            metric_id = f.metric.rsplit(".", 1)[-1]
            value = fmt_number(metric_id, f.threshold).removeprefix("+")
            details += f"\nthreshold: {value} ({DisplayNames.metric(metric_id)})"
        cases.append(_Case("future-audit.findings", f"{plugin.plugin}.{f.id}", f.status, f.title, details))
    return cases


def _plugin_case(plugin: PluginResult) -> _Case:
    message = plugin.summary + (f" Error: {plugin.error}" if plugin.error else "")
    return _Case("future-audit.plugins", plugin.plugin, plugin.status, message, "\n".join(plugin.warnings))


def _cases(result: AuditResult, names: DisplayNames) -> list[_Case]:
    cases = _gate_cases(result, names)
    for p in result.plugins:
        # A plugin's own testcase only where its findings cannot speak for it: none, or it failed.
        if not p.findings or p.status == Status.ERROR:
            cases.append(_plugin_case(p))
        cases += _finding_cases(p)
    return cases


def _duration(result: AuditResult) -> float:
    prov = result.provenance
    duration = prov.get("duration_s")
    if isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0:
        return float(duration)
    try:
        start = datetime.fromisoformat(str(context.first_value(prov, context.STARTED_KEYS)))
        end = datetime.fromisoformat(str(context.first_value(prov, context.FINISHED_KEYS)))
        return max((end - start).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _outcome(case: _Case, failing: set[str], allow_empty: bool) -> str:
    """error | failure | skipped | out (passes, with the status in system-out) | pass."""
    status = str(case.status)
    if case.status == Status.ERROR:
        return "error"
    if status in failing or (case.empty and not allow_empty):
        return "failure"
    if case.status in (Status.SKIPPED, Status.INCONCLUSIVE):
        return "skipped"
    return "pass" if case.status == Status.PASS else "out"


def render_junit(result: AuditResult) -> str:
    """Render the gates, findings and plugins as a JUnit XML test suite (see the module
    docstring for which status becomes what).

    Suppressed gate checks show ``suppressed (< min_cell)`` instead of their value.
    """
    result = for_plain_text(for_display(result))
    names = DisplayNames.from_result(result)
    failing = set(context.fail_on(result))
    allow_empty = result.config.get("allow_empty_gates") is True
    root = ET.Element("testsuites", name="future-audit")
    suite = ET.SubElement(root, "testsuite", name="future-audit")
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("status", str(result.status)),
        ("exit_code", str(result.exit_code)),
        ("fail_on", ",".join(sorted(failing))),
        ("schema_version", result.schema_version),
    ):
        ET.SubElement(props, "property", name=name, value=_clean(value))

    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for case in _cases(result, names):
        counts["tests"] += 1
        tc = ET.SubElement(suite, "testcase", classname=case.classname, name=_clean(case.name), time="0")
        status = str(case.status)
        message = _clean(f"{status}: {case.message}")
        details = _lines(case.details) or None
        outcome = _outcome(case, failing, allow_empty)
        if outcome == "error":
            counts["errors"] += 1
            ET.SubElement(tc, "error", message=message, type=status).text = details
        elif outcome == "failure":
            counts["failures"] += 1
            ET.SubElement(tc, "failure", message=message, type=status).text = details
        elif outcome == "skipped":
            counts["skipped"] += 1
            ET.SubElement(tc, "skipped", message=message)
            if details:
                ET.SubElement(tc, "system-out").text = details
        elif outcome == "out":
            ET.SubElement(tc, "system-out").text = _lines(message + (f"\n{case.details}" if case.details else ""))

    time = f"{_duration(result):.3f}"
    for element in (root, suite):
        for key, value in counts.items():
            element.set(key, str(value))
        element.set("time", time)
    started = context.first_value(result.provenance, context.STARTED_KEYS)
    if started is not None:
        suite.set("timestamp", _clean(started))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
