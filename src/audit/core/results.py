"""Immutable results of an audit and their JSON form.

Data flows one way: plugins return :class:`PluginResult`, the runner gathers them with the
gate outcomes and the provenance into an :class:`AuditResult`, and renderers read that and
nothing else. ``AuditResult.from_json(r.to_json()) == r`` holds exactly, so a report can be
re-rendered from ``results.json`` alone.

The JSON contract of a metric (documented in docs/results-json.md, schema in
``audit/schema/results.schema.json``): ``id`` (stable snake_case), ``value`` (number or null
with a ``reason``), ``n``, ``group`` (column → value, null for overall) and ``ci``
([low, high] or null), plus the optional fields below.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any

SCHEMA_VERSION = "1.6"


class Status(str, Enum):
    """Outcome of a finding, a gate, a plugin or the whole audit (Evidently's statuses)."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"

    def __str__(self) -> str:  # so f-strings print PASS, not Status.PASS
        return self.value


# Worst first: the status of a collection is the worst of its members.
_SEVERITY = [Status.ERROR, Status.FAIL, Status.WARN, Status.INCONCLUSIVE, Status.PASS, Status.SKIPPED]


def worst_status(statuses) -> Status:
    """Return the most severe status (ERROR > FAIL > WARN > INCONCLUSIVE > PASS > SKIPPED): a shown problem outranks an undecided one."""
    statuses = list(statuses)
    if not statuses:
        return Status.SKIPPED
    return min(statuses, key=_SEVERITY.index)


def _clean_number(x):
    """NaN and infinities are not JSON: an undefined number is None (with a reason elsewhere)."""
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else x


@dataclass(frozen=True)
class Metric:
    """One number the audit reports.

    Parameters
    ----------
    id : str
        Stable snake_case metric id (``fnr``, ``auroc``, ``fnr_gap``): public API used by
        gates, configs and reports.
    value : float or None
        None when the metric is undefined for this group; ``reason`` then says why.
    n : int or None
        Rows (cases) the metric is computed on: the group's size.
    group : dict or None
        Column name → value (``{"sex": "F", "age_band": "60-80"}``); None for overall.
    ci : tuple of (low, high) or None
        Interval at ``level``; ``ci_method`` names how it was computed.
    denominator : int or None
        The count the rate is taken over (positives for FNR), when that differs from ``n``.
    label : str or None
        The finding label in multi-label mode; None for a single label.
    reference : str or None
        For gaps: ``"best"`` or ``"overall"``; ``reference_group`` names the best group.
    p_value, p_adjusted : float or None
        Test of "gap = 0" and its multiplicity-corrected value (method in the plugin settings).
    flags : tuple of str
        e.g. ``"under_powered"``.
    suppressed : bool
        The cell is below ``report.min_cell``, or would give such a cell back: renderers must
        not show it, and the public record (see :func:`public_record`) carries no value for it.
    ci_simultaneous : tuple of (low, high) or None
        The interval at the simultaneous level ``1 - (1 - level) / m`` of its family of m
        comparisons (every metric with this id; Bonferroni). Gates judge FAIL on it, so a gate
        over many groups keeps its error rate. Added in schema 1.1.
    feature : str or None
        The input column a per-feature metric describes (drift of ``age``); None otherwise.
        Added in schema 1.4.
    perturbation, severity : str and int, or None
        The input perturbation (``"gaussian_noise"``) and its severity (1 to 5) a metric was
        measured under (robustness plugin); None for metrics of the unperturbed inputs.
        Added in schema 1.6.
    """

    id: str
    value: float | None
    n: int | None = None
    group: dict[str, str] | None = None
    ci: tuple[float, float] | None = None
    ci_method: str | None = None
    level: float | None = None
    reason: str | None = None
    denominator: int | None = None
    label: str | None = None
    reference: str | None = None
    reference_group: dict[str, str] | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    flags: tuple[str, ...] = ()
    suppressed: bool = False
    ci_simultaneous: tuple[float, float] | None = None
    feature: str | None = None
    perturbation: str | None = None
    severity: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _clean_number(self.value))
        for name in ("ci", "ci_simultaneous"):
            pair = getattr(self, name)
            if pair is not None:
                lo, hi = _clean_number(pair[0]), _clean_number(pair[1])
                object.__setattr__(self, name, None if lo is None or hi is None else (lo, hi))
        for name in ("p_value", "p_adjusted", "level"):
            object.__setattr__(self, name, _clean_number(getattr(self, name)))
        for name in ("n", "denominator", "severity"):
            v = getattr(self, name)
            object.__setattr__(self, name, None if v is None else int(v))
        if self.group is not None:
            object.__setattr__(self, "group", {str(k): str(v) for k, v in self.group.items()})
        if self.reference_group is not None:
            object.__setattr__(
                self, "reference_group", {str(k): str(v) for k, v in self.reference_group.items()}
            )
        object.__setattr__(self, "flags", tuple(self.flags))
        if self.value is None and not self.reason:
            object.__setattr__(self, "reason", "suppressed" if self.suppressed else "undefined")

    @property
    def group_label(self) -> str:
        """Human-readable group name: ``sex=F, age_band=60-80`` or ``overall``."""
        if not self.group:
            return "overall"
        return ", ".join(f"{k}={v}" for k, v in self.group.items())


