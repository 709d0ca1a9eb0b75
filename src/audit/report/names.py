"""Display names: how the report names labels, columns, group values and metrics in prose.

A results file names things as the data and the code do: ``covid`` (a label column),
``age_band`` (a column), ``<1`` (a value), ``fnr_gap`` (a metric id). A reader of the report
should see "patients with covid", "age band <1" and "gap in missed cases (FNR)". The audit
configuration may say better (``[report.display_names]``, recorded in
``result.config["report"]["display_names"]``)::

    [report.display_names.labels]
    covid = "tested positive for covid"
    [report.display_names.columns]
    age_band = "age"
    [report.display_names.values.age_band]
    "<1" = "infants under 1"
    "40+" = "adults over 40"

Without it the defaults are plain: a label ``covid`` reads "with covid", a column loses its
underscores, a value is shown as it is, prefixed by its column ("age band <1"). A configured
value name stands alone ("infants under 1"), since it is written to be read.

Every name is shortened to :data:`~audit.report.text.DISPLAY_LIMIT` characters
(:func:`~audit.report.text.shorten`) and keeps its bidi controls, like
:func:`~audit.report.formatting.group_label`: HTML decides on them whether to isolate the
name (``|user`` or a :class:`~audit.report.text.Name`), plain-text outputs
:func:`~audit.report.text.clean` it (or use :func:`~audit.report.text.display_label`).

:func:`natural_order` sorts the values of a column the way a reader expects: the configured
bin labels in their order (``data.bins``), else numbers by value, ``<30`` first and ``50+``
last, not as text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.core.results import AuditResult
from audit.report.text import shorten

__all__ = ["METRIC_WORDS", "DisplayNames", "metric_words", "natural_order"]

# metric id → plain words, for prose (sentences, captions, axis labels). Table headers keep
# their short forms (formatting.display_name).
METRIC_WORDS: dict[str, str] = {
    "n": "patients",
    "patients": "distinct patients",
    "positives": "patients with the condition",
    "negatives": "patients without the condition",
    "prevalence": "prevalence (share with the condition)",
    "flagged": "share flagged by the model",
    "sensitivity": "sensitivity (cases found)",
    "specificity": "specificity (healthy cleared)",
    "fnr": "missed cases (FNR)",
    "fpr": "false alarms (FPR)",
    "tpr": "cases found (TPR)",
    "tnr": "healthy cleared (TNR)",
    "ppv": "positive predictive value (PPV)",
    "npv": "negative predictive value (NPV)",
    "auroc": "AUROC (how well scores rank cases)",
    "brier": "Brier score (probability error)",
    "ece": "calibration error (ECE)",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "underdiagnosis_rate": "underdiagnosis (cases called 'no finding')",
    "overdiagnosis_rate": "overdiagnosis (healthy cases flagged)",
    "min_detectable_gap": "smallest gap the group could show",
    "threshold": "decision threshold",
    "calibration_slope": "calibration slope",
    "calibration_intercept": "calibration intercept",
    "calibration_in_the_large": "calibration-in-the-large",
    "oe_ratio": "observed/expected events (O/E)",
    "clipped_scores": "scores clipped before the logit",
    "threshold_own": "the site's own threshold",
    "sensitivity_own": "sensitivity at the site's own threshold",
    "specificity_own": "specificity at the site's own threshold",
    "sensitivity_transfer_loss": "sensitivity lost to the shared threshold",
    "specificity_transfer_loss": "specificity lost to the shared threshold",
    "site_identifiability_auroc": "how well the inputs tell the site (AUROC)",
}
_GAP_BEST = "_gap"
_GAP_OVERALL = "_gap_overall"

# A bin label such as "<30", "30-39", "40–49", "50+", ">=80", "≥ 80", "80 and over".
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_BELOW = re.compile(rf"^\s*(?:<|≤|<=|under|below|less than)\s*({_NUMBER})\s*$", re.IGNORECASE)
_ABOVE = re.compile(rf"^\s*(?:>|≥|>=|over|above)\s*({_NUMBER})\s*$", re.IGNORECASE)
_PLUS = re.compile(rf"^\s*({_NUMBER})\s*(?:\+|and over|and above|or more)\s*$", re.IGNORECASE)
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*(?:-|–|—|to)\s*({_NUMBER})\s*$", re.IGNORECASE)
_SINGLE = re.compile(rf"^\s*({_NUMBER})\s*$")
MISSING_VALUE = "(missing)"


def metric_words(metric_id: str) -> str:
    """Plain words for a metric id: ``fnr_gap`` → "gap in missed cases (FNR)".

    A plugin prefix (``fairness.fnr_gap``) is dropped; ``*_gap_overall`` is the gap "to all
    patients"; an unknown id is shown with spaces for underscores.
    """
    mid = metric_id.rsplit(".", 1)[-1]
    if mid in METRIC_WORDS:
        return METRIC_WORDS[mid]
    for suffix, tail in ((_GAP_OVERALL, " to all patients"), (_GAP_BEST, "")):
        if mid.endswith(suffix) and len(mid) > len(suffix):
            base = mid[: -len(suffix)]
            return f"gap in {METRIC_WORDS.get(base, base.replace('_', ' '))}{tail}"
    return mid.replace("_", " ")


def _band_key(value: str) -> tuple[float, float] | None:
    """(start, end) of a bin label ("<30": -inf to 30, "50+": 50 to inf), None when the
    label is not a number or a band."""
    m = _BELOW.match(value)
    if m:
        return -math.inf, float(m.group(1))
    m = _ABOVE.match(value) or _PLUS.match(value)
    if m:
        return float(m.group(1)), math.inf
    m = _RANGE.match(value)
    if m:
        return float(m.group(1)), float(m.group(2))
    m = _SINGLE.match(value)
    if m:
        return float(m.group(1)), float(m.group(1))
    return None


def natural_order(values: Iterable[str], order: Iterable[str] = ()) -> list[str]:
    """``values`` in reading order: first those in ``order`` (the configured bin labels), in
    that order; then, when every other value is a number or a band ("<30", "30-39", "50+"),
    by number; else as text. The missing-value label comes last."""
    values = list(dict.fromkeys(values))
    rank = {v: i for i, v in enumerate(order)}
    known = sorted((v for v in values if v in rank), key=rank.__getitem__)
    rest = [v for v in values if v not in rank and v != MISSING_VALUE]
    keys = {v: _band_key(v) for v in rest}
    if all(k is not None for k in keys.values()):
        rest.sort(key=lambda v: (*keys[v], v))  # type: ignore[misc]
    else:
        rest.sort(key=lambda v: (keys[v] is None, keys[v] or (math.inf, math.inf), v))
    tail = [MISSING_VALUE] if MISSING_VALUE in values else []
    return known + rest + tail


def _table(raw: Any) -> dict[str, Any]:
    return {str(k): v for k, v in raw.items()} if isinstance(raw, Mapping) else {}


@dataclass(frozen=True)
class DisplayNames:
    """The names a report uses in prose, from ``report.display_names`` (or defaults).

    Parameters
    ----------
    labels : dict
        Label column → phrase describing a patient who has it ("tested positive for covid").
    columns : dict
        Column → name ("age_band" → "age").
    values : dict
        Column → {value → name} ("<1" → "infants under 1").
    orders : dict
        Column → values in reading order (the bin labels of ``data.bins``).
    """

    labels: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    orders: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_result(cls, result: AuditResult) -> DisplayNames:
        """From ``result.config["report"]["display_names"]`` and ``result.config["data"]["bins"]``."""
        return cls.from_config(result.config)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> DisplayNames:
        config = config if isinstance(config, Mapping) else {}
        report = _table(config.get("report"))
        raw = _table(report.get("display_names"))
        labels = {k: str(v) for k, v in _table(raw.get("labels")).items() if v}
        columns = {k: str(v) for k, v in _table(raw.get("columns")).items() if v}
        values = {
            col: {str(k): str(v) for k, v in _table(table).items() if v}
            for col, table in _table(raw.get("values")).items()
        }
        orders: dict[str, tuple[str, ...]] = {}
        data = _table(config.get("data"))
        bins = data.get("bins")
        for b in bins if isinstance(bins, list | tuple) else ():
            if isinstance(b, Mapping) and isinstance(b.get("labels"), list | tuple):
                name = b.get("name") or b.get("column")
                if name:
                    orders[str(name)] = tuple(str(x) for x in b["labels"])
        return cls(labels, columns, values, orders)

    # -- labels --------------------------------------------------------------------------
    def label(self, name: str | None) -> str:
        """The phrase for a patient who has the label: the configured one ("tested positive
        for covid"), else "with covid". None (the whole outcome) is "with the condition"."""
        if name is None:
            return "with the condition"
        configured = self.labels.get(str(name))
        return shorten(configured) if configured else f"with {shorten(name)}"

    def label_clause(self, name: str | None) -> str:
        """The label phrase after a noun: "who tested positive for covid", "with covid"."""
        phrase = self.label(name)
        first = phrase.split(" ", 1)[0].lower()
        if first in ("with", "who", "that", "whose", "in", "without", "having"):
            return phrase
        return f"who {phrase}"

    def patients(self, name: str | None) -> str:
        """"patients with covid", "patients who tested positive for covid"."""
        return f"patients {self.label_clause(name)}"

    def label_name(self, name: str) -> str:
        """A label as a noun (a table or figure title): the configured column name, or the label."""
        return shorten(self.columns.get(str(name), name))

    # -- groups --------------------------------------------------------------------------
    def column(self, col: str) -> str:
        """A column's name: configured, else with spaces for underscores ("age band")."""
        configured = self.columns.get(str(col))
        return shorten(configured if configured else str(col).replace("_", " "))

    def value(self, col: str, value: str) -> str:
        """A value's configured name, else the value itself."""
        configured = self.values.get(str(col), {}).get(str(value))
        return shorten(configured if configured else value)

    def group_part(self, col: str, value: str) -> str:
        """One column of a group: the configured value name, else "age band <1"."""
        configured = self.values.get(str(col), {}).get(str(value))
        if configured:
            return shorten(configured)
        return f"{self.column(col)} {shorten(value)}"

    def group(self, group: Mapping[str, str] | None) -> str:
        """A group in words, no "=": "age band <1, gender female", "infants under 1";
        "all patients" for None (the overall row)."""
        if not group:
            return "all patients"
        return ", ".join(self.group_part(k, v) for k, v in group.items())

    def grouping(self, columns: Iterable[str]) -> str:
        """The columns a table groups by: "age band × gender"."""
        return " × ".join(self.column(c) for c in columns)

    def order(self, col: str, values: Iterable[str]) -> list[str]:
        """The values of a column in reading order (:func:`natural_order`)."""
        return natural_order(values, self.orders.get(str(col), ()))

    def sort_groups(self, groups: Iterable[Mapping[str, str] | None]) -> list[Mapping[str, str] | None]:
        """``groups`` (of one grouping) in reading order, column by column: a column with
        configured bin labels, or whose values are all numbers or bands, in
        :func:`natural_order`; any other column keeps the order of first appearance (the
        plugin's). The overall group (None or empty) comes first."""
        groups = list(groups)
        seen: dict[str, list[str]] = {}
        for g in groups:
            for col, value in (g or {}).items():
                seen.setdefault(col, [])
                if value not in seen[col]:
                    seen[col].append(value)
        rank: dict[str, dict[str, int]] = {}
        for col, values in seen.items():
            order = self.orders.get(col, ())
            ordinal = bool(order) or all(_band_key(v) is not None for v in values if v != MISSING_VALUE)
            ranked = natural_order(values, order) if ordinal else values
            rank[col] = {v: i for i, v in enumerate(ranked)}

        def key(g: Mapping[str, str] | None) -> tuple[int, ...]:
            return (1, *(rank[c][v] for c, v in g.items())) if g else (0,)

        return sorted(groups, key=key)

    # -- metrics -------------------------------------------------------------------------
    @staticmethod
    def metric(metric_id: str) -> str:
        """Plain words for a metric id (:func:`metric_words`)."""
        return metric_words(metric_id)
