"""Reading only the configured columns, missing markers, identifiers and group limits."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from audit.core.config import build_config
from audit.errors import InputError
from audit.io.tables import MISSING_GROUP, load_dataset, read_table


def cfg(tmp_path, **data):
    raw = {"data": {"path": "d.csv", "label": "y", "score": "p", "sensitive": ["sex"], **data}}
    return build_config(raw, base_dir=tmp_path, plugin_names=("fairness",)).data


def load(path, c):
    return load_dataset(path, c, name="data", need_features=False, need_scores=True)


def frame(n, **cols):
    rng = np.random.default_rng(0)
    out = pd.DataFrame({"y": rng.binomial(1, 0.3, n), "p": rng.random(n).round(4)})
    for name, values in cols.items():
        out[name] = values
    return out


# --------------------------------------------------------------------------- identifiers
def test_identifier_like_sensitive_attribute_is_refused(tmp_path, write_csv):
    path = write_csv(frame(150, pid=[f"P{i:03d}" for i in range(150)], sex=["F", "M"] * 75))
    with pytest.raises(InputError, match=r"Sensitive attribute 'pid' in .*data.csv has 150 distinct values "
                                         r"for 150 rows: it looks like an identifier, not a group"):
        load(path, cfg(tmp_path, sensitive=["sex", "pid"]))


def test_identifier_rule_counts_patients_when_an_id_is_set(tmp_path, write_csv):
    # 600 rows of 150 patients; 'code' holds one value per patient: 150 > 50% of 150 patients.
    pid = [f"P{i // 4:03d}" for i in range(600)]
    path = write_csv(frame(600, pid=pid, code=[f"C{i // 4}" for i in range(600)], sex=["F", "M"] * 300))
    with pytest.raises(InputError, match=r"'code' .* 150 distinct values for 600 rows \(150 patients"):
        load(path, cfg(tmp_path, id="pid", sensitive=["sex", "code"]))


def test_tiny_files_with_one_category_per_row_are_not_identifiers(tmp_path, write_csv):
    path = write_csv("sex,y,p\nF,1,0.9\nM,0,0.2\nX,1,0.4\nU,0,0.3\n")
    assert sorted(load(path, cfg(tmp_path)).frame["sex"]) == ["F", "M", "U", "X"]


def test_site_with_one_value_per_row_is_refused(tmp_path, write_csv):
    path = write_csv(frame(100, sex=["F", "M"] * 50, site=[f"S{i}" for i in range(100)]))
    with pytest.raises(InputError, match=r"Site column 'site' .* 100 distinct values for 100 rows: .*identifier"):
        load(path, cfg(tmp_path, site="site"))


# --------------------------------------------------------------------------- max_groups
def test_a_column_of_10000_values_is_refused_fast(tmp_path, write_csv):
    n = 50_000
    path = write_csv(frame(n, sex=[f"g{i % 10_000}" for i in range(n)]))
    c = cfg(tmp_path)
    t0 = time.perf_counter()
    read_table(path, ["y", "p", "sex"], categorical=["sex"])
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"'sex' .* has 10000 groups, more than data.max_groups = 100.*"
                                         r"raise data.max_groups"):
        load(path, c)
    assert time.perf_counter() - t0 - read_s < 1.0


def test_max_groups_is_configurable(tmp_path, write_csv):
    path = write_csv(frame(60, sex=list("ABCDEF") * 10))
    with pytest.raises(InputError, match=r"has 6 groups, more than data.max_groups = 5"):
        load(path, cfg(tmp_path, max_groups=5))
    assert load(path, cfg(tmp_path, max_groups=6)).frame["sex"].nunique() == 6


# --------------------------------------------------------------------------- only configured columns
def test_only_configured_columns_are_parsed(tmp_path, write_csv, monkeypatch):
    # 'notes' holds megabyte-long cells (free text in a real export): it must never become a
    # column of the frame, so every full read names the configured columns in usecols.
    big = "x" * 1_000_000
    path = write_csv(frame(4, sex=list("FMFM"), notes=[big] * 4))
    seen = []
    real = pd.read_csv

    def spy(*args, **kwargs):
        seen.append(kwargs.get("usecols"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", spy)
    ds = load(path, cfg(tmp_path))
    assert list(ds.frame.columns) == ["y", "p", "sex"]
    parsed = [u for u in seen if u is not None]
    assert parsed and all("notes" not in u for u in parsed)
    assert None not in seen[1:]  # only the header row is read without usecols


def test_parquet_reads_only_configured_columns(tmp_path, monkeypatch):
    path = tmp_path / "d.parquet"
    frame(4, sex=list("FMFM"), notes=["secret"] * 4).to_parquet(path)
    seen = []
    real = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: seen.append(k.get("columns")) or real(*a, **k))
    ds = load(path, cfg(tmp_path, path="d.parquet"))
    assert seen == [["y", "p", "sex"]] and list(ds.frame.columns) == ["y", "p", "sex"]
    with pytest.raises(InputError, match=r"Column 'race' not found in .*d.parquet \(columns: y, p, sex, notes\)"):
        load(path, cfg(tmp_path, path="d.parquet", sensitive=["race"]))


# --------------------------------------------------------------------------- missing values
def test_literal_na_strings_stay_their_own_groups(tmp_path, write_csv):
    path = write_csv("sex,y,p\nNone,1,0.9\nNA,0,0.2\nnull,1,0.4\nnan,0,0.3\n,1,0.5\nF,0,0.1\n")
    groups = list(load(path, cfg(tmp_path)).frame["sex"])
    assert groups == ["None", "NA", "null", "nan", MISSING_GROUP, "F"]


def test_label_and_score_keep_the_default_missing_markers(tmp_path, write_csv):
    path = write_csv("sex,y,p\nF,NA,0.9\nM,0,null\nF,1,0.4\n")
    with pytest.raises(InputError, match=r"2 rows have missing values .*y: 1, p: 1"):
        load(path, cfg(tmp_path))


def test_na_values_adds_missing_markers_for_categorical_columns(tmp_path, write_csv):
    path = write_csv("sex,y,p\nNA,1,0.9\nunknown,0,0.2\n,1,0.4\nF,0,0.3\n")
    groups = list(load(path, cfg(tmp_path, na_values=["NA", "unknown"])).frame["sex"])
    assert groups == [MISSING_GROUP, MISSING_GROUP, MISSING_GROUP, "F"]


def test_na_values_in_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"sex": ["NA", None, "", "F"], "y": [1, 0, 1, 0], "p": [0.9, 0.2, 0.4, 0.3]}).to_parquet(path)
    assert list(load(path, cfg(tmp_path, path="d.parquet")).frame["sex"]) == ["NA", MISSING_GROUP, MISSING_GROUP, "F"]
    groups = list(load(path, cfg(tmp_path, path="d.parquet", na_values=["NA"])).frame["sex"])
    assert groups == [MISSING_GROUP] * 3 + ["F"]


def test_literal_missing_label_does_not_merge_with_empty_cells(tmp_path, write_csv):
    path = write_csv("sex,y,p\n(missing),1,0.9\n,0,0.2\nF,1,0.4\n")
    with pytest.raises(InputError, match=r"'sex' .* holds the text '\(missing\)' in 1 rows.*data.na_values"):
        load(path, cfg(tmp_path))
    # Declared as a missing marker, it is missing on purpose.
    groups = list(load(path, cfg(tmp_path, na_values=["(missing)"])).frame["sex"])
    assert groups == [MISSING_GROUP, MISSING_GROUP, "F"]


def test_all_missing_sensitive_attribute_is_an_error(tmp_path, write_csv):
    path = write_csv("sex,race,y,p\nF,,1,0.9\nM,,0,0.2\n")
    with pytest.raises(InputError, match=r"Sensitive attribute 'race' is missing in all 2 rows of .*data.csv"):
        load(path, cfg(tmp_path, sensitive=["sex", "race"]))
    path = write_csv("sex,age,y,p\nF,,1,0.9\nM,,0,0.2\n")
    with pytest.raises(InputError, match=r"'age_band' \(data.bins.age\) is missing in all 2 rows"):
        load(path, cfg(tmp_path, sensitive=["sex", "age_band"], bins={"age": [0, 50, 120]}))


# --------------------------------------------------------------------------- header and delimiter
def test_duplicate_column_names_are_an_error(tmp_path, write_csv):
    path = write_csv("sex,race,race,y,p\nF,a,b,1,0.9\nM,c,d,0,0.2\n")
    with pytest.raises(InputError, match=r"data.csv has several columns named 'race'.*'race.1'"):
        load(path, cfg(tmp_path, sensitive=["sex", "race"]))
    # A repeated column the audit does not use is never read.
    assert list(load(path, cfg(tmp_path)).frame.columns) == ["y", "p", "sex"]


def test_semicolon_file_gets_a_delimiter_hint_and_data_delimiter_reads_it(tmp_path, write_csv):
    path = write_csv("sex;y;p\nF;1;0.9\nM;0;0.2\n")
    with pytest.raises(InputError, match=r"looks semicolon-separated; set data.delimiter = ';'"):
        load(path, cfg(tmp_path))
    ds = load(path, cfg(tmp_path, delimiter=";"))
    assert list(ds.frame["sex"]) == ["F", "M"] and list(ds.frame["p"]) == [0.9, 0.2]


def test_tab_file_named_csv_gets_a_tab_hint(tmp_path, write_csv):
    path = write_csv("sex\ty\tp\nF\t1\t0.9\n")
    with pytest.raises(InputError, match=r'looks tab-separated; set data.delimiter = "\\t"'):
        read_table(path)
    assert list(read_table(path, delimiter="\t").columns) == ["sex", "y", "p"]


# --------------------------------------------------------------------------- bins
def test_bin_that_shadows_an_existing_column_is_refused(tmp_path, write_csv):
    path = write_csv("sex,age,age_band,y,p\nF,30,young,1,0.9\nM,70,old,0,0.2\n")
    with pytest.raises(InputError, match=r"data.bins.age.name 'age_band' is also a column of .*data.csv"):
        load(path, cfg(tmp_path, sensitive=["sex", "age_band"], bins={"age": [0, 50, 120]}))
    # Named after its own source column, a bin replaces that column: allowed.
    ds = load(path, cfg(tmp_path, sensitive=["sex", "age"], bins={"age": {"edges": [0, 50, 120], "name": "age"}}))
    assert list(ds.frame["age"]) == ["0-50", "50-120"]
