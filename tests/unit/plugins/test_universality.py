"""The universality plugin against independent references: sklearn for per-site AUROC and
Brier, statsmodels' combine_effects for the pooled figures, hand computations for the
transfer, and the bad inputs of the issue (one site, no positives, unknown development site)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special
from sklearn.metrics import brier_score_loss, roc_auc_score

from audit.core.config import build_config
from audit.core.results import Status
from audit.core.runner import run_audit
from audit.errors import ConfigError
from audit.plugins.universality import UniversalityPlugin, _weighted_ovr_auroc
from audit.stats import auroc_influence, influence_se

AVAILABLE = {"universality": UniversalityPlugin}


def sites_frame(seed=3, sizes=(400, 300, 250, 200), shifts=(0.0, 0.3, -0.4, 0.8)):
    """Four sites whose score quality differs by construction; one row per patient."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, (n, shift) in enumerate(zip(sizes, shifts, strict=True)):
        y = rng.binomial(1, 0.3, n)
        logit = -0.8 + (1.6 - shift) * (y - 0.3) + rng.normal(0, 1, n)
        parts.append(pd.DataFrame({"site": f"S{k}", "y": y, "p": special.expit(logit).round(6),
                                   "age": rng.normal(50 + 5 * k, 10, n).round(1),
                                   "sex": rng.choice(["F", "M"], n)}))
    frame = pd.concat(parts, ignore_index=True)
    frame["patient_id"] = [f"P{i:05d}" for i in range(len(frame))]
    return frame


def audit(tmp_path, frame, universality=None, **data):
    frame.to_csv(tmp_path / "d.csv", index=False)
    raw = {"data": {"path": "d.csv", "label": "y", "score": "p", "site": "site", "id": "patient_id", **data},
           "universality": {"threshold": 0.45, "transfer_bootstrap": 50, **(universality or {})},
           "report": {"min_cell": 10}}
    cfg = build_config(raw, base_dir=tmp_path, plugin_names=("universality",))
    return run_audit(cfg, available=AVAILABLE, cwd=tmp_path).plugin("universality")


def one(result, mid, site=None):
    [m] = [m for m in result.metrics if m.id == mid and (m.group == ({"site": site} if site else None))]
    return m


def test_per_site_auroc_and_brier_equal_sklearn(tmp_path):
    frame = sites_frame()
    r = audit(tmp_path, frame)
    assert r.status != Status.ERROR, r.error
    for site, part in frame.groupby("site"):
        assert one(r, "auroc", site).value == pytest.approx(roc_auc_score(part.y, part.p), abs=1e-9)
        assert one(r, "brier", site).value == pytest.approx(brier_score_loss(part.y, part.p), abs=1e-9)
        tp = ((part.p >= 0.45) & (part.y == 1)).sum()
        assert one(r, "sensitivity", site).value == pytest.approx(tp / part.y.sum(), abs=1e-12)
    # The largest site is the development site when nothing else is given.
    assert r.settings["development_site"] == "S0"
    gap = one(r, "auroc_gap", "S3")
    expected = roc_auc_score(frame.y[frame.site == "S0"], frame.p[frame.site == "S0"]) - \
        roc_auc_score(frame.y[frame.site == "S3"], frame.p[frame.site == "S3"])
    assert gap.reference == "development" and gap.reference_group == {"site": "S0"}
    assert gap.value == pytest.approx(max(0.0, expected), abs=1e-9) and gap.ci[0] <= gap.value <= gap.ci[1]
    assert gap.p_adjusted is not None and gap.p_adjusted >= gap.p_value
    assert not [m for m in r.metrics if m.id.endswith("_gap") and m.group == {"site": "S0"}]