@dataclass(frozen=True)
class Finding:
    """A statement the audit makes, with its status and the checklist items it evidences.

    ``checklist`` holds references such as ``"CLAIM-2024:38"``, ``"TRIPOD+AI:23a"``,
    ``"FUTURE-AI:Fairness 3"``.
    """

    id: str
    title: str
    status: Status
    message: str
    metric: str | None = None
    group: dict[str, str] | None = None
    threshold: float | None = None
    checklist: tuple[str, ...] = ()
    kind: str = "measurement"

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "checklist", tuple(self.checklist))
        object.__setattr__(self, "threshold", _clean_number(self.threshold))
        if self.group is not None:
            object.__setattr__(self, "group", {str(k): str(v) for k, v in self.group.items()})


@dataclass(frozen=True)
class Curve:
    """One group's metric at a grid of thresholds, for a plot (added in schema 1.2).

    Parameters
    ----------
    id : str
        Stable snake_case id of what is plotted, e.g. ``fnr_by_threshold`` (the miss rate at
        each threshold, with the prediction rule ``score >= threshold``).
    group : dict or None
        Column name → value, as on :class:`Metric`.
    label : str or None
        The label in multi-label mode; None for a single label.
    thresholds : tuple of float
        The thresholds, increasing.
    values : tuple of float or None
        The value at each threshold; None where it is undefined or withheld (a point resting
        on a small count; the plugin that publishes the curve says which).
    operating_point : float or None
        The threshold the audit's other numbers use, to be marked on the plot.
    low, high : tuple of float or None, optional
        A pointwise band around ``values`` (added in schema 1.3), one bound per threshold; None
        where there is no band. The plugin's settings name the band's method and level.

    The x axis need not be a threshold: a reliability curve (``reliability``, calibration
    plugin) has the predicted probability there.
    """

    id: str
    group: dict[str, str] | None
    label: str | None
    thresholds: tuple[float, ...]
    values: tuple[float | None, ...]
    operating_point: float | None = None
    low: tuple[float | None, ...] | None = None
    high: tuple[float | None, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "values", tuple(_clean_number(v) for v in self.values))
        object.__setattr__(self, "operating_point", _clean_number(self.operating_point))
        if len(self.values) != len(self.thresholds):
            raise ValueError(f"curve {self.id}: {len(self.values)} values for {len(self.thresholds)} thresholds")
        for name in ("low", "high"):
            band = getattr(self, name)
            if band is not None:
                band = tuple(_clean_number(v) for v in band)
                if len(band) != len(self.thresholds):
                    raise ValueError(f"curve {self.id}: {len(band)} {name} bounds for {len(self.thresholds)} points")
                object.__setattr__(self, name, band)
        if self.group is not None:
            object.__setattr__(self, "group", {str(k): str(v) for k, v in self.group.items()})

    @property
    def group_label(self) -> str:
        """Human-readable group name, as :attr:`Metric.group_label`."""
        if not self.group:
            return "overall"
        return ", ".join(f"{k}={v}" for k, v in self.group.items())


