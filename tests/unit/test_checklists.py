"""Checklist data files, references, item states and the terminal table."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from audit import checklists as cl
from audit.attestations import Attestation
from audit.checklists import (
    CHECKLIST_IDS,
    CORE_EVIDENCE,
    coverage,
    coverage_line,
    format_checklist_table,
    item_states,
    load_checklist,
    parse_ref,
    ref,
    validate_references,
)
from audit.core.results import AuditResult, Finding, Metric, PluginResult, Status
from audit.errors import ChecklistError, ConfigError
from audit.plugins.base import PRINCIPLES, discover_plugins
from audit.plugins.fairness import FairnessPlugin

REPO_CHECKLISTS = Path(__file__).resolve().parents[2] / "checklists"


# ------------------------------------------------------------------------ the data files
@pytest.mark.parametrize(("cid", "name", "unit", "count"), [
    ("claim-2024", "CLAIM 2024", "item", 44),
    ("tripod-ai", "TRIPOD+AI", "sub-item", 52),
    ("future-ai", "FUTURE-AI", "recommendation", 30),
])
def test_every_item_is_present(cid, name, unit, count):
    c = load_checklist(cid)
    assert (c.id, c.name, c.unit, len(c.items)) == (cid, name, unit, count)
    assert "doi:10." in c.source
    assert len(set(c.ids)) == count


def test_claim_is_numbered_1_to_44():
    assert load_checklist("claim-2024").ids == tuple(str(i) for i in range(1, 45))


def test_tripod_has_27_main_items_in_order_with_official_applicability():
    c = load_checklist("tripod-ai")
    mains = [int(re.match(r"\d+", i).group()) for i in c.ids]
    assert list(dict.fromkeys(mains)) == list(range(1, 28))
    assert Counter(mains)[12] == 7 and Counter(mains)[18] == 6 and Counter(mains)[20] == 3
    assert {i.applies_to for i in c.items} == {"D", "E", "D;E"}
    assert c.item("12g").applies_to == "E" and c.item("15").applies_to == "D"


def test_future_ai_recommendations_per_principle():
    c = load_checklist("future-ai")
    counts = Counter(i.principle for i in c.items)
    expected = {"Fairness": 3, "Universality": 4, "Traceability": 6, "Usability": 5,
                "Robustness": 3, "Explainability": 2, "General": 7}
    assert counts == expected
    assert set(expected) == set(PRINCIPLES)
    for item in c.items:  # "<Principle> <n>", numbered from 1 within the principle
        principle, n = item.id.rsplit(" ", 1)
        assert principle == item.principle and 1 <= int(n) <= expected[principle]
        assert item.section.startswith(principle)
    aliases = [i.alias for i in c.items]
    assert len(set(aliases)) == 30 and c.item("Un3").id == "Universality 3" and c.item("us3").id == "Usability 3"


@pytest.mark.parametrize("cid", CHECKLIST_IDS)
def test_items_are_well_formed(cid):
    for item in load_checklist(cid).items:
        assert item.coverage in ("full", "partial", "none"), item.id
        assert 0 < len(item.topic.split()) <= 15, item.id
        if item.coverage == "none":  # nothing automated can answer it: no evidence, no plans
            assert not item.evidence and not item.planned, item.id
        assert len(set(item.evidence)) == len(item.evidence), item.id


@pytest.mark.parametrize("cid", CHECKLIST_IDS)
def test_evidence_names_only_what_exists(cid):
    produced = {m for plugin in discover_plugins().values() for m in plugin.metrics}
    assert "fnr" in produced  # the entry point really was found
    for item in load_checklist(cid).items:
        unknown = [e for e in item.evidence if e not in CORE_EVIDENCE and e not in produced]
        assert not unknown, f"{cid} {item.id}: {unknown} is neither a core evidence kind nor a plugin metric"


def test_fairness_plugin_references_resolve_and_agree_with_the_checklists():
    pairs = validate_references(FairnessPlugin.checklist)
    assert ("future-ai", "Fairness 3") in pairs and ("tripod-ai", "23a") in pairs
    for cid, item_id in pairs:  # the checklist names fairness evidence where the plugin claims it
        evidence = set(load_checklist(cid).item(item_id).evidence)
        assert evidence & (set(FairnessPlugin.metrics) | {"uncertainty"}), (cid, item_id)


def test_every_plugin_reference_resolves():
    for plugin in discover_plugins().values():
        validate_references(plugin.checklist)


# ------------------------------------------------------------------------ names and references
@pytest.mark.parametrize(("alias", "cid"), [
    ("claim", "claim-2024"), ("CLAIM-2024", "claim-2024"), ("tripod", "tripod-ai"),
    ("tripod+ai", "tripod-ai"), ("TRIPOD+AI", "tripod-ai"), ("futureai", "future-ai"), ("future-ai", "future-ai"),
])
def test_checklist_aliases(alias, cid):
    assert load_checklist(alias).id == cid


def test_unknown_checklist_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"Unknown checklist 'stard'.*claim-2024, tripod-ai, future-ai"):
        load_checklist("stard")


def test_ref_and_parse_ref_round_trip_every_item():
    assert ref("claim-2024", "38") == "CLAIM-2024:38"
    assert ref("tripod", "23a") == "TRIPOD+AI:23a"
    assert ref("future-ai", "Fairness 3") == "FUTURE-AI:Fairness 3"
    for cid in CHECKLIST_IDS:
        for item in load_checklist(cid).items:
            assert parse_ref(ref(cid, item.id)) == (cid, item.id)


def test_validate_references_rejects_unknown_checklists_and_items():
    assert validate_references(["FUTURE-AI:F3", "claim:38"]) == (("future-ai", "Fairness 3"), ("claim-2024", "38"))
    with pytest.raises(ConfigError, match=r"Unknown checklist 'STARD-2015'.*claim-2024, tripod-ai, future-ai"):
        validate_references(["STARD-2015:1"])
    with pytest.raises(ConfigError, match=r"'TRIPOD\+AI:23c'.*Did you mean: .*23a.*52 sub-items"):
        validate_references(["TRIPOD+AI:23c"])
    with pytest.raises(ConfigError, match=r"Did you mean: Fairness 3.*30 recommendations"):
        validate_references(["FUTURE-AI:Fairnes 3"])
    with pytest.raises(ConfigError, match="not of the form CHECKLIST:ITEM"):
        validate_references(["CLAIM-2024 38"])


# ------------------------------------------------------------------------ files and repair
def test_missing_checklist_file_names_it_and_says_how_to_repair(tmp_path, monkeypatch):
    monkeypatch.setattr(cl, "checklists_dir", lambda: tmp_path)
    with pytest.raises(ChecklistError, match=r"claim-2024\.yaml is missing.*pip install --force-reinstall future-audit"):
        load_checklist("claim")


def test_no_checklist_folder_at_all_is_a_broken_install(monkeypatch):
    monkeypatch.setattr(cl, "_package_dir", lambda: None)
    monkeypatch.setattr(cl, "_repo_dir", lambda: None)
    with pytest.raises(ChecklistError, match=r"install is broken.*pip install --force-reinstall future-audit"):
        cl.checklists_dir()


def test_installed_package_folder_comes_first(tmp_path, monkeypatch):
    monkeypatch.setattr(cl, "_package_dir", lambda: tmp_path)
    assert cl.checklists_dir() == tmp_path
    monkeypatch.setattr(cl, "_package_dir", lambda: None)
    assert cl.checklists_dir() == REPO_CHECKLISTS  # the editable-install fallback


def _broken_copy(tmp_path, monkeypatch, edit):
    for f in REPO_CHECKLISTS.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / "tripod-ai.yaml"
    path.write_text(edit(path.read_text()))
    monkeypatch.setattr(cl, "checklists_dir", lambda: tmp_path)


def test_wrong_count_is_invalid(tmp_path, monkeypatch):
    _broken_copy(tmp_path, monkeypatch, lambda t: t.replace("expected_count: 52", "expected_count: 53"))
    with pytest.raises(ChecklistError, match=r"tripod-ai\.yaml: has 52 sub-items, expected 53"):
        load_checklist("tripod-ai")


def test_duplicate_id_is_invalid(tmp_path, monkeypatch):
    _broken_copy(tmp_path, monkeypatch, lambda t: t.replace('id: "12b"', 'id: "12a"'))
    with pytest.raises(ChecklistError, match=r"duplicate id '12a'"):
        load_checklist("tripod-ai")


def test_yaml_error_is_invalid(tmp_path, monkeypatch):
    _broken_copy(tmp_path, monkeypatch, lambda t: t.replace("items:\n", "items: [\n", 1))
    with pytest.raises(ChecklistError, match=r"tripod-ai\.yaml is not valid YAML at line \d+, column \d+"):
        load_checklist("tripod-ai")


def test_misspelt_item_key_is_invalid(tmp_path, monkeypatch):
    _broken_copy(tmp_path, monkeypatch, lambda t: t.replace("evidence: [provenance]", "evidance: [provenance]", 1))
    with pytest.raises(ChecklistError, match=r"unknown key\(s\) evidance"):
        load_checklist("tripod-ai")


# ------------------------------------------------------------------------ item states
def _fairness(status=Status.PASS, metrics=None, findings=None, name="fairness"):
    metrics = metrics if metrics is not None else [
        Metric("n", 100, n=100, group={"sex": "F"}),
        Metric("fnr", 0.2, n=100, group={"sex": "F"}, ci=(0.1, 0.3)),
        Metric("threshold", 0.5, n=200),
    ]
    findings = findings if findings is not None else [
        Finding("fnr_by_sex", "Missed cases by sex", Status.INCONCLUSIVE, "...", checklist=FairnessPlugin.checklist),
    ]
    return PluginResult(plugin=name, principle="Fairness", version="1", status=status, summary="",
                        metrics=tuple(metrics), findings=tuple(findings))


def _result(*plugins, provenance=None, data_summary=None):
    return AuditResult(plugins=plugins, provenance=provenance or {}, data_summary=data_summary or {})


def _by_id(states):
    return {s.item.id: s for s in states}


def test_measured_by_metrics_with_the_plugins_findings_linked():
    s = _by_id(item_states(load_checklist("future-ai"), _result(_fairness())))
    f3 = s["Fairness 3"]
    assert f3.state == "partly measured"  # coverage is partial: mitigation needs a written answer
    assert f3.metric_ids == ("fnr",) and f3.kinds == ("uncertainty",)
    assert f3.findings == (("fairness", "fnr_by_sex", "INCONCLUSIVE"),)
    assert s["Fairness 2"].state == "partly measured" and s["Fairness 2"].metric_ids == ("n",)
    assert "the rest needs a written answer" in f3.note
    assert "findings reference it" not in f3.note  # its findings come with the evidence
    assert s["General 4"].state == "open"  # no provenance in this result


def test_core_evidence_kinds():
    plain = _fairness(metrics=[Metric("fnr", 0.2)])  # no threshold, no interval
    r = _result(plain, provenance={"model": {"sha256": "ab"}}, data_summary={"rows": 9})
    claim, tripod = _by_id(item_states(load_checklist("claim"), r)), _by_id(item_states(load_checklist("tripod"), r))
    assert claim["12"].state == "partly measured" and claim["12"].kinds == ("dataset_summary",)
    assert claim["12"].findings == ()  # core kinds link no plugin's findings
    assert tripod["12g"].kinds == ("provenance",)  # no model kind recorded: no model_call
    assert claim["29"].state == "open"  # uncertainty: no metric has an interval
    assert tripod["15"].state == "open"  # operating point: no threshold metric
    r = _result(_fairness())
    claim, tripod = _by_id(item_states(load_checklist("claim"), r)), _by_id(item_states(load_checklist("tripod"), r))
    assert claim["29"].state == "measured" and claim["29"].kinds == ("uncertainty",)
    assert tripod["15"].state == "partly measured" and tripod["15"].kinds == ("operating_point",)
    assert claim["12"].state == "open"  # empty data summary


@pytest.mark.parametrize("status", [Status.SKIPPED, Status.ERROR])
def test_skipped_or_failed_plugins_are_no_evidence(status):
    r = _result(_fairness(status=status))
    states = item_states(load_checklist("future-ai"), r)
    assert all(s.state == "open" for s in states)
    assert all(s.findings == () for s in states)
    assert _by_id(states)["Fairness 3"].note.startswith("not measured in this audit")


def test_undefined_values_are_no_evidence():
    r = _result(_fairness(metrics=[Metric("fnr", None, reason="no positives")]))
    assert _by_id(item_states(load_checklist("future-ai"), r))["Fairness 3"].state == "open"


def test_a_finding_reference_links_findings_but_only_evidence_measures():
    other = PluginResult(plugin="robust", principle="Robustness", version="1", status=Status.WARN, summary="",
                         findings=(Finding("noise", "Noise", Status.WARN, "...", checklist=("FUTURE-AI:R3",)),))
    skipped = PluginResult(plugin="ghost", principle="Robustness", version="1", status=Status.SKIPPED, summary="",
                           findings=(Finding("g", "G", Status.PASS, "...", checklist=("FUTURE-AI:Robustness 1",)),))
    fair = _fairness(findings=[Finding("fnr_by_sex", "t", Status.PASS, "...", checklist=("FUTURE-AI:Fairness 3",))])
    s = _by_id(item_states(load_checklist("future-ai"), _result(other, skipped, fair)))
    assert s["Robustness 3"].state == "open"
    assert s["Robustness 3"].findings == (("robust", "noise", "WARN"),)
    assert "findings reference it" in s["Robustness 3"].note
    assert s["Robustness 1"].findings == ()  # a skipped plugin's findings are not linked
    assert s["Fairness 3"].state == "partly measured"
    assert s["Fairness 3"].findings == (("fairness", "fnr_by_sex", "PASS"),)  # linked once


def test_attested_open_and_measured_with_attestation():
    answers = {"General 1": Attestation("We ran two stakeholder workshops."),
               "G4": Attestation("Plan registered before unblinding.")}
    r = _result(_fairness(), provenance={"git": {"commit": "abc"}})
    s = _by_id(item_states(load_checklist("future-ai"), r, {"future-ai": answers}))
    assert s["General 1"].state == "attested" and s["General 1"].attestation.answer.startswith("We ran")
    # partly measured (provenance) and answered: attested, keeping the evidence
    assert s["General 4"].state == "attested" and s["General 4"].attestation is not None
    assert s["General 4"].kinds == ("provenance",)
    assert s["Usability 1"].state == "open" and s["Usability 1"].note == "needs a written answer (attestation)"
    assert s["Universality 3"].state == "open"
    assert s["Universality 3"].note == "not measured in this audit (evidence would be: auroc_pooled, auroc_i2, sensitivity_transfer_loss)"
    # a plain item-id mapping works too; attestations for other checklists are ignored
    assert _by_id(item_states(load_checklist("future-ai"), None, answers))["General 1"].state == "attested"
    assert _by_id(item_states(load_checklist("claim"), None, {"future-ai": answers}))["1"].state == "open"


def test_attestation_for_an_unknown_item_is_an_error():
    with pytest.raises(ConfigError, match="no item '45'"):
        item_states(load_checklist("claim"), None, {"45": Attestation("x")})


def test_coverage_counts_and_line():
    c = load_checklist("tripod-ai")
    states = item_states(c, _result(_fairness()), {"tripod-ai": {"17": Attestation("Approved by REC 21/LO/1234.")}})
    counts = coverage(states)
    partly = sorted(s.item.id for s in states if s.state == "partly measured")
    # fnr: 12e, 14, 23a; uncertainty: 12e, 23a; threshold: 15; n: 10, 20a, 20b, 21; none in full
    assert partly == ["10", "12e", "14", "15", "20a", "20b", "21", "23a"]
    assert counts == {"total": 52, "measured": 0, "attested": 1, "partly measured": 8, "not applicable": 0,
                      "open": 43, "attested_partly": 0}
    assert coverage_line(c, states) == (
        "TRIPOD+AI: 0 of 52 sub-items measured, 1 attested, 8 partly measured, 0 not applicable, 43 open")
    assert coverage_line(load_checklist("claim"), item_states(load_checklist("claim"), None)) == (
        "CLAIM 2024: 0 of 44 items measured, 0 attested, 0 partly measured, 0 not applicable, 44 open")


def test_fairness_only_audit_coverage(tmp_path, toy_frame):
    from audit.core.config import build_config
    from audit.core.runner import run_audit

    path = tmp_path / "d.csv"
    toy_frame.to_csv(path, index=False)
    raw = {"data": {"path": str(path), "label": "y", "score": "p", "sensitive": ["sex", "race"]},
           "fairness": {"bootstrap": 200, "seed": 1}}
    result = run_audit(build_config(raw, base_dir=tmp_path, plugin_names=("fairness",), flags={}),
                       available={"fairness": FairnessPlugin})
    states = {cid: item_states(load_checklist(cid), result) for cid in CHECKLIST_IDS}
    by_state = {cid: {state: {s.item.id for s in st if s.state == state} for state in cl.STATES}
                for cid, st in states.items()}
    assert {cid: s["measured"] for cid, s in by_state.items()} == {
        "claim-2024": {"29", "38"}, "tripod-ai": set(), "future-ai": set(),
    }
    assert {cid: s["partly measured"] for cid, s in by_state.items()} == {
        "claim-2024": {"7", "12", "21", "28", "35", "36", "37", "39"},
        # 12g: scores read from the data file, so how they were made needs a written answer
        "tripod-ai": {"5a", "10", "11", "12e", "12g", "14", "15", "20a", "20b", "21", "23a"},
        "future-ai": {"Fairness 2", "Fairness 3", "Traceability 2", "Traceability 4", "General 4"},
    }
    assert {cid: s["not applicable"] for cid, s in by_state.items()} == {
        "claim-2024": {"10", "13"}, "tripod-ai": set(), "future-ai": set(),
    }


# ------------------------------------------------------------------------ terminal table
def test_table_without_results_says_what_could_measure_each_item():
    from rich.console import Console

    c = load_checklist("tripod")
    table = format_checklist_table(c, item_states(c, None, {"17": Attestation("REC approval 21/LO/1234")}))
    assert [col.header for col in table.columns] == ["id", "section", "topic", "state", "evidence / answer"]
    assert table.row_count == 52
    console = Console(record=True, width=200)
    console.print(table)
    text = console.export_text()
    assert "TRIPOD+AI: 0 of 52 sub-items measured, 1 attested, 0 partly measured, 0 not applicable, 51 open" in text
    assert "answer: REC approval 21/LO/1234" in text
    assert "measurable by: operating_point" in text  # item 15
    assert "measurable by: auroc_drop, flip_rate" in text  # item 27a (robustness plugin)


def test_table_with_results_shows_evidence_and_findings():
    from rich.console import Console

    c = load_checklist("future-ai")
    console = Console(record=True, width=220)
    console.print(format_checklist_table(c, item_states(c, _result(_fairness()))))
    text = console.export_text()
    assert "fairness.fnr_by_sex INCONCLUSIVE" in text
    assert "fnr, uncertainty" in text


# ------------------------------------------------------------------------ measured means the whole item
def _audited(model_kind="sklearn", metrics=None):
    prov = {"model": {"kind": model_kind, "sha256": "ab" * 32},
            "data": {"file": "test.csv", "sha256": "cd" * 32}}
    return _result(_fairness(metrics=metrics), provenance=prov, data_summary={"rows": 200})


def test_an_item_is_measured_only_when_the_evidence_answers_all_of_it():
    claim, tripod = load_checklist("claim"), load_checklist("tripod")
    s = _by_id(item_states(claim, _audited()))
    # A file hash is not where the data came from: part of CLAIM 7 at most.
    assert s["7"].state == "partly measured" and s["7"].kinds == ("provenance",)
    assert "the rest needs a written answer" in s["7"].note
    assert s["38"].state == "measured" and s["38"].note == ""  # estimates with intervals
    no_ci = _by_id(item_states(claim, _audited(metrics=[Metric("fnr", 0.2, n=100), Metric("threshold", 0.5)])))
    assert no_ci["38"].state == "partly measured"  # estimates without their precision
    assert "no metric has a confidence interval" in no_ci["38"].note
    assert _by_id(item_states(tripod, _audited()))["12g"].state == "measured"  # the audit called the model
    read = _by_id(item_states(tripod, _audited(model_kind="predictions")))["12g"]
    assert read.state == "partly measured" and read.kinds == ("provenance",)
    assert "predictions file" in read.note


def test_partly_measured_with_a_written_answer_is_attested_and_keeps_its_evidence():
    answers = {"claim-2024": {"7": Attestation("Hospital A PACS export, 2019-2021.")}}
    states = item_states(load_checklist("claim"), _audited(), answers)
    item7 = _by_id(states)["7"]
    assert item7.state == "attested" and item7.kinds == ("provenance",)
    assert item7.attestation.answer.startswith("Hospital A")
    assert "the audit measured part of it" in item7.note
    assert coverage(states)["attested_partly"] == 1
    # a fully measured item stays measured and keeps its answer
    answers = {"claim-2024": {"38": Attestation("See table 2.")}}
    item38 = _by_id(item_states(load_checklist("claim"), _audited(), answers))["38"]
    assert item38.state == "measured" and item38.note == "also answered in writing"
    assert not item38.wants_answer and item7.wants_answer is False


def test_imaging_items_are_not_applicable_to_a_tabular_audit():
    claim = load_checklist("claim")
    assert {i.id for i in claim.items if i.modality == "imaging"} == {"10", "13"}
    s = _by_id(item_states(claim, _audited()))
    for item_id in ("10", "13"):
        assert s[item_id].state == "not applicable", item_id
        assert "no imaging data" in s[item_id].note and "tabular" in s[item_id].note
        assert not s[item_id].wants_answer
    assert s["9"].state == "open"  # pre-processing applies to every model
    line = coverage_line(claim, s.values())
    assert ", 2 not applicable, " in line
    # without a result nothing is known about the data: open, with a hint
    blank = _by_id(item_states(claim, None))["13"]
    assert blank.state == "open" and "applies to imaging models only" in blank.note
    # an audit that read images (a future dataset kind) leaves them to be answered
    images = AuditResult(plugins=(_fairness(),), config={"data": {"kind": "image"}})
    assert _by_id(item_states(claim, images))["13"].state == "open"
    # the team's answer wins: they say the item applies
    answers = {"13": Attestation("CT, 1 mm slices, Siemens scanners.")}
    assert _by_id(item_states(claim, _audited(), answers))["13"].state == "attested"


def test_requires_and_modality_are_validated(tmp_path, monkeypatch):
    _broken_copy(tmp_path, monkeypatch, lambda t: t.replace("requires: [model_call]", "requires: [uncertainty]"))
    with pytest.raises(ChecklistError, match=r"'12g': requires uncertainty, which its 'evidence' does not list"):
        load_checklist("tripod-ai")
    _broken_copy(tmp_path, monkeypatch,
                 lambda t: t.replace("requires: [model_call]", "requires: [model_call]\n    modality: audio"))
    with pytest.raises(ChecklistError, match=r"modality 'audio' is not one of imaging"):
        load_checklist("tripod-ai")


def test_table_shows_every_state_with_its_reason():
    from rich.console import Console

    claim = load_checklist("claim")
    answers = {"7": Attestation("Hospital A PACS export.")}
    console = Console(record=True, width=250)
    console.print(format_checklist_table(claim, item_states(claim, _audited(), answers)))
    text = console.export_text()
    for state in ("measured", "partly measured", "attested", "not applicable", "open"):
        assert f" {state} " in text, state
    assert "this audit read no imaging data" in text
    assert "answer: Hospital A PACS export." in text and "provenance" in text  # attested 7 keeps its evidence
    assert "1 attested, 7 partly measured, 2 not applicable" in text
