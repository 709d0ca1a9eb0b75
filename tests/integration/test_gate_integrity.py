"""A CI gate that cannot be fooled: model code that exits, gates with nothing to judge.

Each test reproduces a way a run used to end with exit 0 (or 2) although nothing was judged
or nothing was written.
"""

from __future__ import annotations

import json
import textwrap
import uuid
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from audit.cli import app, main

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _args(data, out, *extra):
    return ["run", "--data", data, "--label", "y", "--id", "patient_id", "--sensitive", "sex",
            "--sensitive", "race", "--threshold", "0.5", "--seed", "3", "--out", out, "--quiet",
            *extra]


def _model_module(tmp_path, monkeypatch, body: str) -> str:
    """Write a model module with ``body`` and return its ``module:predict`` spec."""
    name = f"hostile_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}:predict"


PREDICT = """
def predict(frame):
    return (frame["age"] / 100.0).clip(0, 1).to_numpy()
"""


@pytest.mark.parametrize("body, says", [
    # sys.exit(main()) at import: used to end the run with exit 0, no message and no files.
    ("import sys\nsys.exit(0)\n" + PREDICT, "SystemExit(0)"),
    # argparse at import: used to exit 2 ("interrupted").
    ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--weights', required=True)\n"
     "p.parse_args(['--nope'])\n" + PREDICT, "SystemExit(2)"),
    # sys.exit inside the model call.
    ("import sys\ndef predict(frame):\n    sys.exit(0)\n", "SystemExit(0)"),
])
def test_model_code_that_exits_is_a_model_error(tmp_path, data, monkeypatch, body, says):
    spec = _model_module(tmp_path, monkeypatch, body)
    out = tmp_path / "out"
    res = invoke(*_args(data, out, "--model", spec, "--feature", "age",
                        "--gate", "fairness.fnr_gap<=0.0"))
    assert res.exit_code == 4, res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("error:") and spec.split(":")[0] in line and says in line
    assert "Traceback" not in res.output
    assert not out.exists()


def test_a_plugin_that_exits_becomes_an_error_result(tmp_path, data, monkeypatch):
    from audit.plugins.fairness import FairnessPlugin

    def leave(self, ctx):
        raise SystemExit(0)

    monkeypatch.setattr(FairnessPlugin, "run", leave)
    out = tmp_path / "o"
    res = invoke(*_args(data, out, "--score", "p", "--format", "json"))
    assert res.exit_code == 1, res.output
    result = json.loads((out / "results.json").read_text())
    assert next(p for p in result["plugins"] if p["plugin"] == "fairness")["status"] == "ERROR"
    assert "SystemExit(0)" in next(p for p in result["plugins"] if p["plugin"] == "fairness")["error"]


def test_an_odd_base_exception_is_an_internal_error_not_a_pass(tmp_path, data, monkeypatch, capsys):
    from audit.plugins.fairness import FairnessPlugin

    class Odd(BaseException):
        pass

    def odd(self, ctx):
        raise Odd("from a plugin")

    monkeypatch.setattr(FairnessPlugin, "run", odd)
    code = main([str(a) for a in _args(data, tmp_path / "o", "--score", "p")])
    assert code == 3
    assert "internal error" in capsys.readouterr().err


@pytest.fixture
def negative_data(tmp_path, toy_frame):
    """No positive label: FNR (and so every FNR gap) is undefined for every group."""
    frame = toy_frame.assign(y=0)
    path = tmp_path / "negative.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_gate_with_no_values_exits_1_and_fails_in_junit(tmp_path, negative_data):
    out = tmp_path / "o"
    res = invoke(*_args(negative_data, out, "--score", "p", "--gate", "fairness.fnr_gap<=0.05"))
    assert res.exit_code == 1, res.output
    result = json.loads((out / "results.json").read_text())
    gate = result["gates"][0]
    assert gate["status"] == "INCONCLUSIVE" and gate["empty"] is True
    assert "never passes" in gate["message"]
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1"
    assert suite.find("testcase").find("failure") is not None


def test_allow_empty_gates_accepts_it(tmp_path, negative_data):
    out = tmp_path / "o"
    res = invoke(*_args(negative_data, out, "--score", "p", "--gate", "fairness.fnr_gap<=0.05",
                        "--allow-empty-gates"))
    assert res.exit_code == 0, res.output
    result = json.loads((out / "results.json").read_text())
    assert result["gates"][0]["empty"] is True
    assert result["config"]["allow_empty_gates"] is True
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0"


def test_a_gate_whose_values_are_all_suppressed_is_empty(tmp_path, data):
    # min_cell above every group's size: each value is suppressed, so nothing can be judged.
    out = tmp_path / "o"
    res = invoke(*_args(data, out, "--score", "p", "--gate", "fairness.fnr<=0.99",
                        "--min-cell", "5000", "--format", "json"))
    assert res.exit_code == 1, res.output
    gate = json.loads((out / "results.json").read_text())["gates"][0]
    assert gate["empty"] is True and gate["status"] == "INCONCLUSIVE"
    assert gate["checks"] and all(c["suppressed"] for c in gate["checks"])


def test_a_judged_gate_is_not_empty(tmp_path, data):
    out = tmp_path / "o"
    res = invoke(*_args(data, out, "--score", "p", "--gate", "fairness.fnr_gap<=0.9",
                        "--format", "json"))
    assert res.exit_code == 0, res.output
    assert json.loads((out / "results.json").read_text())["gates"][0]["empty"] is False


@pytest.mark.parametrize("value", ["0", "1000001"])
def test_bootstrap_is_bounded(tmp_path, data, value):
    res = invoke(*_args(data, tmp_path / "o", "--score", "p", "--bootstrap", value))
    assert res.exit_code == 4, res.output
    assert "fairness.bootstrap" in res.output and "100,000" in res.output
    assert not (tmp_path / "o").exists()
