"""The fairness plugin refuses intersections with more cells than data.max_groups."""

from __future__ import annotations

import pytest

from audit.core.config import build_config
from audit.core.runner import run_audit
from audit.errors import ConfigError


def _config(tmp_path, toy_frame, **data):
    path = tmp_path / "d.csv"
    toy_frame.to_csv(path, index=False)
    raw = {"data": {"path": str(path), "label": "y", "score": "p", "sensitive": ["sex", "race"], **data},
           "fairness": {"threshold": 0.5, "intersections": [["sex", "race"]]},
           "report": {"out": str(tmp_path / "out")}}
    return build_config(raw, base_dir=tmp_path, plugin_names=("fairness",))


def test_intersection_over_max_groups_is_refused(tmp_path, toy_frame):
    # sex (2) and race (3) each fit in 5 groups; their intersection has 6 cells.
    with pytest.raises(ConfigError, match=r"fairness.intersections: \['sex', 'race'\] has 6 groups in .*d.csv, "
                                          r"more than data.max_groups = 5"):
        run_audit(_config(tmp_path, toy_frame, max_groups=5))


def test_intersection_within_max_groups_runs(tmp_path, toy_frame):
    result = run_audit(_config(tmp_path, toy_frame, max_groups=6))
    assert ["sex", "race"] in result.plugin("fairness").settings["groupings"]
