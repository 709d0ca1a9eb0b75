"""``future-audit init``: guessed roles never leak identifiers, repeat a column or shadow one."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.core.config import build_config
from audit.init import guess_roles, render_config
from audit.io.tables import load_dataset


@pytest.fixture
def patients(tmp_path):
    rng = np.random.default_rng(1)
    n = 300
    y = rng.binomial(1, 0.3, n)
    return pd.DataFrame({
        "pid": [f"P{i // 2:04d}" for i in range(n)],
        "patient_number": np.arange(n) + 10_000,   # a second identifier, numeric
        "encounter": rng.permutation(n) + 1,       # an integer with one value per row
        "age": rng.integers(1, 95, n),
        "age_band": rng.choice(["<40", "40-65", "65+"], n),
        "sex": rng.choice(["F", "M"], n),
        "bmi": rng.normal(25, 4, n).round(1),
        "y": y,
        "p": np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.2, n), 0, 1).round(4),
    })


def _init(tmp_path, frame, name="d.csv", sep=","):
    path = tmp_path / name
    frame.to_csv(path, index=False, sep=sep)
    out = tmp_path / "audit.toml"
    roles = guess_roles(path)
    out.write_text(render_config(path, roles, out))
    raw = tomllib.loads(out.read_text())
    return roles, raw, build_config(raw, base_dir=tmp_path, plugin_names=("fairness",))


def test_no_identifier_feature_no_duplicate_no_shadowing_bin(tmp_path, patients):
    roles, raw, cfg = _init(tmp_path, patients)
    data = raw["data"]
    assert data["id"] == "pid"
    assert not {"pid", "patient_number", "encounter"} & set(data["features"])
    assert data["sensitive"] == ["age_band", "sex"]
    assert len(set(data["sensitive"])) == len(data["sensitive"])
    assert "bins" not in data  # age_band exists: age is not binned under its name
    assert "age" in data["features"] and "bmi" in data["features"]
    # The written file passes the run's checks on its own data.
    ds = load_dataset(cfg.data.path, cfg.data, name="data", need_features=False, need_scores=True)
    assert set(ds.frame["age_band"]) == {"<40", "40-65", "65+"}


def test_bin_is_written_when_no_banded_column_exists(tmp_path, patients):
    _, raw, cfg = _init(tmp_path, patients.drop(columns=["age_band"]))
    assert raw["data"]["sensitive"] == ["age_band", "sex"]
    assert raw["data"]["bins"]["age"]["name"] == "age_band"
    load_dataset(cfg.data.path, cfg.data, name="data", need_features=False, need_scores=True)


def test_deprecated_fairness_keys_are_not_written(tmp_path, patients):
    _, raw, _ = _init(tmp_path, patients)
    assert "bootstrap" not in raw["fairness"] and "seed" not in raw["fairness"]


def test_semicolon_file_gets_a_delimiter(tmp_path, patients):
    _, raw, cfg = _init(tmp_path, patients, sep=";")
    assert raw["data"]["delimiter"] == ";" and cfg.data.delimiter == ";"
    assert raw["data"]["label"] == ["y"]
    load_dataset(cfg.data.path, cfg.data, name="data", need_features=False, need_scores=True)


def test_init_command_writes_a_runnable_config(tmp_path, patients):
    from typer.testing import CliRunner

    from audit.cli import app

    path = tmp_path / "d.csv"
    patients.to_csv(path, index=False)
    out = tmp_path / "audit.toml"
    res = CliRunner().invoke(app, ["init", "--data", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["run", "--config", str(out), "--out", str(tmp_path / "o"), "--quiet",
                                   "--threshold", "0.5", "--seed", "1"])
    assert res.exit_code in (0, 1), res.output
    assert Path(tmp_path / "o" / "results.json").is_file(), res.output


def test_display_names_are_proposed(tmp_path, patients):
    _, raw, cfg = _init(tmp_path, patients.drop(columns=["age_band"]))
    text = (tmp_path / "audit.toml").read_text()
    names = raw["report"]["display_names"]
    # A binned column gets an active name; label phrases are proposed commented out.
    assert names["columns"] == {"age_band": "age group"}
    assert names["labels"] == {} and names["values"] == {}
    assert '# y = "has y"' in text and "tested positive for covid" in text
    assert '# sex = "sex"' in text
    assert cfg.report.display_names == {"labels": {}, "columns": {"age_band": "age group"}, "values": {}}
    # Uncommenting the proposals gives a valid config.
    active = tomllib.loads(text.replace('# y = "has y"', 'y = "has y"')
                           .replace('# sex = { female', 'sex = { female'))
    cfg = build_config(active, base_dir=tmp_path, plugin_names=("fairness",))
    assert cfg.report.display_names["labels"] == {"y": "has y"}
    assert cfg.report.display_names["values"] == {"sex": {"female": "women", "male": "men"}}
