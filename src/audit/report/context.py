"""Report-wide pieces shared by the HTML and Markdown renderers: header facts, gates,
findings, methods, warnings and generic nested trees (provenance, settings, config)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.core.results import AuditResult, Finding, GateResult, PluginResult
from audit.report.anchors import finding_anchor
from audit.report.formatting import (
    check_text,
    fmt_number,
    group_label,
    min_cell,
    scalar_text,
)
from audit.report.text import shorten
from audit.report.view import status_symbol

FINISHED_KEYS = ("finished_at", "ended_at", "end_time", "finished")
STARTED_KEYS = ("started_at", "start_time", "started")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")

# settings key (and aliases) → plain-language name, for the "Methods" summary.
METHOD_KEYS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("threshold", "thresholds"), "Decision threshold"),
    (("threshold_method", "threshold_source", "threshold_rule"), "How the threshold was chosen"),
    (("prediction_rule",), "Prediction rule"),
    (("level", "interval_level", "ci_level", "confidence_level"), "Confidence level"),
    (("ci_method", "ci_methods", "interval_method", "interval_methods"), "Confidence intervals"),
    (("interval_method_rates",), "Intervals for rates"),
    (("interval_method_auroc_brier",), "Intervals for AUROC and Brier"),
    (("gap_definition",), "Gaps"),
    (("test", "gap_test", "test_method"), "Test for gaps"),
    (("test_method_rates",), "Test for gaps in rates"),
    (("test_method_auroc_brier",), "Test for gaps in AUROC and Brier"),
    (("correction", "multiplicity_correction", "multiplicity", "p_adjust"), "Multiplicity correction"),
    (("multiplicity_family", "correction_family"), "Tests corrected together"),
    (("n_bootstrap", "bootstrap_replicates", "n_resamples"), "Bootstrap replicates"),
    (("random_state", "seed"), "Random seed"),
    (("min_group_size", "min_group_n", "min_n"), "Minimum group size"),
    (("min_positives",), "Minimum positives per group"),
    (("min_negatives",), "Minimum negatives per group"),
    (("tolerance",), "Gap tolerance of the findings"),
    (("min_cell",), "Small-cell suppression below"),
)


@dataclass(frozen=True)
class Node:
    """A nested value for generic rendering: map, list or scalar."""

    kind: str
    text: str = ""
    entries: tuple = ()


@dataclass(frozen=True)
class FileRef:
    name: str
    sha256: str | None

    @property
    def short(self) -> str:
        """First 12 hex digits of a sha256; empty for anything else (see ``fingerprint``)."""
        return self.sha256[:12] if self.sha256 and _SHA256.match(self.sha256) else ""

    @property
    def fingerprint(self) -> str:
        """A non-sha256 identity, e.g. ``predictions:p`` for a predictions-only model."""
        return self.sha256 if self.sha256 and not self.short else ""


@dataclass(frozen=True)
class FindingView:
    id: str
    anchor: str
    status: str
    symbol: str
    title: str
    message: str
    metric: str
    group: str
    threshold: str
    checklist: tuple[str, ...]


@dataclass(frozen=True)
class CheckView:
    group: str
    label: str
    reference: str
    value: str
    status: str
    symbol: str
    suppressed: bool


@dataclass(frozen=True)
class GateView:
    expression: str
    status: str
    symbol: str
    policy: str
    message: str
    checks: tuple[CheckView, ...]


def tree(value: Any) -> Node:
    if isinstance(value, Mapping):
        if not value:
            return Node("scalar", "—")
        return Node("map", entries=tuple((str(k), tree(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        if all(not isinstance(v, Mapping | list | tuple) for v in value):
            return Node("scalar", ", ".join(scalar_text(v) for v in value) or "—")
        return Node("list", entries=tuple(tree(v) for v in value))
    return Node("scalar", scalar_text(value))


def first_value(mapping: Mapping, keys: tuple[str, ...]) -> Any:
    return next((mapping[k] for k in keys if k in mapping and mapping[k] is not None), None)


def file_refs(entry: Any, role: str | None = None) -> list[FileRef]:
    """Files named in a provenance entry: ``{"path", "sha256"}``, a list of those, or a
    mapping of role → such an entry (or → a sha256 string)."""
    if entry is None:
        return []
    if isinstance(entry, str):
        if role is not None and _SHA256.match(entry):
            return [FileRef(role, entry)]
        return [FileRef(entry, None)]
    if isinstance(entry, list | tuple):
        return [f for e in entry for f in file_refs(e, role)]
    if isinstance(entry, Mapping):
        name = first_value(entry, ("file", "name", "source", "path", "uri"))
        sha = entry.get("sha256")
        if name is not None or isinstance(sha, str):
            return [FileRef(str(name if name is not None else role), sha if isinstance(sha, str) else None)]
        return [f for k, v in entry.items() for f in file_refs(v, str(k))]
    return []


def fmt_time(value: Any) -> str:
    """``2024-05-01 10:00:12 UTC`` from an ISO 8601 string; anything else as it is."""
    if value is None:
        return "—"
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    text = f"{dt:%Y-%m-%d %H:%M:%S}"
    offset = dt.utcoffset()
    if offset is None:
        return text
    return f"{text} UTC" if not offset else f"{text} {dt:%z}"


def header(result: AuditResult) -> dict[str, Any]:
    prov = result.provenance
    report = result.config.get("report") or {}
    title = report.get("title") if isinstance(report, Mapping) else None
    return {
        "title": str(title) if title else "Model audit report",
        "finished_at": fmt_time(first_value(prov, FINISHED_KEYS)),
        "started_at": fmt_time(first_value(prov, STARTED_KEYS)),
        "data_files": file_refs(first_value(prov, ("data", "datasets"))),
        "reference_files": file_refs(prov.get("reference")),
        "model_files": file_refs(prov.get("model")),
        "model_kind": model_kind(result),
        "data_rows": data_rows(result),
        "status": str(result.status),
        "symbol": status_symbol(result.status),
        "exit_code": result.exit_code,
        "min_cell": min_cell(result),
        "fail_on": ", ".join(fail_on(result)),
    }


def model_kind(result: AuditResult) -> str:
    model = result.provenance.get("model")
    kind = model.get("kind") if isinstance(model, Mapping) else None
    return str(kind) if kind else ""


def data_rows(result: AuditResult) -> str:
    """``6,251 rows`` from the data summary (or the provenance), empty when unknown."""
    summary = result.data_summary
    rows = summary.get("rows")
    if rows is None and isinstance(summary.get("data"), Mapping):
        rows = summary["data"].get("rows")
    if rows is None and isinstance(result.provenance.get("data"), Mapping):
        rows = result.provenance["data"].get("rows_used")
    if isinstance(rows, int) and not isinstance(rows, bool):
        return f"{rows:,} rows"
    return ""


def fail_on(result: AuditResult) -> list[str]:
    """Statuses that make the audit exit 1 (``config["fail_on"]``, default FAIL)."""
    value = result.config.get("fail_on", ["FAIL"])
    if isinstance(value, str):
        value = [value]
    return [str(v).upper() for v in value]


def finding_view(f: Finding, plugin: str = "") -> FindingView:
    threshold = ""
    if f.threshold is not None:
        metric_id = f.metric.rsplit(".", 1)[-1] if f.metric else None
        threshold = fmt_number(metric_id, f.threshold) if metric_id else f"{f.threshold:g}"
        threshold = threshold.removeprefix("+")
    return FindingView(
        id=f.id,
        anchor=finding_anchor(plugin, f.id),
        status=str(f.status),
        symbol=status_symbol(f.status),
        title=f.title,
        message=f.message,
        metric=f.metric or "",
        group=group_label(f.group) if f.group is not None else "",
        threshold=threshold,
        checklist=f.checklist,
    )


def gate_view(g: GateResult, limit: int) -> GateView:
    metric_id = g.metric.rsplit(".", 1)[-1]
    checks = tuple(
        CheckView(
            group=group_label(c.group),
            label=shorten(c.label or ""),
            reference=c.reference or "",
            value=check_text(metric_id, c.value, c.ci, c.suppressed, limit),
            status=str(c.status),
            symbol=status_symbol(c.status),
            suppressed=c.suppressed,
        )
        for c in g.checks
    )
    return GateView(
        expression=g.expression,
        status=str(g.status),
        symbol=status_symbol(g.status),
        policy=g.policy,
        message=g.message,
        checks=checks,
    )


def methods(plugin: PluginResult) -> list[tuple[str, Node]]:
    """The settings a reader needs to judge the statistics, under plain names."""
    out = []
    for keys, name in METHOD_KEYS:
        value = first_value(plugin.settings, keys)
        if value is None:
            continue
        if name == "Confidence level" and isinstance(value, int | float) and 0 < value < 1:
            out.append((name, Node("scalar", f"{value * 100:g}%")))
        else:
            out.append((name, tree(value)))
    return out


def all_warnings(result: AuditResult) -> list[tuple[str, str]]:
    items = [("audit", w) for w in result.warnings]
    items += [(p.plugin, w) for p in result.plugins for w in p.warnings]
    return items
