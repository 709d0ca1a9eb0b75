"""model_card.md: intended use, data, metrics with intervals, limitations, provenance."""

from __future__ import annotations

import re

import pytest

from audit.core.results import Metric
from audit.report import FORMATS, render_model_card, write_reports

from .factories import SHA_MODEL, make_fairness, make_result

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
    assert "Prevalence of y: suppressed (fewer than 10 with the condition)" in data and "1.4%" not in data
    summary = {"data": {"rows": 500, "positives": {"y": 495}}}
    data = _section(render_model_card(make_result(data_summary=summary)), "Data")
    assert "Prevalence of y: suppressed (fewer than 10 without the condition)" in data
    summary = {"data": {"rows": 500, "positives": {"y": 70}}}
    assert "Prevalence of y: 14.0% (70 of 500)" in render_model_card(make_result(data_summary=summary))


def test_metrics_with_intervals_and_suppression(card):
    metrics = _section(card, "Metrics")
    assert "| FNR | 20.0% (14.0%–28.0%) |" in metrics
    assert "| AUROC | 0.861 (0.811–0.901) |" in metrics
    assert "| sex=F | 180 | 25.0% (15.8%–37.1%) | 0.842 (0.792–0.882) | — |" in metrics
    hidden = "suppressed (rests on, or would reveal, a count below 10)"
    assert f"| sex=X | {hidden} | {hidden} | {hidden} | — |" in metrics
    for hidden in ("12.3%", "0.123", "65.4%", "0.654", "0.027", "| 7 |"):
        assert hidden not in card


def test_fairness_findings_and_limitations(card):
    findings = _section(card, "Fairness findings")
    assert "- **FAIL** Underdiagnosis gap by sex: The model misses 11 more patients per 100" in findings
    limits = _section(card, "Limitations")
    assert ("- Under-powered groups (fewer than 30 patients or 10 with the condition), whose numbers are "
            "unreliable: sex M.") in limits
    assert ("- 6 of 30 cells of the fairness tables by group are hidden because they rest on, or would reveal, a count below 10; "
            "every group was assessed") in limits
    assert "- Not assessed by this audit: Universality, Traceability, Usability, Robustness, Explainability." in limits
    assert re.search(r"- Checklist coverage: CLAIM 2024: \d+ of 44 items measured, \d+ attested, "
                     r"\d+ partly measured, \d+ not applicable, \d+ open\.", limits)
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


# ------------------------------------------------------------------------ hidden cells, small counts, the seed
def _card_with_groups() -> str:
    """Group W: 434 patients, fewer than 10 of them with the condition; group X: 7 patients."""
    group_w, group_x = {"sex": "W"}, {"sex": "X"}
    metrics = [
        Metric("n", 600, n=600), Metric("positives", 60, n=600), Metric("fnr", 0.2, n=600, ci=(0.1, 0.3)),
        Metric("n", 159, n=159, group={"sex": "V"}), Metric("positives", 51, n=159, group={"sex": "V"}),
        Metric("fnr", 0.25, n=159, group={"sex": "V"}, ci=(0.14, 0.39)),
        Metric("n", 434, n=434, group=group_w), Metric("positives", None, group=group_w, suppressed=True),
        Metric("fnr", None, group=group_w, suppressed=True),
        Metric("n", None, group=group_x, suppressed=True), Metric("positives", None, group=group_x, suppressed=True),
        Metric("fnr", None, group=group_x, suppressed=True),
    ]
    return render_model_card(make_result(plugins=(make_fairness(metrics=metrics),)))


def test_a_suppressed_cell_says_why_without_naming_the_count():
    metrics = _section(_card_with_groups(), "Metrics")
    assert "| sex=W | 434 | suppressed (rests on, or would reveal, a count below 10) | — |" in metrics
    assert "| sex=X | suppressed (rests on, or would reveal, a count below 10) | suppressed (rests on, or would reveal, a count below 10) | — |" in metrics
    assert "(&lt; 10)" not in metrics


def test_limitations_count_hidden_cells_and_say_every_group_was_assessed():
    limits = _section(_card_with_groups(), "Limitations")
    assert ("- 5 of 9 cells of the fairness tables by group are hidden because they rest on, or would reveal, a count below 10; "
            "every group was assessed") in limits
    assert "not assessed, which" not in limits and "too small to report" not in limits


def test_the_seed_appears_once_in_the_provenance():
    plugin = make_fairness(settings={"random_state": 20201})
    card = render_model_card(make_result(plugins=(plugin,), provenance={**make_result().provenance, "seed": None}))
    assert "- Random seed: 20201 (set by fairness)" in _section(card, "Provenance")
    assert card.lower().count("seed") == 1 and "seed —" not in card.lower()
    card = render_model_card(make_result(plugins=(plugin,)))  # the run's seed 20240501, the plugin's own
    assert "- Random seed: 20240501 (fairness used its own: 20201)" in card
    assert card.lower().count("random seed") == 1
    nothing = render_model_card(make_result(plugins=(make_fairness(settings={"seed": None}),),
                                            provenance={**make_result().provenance, "seed": "—"}))
    assert "seed" not in nothing.lower()
