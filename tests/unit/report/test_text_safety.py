"""Hostile names of the data in every report (issue 7): bidi controls, control characters,
10 KB group names, and the PDF layout's time limit."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from audit.core.results import Finding, GateCheck, GateResult, Metric, Status
from audit.errors import ConfigError, InputError
from audit.report import pdf, render_html, render_json, render_junit, render_markdown, render_model_card, render_pdf
from audit.report.suppression import for_display
from audit.report.text import (
    DISPLAY_LIMIT,
    Names,
    clean,
    display_label,
    needs_isolation,
    user_html,
)
from audit.report.verdict import verdict_rows

from .factories import group_metrics, make_fairness, make_result

RLO = "\u202e"
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Every C0 control, DEL and NEL; the documents' own line breaks are checked apart.
CONTROLS = "".join(map(chr, range(0x20))) + "\x7f\x85"
CONTROLS_NOT_LF = CONTROLS.replace("\n", "")
LONG = "StElisabethWard" * 700  # 10,500 characters, no break opportunity


def named(name: str):
    """A fairness result with a group race=<name>, named the way the fairness plugin names it:
    in the group tables, a gap's best group, the finding message, a warning and a gate check."""
    metrics = [
        *group_metrics(None, 400, 120, 0.20, (0.14, 0.28), 0.861),
        *group_metrics({"race": "A"}, 200, 60, 0.15, (0.08, 0.24), 0.88),
        *group_metrics({"race": name}, 200, 60, 0.25, (0.158, 0.371), 0.842),
        Metric("fnr_gap", 0.10, n=200, group={"race": name}, ci=(0.01, 0.2), reference="best",
               reference_group={"race": "A"}, p_value=0.03, p_adjusted=0.03),
        Metric("fnr_gap", 0.0, n=200, group={"race": "A"}, ci=(-0.05, 0.05), reference="best",
               reference_group={"race": name}, p_value=0.9, p_adjusted=0.9),
    ]
    message = (f"Among patients who had the condition, the model missed race=A: 15.0% (95% CI 8.0%–24.0%); "
               f"race={name}: 25.0% (95% CI 15.8%–37.1%). Gap: 10.0 percentage points for race={name}.")
    plugin = make_fairness(
        metrics=metrics,
        findings=(Finding("fnr_by_race", "Missed cases (FNR) by race", Status.WARN, message, metric="fnr_gap"),),
        warnings=(f"Group 'race={name}' has few positives.",),
        settings={"groupings": [["race"]], "sensitive_features": ["race"]},
    )
    gate = GateResult(
        expression="fairness.fnr_gap<=0.05", metric="fairness.fnr_gap", operator="<=", threshold=0.05,
        policy="all", status=Status.FAIL, message=f"fnr_gap is above 0.05 for race={name}.",
        checks=(GateCheck({"race": name}, 0.10, (0.01, 0.2), Status.FAIL, reference="best"),),
    )
    return make_result(plugins=(plugin,), gates=(gate,))


def _svgs(html: str) -> list[str]:
    return [base64.b64decode(u).decode() for u in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)]


def _verdict(html: str) -> str:
    return html.split('<section id="verdict">')[1].split("</section>")[0]


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def _plain_outputs(result) -> dict[str, str]:
    return {"md": render_markdown(result), "model_card": render_model_card(result), "junit": render_junit(result)}


# ---------------------------------------------------------------- bidi controls


def test_a_right_to_left_override_is_isolated_in_html_and_removed_everywhere():
    result = named(RLO + "evil")
    html = render_html(result)
    assert not set(BIDI) & set(html)
    for svg in _svgs(html):
        assert not set(BIDI) & set(svg)
    rows = re.findall(r'<th scope="row">(.*?)</th>', html)
    assert "<bdi>race=evil</bdi>" in rows  # the group table
    assert "<bdi>race evil</bdi>" in _verdict(html)  # the verdict sentence (display names)
    assert "race=<bdi>evil</bdi>: 25.0%" in html  # the finding message
    assert "has few positives" in html and "&#39;race=<bdi>evil</bdi>&#39;" in html  # a warning
    for name, text in _plain_outputs(result).items():
        assert not set(BIDI) & set(text), name
        assert "race=evil" in text, name
    assert RLO + "evil" in render_json(result)  # results.json keeps the value as it was


def test_verdict_numbers_stay_in_logical_order_after_the_name():
    expected = (
        "The model misses 25.0% (95% CI 15.8%–37.1%) of race evil with the condition against 15.0% "
        "(8.0%–24.0%) of race A. Gap to the best group: 10.0 percentage points worse (CI 1.0 to 20.0)."
    )
    hostile, plain = named(RLO + "evil"), named("evil")
    assert verdict_rows(for_display(hostile))[0].sentence == expected
    assert verdict_rows(for_display(plain))[0].sentence == expected
    cell = _text(_verdict(render_html(hostile)))
    assert expected in cell and cell == _text(_verdict(render_html(plain)))


def test_a_right_to_left_name_is_isolated_and_a_left_to_right_one_is_not():
    arabic = "عربي"
    html = render_html(named(arabic))
    assert f"<bdi>race {arabic}</bdi>" in _verdict(html)
    assert f"race=<bdi>{arabic}</bdi>: 25.0%" in html  # inside the finding message
    # ordinary names get no markup: the sentences read the same in HTML and in text
    assert "<bdi>race A</bdi>" not in html and "of race A" in _verdict(html)


# ---------------------------------------------------------------- control characters