def test_pooled_auroc_equals_statsmodels(tmp_path):
    from statsmodels.stats.meta_analysis import combine_effects

    frame = sites_frame()
    r = audit(tmp_path, frame, universality={"hartung_knapp": False, "meta_method": "dl"})
    est, var = [], []
    for _, part in frame.groupby("site"):
        auc, psi = auroc_influence(part.y.to_numpy(), part.p.to_numpy())
        se = influence_se(psi)
        est.append(special.logit(auc))
        var.append((se / (auc * (1 - auc))) ** 2)
    res = combine_effects(np.array(est), np.array(var), method_re="dl")
    pooled = one(r, "auroc_pooled")
    assert pooled.value == pytest.approx(special.expit(res.mean_effect_re), abs=1e-9)
    lo, hi = res.conf_int(use_t=False)[1]  # rows: fixed effect, random effects, then the WLS variants
    assert pooled.ci == pytest.approx((special.expit(lo), special.expit(hi)), abs=1e-9)
    assert one(r, "auroc_tau2").value == pytest.approx(max(res.tau2, 0.0), abs=1e-12)
    assert one(r, "auroc_q").value == pytest.approx(res.q, rel=1e-9)
    assert pooled.n == 4
    low, high = one(r, "auroc_pi_low").value, one(r, "auroc_pi_high").value
    assert low < pooled.ci[0] <= pooled.value <= pooled.ci[1] < high


def test_transfer_loss_by_hand(tmp_path):
    frame = sites_frame()
    r = audit(tmp_path, frame, universality={"operating_point": "sensitivity:0.8"})
    for site, part in frame.groupby("site"):
        y, s = part.y.to_numpy(), part.p.to_numpy()
        pos = np.sort(s[y == 1])
        # The largest threshold with sensitivity >= 0.8: a score of the positives.
        own = max(t for t in pos if (pos >= t).mean() >= 0.8)
        assert one(r, "threshold_own", site).value == pytest.approx(own, abs=1e-12)
        sens = lambda t: (s[y == 1] >= t).mean()  # noqa: E731
        spec = lambda t: (s[y == 0] < t).mean()  # noqa: E731
        loss = one(r, "sensitivity_transfer_loss", site)
        assert loss.value == pytest.approx(sens(own) - sens(0.45), abs=1e-12)
        assert one(r, "specificity_transfer_loss", site).value == pytest.approx(spec(own) - spec(0.45), abs=1e-12)
        assert loss.ci[0] <= loss.value <= loss.ci[1]


def test_one_site_is_skipped_with_the_reason(tmp_path):
    frame = sites_frame().assign(site="A")
    r = audit(tmp_path, frame)
    assert r.status == Status.SKIPPED and "one site" in r.summary and "'A'" in r.summary


def test_no_site_column_is_skipped(tmp_path):
    frame = sites_frame()
    frame.to_csv(tmp_path / "d.csv", index=False)
    raw = {"data": {"path": "d.csv", "label": "y", "score": "p"}}
    r = run_audit(build_config(raw, base_dir=tmp_path, plugin_names=("universality",)), available=AVAILABLE,
                  cwd=tmp_path).plugin("universality")
    assert r.status == Status.SKIPPED and "site column" in r.summary


def test_a_site_without_positives_is_undefined_and_not_pooled(tmp_path):
    frame = sites_frame()
    frame.loc[frame.site == "S2", "y"] = 0
    r = audit(tmp_path, frame)
    auroc = one(r, "auroc", "S2")
    assert auroc.value is None and "one class" in auroc.reason
    assert one(r, "sensitivity", "S2").value is None
    assert one(r, "auroc_pooled").n == 3  # S2 left out of the pooling
    assert one(r, "sensitivity_transfer_loss", "S2").value is None


def test_an_unknown_development_site_names_the_valid_ones(tmp_path):
    frame = sites_frame()
    frame.loc[:4, "site"] = "tiny"  # a site of 5 rows is not named
    with pytest.raises(ConfigError, match=r"'Z' is not a site.*Sites: S0, S1, S2, S3 and 1 site\(s\) of fewer than 10"):
        audit(tmp_path, frame, universality={"development_site": "Z"})