@dataclass(frozen=True)
class Distribution:
    """One feature's distribution in the reference and the audited data, for a plot (schema 1.5).

    Parameters
    ----------
    feature : str
        The input column.
    kind : ``"numeric"`` or ``"categorical"``
    bins : tuple of str
        Bin labels in display order ("< 20", "20 to < 30", ">= 80", "missing", a category, "3
        other categories").
    reference, audited : tuple of float
        The share of each sample's rows in each bin (missing rows included, so each sums to 1).
    edges : tuple of float or None
        Numbers: the inner bin edges (a bin holds its lower edge); None for categories.

    The publishing plugin merges bins until every count they imply is 0 or at least
    ``report.min_cell`` in both samples (:func:`audit.stats.histogram.safe_histogram`).
    """

    feature: str
    kind: str
    bins: tuple[str, ...]
    reference: tuple[float, ...]
    audited: tuple[float, ...]
    edges: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bins", tuple(str(b) for b in self.bins))
        object.__setattr__(self, "reference", tuple(float(v) for v in self.reference))
        object.__setattr__(self, "audited", tuple(float(v) for v in self.audited))
        if self.edges is not None:
            object.__setattr__(self, "edges", tuple(float(v) for v in self.edges))
        if not len(self.bins) == len(self.reference) == len(self.audited):
            raise ValueError(f"distribution {self.feature}: {len(self.bins)} bins, {len(self.reference)} "
                             f"reference and {len(self.audited)} audited shares")


@dataclass(frozen=True)
class PluginResult:
    """Everything one plugin measured: metrics, findings, curves, the settings it used, warnings."""

    plugin: str
    principle: str
    version: str
    status: Status
    summary: str
    metrics: tuple[Metric, ...] = ()
    findings: tuple[Finding, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    error: str | None = None
    checklist: tuple[str, ...] = ()
    curves: tuple[Curve, ...] = ()
    distributions: tuple[Distribution, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "distributions", tuple(self.distributions))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "findings", tuple(self.findings))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "checklist", tuple(self.checklist))
        object.__setattr__(self, "curves", tuple(self.curves))

    def metric_ids(self) -> list[str]:
        """Sorted distinct metric ids, without the plugin prefix."""
        return sorted({m.id for m in self.metrics})

    def find(self, metric_id: str) -> list[Metric]:
        """All metrics with this id (one per group, label and reference)."""
        return [m for m in self.metrics if m.id == metric_id]


@dataclass(frozen=True)
class GateCheck:
    """The outcome of a gate on one metric value (one group, label or reference).

    ``threshold`` (schema 1.4) is the number this value was judged against: the gate's own
    threshold, or for a baseline gate the baseline run's value of the same record plus the
    offset. It is None when the value was judged against no number (a baseline gate whose
    baseline has no value for this record), when the check is suppressed (the public record
    withholds it with the value: a baseline threshold gives the baseline's value of a group
    that is suppressed now), and in results written before the field existed.
    """

    group: dict[str, str] | None
    value: float | None
    ci: tuple[float, float] | None
    status: Status
    label: str | None = None
    reference: str | None = None
    suppressed: bool = False
    threshold: float | None = None
    # The input column of a per-feature metric (a gate over drift_effect checks each feature).
    feature: str | None = None
    # The perturbation and severity of a robustness record (schema 1.6): a gate over
    # robustness.auroc_drop checks each perturbation at each severity it covers.
    perturbation: str | None = None
    severity: int | None = None

    @property
    def detail(self) -> str | None:
        """What besides the group tells this check apart: the feature, the perturbation."""
        parts = [self.feature] if self.feature else []
        if self.perturbation:
            parts.append(self.perturbation if self.severity is None else f"{self.perturbation} at severity {self.severity}")
        return ", ".join(parts) or None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "value", _clean_number(self.value))
        object.__setattr__(self, "threshold", _clean_number(self.threshold))
        if self.ci is not None:
            object.__setattr__(self, "ci", (float(self.ci[0]), float(self.ci[1])))


