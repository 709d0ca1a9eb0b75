"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def data(tmp_path, toy_frame):
    path = tmp_path / "test.csv"
    toy_frame.to_csv(path, index=False)
    return path
