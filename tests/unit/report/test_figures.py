"""Figures: honest axes, the tolerance drawn, every mark explained, ordinal order, and the
miss rate across thresholds when the plugin gives curves."""

from __future__ import annotations

import base64
import re
from dataclasses import replace

from audit.core.results import Curve
from audit.report.figures import (
    _limits,
    forest_figure,
    forest_svg,
    threshold_figures,
)
from audit.report.names import DisplayNames
from audit.report.suppression import for_display
from audit.report.templates import environment
from audit.report.view import ForestData, ForestPoint, group_tables

from .test_first_screen import demo_like


def _age_table():
    result = for_display(demo_like())
    tables = group_tables(result.plugins[0], 10, DisplayNames.from_result(result))
    return next(t for t in tables if t.grouping == ("age_band",))


def _svg(uri: str) -> str:
    return base64.b64decode(uri.split(",", 1)[1]).decode()


def _dotted_lines(svg: str) -> int:
    # matplotlib writes the ":" style as a short dash pattern: the tolerance line
    return len(re.findall(r"stroke-dasharray: 1\.\d+,1\.\d+", svg))


def test_ordinal_bands_come_in_reading_order_with_display_names():
    table = _age_table()
    assert [r.name for r in table.rows] == ["all patients", "infants under 1", "age band 18-39", "adults over 40"]
    assert [r.label for r in table.rows][1:] == ["age_band=<1", "age_band=18-39", "age_band=40+"]
    assert [p.name for p in table.forest.points] == ["infants under 1", "age band 18-39", "adults over 40"]
    assert table.heading == "By age band"
    assert table.caption.startswith("Results by age band: one row per group")


def test_rate_forest_plot_runs_from_0_to_100_percent_with_the_tolerance_drawn():
    forest = _age_table().forest
    assert forest.tolerance == 0.05
    assert _limits(forest) == (0.0, 1.0)
    svg = forest_svg(forest)
    without = forest_svg(replace(forest, tolerance=None))
    assert _dotted_lines(svg) == _dotted_lines(without) + 1
    ticks = re.findall(r">(\d+%)</text>", svg)
    assert ticks[0] == "0%" and ticks[-1] == "100%"
    assert "infants under 1" in svg and "=" not in "".join(re.findall(r"<text[^>]*>([^<]*)", svg))


def test_gap_plot_is_symmetric_about_zero_and_includes_the_tolerance():
    gaps = _age_table().gap_forest
    assert gaps is not None and gaps.metric_id == "fnr_gap_overall"
    lo, hi = _limits(gaps)
    assert lo == -hi and hi >= 0.607  # the widest interval
    small = ForestData("fnr_gap_overall", (ForestPoint("a=1", 0.01, (0.0, 0.02), False),), None, (), (),
                       tolerance=0.15)
    lo, hi = _limits(small)
    assert lo == -hi and hi > 0.15  # the tolerance is on the axis, however small the gaps
    assert _dotted_lines(forest_svg(small)) == 1


def test_caption_explains_every_mark_and_alt_text_carries_the_numbers():
    forest = _age_table().forest
    forest = replace(forest, points=(*forest.points[:1], replace(forest.points[1], under_powered=True),
                                     *forest.points[2:]))
    fig = forest_figure(forest)
    assert "dashed line: all patients (13.8%)" in fig.caption
    assert "dotted line: all patients plus the check's tolerance of 5 percentage points (18.8%)" in fig.caption
    assert "open dot: fewer than 30 patients or 10 with the condition; it decides nothing" in fig.caption
    assert "The axis runs from 0 to 100%" in fig.caption
    assert fig.alt.startswith("Forest plot of Missed cases (FNR) by age band: infants under 1 56.0% (34.9%–75.6%)")
    assert "age band 18-39 10.0% (6.0%–15.0%) (under-powered)" in fig.alt and "All patients: 13.8%" in fig.alt


def test_svg_is_deterministic_and_small():
    forest = _age_table().forest
    assert forest_svg(forest) == forest_svg(forest)
    assert len(forest_svg(forest)) < 20_000


def _curves(op=0.05):
    thresholds = tuple(i / 100 for i in range(101))
    out = [Curve("fnr_by_threshold", None, None, thresholds, tuple(min(1.0, t * 1.2) for t in thresholds), op)]
    for k, band in enumerate(["18-39", "40+", "<1"]):
        values = tuple(None if band == "<1" and 0.3 < t < 0.5 else min(1.0, t * (k + 1)) for t in thresholds)
        out.append(Curve("fnr_by_threshold", {"age_band": band}, None, thresholds, values, op))
    out.append(Curve("auroc_by_something", {"age_band": "<1"}, None, thresholds, thresholds, op))
    return tuple(out)


def test_threshold_plot_drawn_when_curves_exist():
    result = demo_like()
    plugin = replace(result.plugins[0], curves=_curves())
    [fig] = threshold_figures(plugin, DisplayNames.from_result(result))
    assert fig.kind == "threshold" and len(fig.uris) == 1
    assert fig.title == "Missed cases (FNR) across thresholds by age band"
    # alt text: each group's miss rate at the operating point, groups in reading order
    assert fig.alt.endswith("At the operating point (0.05): all patients 6.0%; infants under 1 15.0%; "
                            "age band 18-39 5.0%; adults over 40 10.0%.")
    assert "dotted vertical line is the operating point (0.05)" in fig.caption
    assert "a break in a line is a value hidden" in fig.caption
    svg = _svg(fig.uris[0])
    assert "infants under 1" in svg and len(svg) < 60_000
    assert threshold_figures(plugin) == threshold_figures(plugin)  # deterministic


def test_no_threshold_plot_without_curves():
    assert threshold_figures(demo_like().plugins[0]) == []


def test_figures_partial_renders_a_figure_with_its_caption():
    forest = _age_table().forest
    fig = forest_figure(replace(forest, suppressed=("age_band=1-17",), suppressed_names=("age band 1-17",)))
    template = environment().from_string('{% import "_figures.html.j2" as figs %}{{ figs.figure(fig, 10) }}')
    html = template.render(fig=fig)
    assert html.count("<img ") == 1 and "<figcaption>" in html
    assert 'alt="Forest plot of Missed cases (FNR) by age band: infants under 1 56.0%' in html
    assert "Not drawn, hidden because a count is below 10: age band 1-17." in html
