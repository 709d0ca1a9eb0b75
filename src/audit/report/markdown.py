"""summary.md: a compact summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

Plain Markdown without HTML. Every string that comes from the data (group names, messages,
expressions) goes through :func:`md_escape`: control and bidi characters are removed,
Markdown punctuation is backslash-escaped and ``<``, ``>``, ``&`` become entities, so a
group name can neither break a table, reorder a sentence nor inject a link, an image or a
tag. Names are shown shortened, in tables and in messages (:mod:`audit.report.text`).

Short lines: every gate that does not hold gets a table with one row per group that fails
or cannot be decided (named in words, :mod:`audit.report.names`; its value, interval, the
threshold and why it is undecided); findings
and warnings are one bullet each of at most :data:`LINE_LIMIT` characters, cut at a
sentence where they are longer (report.html has them in full).
"""

from __future__ import annotations

import re

from audit.core.results import AuditResult, GateCheck, GateResult, PluginResult, Status
from audit.report import context
from audit.report.calibration import is_calibration, overall_values
from audit.report.formatting import (
    POINTS_IDS,
    SIGNED_POINTS_IDS,
    base_id,
    check_text,
    display_name,
    fmt_number,
    is_rate,
    min_cell,
    suppressed_why,
)
from audit.report.names import DisplayNames
from audit.report.suppression import for_display
from audit.report.text import clean, for_plain_text, shorten
from audit.report.universality import (
    development_site,
    hidden_sites,
    is_universality,
    key_metric,
    ordered_sites,
    pooled_records,
    site_column,
    site_name,
)
from audit.report.view import Cell, count_cell, group_tables, key_metric_for, metric_cell

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}|~!#])")
_ICON = {
    "PASS": "✅",
    "WARN": "⚠️",
    "FAIL": "❌",
    "INCONCLUSIVE": "❔",
    "ERROR": "💥",
    "SKIPPED": "⏭️",
}
_OPS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}
_REFERENCE = {"best": "best group", "overall": "all patients"}
# The longest bullet, in characters of Markdown source.
LINE_LIMIT = 200
# Groups listed per gate; the rest are counted (a pull-request comment holds 65,536 characters).
MAX_CHECK_ROWS = 25
# Sites listed in the universality plugin's table; the rest are counted.
MAX_SITES = 25
_SENTENCE_END = re.compile(r"(?<=[.;!?])\s+")
_PARTIAL_ESCAPE = re.compile(r"(&[a-z]*|\\+)$")


def md_escape(text: object) -> str:
    """Make any string inert inside Markdown text and table cells (one line), without
    control or bidi characters (:func:`~audit.report.text.clean`)."""
    s = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def threshold_text(metric_id: str, operator: str, threshold: float) -> str:
    """``≤ 5.0 pp``: a threshold in the metric's own units (a gap's sign left out)."""
    return f"{_OPS.get(operator, operator)} {fmt_number(metric_id, threshold).removeprefix('+')}"


def baseline_text(metric_id: str, offset: float) -> str:
    """``baseline + 2.0 pp``: a baseline gate's threshold, the offset in the metric's units
    (a difference of rates in percentage points, whether or not the metric is a gap)."""
    if offset == 0:
        return "baseline"
    amount = abs(offset)
    if is_rate(base_id(metric_id)) or metric_id in POINTS_IDS or metric_id in SIGNED_POINTS_IDS:
        shown = f"{round(amount * 100, 1) + 0.0:.1f} pp"
    else:
        shown = fmt_number(metric_id, amount).removeprefix("+")
    return f"baseline {'+' if offset > 0 else '-'} {shown}"


def gate_threshold_text(gate: GateResult) -> str:
    """``≤ 5.0 pp``, or for a baseline gate ``≤ baseline + 2.0 pp``: what the gate holds
    every value to (a baseline gate's numbers differ from group to group)."""
    metric_id = gate.metric.rsplit(".", 1)[-1]
    if gate.baseline is not None:
        return f"{_OPS.get(gate.operator, gate.operator)} {baseline_text(metric_id, gate.baseline['offset'])}"
    return threshold_text(metric_id, gate.operator, gate.threshold)


def check_threshold_text(gate: GateResult, check: GateCheck) -> str:
    """The threshold one value was held to: a baseline gate's per-group number (``≤ 5.6 pp``),
    ``no baseline value`` where it had none; a suppressed check shows only the rule, as its
    number would give the baseline's value of a group that is suppressed now."""
    if gate.baseline is None or check.suppressed:
        return gate_threshold_text(gate)
    if check.threshold is None:
        return "no baseline value"
    return threshold_text(gate.metric.rsplit(".", 1)[-1], gate.operator, check.threshold)


