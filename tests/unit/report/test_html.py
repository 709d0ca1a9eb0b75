from __future__ import annotations

import base64
import re
import warnings

import pytest

from dataclasses import replace

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


# Sections of the first screen (_first_screen.html.j2), before the verdict and the findings.
FIRST_SCREEN = ("Model under audit", "How well the model works overall")


@pytest.fixture(scope="module")
def html() -> str:
    return render_html(make_result())


@pytest.fixture(scope="module")
def board() -> str:
    return render_html(make_result(), edition="board")


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
    assert len(uris) == 2  # one grouping ({sex}) with a key metric: its forest and its gap plot
    svg = base64.b64decode(uris[0].removeprefix("data:image/svg+xml;base64,")).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<image" not in svg and "@font-face" not in svg and "<script" not in svg
    # one row per shown group; suppressed (X) and undefined (U) groups are left out
    labels = re.findall(r"<text[^>]*>([^<]*)", svg)
    assert {"sex F", "sex M", "sex &lt;script&gt;alert(1)&lt;/script&gt;", "Missed cases (FNR)"} <= set(labels)
    assert "sex X" not in labels and "sex U" not in labels


def test_header_shows_date_files_and_status(html):
    assert "2024-05-01 10:00:12 UTC" in html
    assert SHA_DATA[:12] in html
    assert "model.skops" in html
    assert re.search(r'class="badge st-FAIL big"', html)


def test_sections_for_a_non_statistician(html):
    headings = [h for h in re.findall(r"<h2>([^<]+)</h2>", html) if h not in FIRST_SCREEN]
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
    x_gap = next(r for r in gaps[1:] if r[0] == "sex=X")
    assert x_gap[5:8] == ["suppressed (< 10)", "—", "—"]
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
    assert "hidden because a count is below 10: sex X." in html
    assert "undefined: sex U (no positives)" in html


def test_undefined_values_say_undefined_not_zero(html):
    table = table_with_header(html, "Group", "FNR", "Sensitivity")
    unknown = row(table, "sex=U")
    assert unknown["FNR"] == "undefined (no positives)"
    assert unknown["Sensitivity"] == "undefined (no positives)"
    assert unknown["AUROC"] == "undefined"


def test_gap_table_has_intervals_and_p_values(html):
    gaps = table_with_header(html, "Gap (CI)", "p-value", "Adjusted p")
    best = gaps[1]
    assert gaps[0][:5] == ["Group", "Flags", "Compared with", "Metric", "Label"]  # flags beside the group
    assert best[:5] == ["sex=F", "—", "best group (sex=M)", "FNR gap", "—"]
    assert best[5:8] == ["+11.0 pp (+2.0 to +20.0 pp)", "0.012", "0.037"]
    overall = next(r for r in gaps[1:] if r[2] == "overall")
    assert overall[6:8] == ["< 0.001", "0.200"]


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
    assert "Underdiagnosis (cases called &#39;no finding&#39;) by sex" in html
    # a forest plot per (label, grouping) (and a gap plot for the headline, had it gaps)
    assert html.count('<img src="data:image/svg+xml;base64,') == 3
    board = render_html(result, edition="board")
    assert board.count('<img src="data:image/svg+xml;base64,') == 1  # the headline grouping only
    assert "Missed cases (FNR) by sex (Effusion)" not in board


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
    assert "sha256 predictions" not in html
    # the fingerprint restates the score columns the name already gives
    assert "(predictions:p)" not in html and '<span class="mono">p</span>' in html


# ---------------------------------------------------------------- two editions


def test_the_technical_edition_is_the_default_and_an_unknown_edition_is_refused(html):
    assert render_html(make_result(), edition="technical") == html
    assert "technical report" in html.split("</title>")[0]
    with pytest.raises(ValueError, match=r"edition: expected one of board, technical, got 'full'"):
        render_html(make_result(), edition="full")


def test_board_edition_sections(board):
    headings = [h for h in re.findall(r"<h2>([^<]+)</h2>", board) if h not in FIRST_SCREEN]
    assert headings == ["Verdict", "Key findings", "Not assessed, or not decided", "Sign-off", "Provenance"]
    body = board.split("<body")[1]
    assert body.index('id="verdict"') < body.index('id="findings"') < body.index('id="sign-off"')
    # no item-by-item checklists, gates, methods or glossary: those are in the technical report
    for absent in ('id="checklists"', 'id="gates"', 'id="methods"', 'id="glossary"', '<table class="checklist-items"'):
        assert absent not in board
    ids = set(re.findall(r'\sid="([^"]+)"', board))
    assert set(re.findall(r'href="#([^"]*)"', board)) <= ids  # the verdict's links resolve here too


def test_board_shows_the_worst_findings_and_the_largest_gap_of_each_grouping(board):
    cards = re.findall(r'<article class="finding b-([A-Z_]+)" id="([^"]+)"', board)
    assert cards == [("FAIL", "finding-fairness-fnr_gap_sex")]  # the INCONCLUSIVE one is not a card
    assert "FNR undefined" in board.split('id="not-assessed"')[1]  # it is listed as undecided
    primary = table_with_header(board, "Grouping", "Group", "Gap to all patients")
    assert primary[1] == ["sex", "sex=F", "—", "25.0% (15.8%–37.1%)", "+5.0 pp (-1.0 to +11.0 pp)",
                          "+11.0 pp (+2.0 to +20.0 pp)", "0.200"]
    assert board.count('<img src="data:image/svg+xml;base64,') == 1  # one forest plot per grouping
    assert "under-powered: sex M; hidden (a count below 10): sex X; undefined: sex U" in board


