"""junit.xml: the audit as a test suite, so CI systems show gates as tests.

One testcase per gate (classname ``future-audit.gates``, name = the gate expression); with no
gates, one per plugin (classname ``future-audit.plugins``). A testcase *fails* exactly when
its status is one of ``config["fail_on"]`` (the statuses that make the audit exit 1; default
FAIL). ERROR is always an ``<error>``, SKIPPED a ``<skipped>``; any other status that is not
PASS (WARN, INCONCLUSIVE not in fail_on) passes with the status and message in
``<system-out>``, except a gate with nothing to judge, which fails as the exit code does
(unless ``run.allow_empty_gates``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from audit.core.results import AuditResult, Status
from audit.report import context
from audit.report.formatting import check_text, group_label, min_cell
from audit.report.suppression import for_display
from audit.report.text import clean, for_plain_text, shorten

# Characters XML 1.0 cannot carry at all; ElementTree would write them and break parsers.
# text.clean removes them already; this stays as the guarantee for the XML itself.
_INVALID_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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


def _gate_cases(result: AuditResult) -> list[_Case]:
    limit = min_cell(result)
    cases = []
    for g in result.gates:
        metric_id = g.metric.rsplit(".", 1)[-1]
        lines = []
        for c in g.checks:
            if c.status == Status.PASS:
                continue
            where = group_label(c.group)
            if c.label:
                where += f" [{shorten(c.label)}]"
            if c.reference:
                where += f" vs {c.reference}"
            value = check_text(metric_id, c.value, c.ci, c.suppressed, limit)
            lines.append(f"{where}: {value} -> {c.status}")
        cases.append(_Case("future-audit.gates", g.expression, g.status, g.message, "\n".join(lines),
                           empty=g.empty))
    return cases


def _plugin_cases(result: AuditResult) -> list[_Case]:
    cases = []
    for p in result.plugins:
        message = p.summary + (f" Error: {p.error}" if p.error else "")
        details = "\n".join(f"{f.status}: {f.message}" for f in p.findings if f.status != Status.PASS)
        cases.append(_Case("future-audit.plugins", p.plugin, p.status, message, details))
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


def render_junit(result: AuditResult) -> str:
    """Render the gates (or, without gates, the plugins) as a JUnit XML test suite.

    Suppressed gate checks show ``suppressed (< min_cell)`` instead of their value.
    """
    result = for_plain_text(for_display(result))
    failing = set(context.fail_on(result))
    allow_empty = result.config.get("allow_empty_gates") is True
    cases = _gate_cases(result) if result.gates else _plugin_cases(result)
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
    for case in cases:
        counts["tests"] += 1
        tc = ET.SubElement(suite, "testcase", classname=case.classname, name=_clean(case.name), time="0")
        status = str(case.status)
        message = _clean(f"{status}: {case.message}")
        if case.status == Status.ERROR:
            counts["errors"] += 1
            ET.SubElement(tc, "error", message=message, type=status).text = _lines(case.details) or None
        elif status in failing or (case.empty and not allow_empty):
            counts["failures"] += 1
            ET.SubElement(tc, "failure", message=message, type=status).text = _lines(case.details) or None
        elif case.status == Status.SKIPPED:
            counts["skipped"] += 1
            ET.SubElement(tc, "skipped", message=message)
        elif case.status != Status.PASS:
            out = message + (f"\n{case.details}" if case.details else "")
            ET.SubElement(tc, "system-out").text = _lines(out)

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