def cell_text(cell: Cell) -> str:
    """A table cell; a suppressed one says which small count hides it when the view knows
    (``suppressed (fewer than 10 with the condition)``)."""
    if cell.state == "suppressed" and getattr(cell, "why", ""):
        return f"suppressed ({cell.why})"
    return cell.full


def fit_line(prefix: str, text: object, limit: int = LINE_LIMIT) -> str:
    """``prefix`` and as much of ``text`` (escaped) as fits in ``limit`` characters: whole
    sentences where one fits, else the first cut at a word, marked with "…"."""
    room = limit - len(prefix)
    whole = md_escape(text)
    if len(whole) <= room:
        return prefix + whole
    kept = ""
    for sentence in _SENTENCE_END.split(clean(text)):
        candidate = f"{kept} {md_escape(sentence)}".strip()
        if len(candidate) + 2 > room:
            break
        kept = candidate
    if not kept:
        cut = whole[: max(room - 2, 0)].rsplit(" ", 1)[0]
        kept = _PARTIAL_ESCAPE.sub("", cut)  # no half entity (&am) or lone backslash at the end
    return f"{prefix}{kept} …"


def _status(status: str) -> str:
    return f"{_ICON.get(status, '')} **{status}**".strip()


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _code(text: str) -> str:
    return f"`{clean(text).replace('`', '')}`".replace("|", "\\|")


_HOLDS = {"<=": lambda x, t: x <= t, ">=": lambda x, t: x >= t, "<": lambda x, t: x < t, ">": lambda x, t: x > t}


def _undecided_why(check, gate: GateResult, flags: dict, limit: int) -> str:
    """Why a gate check is INCONCLUSIVE, in a few words (the rules of core.gates.check_value)."""
    if check.suppressed:
        return f"suppressed: it {suppressed_why(limit)}"
    if check.value is None:
        return "undefined"
    key = (tuple(sorted((check.group or {}).items())), check.label, check.reference)
    if "under_powered" in flags.get(key, ()):
        return "under-powered group"
    threshold = check.threshold if gate.baseline is not None else gate.threshold
    if threshold is None:
        return "no baseline value to compare with"
    holds = _HOLDS.get(gate.operator)
    if check.ci is not None and holds is not None and not any(holds(x, threshold) for x in check.ci):
        return "beyond the threshold, but not once corrected for the other comparisons"
    return "its interval includes the threshold"


def _gate_detail(g: GateResult, plugins: dict[str, PluginResult], names: DisplayNames, limit: int) -> list[str]:
    """The groups a gate does not hold for: one table row each, with value and threshold."""
    metric_id = g.metric.rsplit(".", 1)[-1]
    head = f"**{_code(g.expression)}**"
    if g.status == Status.PASS or g.status == Status.ERROR:
        return []
    if not g.checks:
        return ["", fit_line(f"{head}: ", g.message)]
    bad = [c for c in g.checks if c.status != Status.PASS]
    plugin = plugins.get(g.metric.rpartition(".")[0])
    flags = {
        (tuple(sorted((m.group or {}).items())), m.label, m.reference): m.flags
        for m in (plugin.metrics if plugin is not None else ()) if m.id == metric_id
    }
    threshold = gate_threshold_text(g)
    lines = ["", (f"{head}: {len(bad)} of {len(g.checks)} values fail or cannot be decided against "
                  f"{md_escape(names.metric(metric_id))} {md_escape(threshold)} ({md_escape(g.policy)} policy).")]
    if g.empty:
        lines.append("None of them can be judged, so the gate does not hold.")
    labelled = any(c.label for c in bad)
    compared = any(c.reference for c in bad)
    headers = (["Group"] + (["Label"] if labelled else []) + (["Compared with"] if compared else [])
               + ["Value (95% CI)", "Threshold", "Status"])
    rows = []
    for c in bad[:MAX_CHECK_ROWS]:
        status = _status(str(c.status))
        if c.status == Status.INCONCLUSIVE:
            status += f": {_undecided_why(c, g, flags, limit)}"
        row = [md_escape(names.group(c.group) if not c.detail else
                         (c.detail if not c.group else f"{names.group(c.group)}, {c.detail}"))]
        if labelled:
            row.append(md_escape(shorten(c.label or "—")))
        if compared:
            row.append(md_escape(_REFERENCE.get(c.reference or "", c.reference or "—")))
        value = "suppressed" if c.suppressed else check_text(metric_id, c.value, c.ci, c.suppressed, limit)
        row += [md_escape(value), md_escape(check_threshold_text(g, c)), status]
        rows.append(row)
    lines += ["", *_table(headers, rows)]
    if len(bad) > MAX_CHECK_ROWS:
        lines += ["", f"… and {len(bad) - MAX_CHECK_ROWS} more; technical-report.html lists every group."]
    return lines


