"""report.html and technical-report.html: two editions of one self-contained page.

The **board** edition (``edition="board"``; report.html, report.pdf) is for the people who decide
whether the model may be used: the first screen, the key findings (the worst or decided ones)
with one plot and the largest gap of each grouping, what the audit did not assess or could not
decide, a sign-off block and the provenance in short. The **technical** edition
(``edition="technical"``; technical-report.html, technical-report.pdf) is the whole report:
every finding, table, figure and gap, the gates, methods, the checklists item by item,
provenance and a glossary, with the secondary gaps (sensitivity, specificity, PPV and NPV,
which restate the FNR and FPR gaps) in an appendix.

Neither edition shows a path of the machine the audit ran on: file names are cut to their last
part wherever results.json has paths (:func:`without_paths`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from audit.core.results import AuditResult, Metric, PluginResult, Status
from audit.report import context
from audit.report.anchors import plugin_anchor
from audit.report.calibration import (
    CalibrationView,
    calibration_view,
    is_calibration,
    overall_finding,
    overall_reliability,
)
from audit.report.checklist_view import attested_by_principle, checklist_views
from audit.report.figures import FigureView, forest_figure, threshold_figures
from audit.report.formatting import (
    DASH,
    base_id,
    display_name,
    fmt_p,
    group_label,
    metric_parts,
    min_cell,
)
from audit.report.methods import SUPPRESSION_RULE, MethodsView, methods_view
from audit.report.names import DisplayNames
from audit.report.suppression import for_display
from audit.report.templates import environment
from audit.report.text import Names, Part, phrase_html
from audit.report.robustness import RobustnessView, is_robustness, robustness_view
from audit.report.traceability import TraceabilityView, is_traceability, traceability_view
from audit.report.universality import (
    UniversalityView,
    is_universality,
    site_forest,
    universality_parts,
    universality_view,
)
from audit.report.verdict import NOT_ASSESSED, status_reason, verdict_rows
from audit.report.view import (
    Cell,
    GapRow,
    GroupTable,
    gap_rows,
    group_tables,
    key_metric_for,
    status_symbol,
)

EDITIONS = ("board", "technical")
_TEMPLATES = {"board": "board.html.j2", "technical": "report.html.j2"}
# Gaps that restate others: sensitivity is 1 − FNR and specificity 1 − FPR, so their gaps are
# the FNR and FPR gaps with the sign turned; PPV and NPV follow from those and the prevalence.
# The technical report lists them in its appendix, the board edition not at all.
SECONDARY_GAPS = frozenset({"sensitivity", "specificity", "ppv", "npv"})
# The board edition: findings shown as cards, then as one line each; the rest are counted.
BOARD_CARDS = 4
BOARD_LINES = 12
# Group names listed in a sentence of the board edition before "and N more".
BOARD_NAMES = 8
# Warnings the board edition lists (the audit's own first); the technical report has them all.
BOARD_WARNINGS = 3
# Long tables and gap matrices are collapsed on screen past this many rows.
FOLD_ROWS = 12
_SEVERITY = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.INCONCLUSIVE: 3, Status.PASS: 4,
             Status.SKIPPED: 5}


# -- views of the technical edition --------------------------------------------------------
@dataclass(frozen=True)
class GapSection:
    title: str
    rows: tuple[GapRow, ...]
    open: bool


@dataclass(frozen=True)
class GapMatrixRow:
    """One group, with its gap to all patients and to the best group for every metric (None
    where there is none): (gap with its interval, adjusted p-value)."""

    label: str | None
    group: str
    cells: tuple[tuple[Cell, Cell] | None, ...]
    flags: tuple[str, ...]


@dataclass(frozen=True)
class GapMatrix:
    """Gaps of several metrics side by side: one row per (label, group), two columns per
    metric (to all patients, to the best group; the best group itself shows 0)."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[GapMatrixRow, ...]
    labelled: bool

    @property
    def folded(self) -> bool:
        return len(self.rows) > FOLD_ROWS


