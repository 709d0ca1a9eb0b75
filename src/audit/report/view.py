"""Turn a :class:`PluginResult`'s flat metric list into the tables every renderer shows.

Metrics are grouped by finding label (multi-label mode), then by *grouping*: the set of
columns a group is defined on ({sex}, {age_band}, {sex, age_band}). Each grouping becomes a
table with one row per group (overall first) and one column per metric id. Gap metrics
(``*_gap`` against the best group, ``*_gap_overall`` against overall) go to their own table.
Everything here is already formatted text with suppression applied, except the numbers the
forest plot needs (which skip suppressed cells).
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.core.results import Metric, PluginResult, Status
from audit.report.formatting import (
    DASH,
    display_name,
    fmt_p,
    flag_texts,
    group_label,
    is_gap,
    metric_parts,
    suppressed_text,
)
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


@dataclass(frozen=True)
class ForestPoint:
    label: str
    value: float
    ci: tuple[float, float] | None
    under_powered: bool


@dataclass(frozen=True)
class ForestData:
    metric_id: str
    points: tuple[ForestPoint, ...]
    overall: float | None
    suppressed: tuple[str, ...]
    undefined: tuple[tuple[str, str], ...]


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


def _count_cell(row_metrics: dict[str, Metric], metric_id: str, row_suppressed: bool, limit: int) -> Cell:
    """The n or positives cell.

    A plugin's own ``n`` / ``positives`` metric carries its own suppression. A count derived
    from other metrics (``Metric.n``, the denominator of FNR) is hidden as soon as any cell of
    the row is suppressed, since it would reveal the size of that cell.
    """
    own = row_metrics.get(metric_id)
    if own is not None:
        if own.suppressed:
            return Cell(suppressed_text(limit), "suppressed")
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
        return Cell(suppressed_text(limit), "suppressed")
    return Cell(f"{value:,}")


def _metric_cell(metric: Metric | None, limit: int) -> Cell:
    if metric is None:
        return Cell(DASH, "missing")
    state = "suppressed" if metric.suppressed else "undefined" if metric.value is None else "ok"
    text, interval = metric_parts(metric, limit)
    return Cell(text, state, interval)


def _table(
    plugin: PluginResult,
    label: str | None,
    grouping: tuple[str, ...],
    overall: list[Metric],
    grouped: list[Metric],
    limit: int,
) -> GroupTable:
    metrics = overall + grouped
    ids = _ordered_ids(metrics)
    value_ids = [i for i in ids if i not in ("n", "positives")]
    has_positives = "positives" in ids or any(
        m.id in _POSITIVE_DENOMINATORS and m.denominator is not None for m in metrics
    )
    columns = ["n"] + (["positives"] if has_positives else []) + value_ids
    key = key_metric_for(plugin, set(value_ids))

    by_group: dict[tuple, dict[str, Metric]] = {}
    labels: dict[tuple, str] = {}
    for m in metrics:
        k = _group_key(m.group)
        by_group.setdefault(k, {}).setdefault(m.id, m)
        labels.setdefault(k, group_label(m.group))

    rows = []
    for k, row_metrics in by_group.items():
        suppressed = any(m.suppressed for m in row_metrics.values())
        cells = [_count_cell(row_metrics, "n", suppressed, limit)]
        if has_positives:
            cells.append(_count_cell(row_metrics, "positives", suppressed, limit))
        cells += [_metric_cell(row_metrics.get(i), limit) for i in value_ids]
        flags = tuple(dict.fromkeys(f for m in row_metrics.values() for f in flag_texts(m)))
        rows.append(Row(labels[k], tuple(cells), flags, overall=not k, suppressed=suppressed))

    forest = _forest(key, by_group, labels) if key and grouped else None
    title_parts = [" × ".join(map(shorten, grouping)) if grouping else "overall"]
    if label is not None:
        title_parts.insert(0, shorten(label))
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
    )


def _forest(key: str, by_group: dict, labels: dict) -> ForestData:
    points, suppressed, undefined = [], [], []
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
        elif m.value is None:
            undefined.append((labels[k], m.reason or "undefined"))
        else:
            points.append(ForestPoint(labels[k], m.value, m.ci, "under_powered" in m.flags))
    return ForestData(key, tuple(points), overall_value, tuple(suppressed), tuple(undefined))


def group_tables(plugin: PluginResult, limit: int) -> list[GroupTable]:
    """One table per (label, grouping), in the order the plugin emitted them."""
    plain = [m for m in plugin.metrics if not is_gap(m) and m.id not in NOT_IN_TABLES]
    tables = []
    for label in dict.fromkeys(m.label for m in plain):
        of_label = [m for m in plain if m.label == label]
        overall = [m for m in of_label if not m.group]
        groupings: dict[frozenset, tuple[str, ...]] = {}
        for m in of_label:
            if m.group:
                groupings.setdefault(frozenset(m.group), tuple(m.group))
        if not groupings:
            tables.append(_table(plugin, label, (), overall, [], limit))
        for cols, names in groupings.items():
            grouped = [m for m in of_label if m.group and frozenset(m.group) == cols]
            tables.append(_table(plugin, label, names, overall, grouped, limit))
    return tables


def gap_rows(plugin: PluginResult, limit: int) -> list[GapRow]:
    rows = []
    for m in plugin.metrics:
        if not is_gap(m):
            continue
        if m.reference == "best" or (m.reference is None and not m.id.endswith("_overall")):
            ref = "best group"
            if m.reference_group:
                ref += f" ({group_label(m.reference_group)})"
        else:
            ref = m.reference or "overall"
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
