"""Configuration: files, pyproject, flags overriding files, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.core.config import build_config, find_config, read_config_file
from audit.errors import ConfigError

BASE = {"data": {"path": "d.csv", "label": "y", "score": "p"}}


def build(raw, flags=None, tmp=Path("/tmp")):
    return build_config(raw, base_dir=tmp, flags=flags or {}, plugin_names=("fairness",))


def test_paths_relative_to_config_and_flags_override(tmp_path):
    cfg = build(BASE, tmp=tmp_path)
    assert cfg.data.path == (tmp_path / "d.csv").resolve()
    cfg = build_config(BASE, base_dir=tmp_path, flag_dir=tmp_path / "cwd", flags={"data": "other.csv", "label": ["z"]},
                       plugin_names=("fairness",))
    assert cfg.data.path == (tmp_path / "cwd" / "other.csv").resolve()
    assert cfg.data.label == ("z",)


def test_pyproject_table_and_discovery(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.future-audit.data]\npath = "x.csv"\nlabel = "y"\nscore = "p"\n')
    found = find_config(tmp_path)
    assert found.name == "pyproject.toml"
    assert read_config_file(found)["data"]["path"] == "x.csv"
    (tmp_path / "audit.toml").write_text('[data]\npath = "a.csv"\n')
    assert find_config(tmp_path).name == "audit.toml"


def test_invalid_toml_names_the_file(tmp_path):
    bad = tmp_path / "audit.toml"
    bad.write_text("[data\npath=")
    with pytest.raises(ConfigError, match="audit.toml is not valid TOML"):
        read_config_file(bad)


@pytest.mark.parametrize("raw,match", [
    ({"data": {**BASE["data"], "lable": "y"}}, r"Unknown key 'data.lable'"),
    ({**BASE, "fairnes": {}}, r"Unknown config section or key 'fairnes'"),
    ({"data": {"path": "d.csv", "score": "p"}}, "No label column"),
    ({"data": {"path": "d.csv", "label": "y"}}, "No model and no score column"),
    ({**BASE, "report": {"formats": ["html", "docx"]}}, "unknown format 'docx'"),
    ({**BASE, "report": {"min_cell": 0}}, r"report.min_cell: expected an integer >= 1"),
    ({**BASE, "run": {"gate_policy": "strict"}}, "run.gate_policy"),
    ({**BASE, "run": {"fail_on": ["error"]}}, "run.fail_on"),
    ({**BASE, "gates": [{"metric": "fairness.fnr_gap", "op": "=", "threshold": 0.1}]}, r"gates\[0\].op"),
    ({**BASE, "gates": [{"metric": "fairness.fnr_gap", "op": "<=", "threshold": "x"}]}, "not a number"),
    ({"data": {**BASE["data"], "bins": {"age": {"edges": [0, 18, 10]}}}}, "strictly increasing"),
    ({"data": {**BASE["data"], "bins": {"age": {"edges": [0, 18, 60], "labels": ["a"]}}}}, "one label per bin"),
    ({"data": {**BASE["data"], "id": "pid", "features": ["pid", "x"]}}, "identifier"),
])
def test_validation_messages(raw, match):
    with pytest.raises(ConfigError, match=match):
        build(raw)


def test_gates_from_table_and_flags():
    raw = {**BASE, "gates": [{"metric": "fairness.fnr_gap", "op": "<=", "threshold": 0.05}]}
    cfg = build(raw, flags={"gates": ["fairness.auroc>=0.7"]})
    assert [g.expression for g in cfg.gates] == ["fairness.fnr_gap<=0.05", "fairness.auroc>=0.7"]


def test_bins_default_labels():
    cfg = build({"data": {**BASE["data"], "bins": {"age": {"edges": [0, 18, 65, 120]}}}})
    (b,) = cfg.data.bins
    assert b.name == "age_band" and b.labels == ("0-18", "18-65", "65-120")


def test_config_formats_are_the_renderers_formats():
    # The config validates formats without importing the renderers (kept off --help's path).
    from audit.core.config import FORMATS
    from audit.report import FORMATS as RENDERED

    assert set(FORMATS) == set(RENDERED)
