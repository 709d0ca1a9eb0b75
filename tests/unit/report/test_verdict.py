"""The first screen: one verdict row per FUTURE-AI principle, with a plain sentence."""

from __future__ import annotations

import re

import pytest

from audit.core.results import Metric, PluginResult, Status
from audit.report import render_html
from audit.report.suppression import for_display
from audit.report.verdict import NOT_ASSESSED, PRINCIPLES, fairness_sentence, status_reason, verdict_rows

from .factories import EVIL, make_fairness, make_many_groups, make_multilabel, make_result
from .htmltables import table_with_header


def _verdict(html: str) -> str:
    return html.split('<section id="verdict">')[1].split("</section>")[0]


def test_one_row_per_principle_in_order():
    rows = verdict_rows(for_display(make_result()))
    assert [r.principle for r in rows] == list(PRINCIPLES)
    status = {r.principle: r.status for r in rows}
    assert status["Fairness"] == "FAIL"
    assert {status[p] for p in PRINCIPLES[1:]} == {NOT_ASSESSED}


def test_fairness_sentence_has_groups_with_intervals_and_leaves_suppressed_out():
    sentence = fairness_sentence(for_display(make_result()).plugins[0])
    assert sentence == (
        "Among patients with the condition, the model misses 25.0% (95% CI 15.8%–37.1%) of sex F, "
        f"14.0% (7.0%–26.0%) of sex M and 30.0% (10.8%–60.3%) of sex {EVIL}. "
        "Largest gap to the best group: sex F, 11.0 percentage points worse (CI 2.0 to 20.0). "
        "1 small group not shown (suppressed)."
    )


def test_verdict_section_never_shows_a_suppressed_value_and_escapes_names():
    verdict = _verdict(render_html(make_result()))
    assert "12.3%" not in verdict and "0.123" not in verdict and "sex X" not in verdict and "sex=X" not in verdict
    assert "&lt;script&gt;" in verdict and "<script" not in verdict
    table = table_with_header(verdict, "FUTURE-AI principle", "Result", "What the audit found")
    assert [r[0] for r in table[1:]] == list(PRINCIPLES)
    assert table[1][1].endswith("FAIL")
    assert table[1][2].startswith("Among patients with the condition, the model misses 25.0%")


def test_principles_without_a_plugin_say_why():
    rows = {r.principle: r for r in verdict_rows(for_display(make_result()))}
    assert rows["Universality"].sentence == "Not assessed: no universality plugin is installed in this version."
    assert "provenance" in rows["Traceability"].sentence and "recorded" in rows["Traceability"].sentence
    assert "user studies" in rows["Usability"].sentence and "attestations" in rows["Usability"].sentence
    assert rows["Usability"].symbol == "–" and rows["Usability"].anchor == ""


def test_the_fairness_plugin_installed_but_not_run():
    other = PluginResult("robust", "Robustness", "0.1", Status.PASS, "Stable under noise.")
    rows = {r.principle: r for r in verdict_rows(make_result(plugins=(other,), gates=()))}
    assert rows["Fairness"].sentence == "Not assessed: the fairness plugin was not run in this audit."
    assert rows["Robustness"].status == "PASS" and rows["Robustness"].sentence == "Stable under noise."
    assert rows["Robustness"].anchor == "plugin-robust"


def test_skipped_and_failed_plugins_give_their_reason():
    skipped = PluginResult("universality", "Universality", "0.1", Status.SKIPPED,
                           "no site column; universality needs at least 2 sites")
    broken = PluginResult("explain", "Explainability", "0.1", Status.ERROR, "The plugin failed: boom",
                          error="ValueError: boom")
    rows = {r.principle: r for r in verdict_rows(make_result(plugins=(make_fairness(), skipped, broken)))}
    assert rows["Universality"].status == "SKIPPED"
    assert rows["Universality"].sentence == "no site column; universality needs at least 2 sites"
    assert rows["Explainability"].status == "ERROR"
    assert rows["Explainability"].sentence == "The check failed: ValueError: boom"


def test_many_groups_are_given_as_a_range():
    sentence = fairness_sentence(make_many_groups(200).plugins[0])
    assert re.search(r"misses from 10\.0% \(95% CI 5\.0%–20\.0%\) of site hospital-00 to 34\.9% "
                     r"\(29\.9%–44\.9%\) of site hospital-199, across 200 groups\.", sentence)
    assert len(sentence) < 300


def test_multilabel_sentence_uses_the_underdiagnosis_rate():
    sentence = fairness_sentence(make_multilabel().plugins[0])
    assert sentence.startswith("Among cases with at least one finding, the model calls 'no finding' for 26.0%")


def test_a_fairness_plugin_without_its_key_metric_falls_back_to_its_findings():
    plugin = make_fairness(metrics=(Metric("auroc", 0.8, group={"sex": "F"}),))
    row = verdict_rows(make_result(plugins=(plugin,)))[0]
    assert row.sentence == "The model misses 11 more patients per 100 among women than among men."


@pytest.mark.parametrize(
    ("fail_on", "expected"),
    [
        (["FAIL"], "Set by the gates: fairness.fnr_gap<=0.05 fails; 3 other gates did not."),
        (
            ["FAIL", "ERROR"],
            "Set by the gates: fairness.fnr_gap<=0.05, fairness.brier<=0.2 fail; 2 other gates did not.",
        ),
        (["WARN"], "Set by the gates: none of the 4 gate(s) reached WARN."),
    ],
)
def test_status_reason(fail_on, expected):
    assert status_reason(make_result(), fail_on) == expected


def test_the_demo_like_verdict_leads_with_the_worst_decided_finding():
    from .test_first_screen import demo_like

    sentence = verdict_rows(for_display(demo_like()))[0].sentence
    assert sentence.startswith("The model misses 56.0% (95% CI 34.9%–75.6%) of infants under 1")
    assert "gender" not in sentence.split(".")[0]


def test_status_reason_without_gates():
    assert status_reason(make_result(gates=()), ["FAIL"]).startswith("No gates were configured")


def test_verdict_comes_before_everything_else():
    html = render_html(make_result())
    body = html.split("<body")[1]
    assert body.index('id="verdict"') < body.index('id="contents"') < body.index('id="findings"')
    assert ("FAIL: the gate &#39;gap in missed cases (FNR) ≤ 5 points&#39; (fairness.fnr_gap&lt;=0.05) failed "
            "for sex F. 3 other gates did not reach FAIL.") in html


def test_a_principle_other_than_fairness_leads_with_its_worst_decided_finding():
    # The robustness plugin lists "does corruption widen the gap" (INCONCLUSIVE) before "the
    # model fails on missing values" (WARN): the row's status is WARN, so is its sentence.
    from dataclasses import replace

    from audit.core.results import Finding

    robustness = PluginResult(
        plugin="robustness", principle="Robustness", version="1", status=Status.WARN, summary="s",
        findings=(Finding("gap", "Gap", Status.INCONCLUSIVE, "A widening of up to 5.3 points cannot be ruled out."),
                  Finding("failed", "Failed", Status.WARN, "The model cannot take missing values."),
                  Finding("auroc", "AUROC", Status.PASS, "No perturbation lowers AUROC.")))
    result = replace(make_result(), plugins=(*make_result().plugins, robustness))
    row = next(r for r in verdict_rows(for_display(result)) if r.principle == "Robustness")
    assert row.status == "WARN"
    assert "".join(str(p) for p in row.parts).startswith("The model cannot take missing values.")
