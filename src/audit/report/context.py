"""Report-wide pieces shared by the HTML and Markdown renderers: header facts, gates,
findings, methods, warnings and generic nested trees (provenance, settings, config).

:func:`first_screen` gathers what the first screen of the report shows above the verdict
table (``_first_screen.html.j2``): the model under audit (intended use, population, outcome,
from the attestations, or NOT STATED and which item to answer), the overall result with its
reason, thresholds and what FAIL and WARN mean (:func:`~audit.report.verdict.overall_view`),
and how well the model works overall (AUROC, sensitivity, specificity, share flagged against
prevalence, per label) with the operating point and its finding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.attestations import attestations_from_record
from audit.checklists import item_topic, ref
from audit.core.results import AuditResult, Finding, GateResult, Metric, PluginResult, Status
from audit.report.anchors import finding_anchor, plugin_anchor
from audit.report.calibration import is_calibration, overall_lines
from audit.report.formatting import (
    check_text,
    fmt_number,
    group_label,
    metric_parts,
    min_cell,
    scalar_text,
)
from audit.report.names import DisplayNames
from audit.report.text import shorten
from audit.report.universality import is_universality
from audit.report.verdict import overall_view
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
    metric_words: str = ""  # "gap in missed cases (FNR)"
    group_name: str = ""  # the group in words; empty for a finding on every group


@dataclass(frozen=True)
class CheckView:
    group: str
    label: str
    reference: str
    value: str
    status: str
    symbol: str
    suppressed: bool
    group_name: str = ""  # the group in words


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


def finding_view(f: Finding, plugin: str = "", display: DisplayNames | None = None) -> FindingView:
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
        metric_words=DisplayNames.metric(f.metric) if f.metric else "",
        group_name=(display or DisplayNames()).group(f.group) if f.group else "",
    )


def findings_have_groups(findings) -> bool:
    """Whether a findings table needs its Group column: not when every finding is on all groups."""
    return any(getattr(f, "group", "") for f in findings)


def gate_view(g: GateResult, limit: int, display: DisplayNames | None = None) -> GateView:
    display = display or DisplayNames()
    metric_id = g.metric.rsplit(".", 1)[-1]
    checks = tuple(
        CheckView(
            group=group_label(c.group) if not c.detail else c.detail,
            label=shorten(c.label or ""),
            reference=c.reference or "",
            value=check_text(metric_id, c.value, c.ci, c.suppressed, limit),
            status=str(c.status),
            symbol=status_symbol(c.status),
            suppressed=c.suppressed,
            group_name=display.group(c.group) if not c.detail else (
                c.detail if not c.group else f"{display.group(c.group)}, {c.detail}"),
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


# -- the first screen ----------------------------------------------------------------------
# What the model is for, whom it is for and what it predicts: the checklist items whose
# answers say so, in the order they are looked up (the first answered one is shown).
MODEL_FACTS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Intended use", (("claim-2024", "3"), ("future-ai", "Usability 1"), ("claim-2024", "41"))),
    ("Population", (("tripod-ai", "3b"), ("tripod-ai", "6b"), ("claim-2024", "7"))),
    ("Outcome", (("tripod-ai", "8a"), ("claim-2024", "14"))),
)
NOT_STATED = "NOT STATED"
# Characters of an answer shown on the first screen; the checklist section quotes it whole.
FACT_LIMIT = 600
# Overall metrics of the performance block, in order: (metric id, name in the block).
PERFORMANCE_IDS = (
    ("auroc", "AUROC"),
    ("sensitivity", "Sensitivity"),
    ("specificity", "Specificity"),
    ("prevalence", "Prevalence"),
    ("flagged", "Flagged"),
)


@dataclass(frozen=True)
class ModelFact:
    """One line of the "Model under audit" box.

    ``stated``: an attestation answers it (``text``, with ``source``, ``by`` and ``date``);
    otherwise ``text`` is NOT STATED and ``hint`` says which item to answer. ``note``: what
    the configuration says meanwhile (the label column, for the outcome).
    """

    what: str
    stated: bool
    text: str
    source: str = ""
    by: str = ""
    date: str = ""
    hint: str = ""
    note: str = ""


@dataclass(frozen=True)
class PerformanceItem:
    id: str
    name: str
    words: str  # the metric in plain words
    value: str
    interval: str
    state: str  # ok | undefined | suppressed | missing | derived


@dataclass(frozen=True)
class OperatingPoint:
    threshold: str  # "0.053"
    method: str  # how it was chosen
    status: str  # the operating-point finding's status, or ""
    symbol: str
    message: str
    warn: bool  # show it prominently (WARN or worse)
    anchor: str = ""
    # One line for the first screen: the numbers that make it poor (the message has the rest).
    headline: str = ""


@dataclass(frozen=True)
class PerformanceView:
    """How well the model works for all patients, for one label, at its operating point."""

    plugin: str
    label: str  # the label's name ("covid"; "any finding" in multi-label mode)
    phrase: str  # "patients with covid"
    items: tuple[PerformanceItem, ...]
    flagged_sentence: str  # "The model flags 63.5% of patients; 5.7% have covid."
    operating_point: OperatingPoint | None
    caption: str
    anchor: str = ""


def _label_names(result: AuditResult) -> list[str]:
    for p in result.plugins:
        labels = p.settings.get("labels")
        if isinstance(labels, list | tuple) and labels:
            return [str(x) for x in labels]
    data = result.config.get("data")
    labels = data.get("label") if isinstance(data, Mapping) else None
    if isinstance(labels, str):
        return [labels]
    return [str(x) for x in labels] if isinstance(labels, list | tuple) else []


def model_facts(result: AuditResult, display: DisplayNames | None = None) -> list[ModelFact]:
    """Intended use, population and outcome: the team's answers (:data:`MODEL_FACTS`), or
    NOT STATED with the item to answer."""
    display = display or DisplayNames.from_result(result)
    record = attestations_from_record(result.attestations)
    facts = []
    for what, items in MODEL_FACTS:
        answer = next(((cid, i, record[cid][i]) for cid, i in items if i in record.get(cid, {})), None)
        note = ""
        if what == "Outcome":
            labels = _label_names(result)
            if labels:
                named = ", ".join(f"{shorten(lab)} ({display.patients(lab)})" for lab in labels)
                note = f"The audit reads the outcome from the label column{'s' if len(labels) > 1 else ''} {named}, 1 = has it."
        if answer is not None:
            cid, item_id, a = answer
            facts.append(ModelFact(what, True, shorten(" ".join(a.answer.split()), FACT_LIMIT), ref(cid, item_id),
                                   a.by or "", a.date or "", note=note))
            continue
        cid, item_id = items[0]
        topic = item_topic(cid, item_id)
        hint = f"Answer {ref(cid, item_id)}" + (f" ({topic})" if topic else "") + " in the attestations."
        facts.append(ModelFact(what, False, NOT_STATED, hint=hint, note=note))
    return facts


def _overall(plugin: PluginResult, metric_id: str, label: str | None) -> Metric | None:
    return next((m for m in plugin.metrics if m.id == metric_id and not m.group and m.label == label), None)


def _op_finding(plugin: PluginResult, label: str | None) -> Finding | None:
    ids = ("operating_point",) if label is None else (f"operating_point_{label}", "operating_point")
    for fid in ids:
        f = next((f for f in plugin.findings if f.id == fid), None)
        if f is not None:
            return f
    return None


def _derived_flagged(plugin: PluginResult, label: str | None) -> float | None:
    """Share flagged = sensitivity × prevalence + (1 − specificity) × (1 − prevalence), when
    the plugin did not report ``flagged`` and all three are shown."""
    parts = [_overall(plugin, i, label) for i in ("sensitivity", "specificity", "prevalence")]
    if any(m is None or m.suppressed or m.value is None for m in parts):
        return None
    sens, spec, prev = (m.value for m in parts)  # type: ignore[union-attr]
    return sens * prev + (1 - spec) * (1 - prev)


def performance(result: AuditResult, display: DisplayNames | None = None) -> list[PerformanceView]:
    """Overall performance per label of every plugin that reports it (overall metrics, group
    None): AUROC, sensitivity, specificity, prevalence and the share flagged, with intervals;
    suppression applied (pass the result through ``for_display`` first)."""
    display = display or DisplayNames.from_result(result)
    limit = min_cell(result)
    out = []
    for plugin in result.plugins:
        # The universality plugin's overall values are of every site together (with the
        # development data when that is the reference data): its own section shows them.
        if plugin.status in (Status.ERROR, Status.SKIPPED) or is_universality(plugin):
            continue
        ids = {i for i, _ in PERFORMANCE_IDS}
        labels = list(dict.fromkeys(m.label for m in plugin.metrics if not m.group and m.id in ids))
        settings_labels = plugin.settings.get("labels")
        single = str(settings_labels[0]) if isinstance(settings_labels, list | tuple) and len(settings_labels) == 1 else None
        thresholds = plugin.settings.get("thresholds")
        for label in labels:
            if not any(_overall(plugin, i, label) for i in ("auroc", "sensitivity", "specificity")):
                continue
            name = label if label is not None else single
            items = []
            for metric_id, title in PERFORMANCE_IDS:
                m = _overall(plugin, metric_id, label)
                if m is None:
                    if metric_id == "flagged" and (v := _derived_flagged(plugin, label)) is not None:
                        items.append(PerformanceItem(metric_id, title, DisplayNames.metric(metric_id),
                                                     fmt_number("prevalence", v), "", "derived"))
                    continue
                state = "suppressed" if m.suppressed else "undefined" if m.value is None else "ok"
                text, interval = metric_parts(m, limit)
                items.append(PerformanceItem(metric_id, title, DisplayNames.metric(metric_id), text, interval, state))
            by_id = {i.id: i for i in items}
            flagged_sentence = ""
            if "flagged" in by_id and "prevalence" in by_id and {by_id["flagged"].state, by_id["prevalence"].state} <= {"ok", "derived"}:
                flagged_sentence = (f"The model flags {by_id['flagged'].value} of all patients as positive, "
                                    f"against a prevalence of {by_id['prevalence'].value} "
                                    f"({display.patients(name)}).")
            threshold = _overall(plugin, "threshold", label)
            t_value = threshold.value if threshold is not None else None
            if t_value is None and isinstance(thresholds, Mapping) and name in thresholds:
                t_value = thresholds[name]
            finding = _op_finding(plugin, label)
            shown = {k: v.value for k, v in by_id.items() if v.state in ("ok", "derived")}
            headline = ""
            if {"flagged", "prevalence"} <= set(shown):
                headline = (f"the model flags {shown['flagged']} of all patients as positive, against a prevalence "
                            f"of {shown['prevalence']}")
                if {"sensitivity", "specificity"} <= set(shown):
                    headline += (f"; it finds {shown['sensitivity']} of those with the condition and clears "
                                 f"{shown['specificity']} of those without")
                headline += "."
            op = None
            if t_value is not None or finding is not None:
                op = OperatingPoint(
                    threshold="—" if t_value is None else f"{float(t_value):.3g}",
                    method=str(plugin.settings.get("threshold_method") or ""),
                    status=str(finding.status) if finding else "",
                    symbol=status_symbol(finding.status) if finding else "",
                    message=finding.message if finding else "",
                    warn=finding is not None and finding.status in (Status.WARN, Status.FAIL, Status.ERROR),
                    anchor=finding_anchor(plugin.plugin, finding.id) if finding else "",
                    headline=headline,
                )
            phrase = display.patients(name)
            caption = (f"How well the model works for all patients ({name or 'the outcome'}), at the operating point; "
                       "each value with its confidence interval.")
            if "flagged" in by_id and by_id["flagged"].state == "derived":
                caption += " The share flagged is worked out from sensitivity, specificity and prevalence."
            out.append(PerformanceView(plugin.plugin, shorten(name or "any finding"), phrase, tuple(items),
                                       flagged_sentence, op, caption, plugin_anchor(plugin.plugin)))
    return out


def first_screen(result: AuditResult, display: DisplayNames | None = None) -> dict[str, Any]:
    """The data of ``_first_screen.html.j2`` beyond the header's (status, symbol, exit code):
    ``model`` (:class:`ModelFact` list), ``overall`` (:class:`~audit.report.verdict.OverallView`),
    ``performance`` (:class:`PerformanceView` list), ``operating_point_warnings`` (the
    operating points whose finding WARNs, shown first) and ``calibration`` (the calibration
    plugin's line, :class:`~audit.report.calibration.CalibrationLine` list). Pass the result through
    :func:`~audit.report.suppression.for_display` first."""
    display = display or DisplayNames.from_result(result)
    perf = performance(result, display)
    limit = min_cell(result)
    return {
        "model": model_facts(result, display),
        "overall": overall_view(result, fail_on(result), display),
        "performance": perf,
        "operating_point_warnings": [p for p in perf if p.operating_point is not None and p.operating_point.warn],
        # "Calibration: slope 0.93 (0.81–1.05), observed/expected 1.02 (0.95–1.09)", per label.
        "calibration": [line for p in result.plugins if is_calibration(p) for line in overall_lines(p, limit)],
    }
