"""The first page: one row per FUTURE-AI principle, with a traffic light and one plain sentence.

A principle's light is the status of the plugin(s) that assess it (``PluginResult.principle``),
or NOT ASSESSED when none ran. The sentence is short and carries numbers with intervals; the
details come later in the report. For fairness it leads with the worst decided finding, not
the first attribute listed: "The model misses 56.0% (95% CI 40.1%–71.3%) of infants under 1
who tested positive for covid against 1.2% (0.2%–4.3%) of adults over 40. Gap to the best
group: …", groups named in words (:mod:`audit.report.names`). Suppressed values never appear: the caller passes a result already through
:func:`~audit.report.suppression.for_display`, and suppressed groups are left out here.

A sentence is built as parts, text and the names of the data (:class:`~audit.report.text.Name`),
so that HTML isolates each name (a right-to-left group name cannot reorder the numbers
after it) and plain text cleans it (:attr:`VerdictRow.html`, :attr:`VerdictRow.sentence`).

:func:`overall_view` says why the overall result is what it is, names the thresholds that set
it (the gates' and the checks' own tolerances) and what FAIL and WARN mean here.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from audit.core.results import AuditResult, Finding, GateResult, Metric, PluginResult, Status, worst_status
from audit.report.anchors import plugin_anchor
from audit.report.formatting import base_id, fmt_interval, fmt_number, is_rate
from audit.report.names import DisplayNames
from audit.report.text import Name, Names, Part, phrase_html, phrase_text
from audit.report.universality import is_universality, universality_parts
from audit.report.view import key_metric_for, status_symbol, tolerance_of

PRINCIPLES = ("Fairness", "Universality", "Traceability", "Usability", "Robustness", "Explainability")
# Checks of no single principle (calibration): not a verdict row; the first screen gives their
# line under "How well the model works overall".
GENERAL = "General"
NOT_ASSESSED = "NOT ASSESSED"
# At most this many groups are named one by one in a sentence; more are given as a range.
MAX_NAMED_GROUPS = 4
_NOT_RUN = (Status.SKIPPED, Status.ERROR)


@dataclass(frozen=True)
class VerdictRow:
    principle: str
    status: str  # a Status value or NOT_ASSESSED
    symbol: str
    sentence: str  # plain text (phrase_text of parts)
    note: str = ""
    anchor: str = ""  # the section with the details, when a plugin ran
    parts: tuple[Part, ...] = ()  # the sentence as text and names

    @property
    def html(self) -> Markup:
        """The sentence for HTML: escaped, every name of the data isolated where it needs it."""
        return phrase_html(self.parts or (self.sentence,))


def _row(principle: str, status: str, symbol: str, parts: tuple[Part, ...], note: str = "",
         anchor: str = "") -> VerdictRow:
    return VerdictRow(principle, status, symbol, phrase_text(parts), note, anchor, parts)


def _installed_plugins(result: AuditResult) -> set[str]:
    """Plugins installed when the audit ran, as recorded in its provenance, so that a report
    re-rendered elsewhere says the same."""
    return {str(name).lower() for name in (result.provenance.get("plugins_installed") or {})}


def _level_text(metric: Metric) -> str:
    if metric.level is not None and 0 < metric.level < 1:
        return f"{metric.level * 100:g}% CI "
    return "CI "


def _value_with_ci(metric: Metric, with_level: bool) -> str:
    value = fmt_number(metric.id, metric.value)
    if metric.ci is None:
        return value
    interval = fmt_interval(metric.id, metric.ci)[1:-1]
    return f"{value} ({_level_text(metric) if with_level else ''}{interval})"


def _groupings(plugin: PluginResult, key: str) -> list[tuple[str, ...]]:
    """The groupings of the key metric, in the plugin's order (its settings, else its metrics)."""
    settings = plugin.settings.get("groupings")
    if isinstance(settings, list) and settings and all(isinstance(g, list | tuple) for g in settings):
        return [tuple(str(c) for c in g) for g in settings if g]
    seen: dict[tuple[str, ...], None] = {}
    for m in plugin.metrics:
        if m.id == key and m.label is None and m.group:
            seen.setdefault(tuple(m.group), None)
    return list(seen)


