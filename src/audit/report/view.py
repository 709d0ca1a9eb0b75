"""Turn a :class:`PluginResult`'s flat metric list into the tables every renderer shows.

Metrics are grouped by finding label (multi-label mode), then by *grouping*: the set of
columns a group is defined on ({sex}, {age_band}, {sex, age_band}). Each grouping becomes a
table with one row per group (overall first) and one column per metric id. Gap metrics
(``*_gap`` against the best group, ``*_gap_overall`` against overall) go to their own table.
Everything here is already formatted text with suppression applied, except the numbers the
forest plot needs (which skip suppressed cells).

Names come twice: ``label`` / ``group`` as the data has them (``sex=F``, for the tables that
quote the data) and ``name`` / ``group_name`` in words (``sex F``, or the configured display
name, :mod:`audit.report.names`) for prose, headings and figures. Rows of a column whose
values are ordinal bands ("<30", "30-39", "50+") or configured bins come in reading order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from audit.core.results import Metric, PluginResult, Status
from audit.report.formatting import (
    DASH,
    display_name,
    flag_texts,
    fmt_p,
    group_label,
    is_gap,
    metric_parts,
    suppressed_text,
    suppressed_why,
)
from audit.report.names import DisplayNames
from audit.report.text import shorten

# Preferred column order; ids not listed follow in the order the plugin emitted them.
COLUMN_ORDER = (
    "n",
    "positives",
    "prevalence",
    "sensitivity",
    "specificity",
    "fnr",
    "fpr",
    "ppv",
    "npv",
    "auroc",
    "brier",
)
# Run-level settings reported as metrics; the Methods section shows them (plugin settings).
# Patient counts decide the small-group rules; the tables show n (rows) to stay one page wide.
NOT_IN_TABLES = frozenset({"threshold", "patients"})
KEY_METRIC_PREFERENCE = ("underdiagnosis_rate", "fnr")
# Metrics whose denominator is the number of positives (used when no "positives" metric).
_POSITIVE_DENOMINATORS = ("fnr", "sensitivity", "tpr", "underdiagnosis_rate")


@dataclass(frozen=True)
class Cell:
    text: str
    state: str = "ok"  # ok | undefined | suppressed | missing
    interval: str = ""
    # A suppressed cell: why it is hidden (one text for every hidden cell, suppressed_why).
    why: str = ""

    @property
    def full(self) -> str:
        return f"{self.text} {self.interval}" if self.interval else self.text


@dataclass(frozen=True)
class Row:
    label: str
    cells: tuple[Cell, ...]
    flags: tuple[str, ...]
    overall: bool = False
    suppressed: bool = False
    name: str = ""  # the group in words: "age band <1, gender female", "all patients"


@dataclass(frozen=True)
class ForestPoint:
    label: str
    value: float
    ci: tuple[float, float] | None
    under_powered: bool
    name: str = ""  # the group in words (figure labels use it when set)


@dataclass(frozen=True)
class ForestData:
    metric_id: str
    points: tuple[ForestPoint, ...]
    overall: float | None
    suppressed: tuple[str, ...]
    undefined: tuple[tuple[str, str], ...]
    # The gap the plugin's own findings judge against (settings["tolerance"]), drawn on the plot.
    tolerance: float | None = None
    # What makes a group under-powered, in words: "fewer than 30 patients or 10 with the condition".
    under_powered_rule: str = ""
    title: str = ""  # "Missed cases (FNR) by age band"
    # ``suppressed`` and ``undefined`` with the groups in words, for captions.
    suppressed_names: tuple[str, ...] = ()
    undefined_names: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GroupTable:
    title: str
    label: str | None
    grouping: tuple[str, ...]
    columns: tuple[str, ...]  # metric ids; headers via display_name
    headers: tuple[str, ...]
    rows: tuple[Row, ...]
    key_metric: str | None
    key_index: int | None  # index of the key metric's cell in every row
    forest: ForestData | None
    heading: str = ""  # "By age band" (and the label, in multi-label mode)
    caption: str = ""  # the table's <caption>
    # The key metric's gap to all patients by group (a forest plot on a range around 0).
    gap_forest: ForestData | None = None


@dataclass(frozen=True)
class GapRow:
    metric_id: str
    metric: str
    label: str | None
    group: str
    reference: str
    estimate: Cell
    p_value: Cell
    p_adjusted: Cell
    flags: tuple[str, ...]
    metric_words: str = ""  # "gap in missed cases (FNR) to all patients"
    group_name: str = ""  # the group in words
    reference_name: str = ""  # "the best group (sex M)", "all patients"


def _group_key(group: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((group or {}).items()))


def key_metric_for(plugin: PluginResult, ids: set[str]) -> str | None:
    """``settings["key_metric"]`` if the plugin names one it produced, else the first of
    ``underdiagnosis_rate`` and ``fnr`` that is present."""
    named = plugin.settings.get("key_metric")
    if isinstance(named, str) and named in ids:
        return named
    return next((m for m in KEY_METRIC_PREFERENCE if m in ids), None)


def _ordered_ids(metrics: list[Metric]) -> list[str]:
    seen = list(dict.fromkeys(m.id for m in metrics))
    known = [c for c in COLUMN_ORDER if c in seen]
    return known + [c for c in seen if c not in COLUMN_ORDER]


def _hidden(limit: int) -> Cell:
    return Cell(suppressed_text(limit), "suppressed", why=suppressed_why(limit))


def _count_cell(row_metrics: dict[str, Metric], metric_id: str, row_suppressed: bool, limit: int) -> Cell:
    """The n or positives cell.

    A plugin's own ``n`` / ``positives`` metric carries its own suppression. A count derived
    from other metrics (``Metric.n``, the denominator of FNR) is hidden as soon as any cell of
    the row is suppressed, since it would reveal the size of that cell.
    """
    own = row_metrics.get(metric_id)
    if own is not None:
        if own.suppressed:
            return _hidden(limit)
        if own.value is None:
            return Cell(DASH, "missing")
        return Cell(f"{own.value:,.0f}")
    if metric_id == "n":
        value = next((m.n for m in row_metrics.values() if m.n is not None), None)
    else:
        value = next(
            (
                row_metrics[i].denominator
                for i in _POSITIVE_DENOMINATORS
                if i in row_metrics and row_metrics[i].denominator is not None
            ),
            None,
        )
    if value is None:
        return Cell(DASH, "missing")
    if row_suppressed:
        return _hidden(limit)
    return Cell(f"{value:,}")


def _metric_cell(metric: Metric | None, limit: int) -> Cell:
    if metric is None:
        return Cell(DASH, "missing")
    if metric.suppressed:
        return _hidden(limit)
    state = "undefined" if metric.value is None else "ok"
    text, interval = metric_parts(metric, limit)
    return Cell(text, state, interval)


# For the views of single plugins (audit.report.universality, audit.report.calibration).
count_cell = _count_cell
metric_cell = _metric_cell


def under_powered_rule(plugin: PluginResult) -> str:
    """What makes a group under-powered in this plugin, in words, from its settings."""
    n = plugin.settings.get("min_group_n", plugin.settings.get("min_group_size"))
    pos = plugin.settings.get("min_positives")
    unit = plugin.settings.get("counting_unit") or "patients"
    parts = []
    if isinstance(n, int) and not isinstance(n, bool):
        parts.append(f"{n} {unit}")
    if isinstance(pos, int) and not isinstance(pos, bool):
        parts.append(f"{pos} with the condition")
    return "fewer than " + " or ".join(parts) if parts else ""


def tolerance_of(plugin: PluginResult) -> float | None:
    """The gap the plugin's own findings judge against (``settings["tolerance"]``), or None."""
    value = plugin.settings.get("tolerance")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _table(
    plugin: PluginResult,
    label: str | None,
    grouping: tuple[str, ...],
    overall: list[Metric],
    grouped: list[Metric],
    limit: int,
    names: DisplayNames | None = None,
    gaps: list[Metric] | None = None,
) -> GroupTable:
    names = names or DisplayNames()
    metrics = overall + grouped
    ids = _ordered_ids(metrics)
    value_ids = [i for i in ids if i not in ("n", "positives")]
    has_positives = "positives" in ids or any(
        m.id in _POSITIVE_DENOMINATORS and m.denominator is not None for m in metrics
    )
    columns = ["n"] + (["positives"] if has_positives else []) + value_ids
    key = key_metric_for(plugin, set(value_ids))

    unordered: dict[tuple, dict[str, Metric]] = {}
    groups: dict[tuple, dict[str, str] | None] = {}
    for m in metrics:
        k = _group_key(m.group)
        unordered.setdefault(k, {}).setdefault(m.id, m)
        groups.setdefault(k, m.group)
    order = {_group_key(g): i for i, g in enumerate(names.sort_groups(groups.values()))}
    by_group = dict(sorted(unordered.items(), key=lambda item: order[item[0]]))
    labels = {k: group_label(groups[k]) for k in by_group}
    words = {k: names.group(groups[k]) for k in by_group}

    rows = []
    for k, row_metrics in by_group.items():
        suppressed = any(m.suppressed for m in row_metrics.values())
        cells = [_count_cell(row_metrics, "n", suppressed, limit)]
        if has_positives:
            cells.append(_count_cell(row_metrics, "positives", suppressed, limit))
        cells += [_metric_cell(row_metrics.get(i), limit) for i in value_ids]
        flags = tuple(dict.fromkeys(f for m in row_metrics.values() for f in flag_texts(m)))
        rows.append(Row(labels[k], tuple(cells), flags, overall=not k, suppressed=suppressed, name=words[k]))

    grouping_words = names.grouping(grouping) if grouping else "all patients"
    label_words = f" ({names.label_name(label)})" if label is not None else ""
    extra = {
        "tolerance": tolerance_of(plugin),
        "under_powered_rule": under_powered_rule(plugin),
    }
    forest = gap_forest = None
    if key and grouped:
        forest = replace(_forest(key, by_group, labels, words), **extra,
                         title=f"{_capital(names.metric(key))} by {grouping_words}{label_words}")
        gap_id = f"{key}_gap_overall"
        of_gap = {_group_key(m.group): m for m in gaps or () if m.id == gap_id}
        if of_gap:
            gap_rows_ = {k: {gap_id: of_gap[k]} for k in by_group if k in of_gap}
            gap_forest = replace(_forest(gap_id, gap_rows_, labels, words), **extra,
                                 title=f"{_capital(names.metric(gap_id))} by {grouping_words}{label_words}")
    title_parts = [" × ".join(map(shorten, grouping)) if grouping else "overall"]
    if label is not None:
        title_parts.insert(0, shorten(label))
    heading = f"By {grouping_words}" if grouping else "All patients"
    if label is not None:
        heading += f" — {names.label_name(label)}"
    level = next((m.level for m in metrics if m.level is not None and 0 < m.level < 1), None)
    ci = f"{level * 100:g}% confidence interval" if level else "confidence interval"
    caption = (
        f"Results by {grouping_words}{label_words}: one row per group, all patients first; "
        f"each value with its {ci} below it. A hidden cell rests on, or would reveal, a count below the small-cell limit."
        if grouping else f"Results for all patients{label_words}, each value with its {ci} below it."
    )
    return GroupTable(
        title=" — ".join(title_parts),
        label=label,
        grouping=grouping,
        columns=tuple(columns),
        headers=tuple(display_name(c) for c in columns),
        rows=tuple(rows),
        key_metric=key,
        key_index=columns.index(key) if key else None,
        forest=forest,
        heading=heading,
        caption=caption,
        gap_forest=gap_forest,
    )


