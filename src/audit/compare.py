"""What changed between two audits: compare two results.json documents.

:func:`compare_results` matches the metrics of run A and run B by
``(plugin, id, label, group, reference)`` and keeps only what changed: metrics whose intervals
no longer overlap, metrics present in one run only, metrics that became undefined (or
suppressed) or defined, plugin and gate statuses, provenance (model, data, seed, versions)
and configuration. :meth:`Comparison.worse` says whether a metric got worse beyond its
interval, which needs the direction of the metric (:func:`metric_direction`):

==========================================================  =======================================
metric ids                                                  better when
==========================================================  =======================================
``sensitivity specificity ppv npv auroc``                   higher
``fnr fpr brier ece site_identifiability_auroc``            lower
``*_gap *_gap_overall`` (signed: positive = worse)          lower
``*_loss`` (``*_transfer_loss``: own minus shared)          lower
``*_tau2 *_i2`` (between-site heterogeneity)                lower
``*_drop`` (clean minus perturbed), ``flip_rate``           lower
``fnr_gap_change`` (perturbed gap minus clean gap)          lower
``X_worst X_stress`` (robustness summaries)                 as ``X``
``calibration_slope``                                       closer to 1
``oe_ratio``                                                closer to 1 on the log scale
``calibration_intercept calibration_in_the_large``          closer to 0
``X_pooled`` (random-effects mean)                          as ``X``
``X_pi_low`` (lower end of the prediction interval)         as ``X``, when higher ``X`` is better
anything else (``n``, ``prevalence``, ``flagged``,          unknown: a change is reported as
``threshold``, ``*_q``, ``*_pi_high``, ``*_own``, ...)      "changed", never "worse"
==========================================================  =======================================

The direction of the gaps follows ``audit.plugins.disaggregation.DIRECTION``, whose gaps are
signed so that a positive gap is worse whatever the base metric.

**Worse beyond its interval.** Both runs have an interval (``ci``, at its ``level``; not the
simultaneous one) and B's whole interval lies on the worse side of A's whole interval: for a
lower-is-better metric ``B.ci.low > A.ci.high``, for higher-is-better ``B.ci.high < A.ci.low``,
and for a metric with a target every point of B's interval is farther from the target than
every point of A's. The intervals then do not overlap, so B's value lies outside A's interval
on the worse side. Two disjoint 95% intervals is a conservative test (much stricter than
p < 0.05): a change it calls worse is not noise. Intervals that touch overlap. A metric
without an interval on either side is never "worse": a changed value is reported as
``value_changed``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.core.results import SCHEMA_VERSION
from audit.errors import InputError, UnknownMetricError

__all__ = [
    "ABSENT", "Comparison", "Direction", "FieldChange", "MetricChange", "StatusChange",
    "compare_results", "format_comparison", "metric_direction", "read_results", "require_results",
]

_MAJOR = SCHEMA_VERSION.split(".")[0]
_VERSION = re.compile(r"^(\d+)\.(\d+)$")


# -- directions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Direction:
    """Which way a metric gets better.

    Parameters
    ----------
    better : {"higher", "lower", "target"}
        Higher values are better, lower values are, or values closer to ``target``.
    target : float or None
        The ideal value when ``better == "target"`` (1 for a calibration slope).
    log : bool
        Distances to the target are taken on the log scale (ratios such as O/E).
    """

    better: str
    target: float | None = None
    log: bool = False

    def describe(self) -> str:
        """Plain words: ``higher is better``, ``closer to 1 is better``."""
        if self.better == "target":
            return f"closer to {self.target:g}{' (log scale)' if self.log else ''} is better"
        return f"{self.better} is better"


HIGHER = Direction("higher")
LOWER = Direction("lower")
_EXACT = {
    "sensitivity": HIGHER, "specificity": HIGHER, "ppv": HIGHER, "npv": HIGHER, "auroc": HIGHER,
    "fnr": LOWER, "fpr": LOWER, "brier": LOWER, "ece": LOWER,
    # A classifier that tells the sites apart from the inputs means site-specific shortcuts.
    "site_identifiability_auroc": LOWER,
    # Robustness: the share of decisions a perturbation flips.
    "flip_rate": LOWER,
    "calibration_slope": Direction("target", 1.0),
    "oe_ratio": Direction("target", 1.0, log=True),
    "calibration_intercept": Direction("target", 0.0),
    "calibration_in_the_large": Direction("target", 0.0),
}
_LOWER_SUFFIXES = ("_gap", "_gap_overall", "_loss", "_tau2", "_i2", "_drop", "_gap_change")


def metric_direction(metric_id: str) -> Direction | None:
    """The direction in which a metric gets better, or None when it has none.

    Parameters
    ----------
    metric_id : str
        A metric id, bare (``fnr_gap``) or with its plugin (``fairness.fnr_gap``).

    Returns
    -------
    Direction or None
        From the table in the module docstring; None for descriptive numbers (counts,
        prevalence, thresholds) and ids it does not know.
    """
    name = metric_id.split(".", 1)[1] if "." in metric_id else metric_id
    if name in _EXACT:
        return _EXACT[name]
    if name.endswith(_LOWER_SUFFIXES):
        return LOWER
    for suffix in ("_worst", "_stress"):  # robustness summaries: as the metric they summarise
        if name.endswith(suffix):
            return metric_direction(name.removesuffix(suffix))
    if name.endswith("_pooled"):
        return _EXACT.get(name.removesuffix("_pooled"))
    if name.endswith("_pi_low"):
        base = _EXACT.get(name.removesuffix("_pi_low"))
        return base if base is HIGHER else None
    return None


# -- validation ---------------------------------------------------------------------------

def require_results(data: Any, *, source: str = "results") -> tuple[int, int]:
    """Check that ``data`` is a parsed results.json of a schema this version reads.

    Parameters
    ----------
    data : object
        What ``json.load`` returned for the file.
    source : str
        How to name the file in the message (its path, or "A").

    Returns
    -------
    tuple of int
        The schema version as ``(major, minor)``.

    Raises
    ------
    InputError
        Not a JSON object with the results.json keys, or of another major schema version.
    """
    where = f"{source} is not a future-audit results.json"
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object, found {type(data).__name__}.")
    for key, kind in (("schema_version", str), ("plugins", list), ("gates", list), ("provenance", dict),
                      ("status", str), ("exit_code", int)):
        if not isinstance(data.get(key), kind):
            raise InputError(f"{where}: '{key}' is missing or not a {kind.__name__}. "
                             "Pass the results.json written by 'future-audit run'.")
    match = _VERSION.match(data["schema_version"])
    if not match:
        raise InputError(f"{where}: schema_version {data['schema_version']!r} is not 'major.minor'.")
    for i, plugin in enumerate(data["plugins"]):
        if not (isinstance(plugin, dict) and isinstance(plugin.get("plugin"), str)
                and isinstance(plugin.get("status"), str) and isinstance(plugin.get("metrics"), list)
                and all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in plugin["metrics"])):
            raise InputError(f"{where}: plugins[{i}] lacks a 'plugin' name, a 'status' or a 'metrics' list "
                             "of records with an 'id'.")
    for i, gate in enumerate(data["gates"]):
        if not (isinstance(gate, dict) and isinstance(gate.get("expression"), str)
                and isinstance(gate.get("status"), str)):
            raise InputError(f"{where}: gates[{i}] lacks an 'expression' or a 'status'.")
    return int(match.group(1)), int(match.group(2))


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results.json file and check it with :func:`require_results`.

    Raises
    ------
    InputError
        The file is missing or unreadable, is not JSON, or is not a results.json; the
        message names the file.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"Results file {str(p)!r} not found. Pass the results.json of an audit run.") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise InputError(f"Results file {str(p)!r} cannot be read ({reason}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{str(p)!r} is not a future-audit results.json: not valid JSON (line {exc.lineno}, "
                         f"column {exc.colno}).") from None
    require_results(data, source=repr(str(p)))
    return data


def _check_pair(a: Any, b: Any, names: tuple[str, str]) -> None:
    (ma, _), (mb, _) = require_results(a, source=names[0]), require_results(b, source=names[1])
    if ma != mb:
        raise InputError(f"{names[0]} has results schema {a['schema_version']} and {names[1]} has "
                         f"{b['schema_version']}: only files of the same major version can be compared. "
                         "Re-run the older audit with the newer future-audit.")
    if str(ma) != _MAJOR:
        raise InputError(f"{names[0]} and {names[1]} have results schema {a['schema_version']}, written by a "
                         f"newer future-audit (this one reads {_MAJOR}.x); upgrade future-audit.")


# -- the comparison -----------------------------------------------------------------------

class _Absent:
    """A key missing on one side (distinct from a key whose value is null)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()

