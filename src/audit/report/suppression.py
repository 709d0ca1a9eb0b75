"""Suppression as the human-readable reports apply it: the plugin's flags, closed under derivation.

A plugin marks the cells it considers small (``Metric.suppressed``). Some unmarked numbers
would give a marked one back exactly: a group's FNR gap to a best group at 0% *is* its FNR;
prevalence × n is the number of positives; sensitivity is 1 − FNR. The reports therefore hide
a defined value when a value it is derived from is hidden in the same group and label. This
only ever hides more; results.json keeps every value and the plugin's own flags.
"""

from __future__ import annotations

from dataclasses import replace

from audit.core.results import AuditResult, GateResult, Metric, PluginResult
from audit.report.formatting import base_id

# metric id → the ids (same group and label) it would reveal.
DERIVED_FROM: dict[str, tuple[str, ...]] = {
    "prevalence": ("positives",),
    "min_detectable_gap": ("positives",),
    "sensitivity": ("fnr",),
    "fnr": ("sensitivity",),
    "specificity": ("fpr",),
    "fpr": ("specificity",),
    # own − shared: with the site's own value published, the loss gives the shared value back.
    "sensitivity_transfer_loss": ("sensitivity", "fnr"),
    "specificity_transfer_loss": ("specificity", "fpr"),
}

_Key = tuple


def _key(metric_id: str, group: dict[str, str] | None, label: str | None, scope: tuple = ()) -> _Key:
    # scope: the feature, perturbation and severity that tell records of one id apart (a
    # perturbed table's sensitivity is not the clean one's).
    return metric_id, tuple(sorted((group or {}).items())), label, scope


def _scope(m) -> tuple:
    return (m.feature, m.perturbation, m.severity)


def _sources(metric: Metric) -> tuple[str, ...]:
    base = base_id(metric.id)
    if base != metric.id:  # a gap reveals its group's value when the reference is known
        return (base, *DERIVED_FROM.get(base, ()))
    return DERIVED_FROM.get(metric.id, ())


def _plugin(plugin: PluginResult) -> PluginResult:
    hidden = {_key(m.id, m.group, m.label, _scope(m)) for m in plugin.metrics if m.suppressed}
    metrics = []
    changed = False
    for m in plugin.metrics:
        if not m.suppressed and m.value is not None and any(
            _key(s, m.group, m.label, _scope(m)) in hidden for s in _sources(m)
        ):
            m = replace(m, suppressed=True)
            changed = True
        metrics.append(m)
    return replace(plugin, metrics=tuple(metrics)) if changed else plugin


def _gate(gate: GateResult, plugins: dict[str, PluginResult]) -> GateResult:
    name, _, metric_id = gate.metric.rpartition(".")
    candidates = [plugins[name]] if name in plugins else list(plugins.values())
    hidden = {
        (_key(m.id, m.group, m.label, _scope(m)), m.reference)
        for p in candidates
        for m in p.metrics
        if m.suppressed and m.id == metric_id
    }
    checks = tuple(
        replace(c, suppressed=True)
        if not c.suppressed and (_key(metric_id, c.group, c.label, _scope(c)), c.reference) in hidden
        else c
        for c in gate.checks
    )
    return replace(gate, checks=checks) if checks != gate.checks else gate


def for_display(result: AuditResult) -> AuditResult:
    """``result`` with every derived small cell suppressed too (see the module docstring)."""
    plugins = tuple(_plugin(p) for p in result.plugins)
    by_name = {p.plugin: p for p in plugins}
    gates = tuple(_gate(g, by_name) for g in result.gates)
    return replace(result, plugins=plugins, gates=gates)
