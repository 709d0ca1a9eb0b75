from __future__ import annotations

import pytest

from audit.core.results import AuditResult, Metric
from audit.report.formatting import (
    base_id,
    display_name,
    fmt_interval,
    fmt_number,
    fmt_p,
    metric_text,
    min_cell,
    suppressed_why,
)
from audit.report.suppression import for_display
from audit.report.view import group_tables

from .factories import make_fairness


@pytest.mark.parametrize(
    ("metric_id", "value", "text"),
    [
        ("fnr", 0.123456, "12.3%"),
        ("underdiagnosis_rate", 0.05, "5.0%"),
        ("auroc", 0.84567, "0.846"),
        ("brier", 0.1, "0.100"),
        ("fnr_gap", 0.11, "+11.0 pp"),
        ("fnr_gap_overall", -0.02, "-2.0 pp"),
        ("auroc_gap", -0.031, "-0.031"),
        ("n", 1234.0, "1,234"),
        ("fnr", None, "undefined"),
        ("fnr", 0.0, "0.0%"),
        ("fnr_gap", -0.0001, "+0.0 pp"),
        ("auroc_gap", -0.0001, "+0.000"),
    ],
)
def test_fmt_number(metric_id, value, text):
    assert fmt_number(metric_id, value) == text


def test_intervals_and_p_values():
    assert fmt_interval("fnr", (0.1, 0.2)) == "(10.0%–20.0%)"
    assert fmt_interval("fnr_gap", (-0.01, 0.2)) == "(-1.0 to +20.0 pp)"
    assert fmt_interval("auroc", None) == ""
    assert [fmt_p(p) for p in (None, 0.0004, 0.0123, 1.0)] == ["—", "< 0.001", "0.012", "1.000"]


def test_metric_text_undefined_and_suppressed():
    assert metric_text(Metric("fnr", None, reason="no positives"), 10) == "undefined (no positives)"
    assert metric_text(Metric("fnr", float("nan")), 10) == "undefined"
    hidden = Metric("fnr", 0.5, n=3, ci=(0.1, 0.9), suppressed=True)
    assert metric_text(hidden, 5) == "suppressed (< 5)"
    assert metric_text(Metric("fnr", 0.25, ci=(0.2, 0.3)), 10) == "25.0% (20.0%–30.0%)"


def test_ids_and_names():
    assert base_id("fnr_gap_overall") == "fnr" and base_id("fnr_gap") == "fnr"
    assert base_id("_gap") == "_gap" and base_id("auroc") == "auroc"
    assert display_name("fnr_gap") == "FNR gap" and display_name("custom_score") == "custom_score"


@pytest.mark.parametrize(
    ("config", "expected"),
    [({}, 10), ({"report": {"min_cell": 5}}, 5), ({"report": {"min_cell": "x"}}, 10), ({"report": None}, 10)],
)
def test_min_cell(config, expected):
    assert min_cell(AuditResult(plugins=(), config=config)) == expected


def test_every_suppressed_cell_gives_the_same_reason():
    # Naming which count is small would tell primary from complementary suppression apart.
    assert suppressed_why(10) == "rests on, or would reveal, a count below 10"
    assert suppressed_why(5) == "rests on, or would reveal, a count below 5"


def test_table_cells_of_a_small_group_say_why_they_are_hidden():
    [table] = group_tables(for_display(make_fairness_result()).plugins[0], 10)
    row = next(r for r in table.rows if r.label == "sex=X")
    assert {c.why for c in row.cells if c.state == "suppressed"} == {"rests on, or would reveal, a count below 10"}
    assert all(c.text == "suppressed (< 10)" for c in row.cells if c.state == "suppressed")
    shown = next(r for r in table.rows if r.label == "sex=F")
    assert shown.name == "sex F" and all(c.why == "" for c in shown.cells)


def make_fairness_result():
    return AuditResult(plugins=(make_fairness(),), config={"report": {"min_cell": 10}})
