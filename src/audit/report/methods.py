"""The Methods section: what each number means and how it was computed, in plain words.

Per plugin: definitions of the metrics it reported (formulas in words), then its settings
under plain names (:data:`audit.report.context.METHOD_KEYS`: operating point, interval and
test methods, multiplicity correction and family, minimum group sizes), then the interval
methods the metrics themselves name (``Metric.ci_method``) when the settings do not.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.core.results import PluginResult
from audit.report import context
from audit.report.formatting import base_id, display_name

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
}
GAP_DEFINITION = (
    "A group's value minus the best adequately powered group's (*_gap: 0 for the best group; its "
    "interval allows for which group is best) or minus the whole population's (*_gap_overall), signed "
    "so that positive always means worse; for rates in percentage points. A gap is judged to exceed a "
    "tolerance only when its simultaneous interval, which allows for every comparison of the same "
    "kind in the audit, lies above it."
)
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


def methods_view(plugin: PluginResult) -> MethodsView:
    settings = context.methods(plugin)
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
