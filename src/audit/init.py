"""``future-audit init``: guess column roles from a data file and write a commented audit.toml."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from audit.core.config import DataConfig
from audit.errors import InputError
from audit.io.tables import ID_SHARE, MIN_ID_VALUES, read_header, read_table

DEFAULT_MAX_GROUPS = DataConfig.max_groups  # what `future-audit run` accepts by default

_ID = re.compile(r"(^|_)(id|patient|subject|mrn|pid|record)(_|$)|_id$", re.I)
_SENSITIVE = re.compile(r"^(sex|gender|race|ethnicity|ethnic_group|age|age_group|age_band|insurance|"
                        r"payor|payer|payor_group|language|religion|marital_status|demo_group)$", re.I)
_SITE = re.compile(r"(site|hospital|centre|center|clinic|institution|inst|scanner|device)", re.I)
_TIME = re.compile(r"(date|time|day|year|month|week|timestamp)", re.I)
_LABEL = re.compile(r"^(y|label|target|outcome|diagnosis|disease|result|class|status|finding)", re.I)
_SCORE = re.compile(r"(^p_|^p$|prob|score|pred|risk)", re.I)


@dataclass
class Roles:
    label: list[str] = field(default_factory=list)
    score: list[str] = field(default_factory=list)
    id: str | None = None
    sensitive: list[str] = field(default_factory=list)
    bins: dict[str, list[float]] = field(default_factory=dict)
    # The name of each bin (default COLUMN_band), never the name of an existing column.
    bin_names: dict[str, str] = field(default_factory=dict)
    site: str | None = None
    time: str | None = None
    features: list[str] = field(default_factory=list)
    delimiter: str | None = None  # written as data.delimiter when the file is not comma-separated


def _is_binary(s: pd.Series) -> bool:
    values = set(pd.unique(s.dropna()))
    return len(values) == 2 and values <= {0, 1, 0.0, 1.0, True, False}


def _one_per_row(s: pd.Series) -> bool:
    """Nearly one value per row (and enough rows to tell): a number that identifies a record."""
    n = int(s.notna().sum())
    distinct = int(s.nunique())
    return distinct >= MIN_ID_VALUES and distinct >= 0.9 * n


def _looks_like_id(name: str, s: pd.Series) -> bool:
    return bool(_ID.search(name)) or (pd.api.types.is_integer_dtype(s) and _one_per_row(s))


def _groups_ok(s: pd.Series) -> bool:
    """Few enough groups for `future-audit run` to accept the column as an attribute."""
    distinct = int(s.nunique())
    return not (distinct >= MIN_ID_VALUES and distinct > ID_SHARE * len(s)) and distinct <= DEFAULT_MAX_GROUPS


def _sniff_delimiter(path: Path) -> str | None:
    """A separator other than the default, when the header read with the default is one column."""
    if Path(path).name.lower().endswith((".parquet", ".pq")):
        return None
    try:
        read_header(path)
        return None
    except InputError:
        for char in (";", "\t", "|", ","):
            try:
                if len(read_header(path, delimiter=char)) > 1:
                    return char
            except InputError:
                continue
        raise


def guess_roles(path: Path) -> Roles:
    """Guess label, score, identifier, sensitive, site, time and feature columns by name and content.

    Identifier-like columns (by name, or integers with about one value per row) are never
    features; a bin is never named after an existing column, and no column gets two roles.
    """
    path = Path(path)
    delimiter = _sniff_delimiter(path)
    frame = read_table(path, delimiter=delimiter)
    roles = Roles(delimiter=delimiter)
    columns = [str(c) for c in frame.columns]
    used: set[str] = set()
    for col in frame.columns:
        s = frame[col]
        name = str(col)
        if _looks_like_id(name, s):
            # The first id-like column with many values is the patient id; any other is no
            # feature either (a second record number is not a model input).
            if roles.id is None and s.nunique() > 0.3 * len(s):
                roles.id = name
        elif _is_binary(s) and _LABEL.match(name):
            roles.label.append(name)
        elif pd.api.types.is_float_dtype(s) and _SCORE.search(name) and s.between(0, 1).all():
            roles.score.append(name)
        elif _SENSITIVE.match(name):
            if pd.api.types.is_numeric_dtype(s) and s.nunique() > 20:
                roles.bins[name] = [0, 18, 40, 60, 80, 200] if "age" in name.lower() else [
                    float(q) for q in s.quantile([0, 0.25, 0.5, 0.75]).tolist()] + [float(s.max()) + 1]
                roles.sensitive.append(name)
            elif _groups_ok(s):
                roles.sensitive.append(name)
            else:
                continue
        elif roles.site is None and _SITE.search(name) and not pd.api.types.is_float_dtype(s) and _groups_ok(s):
            roles.site = name
        elif roles.time is None and _TIME.search(name):
            roles.time = name
        else:
            continue
        used.add(name)
    for col in list(roles.bins):
        band = f"{col}_band"
        if band in roles.sensitive:
            # The file already has the banded attribute (age and age_band): use it, do not bin.
            del roles.bins[col]
            roles.sensitive.remove(col)
            used.discard(col)
            continue
        taken = set(columns) | set(roles.sensitive)
        name = next(n for n in (band, f"{col}_group", *(f"{col}_band{i}" for i in range(2, 100)))
                    if n not in taken)
        roles.bin_names[col] = name
    if not roles.label:  # fall back to the first 0/1 column
        for col in frame.columns:
            if col not in used and not _looks_like_id(str(col), frame[col]) and _is_binary(frame[col]):
                roles.label.append(str(col))
                used.add(str(col))
                break
    roles.features = [c for c, col in zip(columns, frame.columns, strict=True)
                      if c not in used and c != roles.id and not _looks_like_id(c, frame[col])
                      and pd.api.types.is_numeric_dtype(frame[col])]
    roles.sensitive = list(dict.fromkeys(roles.sensitive))
    return roles


def _toml_list(items) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def _q(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(s: str) -> str:
    """A TOML key: bare when it can be, quoted otherwise."""
    return s if _BARE_KEY.match(s) else _q(s)


def _display_name_lines(roles: Roles, bin_names: dict[str, str], sensitive: list[str]) -> list[str]:
    """[report.display_names]: how the reports name labels, columns and values.

    Label phrases are proposed commented out (only the team knows what a label means); a
    binned column gets an active name ("age group" for age_band).
    """
    plain = [c for c in sensitive if c not in bin_names.values()]
    lines = [
        "# How the reports name things (default: the raw column names and values). A label's",
        "# phrase says what label = 1 means for a patient, e.g. \"tested positive for covid\".",
        "[report.display_names.labels]",
        *[f"# {_key(lab)} = {_q('has ' + lab)}   # what {lab} = 1 means" for lab in roles.label],
        "",
        "[report.display_names.columns]",
        *[f"{_key(name)} = {_q(col.replace('_', ' ') + ' group')}   # binned from {col}"
          for col, name in bin_names.items()],
        *[f"# {_key(col)} = {_q(col.replace('_', ' '))}" for col in plain],
        "",
        "[report.display_names.values]   # column = { value = \"name\", ... }",
        f"# {_key(plain[0]) if plain else 'gender'} = {{ female = \"women\", male = \"men\" }}",
        "",
    ]
    return lines


def render_config(data_path: Path, roles: Roles, out: Path, attestations: str | None = None) -> str:
    """The text of a commented audit.toml for ``roles``."""
    try:
        rel = Path(data_path).resolve().relative_to(Path(out).resolve().parent)
    except ValueError:
        rel = Path(data_path).resolve()
    names = {c: roles.bin_names.get(c, f"{c}_band") for c in roles.bins}
    sensitive = list(dict.fromkeys(names.get(c, c) for c in roles.sensitive))
    delimiter = '"\\t"' if roles.delimiter == "\t" else (_q(roles.delimiter) if roles.delimiter else None)
    lines = [
        "# future-audit configuration, written by `future-audit init`.",
        "# The column roles below were GUESSED from the data: check every one.",
        "# Paths are relative to this file. Flags given to `future-audit run` override these values.",
        "",
        "[data]",
        f"path = {_q(str(rel))}",
        *([f"delimiter = {delimiter}   # the file's field separator"] if delimiter else []),
        "# reference = \"validation.csv\"   # validation split: the operating point is chosen on it",
        f"label = {_toml_list(roles.label)}   # 0/1; several columns for a multi-label model",
        f"score = {_toml_list(roles.score)}   # the model's probabilities, if they are in the data",
        (f"id = {_q(roles.id)}   # patient identifier: clusters the bootstrap, never shown"
         if roles.id else "# id = \"patient_id\"   # patient identifier: clusters the bootstrap, never shown"),
        f"sensitive = {_toml_list(sensitive)}   # attributes to compare groups by",
        (f"site = {_q(roles.site)}" if roles.site else "# site = \"hospital\""),
        (f"time = {_q(roles.time)}" if roles.time else "# time = \"study_date\""),
        f"features = {_toml_list(roles.features)}   # model inputs (needed when a model file is given)",
        "# na_values = [\"unknown\"]   # more missing markers for sensitive/site/id (only empty cells by default)",
        "# max_groups = 100          # refuse attributes with more groups than this",
        "",
    ]
    for col, edges in roles.bins.items():
        edges = list(dict.fromkeys(round(e, 6) for e in edges))  # quantiles can repeat
        lines += [f"[data.bins.{col}]   # numeric attribute binned into [lo, hi) groups",
                  f"name = {_q(names[col])}", f"edges = {edges}", ""]
    lines += [
        "[model]",
        "# path = \"model.skops\"   # or model.joblib (needs --trust-model), or package.module:function",
        "# trusted_types = []     # skops types you trust (future-audit lists them if needed)",
        "",
        "[fairness]",
        "operating_point = \"max-f1\"   # or youden, sensitivity:0.9; or threshold = 0.5",
        "# intersections = [[\"sex\", \"age_band\"]]",
        "correction = \"holm\"        # or bh",
        "min_group_n = 30",
        "min_positives = 10",
        "",
        "[run]",
        "# seed = 0                  # fixed random seed (default: one is drawn and recorded)",
        "",
        "[report]",
        "out = \"reports/audit\"",
        "formats = [\"html\", \"json\", \"junit\", \"md\"]",
        "min_cell = 10               # cells with fewer cases are suppressed",
        (f"attestations = {_q(attestations)}   # the team's answers to checklist items no tool measures"
         if attestations else "# attestations = \"attestations.yaml\""),
        "# record_paths = false      # true keeps absolute file paths in results.json",
        "",
        *_display_name_lines(roles, names, sensitive),
        "# [[gates]]                 # CI gates: exit 1 when one fails",
        "# metric = \"fairness.fnr_gap\"",
        "# op = \"<=\"",
        "# threshold = 0.05",
        "",
    ]
    return "\n".join(lines)
