from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest

from audit.report import render_json
from audit.schema import results_schema

from .factories import make_multilabel, make_result

DOC = Path(__file__).resolve().parents[3] / "docs" / "results-json.md"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = results_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("make", [make_result, make_multilabel])
def test_real_results_validate(validator, make):
    validator.validate(json.loads(render_json(make())))


def _metric(data):
    return data["plugins"][0]["metrics"][1]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: _metric(d).update(id="FNR-gap"), "does not match"),
        (lambda d: _metric(d).update(value="0.2"), "is not of type"),
        (lambda d: _metric(d).update(value=None, reason=None), "is not of type 'string'"),
        (lambda d: _metric(d).update(ci=[0.1, 0.2, 0.3]), "is not valid under any of the given schemas"),
        (lambda d: _metric(d).update(n=2.5), "is not valid under any of the given schemas"),
        (lambda d: _metric(d).update(group={"sex": 1}), "is not valid under any of the given schemas"),
        (lambda d: _metric(d).pop("ci"), "'ci' is a required property"),
        (lambda d: d.update(status="OK"), "is not one of"),
        (lambda d: d.pop("plugins"), "'plugins' is a required property"),
        (lambda d: d["gates"][0].update(status="BAD"), "is not one of"),
    ],
)
def test_broken_results_do_not_validate(validator, breakage, message):
    data = json.loads(render_json(make_result()))
    broken = copy.deepcopy(data)
    breakage(broken)
    errors = [e.message for e in validator.iter_errors(broken)]
    assert errors and any(message in e for e in errors), errors


def test_documented_metric_examples_validate(validator):
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 3
    metric = jsonschema.Draft202012Validator({"$ref": "#/$defs/metric", "$defs": results_schema()["$defs"]})
    for block in blocks:
        metric.validate(json.loads(block))
