"""Reading and validating tables: every bad input is one clear InputError line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.core.config import build_config
from audit.errors import InputError
from audit.io.tables import load_dataset, read_table


def cfg(tmp_path, **data):
    raw = {"data": {"path": "d.csv", "label": "y", "score": "p", "sensitive": ["sex"], **data}}
    return build_config(raw, base_dir=tmp_path, plugin_names=("fairness",)).data


def load(path, c):
    return load_dataset(path, c, name="data", need_features=False, need_scores=True)


GOOD = "sex,y,p,age\nF,1,0.9,30\nM,0,0.2,70\n"


def test_reads_csv_and_parquet(tmp_path, write_csv):
    path = write_csv(GOOD)
    frame = read_table(path)
    frame.to_parquet(tmp_path / "d.parquet")
    assert read_table(tmp_path / "d.parquet").equals(frame)


@pytest.mark.parametrize("content,match", [
    (None, "Data file not found"),
    ("", r"is empty \(0 bytes\)"),
    ("sex,y,p\n", "has a header but no rows"),
    ("\n\n", "has no columns"),
])
def test_unreadable_files(tmp_path, content, match):
    path = tmp_path / "d.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=match):
        read_table(path)


def test_binary_file_is_not_a_table(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(InputError, match="is not a readable Parquet table"):
        read_table(path)


def test_missing_column_lists_existing(tmp_path, write_csv):
    path = write_csv(GOOD)
    with pytest.raises(InputError, match=r"Column 'race' not found in .*data.csv \(columns: sex, y, p, age\)"):
        load(path, cfg(tmp_path, sensitive=["race"]))


def test_label_values_other_than_01(tmp_path, write_csv):
    path = write_csv("sex,y,p\nF,1,0.9\nM,2,0.2\nM,yes,0.1\n")
    with pytest.raises(InputError, match=r"Label column 'y' .* must hold only 0 and 1; found '2', 'yes'"):
        load(path, cfg(tmp_path))


def test_nan_in_label_or_score_counted_and_dropped_on_request(tmp_path, write_csv):
    path = write_csv("sex,y,p\nF,1,0.9\nM,,0.2\nM,0,\nF,0,0.3\n")
    with pytest.raises(InputError, match=r"2 rows have missing values .*y: 1, p: 1.*--drop-missing"):
        load(path, cfg(tmp_path))
    ds = load(path, cfg(tmp_path, drop_missing=True))
    assert ds.n_rows == 2 and ds.n_dropped == 2


def test_scores_outside_unit_interval(tmp_path, write_csv):
    path = write_csv("sex,y,p\nF,1,1.7\nM,0,-0.2\nM,0,0.5\n")
    with pytest.raises(InputError, match=r"2 values outside \[0, 1\] \(min -0.2, max 1.7\)"):
        load(path, cfg(tmp_path))


def test_bins_and_numeric_sensitive(tmp_path, write_csv):
    path = write_csv(GOOD)
    ds = load(path, cfg(tmp_path, sensitive=["sex", "age_band"], bins={"age": {"edges": [0, 50, 120]}}))
    assert list(ds.frame["age_band"]) == ["0-50", "50-120"]
    with pytest.raises(InputError, match="outside the bin edges"):
        load(path, cfg(tmp_path, sensitive=["age_band"], bins={"age": {"edges": [40, 120]}}))
    many = pd.DataFrame({"sex": np.arange(40), "y": [0, 1] * 20, "p": [0.5] * 40})
    path2 = write_csv(many, "many.csv")
    with pytest.raises(InputError, match=r"Sensitive attribute 'sex' .* numeric with 40 distinct values"):
        load(path2, cfg(tmp_path))


def test_only_configured_columns_are_kept(tmp_path, write_csv):
    path = write_csv("sex,y,p,name\nF,1,0.9,Alice Smith\nM,0,0.2,Bob Jones\n")
    ds = load(path, cfg(tmp_path))
    assert "name" not in ds.frame.columns
