from __future__ import annotations

import re

import pytest

from audit.core.results import Finding, GateCheck, GateResult, Status
from audit.report import render_markdown
from audit.report.markdown import md_escape

from .factories import EVIL, SUPPRESSED_N, make_fairness, make_multilabel, make_result


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
    assert "- ❌ **FAIL** Underdiagnosis gap by sex (threshold 5.0 pp): The model misses 11 more patients per 100" in md


def test_key_metric_table_with_suppression_and_undefined(md):
    lines = md.splitlines()
    start = lines.index("| Group | n | FNR (CI) | Flags |")
    rows = {r[0]: r for r in map(_cells, lines[start + 2 : start + 8])}
    assert rows["**all patients**"][1:3] == ["400", "20.0% (14.0%–28.0%)"]
    # one reason for every hidden cell (which count is small is not said)
    assert rows["sex X"][1:3] == ["suppressed (rests on, or would reveal, a count below 10)", "suppressed (rests on, or would reveal, a count below 10)"]
    assert rows["sex U"][2] == "undefined (no positives)"
    assert rows["sex M"][3] == "under\\_powered"
    assert "12.3%" not in md and "0.123" not in md and f"| {SUPPRESSED_N} |" not in md


def test_no_html_and_pipes_escaped(md):
    assert not re.search(r"<[A-Za-z/!]", md)
    assert "sex=&lt;script&gt;alert(1)&lt;/script&gt;" in md
    # the finding message "...sex=<script>...|U: no positives." keeps its pipe escaped
    assert "&lt;/script&gt;\\|U: no positives." in md
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.endswith("|")
    header_widths = {len(_cells(line)) for line in md.splitlines() if line.startswith("| Group | n |")}
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


# ------------------------------------------------------------------------ short lines that name the groups
def _gate_table(md: str, expression: str) -> dict[str, list[str]]:
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"**`{expression}`**"))
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("| Group"))
    rows = []
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    return {r[0]: r for r in rows}


def test_each_gate_names_its_failing_and_undecided_groups_with_value_interval_and_threshold(md):
    assert ("**`fairness.fnr_gap<=0.05`**: 2 of 2 values fail or cannot be decided against "
            "gap in missed cases (FNR) ≤ 5.0 pp (all policy).") in md
    rows = _gate_table(md, "fairness.fnr_gap<=0.05")
    assert rows["sex F"] == ["sex F", "best group", "+11.0 pp (+2.0 to +20.0 pp)", "≤ 5.0 pp", "❌ **FAIL**"]
    assert rows["sex X"][2:] == ["suppressed", "≤ 5.0 pp",
                                 "❔ **INCONCLUSIVE**: suppressed: it rests on, or would reveal, a count below 10"]
    rows = _gate_table(md, "fairness.fnr<=0.3")
    assert rows["sex F"] == ["sex F", "25.0% (15.8%–37.1%)", "≤ 30.0%",
                             "❔ **INCONCLUSIVE**: its interval includes the threshold"]
    assert "**`fairness.auroc>=0.7`**" not in md  # a gate that holds needs no list


def test_no_bullet_is_longer_than_200_characters_and_long_gates_are_cut():
    long_message = " ".join(f"Group site={i:02d} has an FNR of {10 + i}.0% (95% CI 5.0%–30.0%)." for i in range(20))
    assert len(long_message) > 800
    fairness = make_fairness(findings=(Finding("fnr_by_site", "Missed cases (FNR) by site", Status.WARN, long_message,
                                               metric="fnr_gap", threshold=0.05),))
    checks = tuple(GateCheck({"site": f"{i:02d}"}, 0.2, (0.1, 0.3), Status.FAIL) for i in range(40))
    gate = GateResult("fairness.fnr<=0.05", "fairness.fnr", "<=", 0.05, "interval", Status.FAIL,
                      "0 of 40 values hold, 40 fail, 0 inconclusive (interval policy)", checks=checks)
    md = render_markdown(make_result(plugins=(fairness,), gates=(gate,),
                                     warnings=("A warning that goes on. " * 30,)))
    bullets = [line for line in md.splitlines() if line.startswith("- ")]
    assert bullets and max(map(len, bullets)) <= 200
    warn = next(b for b in bullets if "Missed cases (FNR) by site" in b)
    assert warn.startswith("- ⚠️ **WARN** Missed cases (FNR) by site (threshold 5.0 pp): Group site=00 has")
    assert warn.endswith(". …")  # cut after a whole sentence
    rows = _gate_table(md, "fairness.fnr<=0.05")
    assert len(rows) == 25 and "… and 15 more; technical-report.html lists every group." in md
