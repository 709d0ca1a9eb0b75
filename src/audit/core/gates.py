"""Gates: thresholds on metric ids that decide PASS, FAIL or INCONCLUSIVE, and the exit code.

With the ``interval`` policy (default) a gate FAILs only when a whole simultaneous interval
(adjusted for the number of values judged) lies beyond the threshold and PASSes only when every
95% interval lies wholly within; otherwise the data cannot decide and the gate is INCONCLUSIVE.
Under-powered and suppressed values are always INCONCLUSIVE: they never decide a gate. A gate on a per-group metric holds only if it holds for every
group. The ``point`` policy compares point estimates.

A baseline gate (``fairness.fnr_gap<=baseline+0.02``) judges each value against the value of
the same record (plugin, id, label, group, reference) in the baseline run plus the offset.
A value whose baseline record is missing, undefined or suppressed cannot be judged
(INCONCLUSIVE); a gate none of whose values can be judged, or with no baseline run at all,
is empty, as a gate with no values is.

Each check records the threshold its value was judged against (``GateCheck.threshold``: the
gate's threshold, or the baseline value plus the offset), and a baseline gate records its
baseline (``GateResult.baseline``: run, history file name, offset). The message names the
baseline and lists the thresholds of values that are not suppressed only: a message is free
text, which the public record cannot thin out as it nulls a suppressed check's value and
threshold (a baseline threshold gives the baseline's value of a group suppressed now).
"""

from __future__ import annotations

import operator as _op

from audit.core.config import Baseline, BaselineRecord, GateSpec
from audit.core.results import GateCheck, GateResult, Metric, PluginResult, Status, worst_status
from audit.errors import UnknownMetricError

_OPS = {"<=": _op.le, "<": _op.lt, ">=": _op.ge, ">": _op.gt}
EMPTY_NOTE = "a gate with nothing to judge never passes (exit 1; --allow-empty-gates accepts it)"


class ExitCode:
    """Exit codes, as pytest's: 0 ok, 1 gate failed, 2 interrupted, 3 internal, 4 usage, 5 nothing ran."""

    OK = 0
    GATE_FAILED = 1
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4
    NOTHING_RAN = 5


def validate_gates(gates: tuple[GateSpec, ...], produced: dict[str, tuple[str, ...]]) -> None:
    """Refuse a gate whose plugin or metric id is unknown, listing the valid ids."""
    valid = sorted(f"{p}.{m}" for p, ids in produced.items() for m in ids)
    for gate in gates:
        if gate.metric_id not in valid:
            raise UnknownMetricError(
                f"Gate '{gate.expression}': unknown metric id '{gate.metric_id}'. "
                f"Valid metric ids: {', '.join(valid)}."
            )


def check_value(metric: Metric, op: str, threshold: float, policy: str) -> Status:
    """Status of one metric against ``op threshold`` under the policy.

    Under-powered and suppressed values never decide: INCONCLUSIVE. With the interval policy
    a value FAILs only when its *simultaneous* interval (adjusted for the number of values
    of the same id, see ``Metric.ci_simultaneous``) lies beyond the threshold, so a gate over
    many groups keeps its error rate; it PASSes when its 95% interval lies within: a gate
    holds only when every value does, which needs no adjustment (an intersection-union test).
    """
    if metric.value is None or metric.suppressed or "under_powered" in metric.flags:
        return Status.INCONCLUSIVE  # undefined, or too few patients: cannot decide
    holds = _OPS[op]
    if policy == "point":
        return Status.PASS if holds(metric.value, threshold) else Status.FAIL
    if metric.ci is None:
        if metric.ci_method is None:  # an exact count or setting: no sampling uncertainty
            return Status.PASS if holds(metric.value, threshold) else Status.FAIL
        return Status.INCONCLUSIVE  # an interval was due but could not be computed
    lo, hi = metric.ci
    if holds(lo, threshold) and holds(hi, threshold):
        return Status.PASS
    slo, shi = metric.ci_simultaneous or metric.ci
    if not holds(slo, threshold) and not holds(shi, threshold):
        return Status.FAIL
    return Status.INCONCLUSIVE