def _finding_for(plugin: PluginResult, key: str, grouping: tuple[str, ...]) -> Finding | None:
    """The plugin's finding on one grouping (the fairness plugin's ids: ``fnr_by_sex_x_age``)."""
    fid = f"{key}_by_{'_x_'.join(grouping)}"
    return next((f for f in plugin.findings if f.id == fid), None)


# Statuses that decide, worst first: the verdict leads with the worst of them.
_DECIDED = (Status.FAIL, Status.WARN, Status.PASS)


def lead_grouping(plugin: PluginResult, key: str) -> tuple[tuple[str, ...], Finding | None] | None:
    """The grouping the fairness verdict leads with, and its finding: the worst *decided*
    one (FAIL, then WARN, then PASS; the first such in the plugin's order), not merely the
    first attribute listed. Only when no grouping is decided, the first (INCONCLUSIVE)."""
    groupings = _groupings(plugin, key)
    if not groupings:
        return None
    found = [(g, _finding_for(plugin, key, g)) for g in groupings]
    for status in _DECIDED:
        for g, f in found:
            if f is not None and f.status == status:
                return g, f
    return found[0]


def _is_powered(m: Metric) -> bool:
    return "under_powered" not in m.flags


def _deciding(gap: Metric) -> bool:
    return gap.value is not None and gap.ci is not None and not gap.suppressed and _is_powered(gap)


def _tolerance_points(plugin: PluginResult, key: str) -> str | None:
    tol = tolerance_of(plugin)
    if tol is None:
        return None
    return f"{round(tol * 100, 1):g} points" if is_rate(key) else f"{tol:g}"


def fairness_sentence(plugin: PluginResult, display: DisplayNames | None = None) -> str | None:
    """The plain sentence for a fairness plugin, or None when its metrics do not allow one.

    Built from the key metric (``fnr``, or ``underdiagnosis_rate`` in multi-label mode) of
    the grouping :func:`lead_grouping` picks, the worst decided one. When its finding is
    WARN or FAIL, the sentence sets the group with the largest gap that decides against
    the best-served group ("The model misses 56.0% (95% CI …) of infants under 1 who tested
    positive for covid against 1.2% (…) of adults over 40"), then gives the gap and the
    check's tolerance; otherwise it lists the groups (or their range) and the largest gap.
    Suppressed groups are counted, never shown; groups are named in words
    (:class:`~audit.report.names.DisplayNames`), cleaned and shortened.
    """
    parts = fairness_parts(plugin, display)
    return None if parts is None else phrase_text(parts)


