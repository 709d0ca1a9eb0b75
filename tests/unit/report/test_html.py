from __future__ import annotations

import base64
import re
import warnings

import pytest

from audit.core.results import AuditResult, Metric, PluginResult, Status
from audit.report import render_html
from audit.report.view import group_tables

from .factories import (
    EVIL,
    SHA_DATA,
    SUPPRESSED_N,
    make_fairness,
    make_many_groups,
    make_multilabel,
    make_result,
)
from .htmltables import html_tables, row, table_with_header


@pytest.fixture(scope="module")
def html() -> str:
    return render_html(make_result())


def test_user_strings_are_escaped(html):
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # also in an attribute-free text spot: the file name with angle brackets
    assert "test &lt;v2&gt;.csv" in html


def test_no_external_resources_and_no_javascript(html):
    targets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html, flags=re.I)
    targets += re.findall(r"url\(\s*['\"]?([^)'\"]*)", html, flags=re.I)
    assert targets  # the regexes see the page's links and images
    for target in targets:
        assert not re.match(r"(?i)(https?:)?//", target), target
        assert target.startswith(("#", "data:image/svg+xml;base64,")), target
    lowered = html.lower()
    for forbidden in ("<link", "@import", "@font-face", "<script", "<iframe", "javascript:", " on"):
        if forbidden == " on":
            assert not re.search(r"<[^>]+\son[a-z]+\s*=", lowered)
        else:
            assert forbidden not in lowered


def test_figures_are_svg_data_uris_not_inline_svg(html):
    assert "<svg" not in html
    uris = re.findall(r'<img src="([^"]+)"', html)
    assert len(uris) == 1  # one grouping ({sex}) with a key metric
    svg = base64.b64decode(uris[0].removeprefix("data:image/svg+xml;base64,")).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<image" not in svg and "@font-face" not in svg and "<script" not in svg
    # one row per shown group; suppressed (X) and undefined (U) groups are left out
    labels = re.findall(r"<text[^>]*>([^<]*)", svg)
    assert {"sex=F", "sex=M", "sex=&lt;script&gt;alert(1)&lt;/script&gt;", "FNR"} <= set(labels)
    assert "sex=X" not in labels and "sex=U" not in labels


def test_header_shows_date_files_and_status(html):
    assert "2024-05-01 10:00:12 UTC" in html
    assert SHA_DATA[:12] in html
    assert "model.skops" in html
    assert re.search(r'class="badge st-FAIL big"', html)


def test_sections_for_a_non_statistician(html):
    headings = re.findall(r"<h2>([^<]+)</h2>", html)
    assert headings == [
        "Verdict",
        "Findings",
        "Gates",
        "Warnings",
        "Methods",
        "Checklist coverage",
        "Provenance",
        "Glossary",
    ]
    assert "@media print" in html
    assert "The model misses 11 more patients per 100" in html  # finding message under Findings
    assert "share of patients with the condition that the model missed" in html


def test_group_table_formats_rates_and_scores(html):
    table = table_with_header(html, "Group", "n", "FNR", "AUROC")
    women = row(table, "sex=F")
    assert women["FNR"] == "25.0% (15.8%–37.1%)"
    assert women["AUROC"] == "0.842 (0.792–0.882)"
    assert women["n"] == "180" and women["Positives"] == "60"
    assert row(table, "sex=M")["Flags"] == "under_powered"
    assert row(table, "overall")["FNR"].startswith("20.0%")


def test_suppressed_cells_show_nothing_but_the_word(html):
    table = table_with_header(html, "Group", "n", "FNR")
    hidden = row(table, "sex=X")
    assert all(v == "suppressed (< 10)" for k, v in hidden.items() if k not in ("Group", "Flags"))
    assert "12.3%" not in html and "0.123" not in html
    assert "65.4%" not in html and "0.654" not in html  # its AUROC
    assert "0.027" not in html  # its p-value
    gaps = table_with_header(html, "Gap (CI)", "p-value")
    x_gap = [r for r in gaps[1:] if r[2] == "sex=X"][0]
    assert x_gap[4:7] == ["suppressed (< 10)", "—", "—"]
    checks = table_with_header(html, "Group", "Reference", "Value")
    assert row(checks, "sex=X")["Value"] == "suppressed (< 10)"
    assert f">{SUPPRESSED_N}<" not in html.replace(f'class="item-id">{SUPPRESSED_N}<', "")  # CLAIM item 7


def test_forest_plot_omits_suppressed_and_undefined_groups(result):
    table = next(t for t in group_tables(result.plugins[0], 10) if t.grouping == ("sex",))
    assert table.key_metric == "fnr"
    assert [p.label for p in table.forest.points] == ["sex=F", "sex=M", f"sex={EVIL}"]
    assert table.forest.suppressed == ("sex=X",)
    assert table.forest.undefined == (("sex=U", "no positives"),)
    assert table.forest.overall == pytest.approx(0.20)


