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
    ({"data": {**BASE["data"], "max_groups": 1}}, r"data.max_groups: expected an integer >= 2"),
    ({"data": {**BASE["data"], "max_groups": "many"}}, r"data.max_groups: expected an integer"),
    ({"data": {**BASE["data"], "na_values": [1]}}, r"data.na_values: expected a string or a list of strings"),
    ({"data": {**BASE["data"], "delimiter": ";;"}}, r"data.delimiter: expected one character"),
    ({"data": {**BASE["data"], "bins": {"age": {"edges": [0, 1, 2], "labels": ["a", "a"]}}}}, "repeats a label"),
])
def test_validation_messages(raw, match):
    with pytest.raises(ConfigError, match=match):
        build(raw)


def test_new_data_keys_defaults_and_record():
    cfg = build(BASE)
    assert (cfg.data.max_groups, cfg.data.na_values, cfg.data.delimiter) == (100, (), None)
    cfg = build({"data": {**BASE["data"], "max_groups": 12, "na_values": ["NA", "unknown"], "delimiter": "\t"}})
    assert cfg.data.na_values == ("NA", "unknown")
    recorded = cfg.to_dict()["data"]
    assert (recorded["max_groups"], recorded["na_values"], recorded["delimiter"]) == (12, ["NA", "unknown"], "\t")


@pytest.mark.parametrize("role,value,key", [
    ("sensitive", ["sex", "pid"], "data.sensitive"),
    ("site", "pid", "data.site"),
    ("time", "pid", "data.time"),
    ("label", "pid", "data.label"),
    ("score", "pid", "data.score"),
])
def test_the_identifier_has_no_other_role(role, value, key):
    raw = {"data": {**BASE["data"], "id": "pid", role: value}}
    with pytest.raises(ConfigError, match=rf"data.id 'pid' is also {key}; the patient identifier can have no other role"):
        build(raw)


def test_id_given_as_sensitive_by_flags_is_refused():
    with pytest.raises(ConfigError, match=r"data.id 'pid' is also data.sensitive"):
        build(BASE, flags={"id": "pid", "sensitive": ["pid"]})


@pytest.mark.parametrize("flags,match", [
    ({"sensitive": ["site", "site"]}, r"data.sensitive lists 'site' more than once"),
    ({"label": ["y", "y"]}, r"data.label lists 'y' more than once"),
    ({"features": ["a", "b", "a"]}, r"data.features lists 'a' more than once"),
    ({"sensitive": ["y"]}, r"Column 'y' is both data.sensitive and data.label"),
])
def test_duplicated_roles_are_refused(flags, match):
    with pytest.raises(ConfigError, match=match):
        build(BASE, flags=flags)


def test_sensitive_may_share_a_column_with_site():
    # Fairness across hospitals is a legitimate question.
    cfg = build(BASE, flags={"sensitive": ["site"], "site": "site"})
    assert cfg.data.sensitive == ("site",) and cfg.data.site == "site"


def test_bins_with_the_same_name_are_refused():
    bins = {"age": {"edges": [0, 50, 120], "name": "band"}, "bmi": {"edges": [0, 30, 90], "name": "band"}}
    with pytest.raises(ConfigError, match=r"data.bins.age and data.bins.bmi are both named 'band'"):
        build({"data": {**BASE["data"], "bins": bins}})
    bins = {"age": {"edges": [0, 50, 120], "name": "bmi"}, "bmi": {"edges": [0, 30, 90]}}
    with pytest.raises(ConfigError, match=r"data.bins.age.name 'bmi' is the column binned by data.bins.bmi"):
        build({"data": {**BASE["data"], "bins": bins}})
    bins = {"age": {"edges": [0, 50, 120], "name": "age"}}
    with pytest.raises(ConfigError, match=r"replaces the column 'age', which is also data.features"):
        build({"data": {**BASE["data"], "features": ["age"], "bins": bins}})


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
