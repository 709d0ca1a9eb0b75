"""report.html: one self-contained page for readers who are not statisticians."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.core.results import AuditResult, PluginResult
from audit.report import context
from audit.report.anchors import plugin_anchor
from audit.report.checklist_view import attested_by_principle, checklist_views
from audit.report.figures import forest_svgs, svg_data_uri
from audit.report.formatting import base_id, display_name, fmt_number, min_cell
from audit.report.methods import SUPPRESSION_RULE, MethodsView, methods_view
from audit.report.suppression import for_display
from audit.report.templates import environment
from audit.report.text import Names, shorten
from audit.report.verdict import NOT_ASSESSED, status_reason, verdict_rows
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
    """One forest plot, possibly in several parts (at most ``figures.MAX_ROWS`` groups each)."""

    uris: tuple[str, ...]
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
    anchor: str
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
    methods: MethodsView
    warnings: tuple[str, ...]


def _figure(table: GroupTable) -> Figure | None:
    forest = table.forest
    if forest is None:
        return None
    svgs = forest_svgs(forest)
    if not svgs and not forest.suppressed and not forest.undefined:
        return None
    name = display_name(forest.metric_id)
    what = f"{name} by {' × '.join(map(shorten, table.grouping))}"
    if table.label is not None:
        what += f" ({shorten(table.label)})"
    caption = f"{what}. Dots: estimate per group; whiskers: confidence interval"
    if forest.overall is not None:
        caption += f"; dashed line: overall ({fmt_number(forest.metric_id, forest.overall)})"
    if any(p.under_powered for p in forest.points):
        caption += "; open dots: under-powered groups"
    if len(svgs) > 1:
        caption += f". {len(forest.points)} groups in {len(svgs)} parts, on one scale"
    return Figure(
        uris=tuple(svg_data_uri(svg) for svg in svgs),
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
        anchor=plugin_anchor(plugin.plugin),
        principle=plugin.principle,
        version=plugin.version,
        status=str(plugin.status),
        symbol=status_symbol(plugin.status),
        summary=plugin.summary,
        error=plugin.error or "",
        checklist=plugin.checklist,
        findings=tuple(context.finding_view(f, plugin.plugin) for f in plugin.findings),
        tables=tuple((t, _figure(t)) for t in tables),
        gaps=_gap_sections(plugin, limit),
        methods=methods_view(plugin),
        warnings=plugin.warnings,
    )


def html_context(result: AuditResult, *, for_pdf: bool = False) -> dict[str, Any]:
    """Everything the template shows, with suppression applied (see :func:`render_html`)."""
    result = for_display(result)
    limit = min_cell(result)
    head = context.header(result)
    checklists = checklist_views(result)
    plugins = [plugin_view(p, limit) for p in result.plugins]
    names = Names.of(result)
    return {
        **head,
        "for_pdf": for_pdf,
        # Free text of plugins and gates, with the names of the data in it shortened and
        # isolated: ``{{ prose(f.message) }}`` (see audit.report.text).
        "prose": names.html,
        "status_reason": status_reason(result, context.fail_on(result)),
        "verdict": verdict_rows(result, attested_by_principle(checklists), names),
        "not_assessed": NOT_ASSESSED,
        "plugins": plugins,
        "gates": [context.gate_view(g, limit) for g in result.gates],
        "checklists": checklists,
        "suppression_rule": SUPPRESSION_RULE.format(limit=limit),
        "warnings": context.all_warnings(result),
        "provenance": context.tree(result.provenance),
        "data_summary": context.tree(result.data_summary) if result.data_summary else None,
        "config": context.tree(result.config) if result.config else None,
        "schema_version": result.schema_version,
        "contents": _contents(plugins, checklists),
    }


def _contents(plugins: list[PluginView], checklists: list) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(anchor, title, [(anchor, title), ...]) for the table of contents."""
    return [
        ("verdict", "Verdict", []),
        ("findings", "Findings", [(p.anchor, f"{p.principle} ({p.name})") for p in plugins]),
        ("gates", "Gates", []),
        ("warnings", "Warnings", []),
        ("methods", "Methods", []),
        ("checklists", "Checklist coverage", [(c.anchor, c.name) for c in checklists]),
        ("provenance", "Provenance", []),
        ("glossary", "Glossary", []),
    ]


def render_html(result: AuditResult, *, for_pdf: bool = False) -> str:
    """Render the audit as one self-contained HTML page.

    Layout: a first screen with the model, data, date, overall status and one verdict row per
    FUTURE-AI principle (traffic light and a plain sentence, or NOT ASSESSED and why); then
    the findings with forest plots and tables, the gates, warnings, methods, the coverage of
    the CLAIM 2024, TRIPOD+AI and FUTURE-AI checklists item by item, provenance and a
    glossary. Long sections are collapsed (``<details>``).

    The page has inline CSS (Okabe–Ito colours, a print stylesheet), no scripts and no
    external resources; figures are embedded SVG data URIs. Every string from the result is
    cleaned of control and bidi characters and escaped; a name of the data (group, column,
    label, file) is shown with at most 80 characters and, when it could change the direction
    of the text around it, isolated in ``<bdi>`` (:mod:`audit.report.text`). Links given in
    attestations are shown as text, and suppressed cells
    (``Metric.suppressed``, ``GateCheck.suppressed``) show only ``suppressed (< min_cell)``.

    Parameters
    ----------
    result : AuditResult
        The audit to render; apart from the checklist files shipped with future-audit,
        nothing else is read.
    for_pdf : bool, default False
        The variant :func:`~audit.report.render_pdf` prints: no ``<details>`` (every section
        is open), and a table of contents with page numbers.

    Returns
    -------
    str
        The HTML document.
    """
    return environment().get_template("report.html.j2").render(html_context(result, for_pdf=for_pdf))