def test_board_sign_off_block(board):
    section = board.split('<section id="sign-off"')[1].split("</section>")[0]
    assert "Approved for the intended use" in section and "Not approved" in section
    table = table_with_header(section, "Name", "Role", "Date", "Signature")
    assert len(table) == 5 and all(cell == "" for r in table[1:] for cell in r)


def test_board_provenance_is_collapsed_with_file_names_and_hashes(board):
    section = board.split('<section id="provenance">')[1].split("</section>")[0]
    assert '<details class="fold"><summary>' in section  # collapsed on screen
    assert f"test &lt;v2&gt;.csv (sha256 {SHA_DATA})" in section
    assert "<details" not in render_html(make_result(), edition="board", for_pdf=True)


def test_secondary_gaps_go_to_the_appendix_and_not_to_the_board():
    result = make_result()
    plugin = result.plugins[0]
    extra = tuple(
        Metric(f"{m}_gap_overall", 0.031, n=180, group={"sex": "F"}, ci=(0.01, 0.05), reference="overall",
               p_value=0.2, p_adjusted=0.4)
        for m in ("sensitivity", "specificity", "ppv", "npv", "fpr")
    )
    result = replace(result, plugins=(replace(plugin, metrics=plugin.metrics + extra),))
    html = render_html(result)
    findings = html.split('<section id="findings">')[1].split('<section id="gates">')[0]
    appendix = html.split('<section id="appendix" class="wide">')[1]
    assert "FPR gap" in findings and "Sensitivity gap" not in findings
    matrix = table_with_header(appendix, "Group", "Sensitivity gap to all", "NPV gap to best")
    assert matrix[0] == ["Group", "Flags"] + [f"{m} gap to {r}" for m in ("Sensitivity", "Specificity", "PPV", "NPV")
                                              for r in ("all", "best")]
    assert matrix[1][:4] == ["sex=F", "—", "+3.1 pp (+1.0 to +5.0 pp) adj. p 0.400", "—"]
    assert re.findall(r"<h2>([^<]+)</h2>", html)[-1] == "Appendix: secondary gaps"
    assert "Sensitivity gap" not in render_html(result, edition="board")


def test_no_path_of_the_machine_in_either_edition():
    result = make_result()
    provenance = {**result.provenance,
                  "data": {"file": "test.csv", "path": "/home/alice/secret/test.csv", "sha256": SHA_DATA},
                  "model": {"kind": "onnx", "path": "C:\\Users\\alice\\model.onnx", "sha256": SHA_DATA}}
    config = {**result.config, "data": {"path": "../../private/test.csv", "reference": "/srv/x/ref.csv"},
              "report": {"min_cell": 10, "out": "/home/alice/reports", "attestations": "~/a.yaml"}}
    plugin = replace(result.plugins[0], warnings=("Could not read /home/alice/secret/extra.csv; skipped.",))
    leaky = replace(result, provenance=provenance, config=config, plugins=(plugin,),
                    warnings=("Cache at /var/tmp/alice/cache (file:///var/tmp/alice/cache) is old.",))
    for edition in ("board", "technical"):
        text = render_html(leaky, edition=edition)
        for secret in ("/home/alice", "alice\\", "Users", "/srv/", "../", "/var/tmp", "~/"):
            assert secret not in text, (edition, secret)
        assert "test.csv" in text and "model.onnx" in text
        assert "Could not read extra.csv; skipped." in text
    technical = render_html(leaky)
    assert "ref.csv" in technical and "a.yaml" in technical and "reports" in technical


def test_fifteen_score_columns_are_named_once_and_in_short():
    columns = [f"p_{k}" for k in range(15)]
    result = make_result()
    provenance = {**result.provenance, "model": {"kind": "predictions", "source": "score columns: " + ", ".join(columns),
                                                 "sha256": "predictions:" + ",".join(columns)}}
    for edition in ("board", "technical"):
        html = render_html(make_result(provenance=provenance), edition=edition)
        header = html.split("</header>")[0]
        assert "15 score columns (p_0 … p_14)" in header
        assert "p_7" not in header


def test_group_names_never_break_inside_a_word(html):
    css = html.split("<style>")[1].split("</style>")[0]
    assert not re.search(r"word-break:\s*break-all", css)
    # overflow-wrap: anywhere only on long tokens (long names, links, settings and provenance)
    bare = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    selectors = re.findall(r"([^{}]*)\{[^{}]*overflow-wrap:\s*anywhere", bare)
    assert selectors and all(any(s in sel for s in (".long-name", ".link-text", "dl.kv", ".kv-inline")) for sel in selectors)
    # an intersection: each part on one line, a break only between parts
    many = render_html(make_many_groups(3))
    assert re.search(r'<span class="gps"><span class="gp">[^<]+,</span> <span class="gp">', many)
