"""Gates: interval and point policies, every-group rule, exit codes."""

from __future__ import annotations

import pytest

from audit.core.config import parse_gate
from audit.core.gates import check_value, evaluate_gate, exit_code, validate_gates
from audit.core.results import Metric, PluginResult, Status
from audit.errors import ConfigError, UnknownMetricError


def m(value, ci=None, group=None, method="bootstrap"):
    return Metric("fnr_gap", value, n=100, group=group, ci=ci, ci_method=method if ci or method else None)


@pytest.mark.parametrize("op,ci,expected", [
    ("<=", (0.01, 0.04), Status.PASS),
    ("<=", (0.06, 0.09), Status.FAIL),
    ("<=", (0.03, 0.07), Status.INCONCLUSIVE),
    ("<", (0.01, 0.05), Status.INCONCLUSIVE),     # 0.05 < 0.05 is false at the upper end
    (">=", (0.06, 0.09), Status.PASS),
    (">=", (0.01, 0.04), Status.FAIL),
    (">", (0.05, 0.09), Status.INCONCLUSIVE),
])
def test_interval_policy(op, ci, expected):
    assert check_value(m(sum(ci) / 2, ci), op, 0.05, "interval") == expected


def test_point_policy_ignores_the_interval():
    assert check_value(m(0.04, (0.01, 0.07)), "<=", 0.05, "point") == Status.PASS
    assert check_value(m(0.06, (0.03, 0.09)), "<=", 0.05, "point") == Status.FAIL


def test_undefined_value_or_missing_interval_is_inconclusive():
    assert check_value(Metric("fnr", None, reason="no positives"), "<=", 0.1, "interval") == Status.INCONCLUSIVE
    assert check_value(Metric("fnr", 0.01, ci_method="bootstrap"), "<=", 0.1, "interval") == Status.INCONCLUSIVE
    # An exact count (no interval method) is compared as it is.
    assert check_value(Metric("n", 50), ">=", 30, "interval") == Status.PASS


def _plugin(metrics, status=Status.PASS):
    return PluginResult("fairness", "Fairness", "1", status, "s", metrics=metrics)


def test_gate_holds_only_if_every_group_holds():
    gate = parse_gate("fairness.fnr_gap<=0.05")
    ok = m(0.02, (0.0, 0.04), {"sex": "F"})
    bad = m(0.08, (0.06, 0.1), {"sex": "M"})
    assert evaluate_gate(gate, _plugin([ok]), "interval").status == Status.PASS
    res = evaluate_gate(gate, _plugin([ok, bad]), "interval")
    assert res.status == Status.FAIL and len(res.checks) == 2
    assert "1 fail" in res.message


def test_gate_on_errored_or_skipped_plugin():
    gate = parse_gate("fairness.fnr_gap<=0.05")
    assert evaluate_gate(gate, _plugin([], Status.ERROR), "interval").status == Status.ERROR
    assert evaluate_gate(gate, _plugin([], Status.SKIPPED), "interval").status == Status.INCONCLUSIVE
    assert evaluate_gate(gate, None, "interval").status == Status.ERROR


def test_unknown_metric_lists_valid_ids():
    with pytest.raises(UnknownMetricError, match=r"unknown metric id 'fairness.fnr_gapp'.*fairness.fnr_gap"):
        validate_gates((parse_gate("fairness.fnr_gapp<=0.1"),), {"fairness": ("fnr", "fnr_gap")})


@pytest.mark.parametrize("expr,match", [
    ("fairness.fnr_gap<=abc", "not a number"),
    ("fnr_gap<=0.1", "PLUGIN.METRIC"),
    ("fairness.fnr_gap=0.1", "PLUGIN.METRIC"),
])
def test_bad_gate_expressions(expr, match):
    with pytest.raises(ConfigError, match=match):
        parse_gate(expr)


def test_exit_codes():
    from audit.core.results import GateResult

    def g(status):
        return GateResult("e", "fairness.x", "<=", 0.1, "interval", status, "")

    p = [_plugin([])]
    assert exit_code((g(Status.PASS),), p, ("fail",)) == 0
    assert exit_code((g(Status.FAIL),), p, ("fail",)) == 1
    assert exit_code((g(Status.INCONCLUSIVE),), p, ("fail",)) == 0
    assert exit_code((g(Status.INCONCLUSIVE),), p, ("fail", "inconclusive")) == 1
    assert exit_code((), [_plugin([], Status.ERROR)], ("fail",)) == 1
    assert exit_code((), [_plugin([], Status.SKIPPED)], ("fail",)) == 5
