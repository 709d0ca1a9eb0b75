"""model_card.md: intended use, data, metrics with intervals, limitations, provenance."""

from __future__ import annotations

import re

import pytest

from audit.report import FORMATS, render_model_card, write_reports

from .factories import SHA_MODEL, make_result

ATTESTATIONS = {
    "claim-2024": {
        "3": {"answer": "Triage of *chest* X-rays <img src=x>", "links": ["https://example.org/p"],
              "by": "Dr Who", "date": "2026-01-02"},
        "40": {"answer": "Single site; few positives in the youngest group."},
    },
    "tripod-ai": {"5a": {"answer": "Hospital A, 2019-2021, consecutive patients."}},
}


@pytest.fixture(scope="module")
def card() -> str:
    return render_model_card(make_result(attestations=ATTESTATIONS))


def _section(card: str, title: str) -> str:
    return card.split(f"\n## {title}\n")[1].split("\n## ")[0]


def test_sections_in_order(card):
    assert re.findall(r"^## (.+)$", card, flags=re.M) == [
        "Model details", "Intended use", "Data", "Metrics", "Fairness findings", "Limitations", "Provenance",
    ]
    assert card.startswith("# Model card: model.skops\n")
    assert "<" not in card.replace("&lt;", "")  # plain Markdown: no HTML


def test_model_details(card):
    details = _section(card, "Model details")
    assert "- Source: model.skops" in details and "- Kind: sklearn" in details
    assert f"`{SHA_MODEL[:12]}…`" in details


def test_intended_use_from_attestations_escaped_links_inert(card):
    use = _section(card, "Intended use")
    assert "Triage of \\*chest\\* X-rays &lt;img src=x&gt;" in use
    assert "_[CLAIM-2024:3 (Dr Who, 2026-01-02)]_" in use
    assert "Documented at: `https://example.org/p`." in use


def test_intended_use_missing_says_which_item_to_answer():
    use = _section(render_model_card(make_result()), "Intended use")
    assert use.strip().startswith("Not stated: add an attestation for CLAIM-2024:3 (")
    assert "TRIPOD+AI:3b" in use


def test_data(card):
    data = _section(card, "Data")
    assert "- Audited data: test &lt;v2&gt;.csv (SHA-256 `abababababab…`), 433 rows" in data
    assert "Hospital A, 2019-2021, consecutive patients. _[TRIPOD+AI:5a]_" in data
    assert "Dates of data collection: Not stated: add an attestation for TRIPOD+AI:5b" in data


def test_prevalence_of_small_counts_is_suppressed():
    summary = {"data": {"rows": 500, "positives": {"y": 7}}}
    data = _section(render_model_card(make_result(data_summary=summary)), "Data")
    assert "Prevalence of y: suppressed (&lt; 10)" in data and "1.4%" not in data
    summary = {"data": {"rows": 500, "positives": {"y": 70}}}
    assert "Prevalence of y: 14.0% (70 of 500)" in render_model_card(make_result(data_summary=summary))


def test_metrics_with_intervals_and_suppression(card):
    metrics = _section(card, "Metrics")
    assert "| FNR | 20.0% (14.0%–28.0%) |" in metrics
    assert "| AUROC | 0.861 (0.811–0.901) |" in metrics
    assert "| sex=F | 180 | 25.0% (15.8%–37.1%) | 0.842 (0.792–0.882) | — |" in metrics
    assert "| sex=X | suppressed (&lt; 10) | suppressed (&lt; 10) | suppressed (&lt; 10) | — |" in metrics
    for hidden in ("12.3%", "0.123", "65.4%", "0.654", "0.027", "| 7 |"):
        assert hidden not in card


def test_fairness_findings_and_limitations(card):
    findings = _section(card, "Fairness findings")
    assert "- **FAIL** Underdiagnosis gap by sex: The model misses 11 more patients per 100" in findings
    limits = _section(card, "Limitations")
    assert "- Under-powered groups, whose numbers are unreliable: sex=M." in limits
    assert "- 1 group(s) too small to report (a count below 10)" in limits
    assert "- Not assessed by this audit: Universality, Traceability, Usability, Robustness, Explainability." in limits
    assert re.search(r"- Checklist coverage: CLAIM 2024: \d+ of 44 items measured, \d+ attested, \d+ open\.", limits)
    assert "Single site; few positives in the youngest group. _[CLAIM-2024:40]_" in limits
    assert "Warning (audit): Column 'age' has 3 missing values." in limits


def test_provenance(card):
    prov = _section(card, "Provenance")
    assert f"SHA-256 `{SHA_MODEL}`" in prov
    assert "git commit `0123456789abcdef`" in prov
    assert "Random seed: 20240501" in prov


def test_written_by_write_reports(tmp_path):
    assert "model_card" in FORMATS
    written = write_reports(make_result(), tmp_path, ["model_card"])
    assert written["model_card"].name == "model_card.md"
    assert written["model_card"].read_text(encoding="utf-8") == render_model_card(make_result())
