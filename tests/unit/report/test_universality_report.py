"""The Universality section of the reports, on hand-built results of the universality plugin.

The result has a development site, two external sites (one with a hostile name), an
under-powered site whose positives are hidden, and a site whose every value is suppressed
("Tiny Clinic", with the distinctive AUROC 0.987654 that must never reach a human-readable
report); pooled records for AUROC (with a prediction interval) and sensitivity (without one),
and the fairness gap within two sites, one cell of it suppressed (0.222222).
"""

from __future__ import annotations

import base64
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from audit.core.results import Finding, Metric, PluginResult, Status
from audit.report import render_html, render_junit, render_markdown, render_model_card
from audit.report.formatting import fmt_interval, fmt_number
from audit.report.names import DisplayNames
from audit.report.suppression import for_display
from audit.report.text import phrase_text
from audit.report.universality import (
    MAX_SITE_ROWS,
    _limits,
    site_forest,
    universality_parts,
    universality_view,
)
from audit.report.verdict import verdict_rows

from .factories import make_fairness, make_result
from .htmltables import row, table_with_header

COL = "hospital"
EVIL_SITE = "<img src=x onerror=alert(1)>"
HIDDEN_SITE = "Tiny Clinic"
HIDDEN_VALUE = 0.987654
HIDDEN_GAP = 0.222222
METHOD = "Paule-Mandel random effects with Hartung-Knapp interval; prediction interval by confidence distribution"


def site(name, n, pos, auroc, ci, *, sens=0.8, spec=0.6, oe=1.0, slope=1.0, loss=0.02, flags=(), hide_pos=False,
         hidden=False):
    group = {COL: name}
    common = {"group": group, "flags": flags, "level": 0.95}
    if hidden:
        return [Metric(mid, None, group=group, suppressed=True, flags=flags) for mid in
                ("n", "positives", "sensitivity", "specificity", "oe_ratio", "calibration_slope",
                 "sensitivity_transfer_loss")] + [
            Metric("auroc", HIDDEN_VALUE, n=n, group=group, ci=(0.9, 0.99), suppressed=True, flags=flags)]
    return [
        Metric("n", n, n=n, **common),
        Metric("positives", pos, n=n, suppressed=hide_pos, **common),
        Metric("auroc", auroc, n=n, ci=ci, **common),
        Metric("sensitivity", sens, n=n, ci=(sens - 0.05, sens + 0.05), denominator=pos, suppressed=hide_pos,
               **common),
        Metric("specificity", spec, n=n, ci=(spec - 0.04, spec + 0.04), **common),
        Metric("oe_ratio", oe, n=n, ci=(oe - 0.1, oe + 0.1), suppressed=hide_pos, **common),
        Metric("calibration_slope", slope, n=n, ci=(slope - 0.2, slope + 0.3), suppressed=hide_pos, **common),
        Metric("sensitivity_transfer_loss", loss, n=n, ci=(loss - 0.03, loss + 0.04), suppressed=hide_pos,
               **common),
        Metric("auroc_gap", max(0.0, 0.76 - auroc), n=n, group=group, ci=(0.0, 0.1), reference="development",
               reference_group={COL: "Dev"}, p_value=0.04, p_adjusted=0.08),
    ]


def pooled(metric, value, ci, pi, *, k=3, tau2=0.05, i2=0.61, q=7.7, q_p=0.05):
    base = {"n": k, "level": 0.95}
    reason = None if pi else "a prediction interval needs at least 3 sites"
    return [
        Metric(f"{metric}_pooled", value, ci=ci, ci_method=METHOD, **base),
        Metric(f"{metric}_pi_low", pi[0] if pi else None, reason=reason, ci_method=METHOD, **base),
        Metric(f"{metric}_pi_high", pi[1] if pi else None, reason=reason, ci_method=METHOD, **base),
        Metric(f"{metric}_tau2", tau2, ci_method=METHOD + " (tau² on the logit scale)", **base),
        Metric(f"{metric}_i2", i2, ci_method=METHOD, **base),
        Metric(f"{metric}_q", q, p_value=q_p, ci_method=METHOD + " (Cochran's Q, 2 df)", **base),
    ]


