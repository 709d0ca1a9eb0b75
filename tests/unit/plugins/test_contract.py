"""Every installed plugin passes check_plugin, and check_plugin catches broken plugins."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from audit.core.results import Metric, PluginResult, Status
from audit.errors import ConfigError, PluginLoadError
from audit.plugins.base import AuditPlugin, discover_plugins, make_params, verify_plugin
from audit.testing import check_plugin


@pytest.mark.parametrize("name", sorted(discover_plugins()))
def test_installed_plugins_pass_the_contract(name):
    cls = discover_plugins()[name]
    raw = {"fairness": {"bootstrap": 200}, "traceability": {"window": "14"}}.get(name)
    params = make_params(cls, raw) if raw else None
    result = check_plugin(cls, params)
    if name == "robustness":
        # The toy context is predictions-only: nothing to perturb (tested in test_robustness).
        assert result.status == Status.SKIPPED and "predictions" in result.summary
    else:
        assert result.metrics


class _Good(AuditPlugin):
    name = "toy"
    principle = "Robustness"
    version = "1"
    metrics = ("score_mean",)

    @dataclass(frozen=True)
    class Params:
        scale: float = 1.0

    def run(self, ctx):
        value = float(ctx.predictions().mean()) * self.params.scale
        return PluginResult(self.name, self.principle, self.version, Status.PASS, "ok",
                            metrics=(Metric("score_mean", value, n=ctx.data.n_rows),))


def test_check_plugin_accepts_a_good_plugin():
    assert check_plugin(_Good).metrics[0].id == "score_mean"


def test_check_plugin_catches_undeclared_metrics():
    class Bad(_Good):
        metrics = ("other",)

    with pytest.raises(AssertionError, match="not declared"):
        check_plugin(Bad)


def test_verify_plugin_names_the_plugin():
    class NoParamsDefault(_Good):
        @dataclass(frozen=True)
        class Params:
            scale: float

    with pytest.raises(PluginLoadError, match="Plugin 'toy'.*needs a default"):
        verify_plugin(NoParamsDefault)

    class BadPrinciple(_Good):
        principle = "Speed"

    with pytest.raises(PluginLoadError, match="principle"):
        verify_plugin(BadPrinciple)


def test_make_params_checks_names_and_types():
    with pytest.raises(ConfigError, match=r"Unknown key 'toy.scal'. Valid keys: scale"):
        make_params(_Good, {"scal": 2})
    with pytest.raises(ConfigError, match=r"toy.scale: expected a number"):
        make_params(_Good, {"scale": "big"})
    assert make_params(_Good, {"scale": 2}).scale == 2.0
