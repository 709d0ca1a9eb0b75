"""The Traceability section: features largest drift first, the changes against the reference
with their intervals, the windows in time order with suppressed cells as such, and every name
from the data escaped."""

from __future__ import annotations

from audit.core.results import Finding, Metric, PluginResult, Status
from audit.report import render_html, render_markdown
from audit.report.traceability import traceability_view

from .factories import make_fairness, make_result

EVIL = "<script>alert(1)</script>"


def plugin() -> PluginResult:
    metrics = [
        Metric("drift_effect", 0.08, n=900, feature="ward", reason="jensen_shannon"),
        Metric("chi2", 3.1, n=900, feature="ward", p_value=0.2, p_adjusted=0.4),
        Metric("psi", 0.02, n=900, feature="ward"),
        Metric("drift_effect", 0.52, n=900, feature=EVIL, reason="wasserstein_normalised", flags=("drift_large",)),
        Metric("ks", 0.21, n=900, feature=EVIL, p_value=1e-9, p_adjusted=2e-9),
        Metric("psi", 0.9, n=900, feature=EVIL),
        Metric("missing_change", -0.00001, n=900, feature=EVIL),
        Metric("auroc_change", -0.087, n=900, ci=(-0.127, -0.046), reference="reference"),
        Metric("sensitivity_change", 0.06, n=900, ci=(-0.018, 0.148), reference="reference"),
        Metric("prevalence_change", -0.00004, n=900, ci=(-0.012, 0.011), reference="reference"),
        Metric("domain_auroc", 0.94, n=900, ci=(0.93, 0.95), flags=("drift_large",)),
        Metric("domain_importance", 0.44, n=900, feature=EVIL),
        Metric("n", 500, n=500, group={"window": "2021-01"}),
        Metric("auroc", 0.81, n=500, group={"window": "2021-01"}, ci=(0.77, 0.85)),
        Metric("n", None, group={"window": "2021-02"}, suppressed=True),
        Metric("auroc", None, group={"window": "2021-02"}, suppressed=True),
        Metric("n", 0, n=0, group={"window": "2021-03"}, reason="no rows in this window"),
        Metric("auroc_shift", None, n=2, reason="2 non-empty windows: at least 6 are needed"),
    ]
    return PluginResult(
        plugin="traceability", principle="Traceability", version="0.1.0", status=Status.WARN,
        summary="1 of 2 input features drifted.", metrics=tuple(metrics),
        findings=(Finding("feature_drift", "Drift from the reference data", Status.WARN,
                          f"1 of 2 input features drifted from the reference data: {EVIL}.", metric="drift_effect"),),
        settings={"window": "calendar months"}, checklist=("TRIPOD+AI:20c",))


def test_view_sorts_by_effect_and_formats_changes():
    v = traceability_view(plugin())
    assert [r.feature for r in v.drift] == [EVIL, "ward"]
    assert v.drift[0].verdict == "large drift" and v.drift[0].test == "KS p < 0.001"
    assert v.drift[0].missing == "+0.0 points"  # no "-0.0"
    changes = {what: (c, ci) for what, c, ci in v.changes}
    assert changes["AUROC"] == ("-0.087", "-0.127 to -0.046")
    assert changes["Prevalence"][0] == "+0.0 points"
    assert [w.window for w in v.windows] == ["2021-01", "2021-02", "2021-03"]
    cells = {w.window: dict(zip(v.window_headers, w.cells, strict=True)) for w in v.windows}
    assert cells["2021-02"]["AUROC"] == "suppressed" and cells["2021-03"]["Tests"] == "0"
    assert "at least 6 are needed" in v.shifts[0]


def test_section_renders_escaped_in_both_editions_and_markdown():
    result = make_result(plugins=(make_fairness(), plugin()))
    technical = render_html(result)
    assert "Drift from the reference data, largest first" in technical
    assert EVIL not in technical and "&lt;script&gt;" in technical
    board = render_html(result, edition="board")
    assert EVIL not in board and "Traceability" in board
    assert EVIL not in render_markdown(result)


def test_trend_figure_draws_published_windows_and_the_shift():
    from dataclasses import replace as _replace

    p = plugin()
    extra = (Metric("n", 400, n=400, group={"window": "2021-04"}),
             Metric("auroc", 0.70, n=400, group={"window": "2021-04"}, ci=(0.64, 0.76)),
             Metric("auroc_shift", -0.11, n=3, group={"window": "2021-04"}, reason="from 0.81 to 0.70"))
    v = traceability_view(_replace(p, metrics=p.metrics + extra))
    assert v.trend is not None and v.trend.uris[0].startswith("data:image/svg+xml;base64,")
    assert "2 of 4 windows" in v.trend.alt and "AUROC shifts from window 2021-04" in v.trend.alt
    assert traceability_view(p).trend is None  # one drawable window: no figure


def test_distribution_figures_escaped_with_numbers_in_the_alt_text():
    from dataclasses import replace as _replace

    from audit.core.results import AuditResult, Distribution

    d = Distribution(feature=EVIL, kind="categorical", bins=("CR", EVIL), reference=(1.0, 0.0), audited=(0.7, 0.3))
    p = _replace(plugin(), distributions=(d,))
    v = traceability_view(p)
    [fig] = v.distributions
    assert fig.alt.endswith("CR 100.0% against 70.0%; " + EVIL + " 0.0% against 30.0%.")
    technical = render_html(make_result(plugins=(make_fairness(), p)))
    assert "Where the most drifting features moved" in technical and EVIL not in technical
    # results.json round trip keeps the distribution
    result = make_result(plugins=(make_fairness(), p))
    back = AuditResult.from_json(result.to_json())
    assert back.plugin("traceability").distributions == (d,)