def test_figure_caption_lists_suppressed_and_undefined(html):
    assert "suppressed (a count below 10): sex=X." in html
    assert "undefined: sex=U (no positives)" in html


def test_undefined_values_say_undefined_not_zero(html):
    table = table_with_header(html, "Group", "FNR", "Sensitivity")
    unknown = row(table, "sex=U")
    assert unknown["FNR"] == "undefined (no positives)"
    assert unknown["Sensitivity"] == "undefined (no positives)"
    assert unknown["AUROC"] == "undefined"


def test_gap_table_has_intervals_and_p_values(html):
    gaps = table_with_header(html, "Gap (CI)", "p-value", "Adjusted p")
    best = gaps[1]
    assert best[:4] == ["FNR gap", "—", "sex=F", "best group (sex=M)"]
    assert best[4:7] == ["+11.0 pp (+2.0 to +20.0 pp)", "0.012", "0.037"]
    overall = [r for r in gaps[1:] if r[3] == "overall"][0]
    assert overall[5:7] == ["< 0.001", "0.200"]


def test_gates_table(html):
    gates = table_with_header(html, "Gate", "Status", "Policy", "Message")
    assert [r[0] for r in gates[1:]] == [
        "fairness.fnr_gap<=0.05",
        "fairness.auroc>=0.7",
        "fairness.fnr<=0.3",
        "fairness.brier<=0.2",
    ]
    assert [r[1].split()[-1] for r in gates[1:]] == ["FAIL", "PASS", "INCONCLUSIVE", "ERROR"]


def test_methods_from_settings(html):
    methods = html.split('<section id="methods">')[1].split("</section>")[0]
    for text in (
        "Decision threshold</dt><dd>0.42",
        "Youden index on the validation split",
        "Confidence level</dt><dd>95%",
        "holm",
        "Bootstrap replicates</dt><dd>2000",
        "Random seed</dt><dd>20240501",
        "Minimum group size</dt><dd>30",
        "<code>sensitive_features</code>",  # every setting, generically
    ):
        assert text in methods


def test_provenance_and_warnings_rendered_generically(html):
    prov = html.split('<section id="provenance">')[1].split("</section>")[0]
    assert "0123456789abcdef" in prov and "Linux-6.1-x86_64" in prov and SHA_DATA in prov
    warns = html.split('<section id="warnings">')[1].split("</section>")[0]
    assert "Column &#39;age&#39; has 3 missing values." in warns
    assert "Group &#39;U&#39; has no positives." in warns


def test_min_cell_comes_from_config():
    html = render_html(make_result(config={"report": {"min_cell": 5}}))
    assert "suppressed (&lt; 5)" in html and "suppressed (&lt; 10)" not in html


def test_multilabel_key_metric_is_underdiagnosis_rate():
    result = make_multilabel()
    tables = group_tables(result.plugins[0], 10)
    assert [(t.label, t.key_metric) for t in tables] == [
        (None, "underdiagnosis_rate"),
        ("Effusion", "fnr"),
        ("Edema", "fnr"),
    ]
    html = render_html(result)
    assert "Underdiagnosis rate by sex" in html
    assert html.count('<img src="data:image/svg+xml;base64,') == 3


def test_fifty_groups_stay_under_one_megabyte():
    html = render_html(make_many_groups(50))
    assert len(html.encode()) < 1_000_000
    assert html.count("hospital-49") >= 2


def test_plugins_without_metrics_and_group_names_outside_the_font():
    skipped = PluginResult("universality", "Universality", "0.1.0", Status.SKIPPED, "No site column.")
    odd = make_fairness(
        metrics=(
            Metric("fnr", 0.2, n=50, group={"sex": "女"}, ci=(0.1, 0.3)),
            Metric("fnr", 0.1, n=50, group={"sex": "$x^2$ \\frac"}, ci=(0.0, 0.2)),
        )
    )
    result = AuditResult(plugins=(skipped, odd), status=Status.SKIPPED)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        html = render_html(result)
    assert "No site column." in html and "女" in html and "$x^2$ \\frac" in html


def test_every_table_row_has_as_many_cells_as_its_header(html):
    for table in html_tables(html):
        if len(table) > 1 and len(table[0]) > 2:
            assert {len(r) for r in table} == {len(table[0])}


def test_predictions_only_model_shows_its_fingerprint_not_a_fake_hash():
    result = make_result()
    provenance = {**result.provenance, "model": {"kind": "predictions", "source": "p", "sha256": "predictions:p"}}
    html = render_html(make_result(provenance=provenance))
    assert "(predictions:p)" in html and "sha256 predictions" not in html
