"""Attestation files: loading, errors that say where and how to fix, and the template."""

from __future__ import annotations

import re

import pytest
import yaml

from audit.attestations import Attestation, attestation_template, load_attestations
from audit.checklists import CHECKLIST_IDS, item_states, load_checklist
from audit.core.results import AuditResult, Metric, PluginResult, Status
from audit.errors import ChecklistError, ConfigError

GOOD = """\
# future-audit attestations
claim:
  3:
    answer: "Intended use: triage of chest radiographs in the emergency department."
    links: ["https://example.org/protocol.pdf"]
    by: "Jane Doe, PI"
    date: 2026-11-01
tripod-ai:
  "5a": { answer: "Two NHS trusts, 2018-2021." }
  17: "Approved by REC 21/LO/1234; consent waived."
future-ai:
  G1: { answer: "Clinicians, patients and engineers met monthly.", links: "minutes.pdf" }
"""


@pytest.fixture
def write(tmp_path):
    def _write(text, name="attestations.yaml"):
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


def test_loads_ids_given_as_numbers_aliases_and_shorthand(write):
    got = load_attestations(write(GOOD))
    assert set(got) == {"claim-2024", "tripod-ai", "future-ai"}
    assert got["claim-2024"]["3"] == Attestation(
        answer="Intended use: triage of chest radiographs in the emergency department.",
        links=("https://example.org/protocol.pdf",), by="Jane Doe, PI", date="2026-11-01",
    )
    assert got["tripod-ai"]["17"].answer.startswith("Approved by REC")
    assert set(got["tripod-ai"]) == {"5a", "17"}
    assert got["future-ai"]["General 1"].links == ("minutes.pdf",)


def test_empty_file_has_no_answers(write):
    assert load_attestations(write("# nothing yet\n")) == {}


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope" / "attestations.yaml"
    with pytest.raises(ChecklistError, match=re.escape(str(path)) + " not found"):
        load_attestations(path)


def test_bad_yaml_gives_file_line_and_column(write):
    path = write('claim-2024:\n  "3": {answer: "x"\n  "4": {answer: "y"}\n', name="ethics.yaml")
    with pytest.raises(ChecklistError, match=r"ethics\.yaml is not valid YAML at line 3, column 3: expected ','"):
        load_attestations(path)


def test_duplicate_item_is_refused_not_silently_dropped(write):
    path = write('claim-2024:\n  "3": {answer: "first"}\n  "3": {answer: "second"}\n')
    with pytest.raises(ChecklistError, match=r"line 3, column 3: duplicate key '3' \(first at line 2\)"):
        load_attestations(path)
    with pytest.raises(ChecklistError, match="'Fairness 3' is answered twice"):
        load_attestations(write('future-ai:\n  F3: {answer: "a"}\n  "Fairness 3": {answer: "b"}\n'))


def test_unknown_checklist_lists_valid_ones(write):
    with pytest.raises(ConfigError, match=r"unknown checklist 'stard'\. Valid checklists: claim-2024, tripod-ai, future-ai"):
        load_attestations(write('stard:\n  "1": {answer: "x"}\n'))


def test_unknown_item_suggests_close_matches_and_counts(write):
    path = write('tripod-ai:\n  "12h": {answer: "x"}\n')
    with pytest.raises(ConfigError, match=r"attestations\.yaml: TRIPOD\+AI has no sub-item '12h'\. "
                                          r"Did you mean: .*12[a-g].*It has 52 sub-items"):
        load_attestations(path)
    with pytest.raises(ConfigError, match=r"Did you mean: General 1.*30 recommendations"):
        load_attestations(write('future-ai:\n  "Genral 1": {answer: "x"}\n'))


@pytest.mark.parametrize("entry", ['{answer: ""}', '{answer: "   "}', "{by: Jane}", "", '""'])
def test_item_without_an_answer_is_named(write, entry):
    with pytest.raises(ChecklistError, match=r"claim-2024 item '44' has no answer"):
        load_attestations(write(f'claim-2024:\n  "44": {entry}\n'))


def test_answer_that_yaml_reads_as_a_boolean_must_be_quoted(write):
    with pytest.raises(ChecklistError, match="'answer' must be text; put it in quotes"):
        load_attestations(write('claim-2024:\n  "34": {answer: no}\n'))


def test_misspelt_field_is_named(write):
    with pytest.raises(ChecklistError, match=r"unknown field\(s\) anwser; valid: answer, links, by, date"):
        load_attestations(write('claim-2024:\n  "44": {anwser: "NIHR"}\n'))


def test_attestations_make_items_attested(write):
    answers = load_attestations(write(GOOD))
    states = {s.item.id: s for s in item_states(load_checklist("claim"), None, answers)}
    assert states["3"].state == "attested" and states["3"].attestation.by == "Jane Doe, PI"
    assert states["4"].state == "open"


# ------------------------------------------------------------------------ template
def _uncomment(template: str, answer: str) -> str:
    """Uncomment every item and its answer line, as a user would."""
    out = []
    for line in template.splitlines():
        if re.match(r'  # "[^"]+":', line):
            line = "  " + line[4:]
        elif line == '  #   answer: ""':
            line = f'    answer: "{answer}"' if answer else '    answer: ""'
        out.append(line)
    return "\n".join(out)


def test_template_parses_and_loads_as_no_answers(write):
    text = attestation_template()
    assert yaml.safe_load(text) == {cid: None for cid in CHECKLIST_IDS}
    assert load_attestations(write(text)) == {cid: {} for cid in CHECKLIST_IDS}


def test_template_lists_every_item_the_tool_cannot_measure_and_nothing_it_fully_measures():
    text = attestation_template()
    listed = set(re.findall(r'^  # ("[^"]+"):', text, flags=re.M))
    for cid in CHECKLIST_IDS:
        for item in load_checklist(cid).items:
            if not item.evidence:
                assert f'"{item.id}"' in listed, (cid, item.id)
            assert item.topic in text or item.evidence
    assert '"29"' not in listed and '"38"' not in listed  # CLAIM items fully measured by the audit


def test_filled_template_loads_and_unfilled_uncommented_items_are_flagged(write):
    text = attestation_template([load_checklist("claim")])
    filled = load_attestations(write(_uncomment(text, "See protocol section 4.")))
    open_ids = {i.id for i in load_checklist("claim").items if not i.evidence}
    assert open_ids <= set(filled["claim-2024"])
    assert all(a.answer == "See protocol section 4." for a in filled["claim-2024"].values())
    with pytest.raises(ChecklistError, match="has no answer"):
        load_attestations(write(_uncomment(text, "")))


def test_template_from_an_audit_lists_open_and_partly_measured_items_only():
    fairness = PluginResult(plugin="fairness", principle="Fairness", version="1", status=Status.PASS, summary="",
                            metrics=(Metric("fnr", 0.2, ci=(0.1, 0.3)), Metric("threshold", 0.5)))
    result = AuditResult(plugins=(fairness,), provenance={"model": {"sha256": "ab"}})
    answered = {"claim-2024": {"1": Attestation("Deep learning (CNN).")}}
    states = {"claim-2024": item_states(load_checklist("claim"), result, answered)}
    text = attestation_template(states)
    listed = set(re.findall(r'^  # "([^"]+)":', text, flags=re.M))
    assert "1" not in listed  # already answered
    assert "38" not in listed  # fully measured
    assert {"39", "7", "44"} <= listed  # partly measured (39, 7) and open (44)
    assert "tripod-ai:" not in text
