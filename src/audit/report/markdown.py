"""summary.md: a compact summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

Plain Markdown without HTML. Every string that comes from the data (group names, messages,
expressions) goes through :func:`md_escape`: control and bidi characters are removed,
Markdown punctuation is backslash-escaped and ``<``, ``>``, ``&`` become entities, so a
group name can neither break a table, reorder a sentence nor inject a link, an image or a
tag. Names are shown shortened, in tables and in messages (:mod:`audit.report.text`).
"""

from __future__ import annotations

import re

from audit.core.results import AuditResult, PluginResult
from audit.report import context
from audit.report.formatting import display_name, min_cell
from audit.report.suppression import for_display
from audit.report.text import clean, for_plain_text
from audit.report.view import group_tables, key_metric_for

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}|~!#])")
_ICON = {
    "PASS": "✅",
    "WARN": "⚠️",
    "FAIL": "❌",
    "INCONCLUSIVE": "❔",
    "ERROR": "💥",
    "SKIPPED": "⏭️",
}


def md_escape(text: object) -> str:
    """Make any string inert inside Markdown text and table cells (one line), without
    control or bidi characters (:func:`~audit.report.text.clean`)."""
    s = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def _status(status: str) -> str:
    return f"{_ICON.get(status, '')} **{status}**".strip()


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _plugin_lines(plugin: PluginResult, limit: int) -> list[str]:
    lines = [
        f"### {_status(str(plugin.status))} {md_escape(plugin.principle)} ({md_escape(plugin.plugin)})",
        "",
        md_escape(plugin.summary),
    ]
    if plugin.error:
        lines += ["", f"Error: {md_escape(plugin.error)}"]
    keyed = [f for f in plugin.findings if str(f.status) != "PASS"] or list(plugin.findings)
    if keyed:
        lines.append("")
        lines += [f"- {_status(str(f.status))}: {md_escape(f.message)}" for f in keyed]
    # Only the plugin's key metric: in multi-label mode the underdiagnosis rate, not every
    # label's FNR (a pull-request comment holds 65,536 characters).
    key = key_metric_for(plugin, {m.id for m in plugin.metrics})
    for table in group_tables(plugin, limit):
        if table.key_metric is None or table.key_metric != key or not table.grouping:
            continue
        name = display_name(table.key_metric)
        lines += ["", f"**{md_escape(name)} by {md_escape(table.title)}**", ""]
        rows = [
            [
                f"**{md_escape(r.label)}**" if r.overall else md_escape(r.label),
                md_escape(r.cells[0].text),
                md_escape(r.cells[table.key_index].full),
                md_escape("; ".join(r.flags)) or "",
            ]
            for r in table.rows
        ]
        lines += _table(["Group", "n", f"{md_escape(name)} (CI)", "Flags"], rows)
    return lines


def render_markdown(result: AuditResult) -> str:
    """Render the audit as a short Markdown summary.

    Contents: overall status, the gates table, then per plugin a status line, its summary,
    its non-passing findings (all findings when every one passes) and a table of the key
    metric (``underdiagnosis_rate``, else ``fnr``) per group. Suppressed cells show only
    ``suppressed (< min_cell)``.
    """
    result = for_plain_text(for_display(result))
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
            names = ", ".join(
                md_escape(f.name)
                + (f" (sha256 {f.short}…)" if f.short else "")
                + (f" ({md_escape(f.fingerprint)})" if f.fingerprint else "")
                for f in refs
            )
            lines.append(f"- {label}: {names}")
    lines += ["", "### Gates", ""]
    if result.gates:
        rows = [
            [
                f"`{clean(g.expression).replace('`', '')}`".replace("|", "\\|"),
                _status(str(g.status)),
                md_escape(g.policy),
                md_escape(g.message),
            ]
            for g in result.gates
        ]
        lines += _table(["Gate", "Status", "Policy", "Message"], rows)
    else:
        lines.append("No gates were configured.")
    for plugin in result.plugins:
        lines += [""] + _plugin_lines(plugin, limit)
    warnings = context.all_warnings(result)
    if warnings:
        lines += ["", "### Warnings", ""]
        lines += [f"- {md_escape(source)}: {md_escape(text)}" for source, text in warnings]
    lines += [
        "",
        f"_Values based on a count below {limit} are suppressed. Full report: report.html._",
    ]
    return "\n".join(lines) + "\n"