def fairness_parts(plugin: PluginResult, display: DisplayNames | None = None) -> tuple[Part, ...] | None:
    """:func:`fairness_sentence` as parts: text, and each group name a :class:`Name`."""
    display = display or DisplayNames()
    key = key_metric_for(plugin, {m.id for m in plugin.metrics})
    if key not in ("fnr", "underdiagnosis_rate"):
        return None
    lead = lead_grouping(plugin, key)
    if lead is None:
        return None
    grouping, finding = lead
    rates = [
        m
        for m in plugin.metrics
        if m.id == key and m.label is None and m.group and tuple(m.group) == grouping
    ]
    order = {tuple(sorted(g.items())): i for i, g in enumerate(display.sort_groups(m.group for m in rates))}
    rates.sort(key=lambda m: order[tuple(sorted(m.group.items()))])
    shown = [m for m in rates if not m.suppressed and m.value is not None]
    if not shown:
        return None
    hidden = sum(m.suppressed for m in rates)
    ud = key == "underdiagnosis_rate"
    verb = "calls 'no finding' for" if ud else "misses"
    if ud:
        clause = "with at least one finding"
    else:
        labels = plugin.settings.get("labels")
        clause = display.label_clause(labels[0] if isinstance(labels, list) and len(labels) == 1 else None)
    gaps = [
        m
        for m in plugin.metrics
        if m.id in (f"{key}_gap", f"{key}_gap_overall") and m.label is None and m.group
        and tuple(m.group) == grouping
    ]
    deciding = [g for g in gaps if _deciding(g)]
    tol = _tolerance_points(plugin, key)
    status = finding.status if finding is not None else None
    parts: list[Part]
    tol_value = tolerance_of(plugin)
    exceeding = [g for g in deciding if tol_value is None or (g.ci_simultaneous or g.ci)[0] > tol_value]
    if status in (Status.WARN, Status.FAIL) and exceeding:
        worst = max(exceeding, key=lambda g: (g.ci_simultaneous or g.ci)[0])
        parts = _against(worst, shown, plugin, key, verb, clause, display)
        where = "to the best group" if _is_best(worst) else "to all patients"
        parts += [f" Gap {where}: {_gap_text(worst)}"]
        parts.append(f", above the check's tolerance of {tol}." if tol else ".")
    else:
        parts = [f"Among {'cases' if ud else 'patients'} {clause}, the model {verb} "]
        if len(shown) <= MAX_NAMED_GROUPS:
            for i, m in enumerate(shown):
                if i:
                    parts.append(" and " if i == len(shown) - 1 else ", ")
                parts += [f"{_value_with_ci(m, i == 0)} of ", Name(display.group(m.group))]
        else:
            low = min(shown, key=lambda m: m.value)
            high = max(shown, key=lambda m: m.value)
            parts += [
                f"from {_value_with_ci(low, True)} of ", Name(display.group(low.group)),
                f" to {_value_with_ci(high, False)} of ", Name(display.group(high.group)),
                f", across {len(shown)} groups",
            ]
        parts.append(".")
        best_gaps = [g for g in gaps if g.id == f"{key}_gap" and not g.suppressed and g.value is not None]
        powered = [g for g in best_gaps if _is_powered(g)]
        worst = max(powered or best_gaps, key=lambda g: g.value, default=None)
        if worst is not None and worst.value > 0:
            parts += [" Largest gap to the best group: ", Name(display.group(worst.group)), f", {_gap_text(worst)}."]
        if tol and status == Status.PASS:
            parts.append(f" Every gap is within the check's tolerance of {tol}.")
        elif tol and status == Status.INCONCLUSIVE:
            parts.append(f" The data cannot show that every gap is within the check's tolerance of {tol}.")
    if hidden:
        parts.append(f" {hidden} small group{'s' if hidden > 1 else ''} not shown (suppressed).")
    others = [(g, _finding_for(plugin, key, g)) for g in _groupings(plugin, key) if g != grouping]
    others = [(g, f) for g, f in others if f is not None]
    if others:
        parts.append(" Also checked: " + "; ".join(f"{display.grouping(g)}, {f.status}" for g, f in others) + ".")
    return tuple(parts)


def _is_best(gap: Metric) -> bool:
    return gap.reference == "best" or (gap.reference is None and not gap.id.endswith("_overall"))


def _against(worst: Metric, shown: list[Metric], plugin: PluginResult, key: str, verb: str, clause: str,
             display: DisplayNames) -> list[Part]:
    """"The model misses 56.0% (95% CI …) of GROUP CLAUSE against 1.2% (…) of BEST"."""
    by_group = {tuple(sorted(m.group.items())): m for m in shown}
    rate = by_group.get(tuple(sorted(worst.group.items())))
    parts: list[Part] = [f"The model {verb} "]
    if rate is None:  # the group's own rate is hidden: name the gap only
        return [*parts, "more of ", Name(display.group(worst.group)), f" {clause} than of other patients."]
    parts += [f"{_value_with_ci(rate, True)} of ", Name(display.group(worst.group)), f" {clause}"]
    ref = None
    best_gap = next((m for m in plugin.metrics if m.id == f"{key}_gap" and m.label is None
                     and m.group == worst.group and m.reference_group), None)
    if best_gap is not None:
        ref = by_group.get(tuple(sorted(best_gap.reference_group.items())))
    if ref is None:
        powered = [m for m in shown if _is_powered(m) and m is not rate]
        ref = min(powered, key=lambda m: m.value, default=None)
    overall = next((m for m in plugin.metrics if m.id == key and m.group is None and m.label is None
                    and not m.suppressed and m.value is not None), None)
    if overall is not None and (not _is_best(worst) or ref is None):
        parts.append(f", against {fmt_number(overall.id, overall.value)} of all patients")
        if ref is not None:
            parts += [f" and {_value_with_ci(ref, False)} of ", Name(display.group(ref.group)),
                      ", the best-served group"]
    elif ref is not None:
        parts += [f" against {_value_with_ci(ref, False)} of ", Name(display.group(ref.group))]
    parts.append(".")
    return parts