@dataclass(frozen=True)
class TableView:
    table: GroupTable
    figure: FigureView | None
    gap_figure: FigureView | None


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
    tables: tuple[TableView, ...]
    threshold_figures: tuple[FigureView, ...]
    gaps: tuple[GapSection, ...]
    other_gaps: GapMatrix | None
    secondary_gaps: GapMatrix | None
    methods: MethodsView
    warnings: tuple[str, ...]
    # A section of its own instead of the tables by group (audit.report.universality,
    # audit.report.calibration).
    universality: UniversalityView | None = None
    calibration: CalibrationView | None = None
    traceability: TraceabilityView | None = None
    robustness: RobustnessView | None = None


def _figure(data) -> FigureView | None:
    return forest_figure(data) if data is not None else None


def _is_best(row: GapRow) -> bool:
    return not row.metric_id.endswith("_gap_overall")


def _gap_matrix(title: str, rows: list[GapRow]) -> GapMatrix | None:
    if not rows:
        return None
    metrics = list(dict.fromkeys(base_id(r.metric_id) for r in rows))
    column = {m: 2 * i for i, m in enumerate(metrics)}
    grid: dict[tuple, list] = {}
    flags: dict[tuple, dict[str, None]] = {}
    for r in rows:
        key = (r.label, r.group)
        grid.setdefault(key, [None] * (2 * len(metrics)))[column[base_id(r.metric_id)] + _is_best(r)] = (
            r.estimate, r.p_adjusted)
        flags.setdefault(key, {}).update(dict.fromkeys(r.flags))
    headers = tuple(h for m in metrics for h in (f"{display_name(m)} gap to all", f"{display_name(m)} gap to best"))
    return GapMatrix(
        title=title,
        headers=headers,
        rows=tuple(GapMatrixRow(k[0], k[1], tuple(v), tuple(flags[k])) for k, v in grid.items()),
        labelled=any(r.label is not None for r in rows),
    )


def _gap_views(plugin: PluginResult, limit: int, names: DisplayNames):
    """The key metric's gaps (one row each), the other gaps and the secondary ones (matrices)."""
    rows = gap_rows(plugin, limit, names)
    key = key_metric_for(plugin, {base_id(r.metric_id) for r in rows})
    # Partition by position, not by `r not in main` (dataclass equality made that quadratic:
    # 5 s of a 15-label report).
    is_main = [key is not None and base_id(r.metric_id) == key for r in rows]
    main = [r for r, m in zip(rows, is_main, strict=True) if m]
    secondary = [r for r, m in zip(rows, is_main, strict=True) if not m and base_id(r.metric_id) in SECONDARY_GAPS]
    other = [r for r, m in zip(rows, is_main, strict=True) if not m and base_id(r.metric_id) not in SECONDARY_GAPS]
    sections = ()
    if main:
        sections = (GapSection(f"{display_name(key)} gaps", tuple(main), len(main) <= 40),)
    other_title = "Other gaps" if main else "Gaps"
    return (sections, _gap_matrix(other_title, other),
            _gap_matrix("Secondary gaps (they restate the gaps above)", secondary))


def _plugin_header(plugin: PluginResult) -> dict[str, str]:
    """The fields both editions show at the head of a plugin's section."""
    return dict(name=plugin.plugin, anchor=plugin_anchor(plugin.plugin), principle=plugin.principle,
                version=plugin.version, status=str(plugin.status), symbol=status_symbol(plugin.status),
                summary=plugin.summary, error=plugin.error or "")


