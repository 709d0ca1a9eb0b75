"""The wheel carries the checklists, the report templates and the JSON Schema."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_data_files(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("future_audit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("audit/checklist_data/claim-2024.yaml", "audit/checklist_data/tripod-ai.yaml",
                     "audit/checklist_data/future-ai.yaml", "audit/templates/report.html.j2",
                     "audit/templates/report.css", "audit/schema/results.schema.json"):
        assert required in names, required
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "fairness = audit.plugins.fairness:FairnessPlugin" in text
    assert "future-audit = audit.cli:entry" in text
