"""How numbers, intervals, groups and suppressed cells are written in every human-readable report.

One place decides, so HTML, Markdown and JUnit say the same thing: rates as percentages with
one decimal, gaps of rates in percentage points, scores (AUROC, Brier, ...) with three
decimals, counts as integers. An undefined value is written ``undefined (reason)``, never 0.
A suppressed cell is written ``suppressed (< min_cell)`` and nothing else of it is shown.
"""

from __future__ import annotations

from typing import Any

from audit.core.results import AuditResult, Metric
from audit.report.text import shorten

DEFAULT_MIN_CELL = 10

# Metric ids whose values are proportions in [0, 1]; any id ending in "_rate" is one too.
RATE_IDS = frozenset(
    {
        "prevalence",
        "sensitivity",
        "specificity",
        "fnr",
        "fpr",
        "tpr",
        "tnr",
        "ppv",
        "npv",
        "fdr",
        "for",
        "accuracy",
        "balanced_accuracy",
        "flagged",
        "sensitivity_own",
        "specificity_own",
    }
)
COUNT_IDS = frozenset({"n", "patients", "positives", "negatives", "tp", "fp", "tn", "fn", "clipped_scores"})
# Differences of rates that are not gaps between groups: shown in percentage points.
POINTS_IDS = frozenset({"min_detectable_gap"})
# Signed differences of rates that are not gaps between groups (what the shared threshold
# costs a site against its own threshold): shown in signed percentage points, as gaps are.
SIGNED_POINTS_IDS = frozenset({"sensitivity_transfer_loss", "specificity_transfer_loss"})
GAP_SUFFIXES = ("_gap_overall", "_gap")

DISPLAY_NAMES = {
    "n": "n",
    "patients": "Patients",
    "positives": "Positives",
    "negatives": "Negatives",
    "prevalence": "Prevalence",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "fnr": "FNR",
    "fpr": "FPR",
    "tpr": "TPR",
    "tnr": "TNR",
    "ppv": "PPV",
    "npv": "NPV",
    "auroc": "AUROC",
    "brier": "Brier",
    "ece": "ECE",
    "underdiagnosis_rate": "Underdiagnosis rate",
    "overdiagnosis_rate": "Overdiagnosis rate",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "min_detectable_gap": "Minimum detectable gap",
    "threshold": "Threshold",
    "flagged": "Flagged",
    "calibration_slope": "Calibration slope",
    "calibration_intercept": "Calibration intercept",
    "calibration_in_the_large": "Calibration-in-the-large",
    "oe_ratio": "O/E",
    "clipped_scores": "Clipped scores",
    "threshold_own": "Own threshold",
    "sensitivity_own": "Sensitivity at own threshold",
    "specificity_own": "Specificity at own threshold",
    "sensitivity_transfer_loss": "Sensitivity lost to the shared threshold",
    "specificity_transfer_loss": "Specificity lost to the shared threshold",
    "site_identifiability_auroc": "Site identifiability (AUROC)",
    "auroc_pooled": "Pooled AUROC",
}

DASH = "—"