def _gap_text(gap: Metric) -> str:
    """``59.1 percentage points worse (95% CI 39.1 to 79.0)``; scores in their own units."""
    rate = is_rate(base_id(gap.id))
    scale, unit, digits = (100, " percentage points", 1) if rate else (1, "", 3)

    def num(x: float) -> str:
        return f"{round(x * scale, digits) + 0.0:.{digits}f}"

    text = f"{num(gap.value)}{unit} worse"
    if gap.ci is not None:
        text += f" ({_level_text(gap)}{num(gap.ci[0])} to {num(gap.ci[1])})"
    return text


def _plugin_sentence(plugin: PluginResult, names: Names, display: DisplayNames | None = None) -> tuple[Part, ...]:
    """The plugin's sentence; a plugin's own text goes through ``names`` (names found in it)."""
    if plugin.status == Status.ERROR:
        return ("The check failed: ", *names.split(plugin.error or plugin.summary))
    if plugin.status == Status.SKIPPED:
        return names.split(plugin.summary)
    if plugin.principle.lower() == "fairness":
        parts = fairness_parts(plugin, display)
        if parts:
            return parts
    if is_universality(plugin):
        parts = universality_parts(plugin, display)
        if parts:
            return parts
    # The worst decided finding leads (a WARN before an INCONCLUSIVE listed above it), then
    # whatever else is not a PASS, in the plugin's order.
    for wanted in (Status.FAIL, Status.WARN, None):
        for finding in plugin.findings:
            if finding.status == wanted or (wanted is None and finding.status != Status.PASS):
                return names.split(finding.message)
    if plugin.findings:
        return names.split(plugin.findings[0].message)
    return names.split(plugin.summary)


def _not_assessed(principle: str, installed: set[str]) -> str:
    name = principle.lower()
    if principle == "Usability":
        return (
            "Not assessed: usability needs user studies, which no software can run; "
            "answer the FUTURE-AI Usability recommendations in the attestations."
        )
    if name in installed:
        return f"Not assessed: the {name} plugin was not run in this audit."
    sentence = f"Not assessed: no {name} plugin is installed in this version."
    if principle == "Traceability":
        sentence += (
            " The audit's own provenance (data and model SHA-256, software versions, settings) is recorded below."
        )
    return sentence