def evaluate_gate(gate: GateSpec, result: PluginResult | None, policy: str) -> GateResult:
    """Evaluate one gate over every group/label/reference of its metric."""
    base = dict(expression=gate.expression, metric=gate.metric_id, operator=gate.operator,
                threshold=gate.threshold, policy=policy, baseline=_baseline_record(gate))
    if result is None:
        return GateResult(**base, status=Status.ERROR, message=f"plugin '{gate.plugin}' did not run")
    if result.status == Status.ERROR:
        return GateResult(**base, status=Status.ERROR,
                          message=f"plugin '{gate.plugin}' failed: {result.error or 'error'}")
    metrics = result.find(gate.metric)
    if not metrics:
        reason = result.summary if result.status == Status.SKIPPED else "no values were produced"
        return GateResult(**base, status=Status.INCONCLUSIVE, empty=True,
                          message=f"cannot be evaluated: {reason}; {EMPTY_NOTE}")
    if gate.baseline:
        return _evaluate_baseline_gate(gate, metrics, policy, base)
    checks = tuple(_check(m, check_value(m, gate.operator, gate.threshold, policy), gate.threshold)
                   for m in metrics)
    status = worst_status(c.status for c in checks)
    if not any(judgeable(m) for m in metrics):
        return GateResult(**base, status=Status.INCONCLUSIVE, checks=checks, empty=True, message=(
            f"none of its {len(checks)} values can be judged (each is undefined, suppressed or "
            f"from an under-powered group); {EMPTY_NOTE}"))
    counts = {s: sum(c.status == s for c in checks) for s in (Status.PASS, Status.FAIL, Status.INCONCLUSIVE)}
    message = (
        f"{counts[Status.PASS]} of {len(checks)} values hold, {counts[Status.FAIL]} fail, "
        f"{counts[Status.INCONCLUSIVE]} inconclusive ({policy} policy)"
    )
    return GateResult(**base, status=status, message=message, checks=checks)


def _check(m: Metric, status: Status, threshold: float | None) -> GateCheck:
    return GateCheck(group=m.group, value=m.value, ci=m.ci, label=m.label, reference=m.reference,
                     suppressed=m.suppressed, status=status, threshold=threshold, feature=m.feature,
                     perturbation=m.perturbation, severity=m.severity)


def _baseline_record(gate: GateSpec) -> dict | None:
    """``GateResult.baseline``: what a baseline gate compared with; None for any other gate."""
    if not gate.baseline:
        return None
    run = gate.baseline_run
    return {"run_id": None if run is None else run.run_id, "history": None if run is None else run.history,
            "offset": gate.threshold}


def _key(label: str | None, group, reference: str | None, feature: str | None = None,
         perturbation: str | None = None, severity: int | None = None) -> tuple:
    pairs = None if group is None else tuple(sorted(dict(group).items()))
    return (label, pairs, reference, feature, perturbation, severity)


def _lenient(op: str, thresholds: list[float]) -> float:
    # The gate record has one threshold: the loosest any value was held to, so that what it
    # says of a passing gate ("every value <= t") is true of every value. The caller leaves
    # out suppressed values (never PASS, so that still holds): their thresholds give the
    # baseline values of groups that are suppressed now.
    return max(thresholds) if op in ("<=", "<") else min(thresholds)


