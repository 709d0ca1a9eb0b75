"""The Calibration section of the reports, on hand-built results of the calibration plugin.

The result has all patients, two groups of sex (F, M), a group whose every value is suppressed
("X", with the distinctive slope 0.123456 that must never reach a human-readable report) and
two sites; reliability curves (all patients and by sex) with a band, a net-benefit curve of the
model with a band and one withheld point, the treat-all curve, and net-benefit curves by site.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import pytest

from audit.core.results import Curve, Finding, Metric, PluginResult, Status
from audit.report import context, render_html, render_junit, render_markdown, render_model_card
from audit.report.calibration import (
    _axis_top,
    _line,
    calibration_view,
    overall_lines,
)
from audit.report.names import DisplayNames
from audit.report.suppression import for_display
from audit.report.verdict import verdict_rows

from .factories import make_fairness, make_result
from .htmltables import row, table_with_header

HIDDEN_SLOPE = 0.123456
XS = (0.05, 0.1, 0.15, 0.2, 0.25)
THRESHOLDS = (0.01, 0.05, 0.1, 0.2, 0.3)


def values(group, n, pos, slope, oe, *, suppressed=False, flags=(), label=None):
    common = {"n": n, "group": group, "label": label, "suppressed": suppressed, "flags": flags, "level": 0.95}
    return [
        Metric("n", n, **common),
        Metric("positives", pos, **common),
        Metric("calibration_slope", slope, ci=(slope - 0.12, slope + 0.12), **common),
        Metric("calibration_intercept", -0.1, ci=(-0.3, 0.1), **common),
        Metric("calibration_in_the_large", 0.02, ci=(-0.05, 0.09), **common),
        Metric("oe_ratio", oe, ci=(oe - 0.07, oe + 0.07), **common),
        Metric("ece", 0.021, ci=(0.015, 0.03), **common),
        Metric("brier", 0.081, ci=(0.075, 0.087), **common),
    ]


def reliability(group, shift=0.0, band=True):
    ys = tuple(round(x * (1.2 + shift), 4) for x in XS)
    return Curve("reliability", group, None, XS, ys,
                 low=tuple(round(y - 0.03, 4) for y in ys) if band else None,
                 high=tuple(round(y + 0.03, 4) for y in ys) if band else None)


def make_calibration(**overrides) -> PluginResult:
    metrics = [
        *values(None, 1000, 200, 0.93, 1.02),
        Metric("clipped_scores", 0, n=1000),
        *values({"sex": "F"}, 480, 100, 0.88, 1.05),
        *values({"sex": "M"}, 500, 96, 0.97, 0.99),
        *values({"sex": "X"}, 7, 3, HIDDEN_SLOPE, 0.654321, suppressed=True),
        *values({"site": "North"}, 600, 120, 0.91, 1.01),
        *values({"site": "South"}, 400, 80, 0.95, 1.04),
    ]
    curves = [
        reliability(None),
        reliability({"sex": "F"}, 0.1),
        reliability({"sex": "M"}, -0.1),
        Curve("net_benefit", None, None, THRESHOLDS, (0.19, 0.16, None, 0.08, 0.03),
              low=(0.17, 0.14, None, 0.06, 0.01), high=(0.21, 0.18, None, 0.10, 0.05)),
        Curve("net_benefit_treat_all", None, None, THRESHOLDS, (0.192, 0.158, 0.111, 0.0, -0.143)),
        Curve("net_benefit", {"site": "North"}, None, THRESHOLDS, (0.2, 0.17, 0.12, 0.09, 0.04)),
        Curve("net_benefit", {"site": "South"}, None, THRESHOLDS, (0.18, 0.15, 0.1, 0.07, 0.02)),
    ]
    findings = [
        Finding("calibration", "Calibration", Status.PASS,
                "The model is well calibrated overall: slope 0.93 (95% CI 0.81–1.05).", metric="calibration_slope"),
        Finding("calibration_by_sex", "Calibration by sex", Status.WARN,
                "Poorly calibrated for sex F, even allowing for every comparison made.", metric="calibration_slope"),
        Finding("calibration_by_site", "Calibration by site", Status.INCONCLUSIVE,
                "The data cannot show that every site is well calibrated.", metric="calibration_slope"),
    ]
    fields = {
        "plugin": "calibration",
        "principle": "General",
        "version": "0.1.0",
        "status": Status.WARN,
        "summary": "Calibration of 1 label(s) judged overall and per grouping in 3 finding(s).",
        "metrics": metrics,
        "findings": findings,
        "curves": curves,
        "settings": {"labels": ["y"], "methods": {"reliability": "isotonic regression of y on p"},
                     "groupings": [["sex"], ["site"]]},
    }
    fields.update(overrides)
    return PluginResult(**fields)


def result_with(plugin=None):
    return make_result(plugins=(plugin if plugin is not None else make_calibration(), make_fairness()))


@pytest.fixture(scope="module")
def technical() -> str:
    return render_html(result_with())


@pytest.fixture(scope="module")
def board() -> str:
    return render_html(result_with(), edition="board")


def _section(html: str) -> str:
    return html.split('id="plugin-calibration"', 1)[1].split("</section>", 1)[0]


def _alts(html: str) -> list[str]:
    return re.findall(r'<img src="data:image/svg\+xml;base64,[^"]+" alt="([^"]*)"', html)


def _svgs(html: str) -> list[str]:
    return [base64.b64decode(u).decode() for u in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)]


def test_reliability_diagrams_overall_and_by_sex_carry_their_numbers(technical):
    alts = _alts(_section(technical))
    reliability = [a for a in alts if a.startswith("Reliability diagram")]
    assert len(reliability) == 2  # all patients; by sex (the sites have no reliability curve)
    overall, by_sex = reliability
    assert "Calibration: all patients" in overall
    # first, middle and last points of the curve, with the band
    assert "predicted 5.0%: observed 6.0% (3.0%–9.0%)" in overall
    assert "predicted 25.0%: observed 30.0% (27.0%–33.0%)" in overall
    assert "Calibration by sex" in by_sex and "sex F, predicted 5.0%: observed 6.5%" in by_sex
    assert "sex X" not in by_sex
    svg = _svgs(_section(technical))[0]
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "perfect calibration" in texts and "95% band" in texts


def test_reliability_axes_share_one_range_from_zero():
    line = _line(reliability(None), "all patients", overall=True)
    assert _axis_top([line]) == 0.4  # the band reaches 0.33
    caption = calibration_view(make_calibration(), 10, DisplayNames()).reliability[0].caption
    assert "Both axes run from 0 to 40%" in caption and "dashed diagonal: perfect calibration" in caption


def test_decision_curves_model_treat_all_and_treat_none(technical):
    alts = [a for a in _alts(_section(technical)) if a.startswith("Decision curve")]
    assert len(alts) == 2  # all patients; by site
    overall = alts[0]
    assert "at a threshold of 5.0%: model 0.160 (0.140 to 0.180), treat everyone 0.158, treat no one 0" in overall
    assert "at a threshold of 10.0%: model hidden" in overall  # the withheld point
    assert "site North 0.170" in alts[1]
    view = calibration_view(make_calibration(), 10, DisplayNames())
    assert "a break in a line is a value withheld" in view.decision[0].caption
    assert "treating everyone" in view.decision[0].caption and "shaded: the model's 95% pointwise band" in (
        view.decision[0].caption)


def test_table_per_grouping_with_the_records_numbers_and_hidden_groups_counted(technical):
    table = table_with_header(technical, "Group", "Calibration slope", "Calibration intercept", "O/E", "ECE", "Brier")
    female = row(table, "sex=F")
    assert female["Calibration slope"] == "0.880 (0.760–1.000)"
    assert female["O/E"] == "1.050 (0.980–1.120)"
    assert female["Calibration intercept"] == "-0.100 (-0.300 to 0.100)"
    assert female["ECE"] == "0.021 (0.015–0.030)" and female["Brier"] == "0.081 (0.075–0.087)"
    assert [r[0] for r in table[1:]] == ["overall", "sex=F", "sex=M"]
    assert "1 group not shown: each rests on, or would reveal, a count below 10." in technical
    headers = table[0]
    assert headers.index("Calibration slope") < headers.index("O/E") < headers.index("Brier")


def test_a_suppressed_group_never_appears(technical, board):
    result = result_with()
    md = render_markdown(result).split("(calibration)", 1)[1].split("(fairness)", 1)[0]
    card = render_model_card(result).split("### General (calibration)", 1)[1].split("### Fairness", 1)[0]
    for text in (_section(technical), _section(board), md, card):
        # the group's values, and the group itself (its every value is hidden: counted, not a row)
        assert "0.123" not in text and "0.654" not in text and "sex=X" not in text and "sex X" not in text


def test_first_screen_has_the_calibration_line_in_both_editions(technical, board):
    for html in (technical, board):
        screen = html.split('id="overall-performance"', 1)[1].split("</section>", 1)[0]
        assert "Calibration:</strong> slope 0.93 (0.81–1.05), observed/expected 1.02 (0.95–1.09)." in screen
        assert 'href="#plugin-calibration"' in screen
    lines = overall_lines(make_calibration(), 10)
    assert [(c.status, c.text) for c in lines] == [
        ("PASS", "slope 0.93 (0.81–1.05), observed/expected 1.02 (0.95–1.09)")]


def test_calibration_is_not_a_verdict_row():
    rows = verdict_rows(for_display(result_with()))
    assert [r.principle for r in rows] == ["Fairness", "Universality", "Traceability", "Usability", "Robustness",
                                           "Explainability"]


def test_board_edition_has_the_overall_diagram_and_the_overall_finding(board):
    section = _section(board)
    alts = _alts(section)
    assert len(alts) == 1 and alts[0].startswith("Reliability diagram, Calibration: all patients")
    assert 'id="finding-calibration-calibration"' in section
    assert "Calibration by sex" in section  # the WARN finding, as one line
    assert "Calibration group by group" not in section


def test_markdown_and_model_card_give_the_overall_line():
    result = result_with()
    md = render_markdown(result)
    assert ("Calibration of all patients: calibration slope 0.930 (0.810–1.050), calibration intercept -0.100 "
            "(-0.300 to 0.100)") in md
    card = render_model_card(result)
    assert "| Calibration slope | 0.930 (0.810–1.050) |" in card and "| O/E | 1.020 (0.950–1.090) |" in card
    suite = ET.fromstring(render_junit(result)).find("testsuite")
    names = {tc.get("name") for tc in suite.findall("testcase")}
    assert {"calibration.calibration", "calibration.calibration_by_sex"} <= names


def test_without_curves_the_tables_remain():
    html = render_html(result_with(make_calibration(curves=())))
    section = _section(html)
    assert "Reliability diagram" not in section and "Decision curve" not in section
    assert "Calibration group by group" in section
    render_html(result_with(make_calibration(curves=())), edition="board")


@pytest.mark.parametrize("status", [Status.SKIPPED, Status.ERROR])
def test_a_calibration_plugin_that_did_not_run_renders_everywhere(status):
    plugin = PluginResult("calibration", "General", "0.1.0", status, "no predicted probabilities",
                          error="ValueError: boom" if status == Status.ERROR else None)
    result = result_with(plugin)
    for edition in ("technical", "board"):
        html = render_html(result, edition=edition)
        screen = html.split('id="overall-performance"', 1)[1].split("</section>", 1)[0]
        assert ("not assessed: no predicted probabilities" if status == Status.SKIPPED
                else "the check failed: ValueError: boom") in screen
    render_markdown(result)
    render_model_card(result)
    render_junit(result)
    assert context.first_screen(for_display(result))["calibration"][0].status == str(status)


def test_no_calibration_plugin_no_calibration_line():
    html = render_html(make_result())
    assert "Calibration:</strong>" not in html


def test_multi_label_lines_per_label_and_overall_diagrams_only():
    metrics = [*values(None, 1000, 200, 0.93, 1.02, label="a"), *values(None, 1000, 150, 1.10, 0.90, label="b"),
               *values({"sex": "F"}, 480, 100, 0.88, 1.05, label="a")]
    curves = [Curve("reliability", None, "a", XS, XS), Curve("reliability", None, "b", XS, XS),
              Curve("reliability", {"sex": "F"}, "a", XS, XS),
              Curve("net_benefit", None, "a", THRESHOLDS, (0.19, 0.16, 0.12, 0.08, 0.03)),
              Curve("net_benefit_treat_all", None, "a", THRESHOLDS, (0.192, 0.158, 0.111, 0.0, -0.143)),
              Curve("net_benefit", None, "b", THRESHOLDS, (0.14, 0.11, 0.07, 0.03, 0.01))]
    plugin = make_calibration(metrics=metrics, curves=curves, findings=())
    lines = overall_lines(plugin, 10)
    assert [(c.label, c.text) for c in lines] == [
        ("a", "slope 0.93 (0.81–1.05), observed/expected 1.02 (0.95–1.09)"),
        ("b", "slope 1.10 (0.98–1.22), observed/expected 0.90 (0.83–0.97)")]
    view = calibration_view(plugin, 10, DisplayNames())
    # one figure, a panel per label (all patients); no per-group figure in multi-label mode
    assert len(view.reliability) == 1 and len(view.decision) == 1
    alt = view.reliability[0].alt
    assert "a, predicted 5.0%: observed 5.0%" in alt and "b, predicted 5.0%: observed 5.0%" in alt
    assert "sex F" not in alt
    decision = view.decision[0].alt
    assert "a, at 1.0%: model 0.190, treat everyone 0.192" in decision and "b, at 1.0%: model 0.140" in decision
    svg = base64.b64decode(view.reliability[0].uris[0].split(",", 1)[1]).decode()
    assert {"a", "b"} <= set(re.findall(r"<text[^>]*>([^<]*)</text>", svg))
    # all patients label by label, then (on screen) each label's tables by group
    html = render_html(result_with(plugin))
    table = table_with_header(_section(html), "Group", "Calibration slope", "O/E")
    assert [r[0] for r in table[1:]] == ["a", "b"]
    assert row(table, "b")["Calibration slope"] == "1.100 (0.980–1.220)"
    assert "By sex — a" in _section(html)
    printed = _section(render_html(result_with(plugin), for_pdf=True))
    assert "By sex — a" not in printed
    assert "The tables by group of each label (1 table) are in technical-report.html" in printed


def test_a_checklist_item_lists_a_few_findings_of_a_plugin_and_counts_the_rest():
    from audit.report.checklist_view import MAX_ITEM_FINDINGS, checklist_views

    findings = [Finding(f"calibration_{i}", f"Calibration {i}", Status.WARN if i % 3 else Status.PASS, "…",
                        checklist=("TRIPOD+AI:23a",)) for i in range(10)]
    result = for_display(result_with(make_calibration(findings=findings)))
    view = next(v for v in checklist_views(result) if v.id == "tripod-ai")
    item = next(i for i in view.items if i.id == "23a")
    mine = [f for f in item.findings if f.anchor.startswith("finding-calibration-")]
    assert len(mine) == MAX_ITEM_FINDINGS and all(f.status == "WARN" for f in mine)  # the worst first
    assert ("plugin-calibration", "and 4 more calibration findings (4 PASS)") in item.more
    html = render_html(result_with(make_calibration(findings=findings)))
    assert '<a href="#plugin-calibration">and 4 more calibration findings (4 PASS)</a>' in html
