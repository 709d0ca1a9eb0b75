"""The renderers on a result the fairness plugin really produced (small toy data)."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from audit.core.config import build_config
from audit.core.results import AuditResult
from audit.core.runner import run_audit
from audit.report import render_html, render_json, render_junit, render_markdown
from audit.schema import results_schema

from .htmltables import html_tables

MIN_CELL = 60


@pytest.fixture
def real_result(toy_frame, tmp_path) -> AuditResult:
    path = tmp_path / "data.csv"
    toy_frame.to_csv(path, index=False)
    raw = {
        "data": {"path": str(path), "label": "y", "score": "p", "sensitive": ["sex", "race"], "id": "patient_id"},
        "fairness": {"bootstrap": 200, "seed": 1, "intersections": [["sex", "race"]]},
        "report": {"min_cell": MIN_CELL},
        # The fairness plugin only: the other installed plugins have renderers of their own.
        "run": {"plugins": ["fairness"]},
    }
    cfg = build_config(
        raw, base_dir=tmp_path, plugin_names=("fairness",), flags={"gates": ["fairness.fnr_gap<=0.05"]}
    )
    return run_audit(cfg)


def test_real_result_renders_validates_and_suppresses(real_result):
    result = real_result
    jsonschema.validate(json.loads(render_json(result)), results_schema())
    hidden = {
        m.group_label
        for m in result.plugins[0].metrics
        if m.id == "fnr" and m.suppressed and m.group and m.label is None
    }
    assert hidden, "the fixture should have small cells"
    html = render_html(result)
    fnr_tables = [t for t in html_tables(html) if t and "FNR" in t[0] and "Group" in t[0]]
    assert fnr_tables
    col = fnr_tables[-1][0].index("FNR")
    seen = {r[0]: r[col] for t in fnr_tables for r in t[1:]}
    assert {seen[g] for g in hidden} == {f"suppressed (< {MIN_CELL})"}
    for uri in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html):
        labels = set(re.findall(r"<text[^>]*>([^<]*)", base64.b64decode(uri).decode()))
        assert not labels & hidden
    suite = ET.fromstring(render_junit(result)).find("testsuite")
    names = [tc.get("name") for tc in suite.findall("testcase")]
    # One testcase per gate, then one per finding (issue 8).
    assert names[0] == "fairness.fnr_gap<=0.05" and names[1:] and all(n.startswith("fairness.") for n in names[1:])
    again = AuditResult.from_json(render_json(result))
    assert render_html(again) == html
    assert render_markdown(again) == render_markdown(result)