def verdict_rows(
    result: AuditResult,
    attested: dict[str, tuple[int, int]] | None = None,
    names: Names | None = None,
    display: DisplayNames | None = None,
) -> list[VerdictRow]:
    """One row per FUTURE-AI principle (and per other principle a plugin named, except
    :data:`GENERAL`), in order.

    ``attested`` maps a principle to (answered, total) FUTURE-AI recommendations, for the
    note of a principle no plugin assessed; ``names`` are the result's names that need care
    (default: :meth:`Names.of` the result); ``display`` its display names (default:
    :meth:`DisplayNames.from_result`).
    """
    attested = attested or {}
    names = Names.of(result) if names is None else names
    display = DisplayNames.from_result(result) if display is None else display
    by_principle: dict[str, list[PluginResult]] = {}
    for plugin in result.plugins:
        if plugin.principle.strip().lower() == GENERAL.lower():
            continue
        name = next((p for p in PRINCIPLES if p.lower() == plugin.principle.strip().lower()), plugin.principle)
        by_principle.setdefault(name, []).append(plugin)
    principles = list(PRINCIPLES) + [p for p in by_principle if p not in PRINCIPLES]
    installed = _installed_plugins(result)
    rows = []
    for principle in principles:
        plugins = by_principle.get(principle, [])
        answered, total = attested.get(principle, (0, 0))
        note = ""
        if total:
            note = f"FUTURE-AI {principle}: {answered} of {total} recommendations answered in the attestations."
        if not plugins:
            rows.append(_row(principle, NOT_ASSESSED, "–", (_not_assessed(principle, installed),), note))
            continue
        ran = [p for p in plugins if p.status not in _NOT_RUN]
        status = worst_status(p.status for p in (ran or plugins))
        if len(plugins) == 1:
            parts = _plugin_sentence(plugins[0], names, display)
        else:
            parts = ()
            for i, p in enumerate(plugins):
                parts += (" " if i else "", f"{p.plugin}: ", *_plugin_sentence(p, names, display))
        rows.append(
            _row(
                principle,
                str(status),
                status_symbol(status),
                parts,
                note if status == Status.SKIPPED else "",
                plugin_anchor(plugins[0].plugin),
            )
        )
    return rows


def status_reason(result: AuditResult, fail_on: list[str]) -> str:
    """Why the overall status is what it is, in one line."""
    if result.gates:
        failing = [g.expression for g in result.gates if str(g.status) in fail_on]
        others = len(result.gates) - len(failing)
        if failing:
            text = f"Set by the gates: {', '.join(failing)} {'fails' if len(failing) == 1 else 'fail'}"
            return text + (f"; {others} other gate{'s' if others != 1 else ''} did not." if others else ".")
        return f"Set by the gates: none of the {len(result.gates)} gate(s) reached {', '.join(fail_on)}."
    return "No gates were configured: the overall result is the worst status of the checks that ran."


# -- the overall result, its thresholds, and FAIL versus WARN ------------------------------
_OPERATORS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">", "==": "=", "!=": "≠"}
_GATE_VERBS = {
    Status.FAIL: "failed",
    Status.INCONCLUSIVE: "could not be decided",
    Status.ERROR: "could not be evaluated",
    Status.WARN: "warned",
    Status.PASS: "passed",
    Status.SKIPPED: "had nothing to judge",
}
# Groups named one by one for a gate; more are counted.
MAX_GATE_GROUPS = 3


@dataclass(frozen=True)
class OverallView:
    """The overall result for the first screen.

    ``parts``: why the result is what it is, as text and names (``html`` / ``sentence``);
    ``thresholds``: each threshold in play, in words ("Gate: gap in missed cases (FNR) to all
    patients ≤ 15 points", "Fairness check's own tolerance: 5 points"); ``meaning``: FAIL
    versus WARN in one sentence, empty when no check has a tolerance of its own.
    """

    status: str
    symbol: str
    parts: tuple[Part, ...]
    thresholds: tuple[str, ...]
    meaning: str
    exit_code: int
    fail_on: str

    @property
    def sentence(self) -> str:
        return phrase_text(self.parts)

    @property
    def html(self) -> Markup:
        return phrase_html(self.parts)


def _threshold_words(metric_id: str, value: float) -> str:
    base = base_id(metric_id)
    if is_rate(base) and base != metric_id or metric_id in ("min_detectable_gap",):
        return f"{round(value * 100, 2):g} points"
    if is_rate(metric_id):
        return f"{round(value * 100, 2):g}%"
    return f"{value:g}"


def _baseline_words(metric_id: str, offset: float) -> str:
    # The offset is a difference: a rate's is in points, whether or not the metric is a gap.
    if offset == 0:
        return "baseline"
    amount = abs(offset)
    shown = f"{round(amount * 100, 2):g} points" if is_rate(base_id(metric_id)) else _threshold_words(metric_id, amount)
    return f"baseline {'+' if offset > 0 else '-'} {shown}"