def plugin_view(plugin: PluginResult, limit: int, names: DisplayNames | None = None) -> PluginView:
    """Everything the technical edition shows of one plugin."""
    names = names or DisplayNames()
    header = dict(
        **_plugin_header(plugin),
        checklist=plugin.checklist,
        findings=tuple(context.finding_view(f, plugin.plugin) for f in plugin.findings),
        methods=methods_view(plugin),
        warnings=plugin.warnings,
    )
    if is_universality(plugin) or is_calibration(plugin) or is_traceability(plugin) or is_robustness(plugin):
        # Sites, calibration curves, drift and perturbations have sections of their own: a table
        # of every metric by site and the gap matrices were 77 rows × 30 metrics in the demo.
        if is_universality(plugin):
            own = {"universality": universality_view(plugin, limit, names)}
        elif is_calibration(plugin):
            own = {"calibration": calibration_view(plugin, limit, names)}
        elif is_robustness(plugin):
            own = {"robustness": robustness_view(plugin)}
        else:
            own = {"traceability": traceability_view(plugin)}
        return PluginView(**header, tables=(), threshold_figures=(), gaps=(), other_gaps=None,
                          secondary_gaps=None, **own)
    tables = group_tables(plugin, limit, names)
    gaps, other, secondary = _gap_views(plugin, limit, names)
    return PluginView(
        **header,
        tables=tuple(
            TableView(t, _figure(t.forest), _figure(t.gap_forest) if t.label is None else None) for t in tables
        ),
        threshold_figures=tuple(threshold_figures(plugin, names)),
        gaps=gaps,
        other_gaps=other,
        secondary_gaps=secondary,
    )


# -- views of the board edition ------------------------------------------------------------
@dataclass(frozen=True)
class PrimaryGap:
    """The largest gap of the key metric to all patients in one grouping."""

    grouping: str
    group: str
    value: Cell  # the key metric of that group
    gap: Cell  # its gap to all patients
    gap_best: Cell  # its gap to the best group
    p_adjusted: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class BoardGrouping:
    heading: str
    figure: FigureView | None
    primary: PrimaryGap | None
    # Groups that decide nothing, by why: (why, names, how many more were not named).
    not_estimated: tuple[tuple[str, tuple[str, ...], int], ...]


@dataclass(frozen=True)
class BoardPluginView:
    name: str
    anchor: str
    principle: str
    version: str
    status: str
    symbol: str
    summary: str
    error: str
    key_metric: str  # the key metric's column name, e.g. "FNR"
    cards: tuple[context.FindingView, ...]
    lines: tuple[context.FindingView, ...]
    more: int  # decided findings neither in cards nor in lines
    inconclusive: tuple[context.FindingView, ...]
    inconclusive_more: int
    counts: str  # "1 WARN, 2 INCONCLUSIVE"
    groupings: tuple[BoardGrouping, ...]
    # The universality plugin: its plain sentence and the forest plot by site; the calibration
    # plugin: the reliability diagram of all patients (instead of groupings).
    lead: Any = ""
    figure: FigureView | None = None


def _worst_first(findings, key: str | None = None) -> list:
    """Worst status first; within a status, the findings on the headline metric ``key``
    (in multi-label mode the underdiagnosis rate) before those of single labels."""
    def rank(f):
        headline = key is not None and f.metric is not None and base_id(f.metric) == key
        return _SEVERITY.get(f.status, 9), not headline
    return sorted(findings, key=rank)


def _cell(metric: Metric | None, limit: int) -> Cell:
    if metric is None:
        return Cell(DASH, "missing")
    text, interval = metric_parts(metric, limit)
    state = "suppressed" if metric.suppressed else "undefined" if metric.value is None else "ok"
    return Cell(text, state, interval)


def _primary_gap(plugin: PluginResult, table: GroupTable, limit: int, names: DisplayNames) -> PrimaryGap | None:
    key = table.key_metric
    if key is None or table.key_index is None:
        return None
    cols = frozenset(table.grouping)

    def of(metric_id: str) -> dict[str, Metric]:
        return {group_label(m.group): m for m in plugin.metrics
                if m.id == metric_id and m.label == table.label and m.group and frozenset(m.group) == cols}

    overall, best = of(f"{key}_gap_overall"), of(f"{key}_gap")
    shown = [m for m in overall.values() if not m.suppressed and m.value is not None]
    if not shown:
        return None
    powered = [m for m in shown if "under_powered" not in m.flags]
    worst = max(powered or shown, key=lambda m: m.value)
    label = group_label(worst.group)
    row = next((r for r in table.rows if r.label == label), None)
    return PrimaryGap(
        grouping=names.grouping(table.grouping),
        group=label,
        value=row.cells[table.key_index] if row is not None else Cell(DASH, "missing"),
        gap=_cell(worst, limit),
        gap_best=_cell(best.get(label), limit),
        p_adjusted=fmt_p(worst.p_adjusted),
        flags=row.flags if row is not None else tuple(worst.flags),
    )