def _file_name(name: object) -> str | None:
    # Only the file's name is ever recorded, whichever separator a path was written with.
    if name is None:
        return None
    return str(name).replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class GateResult:
    """A gate such as ``fairness.fnr_gap<=0.05`` evaluated over every group.

    ``baseline`` (schema 1.4) is set on a baseline gate (``fairness.fnr_gap<=baseline+0.02``)
    and None on any other: ``{"run_id": ..., "history": ..., "offset": ...}``, the baseline
    run (None when the history has no accepted run), the history's file name (never a path;
    None when the history was never read) and the offset added to each baseline value. Each
    check's ``threshold`` then says what that value was held to; ``threshold`` here is the
    loosest of those over the checks that are not suppressed (the offset when there is none).
    """

    expression: str
    metric: str
    operator: str
    threshold: float
    policy: str
    status: Status
    message: str
    checks: tuple[GateCheck, ...] = ()
    # No value could be judged (none produced, or every one undefined, suppressed or
    # under-powered): such a gate is never a pass, and exits 1 unless empty gates are allowed.
    empty: bool = False
    baseline: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "checks", tuple(self.checks))
        if self.baseline is not None:
            b = self.baseline
            offset = _clean_number(b.get("offset"))
            if offset is None:
                raise ValueError(f"gate {self.expression}: baseline.offset is {b.get('offset')!r}, not a finite number")
            run_id = b.get("run_id")
            object.__setattr__(self, "baseline", {
                "run_id": None if run_id is None else str(run_id),
                "history": _file_name(b.get("history")),
                "offset": offset,
            })