def within(site_name, attr, value, gap, ci, *, suppressed=False):
    return Metric("fnr_gap_overall", gap, n=80, group={COL: site_name, attr: value}, ci=ci, reference="site",
                  p_value=0.2, p_adjusted=0.4, suppressed=suppressed, level=0.95)


def make_universality(**overrides) -> PluginResult:
    metrics = [
        Metric("threshold", 0.3, n=1200),
        Metric("auroc", 0.70, n=1200, ci=(0.67, 0.73)),  # every site together: not shown as such
        *site("Dev", 500, 100, 0.76, (0.71, 0.80), loss=-0.01),
        *site("North", 300, 60, 0.68, (0.62, 0.74), sens=0.75, spec=0.55, oe=0.9, slope=0.85, loss=0.04),
        *site(EVIL_SITE, 200, 40, 0.62, (0.55, 0.69), oe=1.2, slope=1.3, loss=0.09),
        *site("Small", 40, 8, 0.55, (0.35, 0.74), flags=("under_powered",), hide_pos=True),
        *site(HIDDEN_SITE, 7, 3, None, None, hidden=True),
        *pooled("auroc", 0.664, (0.58, 0.74), (0.42, 0.88)),
        *pooled("sensitivity", 0.78, (0.70, 0.85), None, k=2),
        within("Dev", "sex", "F", 0.05, (-0.01, 0.11)),
        within("Dev", "sex", "M", -0.03, (-0.08, 0.02)),
        within("North", "sex", "F", HIDDEN_GAP, (0.1, 0.3), suppressed=True),
        within("North", "sex", "M", 0.04, (-0.02, 0.1)),
        Metric("site_identifiability_auroc", 0.53, n=1200, ci=(0.51, 0.56)),
    ]
    findings = [
        Finding("auroc_by_site", "Discrimination at each site", Status.INCONCLUSIVE,
                "The data cannot show that every site's AUROC is within 0.05 of hospital Dev.", metric="auroc_gap",
                threshold=0.05),
        Finding("auroc_heterogeneity", "What to expect at a new site", Status.WARN,
                "In a new site expect AUROC between 0.42 and 0.88 (95% prediction interval).",
                metric="auroc_pi_low", threshold=0.7),
        Finding("operating_point_transfer", "One threshold for every site", Status.PASS,
                "At every site the shared threshold costs less than 5 points.", metric="sensitivity_transfer_loss",
                threshold=0.05),
    ]
    fields = {
        "plugin": "universality",
        "principle": "Universality",
        "version": "0.1.0",
        "status": Status.WARN,
        "summary": "5 sites compared with the development site.",
        "metrics": metrics,
        "findings": findings,
        "settings": {"site_column": COL, "development_site": "Dev", "key_metric": "auroc", "min_auroc": 0.7,
                     "min_site_n": 30, "min_site_positives": 10, "counting_unit": "patients", "tolerance": 0.05,
                     "meta_analysis": {"auroc": METHOD + "; back-transformed from logit (tau2 on logit)"},
                     "meta_inputs": "adequately powered sites whose value is published",
                     "groupings": [[COL]]},
        "warnings": (),
    }
    fields.update(overrides)
    return PluginResult(**fields)


def result_with(plugin=None, **overrides):
    plugins = (make_fairness(), plugin if plugin is not None else make_universality())
    return make_result(plugins=plugins, **overrides)


@pytest.fixture(scope="module")
def technical() -> str:
    return render_html(result_with())


@pytest.fixture(scope="module")
def board() -> str:
    return render_html(result_with(), edition="board")


def _section(html: str) -> str:
    return html.split('id="plugin-universality"', 1)[1].split("</section>", 1)[0]


def _svgs(html: str) -> list[str]:
    return [base64.b64decode(u).decode() for u in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)]


def _alts(html: str) -> list[str]:
    return re.findall(r'<img src="data:image/svg\+xml;base64,[^"]+" alt="([^"]*)"', html)


def _value(metric_id, value, ci) -> str:
    return f"{fmt_number(metric_id, value)} {fmt_interval(metric_id, ci)}"