def _not_estimated(table: GroupTable, limit: int) -> tuple[tuple[str, tuple[str, ...], int], ...]:
    """The groups of ``table`` whose key metric decides nothing, by why."""
    why: dict[str, list[str]] = {}
    for r in table.rows:
        if r.overall:
            continue
        cell = r.cells[table.key_index] if table.key_index is not None else None
        reason = (f"hidden (a count below {limit})" if cell is not None and cell.state == "suppressed"
                  else "undefined" if cell is not None and cell.state == "undefined"
                  else "under-powered" if "under_powered" in r.flags else "")
        if reason:
            why.setdefault(reason, []).append(r.name or r.label)
    return tuple((reason, tuple(names[:BOARD_NAMES]), max(0, len(names) - BOARD_NAMES))
                 for reason, names in why.items())


def board_plugin_view(plugin: PluginResult, limit: int, names: DisplayNames | None = None) -> BoardPluginView:
    """What the board edition shows of one plugin: the worst decided findings, and for each
    grouping of the headline analysis (the only one, or in multi-label mode the
    underdiagnosis rate) the key metric's plot and its largest gap."""
    names = names or DisplayNames()
    if is_universality(plugin) or is_calibration(plugin) or is_traceability(plugin) or is_robustness(plugin):
        return _board_own_view(plugin, limit, names)
    tables = [t for t in group_tables(plugin, limit, names) if t.grouping]
    headline = [t for t in tables if t.label is None] or tables[:1]
    key = next((t.key_metric for t in headline if t.key_metric), None)
    views = [context.finding_view(f, plugin.plugin) for f in _worst_first(plugin.findings, key)]
    decided = [f for f in views if f.status in ("FAIL", "ERROR", "WARN")] or [f for f in views if f.status == "PASS"]
    inconclusive = [f for f in views if f.status == "INCONCLUSIVE"]
    groupings = []
    for t in headline:
        groupings.append(BoardGrouping(
            heading=t.heading or f"By {names.grouping(t.grouping)}",
            figure=_figure(t.forest),
            primary=_primary_gap(plugin, t, limit, names),
            not_estimated=_not_estimated(t, limit),
        ))
    return BoardPluginView(
        **_plugin_header(plugin),
        key_metric=display_name(key) if key else "",
        cards=tuple(decided[:BOARD_CARDS]),
        lines=tuple(decided[BOARD_CARDS:BOARD_CARDS + BOARD_LINES]),
        more=max(0, len(decided) - BOARD_CARDS - BOARD_LINES),
        inconclusive=tuple(inconclusive[:BOARD_LINES]),
        inconclusive_more=max(0, len(inconclusive) - BOARD_LINES),
        counts=_counts(views),
        groupings=tuple(groupings),
    )


def _counts(views) -> str:
    counts: dict[str, int] = {}
    for f in views:
        counts[f.status] = counts.get(f.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: _SEVERITY[Status(kv[0])]))


