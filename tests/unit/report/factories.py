"""Hand-built AuditResult factories for the renderer tests.

The fairness result has groups F, M, a hostile group name, a suppressed group ("X", with the
distinctive values 0.123456 / n=7 / 5 positives that must never reach a human-readable report)
and a group whose FNR is undefined ("U", no positives).
"""

from __future__ import annotations

from audit.core.results import (
    AuditResult,
    Finding,
    GateCheck,
    GateResult,
    Metric,
    PluginResult,
    Status,
)

EVIL = "<script>alert(1)</script>"
SUPPRESSED_VALUE = 0.123456  # "12.3%" / "0.123" must not appear outside JSON
SUPPRESSED_N = 7
SUPPRESSED_P = 0.0271828
SHA_DATA = "ab" * 32
SHA_MODEL = "cd" * 32


def group_metrics(group, n, pos, fnr, fnr_ci, auroc, *, suppressed=False, reason=None, flags=()):
    common = {"n": n, "group": group, "suppressed": suppressed, "flags": flags}
    metrics = [
        Metric("prevalence", pos / n, ci_method="wilson", level=0.95, **common),
        Metric(
            "fnr",
            fnr,
            ci=fnr_ci,
            ci_method="wilson",
            level=0.95,
            denominator=pos,
            reason=reason,
            **common,
        ),
        Metric(
            "sensitivity",
            None if fnr is None else 1 - fnr,
            ci=None if fnr_ci is None else (1 - fnr_ci[1], 1 - fnr_ci[0]),
            denominator=pos,
            reason=reason,
            **common,
        ),
        Metric("auroc", auroc, ci=None if auroc is None else (auroc - 0.05, auroc + 0.04), **common),
    ]
    return metrics


def make_fairness(**overrides) -> PluginResult:
    metrics = [
        *group_metrics(None, 400, 120, 0.20, (0.14, 0.28), 0.861),
        *group_metrics({"sex": "F"}, 180, 60, 0.25, (0.158, 0.371), 0.842),
        *group_metrics({"sex": "M"}, 170, 50, 0.14, (0.07, 0.26), 0.877, flags=("under_powered",)),
        *group_metrics({"sex": EVIL}, 30, 10, 0.30, (0.108, 0.603), 0.701),
        *group_metrics(
            {"sex": "X"},
            SUPPRESSED_N,
            5,
            SUPPRESSED_VALUE,
            (0.0111, 0.5999),
            0.654321,
            suppressed=True,
        ),
        *group_metrics({"sex": "U"}, 13, 0, None, None, None, reason="no positives"),
        Metric(
            "fnr_gap",
            0.11,
            n=180,
            group={"sex": "F"},
            ci=(0.02, 0.2),
            reference="best",
            reference_group={"sex": "M"},
            p_value=0.0123,
            p_adjusted=0.0369,
        ),
        Metric(
            "fnr_gap",
            SUPPRESSED_VALUE,
            n=SUPPRESSED_N,
            group={"sex": "X"},
            ci=(-0.1, 0.4),
            reference="best",
            reference_group={"sex": "M"},
            p_value=SUPPRESSED_P,
            p_adjusted=SUPPRESSED_P,
            suppressed=True,
        ),
        Metric(
            "fnr_gap_overall",
            0.05,
            n=180,
            group={"sex": "F"},
            ci=(-0.01, 0.11),
            reference="overall",
            p_value=0.0004,
            p_adjusted=0.2,
        ),
    ]
    fields = {
        "plugin": "fairness",
        "principle": "Fairness",
        "version": "0.1.0",
        "status": Status.FAIL,
        "summary": "Women are underdiagnosed: FNR 25.0% vs 14.0% for men.",
        "metrics": metrics,
        "findings": [
            Finding(
                "fnr_gap_sex",
                "Underdiagnosis gap by sex",
                Status.FAIL,
                "The model misses 11 more patients per 100 among women than among men.",
                metric="fnr_gap",
                group={"sex": "F"},
                threshold=0.05,
                checklist=("CLAIM-2024:38", "FUTURE-AI:Fairness 3"),
            ),
            Finding(
                "fnr_undefined",
                "FNR undefined",
                Status.INCONCLUSIVE,
                f"FNR cannot be computed for sex={EVIL}|U: no positives.",
                metric="fnr",
            ),
        ],
        "settings": {
            "threshold": 0.42,
            "threshold_method": "Youden index on the validation split",
            "ci_method": {"rates": "wilson", "auroc": "bootstrap"},
            "level": 0.95,
            "test": "two-proportion z-test",
            "correction": "holm",
            "n_bootstrap": 2000,
            "random_state": 20240501,
            "min_group_size": 30,
            "min_positives": 10,
            "sensitive_features": ["sex"],
        },
        "warnings": ("Group 'U' has no positives.",),
        "checklist": ("CLAIM-2024:38",),
    }
    fields.update(overrides)
    return PluginResult(**fields)


