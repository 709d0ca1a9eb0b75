"""The first page: one row per FUTURE-AI principle, with a traffic light and one plain sentence.

A principle's light is the status of the plugin(s) that assess it (``PluginResult.principle``),
or NOT ASSESSED when none ran. The sentence is short and carries numbers with intervals; the
details come later in the report. For fairness it is built from the key metric of the first
sensitive attribute, as in "Among patients with covid=1, the model missed 16.5% (95% CI
11.3%–22.2%) of gender=female and 10.8% (6.1%–15.8%) of gender=male". Suppressed
values never appear: the caller passes a result already through
:func:`~audit.report.suppression.for_display`, and suppressed groups are left out here.

A sentence is built as parts, text and the names of the data (:class:`~audit.report.text.Name`),
so that HTML isolates each name (a right-to-left group name cannot reorder the numbers
after it) and plain text cleans it (:attr:`VerdictRow.html`, :attr:`VerdictRow.sentence`).
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from audit.core.results import AuditResult, Metric, PluginResult, Status, worst_status
from audit.report.anchors import plugin_anchor
from audit.report.formatting import base_id, fmt_interval, fmt_number, group_label, is_rate
from audit.report.text import Name, Names, Part, phrase_html, phrase_text, shorten
from audit.report.view import key_metric_for, status_symbol

PRINCIPLES = ("Fairness", "Universality", "Traceability", "Usability", "Robustness", "Explainability")
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


def _first_grouping(plugin: PluginResult, key: str) -> tuple[str, ...] | None:
    settings = plugin.settings.get("groupings")
    if isinstance(settings, list) and settings and isinstance(settings[0], list):
        return tuple(str(c) for c in settings[0])
    for m in plugin.metrics:
        if m.id == key and m.label is None and m.group and len(m.group) == 1:
            return tuple(m.group)
    return None


def fairness_sentence(plugin: PluginResult) -> str | None:
    """The plain sentence for a fairness plugin, or None when its metrics do not allow one.

    Built from the key metric (``fnr``, or ``underdiagnosis_rate`` in multi-label mode) per
    group of the first sensitive attribute; suppressed groups are counted, never shown. A
    second sentence names the largest gap to the best group over every grouping (powered
    groups first). Names of the data are cleaned and shortened (:mod:`audit.report.text`).
    """
    parts = fairness_parts(plugin)
    return None if parts is None else phrase_text(parts)


def fairness_parts(plugin: PluginResult) -> tuple[Part, ...] | None:
    """:func:`fairness_sentence` as parts: text, and each group or label name a :class:`Name`."""
    key = key_metric_for(plugin, {m.id for m in plugin.metrics})
    if key not in ("fnr", "underdiagnosis_rate"):
        return None
    grouping = _first_grouping(plugin, key)
    if grouping is None:
        return None
    rates = [
        m
        for m in plugin.metrics
        if m.id == key and m.label is None and m.group and tuple(m.group) == grouping
    ]
    shown = [m for m in rates if not m.suppressed and m.value is not None]
    if not shown:
        return None
    hidden = sum(m.suppressed for m in rates)
    parts: list[Part]
    if key == "underdiagnosis_rate":
        parts = ["Among cases with at least one finding, the model called 'no finding' for "]
    else:
        labels = plugin.settings.get("labels")
        if isinstance(labels, list) and len(labels) == 1:
            parts = ["Among patients with ", Name(shorten(labels[0])), "=1, the model missed "]
        else:
            parts = ["Among patients who had the condition, the model missed "]
    if len(shown) <= MAX_NAMED_GROUPS:
        for i, m in enumerate(shown):
            if i:
                parts.append(" and " if i == len(shown) - 1 else ", ")
            parts += [f"{_value_with_ci(m, i == 0)} of ", Name(group_label(m.group))]
    else:
        low = min(shown, key=lambda m: m.value)
        high = max(shown, key=lambda m: m.value)
        parts += [
            f"from {_value_with_ci(low, True)} of ", Name(group_label(low.group)),
            f" to {_value_with_ci(high, False)} of ", Name(group_label(high.group)),
            f", across {len(shown)} groups",
        ]
    parts.append(".")
    if hidden:
        parts.append(f" {hidden} small group{'s' if hidden > 1 else ''} not shown (suppressed).")
    gaps = [
        m
        for m in plugin.metrics
        if m.id == f"{key}_gap" and m.label is None and not m.suppressed and m.value is not None
    ]
    powered = [g for g in gaps if "under_powered" not in g.flags]
    worst = max(powered or gaps, key=lambda g: g.value, default=None)
    if worst is not None and worst.value > 0:
        parts += [" Largest gap to the best group: ", Name(group_label(worst.group)), f", {_gap_text(worst)}."]
    return tuple(parts)


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


def _plugin_sentence(plugin: PluginResult, names: Names) -> tuple[Part, ...]:
    """The plugin's sentence; a plugin's own text goes through ``names`` (names found in it)."""
    if plugin.status == Status.ERROR:
        return ("The check failed: ", *names.split(plugin.error or plugin.summary))
    if plugin.status == Status.SKIPPED:
        return names.split(plugin.summary)
    if plugin.principle.lower() == "fairness":
        parts = fairness_parts(plugin)
        if parts:
            return parts
    for finding in plugin.findings:
        if finding.status != Status.PASS:
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
    result: AuditResult, attested: dict[str, tuple[int, int]] | None = None, names: Names | None = None
) -> list[VerdictRow]:
    """One row per FUTURE-AI principle (and per other principle a plugin named), in order.

    ``attested`` maps a principle to (answered, total) FUTURE-AI recommendations, for the
    note of a principle no plugin assessed; ``names`` are the result's names that need care
    (default: :meth:`Names.of` the result).
    """
    attested = attested or {}
    names = Names.of(result) if names is None else names
    by_principle: dict[str, list[PluginResult]] = {}
    for plugin in result.plugins:
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
            parts = _plugin_sentence(plugins[0], names)
        else:
            parts = ()
            for i, p in enumerate(plugins):
                parts += (" " if i else "", f"{p.plugin}: ", *_plugin_sentence(p, names))
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