def _board_own_view(plugin: PluginResult, limit: int, names: DisplayNames) -> BoardPluginView:
    """The board edition of the universality plugin (its sentence, the forest plot by site and
    its findings as one line each) and of the calibration plugin (the reliability diagram of all
    patients, the finding on all patients as a card, the others as one line each)."""
    views = [context.finding_view(f, plugin.plugin) for f in _worst_first(plugin.findings)]
    inconclusive = [f for f in views if f.status == "INCONCLUSIVE"]
    lead: Any = ""
    if is_universality(plugin):
        _, figure = site_forest(plugin, limit, names)
        parts: tuple[Part, ...] = universality_parts(plugin, names) or ()
        lead = phrase_html(parts) if parts else ""
        cards: list = []
        lines = [f for f in views if f.status != "PASS"] or views
    elif is_traceability(plugin) or is_robustness(plugin):
        # Its findings say it in words (drift, performance against the reference, change over
        # time): the worst as a card, the rest that are not PASS as lines.
        figure = None
        decided = [f for f in views if f.status in ("FAIL", "ERROR", "WARN")]
        cards = decided[:1] or [f for f in views if f.status == "PASS"][:1]
        lines = [f for f in decided[1:]]
    else:
        figure = overall_reliability(plugin, names)
        main = overall_finding(plugin)
        cards = [context.finding_view(main, plugin.plugin)] if main is not None else []
        lines = [f for f in views if f.status in ("FAIL", "ERROR", "WARN") and (main is None or f.id != main.id)]
    return BoardPluginView(
        **_plugin_header(plugin),
        key_metric="",
        cards=tuple(cards),
        lines=tuple(lines[:BOARD_LINES]),
        more=max(0, len(lines) - BOARD_LINES),
        inconclusive=tuple(inconclusive[:BOARD_LINES]),
        inconclusive_more=max(0, len(inconclusive) - BOARD_LINES),
        counts=_counts(views),
        groupings=(),
        lead=lead,
        figure=figure,
    )


# -- no paths of the machine ---------------------------------------------------------------
# An absolute path in free text (POSIX, home, Windows drive or UNC, file: URL), not the path
# part of an http(s) URL.
_ABSOLUTE = re.compile(r"(?<![\w.~/\\:-])(?:file://)?(?:~?/|[A-Za-z]:[\\/]|\\\\)[^\s'\"<>|]+")
# Keys whose values are paths, in the configuration and provenance records.
_PATH_KEYS = frozenset({"path", "paths", "file", "files", "out", "reference", "attestations", "source",
                        "cwd", "root", "dir", "directory", "folder", "config", "config_file", "cache"})


def _name_of(path: str) -> str:
    tail = path.rstrip("/\\")
    name = PureWindowsPath(tail).name if "\\" in tail else PurePosixPath(tail).name
    return name or path


def _strip_text(text: str) -> str:
    return _ABSOLUTE.sub(lambda m: _name_of(m.group(0)), text) if ("/" in text or "\\" in text) else text