def _forest(key: str, by_group: dict, labels: dict, words: dict | None = None) -> ForestData:
    words = words or {}
    points, suppressed, undefined = [], [], []
    suppressed_names, undefined_names = [], []
    overall_value = None
    for k, row_metrics in by_group.items():
        m = row_metrics.get(key)
        if m is None:
            continue
        if not k:
            if not m.suppressed:
                overall_value = m.value
            continue
        if m.suppressed:
            suppressed.append(labels[k])
            suppressed_names.append(words.get(k, labels[k]))
        elif m.value is None:
            undefined.append((labels[k], m.reason or "undefined"))
            undefined_names.append((words.get(k, labels[k]), m.reason or "undefined"))
        else:
            points.append(ForestPoint(labels[k], m.value, m.ci, "under_powered" in m.flags, words.get(k, "")))
    return ForestData(key, tuple(points), overall_value, tuple(suppressed), tuple(undefined),
                      suppressed_names=tuple(suppressed_names), undefined_names=tuple(undefined_names))


def group_tables(plugin: PluginResult, limit: int, names: DisplayNames | None = None) -> list[GroupTable]:
    """One table per (label, grouping), in the order the plugin emitted them.

    ``names``: the result's display names (:meth:`DisplayNames.from_result`); the defaults
    without it.
    """
    plain = [m for m in plugin.metrics if not is_gap(m) and m.id not in NOT_IN_TABLES]
    gap_metrics = [m for m in plugin.metrics if is_gap(m)]
    tables = []
    for label in dict.fromkeys(m.label for m in plain):
        of_label = [m for m in plain if m.label == label]
        overall = [m for m in of_label if not m.group]
        groupings: dict[frozenset, tuple[str, ...]] = {}
        for m in of_label:
            if m.group:
                groupings.setdefault(frozenset(m.group), tuple(m.group))
        if not groupings:
            tables.append(_table(plugin, label, (), overall, [], limit, names))
        for cols, columns in groupings.items():
            grouped = [m for m in of_label if m.group and frozenset(m.group) == cols]
            gaps = [m for m in gap_metrics if m.label == label and m.group and frozenset(m.group) == cols]
            tables.append(_table(plugin, label, columns, overall, grouped, limit, names, gaps))
    return tables


