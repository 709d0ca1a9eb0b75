from __future__ import annotations

import re

import pytest

from audit.report import render_markdown
from audit.report.markdown import md_escape

from .factories import EVIL, SUPPRESSED_N, make_multilabel, make_result


@pytest.fixture(scope="module")
def md() -> str:
    return render_markdown(make_result())


def _cells(line: str) -> list[str]:
    """Split a Markdown table row on unescaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_overall_status_and_gates_table(md):
    assert md.startswith("## Model audit report: ❌ **FAIL**")
    lines = md.splitlines()
    start = lines.index("| Gate | Status | Policy | Message |")
    rows = [_cells(line) for line in lines[start + 2 : start + 6]]
    assert [r[0] for r in rows] == [
        "`fairness.fnr_gap<=0.05`",
        "`fairness.auroc>=0.7`",
        "`fairness.fnr<=0.3`",
        "`fairness.brier<=0.2`",
    ]
    assert [r[1] for r in rows] == ["❌ **FAIL**", "✅ **PASS**", "❔ **INCONCLUSIVE**", "💥 **ERROR**"]


def test_plugin_status_summary_and_key_findings(md):
    assert "### ❌ **FAIL** Fairness (fairness)" in md
    assert "Women are underdiagnosed: FNR 25.0% vs 14.0% for men." in md
    assert "- ❌ **FAIL**: The model misses 11 more patients per 100" in md


def test_key_metric_table_with_suppression_and_undefined(md):
    lines = md.splitlines()
    start = lines.index("| Group | n | FNR (CI) | Flags |")
    rows = {r[0]: r for r in map(_cells, lines[start + 2 : start + 8])}
    assert rows["**overall**"][1:3] == ["400", "20.0% (14.0%–28.0%)"]
    assert rows["sex=X"][1:3] == ["suppressed (&lt; 10)", "suppressed (&lt; 10)"]
    assert rows["sex=U"][2] == "undefined (no positives)"
    assert rows["sex=M"][3] == "under\\_powered"
    assert "12.3%" not in md and "0.123" not in md and f"| {SUPPRESSED_N} |" not in md


def test_no_html_and_pipes_escaped(md):
    assert not re.search(r"<[A-Za-z/!]", md)
    assert "sex=&lt;script&gt;alert(1)&lt;/script&gt;" in md
    # the finding message "...sex=<script>...|U: no positives." keeps its pipe escaped
    assert "&lt;/script&gt;\\|U: no positives." in md
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.endswith("|")
    header_widths = {len(_cells(line)) for line in md.splitlines() if line.startswith("| Group")}
    assert header_widths == {4}


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a|b", "a\\|b"),
        ("[x](http://e)", "\\[x\\](http://e)"),
        ("![img](u)", "\\!\\[img\\](u)"),
        ("<b>&", "&lt;b&gt;&amp;"),
        ("two\nlines", "two lines"),
        ("*bold* _it_ `code`", "\\*bold\\* \\_it\\_ \\`code\\`"),
    ],
)
def test_md_escape(text, escaped):
    assert md_escape(text) == escaped


def test_evil_name_in_md_cannot_open_a_tag():
    assert EVIL not in render_markdown(make_result())


def test_multilabel_shows_only_the_underdiagnosis_rate():
    md = render_markdown(make_multilabel())
    assert "**Underdiagnosis rate by sex**" in md
    assert "Effusion" not in md and "| FNR" not in md
    assert "No gates were configured." in md