def make_gates() -> tuple[GateResult, ...]:
    return (
        GateResult(
            expression="fairness.fnr_gap<=0.05",
            metric="fairness.fnr_gap",
            operator="<=",
            threshold=0.05,
            policy="all",
            status=Status.FAIL,
            message="fnr_gap is above 0.05 for sex=F.",
            checks=(
                GateCheck({"sex": "F"}, 0.11, (0.02, 0.2), Status.FAIL, reference="best"),
                GateCheck(
                    {"sex": "X"},
                    SUPPRESSED_VALUE,
                    (-0.1, 0.4),
                    Status.INCONCLUSIVE,
                    reference="best",
                    suppressed=True,
                ),
            ),
        ),
        GateResult(
            expression="fairness.auroc>=0.7",
            metric="fairness.auroc",
            operator=">=",
            threshold=0.7,
            policy="all",
            status=Status.PASS,
            message="auroc is at least 0.7 in every group.",
            checks=(GateCheck({"sex": "F"}, 0.842, (0.79, 0.88), Status.PASS),),
        ),
        GateResult(
            expression="fairness.fnr<=0.3",
            metric="fairness.fnr",
            operator="<=",
            threshold=0.3,
            policy="all",
            status=Status.INCONCLUSIVE,
            message="The interval for sex=F straddles 0.3.",
            checks=(GateCheck({"sex": "F"}, 0.25, (0.158, 0.371), Status.INCONCLUSIVE),),
        ),
        GateResult(
            expression="fairness.brier<=0.2",
            metric="fairness.brier",
            operator="<=",
            threshold=0.2,
            policy="all",
            status=Status.ERROR,
            message="brier could not be evaluated.",
        ),
    )


def make_result(**overrides) -> AuditResult:
    fields = {
        "plugins": (make_fairness(),),
        "gates": make_gates(),
        "provenance": {
            "tool": {"name": "future-audit", "version": "0.1.0"},
            "started": "2024-05-01T10:00:00+00:00",
            "finished": "2024-05-01T10:00:12.500000+00:00",
            "seed": 20240501,
            "data": {"file": "test <v2>.csv", "path": "/data/test <v2>.csv", "sha256": SHA_DATA, "rows_used": 433},
            "reference": None,
            "model": {"kind": "sklearn", "source": "model.skops", "sha256": SHA_MODEL},
            "versions": {"future-audit": "0.1.0", "numpy": "1.26.4"},
            "plugins_installed": {"fairness": "0.1.0"},
            "environment": {"python": "3.11.9", "platform": "Linux-6.1-x86_64"},
            "git": {"commit": "0123456789abcdef", "dirty": False},
        },
        "config": {"fail_on": ["FAIL"], "report": {"min_cell": 10}},
        "data_summary": {"rows": 433, "columns": ["sex", "y_true", "y_score"]},
        "warnings": ("Column 'age' has 3 missing values.",),
        "status": Status.FAIL,
        "exit_code": 1,
    }
    fields.update(overrides)
    return AuditResult(**fields)


def make_many_groups(n_groups: int = 50) -> AuditResult:
    """A result with ``n_groups`` sites and as many site × sex groups (report size check)."""
    metrics = group_metrics(None, 5000, 1000, 0.2, (0.18, 0.22), 0.85)
    for i in range(n_groups):
        fnr = 0.1 + i / (4 * n_groups)
        ci = (fnr - 0.05, fnr + 0.1)
        metrics += group_metrics({"site": f"hospital-{i:02d}"}, 100, 20, fnr, ci, 0.8)
        group = {"site": f"hospital-{i:02d}", "sex": "F" if i % 2 else "M"}
        metrics += group_metrics(group, 50, 12, fnr, ci, 0.8)
    return make_result(plugins=(make_fairness(metrics=metrics),))


def make_multilabel() -> AuditResult:
    """Multi-label mode: a per-label FNR and the label-free underdiagnosis rate."""
    metrics = []
    for group, value in ((None, 0.2), ({"sex": "F"}, 0.26), ({"sex": "M"}, 0.15)):
        metrics.append(Metric("underdiagnosis_rate", value, n=300, group=group, ci=(value - 0.05, value + 0.05)))
        for label in ("Effusion", "Edema"):
            metrics.append(
                Metric("fnr", value / 2, n=300, group=group, ci=(0.01, 0.3), label=label, denominator=40)
            )
    plugin = make_fairness(metrics=metrics, findings=(), summary="Multi-label audit.")
    return make_result(plugins=(plugin,), gates=())


LONG_GROUP = "St_Elisabeth_University_Teaching_Hospital_Northern_Campus_B12"  # 61 characters


def make_long_names() -> AuditResult:
    """A group name of 61 characters without a break opportunity (PDF clipping check)."""
    metrics = [
        *group_metrics(None, 400, 120, 0.20, (0.14, 0.28), 0.861),
        *group_metrics({"site": LONG_GROUP}, 200, 60, 0.25, (0.158, 0.371), 0.842),
        *group_metrics({"site": "short"}, 200, 60, 0.15, (0.08, 0.24), 0.88),
        Metric("fnr_gap", 0.10, n=200, group={"site": LONG_GROUP}, ci=(0.01, 0.2), reference="best",
               reference_group={"site": "short"}, p_value=0.03, p_adjusted=0.03),
    ]
    return make_result(plugins=(make_fairness(metrics=metrics),), gates=())


def demo_raw(example_dir, *, bootstrap: int = 200, threshold: float | None = None,
             predictions_only: bool = False, attestations=None) -> dict:
    """examples/covid_testing/audit.toml, made faster: fewer bootstrap replicates, optionally a
    fixed threshold and the stored scores instead of the model."""
    import tomllib

    raw = tomllib.loads((example_dir / "audit.toml").read_text(encoding="utf-8"))
    raw["fairness"]["bootstrap"] = bootstrap
    if threshold is not None:
        raw["fairness"]["threshold"] = threshold
    if predictions_only:
        raw.pop("model", None)
        raw["data"].pop("features", None)
        raw["data"]["score"] = "p_covid"
    raw["report"].pop("out", None)
    raw["report"].pop("attestations", None)
    if attestations is not None:
        raw["report"]["attestations"] = str(attestations)
    return raw