def _finding_line(f) -> str:
    prefix = f"- {_status(str(f.status))} {md_escape(f.title)}"
    if f.threshold is not None and f.metric:
        metric_id = f.metric.rsplit(".", 1)[-1]
        value = fmt_number(metric_id, f.threshold).removeprefix("+")
        prefix += f" (threshold {md_escape(value)})"
    return fit_line(prefix + ": ", f.message)


def _plugin_lines(plugin: PluginResult, limit: int, names: DisplayNames) -> list[str]:
    lines = [
        f"### {_status(str(plugin.status))} {md_escape(plugin.principle)} ({md_escape(plugin.plugin)})",
        "",
        md_escape(plugin.summary),
    ]
    if plugin.error:
        lines += ["", fit_line("Error: ", plugin.error)]
    keyed = [f for f in plugin.findings if str(f.status) != "PASS"] or list(plugin.findings)
    if keyed:
        lines.append("")
        lines += [_finding_line(f) for f in keyed]
    if is_universality(plugin):
        return lines + universality_lines(plugin, limit, names)
    if is_calibration(plugin):
        return lines + calibration_lines(plugin, limit)
    # Only the plugin's key metric: in multi-label mode the underdiagnosis rate, not every
    # label's FNR (a pull-request comment holds 65,536 characters).
    key = key_metric_for(plugin, {m.id for m in plugin.metrics})
    for table in group_tables(plugin, limit, names):
        if table.key_metric is None or table.key_metric != key or not table.grouping:
            continue
        name = display_name(table.key_metric)
        lines += ["", f"**{md_escape(name)} by {md_escape(names.grouping(table.grouping))}**", ""]
        rows = [
            [
                f"**{md_escape(r.name or r.label)}**" if r.overall else md_escape(r.name or r.label),
                md_escape(cell_text(r.cells[0])),
                md_escape(cell_text(r.cells[table.key_index])),
                md_escape("; ".join(r.flags)) or "",
            ]
            for r in table.rows
        ]
        lines += _table(["Group", "n", f"{md_escape(name)} (CI)", "Flags"], rows)
    return lines


def universality_lines(plugin: PluginResult, limit: int, names: DisplayNames) -> list[str]:
    """The key metric by site (at most :data:`MAX_SITES` sites whose value is published: the
    development site, then the largest; the rest counted), then the pooled value and the
    prediction interval."""
    col = site_column(plugin)
    if col is None:
        return []
    key = key_metric(plugin)
    name = display_name(key)
    dev = development_site(plugin)
    published = ordered_sites(plugin, col, names)
    sites = [(s, r) for s, r in published if key in r and not r[key].suppressed and r[key].value is not None]
    lines = ["", f"**{md_escape(name)} by site**", ""]
    rows = []
    for site, recs in sites[:MAX_SITES]:
        hidden = any(m.suppressed for m in recs.values())
        label = md_escape(site_name(names, col, site, dev, marked=True))
        rows.append([f"**{label}**" if site == dev else label,
                     md_escape(cell_text(count_cell(recs, "n", hidden, limit))),
                     md_escape(cell_text(metric_cell(recs.get(key), limit))),
                     md_escape("; ".join(dict.fromkeys(f for m in recs.values() for f in m.flags))) or ""])
    if rows:
        lines += _table(["Site", "n", f"{md_escape(name)} (95% CI)", "Flags"], rows)
    else:
        lines.append("No site has a value to show.")
    notes = []
    if len(sites) > MAX_SITES:
        notes.append(f"{len(sites) - MAX_SITES} more sites with a published {md_escape(name)} (the smallest) are in "
                     "the full report.")
    without = len(published) - len(sites)
    if without:
        notes.append(f"{without} further site{'s' if without != 1 else ''} without an {md_escape(name)} to show "
                     "(undefined or hidden) are in the full report." if name[:1] in "AEIOU" else
                     f"{without} further site{'s' if without != 1 else ''} without a {md_escape(name)} to show "
                     "(undefined or hidden) are in the full report.")
    hidden_sites_ = hidden_sites(plugin, col)
    if hidden_sites_:
        plural = "s" if hidden_sites_ != 1 else ""
        notes.append(f"{hidden_sites_} site{plural} not shown: each {suppressed_why(limit)}.")
    pooled = pooled_records(plugin, key)
    p, lo, hi = pooled.get("pooled"), pooled.get("pi_low"), pooled.get("pi_high")
    if p is not None:
        if p.suppressed or p.value is None:
            text = f"Pooled {md_escape(name)}: {md_escape(cell_text(metric_cell(p, limit)))}."
        else:
            text = f"Pooled over {p.n} sites: {md_escape(cell_text(metric_cell(p, limit)))}"
            if lo is not None and hi is not None and lo.value is not None and hi.value is not None \
                    and not (lo.suppressed or hi.suppressed):
                text += (f"; 95% prediction interval for a new site: {fmt_number(key, lo.value)} to "
                         f"{fmt_number(key, hi.value)}")
            text += "."
        notes.insert(0, text)
    if notes:
        lines += ["", " ".join(notes)]
    return lines