def _strip(value: Any, key: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: _strip(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_strip(v, key) for v in value)
    if isinstance(value, str):
        pathlike = key.lower() in _PATH_KEYS or key.lower().endswith(("_path", "_dir", "_file"))
        if pathlike and ("/" in value or "\\" in value) and "://" not in value and not any(c.isspace() for c in value):
            return _name_of(value)
        return _strip_text(value)
    return value


def without_paths(result: AuditResult) -> AuditResult:
    """``result`` with every path of the machine cut to its file name: in the provenance,
    configuration and data summary, and in the warnings, errors and messages of the plugins."""
    plugins = tuple(
        replace(
            p,
            summary=_strip_text(p.summary),
            error=_strip_text(p.error) if p.error else p.error,
            warnings=tuple(_strip_text(w) for w in p.warnings),
            findings=tuple(replace(f, message=_strip_text(f.message)) for f in p.findings),
        )
        for p in result.plugins
    )
    return replace(
        result,
        plugins=plugins,
        provenance=_strip(result.provenance),
        config=_strip(result.config),
        data_summary=_strip(result.data_summary),
        warnings=tuple(_strip_text(w) for w in result.warnings),
    )


def _provenance_facts(result: AuditResult, head: dict[str, Any]) -> list[tuple[str, str]]:
    """The provenance in short, for the board edition: what was audited, with what."""
    prov = result.provenance
    facts = []
    for name, refs in (("Audited data", head["data_files"]), ("Reference data", head["reference_files"]),
                       ("Model", head["model_files"])):
        for ref in refs:
            sha = f"sha256 {ref.sha256}" if ref.short else (ref.fingerprint and "scores given with the data")
            facts.append((name, f"{ref.name} ({sha})" if sha else ref.name))
    tool = prov.get("tool") if isinstance(prov.get("tool"), Mapping) else {}
    version = tool.get("version") or (prov.get("versions") or {}).get("future-audit")
    # The version and the full record in one row: the board's copy stays one page shorter.
    record = f"full record results.json (format {result.schema_version}); every number: technical-report.html"
    facts.append(("future-audit", f"{version}; {record}" if version else record[0].upper() + record[1:]))
    facts.append(("Audit run", f"{head['started_at']} to {head['finished_at']}"))
    git = prov.get("git")
    if isinstance(git, Mapping) and git.get("commit"):
        facts.append(("Code version", f"git {str(git['commit'])[:12]}" + (" (uncommitted changes)" if git.get("dirty") else "")))
    if prov.get("seed") is not None:
        facts.append(("Random seed", str(prov["seed"])))
    versions = prov.get("versions")
    if isinstance(versions, Mapping):
        facts.append(("Software", ", ".join(f"{k} {v}" for k, v in versions.items() if k != "future-audit")))
    return facts


# -- the page ------------------------------------------------------------------------------
_SCORE_COLUMNS = "score columns: "
# A predictions-only model is named by its score columns; more than this many are summed up.
MAX_NAMED_COLUMNS = 3


def _short_model_name(ref: context.FileRef) -> context.FileRef:
    """"score columns: p_a, p_b, ..., p_o" as "15 score columns (p_a … p_o)": the model box
    names the model, it does not list 15 columns."""
    if not ref.name.startswith(_SCORE_COLUMNS):
        return ref
    columns = ref.name[len(_SCORE_COLUMNS):].split(", ")
    if len(columns) <= MAX_NAMED_COLUMNS:
        return ref
    return replace(ref, name=f"{len(columns)} score columns ({columns[0]} … {columns[-1]})")


def _common(result: AuditResult, for_pdf: bool, edition: str, display: DisplayNames) -> dict[str, Any]:
    head = context.header(result)
    head["model_files"] = [_short_model_name(f) for f in head["model_files"]]
    checklists = checklist_views(result)
    names = Names.of(result)
    return {
        **head,
        "edition": edition,
        "for_pdf": for_pdf,
        # Free text of plugins and gates, with the names of the data in it shortened and
        # isolated: ``{{ prose(f.message) }}`` (see audit.report.text).
        "prose": names.html,
        "status_reason": status_reason(result, context.fail_on(result)),
        "verdict": verdict_rows(result, attested_by_principle(checklists), names),
        "not_assessed": NOT_ASSESSED,
        "checklists": checklists,
        "suppression_rule": SUPPRESSION_RULE.format(limit=min_cell(result)),
        "warnings": context.all_warnings(result),
        "schema_version": result.schema_version,
        # The model box, the overall result explained and the overall performance
        # (_first_screen.html.j2).
        "first_screen": context.first_screen(result, display),
    }


def html_context(result: AuditResult, *, for_pdf: bool = False, edition: str = "technical") -> dict[str, Any]:
    """Everything the template of ``edition`` shows, with suppression applied and paths cut to
    file names (see :func:`render_html`)."""
    if edition not in EDITIONS:
        raise ValueError(f"edition: expected one of {', '.join(EDITIONS)}, got {edition!r}.")
    result = without_paths(for_display(result))
    limit = min_cell(result)
    display = DisplayNames.from_result(result)
    page = _common(result, for_pdf, edition, display)
    if edition == "board":
        plugins = [board_plugin_view(p, limit, display) for p in result.plugins]
        return {
            **page,
            "plugins": plugins,
            "not_run": [v for v in page["verdict"] if v.status in (NOT_ASSESSED, "SKIPPED", "ERROR")],
            "board_warnings": BOARD_WARNINGS,
            # A poor operating point is the first screen's banner already: not said twice.
            "warnings": [w for w in page["warnings"] if w[1] not in {
                op.operating_point.message for op in page["first_screen"]["operating_point_warnings"]}],
            "facts": _provenance_facts(result, page),
            "contents": [("verdict", "Verdict"), ("findings", "Key findings"),
                         ("not-assessed", "Not assessed"), ("sign-off", "Sign-off"), ("provenance", "Provenance")],
        }
    plugins = [plugin_view(p, limit, display) for p in result.plugins]
    return {
        **page,
        "plugins": plugins,
        "gates": [context.gate_view(g, limit) for g in result.gates],
        "provenance": context.tree(result.provenance),
        "data_summary": context.tree(result.data_summary) if result.data_summary else None,
        "config": context.tree(result.config) if result.config else None,
        "contents": _contents(plugins, page["checklists"]),
    }


def _contents(plugins: list[PluginView], checklists: list) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(anchor, title, [(anchor, title), ...]) for the table of contents."""
    contents = [
        ("verdict", "Verdict", []),
        ("findings", "Findings", [(p.anchor, f"{p.principle} ({p.name})") for p in plugins]),
        ("gates", "Gates", []),
        ("warnings", "Warnings", []),
        ("methods", "Methods", []),
        ("checklists", "Checklist coverage", [(c.anchor, c.name) for c in checklists]),
        ("provenance", "Provenance", []),
        ("glossary", "Glossary", []),
    ]
    if any(p.secondary_gaps for p in plugins):
        contents.append(("appendix", "Appendix: secondary gaps", []))
    return contents


def render_html(result: AuditResult, *, for_pdf: bool = False, edition: str = "technical") -> str:
    """Render the audit as one self-contained HTML page, in one of two editions.

    Both editions open with the same first screen: the model, data, date, overall status and
    one verdict row per FUTURE-AI principle (traffic light and a plain sentence, or NOT
    ASSESSED and why).

    - ``"technical"`` (the default; technical-report.html): then every finding, and for each
      grouping a forest plot and the table of every metric; the key metric's gaps, the other
      gaps side by side, the gates, warnings, methods, the coverage of the CLAIM 2024,
      TRIPOD+AI and FUTURE-AI checklists item by item, provenance, a glossary and an
      appendix with the secondary gaps (sensitivity, specificity, PPV, NPV). The universality
      and calibration plugins have sections of their own instead of the tables by group
      (:mod:`audit.report.universality`: a forest plot by site with the pooled value and the
      prediction interval, a table per site, the heterogeneity and the fairness gap within
      sites; :mod:`audit.report.calibration`: reliability diagrams, decision curves and a
      table per grouping).
    - ``"board"`` (report.html): then the key findings (the failed and warned ones, or the
      passed ones when none failed or warned), one forest plot and the largest gap for each
      grouping, what was not assessed or could not be decided, a sign-off block (decision,
      and name, role, date and signature lines) and the provenance in short. Of the
      universality plugin: its plain sentence, the forest plot by site and its findings as
      one line each; of the calibration plugin: the reliability diagram of all patients and
      the finding on all patients.

    Long sections are collapsed (``<details>``). The page has inline CSS (Okabe–Ito colours;
    findings as cards; tables scroll in their own box with the group column in view; a print
    stylesheet), no scripts and no external resources; figures are embedded SVG data URIs.
    Every string from the result is cleaned of control and bidi characters and escaped; a
    name of the data (group, column, label, file) is shown with at most 80 characters and,
    when it could change the direction of the text around it, isolated in ``<bdi>``
    (:mod:`audit.report.text`). Paths are cut to file names (:func:`without_paths`). Links
    given in attestations are shown as text, and suppressed cells (``Metric.suppressed``,
    ``GateCheck.suppressed``) show only ``suppressed (< min_cell)``.

    Parameters
    ----------
    result : AuditResult
        The audit to render; apart from the checklist files shipped with future-audit,
        nothing else is read.
    for_pdf : bool, default False
        The variant :func:`~audit.report.render_pdf` prints: no ``<details>`` (every section
        is open) and, in the technical edition, a table of contents with page numbers.
    edition : {"technical", "board"}, default "technical"
        Which edition; see above.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    ValueError
        ``edition`` is neither ``"technical"`` nor ``"board"``.
    """
    page = html_context(result, for_pdf=for_pdf, edition=edition)
    return environment().get_template(_TEMPLATES[edition]).render(page)
