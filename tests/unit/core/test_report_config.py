"""[report.display_names] and report.record_paths: validation, the record, and no absolute
path in results.json unless asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.core.config import build_config
from audit.errors import ConfigError

BASE = {"data": {"path": "d.csv", "label": "y", "score": "p"}}


def build(report, tmp=Path("/tmp"), **extra):
    return build_config({**BASE, "report": report, **extra}, base_dir=tmp, plugin_names=("fairness",))


def test_display_names_are_stored_and_recorded():
    names = {"labels": {"covid": "tested positive for covid"}, "columns": {"age_band": "age group"},
             "values": {"gender": {"female": "women", "male": "men"}}}
    cfg = build({"display_names": names})
    assert cfg.report.display_names == names
    assert cfg.to_dict()["report"]["display_names"] == names
    # Every table is there, empty when not configured, so renderers need no guard.
    empty = {"labels": {}, "columns": {}, "values": {}}
    assert build({}).report.display_names == empty
    assert build({"display_names": {"columns": {"a": "b"}}}).to_dict()["report"]["display_names"] == {
        "labels": {}, "columns": {"a": "b"}, "values": {}}


@pytest.mark.parametrize(("names", "match"), [
    ("women", r"report.display_names: expected a table with optional tables labels, columns and values"),
    ({"colours": {}}, r"Unknown key 'report.display_names.colours'. Valid keys: columns, labels, values"),
    ({"labels": ["covid"]}, r"report.display_names.labels: expected a table"),
    ({"labels": {"covid": 1}}, r"report.display_names.labels.covid: expected a non-empty string, got 1"),
    ({"columns": {"age_band": ""}}, r"report.display_names.columns.age_band: expected a non-empty string"),
    ({"values": {"gender": "women"}}, r"report.display_names.values.gender: expected a table value → name"),
    ({"values": {"gender": {"female": 2}}}, r"report.display_names.values.gender.female: expected a non-empty"),
])
def test_display_names_validation(names, match):
    with pytest.raises(ConfigError, match=match):
        build({"display_names": names})


def test_record_paths_is_a_boolean_and_paths_are_shown_relative_or_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"report.record_paths: expected true or false, got 'yes'"):
        build({"record_paths": "yes"})
    project = tmp_path / "project"
    raw = {"data": {"path": "data/d.csv", "reference": str(tmp_path / "elsewhere" / "ref.csv"),
                    "label": "y", "score": "p"},
           "model": {"path": "models/m.skops"},
           "report": {"out": str(tmp_path / "out"), "attestations": "answers/att.yaml"}}
    cfg = build_config(raw, base_dir=project, plugin_names=("fairness",), source=str(project / "audit.toml"))
    d = cfg.to_dict()
    assert d["data"]["path"] == "data/d.csv"            # inside the config's folder: relative
    assert d["data"]["reference"] == "ref.csv"          # outside: the file name
    assert d["model"]["path"] == "models/m.skops"
    assert d["report"]["out"] == "out" and d["report"]["attestations"] == "answers/att.yaml"
    assert d["source"] == "audit.toml" and d["report"]["record_paths"] is False
    assert str(tmp_path) not in json.dumps(d)
    raw["report"]["record_paths"] = True
    cfg = build_config(raw, base_dir=project, plugin_names=("fairness",), source=str(project / "audit.toml"))
    d = cfg.to_dict()
    assert d["data"]["path"] == str((project / "data/d.csv").resolve())
    assert d["model"]["path"] == str((project / "models/m.skops").resolve())
    assert d["source"] == str(project / "audit.toml")
    # A model given as package.module:function is no path.
    raw["model"]["path"] = "mypkg.models:predict"
    assert build_config(raw, base_dir=project, plugin_names=("fairness",)).to_dict()["model"]["path"] == (
        "mypkg.models:predict")


def _project(tmp_path, toy_frame, extra=""):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    toy_frame.to_csv(project / "data" / "test.csv", index=False)
    (tmp_path / "elsewhere").mkdir()
    toy_frame.sample(400, random_state=0).to_csv(tmp_path / "elsewhere" / "ref.csv", index=False)
    (project / "att.yaml").write_text('claim-2024:\n  "3": {answer: "Demonstration only."}\n')
    cfg = project / "audit.toml"
    cfg.write_text(
        '[data]\npath = "data/test.csv"\n'
        f'reference = "{(tmp_path / "elsewhere" / "ref.csv").as_posix()}"\n'
        'label = "y"\nscore = "p"\nsensitive = ["sex"]\n'
        '[fairness]\noperating_point = "youden"\n'
        f'[report]\nformats = ["json"]\nattestations = "att.yaml"\n{extra}')
    return cfg


def test_results_json_has_no_absolute_path_by_default(tmp_path, toy_frame):
    cfg = _project(tmp_path, toy_frame)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", "--config", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    text = (out / "results.json").read_text()
    assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text
    result = json.loads(text)
    prov, config = result["provenance"], result["config"]
    assert prov["data"]["path"] == "data/test.csv" and prov["data"]["file"] == "test.csv"
    assert prov["reference"]["path"] == "ref.csv"
    assert config["data"]["path"] == "data/test.csv" and config["data"]["reference"] == "ref.csv"
    assert config["source"] == "audit.toml" and config["report"]["attestations"] == "att.yaml"
    assert config["report"]["out"] == "out"


def test_record_paths_keeps_them(tmp_path, toy_frame):
    cfg = _project(tmp_path, toy_frame, extra="record_paths = true\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", "--config", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "results.json").read_text())
    data = (cfg.parent / "data" / "test.csv").resolve()
    assert result["provenance"]["data"]["path"] == str(data)
    assert result["config"]["data"]["path"] == str(data)
    assert result["config"]["report"]["out"] == str(out.resolve())
    assert result["config"]["report"]["record_paths"] is True


def test_model_source_is_a_file_name_unless_record_paths():
    from types import SimpleNamespace

    from audit.core.runner import _display_source

    model = SimpleNamespace(source="/home/someone/project/models/model.skops")
    assert _display_source(model, build({})) == "model.skops"
    assert _display_source(model, build({"record_paths": True})) == model.source
    assert _display_source(SimpleNamespace(source="score columns: p"), build({})) == "score columns: p"