def test_small_sites_are_suppressed_and_under_powered(tmp_path):
    frame = sites_frame()
    frame.loc[:6, "site"] = "tiny"
    r = audit(tmp_path, frame)
    # Its label is withheld too, as for any group of fewer than min_cell patients.
    assert not [m for m in r.metrics if m.group and m.group.get("site") == "tiny"]
    tiny = [m for m in r.metrics if m.group == {"site": "(small group 1)"}]
    assert tiny and all(m.suppressed and m.value is None for m in tiny)
    assert one(r, "n", "(small group 1)").value is None


def test_site_identifiability_from_features():
    from audit.plugins.universality import UniversalityParams, _site_auroc

    frame = sites_frame()
    ids = np.arange(len(frame))
    value, ci, n = _site_auroc(frame[["age", "sex"]], frame.site.to_numpy(), ids, UniversalityParams(), 0)
    # Age differs by site by construction (means 50, 55, 60, 65): clearly above chance, far from 1.
    assert 0.6 < value < 0.9 and ci[0] < value < ci[1] and n == len(frame)
    noise = frame.assign(age=np.random.default_rng(0).normal(50, 10, len(frame)))
    value, ci, _ = _site_auroc(noise[["age", "sex"]], frame.site.to_numpy(), ids, UniversalityParams(), 0)
    assert ci[0] < 0.55 and 0.4 < value < 0.6  # nothing to tell the sites apart


def test_identifiability_reads_named_inputs_in_a_predictions_only_audit(tmp_path):
    # Features named in a predictions-only audit are read (since schema 1.4): the site
    # classifier uses them although no model is called. Age differs by site here.
    r = audit(tmp_path, sites_frame(), features=["age", "sex"])
    m = one(r, "site_identifiability_auroc")
    assert 0.5 < m.value < 1 and m.ci[0] < m.value < m.ci[1] and "2 input feature(s)" in m.ci_method


def test_weighted_one_vs_rest_auroc_equals_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    proba = rng.dirichlet(np.ones(4), 300)
    proba[np.arange(300), y] += 0.4
    proba = np.round(proba / proba.sum(axis=1, keepdims=True), 2)  # ties
    proba = proba / proba.sum(axis=1, keepdims=True)
    auc, psi = _weighted_ovr_auroc(y, proba, [0, 1, 2, 3], 4)
    assert auc == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="weighted"), abs=1e-12)
    assert psi.shape == (300,) and abs(psi.sum()) < 1e-9  # influence values sum to 0
    two = y % 2
    auc2, _ = _weighted_ovr_auroc(two, proba[:, :2], [0, 1], 2)
    assert auc2 == pytest.approx(roc_auc_score(two, proba[:, 1]), abs=1e-12)


def test_site_identifiability_interval_covers_chance_when_sites_do_not_differ():
    """No site effect: every fold's model has AUROC 0.5 on held-out rows, so the interval must
    cover 0.5. Small sites (40 patients each, 3 sites) and two patients' rows clustered.
    The bootstrap of pooled out-of-fold predictions this replaced covered 84% (domain case)."""
    from audit.plugins.universality import UniversalityParams, _site_auroc

    rng = np.random.default_rng(11)
    hits, reps = 0, 100
    for _ in range(reps):
        n = 120
        patients = np.repeat(np.arange(n // 2), 2)  # two rows per patient, same site
        site = np.repeat(rng.choice(["A", "B", "C"], n // 2), 2)
        X = pd.DataFrame({"age": rng.normal(50, 10, n), "bmi": rng.normal(25, 4, n),
                          "sex": rng.choice(["F", "M"], n)})
        _, ci, _ = _site_auroc(X, site, patients, UniversalityParams(), int(rng.integers(1 << 30)))
        hits += ci[0] <= 0.5 <= ci[1]
    assert hits / reps >= 0.92, hits / reps