# Kinds of metric change, most important first (the order of format_comparison).
KINDS = ("worse", "now_undefined", "only_a", "changed", "better", "only_b", "now_defined", "value_changed")


@dataclass(frozen=True)
class MetricChange:
    """One metric record that changed between A and B.

    ``kind`` is one of: ``worse`` / ``better`` (intervals disjoint, B on the worse or better
    side), ``changed`` (intervals disjoint, no known direction), ``now_undefined`` /
    ``now_defined`` (a value null, i.e. undefined or suppressed, on one side only),
    ``only_a`` / ``only_b`` (the record exists in one run only), ``value_changed`` (values
    differ and at least one side has no interval, so the change cannot be judged).
    ``separation`` is the distance between the intervals in widths of A's interval (0 when
    not ``worse``, ``better`` or ``changed``); it ranks the changes.
    """

    plugin: str
    id: str
    label: str | None
    group: dict[str, str] | None
    reference: str | None
    kind: str
    a: float | None = None
    a_ci: tuple[float, float] | None = None
    b: float | None = None
    b_ci: tuple[float, float] | None = None
    direction: Direction | None = None
    separation: float = 0.0
    note: str | None = None
    # The feature (drift) or perturbation and severity (robustness) of the record, in words.
    detail: str | None = None

    @property
    def metric(self) -> str:
        """``plugin.id``, as gates name it."""
        return f"{self.plugin}.{self.id}"

    @property
    def where(self) -> str:
        """Group, label and reference in words: ``sex=F, label covid, vs best``."""
        parts = [", ".join(f"{k}={v}" for k, v in self.group.items()) if self.group else "overall"]
        if self.label is not None:
            parts.append(f"label {self.label}")
        if self.reference is not None:
            parts.append(f"vs {self.reference}")
        if self.detail is not None:
            parts.append(self.detail)
        return ", ".join(parts)