def gate_words(gate: GateResult, display: DisplayNames | None = None) -> str:
    """A gate in words: "gap in missed cases (FNR) to all patients ≤ 15 points"; a baseline
    gate: "... ≤ baseline + 2 points" (each group's baseline value plus the offset)."""
    metric_id = gate.metric.rsplit(".", 1)[-1]
    op = _OPERATORS.get(gate.operator, gate.operator)
    if gate.baseline is not None:
        return f"{DisplayNames.metric(metric_id)} {op} {_baseline_words(metric_id, gate.baseline['offset'])}"
    return f"{DisplayNames.metric(metric_id)} {op} {_threshold_words(metric_id, gate.threshold)}"


def _gate_parts(gate: GateResult, display: DisplayNames) -> list[Part]:
    verb = _GATE_VERBS.get(gate.status, str(gate.status).lower())
    parts: list[Part] = [f"the gate '{gate_words(gate, display)}' ({gate.expression}) {verb}"]
    groups = [c for c in gate.checks if c.status == gate.status and c.group and not c.suppressed]
    if gate.status in (Status.FAIL, Status.INCONCLUSIVE) and groups:
        parts.append(" for ")
        for i, c in enumerate(groups[:MAX_GATE_GROUPS]):
            if i:
                parts.append(", ")
            parts.append(Name(display.group(c.group)))
        if len(groups) > MAX_GATE_GROUPS:
            parts.append(f" and {len(groups) - MAX_GATE_GROUPS} more groups")
    elif gate.empty:
        parts.append(": no value could be judged")
    return parts


def overall_view(result: AuditResult, fail_on: list[str], display: DisplayNames | None = None) -> OverallView:
    """The overall status with its reason, the thresholds named, and FAIL versus WARN.

    "FAIL: the gate 'gap in missed cases (FNR) to all patients ≤ 15 points'
    (fairness.fnr_gap_overall<=0.15) failed for age band <1. The fairness check itself says
    WARN at its own tolerance of 5 points: WARN means a gap above 5 points that is worth
    review; FAIL means a configured gate failed."
    """
    display = DisplayNames.from_result(result) if display is None else display
    status = result.status
    parts: list[Part] = [f"{status}: "]
    thresholds = [f"Gate: {gate_words(g, display)} ({g.expression})" for g in result.gates]
    if result.gates:
        setting = [g for g in result.gates if str(g.status) in fail_on]
        if setting:
            for i, g in enumerate(setting):
                if i:
                    parts.append("; ")
                parts += _gate_parts(g, display)
            parts.append(".")
            others = len(result.gates) - len(setting)
            if others:
                parts.append(f" {others} other gate{'s' if others != 1 else ''} did not reach {', '.join(fail_on)}.")
        else:
            parts.append(f"none of the {len(result.gates)} configured gate{'s' if len(result.gates) != 1 else ''}"
                         f" reached {', '.join(fail_on)}.")
    else:
        parts.append("no gates were configured, so the overall result is the worst status of the checks that ran.")
    meaning = ""
    for plugin in result.plugins:
        tol = tolerance_of(plugin)
        if tol is None or plugin.status in _NOT_RUN:
            continue
        key = key_metric_for(plugin, {m.id for m in plugin.metrics}) or "fnr"
        tol_text = _tolerance_points(plugin, key) or f"{tol:g}"
        name = plugin.principle.strip() or plugin.plugin
        thresholds.append(f"{name} check's own tolerance: {tol_text}")
        gate_part = ("FAIL means a configured gate failed" if result.gates
                     else "FAIL would need a configured gate (none is)")
        meaning = (f"The {name.lower()} check itself says {plugin.status} at its own tolerance of {tol_text}: "
                   f"WARN means a gap above {tol_text} that is worth review; {gate_part}.")
        break
    return OverallView(
        status=str(status),
        symbol=status_symbol(status),
        parts=tuple(parts),
        thresholds=tuple(thresholds),
        meaning=meaning,
        exit_code=result.exit_code,
        fail_on=", ".join(fail_on),
    )
