"""report.html: one self-contained page for readers who are not statisticians."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.core.results import AuditResult, PluginResult
from audit.report import context
from audit.report.figures import forest_svg, svg_data_uri
from audit.report.formatting import base_id, display_name, fmt_number, min_cell
from audit.report.suppression import for_display
from audit.report.templates import environment
from audit.report.view import (
    GapRow,
    GroupTable,
    gap_rows,
    group_tables,
    key_metric_for,
    status_symbol,
)


@dataclass(frozen=True)
class Figure:
    uri: str
    alt: str
    caption: str
    suppressed: tuple[str, ...]
    undefined: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GapSection:
    title: str
    rows: tuple[GapRow, ...]
    open: bool


@dataclass(frozen=True)
class PluginView:
    name: str
    principle: str
    version: str
    status: str
    symbol: str
    summary: str
    error: str
    checklist: tuple[str, ...]
    findings: tuple[context.FindingView, ...]
    tables: tuple[tuple[GroupTable, Figure | None], ...]
    gaps: tuple[GapSection, ...]
    methods: tuple[tuple[str, context.Node], ...]
    settings: context.Node
    warnings: tuple[str, ...]


def _figure(table: GroupTable) -> Figure | None:
    forest = table.forest
    if forest is None:
        return None
    svg = forest_svg(forest)
    if svg is None and not forest.suppressed and not forest.undefined:
        return None
    name = display_name(forest.metric_id)
    what = f"{name} by {' × '.join(table.grouping)}"
    if table.label is not None:
        what += f" ({table.label})"
    caption = f"{what}. Dots: estimate per group; whiskers: confidence interval"
    if forest.overall is not None:
        caption += f"; dashed line: overall ({fmt_number(forest.metric_id, forest.overall)})"
    if any(p.under_powered for p in forest.points):
        caption += "; open dots: under-powered groups"
    return Figure(
        uri=svg_data_uri(svg) if svg is not None else "",
        alt=f"Forest plot of {what}",
        caption=caption + ".",
        suppressed=forest.suppressed,
        undefined=forest.undefined,
    )


def _gap_sections(plugin: PluginResult, limit: int) -> tuple[GapSection, ...]:
    """The key metric's gaps first (open when short), every other gap in a closed section."""
    rows = gap_rows(plugin, limit)
    key = key_metric_for(plugin, {base_id(r.metric_id) for r in rows})
    main = tuple(r for r in rows if key is not None and base_id(r.metric_id) == key)
    rest = tuple(r for r in rows if r not in main)
    sections = []
    if main:
        sections.append(GapSection(f"{display_name(key)} gaps", main, len(main) <= 40))
    if rest:
        sections.append(GapSection("Other gaps" if main else "Gaps", rest, not main and len(rest) <= 12))
    return tuple(sections)


def plugin_view(plugin: PluginResult, limit: int) -> PluginView:
    tables = group_tables(plugin, limit)
    return PluginView(
        name=plugin.plugin,
        principle=plugin.principle,
        version=plugin.version,
        status=str(plugin.status),
        symbol=status_symbol(plugin.status),
        summary=plugin.summary,
        error=plugin.error or "",
        checklist=plugin.checklist,
        findings=tuple(context.finding_view(f) for f in plugin.findings),
        tables=tuple((t, _figure(t)) for t in tables),
        gaps=_gap_sections(plugin, limit),
        methods=tuple(context.methods(plugin)),
        settings=context.tree(plugin.settings),
        warnings=plugin.warnings,
    )


def html_context(result: AuditResult) -> dict[str, Any]:
    result = for_display(result)
    limit = min_cell(result)
    return {
        **context.header(result),
        "plugins": [plugin_view(p, limit) for p in result.plugins],
        "gates": [context.gate_view(g, limit) for g in result.gates],
        "warnings": context.all_warnings(result),
        "provenance": context.tree(result.provenance),
        "data_summary": context.tree(result.data_summary) if result.data_summary else None,
        "config": context.tree(result.config) if result.config else None,
        "schema_version": result.schema_version,
    }


def render_html(result: AuditResult) -> str:
    """Render the audit as one self-contained HTML page.

    The page has inline CSS (Okabe–Ito colours, a print stylesheet), no scripts and no
    external resources; figures are embedded SVG data URIs. Every string from the result is
    escaped, and suppressed cells (``Metric.suppressed``, ``GateCheck.suppressed``) show only
    ``suppressed (< min_cell)``.

    Parameters
    ----------
    result : AuditResult
        The audit to render; nothing else is read.

    Returns
    -------
    str
        The HTML document.
    """
    return environment().get_template("report.html.j2").render(html_context(result))