# -- the forest plot -----------------------------------------------------------------------
def test_forest_plot_carries_the_published_sites_the_pooled_value_and_the_prediction_interval(technical):
    section = _section(technical)
    alts = _alts(section)
    assert len(alts) == 1
    alt = alts[0]
    for name, value, ci in (("Dev (development)", 0.76, (0.71, 0.80)), ("North", 0.68, (0.62, 0.74)),
                            ("Small", 0.55, (0.35, 0.74))):
        assert f"{name} {_value('auroc', value, ci)}" in alt
    assert "Small 0.550 (0.350–0.740) (under-powered)" in alt
    assert "Pooled over 3 sites: 0.664 (0.580–0.740)" in alt
    assert "95% prediction interval for a new site: 0.420 to 0.880" in alt
    svg = _svgs(section)[0]
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "Pooled (3 sites)" in texts and "New site (95% prediction interval)" in texts
    assert "Dev (development)" in texts and "North" in texts
    # the axis runs from at most 0.5 to 1 (chance to perfect), not stretched to the data
    ticks = {t for t in texts if re.fullmatch(r"\d\.\d", t)}
    assert {"0.5", "1.0"} <= ticks
    caption = section.split("<figcaption>", 1)[1].split("</figcaption>", 1)[0]
    assert "open dot: an under-powered site (fewer than 30 patients or 10 with the condition)" in caption
    assert "black square: the development site" in caption and "Diamond" in caption and "Bar" in caption
    assert "1 site whose every value is hidden" in caption


def test_forest_data_draws_a_diamond_and_a_bar_and_keeps_the_axis_honest():
    forest, figure = site_forest(for_display(result_with()).plugins[1], 10, DisplayNames())
    assert [p.name for p in forest.points] == ["Dev (development)", "North", "<img src=x onerror=alert(1)>", "Small"]
    assert forest.points[0].development and forest.points[-1].under_powered
    assert forest.pooled == 0.664 and forest.pooled_ci == (0.58, 0.74) and forest.prediction == (0.42, 0.88)
    assert forest.minimum == 0.7
    lo, hi = _limits(forest)
    assert lo <= 0.35 and lo <= 0.5 and hi == 1.0
    svg = base64.b64decode(figure.uris[0].split(",", 1)[1]).decode()
    # the bar of the prediction interval, the diamond and the points are drawn as paths
    assert svg.count("<path") > 10 and "<script" not in svg and EVIL_SITE not in svg
    assert "&lt;img src=x onerror=alert(1)&gt;" in svg


def test_no_forest_plot_without_any_site_value_or_pooled_value():
    plugin = make_universality(metrics=[m for m in make_universality().metrics if m.id not in ("auroc",)
                                        and not m.id.startswith("auroc_")])
    forest, figure = site_forest(plugin, 10, DisplayNames())
    assert forest is None and figure is None
    html = render_html(result_with(plugin))
    assert "Site by site" in _section(html)


# -- the tables ------------------------------------------------------------------------------
def test_site_table_has_one_row_per_published_site_with_the_records_numbers(technical):
    table = table_with_header(technical, "Site (hospital)", "Flags", "AUROC", "O/E", "Calibration slope",
                              "Sensitivity lost to the shared threshold")
    assert [r[0] for r in table[1:]] == ["Dev", "North", EVIL_SITE, "Small"]
    north = row(table, "North")
    assert north["n"] == "300" and north["Positives"] == "60"
    assert north["AUROC"] == _value("auroc", 0.68, (0.62, 0.74))
    assert north["Sensitivity"] == _value("sensitivity", 0.75, (0.70, 0.80))
    assert north["O/E"] == _value("oe_ratio", 0.9, (0.8, 1.0))
    assert north["Calibration slope"] == _value("calibration_slope", 0.85, (0.65, 1.15))
    assert north["Sensitivity lost to the shared threshold"] == "+4.0 pp (+1.0 to +8.0 pp)"
    assert row(table, "Dev")["Flags"] == "development site"
    small = row(table, "Small")
    assert small["Positives"] == "suppressed (< 10)" and small["AUROC"] == "0.550 (0.350–0.740)"
    assert small["Flags"] == "under_powered"
    assert "1 site not shown: each rests on, or would reveal, a count below 10." in technical


def test_a_suppressed_site_never_appears_by_name_or_value(technical, board):
    for html in (technical, board, render_markdown(result_with()), render_model_card(result_with())):
        assert HIDDEN_SITE not in html
        assert fmt_number("auroc", HIDDEN_VALUE) not in html  # 0.988
        assert fmt_number("fnr_gap_overall", HIDDEN_GAP) not in html  # +22.2 pp


