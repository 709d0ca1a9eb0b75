"""Helpers for plugin authors: a toy audit context and ``check_plugin`` (like scikit-learn's
``check_estimator``).

    from audit.testing import check_plugin
    check_plugin(MyPlugin)          # raises AssertionError naming the broken rule
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from audit.core.config import build_config
from audit.core.context import AuditContext
from audit.core.results import AuditResult, PluginResult, Status
from audit.io.models import load_model
from audit.io.tables import load_dataset
from audit.plugins.base import verify_plugin

__all__ = ["check_plugin", "toy_context", "toy_frame"]


def toy_frame(n: int = 600, random_state: int = 0) -> pd.DataFrame:
    """A small table with a patient id, two sensitive attributes, a site, a day number, a label
    and a score."""
    rng = np.random.default_rng(random_state)
    y = rng.binomial(1, 0.3, n)
    return pd.DataFrame({
        "patient_id": [f"T{i // 2:05d}" for i in range(n)],
        "sex": rng.choice(["F", "M"], n),
        "age_band": rng.choice(["0-40", "40-65", "65+"], n),
        "site": rng.choice(["A", "B", "C"], n),
        "visit_day": np.sort(rng.integers(0, 90, n)),
        "y": y,
        "p": np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.2, n), 0, 1).round(6),
    })


def toy_context(folder: Path | None = None, frame: pd.DataFrame | None = None) -> AuditContext:
    """An AuditContext over :func:`toy_frame` in predictions-only mode."""
    folder = Path(folder or tempfile.mkdtemp(prefix="future-audit-toy-"))
    path = folder / "toy.csv"
    (toy_frame() if frame is None else frame).to_csv(path, index=False)
    raw = {"data": {"path": str(path), "label": "y", "score": "p", "id": "patient_id",
                    "sensitive": ["sex", "age_band"], "site": "site", "time": "visit_day"},
           "run": {"seed": 0}}  # a fixed seed: check_plugin compares two runs
    cfg = build_config(raw, base_dir=folder)
    data = load_dataset(path, cfg.data, name="data", need_features=False, need_scores=True)
    model = load_model(None, score_columns=cfg.data.score)
    return AuditContext(config=cfg, data=data, model=model)


def check_plugin(plugin_cls, params=None) -> PluginResult:
    """Check a plugin class against the contract and run it on toy data.

    Checks: the class attributes and ``Params`` (frozen, defaults everywhere); ``run`` returns
    a PluginResult carrying the plugin's name, principle and version; every metric id it
    produced is declared in ``metrics``; values are finite or None with a reason; intervals
    contain their estimate; the result survives a JSON round trip; the same seed gives the
    same result.
    """
    verify_plugin(plugin_cls)
    plugin = plugin_cls(params)
    assert dataclasses.is_dataclass(plugin.params), f"{plugin_cls.name}: params must be a dataclass instance"
    with tempfile.TemporaryDirectory() as tmp:
        ctx = toy_context(Path(tmp))
        result = plugin.run(ctx)
        again = plugin_cls(params).run(toy_context(Path(tmp)))
    name = plugin_cls.name
    assert isinstance(result, PluginResult), f"{name}: run() must return a PluginResult"
    assert (result.plugin, result.principle, result.version) == (name, plugin_cls.principle, plugin_cls.version), \
        f"{name}: the result must carry the plugin's name, principle and version"
    assert result.status != Status.ERROR, f"{name}: run() reported ERROR on toy data: {result.error}"
    undeclared = sorted({m.id for m in result.metrics} - set(plugin_cls.metrics))
    assert not undeclared, f"{name}: metric ids not declared in `metrics`: {undeclared}"
    for m in result.metrics:
        if m.value is None:
            assert m.reason, f"{name}: metric {m.id} is undefined without a reason"
        if m.ci is not None and m.value is not None:
            lo, hi = m.ci
            assert lo <= hi, f"{name}: metric {m.id} has an interval with low > high"
            assert lo - 1e-9 <= m.value <= hi + 1e-9 or m.reference is not None, \
                f"{name}: metric {m.id} ({m.group_label}) lies outside its own interval"
    wrapped = AuditResult(plugins=(result,))
    assert AuditResult.from_json(wrapped.to_json()) == wrapped, f"{name}: the result does not round-trip through JSON"
    assert again == result, f"{name}: two runs with the same seed differ"
    return result
