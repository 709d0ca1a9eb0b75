"""Gates: thresholds on metric ids that decide PASS, FAIL or INCONCLUSIVE, and the exit code.

With the ``interval`` policy (default) a gate FAILs only when a whole simultaneous interval
(adjusted for the number of values judged) lies beyond the threshold and PASSes only when every
95% interval lies wholly within; otherwise the data cannot decide and the gate is INCONCLUSIVE.
Under-powered and suppressed values are always INCONCLUSIVE: they never decide a gate. A gate on a per-group metric holds only if it holds for every
group. The ``point`` policy compares point estimates.
"""

from __future__ import annotations

import operator as _op

from audit.core.config import GateSpec
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
                threshold=gate.threshold, policy=policy)
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
    checks = tuple(
        GateCheck(group=m.group, value=m.value, ci=m.ci, label=m.label, reference=m.reference,
                  suppressed=m.suppressed, status=check_value(m, gate.operator, gate.threshold, policy))
        for m in metrics
    )
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
