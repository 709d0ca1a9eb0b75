"""Display names: labels, columns, values, groups and metrics in words; ordinal order."""

from __future__ import annotations

import pytest

from audit.core.results import AuditResult
from audit.report.names import DisplayNames, metric_words, natural_order
from audit.report.text import DISPLAY_LIMIT, ELLIPSIS

CONFIG = {
    "report": {
        "display_names": {
            "labels": {"covid": "tested positive for covid", "flu": "with influenza"},
            "columns": {"payor_group": "insurance"},
            "values": {"age_band": {"<1": "infants under 1"}, "gender": {"female": "women"}},
        }
    },
    "data": {"bins": [{"column": "age", "name": "age_band", "edges": [0, 1, 5, 150], "labels": ["<1", "1-4", "5+"]}]},
}


def test_defaults_without_configuration():
    names = DisplayNames.from_result(AuditResult(plugins=()))
    assert names.label("covid") == "with covid"
    assert names.patients("covid") == "patients with covid"
    assert names.label(None) == "with the condition"
    assert names.column("age_band") == "age band"
    assert names.value("age_band", "<1") == "<1"
    assert names.group({"gender": "female", "age_band": "<1"}) == "gender female, age band <1"
    assert names.group(None) == "all patients"
    assert names.grouping(("gender", "age_band")) == "gender × age band"


def test_configured_names_are_used():
    names = DisplayNames.from_result(AuditResult(plugins=(), config=CONFIG))
    assert names.label("covid") == "tested positive for covid"
    assert names.label_clause("covid") == "who tested positive for covid"
    assert names.patients("flu") == "patients with influenza"
    assert names.column("payor_group") == "insurance"
    assert names.value("age_band", "<1") == "infants under 1"
    # a configured value name stands alone; an unconfigured one keeps its column
    assert names.group({"gender": "female", "age_band": "<1"}) == "women, infants under 1"
    assert names.group({"gender": "male", "age_band": "1-4"}) == "gender male, age band 1-4"
    assert "=" not in names.group({"payor_group": "medicaid"})


def test_a_missing_or_malformed_display_names_table_gives_the_defaults():
    for report in ({}, {"display_names": None}, {"display_names": "nonsense"}, {"display_names": {"labels": [1]}}):
        names = DisplayNames.from_config({"report": report})
        assert names.label("covid") == "with covid" and names.column("a_b") == "a b"


@pytest.mark.parametrize(
    ("metric_id", "words"),
    [
        ("fnr", "missed cases (FNR)"),
        ("fnr_gap", "gap in missed cases (FNR)"),
        ("fnr_gap_overall", "gap in missed cases (FNR) to all patients"),
        ("fairness.fnr_gap_overall", "gap in missed cases (FNR) to all patients"),
        ("underdiagnosis_rate_gap", "gap in underdiagnosis (cases called 'no finding')"),
        ("auroc", "AUROC (how well scores rank cases)"),
        ("flagged", "share flagged by the model"),
        ("some_new_metric", "some new metric"),
        ("some_new_gap", "gap in some new"),
    ],
)
def test_metric_words(metric_id, words):
    assert metric_words(metric_id) == words
    assert DisplayNames.metric(metric_id) == words


def test_ordinal_bands_in_natural_order():
    assert natural_order(["30-39", "40-49", "50+", "<30"]) == ["<30", "30-39", "40-49", "50+"]
    assert natural_order(["18-39", "40+", "<1", "1-4", "12-17", "5-11"]) == ["<1", "1-4", "5-11", "12-17", "18-39", "40+"]
    assert natural_order(["≥80", "under 20", "20 to 79", "(missing)"]) == ["under 20", "20 to 79", "≥80", "(missing)"]
    # text that is not a band: as text, and the configured order first
    assert natural_order(["male", "female"]) == ["female", "male"]
    assert natural_order(["b", "a", "c"], ["c", "a"]) == ["c", "a", "b"]


def test_groups_sorted_by_the_configured_bins_and_bands_only():
    names = DisplayNames.from_config(CONFIG)
    groups = [{"age_band": "5+"}, {"age_band": "<1"}, None, {"age_band": "1-4"}]
    assert names.sort_groups(groups) == [None, {"age_band": "<1"}, {"age_band": "1-4"}, {"age_band": "5+"}]
    # a column that is not ordinal keeps the plugin's order; bands within it are ordered
    mixed = [{"sex": "M", "band": "50+"}, {"sex": "M", "band": "<30"}, {"sex": "F", "band": "30-49"},
             {"sex": "F", "band": "<30"}]
    assert names.sort_groups(mixed) == [{"sex": "M", "band": "<30"}, {"sex": "M", "band": "50+"},
                                        {"sex": "F", "band": "<30"}, {"sex": "F", "band": "30-49"}]


def test_names_are_shortened_and_keep_bidi_for_the_output_to_handle():
    long = "W" * 500
    names = DisplayNames()
    assert names.value("site", long) == long[: DISPLAY_LIMIT - 1] + ELLIPSIS
    assert names.group({"site": long}).endswith(ELLIPSIS) and len(names.group({"site": long})) < 100
    assert "\u202e" in names.group({"race": "\u202eevil"})  # HTML isolates it, plain text cleans it
