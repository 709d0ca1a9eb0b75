"""The Methods section: what each number means and how it was computed, in plain words.

Per plugin: definitions of the metrics it reported (formulas in words), then its settings
under plain names (:data:`audit.report.context.METHOD_KEYS`: operating point, interval and
test methods, multiplicity correction and family, minimum group sizes), then the interval
methods the metrics themselves name (``Metric.ci_method``) when the settings do not.

The multiplicity correction is explained in words ("Holm correction for the number of groups
compared", not "Holm step-down (FWER)"), and metric ids in settings text are written as words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from audit.core.results import PluginResult
from audit.report import context
from audit.report.formatting import base_id, display_name, is_gap, is_rate
from audit.report.names import metric_words

# metric id → its definition, formula in words. Gaps are defined once, after these.
DEFINITIONS: dict[str, str] = {
    "n": "Rows (cases) in the group.",
    "patients": "Distinct patients in the group (with a patient identifier, the rules for small and under-powered groups count these).",
    "positives": "Patients in the group who have the condition (label 1).",
    "prevalence": "Positives ÷ n: the share of the group who have the condition.",
    "sensitivity": "True positives ÷ positives: of the patients with the condition, the share the model flagged.",
    "specificity": "True negatives ÷ negatives: of the patients without the condition, the share the model cleared.",
    "fnr": (
        "False-negative rate = false negatives ÷ positives = 1 − sensitivity: of the patients with the "
        "condition, the share the model missed (underdiagnosis of that label)."
    ),
    "fpr": "False-positive rate = false positives ÷ negatives = 1 − specificity.",
    "ppv": "Positive predictive value = true positives ÷ patients the model flagged.",
    "npv": "Negative predictive value = true negatives ÷ patients the model cleared.",
    "auroc": (
        "Area under the ROC curve: the probability that a random patient with the condition gets a "
        "higher score than a random patient without it (ties count half). 0.5 is chance, 1 is perfect."
    ),
    "brier": "Brier score: the mean of (score − outcome)², with outcome 1 or 0. Lower is better.",
    "underdiagnosis_rate": (
        "Cases with at least one finding that the model called 'no finding' ÷ cases with at least "
        "one finding (Seyyed-Kalantari et al., Nat Med 2021)."
    ),
    "overdiagnosis_rate": "Cases without any finding that the model flagged ÷ cases without any finding.",
    "min_detectable_gap": (
        "For an under-powered group: the smallest FNR difference to the whole population that a "
        "two-sided test at the 5% level would detect with 80% power, given the group's positives."
    ),
    "threshold": "The operating point: a score at or above it counts as a positive prediction.",
    "calibration_slope": (
        "The slope of a logistic regression of the outcome on logit(score): 1 when the predicted risks are as "
        "spread out as they should be, below 1 when they are too extreme, above 1 when too modest."
    ),
    "calibration_intercept": "The intercept of the same regression: 0 when calibrated.",
    "calibration_in_the_large": (
        "The intercept of a logistic regression of the outcome with logit(score) as offset: 0 when the average "
        "predicted risk matches the observed rate, below 0 when the model over-predicts."
    ),
    "oe_ratio": (
        "Observed ÷ expected events (the number with the condition ÷ the sum of the predicted risks): 1 when "
        "calibrated."
    ),
    "ece": (
        "Expected calibration error: over bins of the score, the share of patients in the bin times the absolute "
        "difference between its observed rate and its mean predicted risk. 0 is perfect."
    ),
    "threshold_own": "The threshold a site would get from the same rule applied to its own data alone.",
    "sensitivity_transfer_loss": (
        "Sensitivity at the site's own threshold minus sensitivity at the shared one: what the shared threshold "
        "costs the site, in percentage points (negative: the shared threshold finds more cases there)."
    ),
    "specificity_transfer_loss": "The same for specificity.",
    "site_identifiability_auroc": (
        "How well a classifier tells the site from the model's inputs (cross-validated AUROC): near 0.5 the inputs "
        "say little about the site; near 1 the model could learn site-specific shortcuts."
    ),
    "auroc_pooled": (
        "A random-effects meta-analysis of the sites' values: the pooled mean with its confidence interval, the "
        "prediction interval (where a new site's value is expected to fall), tau² (the variance between sites), "
        "I² (the share of the variation that is real difference between sites) and Cochran's Q test."
    ),
}
GAP_DEFINITION = (
    "A group's value minus the best adequately powered group's (the gap to the best group: 0 for the "
    "best group itself; its interval allows for which group is best) or minus the whole population's "
    "(the gap to all patients), signed so that positive always means worse; for rates in percentage "
    "points. A gap is judged to exceed a tolerance only when its simultaneous interval, which allows "
    "for every comparison of the same kind in the audit, lies above it."
)
# How each multiplicity correction is explained: what it does, then its technical name.
CORRECTIONS = {
    "holm": (
        "Holm correction for the number of groups compared: the p-values are adjusted so that the "
        "chance of calling even one gap real when none is stays at the test's level (Holm step-down, "
        "family-wise error rate)"
    ),
    "bh": (
        "Benjamini–Hochberg correction for the number of groups compared: the p-values are adjusted so "
        "that, of the gaps called real, the expected share of false alarms stays at the test's level "
        "(false discovery rate)"
    ),
}
_METRIC_ID = re.compile(r"\b([a-z]+(?:_[a-z]+)*_gap(?:_overall)?)\b")
SUPPRESSION_RULE = (
    "A value based on a count of 1 to {limit} − 1 patients (in the group, in a rate's denominator, or "
    "in its numerator, e.g. 2 missed of 50) is suppressed; zero identifies nobody and is shown. So are further values, chosen so that no "
    "suppressed count can be worked out from everything published: by subtraction from totals, "
    "other groups or intersections, from rates times their denominators, or from gaps (secondary "
    "suppression, checked by solving for every suppressed count as an attacker would). A suppressed "
    "value, and even whether it is defined, is absent from every output, results.json included, "
    "unless the audit team keeps a private full record (report.full_record)."
)


@dataclass(frozen=True)
class MethodsView:
    name: str
    principle: str
    definitions: tuple[tuple[str, str], ...]
    settings: tuple[tuple[str, context.Node], ...]
    interval_methods: tuple[str, ...]
    checklist: tuple[str, ...]
    all_settings: context.Node


def definitions(plugin: PluginResult) -> list[tuple[str, str]]:
    """(display name, definition) for every metric the plugin reported, in a fixed order."""
    ids = {m.id for m in plugin.metrics}
    out = [(display_name(i), DEFINITIONS[i]) for i in DEFINITIONS if i in ids]
    if any(base_id(i) != i for i in ids):
        out.append(("Gap", GAP_DEFINITION))
    return out


def correction_words(value: object) -> str | None:
    """The plain explanation of a multiplicity correction setting, or None when unknown."""
    text = str(value).lower()
    if "holm" in text:
        return CORRECTIONS["holm"]
    if "benjamini" in text or text in ("bh", "fdr_bh"):
        return CORRECTIONS["bh"]
    return None


def _in_words(text: str) -> str:
    """Metric ids in a settings text as words: "every fnr_gap" → "every gap in missed cases (FNR)"."""
    text = text.replace("one metric id", "one measure").replace("*_gap_overall", "the gap to all patients").replace("*_gap", "the gap to the best group")
    return _METRIC_ID.sub(lambda m: metric_words(m.group(1)), text)


def _plain(name: str, node: context.Node, rate: bool = True) -> context.Node:
    if node.kind != "scalar":
        return node
    if name == "Multiplicity correction" and (words := correction_words(node.text)):
        return context.Node("scalar", words)
    if name == "Gap tolerance of the findings" and rate:
        try:
            return context.Node("scalar", f"{round(float(node.text) * 100, 2):g} percentage points")
        except ValueError:
            return node
    return context.Node("scalar", _in_words(node.text))


def methods_view(plugin: PluginResult) -> MethodsView:
    key = plugin.settings.get("key_metric")
    rate = is_rate(key) if isinstance(key, str) else any(is_rate(m.id) for m in plugin.metrics if is_gap(m))
    settings = [(name, _plain(name, node, rate)) for name, node in context.methods(plugin)]
    named = {name for name, _ in settings}
    interval_methods: tuple[str, ...] = ()
    if not named & {"Confidence intervals", "Intervals for rates", "Intervals for AUROC and Brier"}:
        interval_methods = tuple(dict.fromkeys(m.ci_method for m in plugin.metrics if m.ci_method))
    return MethodsView(
        name=plugin.plugin,
        principle=plugin.principle,
        definitions=tuple(definitions(plugin)),
        settings=tuple(settings),
        interval_methods=interval_methods,
        checklist=plugin.checklist,
        all_settings=context.tree(plugin.settings),
    )
