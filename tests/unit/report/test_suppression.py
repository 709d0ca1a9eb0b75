from __future__ import annotations

import xml.etree.ElementTree as ET

from audit.core.results import GateCheck, GateResult, Metric, Status
from audit.report import render_html, render_junit, render_markdown
from audit.report.suppression import for_display

from .factories import make_fairness, make_result
from .htmltables import row, table_with_header

MALE_1_4 = {"sex": "M", "age": "1-4"}


def _leaky_result():
    """As the fairness plugin writes it: FNR hidden (5 positives), but its gap, the
    prevalence and the minimum detectable gap not, although each gives it back."""
    common = {"n": 210, "group": MALE_1_4, "flags": ("under_powered",)}
    metrics = (
        Metric("n", 210, **common),
        Metric("positives", 5, suppressed=True, **common),
        Metric("prevalence", 5 / 210, ci=(0.01, 0.05), **common),
        Metric("fnr", 0.6, ci=(0.2, 0.9), denominator=5, suppressed=True, **common),
        Metric("specificity", 0.756, ci=(0.7, 0.8), denominator=205, **common),
        Metric("min_detectable_gap", 0.4352, **common),
        Metric("fnr_gap", 0.6, ci=(0.0, 1.0), reference="best", p_value=0.31, **common),
        Metric("fnr_gap_overall", 0.4619, ci=(0.1, 0.8), reference="overall", **common),
        Metric("fnr_gap", None, n=3, group={"sex": "F", "age": "<1"}, reference="best", reason="no positives"),
    )
    gate = GateResult(
        "fairness.fnr_gap<=0.15", "fairness.fnr_gap", "<=", 0.15, "interval", Status.INCONCLUSIVE, "m",
        checks=(GateCheck(MALE_1_4, 0.6, (0.0, 1.0), Status.INCONCLUSIVE, reference="best"),),
    )
    return make_result(plugins=(make_fairness(metrics=metrics, findings=()),), gates=(gate,))


def test_values_that_give_a_hidden_cell_back_are_hidden():
    shown = for_display(_leaky_result())
    hidden = {m.id for m in shown.plugins[0].metrics if m.suppressed}
    assert hidden == {"positives", "prevalence", "fnr", "min_detectable_gap", "fnr_gap", "fnr_gap_overall"}
    assert shown.gates[0].checks[0].suppressed
    # undefined values stay "undefined": there is nothing to hide
    assert not [m for m in shown.plugins[0].metrics if m.value is None][0].suppressed


def test_no_report_shows_the_hidden_fnr_through_its_gap():
    result = _leaky_result()
    html, md, junit = render_html(result), render_markdown(result), render_junit(result)
    for text in (html, md, junit):
        assert "60.0" not in text and "46.2" not in text and "2.4%" not in text and "43.5" not in text
    assert "75.6%" in html  # specificity has its own denominator: shown
    cells = row(table_with_header(html, "Group", "n", "Positives"), "sex=M, age=1-4")
    assert cells["n"] == "210"  # the plugin's own n metric is not suppressed
    assert cells["Positives"] == cells["Prevalence"] == cells["FNR"] == "suppressed (< 10)"
    ET.fromstring(junit)


def test_json_is_untouched():
    result = _leaky_result()
    assert for_display(result) != result
    assert [m.suppressed for m in result.plugins[0].metrics].count(True) == 2