@dataclass(frozen=True)
class StatusChange:
    """A plugin or gate whose status differs; a status of None means absent from that run."""

    name: str
    a: str | None
    b: str | None


@dataclass(frozen=True)
class FieldChange:
    """A provenance or configuration value that differs (``key`` dotted; ``ABSENT`` = missing)."""

    key: str
    a: Any
    b: Any


@dataclass(frozen=True)
class Comparison:
    """What changed from run A to run B (only changes are kept).

    Attributes
    ----------
    status, exit_code : tuple
        Overall status and exit code of A and B.
    metrics : tuple of MetricChange
        Sorted by importance (``KINDS`` order, then separation).
    plugins, gates : tuple of StatusChange
        Plugins by name, gates by expression.
    provenance, config : tuple of FieldChange
        Provenance (run times left out: they always differ), most important first; config
        differences sorted by key.
    matched : int
        Metric records present in both runs.
    metric_ids : frozenset of str
        ``plugin.id`` of every metric in either run (within the ``metric`` filter).
    """

    status: tuple[str, str]
    exit_code: tuple[int, int]
    metrics: tuple[MetricChange, ...] = ()
    plugins: tuple[StatusChange, ...] = ()
    gates: tuple[StatusChange, ...] = ()
    provenance: tuple[FieldChange, ...] = ()
    config: tuple[FieldChange, ...] = ()
    matched: int = 0
    metric_ids: frozenset[str] = frozenset()

    def _select(self, metric_id: str) -> list[MetricChange]:
        plugin, name = metric_id.split(".", 1) if "." in metric_id else (None, metric_id)
        if not any(i.split(".", 1)[1] == name and (plugin is None or i.split(".", 1)[0] == plugin)
                   for i in self.metric_ids):
            raise UnknownMetricError(f"Metric {metric_id!r} is in neither results file. "
                                     f"Known ids: {_sample(self.metric_ids)}.")
        return [c for c in self.metrics if c.id == name and (plugin is None or c.plugin == plugin)]

    def worse_records(self, metric_id: str) -> list[MetricChange]:
        """The records of ``metric_id`` (``plugin.id``, or a bare id for any plugin) that got worse."""
        return [c for c in self._select(metric_id) if c.kind == "worse"]

    def worse(self, metric_id: str) -> bool:
        """True when any record of the metric got worse beyond its interval (see the module doc).

        A metric without a known direction is never worse (its changes are ``changed``).

        Raises
        ------
        UnknownMetricError
            ``metric_id`` is in neither run.
        """
        return bool(self.worse_records(metric_id))

    @property
    def has_changes(self) -> bool:
        """Anything at all differs."""
        return bool(self.metrics or self.plugins or self.gates or self.provenance or self.config
                    or self.status[0] != self.status[1] or self.exit_code[0] != self.exit_code[1])