def gap_rows(plugin: PluginResult, limit: int, names: DisplayNames | None = None) -> list[GapRow]:
    names = names or DisplayNames()
    rows = []
    for m in plugin.metrics:
        if not is_gap(m):
            continue
        if m.reference == "best" or (m.reference is None and not m.id.endswith("_overall")):
            ref = "best group"
            ref_name = "the best group"
            if m.reference_group:
                ref += f" ({group_label(m.reference_group)})"
                ref_name += f" ({names.group(m.reference_group)})"
        else:
            ref = m.reference or "overall"
            ref_name = "all patients" if ref == "overall" else ref
        if m.suppressed:
            hidden = Cell(DASH, "suppressed")
            p_value = p_adjusted = hidden
        else:
            p_value, p_adjusted = Cell(fmt_p(m.p_value)), Cell(fmt_p(m.p_adjusted))
        rows.append(
            GapRow(
                metric_id=m.id,
                metric=display_name(m.id),
                label=None if m.label is None else shorten(m.label),
                group=group_label(m.group),
                reference=ref,
                estimate=_metric_cell(m, limit),
                p_value=p_value,
                p_adjusted=p_adjusted,
                flags=tuple(flag_texts(m)),
                metric_words=names.metric(m.id),
                group_name=names.group(m.group),
                reference_name=ref_name,
            )
        )
    return rows


def status_symbol(status: Status) -> str:
    """A shape next to each colour, so status never depends on colour vision."""
    return {
        Status.PASS: "✓",
        Status.WARN: "!",
        Status.FAIL: "✗",
        Status.INCONCLUSIVE: "?",
        Status.ERROR: "‼",
        Status.SKIPPED: "–",
    }[Status(status)]
