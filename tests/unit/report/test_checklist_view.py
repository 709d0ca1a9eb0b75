"""Evidence mapping in report.html: every checklist item with its state, coverage at the top."""

from __future__ import annotations

import re

import pytest

from audit.attestations import attestations_from_record
from audit.checklists import CHECKLIST_IDS, coverage_line, item_states, load_checklist
from audit.core.results import Status
from audit.report import render_html
from audit.report.checklist_view import attested_by_principle, checklist_views
from audit.report.suppression import for_display

from .factories import make_fairness, make_result
from .htmltables import html_tables

ATTESTATIONS = {
    "claim-2024": {
        "3": {
            "answer": "Triage <b>only</b> & never alone",
            "links": ["https://example.org/protocol?a=1&b=<2>"],
            "by": "Dr <Who>",
            "date": "2026-01-02",
        }
    },
    "future-ai": {"Usability 1": {"answer": "Co-designed with ward nurses."}},
}


@pytest.fixture(scope="module")
def attested():
    return make_result(attestations=ATTESTATIONS)


@pytest.fixture(scope="module")
def html(attested) -> str:
    return render_html(attested)


def _section(html: str) -> str:
    return html.split('<section id="checklists">')[1].split("</section>")[0]


def _item_row(html: str, checklist: str, item: str) -> list[str]:
    part = html.split(f'id="checklist-{checklist}"')[1]
    table = next(t for t in html_tables(part) if t and t[0][:4] == ["Item", "Section", "Topic", "State"])
    return next(r for r in table[1:] if r[0].split(" (")[0] == item)


def test_coverage_line_of_every_checklist_at_the_top(attested, html):
    answers = attestations_from_record(attested.attestations)
    for cid in CHECKLIST_IDS:
        checklist = load_checklist(cid)
        line = coverage_line(checklist, item_states(checklist, for_display(attested), answers))
        assert f"<strong>{line}</strong>" in _section(html)
        assert f'<a href="#checklist-{cid}">{line}</a>' in html.split('<section id="verdict">')[1]
    assert "CLAIM 2024: " in html and " of 44 items measured, " in html


def test_every_item_is_listed_with_its_state(html):
    section = _section(html)
    for cid in CHECKLIST_IDS:
        checklist = load_checklist(cid)
        part = section.split(f'id="checklist-{cid}"')[1].split('class="checklist"')[0]
        assert part.count("<tr>") == len(checklist.items) + 1
    assert re.search(r"<summary>All 52 sub-items of TRIPOD\+AI</summary>", section)


def test_measured_item_links_to_its_findings_with_status(html):
    row = _item_row(html, "claim-2024", "38")  # estimates with intervals: the whole item
    assert row[3] == "measured"
    assert "Underdiagnosis gap by sex" in row[4] and "FAIL" in row[4]
    assert '<a href="#finding-fairness-fnr_gap_sex">Underdiagnosis gap by sex</a>' in html
    assert 'id="finding-fairness-fnr_gap_sex"' in html


def test_attested_answer_is_escaped_and_links_are_text(html):
    row = _item_row(html, "claim-2024", "3")
    assert row[3] == "attested"
    assert "Triage <b>only</b> & never alone" in row[4]  # the text a reader sees
    assert "Triage &lt;b&gt;only&lt;/b&gt; &amp; never alone" in html
    assert "Answered by Dr &lt;Who&gt; on 2026-01-02." in html
    assert "https://example.org/protocol?a=1&amp;b=&lt;2&gt;" in html
    assert 'href="https://' not in html and "<b>only" not in html


def test_open_item_shows_its_note(html):
    row = _item_row(html, "claim-2024", "1")
    assert row[3] == "open"
    assert row[4] == "Needs a written answer (attestation)"
    planned = _item_row(html, "tripod-ai", "6a")
    assert planned[3] == "open" and "evidence would be: auroc_pooled" in planned[4]


def test_every_internal_link_has_a_target(html):
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    targets = set(re.findall(r'href="#([^"]*)"', html))
    assert targets and targets <= ids
    assert len(ids) == len(re.findall(r'\sid="([^"]+)"', html))  # ids are unique


def test_a_plugin_that_did_not_run_measures_nothing():
    skipped = make_fairness(status=Status.SKIPPED, summary="no sensitive attributes")
    views = checklist_views(make_result(plugins=(skipped,), gates=()))
    future = next(v for v in views if v.id == "future-ai")
    fairness3 = next(i for i in future.items if i.id == "Fairness 3")
    assert fairness3.state == "open" and fairness3.findings == ()


def test_attested_counts_per_principle(attested):
    counts = attested_by_principle(checklist_views(attested))
    assert counts["Usability"][0] == 1 and counts["Usability"][1] >= 4
    assert counts["Robustness"][0] == 0


def test_unreadable_attestation_record_does_not_stop_the_report():
    views = checklist_views(make_result(attestations={"claim-2024": {"3": {"no_answer": 1}}}))
    assert all(v.items for v in views)
    assert "cannot be read" in views[0].error


def _item(views, cid: str, item_id: str):
    view = next(v for v in views if v.id == cid)
    return next(i for i in view.items if i.id == item_id)


def test_partly_measured_not_applicable_and_attested_items_carry_what_the_page_needs():
    answers = {"claim-2024": {"7": {"answer": "Hospital A PACS export, 2019-2021."}}}
    views = checklist_views(for_display(make_result(attestations=answers)))
    fairness3 = _item(views, "future-ai", "Fairness 3")
    assert fairness3.state == "partly measured"
    assert [f.title for f in fairness3.findings] == ["Underdiagnosis gap by sex", "FNR undefined"]
    assert ("fnr", "") in fairness3.evidence and fairness3.note.lower().endswith("the rest needs a written answer")
    imaging = _item(views, "claim-2024", "13")
    assert imaging.state == "not applicable" and imaging.evidence == () and "no imaging data" in imaging.note
    item7 = _item(views, "claim-2024", "7")  # partly measured (provenance) + answered = attested, both shown
    assert item7.state == "attested" and item7.answer.startswith("Hospital A")
    assert item7.evidence == (("provenance", "provenance"),)
    assert item7.note == "Partly measured by the audit; the written answer completes it"
    claim = next(v for v in views if v.id == "claim-2024")
    assert claim.counts["not applicable"] == 2 and claim.counts["attested_partly"] == 1
    assert claim.line.startswith("CLAIM 2024: 2 of 44 items measured, 1 attested, ")