def _sample(ids: Iterable[str], k: int = 8) -> str:
    ids = sorted(ids)
    return ", ".join(ids[:k]) + (f", ... ({len(ids)} in all)" if len(ids) > k else "") if ids else "none"


def compare_results(a: dict, b: dict, *, metric: str | None = None,
                    names: tuple[str, str] = ("A", "B")) -> Comparison:
    """Compare two parsed results.json documents, A (before) and B (after).

    Parameters
    ----------
    a, b : dict
        ``json.load`` of two results.json files.
    metric : str, optional
        Only compare this metric (``plugin.id`` or a bare id); statuses, gates, provenance
        and configuration are compared in full either way.
    names : tuple of str
        How to name A and B in error messages (their paths).

    Returns
    -------
    Comparison

    Raises
    ------
    InputError
        Either document is not a results.json, or their schema major versions differ.
    UnknownMetricError
        ``metric`` is in neither document.
    """
    _check_pair(a, b, names)
    recs_a, recs_b = _records(a, metric), _records(b, metric)
    ids = frozenset(f"{k[0]}.{k[1]}" for k in (*recs_a, *recs_b))
    if metric is not None and not ids:
        raise UnknownMetricError(f"Metric {metric!r} is in neither {names[0]} nor {names[1]}. "
                                 f"Known ids: {_sample(_ids(a) | _ids(b))}.")
    changes, matched = [], 0
    for key in sorted(set(recs_a) | set(recs_b), key=lambda k: (k[:2], json.dumps(k[2:], default=str))):
        ra, rb = recs_a.get(key), recs_b.get(key)
        if ra is not None and rb is not None:
            matched += 1
        change = _metric_change(key, ra, rb)
        if change is not None:
            changes.append(change)
    changes.sort(key=lambda c: (KINDS.index(c.kind), -c.separation))
    return Comparison(
        status=(a["status"], b["status"]), exit_code=(a["exit_code"], b["exit_code"]),
        metrics=tuple(changes),
        plugins=_status_changes({p["plugin"]: p["status"] for p in a["plugins"]},
                                {p["plugin"]: p["status"] for p in b["plugins"]}),
        gates=_status_changes({g["expression"]: g["status"] for g in a["gates"]},
                              {g["expression"]: g["status"] for g in b["gates"]}),
        provenance=tuple(sorted(_diff(_timeless(a["provenance"]), _timeless(b["provenance"])),
                                key=_provenance_rank)),
        config=tuple(_diff(a.get("config") or {}, b.get("config") or {})),
        matched=matched, metric_ids=ids)


def _ids(doc: dict) -> set[str]:
    return {f"{p['plugin']}.{m['id']}" for p in doc["plugins"] for m in p["metrics"]}


def _records(doc: dict, metric: str | None) -> dict[tuple, dict]:
    """(plugin, id, label, group, reference, detail, occurrence) -> record, within the filter."""
    plugin_filter, name = (metric.split(".", 1) if "." in metric else (None, metric)) if metric else (None, None)
    out, seen = {}, {}
    for p in doc["plugins"]:
        if plugin_filter is not None and p["plugin"] != plugin_filter:
            continue
        for m in p["metrics"]:
            if name is not None and m["id"] != name:
                continue
            group = m.get("group")
            base = (p["plugin"], m["id"], m.get("label"),
                    None if group is None else json.dumps(group, sort_keys=True), m.get("reference"),
                    _detail(m))
            # A key is unique in results written by future-audit; a repeated one is paired in order.
            seen[base] = seen.get(base, -1) + 1
            out[(*base, seen[base])] = m
    return out


def _detail(m: dict) -> str | None:
    """The feature and the perturbation at its severity, which tell records of one id apart."""
    parts = [str(m["feature"])] if m.get("feature") else []
    if m.get("perturbation"):
        sev = m.get("severity")
        parts.append(str(m["perturbation"]) + ("" if sev is None else f" at severity {sev}"))
    return ", ".join(parts) or None