def test_control_characters_reach_no_output_and_the_svg_stays_xml():
    name = "a\tb\nc\rd" + "".join(map(chr, range(0x0E, 0x20))) + "\x00e\x7ff\x85g\x0bh"
    result = named(name)
    shown = "race=a b c d ef g h"  # controls dropped, line breaks and tabs a space

    def flat(text: str) -> str:
        return " ".join(text.split())

    html = render_html(result)
    assert not set(CONTROLS_NOT_LF) & set(html)
    assert shown in flat(html)
    svgs = _svgs(html)
    assert svgs
    for svg in svgs:
        ET.fromstring(svg.encode("utf-8"))  # well-formed XML
        assert not set(CONTROLS_NOT_LF) & set(svg)
    outputs = _plain_outputs(result)
    for fmt, text in outputs.items():
        assert not set(CONTROLS_NOT_LF) & set(text), fmt
        assert shown in flat(text), fmt
    ET.fromstring(outputs["junit"].encode("utf-8"))
    # a line break in a name does not break a Markdown table row
    rows = [line for line in outputs["md"].splitlines() if line.startswith("| race a b c d")]
    # the gate's table (5 columns) and the key metric's table (4 columns)
    assert [row.count(" | ") for row in rows] == [4, 3] and all(row.endswith("|") for row in rows)


def test_clean_and_display_label():
    assert clean("a\tb\r\nc\x00d\x1b\x7f\x85e" + RLO + "f\u2066g\u2069") == "a b  cd efg"
    assert clean("ok") == "ok" and clean(3) == "3"
    assert clean("a\nb\x00", lines=True) == "a\nb"
    assert clean("\ud800") == "\ufffd"  # a lone surrogate cannot be written as UTF-8 or XML
    assert display_label("x" * 200) == "x" * (DISPLAY_LIMIT - 1) + "…"
    assert len(display_label("x" * 200, 10)) == 10
    assert display_label(RLO + "short") == "short"
    assert not needs_isolation("sex=F") and not needs_isolation("女") and needs_isolation("א")
    assert needs_isolation(RLO + "evil") and needs_isolation("١٢")  # Arabic-Indic digits
    assert str(user_html("<b>" + RLO)) == "<bdi>&lt;b&gt;</bdi>" and str(user_html("<b>")) == "&lt;b&gt;"


# ---------------------------------------------------------------- length


def test_a_ten_kilobyte_name_is_shown_shortened_and_kept_whole_in_json():
    result = named(LONG)
    short = LONG[: DISPLAY_LIMIT - 1] + "…"
    outputs = {"html": render_html(result), **_plain_outputs(result)}
    for fmt, text in outputs.items():
        assert LONG[:DISPLAY_LIMIT] not in text, fmt
        assert f"race={short}" in text, fmt
    assert "race=<bdi>" not in outputs["html"]  # long, but nothing to isolate
    # the verdict names the group as the tables do
    assert f"of race {short} with the condition against" in verdict_rows(for_display(result))[0].sentence
    assert f"of race {short} with the condition against" in _verdict(outputs["html"])
    assert LONG in render_json(result)
    assert json.loads(render_json(result)) == json.loads(result.to_json())


def test_free_text_is_cut_at_its_limit(monkeypatch):
    monkeypatch.setattr("audit.report.text.TEXT_LIMIT", 100)
    names = Names([LONG])
    text = names.text("x" * 300)
    assert text.startswith("x" * 100 + "… (cut at")
    assert names.text(f"the group {LONG} and more") == f"the group {LONG[:DISPLAY_LIMIT - 1]}… and more"


def test_many_groups_with_long_names_cost_what_short_names_cost():
    def report(length: int) -> int:
        metrics = group_metrics(None, 5000, 1000, 0.2, (0.18, 0.22), 0.85)
        for i in range(60):
            name = f"{i:03d}-" + "w" * length
            metrics += group_metrics({"site": name}, 100, 20, 0.1 + i / 240, (0.05, 0.3), 0.8)
        return len(render_html(make_result(plugins=(make_fairness(metrics=metrics),), gates=())).encode())

    assert report(2000) < 1.2 * report(60)


# ---------------------------------------------------------------- PDF


@pytest.mark.slow
def test_the_pdf_of_a_ten_kilobyte_name_finishes_quickly():
    pytest.importorskip("weasyprint")
    start = time.perf_counter()
    data = render_pdf(named(LONG))
    assert data.startswith(b"%PDF")
    assert time.perf_counter() - start < 60


def _recording_popen(monkeypatch) -> list[subprocess.Popen]:
    started = []
    real = subprocess.Popen

    class Recording(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    return started


def test_the_pdf_layout_is_stopped_at_its_time_limit(monkeypatch):
    pytest.importorskip("weasyprint")
    started = _recording_popen(monkeypatch)
    monkeypatch.setattr(pdf, "LAYOUT_TIMEOUT_S", 0.01)
    with pytest.raises(InputError, match=r"report\.pdf: layout did not finish within 0\.01 s \(very long group names"):
        render_pdf(make_result())
    assert len(started) == 1
    child = started[0]
    assert child.returncode is not None  # killed and reaped: nothing left running
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)


def test_the_pdf_time_limit_from_the_environment(monkeypatch):
    pytest.importorskip("weasyprint")
    monkeypatch.setenv(pdf.TIMEOUT_ENV, "0.01")
    with pytest.raises(InputError, match=r"within 0\.01 s.*--format html,json"):
        render_pdf(make_result())
    monkeypatch.setenv(pdf.TIMEOUT_ENV, "soon")
    with pytest.raises(ConfigError, match="FUTURE_AUDIT_PDF_TIMEOUT: expected a number of seconds > 0, got 'soon'"):
        render_pdf(make_result())