@dataclass(frozen=True)
class AuditResult:
    """The whole audit: plugin results, gates, provenance and the resolved configuration."""

    plugins: tuple[PluginResult, ...]
    gates: tuple[GateResult, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    data_summary: dict[str, Any] = field(default_factory=dict)
    attestations: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    status: Status = Status.SKIPPED
    exit_code: int = 0
    schema_version: str = SCHEMA_VERSION
    full_record: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "plugins", tuple(self.plugins))
        object.__setattr__(self, "gates", tuple(self.gates))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "status", Status(self.status))

    def plugin(self, name: str) -> PluginResult | None:
        """The result of the plugin called ``name``, or None."""
        return next((p for p in self.plugins if p.plugin == name), None)

    # -- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (enums as strings, tuples as lists)."""
        return _jsonable(asdict(self))

    def to_json(self, indent: int | None = 2) -> str:
        """Serialise to the results.json contract."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditResult:
        """Inverse of :meth:`to_dict`."""
        return _build(cls, data)

    @classmethod
    def from_json(cls, text: str) -> AuditResult:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def _jsonable(obj):
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and not isinstance(obj, str):  # numpy scalars in settings
        return _jsonable(obj.item())
    return obj


_NESTED = {
    AuditResult: {"plugins": PluginResult, "gates": GateResult},
    PluginResult: {"metrics": Metric, "findings": Finding, "curves": Curve, "distributions": Distribution},
    GateResult: {"checks": GateCheck},
}
_PAIRS = {"ci", "ci_simultaneous"}


def _build(cls, data: dict[str, Any]):
    kwargs = {}
    nested = _NESTED.get(cls, {})
    names = {f.name for f in fields(cls)}
    for key, value in data.items():
        if key not in names:
            continue  # tolerate fields added by newer versions
        if key in nested:
            value = tuple(_build(nested[key], v) for v in value)
        elif key in _PAIRS and value is not None:
            value = (value[0], value[1])
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


# Flag on the ``n`` metric of a group with fewer than min_cell patients (primary suppression):
# the public record withholds the group's label as well as its numbers.
SMALL_GROUP = "small_group"
# Records of a population outside the audited data (the reference data as a development
# pseudo-site): not part of the audited rows, so the disclosure model leaves them out.
REFERENCE_DATA = "reference_data"
# Records that summarise across sites (a pooled estimate): their n counts sites, not rows.
ACROSS_SITES = "across_sites"
# Records of a computation that did not run (a perturbation the model failed on): no value,
# and, unlike an undefined rate, no statement about any count.
NOT_RUN = "not_run"
# The published stand-in for such a label, numbered per attribute.
WITHHELD_LABEL = "(small group {k})"

# Set on a suppressed metric in the public record in place of everything it would reveal.
SUPPRESSED_REASON = "suppressed: fewer than report.min_cell patients, or would reveal such a cell"


def public_record(result: AuditResult) -> AuditResult:
    """The audit as it may be published: no suppressed value survives anywhere.

    A suppressed metric keeps its id, group, label and reference and loses its value,
    intervals, p-values, n, denominator, flags and reason ("undefined" is itself suppressed,
    since it tells that a count is 0); every metric of a group whose ``n`` is suppressed loses
    its ``n``; gate checks on suppressed metrics lose their values and thresholds. With
    ``report.full_record = true`` the result is returned unchanged, marked ``full_record``.
    """
    if result.full_record:
        return result
    relabel = _withheld_labels(result.plugins)
    # Curves are published only for groups that are not small (the plugin's rule), so the
    # relabelling never applies to them in practice; it runs anyway, so that no path of the
    # record can show a withheld label.
    plugins = tuple(replace(p, metrics=tuple(_relabel_metric(m, relabel) for m in _public_metrics(p.metrics)),
                            curves=tuple(_relabel_curve(c, relabel) for c in p.curves))
                    for p in result.plugins)
    gates = tuple(replace(g, checks=tuple(
        _relabel_check(replace(c, value=None, ci=None, threshold=None) if c.suppressed else c, relabel)
        for c in g.checks)) for g in result.gates)
    return replace(result, plugins=plugins, gates=gates)


def _withheld_labels(plugins) -> dict[tuple[str, str], str]:
    """(attribute, value) -> stand-in, for every single-attribute group flagged SMALL_GROUP.

    The value of a group of fewer than min_cell patients is withheld wherever it appears,
    intersections included; the numbering follows the order of first appearance.
    """
    relabel: dict[tuple[str, str], str] = {}
    per_column: dict[str, int] = {}
    for p in plugins:
        for m in p.metrics:
            if m.id == "n" and SMALL_GROUP in m.flags and m.group and len(m.group) == 1:
                (column, value), = m.group.items()
                if (column, value) not in relabel:
                    per_column[column] = per_column.get(column, 0) + 1
                    relabel[(column, value)] = WITHHELD_LABEL.format(k=per_column[column])
    return relabel


def _relabel(group: dict[str, str] | None, relabel) -> dict[str, str] | None:
    if not group or not relabel:
        return group
    return {k: relabel.get((k, v), v) for k, v in group.items()}


def _relabel_metric(m: Metric, relabel) -> Metric:
    if not relabel:
        return m
    flags = tuple(f for f in m.flags if f != SMALL_GROUP)
    return replace(m, group=_relabel(m.group, relabel), reference_group=_relabel(m.reference_group, relabel),
                   flags=flags)


def _relabel_curve(c: Curve, relabel) -> Curve:
    return replace(c, group=_relabel(c.group, relabel)) if relabel else c


def _relabel_check(c: GateCheck, relabel) -> GateCheck:
    return replace(c, group=_relabel(c.group, relabel)) if relabel else c


def _public_metrics(metrics: tuple[Metric, ...]) -> tuple[Metric, ...]:
    def where(m):
        return tuple(sorted((m.group or {}).items())), m.label

    hidden_n = {where(m) for m in metrics if m.id == "n" and m.suppressed}
    hidden_n_any_label = {w[0] for w in hidden_n}
    out = []
    for m in metrics:
        if m.suppressed:
            m = Metric(id=m.id, value=None, group=m.group, label=m.label, reference=m.reference,
                       reference_group=m.reference_group, level=m.level, suppressed=True,
                       reason=SUPPRESSED_REASON, feature=m.feature, perturbation=m.perturbation,
                       severity=m.severity)
        elif where(m)[0] in hidden_n_any_label:  # n is shared by every label of a group
            m = replace(m, n=None)
        out.append(m)
    return tuple(out)