def _number(x) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else None


def _interval(m: dict) -> tuple[float, float] | None:
    ci = m.get("ci")
    if isinstance(ci, list | tuple) and len(ci) == 2:
        lo, hi = _number(ci[0]), _number(ci[1])
        if lo is not None and hi is not None:
            return (lo, hi)
    return None


def _metric_change(key: tuple, ra: dict | None, rb: dict | None) -> MetricChange | None:
    plugin, mid, label, group_json, reference, detail, _ = key
    direction = metric_direction(mid)
    common = dict(plugin=plugin, id=mid, label=label, reference=reference, direction=direction, detail=detail,
                  group=None if group_json is None else json.loads(group_json))
    if rb is None or ra is None:
        rec = ra if rb is None else rb
        return MetricChange(kind="only_a" if rb is None else "only_b", **common,
                            **({"a": _number(rec.get("value")), "a_ci": _interval(rec)} if rb is None
                               else {"b": _number(rec.get("value")), "b_ci": _interval(rec)}))
    va, vb, ca, cb = _number(ra.get("value")), _number(rb.get("value")), _interval(ra), _interval(rb)
    values = dict(a=va, a_ci=ca, b=vb, b_ci=cb)
    if (va is None) != (vb is None):
        undefined = ra if va is None else rb
        note = "suppressed" if undefined.get("suppressed") else (undefined.get("reason") or "undefined")
        return MetricChange(kind="now_undefined" if vb is None else "now_defined", note=note, **common, **values)
    if va is None or va == vb:
        return None
    if ca is None or cb is None:
        return MetricChange(kind="value_changed", **common, **values)
    if not (cb[0] > ca[1] or cb[1] < ca[0]):
        return None  # the intervals overlap: the data cannot tell the runs apart
    separation = (cb[0] - ca[1] if cb[0] > ca[1] else ca[0] - cb[1]) / max(ca[1] - ca[0], 1e-12)
    kind = _judge(direction, ca, cb)
    return MetricChange(kind=kind, separation=separation, **common, **values)


def _judge(direction: Direction | None, ca: tuple[float, float], cb: tuple[float, float]) -> str:
    """worse / better / changed for two disjoint intervals."""
    if direction is None:
        return "changed"
    if direction.better == "target":
        da, db = _distances(ca, direction), _distances(cb, direction)
        if da is None or db is None:
            return "changed"
        return "worse" if db[0] > da[1] else "better" if db[1] < da[0] else "changed"
    b_higher = cb[0] > ca[1]
    return "worse" if b_higher == (direction.better == "lower") else "better"


def _distances(ci: tuple[float, float], d: Direction) -> tuple[float, float] | None:
    """The interval of |x - target| over x in ci (log scale when asked)."""
    lo, hi, t = ci[0], ci[1], d.target
    if d.log:
        if lo <= 0 or t <= 0:
            return None
        lo, hi, t = math.log(lo), math.log(hi), math.log(t)
    far = max(abs(lo - t), abs(hi - t))
    return (0.0 if lo <= t <= hi else min(abs(lo - t), abs(hi - t)), far)


def _status_changes(a: dict[str, str], b: dict[str, str]) -> tuple[StatusChange, ...]:
    return tuple(StatusChange(k, a.get(k), b.get(k)) for k in (*a, *(k for k in b if k not in a))
                 if a.get(k) != b.get(k))


# Provenance keys that differ between any two runs and say nothing about what was audited.
_TIMES = ("started", "finished", "started_at", "finished_at", "duration_s")
_RANKED = ("model.", "data.", "reference.", "seed", "tool.", "git.", "git", "config", "versions.")


def _timeless(prov: dict) -> dict:
    return {k: v for k, v in prov.items() if k not in _TIMES}


def _provenance_rank(c: FieldChange) -> tuple[int, int, str]:
    # What was audited (model and data hashes) outranks how (seed, versions, environment).
    rank = next((i for i, p in enumerate(_RANKED) if c.key == p or c.key.startswith(p)), len(_RANKED))
    return (rank, 0 if "sha256" in c.key else 1, c.key)


