"""The drift example (PadChest metadata, 2013 against 2014-2017) finds what its README says:
the equipment drifted (modality, manufacturer), the model's scores and AUROC did not."""

from __future__ import annotations

import tomllib
from pathlib import Path

from audit.core.config import build_config
from audit.core.results import Status
from audit.core.runner import run_audit
from audit.plugins.traceability import TraceabilityPlugin

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "drift"


def test_the_drift_example_finds_the_scanner_change_and_no_loss(tmp_path):
    raw = tomllib.loads((EXAMPLE / "audit.toml").read_text(encoding="utf-8"))
    raw["report"]["out"] = str(tmp_path)
    raw.pop("fairness")  # this test runs the traceability plugin alone
    cfg = build_config(raw, base_dir=EXAMPLE, plugin_names=("traceability",))
    result = run_audit(cfg, available={"traceability": TraceabilityPlugin}, cwd=tmp_path)
    t = result.plugin("traceability")
    effect = {m.feature: m for m in t.metrics if m.id == "drift_effect"}
    assert "drift_large" in effect["modality"].flags and "drift_large" in effect["manufacturer"].flags
    assert effect["age"].flags == () and effect["sex"].flags == ()
    [score] = [m for m in t.metrics if m.id == "score_drift_effect"]
    assert score.flags == ()
    [auc] = [m for m in t.metrics if m.id == "auroc_change"]
    assert auc.ci[0] < 0 < auc.ci[1] and auc.ci[0] > -0.05
    [domain] = [m for m in t.metrics if m.id == "domain_auroc"]
    assert 0.7 < domain.value < 0.8 and domain.ci[0] > 0.5
    windows = [m for m in t.metrics if m.id == "n" and m.group]
    assert len(windows) >= 40 and {f.id: f for f in t.findings}["feature_drift"].status == Status.WARN