def test_hostile_site_names_are_escaped(technical, board):
    for html in (technical, board):
        assert EVIL_SITE not in html and "onerror=alert(1)>" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_heterogeneity_table_gives_pooled_prediction_interval_tau2_i2_and_q(technical):
    table = table_with_header(technical, "Metric", "Sites pooled", "Pooled (95% CI)", "95% prediction interval",
                              "tau²", "I²", "Q test p")
    auroc = row(table, "AUROC")
    assert auroc["Sites pooled"] == "3" and auroc["Pooled (95% CI)"] == "0.664 (0.580–0.740)"
    assert auroc["95% prediction interval"] == "0.420 to 0.880"
    assert auroc["tau²"] == "0.05 (logit scale)" and auroc["I²"] == "61%" and auroc["Q test p"] == "0.050 (Q = 7.70)"
    sens = row(table, "Sensitivity")
    assert sens["Pooled (95% CI)"] == "78.0% (70.0%–85.0%)"
    assert sens["95% prediction interval"] == "not computable (a prediction interval needs at least 3 sites)"
    assert f"Method: {METHOD}." in technical and "back-transformed" not in technical.split("Method:", 1)[1][:200]


def test_fairness_within_sites_shows_published_cells_only(technical):
    table = table_with_header(technical, "Site (hospital)", "sex F", "sex M")
    dev, north = row(table, "Dev"), row(table, "North")
    assert dev["sex F"] == "+5.0 pp (-1.0 to +11.0 pp)" and dev["sex M"] == "-3.0 pp (-8.0 to +2.0 pp)"
    assert north["sex F"] == "suppressed (< 10)" and north["sex M"] == "+4.0 pp (-2.0 to +10.0 pp)"


def test_no_generic_tables_or_gap_matrices_for_the_plugin(technical):
    section = _section(technical)
    assert "Every metric, group by group" not in section and "Gaps between groups" not in section
    assert "AUROC gap" not in section
    # the fairness plugin keeps its own
    fairness = technical.split('id="plugin-fairness"', 1)[1].split('id="plugin-universality"', 1)[0]
    assert "Every metric, group by group" in fairness


def test_rows_are_capped_and_the_rest_counted():
    metrics = [m for i in range(MAX_SITE_ROWS + 15) for m in site(f"site-{i:03d}", 1000 - i, 100, 0.7, (0.65, 0.75))]
    plugin = make_universality(metrics=metrics + pooled("auroc", 0.7, (0.68, 0.72), (0.6, 0.8), k=55))
    start = time.perf_counter()
    html = render_html(result_with(plugin))
    seconds = time.perf_counter() - start
    view = universality_view(for_display(result_with(plugin)).plugins[1], 10, DisplayNames())
    assert len(view.rows) == MAX_SITE_ROWS
    assert "And 15 more sites with published values, the smallest" in html
    assert seconds < 15
    md = render_markdown(result_with(plugin))
    table = md.split("**AUROC by site**", 1)[1].split("\n\n", 2)[1]
    assert len(table.splitlines()) == 2 + 25
    assert "30 more sites with a published AUROC (the smallest) are in the full report." in md


# -- the verdict and the board edition -------------------------------------------------------
def test_verdict_leads_with_the_range_and_the_prediction_interval():
    result = for_display(result_with())
    verdict = {v.principle: v for v in verdict_rows(result)}
    sentence = verdict["Universality"].sentence
    assert sentence.startswith(
        "Across 3 adequately powered sites AUROC ranged from 0.62 to 0.76; in a new site expect 0.42 to 0.88 "
        "(95% prediction interval).")
    assert "What to expect at a new site" not in sentence  # the findings are in the section
    checks = phrase_text(universality_parts(for_display(result_with()).plugins[1], DisplayNames(), checks=True))
    assert checks.endswith("Checks: Discrimination at each site (INCONCLUSIVE); What to expect at a new site (WARN); "
                           "One threshold for every site (PASS).")
    assert HIDDEN_SITE not in sentence and "1 small site not shown." in sentence