def _diff(a: Any, b: Any, prefix: str = "") -> Iterator[FieldChange]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            yield from _diff(a.get(k, ABSENT), b.get(k, ABSENT), f"{prefix}.{k}" if prefix else str(k))
    elif (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
          and all(isinstance(x, dict) for x in (*a, *b))):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, f"{prefix}.{i}")
    elif a is ABSENT or b is ABSENT or a != b:
        if not (a is ABSENT and b is ABSENT):
            yield FieldChange(prefix, a, b)


# -- rendering ----------------------------------------------------------------------------

_HEADINGS = {
    "worse": "Worse beyond the interval", "now_undefined": "No longer has a value",
    "changed": "Changed beyond the interval (no known direction)",
    "better": "Better beyond the interval",
    "now_defined": "Has a value now", "value_changed": "Changed, without an interval to judge by",
}
_SEVERITY = ("ERROR", "FAIL", "WARN", "INCONCLUSIVE", "PASS", "SKIPPED")


def _fmt_number(v: float | None) -> str:
    return "—" if v is None else f"{v:.4g}"


def _fmt_value(v: float | None, ci: tuple[float, float] | None) -> str:
    return _fmt_number(v) + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")


def _fmt_field(v: Any) -> str:
    if v is ABSENT:
        return "(absent)"
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False, default=str)
    if isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v):
        return v[:12]  # a sha256: 12 characters tell files apart, as in the report headers
    return text if len(text) <= 60 else text[:57] + "..."


def _worsened(c: StatusChange) -> bool:
    rank = {s: i for i, s in enumerate(_SEVERITY)}
    return c.b is not None and (c.a is None or rank.get(c.b, 99) < rank.get(c.a, 99))


def _bullets(lines: list[str], limit: int) -> list[str]:
    shown = lines[:limit]
    return shown + ([f"- ... and {len(lines) - limit} more"] if len(lines) > limit else [])


def format_comparison(comparison: Comparison, *, names: tuple[str, str] = ("A", "B"), limit: int = 20) -> str:
    """Markdown (readable as plain text) listing the changes, most important first.

    Order: overall status, gates (those that got worse first), metrics worse beyond their
    interval, plugin statuses, provenance (model and data hashes first), the other metric
    changes (see ``KINDS``), configuration. Each section shows at most ``limit`` lines.
    """
    c = comparison
    out = [f"# {names[0]} → {names[1]}", "",
           f"Status: {c.status[0]} → {c.status[1]} (exit code {c.exit_code[0]} → {c.exit_code[1]}); "
           f"{c.matched} metric(s) in both, {len(c.metrics)} changed."]
    if not c.has_changes:
        return "\n".join([*out, "", "Nothing changed."]) + "\n"

    def section(title: str, lines: list[str]) -> None:
        if lines:
            out.extend(["", f"## {title} ({len(lines)})", *_bullets(lines, limit)])

    def status_line(s: StatusChange) -> str:
        return f"- {s.name}: {s.a or '(absent)'} → {s.b or '(absent)'}"

    def metric_line(m: MetricChange) -> str:
        text = f"- {m.metric} ({m.where}): {_fmt_value(m.a, m.a_ci)} → {_fmt_value(m.b, m.b_ci)}"
        if m.note:
            text += f" ({m.note})"
        return text + (f"; {m.direction.describe()}" if m.direction and m.kind in ("worse", "better") else "")

    gates = sorted(c.gates, key=lambda s: not _worsened(s))
    section("Gates", [status_line(s) for s in gates])
    by_kind = {k: [m for m in c.metrics if m.kind == k] for k in KINDS}
    section(_HEADINGS["worse"], [metric_line(m) for m in by_kind["worse"]])
    section("Plugin status", [status_line(s) for s in sorted(c.plugins, key=lambda s: not _worsened(s))])
    section("What was audited (provenance)",
            [f"- {f.key}: {_fmt_field(f.a)} → {_fmt_field(f.b)}" for f in c.provenance])
    headings = {**_HEADINGS, "only_a": f"Only in {names[0]} (gone)", "only_b": f"Only in {names[1]} (new)"}
    for kind in KINDS[1:]:
        section(headings[kind], [metric_line(m) for m in by_kind[kind]])
    section("Configuration", [f"- {f.key}: {_fmt_field(f.a)} → {_fmt_field(f.b)}" for f in c.config])
    return "\n".join(out) + "\n"
