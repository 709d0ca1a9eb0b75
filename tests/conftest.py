"""Shared fixtures: small tables written to tmp_path, and the embedded real example."""

from __future__ import annotations

import os
from pathlib import Path

# `make test` runs one pytest worker per core: OpenMP (scikit-learn's gradient boosting) and
# BLAS each starting a thread per core in every worker would oversubscribe the machine many
# times over (a one-second fit took minutes). Set before numpy or scikit-learn load.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "covid_testing"


@pytest.fixture
def write_csv(tmp_path):
    """Write a DataFrame (or raw text) to tmp_path/name and return the path."""

    def _write(data, name="data.csv"):
        path = tmp_path / name
        if isinstance(data, str):
            path.write_text(data)
        else:
            data.to_csv(path, index=False)
        return path

    return _write


@pytest.fixture
def toy_frame():
    """Two sexes, three races, repeated patients, a score related to the label."""
    rng = np.random.default_rng(7)
    n = 1200
    frame = pd.DataFrame({
        "patient_id": [f"P{i // 2:04d}" for i in range(n)],
        "sex": rng.choice(["F", "M"], n),
        "race": rng.choice(["black", "white", "asian"], n, p=[0.3, 0.5, 0.2]),
        "age": rng.integers(1, 95, n),
    })
    y = rng.binomial(1, 0.35, n)
    frame["y"] = y
    frame["p"] = np.clip(0.35 + 0.35 * (y - 0.35) + rng.normal(0, 0.18, n), 0, 1).round(6)
    return frame


@pytest.fixture
def example_dir():
    return EXAMPLE