def test_verdict_names_and_escapes_a_site_that_stands_alone():
    plugin = make_universality()
    alone = [m for m in plugin.metrics if not (m.id == "auroc" and m.group and m.group[COL] != EVIL_SITE)]
    result = for_display(result_with(replace(plugin, metrics=tuple(alone))))
    row_ = {v.principle: v for v in verdict_rows(result)}["Universality"]
    assert row_.sentence.startswith("AUROC was 0.62 at hospital <img src=x onerror=alert(1)>, the only site")
    assert EVIL_SITE not in row_.html and "hospital &lt;img src=x onerror=alert(1)&gt;" in row_.html


def test_verdict_without_a_prediction_interval_gives_the_pooled_value():
    plugin = make_universality()
    metrics = [m for m in plugin.metrics if m.id not in ("auroc_pi_low", "auroc_pi_high")]
    parts = universality_parts(replace(plugin, metrics=tuple(metrics)), DisplayNames())
    text = phrase_text(parts)
    assert "pooled AUROC 0.66 (95% CI 0.58 to 0.74); with fewer than 3 sites no range can be given" in text


def test_board_edition_has_the_forest_plot_and_the_sentence(board):
    section = _section(board)
    assert len(_alts(section)) == 1 and "Pooled over 3 sites" in _alts(section)[0]
    assert "Across 3 adequately powered sites AUROC ranged from 0.62 to 0.76" in section
    assert "Largest gap of each grouping" not in section  # not the generic table by site
    assert "Site by site" not in section  # the table is in the technical report


def test_the_first_screen_shows_no_performance_of_all_sites_together(technical):
    screen = technical.split('id="overall-performance"', 1)[1].split("</section>", 1)[0]
    assert screen.count("<table") == 1  # the fairness plugin's, not the universality plugin's 0.700


# -- summary.md, model_card.md, junit.xml ----------------------------------------------------
def test_summary_lists_the_sites_and_the_pooled_line():
    md = render_markdown(result_with())
    part = md.split("Universality (universality)", 1)[1]
    assert "| **Dev (development)** | 500 | 0.760 (0.710–0.800) |  |" in part
    assert "| &lt;img src=x onerror=alert(1)&gt; | 200 | 0.620 (0.550–0.690) |  |" in part
    assert ("Pooled over 3 sites: 0.664 (0.580–0.740); 95% prediction interval for a new site: 0.420 to 0.880."
            in part)
    assert "1 site not shown: each rests on, or would reveal, a count below 10." in part  # counted, not named
    assert HIDDEN_SITE not in md


def test_model_card_uses_the_site_table_not_the_overall_values():
    card = render_model_card(result_with())
    part = card.split("### Universality (universality)", 1)[1].split("\n## ", 1)[0]
    assert "**AUROC by site**" in part and "Pooled over 3 sites" in part
    assert "Metric (overall)" not in part and "hospital=" not in part


def test_junit_still_has_one_testcase_per_finding():
    suite = ET.fromstring(render_junit(result_with())).find("testsuite")
    names = [tc.get("name") for tc in suite.findall("testcase")]
    assert {"universality.auroc_by_site", "universality.auroc_heterogeneity",
            "universality.operating_point_transfer"} <= set(names)


# -- absent or skipped -------------------------------------------------------------------------
def test_a_skipped_universality_plugin_renders_everywhere():
    skipped = PluginResult("universality", "Universality", "0.1.0", Status.SKIPPED,
                           "no site column configured (data.site / --site)")
    result = result_with(skipped)
    for edition in ("technical", "board"):
        html = render_html(result, edition=edition)
        assert "no site column configured" in html
    assert "no site column configured" in render_markdown(result)
    render_model_card(result)
    render_junit(result)
    verdict = {v.principle: v for v in verdict_rows(for_display(result))}
    assert verdict["Universality"].status == "SKIPPED"


def test_an_errored_universality_plugin_renders():
    failed = PluginResult("universality", "Universality", "0.1.0", Status.ERROR, "The plugin failed",
                          error="ValueError: boom")
    html = render_html(result_with(failed))
    assert "ValueError: boom" in html


def test_pdf_of_the_section_renders(tmp_path):
    pytest.importorskip("weasyprint")
    from audit.report import render_pdf

    start = time.perf_counter()
    data = render_pdf(result_with(), edition="technical")
    assert data.startswith(b"%PDF") and time.perf_counter() - start < 60
