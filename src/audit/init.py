"""``future-audit init``: guess column roles from a data file and write a commented audit.toml."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from audit.io.tables import read_table

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
    site: str | None = None
    time: str | None = None
    features: list[str] = field(default_factory=list)


def _is_binary(s: pd.Series) -> bool:
    values = set(pd.unique(s.dropna()))
    return len(values) == 2 and values <= {0, 1, 0.0, 1.0, True, False}


def guess_roles(path: Path) -> Roles:
    """Guess label, score, identifier, sensitive, site, time and feature columns by name and content."""
    frame = read_table(Path(path))
    roles = Roles()
    used: set[str] = set()
    for col in frame.columns:
        s = frame[col]
        name = str(col)
        if roles.id is None and _ID.search(name) and s.nunique() > 0.3 * len(s):
            roles.id = name
        elif _is_binary(s) and _LABEL.match(name):
            roles.label.append(name)
        elif pd.api.types.is_float_dtype(s) and _SCORE.search(name) and s.between(0, 1).all():
            roles.score.append(name)
        elif _SENSITIVE.match(name):
            roles.sensitive.append(name)
            if pd.api.types.is_numeric_dtype(s) and s.nunique() > 20:
                roles.bins[name] = [0, 18, 40, 60, 80, 200] if "age" in name.lower() else [
                    float(q) for q in s.quantile([0, 0.25, 0.5, 0.75]).tolist()] + [float(s.max()) + 1]
        elif roles.site is None and _SITE.search(name) and not pd.api.types.is_float_dtype(s):
            roles.site = name
        elif roles.time is None and _TIME.search(name):
            roles.time = name
        else:
            continue
        used.add(name)
    if not roles.label:  # fall back to the first 0/1 column
        for col in frame.columns:
            if col not in used and _is_binary(frame[col]):
                roles.label.append(str(col))
                used.add(str(col))
                break
    roles.features = [str(c) for c in frame.columns if str(c) not in used and pd.api.types.is_numeric_dtype(frame[c])]
    return roles


def _toml_list(items) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def _q(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(data_path: Path, roles: Roles, out: Path, attestations: str | None = None) -> str:
    """The text of a commented audit.toml for ``roles``."""
    try:
        rel = Path(data_path).resolve().relative_to(Path(out).resolve().parent)
    except ValueError:
        rel = Path(data_path).resolve()
    sensitive = [f"{c}_band" if c in roles.bins else c for c in roles.sensitive]
    lines = [
        "# future-audit configuration, written by `future-audit init`.",
        "# The column roles below were GUESSED from the data: check every one.",
        "# Paths are relative to this file. Flags given to `future-audit run` override these values.",
        "",
        "[data]",
        f"path = {_q(str(rel))}",
        "# reference = \"validation.csv\"   # validation split: the operating point is chosen on it",
        f"label = {_toml_list(roles.label)}   # 0/1; several columns for a multi-label model",
        f"score = {_toml_list(roles.score)}   # the model's probabilities, if they are in the data",
        (f"id = {_q(roles.id)}   # patient identifier: clusters the bootstrap, never shown"
         if roles.id else "# id = \"patient_id\"   # patient identifier: clusters the bootstrap, never shown"),
        f"sensitive = {_toml_list(sensitive)}   # attributes to compare groups by",
        (f"site = {_q(roles.site)}" if roles.site else "# site = \"hospital\""),
        (f"time = {_q(roles.time)}" if roles.time else "# time = \"study_date\""),
        f"features = {_toml_list(roles.features)}   # model inputs (needed when a model file is given)",
        "",
    ]
    for col, edges in roles.bins.items():
        lines += [f"[data.bins.{col}]   # numeric attribute binned into [lo, hi) groups",
                  f"name = {_q(col + '_band')}", f"edges = {[round(e, 6) for e in edges]}", ""]
    lines += [
        "[model]",
        "# path = \"model.skops\"   # or model.joblib (needs --trust-model), or package.module:function",
        "# trusted_types = []     # skops types you trust (future-audit lists them if needed)",
        "",
        "[fairness]",
        "operating_point = \"max-f1\"   # or youden, sensitivity:0.9; or threshold = 0.5",
        "# intersections = [[\"sex\", \"age_band\"]]",
        "bootstrap = 2000",
        "seed = 0",
        "correction = \"holm\"        # or bh",
        "min_group_n = 30",
        "min_positives = 10",
        "",
        "[report]",
        "out = \"reports/audit\"",
        "formats = [\"html\", \"json\", \"junit\", \"md\"]",
        "min_cell = 10               # cells with fewer cases are suppressed",
        (f"attestations = {_q(attestations)}   # the team's answers to checklist items no tool measures"
         if attestations else "# attestations = \"attestations.yaml\""),
        "",
        "# [[gates]]                 # CI gates: exit 1 when one fails",
        "# metric = \"fairness.fnr_gap\"",
        "# op = \"<=\"",
        "# threshold = 0.05",
        "",
    ]
    return "\n".join(lines)