def calibration_lines(plugin: PluginResult, limit: int) -> list[str]:
    """The calibration of all patients, one line per label."""
    lines = []
    for label, values in overall_values(plugin, limit):
        head = f"Calibration of all patients{f' ({md_escape(shorten(label))})' if label is not None else ''}: "
        lines += ["", head + md_escape(", ".join(f"{DisplayNames.metric(mid)} {text}" for mid, text in values)) + "."]
    return lines


def _full_report(result: AuditResult) -> str:
    """Where the full numbers are: the technical report when this run writes it."""
    formats = (result.config.get("report") or {}).get("formats") or ()
    for fmt, name in (("technical", "technical-report.html"), ("html", "report.html"), ("json", "results.json")):
        if fmt in formats:
            return f" _Full report: {name}._"
    return ""


def render_markdown(result: AuditResult) -> str:
    """Render the audit as a short Markdown summary.

    Contents: overall status, the gates table and, for each gate that does not hold, the
    groups that fail or cannot be decided (value, interval, threshold, why); then per
    plugin a status line, its summary, its non-passing findings (all findings when every
    one passes) as short bullets and a table of the key metric (``underdiagnosis_rate``,
    else ``fnr``) per group. Suppressed cells show only ``suppressed`` and which small
    count hides them.
    """
    result = for_plain_text(for_display(result))
    names = DisplayNames.from_result(result)
    limit = min_cell(result)
    head = context.header(result)
    lines = [
        f"## {md_escape(head['title'])}: {_status(head['status'])}",
        "",
        f"- Finished: {md_escape(head['finished_at'])}",
        f"- Exit code: {result.exit_code} (the audit fails on: {md_escape(head['fail_on'])})",
    ]
    for label, refs in (
        ("Data", head["data_files"]),
        ("Reference data", head["reference_files"]),
        ("Model", head["model_files"]),
    ):
        if refs:
            names_ = ", ".join(
                md_escape(f.name)
                + (f" (sha256 {f.short}…)" if f.short else "")
                + (f" ({md_escape(f.fingerprint)})" if f.fingerprint else "")
                for f in refs
            )
            lines.append(f"- {label}: {names_}")
    lines += ["", "### Gates", ""]
    if result.gates:
        rows = [[_code(g.expression), _status(str(g.status)), md_escape(g.policy), md_escape(g.message)]
                for g in result.gates]
        lines += _table(["Gate", "Status", "Policy", "Message"], rows)
        plugins = {p.plugin: p for p in result.plugins}
        for g in result.gates:
            lines += _gate_detail(g, plugins, names, limit)
    else:
        lines.append("No gates were configured.")
    for plugin in result.plugins:
        lines += [""] + _plugin_lines(plugin, limit, names)
    warnings = context.all_warnings(result)
    if warnings:
        lines += ["", "### Warnings", ""]
        lines += [fit_line(f"- {md_escape(source)}: ", text) for source, text in warnings]
    lines += [
        "",
        f"_Values based on a count below {limit} are suppressed._" + _full_report(result),
    ]
    return "\n".join(lines) + "\n"