def min_cell(result: AuditResult) -> int:
    """The small-cell threshold from ``config["report"]["min_cell"]`` (default 10)."""
    report = result.config.get("report") or {}
    value = report.get("min_cell", DEFAULT_MIN_CELL) if isinstance(report, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_MIN_CELL


def suppressed_text(limit: int) -> str:
    return f"suppressed (< {limit})"


# Rates over the patients with the condition, and over those without it.
_OVER_POSITIVES = frozenset({"fnr", "sensitivity", "tpr", "underdiagnosis_rate"})
_OVER_NEGATIVES = frozenset({"fpr", "specificity", "tnr", "overdiagnosis_rate"})


def suppressed_why(limit: int) -> str:
    """Why a cell is hidden, in words: the same text for every hidden cell,
    "rests on, or would reveal, a count below 10".

    Deliberately one text. Naming the small count ("fewer than 10 with the condition") tells
    primary suppression apart from complementary suppression, and that is itself a
    disclosure: if the total of missed cases is 11, one group's count is hidden as small and
    the other's is marked as hidden only to protect it, the reader learns the second count is
    at least 10 and so the first is exactly 1. Statistical offices use one symbol for both for
    this reason.
    """
    return f"rests on, or would reveal, a count below {limit}"


def base_id(metric_id: str) -> str:
    """``fnr_gap_overall`` → ``fnr``; ids that are not gaps are returned unchanged."""
    if metric_id in POINTS_IDS:
        return metric_id
    for suffix in GAP_SUFFIXES:
        if metric_id.endswith(suffix) and len(metric_id) > len(suffix):
            return metric_id[: -len(suffix)]
    return metric_id


def is_gap(metric: Metric) -> bool:
    """A gap compares a group with the best group or with the overall value."""
    return metric.reference is not None or base_id(metric.id) != metric.id


def is_rate(metric_id: str) -> bool:
    return metric_id in RATE_IDS or metric_id.endswith("_rate")


def is_count(metric_id: str) -> bool:
    return metric_id in COUNT_IDS


def display_name(metric_id: str) -> str:
    """Column header of a metric id: ``fnr`` → ``FNR``, ``fnr_gap`` → ``FNR gap``."""
    base = base_id(metric_id)
    if base != metric_id:
        return f"{DISPLAY_NAMES.get(base, base)} gap"
    return DISPLAY_NAMES.get(metric_id, metric_id)


def group_label(group: dict[str, str] | None) -> str:
    """:attr:`Metric.group_label` for display: ``sex=F, age_band=60-80`` or ``overall``, each
    column and value shortened to :data:`~audit.report.text.DISPLAY_LIMIT` characters.

    Bidi controls are kept for the output to handle (:mod:`audit.report.text`).
    """
    if not group:
        return "overall"
    return ", ".join(f"{shorten(k)}={shorten(v)}" for k, v in group.items())


def _r(x: float, digits: int) -> float:
    """Round for display; -0.0 (a tiny negative) shows as 0."""
    return round(x, digits) + 0.0


def fmt_number(metric_id: str, value: float | None) -> str:
    """One number of this metric, without interval."""
    if value is None:
        return "undefined"
    base = base_id(metric_id)
    gap = base != metric_id
    if is_count(metric_id):
        return f"{value:,.0f}"
    if metric_id in POINTS_IDS:
        return f"{_r(value * 100, 1):.1f} pp"
    if metric_id in SIGNED_POINTS_IDS:
        return f"{_r(value * 100, 1):+.1f} pp"
    if is_rate(base):
        return f"{_r(value * 100, 1):+.1f} pp" if gap else f"{_r(value * 100, 1):.1f}%"
    return f"{_r(value, 3):+.3f}" if gap else f"{_r(value, 3):.3f}"


def fmt_interval(metric_id: str, ci: tuple[float, float] | None) -> str:
    """``(10.1%–14.6%)`` for values, ``(+1.2 to +8.8 pp)`` for gaps (signs need a word)."""
    if ci is None:
        return ""
    lo, hi = ci
    base = base_id(metric_id)
    if metric_id in POINTS_IDS:
        return f"({_r(lo * 100, 1):.1f}–{_r(hi * 100, 1):.1f} pp)"
    if metric_id in SIGNED_POINTS_IDS:
        return f"({_r(lo * 100, 1):+.1f} to {_r(hi * 100, 1):+.1f} pp)"
    if base != metric_id:
        if is_rate(base):
            return f"({_r(lo * 100, 1):+.1f} to {_r(hi * 100, 1):+.1f} pp)"
        return f"({_r(lo, 3):+.3f} to {_r(hi, 3):+.3f})"
    # A dash beside a minus sign misreads ("-0.389–1.058"): a negative bound takes "to".
    sep = " to " if min(lo, hi) < 0 else "–"
    return f"({fmt_number(metric_id, lo)}{sep}{fmt_number(metric_id, hi)})"


def fmt_p(p: float | None) -> str:
    if p is None:
        return DASH
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def undefined_text(reason: str | None) -> str:
    """``undefined (no positives)``; Metric fills a missing reason with "undefined" itself."""
    return f"undefined ({reason})" if reason and reason != "undefined" else "undefined"


def metric_parts(metric: Metric, limit: int) -> tuple[str, str]:
    """(value, interval): ``("12.3%", "(10.1%–14.6%)")``; the interval may be empty."""
    if metric.suppressed:
        return suppressed_text(limit), ""
    if metric.value is None:
        return undefined_text(metric.reason), ""
    return fmt_number(metric.id, metric.value), fmt_interval(metric.id, metric.ci)


def metric_text(metric: Metric, limit: int) -> str:
    """``12.3% (10.1%–14.6%)``, ``undefined (no positives)`` or ``suppressed (< 10)``."""
    return " ".join(part for part in metric_parts(metric, limit) if part)


def check_text(metric_id: str, value: float | None, ci, suppressed: bool, limit: int) -> str:
    """A gate check's value, with the same rules as a metric."""
    if suppressed:
        return suppressed_text(limit)
    if value is None:
        return "undefined"
    interval = fmt_interval(metric_id, ci)
    number = fmt_number(metric_id, value)
    return f"{number} {interval}" if interval else number


def flag_texts(metric: Metric) -> list[str]:
    """``under_powered (only 12 positives)``; a suppressed metric shows its flags, no reason."""
    reason = None
    if metric.value is not None and metric.reason and not metric.suppressed:
        reason = metric.reason
    return [f"{flag} ({reason})" if reason else flag for flag in metric.flags]


def scalar_text(value: Any) -> str:
    """A settings / provenance leaf as text."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"  # results.json has the exact value
    return str(value)