def _evaluate_baseline_gate(gate: GateSpec, metrics: list[Metric], policy: str, base: dict) -> GateResult:
    """Judge each value against its baseline record's value plus the gate's offset."""
    baseline: Baseline | None = gate.baseline_run
    if baseline is None:  # the caller never read the history (audit.history.resolve_baselines)
        return GateResult(**base, status=Status.ERROR,
                          message="the baseline was not read from an audit history before the run")
    if baseline.run_id is None:
        checks = tuple(_check(m, Status.INCONCLUSIVE, None) for m in metrics)
        return GateResult(**base, status=Status.INCONCLUSIVE, checks=checks, empty=True, message=(
            f"cannot be evaluated: the audit history {baseline.history} has no accepted run to take the "
            "baseline from (record one with `run --accept`, or accept a recorded run with "
            f"`future-audit history --accept RUN_ID`); {EMPTY_NOTE}"))
    records: dict[tuple, BaselineRecord | None] = {}
    for r in baseline.records:
        key = _key(r.label, r.group, r.reference, r.feature, r.perturbation, r.severity)
        records[key] = None if key in records else r  # two records for one key: ambiguous
    checks, resolved, judged, missing = [], [], 0, 0
    for m in metrics:
        record = records.get(_key(m.label, m.group, m.reference, m.feature, m.perturbation, m.severity))
        if record is None or record.value is None:
            missing += 1
            checks.append(_check(m, Status.INCONCLUSIVE, None))
            continue
        threshold = record.value + gate.threshold
        if not m.suppressed:
            resolved.append((m, threshold))
        judged += judgeable(m)
        checks.append(_check(m, check_value(m, gate.operator, threshold, policy), threshold))
    checks = tuple(checks)
    run = baseline.run_id[:8]
    shown = ", ".join(f"{m.group_label}{f' [{m.label}]' if m.label else ''} {gate.operator} {t:.4g}"
                      for m, t in resolved[:6]) + (f", ... ({len(resolved)} in all)" if len(resolved) > 6 else "")
    source = (f"threshold = baseline {'+' if gate.threshold >= 0 else '-'} {abs(gate.threshold):g} from run {run} "
              f"of {baseline.history}")
    base = {**base, "threshold": _lenient(gate.operator, [t for _, t in resolved]) if resolved else gate.threshold}
    if not judged:
        parts = [f"{missing} have no baseline value (missing, undefined or suppressed in run {run})"] if missing else []
        if len(checks) > missing:
            parts.append(f"{len(checks) - missing} are undefined, suppressed or from an under-powered group")
        return GateResult(**base, status=Status.INCONCLUSIVE, checks=checks, empty=True, message=(
            f"none of its {len(checks)} values can be judged: {' and '.join(parts)}; {source}; {EMPTY_NOTE}"))
    counts = {s: sum(c.status == s for c in checks) for s in (Status.PASS, Status.FAIL, Status.INCONCLUSIVE)}
    message = (f"{counts[Status.PASS]} of {len(checks)} values hold, {counts[Status.FAIL]} fail, "
               f"{counts[Status.INCONCLUSIVE]} inconclusive ({policy} policy"
               f"{f'; {missing} without a baseline value' if missing else ''}); {source}"
               f"{f': {shown}' if shown else ''}")
    return GateResult(**base, status=worst_status(c.status for c in checks), message=message, checks=checks)


def judgeable(metric: Metric) -> bool:
    """Whether a value can take part in a gate at all (it may still be inconclusive)."""
    return metric.value is not None and not metric.suppressed and "under_powered" not in metric.flags


def exit_code(gates: tuple[GateResult, ...], plugins: tuple[PluginResult, ...], fail_on: tuple[str, ...],
              allow_empty_gates: bool = False) -> int:
    """0 when every gate holds; 1 when a gate has a status in ``fail_on``, a plugin errored,
    or a gate had nothing to judge (``GateResult.empty``) and empty gates are not allowed."""
    if plugins and all(p.status == Status.SKIPPED for p in plugins):
        return ExitCode.NOTHING_RAN
    failing = {Status(s.upper()) for s in fail_on} | {Status.ERROR}
    if any(g.status in failing for g in gates) or any(p.status == Status.ERROR for p in plugins):
        return ExitCode.GATE_FAILED
    if not allow_empty_gates and any(g.empty for g in gates):
        return ExitCode.GATE_FAILED
    return ExitCode.OK
