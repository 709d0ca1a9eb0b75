"""The fairness plugin: every number against sklearn, fairlearn or a hand computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate
from sklearn import metrics as skm

from audit.core.config import build_config
from audit.core.results import Status
from audit.core.runner import run_audit
from audit.errors import ConfigError


def audit_frame(frame, path, *, label="y", score="p", sensitive=("sex",), fairness=None, id=None, gates=(),
                data_extra=None, reference=None, report=None):
    """Audit ``frame``; small-cell suppression is off (min_cell 1, small numerators kept) unless
    ``report`` sets it, so that hand-computed values can be checked."""
    frame.to_csv(path, index=False)
    data = {"path": str(path), "label": label, "score": score, "sensitive": list(sensitive)}
    if id:
        data["id"] = id
    if reference is not None:
        ref_path = Path(path).with_name("reference.csv")
        reference.to_csv(ref_path, index=False)
        data["reference"] = str(ref_path)
    data.update(data_extra or {})
    raw = {"data": data, "fairness": dict(fairness or {}),
           "report": report or {"min_cell": 1, "keep_small_numerators": True}}
    cfg = build_config(raw, base_dir=Path(path).parent, plugin_names=("fairness",), flags={"gates": list(gates)})
    return run_audit(cfg)


def value(result, metric_id, group=None, label=None, reference=None):
    found = [m for m in result.plugin("fairness").metrics
             if m.id == metric_id and m.group == group and m.label == label and m.reference == reference]
    assert len(found) == 1, (metric_id, group, found)
    return found[0]


def test_hand_computed_metrics(tmp_path):
    # Group F: y=[1,1,1,0,0], p=[.9,.6,.2,.7,.1] at 0.5 -> TP=2 FN=1 FP=1 TN=1
    # Group M: y=[1,0,0,0],   p=[.8,.3,.4,.6]   at 0.5 -> TP=1 FN=0 FP=1 TN=2
    frame = pd.DataFrame({
        "sex": list("FFFFF") + list("MMMM"),
        "y": [1, 1, 1, 0, 0, 1, 0, 0, 0],
        "p": [0.9, 0.6, 0.2, 0.7, 0.1, 0.8, 0.3, 0.4, 0.6],
    })
    r = audit_frame(frame, tmp_path / "d.csv", fairness={"threshold": 0.5, "min_group_n": 1, "min_positives": 1})
    F = {"sex": "F"}
    assert value(r, "n", F).value == 5
    assert value(r, "positives", F).value == 3
    assert value(r, "prevalence", F).value == pytest.approx(3 / 5, abs=1e-15)
    assert value(r, "sensitivity", F).value == pytest.approx(2 / 3, abs=1e-15)
    assert value(r, "fnr", F).value == pytest.approx(1 / 3, abs=1e-15)
    assert value(r, "specificity", F).value == pytest.approx(1 / 2, abs=1e-15)
    assert value(r, "fpr", F).value == pytest.approx(1 / 2, abs=1e-15)
    assert value(r, "ppv", F).value == pytest.approx(2 / 3, abs=1e-15)
    assert value(r, "npv", F).value == pytest.approx(1 / 2, abs=1e-15)
    # AUROC of F: positives .9 .6 .2 vs negatives .7 .1 -> pairs won: (.9>.7,.9>.1,.6>.1,.2>.1) = 4/6
    assert value(r, "auroc", F).value == pytest.approx(4 / 6, abs=1e-15)
    brier_f = np.mean((np.array([0.9, 0.6, 0.2, 0.7, 0.1]) - np.array([1, 1, 1, 0, 0])) ** 2)
    assert value(r, "brier", F).value == pytest.approx(brier_f, abs=1e-15)
    M = {"sex": "M"}
    assert value(r, "fnr", M).value == 0.0
    assert value(r, "fpr", M).value == pytest.approx(1 / 3, abs=1e-15)
    # Gaps: positive = worse. FNR best group is M (0); F is 1/3 worse.
    gap = value(r, "fnr_gap", F, reference="best")
    assert gap.value == pytest.approx(1 / 3, abs=1e-15)
    assert gap.reference_group == M
    overall_fnr = 1 / 4
    assert value(r, "fnr_gap_overall", F, reference="overall").value == pytest.approx(1 / 3 - overall_fnr, abs=1e-15)
    # Sensitivity (higher is better): gap of F to the best (M, 1.0) is 1 - 2/3.
    assert value(r, "sensitivity_gap", F, reference="best").value == pytest.approx(1 / 3, abs=1e-15)
    assert value(r, "threshold").value == 0.5


def test_equals_sklearn_and_fairlearn_on_real_data(tmp_path, example_dir):
    frame = pd.read_csv(example_dir / "test.csv")
    r = audit_frame(frame, tmp_path / "d.csv", label="covid", score="p_covid", sensitive=("gender",),
                    fairness={"threshold": 0.05})
    y, s = frame["covid"].to_numpy(), frame["p_covid"].to_numpy()
    pred = (s >= 0.05).astype(int)
    mf = MetricFrame(
        metrics={"fnr": false_negative_rate, "fpr": false_positive_rate, "recall": skm.recall_score,
                 "precision": skm.precision_score},
        y_true=y, y_pred=pred, sensitive_features=frame["gender"].astype(str),
    )
    for g, row in mf.by_group.iterrows():
        grp = {"gender": str(g)}
        assert value(r, "fnr", grp).value == pytest.approx(row["fnr"], abs=1e-12)
        assert value(r, "fpr", grp).value == pytest.approx(row["fpr"], abs=1e-12)
        assert value(r, "sensitivity", grp).value == pytest.approx(row["recall"], abs=1e-12)
        assert value(r, "ppv", grp).value == pytest.approx(row["precision"], abs=1e-12)
        mask = frame["gender"].astype(str).to_numpy() == str(g)
        assert value(r, "auroc", grp).value == pytest.approx(skm.roc_auc_score(y[mask], s[mask]), abs=1e-12)
        assert value(r, "brier", grp).value == pytest.approx(skm.brier_score_loss(y[mask], s[mask]), abs=1e-12)
        tn, fp, fn, tp = skm.confusion_matrix(y[mask], pred[mask], labels=[0, 1]).ravel()
        assert value(r, "specificity", grp).value == pytest.approx(tn / (tn + fp), abs=1e-12)
        assert value(r, "npv", grp).value == pytest.approx(tn / (tn + fn), abs=1e-12)
    assert value(r, "fnr").value == pytest.approx(mf.overall["fnr"], abs=1e-12)
    assert value(r, "auroc").value == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_multilabel_underdiagnosis_hand_computed(tmp_path):
    # Two findings a, b. "No finding" derived: true NF = no positive finding; predicted NF = no
    # finding predicted (score >= 0.5). Group F rows:
    #  a b | pa  pb  -> has finding? predicted NF?
    #  1 0 | .2  .1  -> yes, NF predicted   (underdiagnosed)
    #  0 1 | .1  .9  -> yes, not NF
    #  1 1 | .3  .2  -> yes, NF predicted   (underdiagnosed)
    #  0 0 | .1  .1  -> no finding
    # -> F: 2 of 3 cases with a finding called "no finding" = 2/3. Group M:
    #  1 0 | .8  .1  -> yes, not NF
    #  0 0 | .6  .1  -> no finding, not NF (overdiagnosed)
    #  0 1 | .1  .2  -> yes, NF predicted
    # -> M: 1/2; overdiagnosis M = 1/1.
    frame = pd.DataFrame({
        "sex": list("FFFF") + list("MMM"),
        "a": [1, 0, 1, 0, 1, 0, 0], "b": [0, 1, 1, 0, 0, 0, 1],
        "pa": [.2, .1, .3, .1, .8, .6, .1], "pb": [.1, .9, .2, .1, .1, .1, .2],
    })
    r = audit_frame(frame, tmp_path / "d.csv", label=["a", "b"], score=["pa", "pb"],
                    fairness={"threshold": 0.5, "min_group_n": 1, "min_positives": 1})
    assert value(r, "underdiagnosis_rate", {"sex": "F"}).value == pytest.approx(2 / 3, abs=1e-15)
    assert value(r, "underdiagnosis_rate", {"sex": "M"}).value == pytest.approx(1 / 2, abs=1e-15)
    assert value(r, "overdiagnosis_rate", {"sex": "M"}).value == pytest.approx(1.0)
    assert value(r, "underdiagnosis_rate").value == pytest.approx(3 / 5, abs=1e-15)
    # Per-label FNR of finding a in group F: a=1 rows have pa .2 .3 -> both missed.
    assert value(r, "fnr", {"sex": "F"}, label="a").value == 1.0
    assert r.plugin("fairness").settings["mode"] == "multi-label"


def test_multilabel_with_given_no_finding_label(tmp_path):
    # NF label given: underdiagnosis = FPR of the NF label = P(pred NF | true NF = 0).
    frame = pd.DataFrame({
        "sex": ["F"] * 4 + ["M"] * 4,
        "nf": [0, 0, 0, 1, 0, 0, 1, 1],
        "a": [1, 1, 1, 0, 1, 1, 0, 0],
        "pnf": [.9, .2, .7, .8, .1, .2, .9, .4],
        "pa": [.5] * 8,
    })
    r = audit_frame(frame, tmp_path / "d.csv", label=["nf", "a"], score=["pnf", "pa"],
                    fairness={"threshold": 0.5, "no_finding_label": "nf", "min_group_n": 1, "min_positives": 1})
    assert value(r, "underdiagnosis_rate", {"sex": "F"}).value == pytest.approx(2 / 3)
    assert value(r, "underdiagnosis_rate", {"sex": "M"}).value == 0.0


def test_group_without_positives_is_undefined_not_zero(tmp_path, toy_frame):
    frame = toy_frame.copy()
    frame.loc[frame["race"] == "asian", "y"] = 0
    private = {"min_cell": 1, "keep_small_numerators": True, "full_record": True}
    r = audit_frame(frame, tmp_path / "d.csv", sensitive=("race",), fairness={"threshold": 0.5}, report=private)
    m = value(r, "fnr", {"race": "asian"})
    assert m.value is None and "no positive" in m.reason
    a = value(r, "auroc", {"race": "asian"})
    assert a.value is None and "one class" in a.reason
    assert "under_powered" in m.flags
    finding = next(f for f in r.plugin("fairness").findings if f.id == "fnr_by_race")
    assert finding.status != Status.PASS
    # Zero identifies nobody: a large group's undefined FNR is public, as undefined ...
    public = audit_frame(frame, tmp_path / "d.csv", sensitive=("race",), fairness={"threshold": 0.5},
                         report={"min_cell": 10})
    m = value(public, "fnr", {"race": "asian"})
    assert not m.suppressed and m.value is None and "no positive" in m.reason
    # ... but in a suppressed group even "undefined" is suppressed.
    frame.loc[frame.index[:6], "race"] = "tiny"
    frame.loc[frame.index[:6], "y"] = 0
    public = audit_frame(frame, tmp_path / "d.csv", sensitive=("race",), fairness={"threshold": 0.5},
                         report={"min_cell": 10})
    # Its label is withheld too (issue 7): the value of a 6-patient group is near row-level.
    m = value(public, "fnr", {"race": "(small group 1)"})
    assert m.suppressed and m.value is None and "no positive" not in m.reason
    assert not any("tiny" in str(x.group) for x in public.plugin("fairness").metrics)


def test_under_powered_groups_are_flagged_with_detectable_gap(tmp_path, toy_frame):
    frame = toy_frame.copy()
    frame.loc[:40, "race"] = "tiny"
    r = audit_frame(frame, tmp_path / "d.csv", sensitive=("race",), fairness={"threshold": 0.5, "min_group_n": 50})
    m = value(r, "fnr", {"race": "tiny"})
    assert "under_powered" in m.flags and m.value is not None
    mdg = value(r, "min_detectable_gap", {"race": "tiny"})
    assert 0 < mdg.value < 1
    # The best group is chosen among adequately powered groups.
    gaps = [m for m in r.plugin("fairness").metrics if m.id == "fnr_gap"]
    assert gaps and all(g.reference_group != {"race": "tiny"} for g in gaps)
    assert any(g.group == {"race": "tiny"} for g in gaps)


def test_small_cells_are_marked_suppressed(tmp_path, toy_frame):
    frame = toy_frame.copy()
    frame.loc[:6, "race"] = "rare"
    r = audit_frame(frame, tmp_path / "d.csv", sensitive=("race",), fairness={"threshold": 0.5},
                    report={"min_cell": 10})
    assert value(r, "n", {"race": "(small group 1)"}).suppressed
    assert value(r, "fnr", {"race": "(small group 1)"}).suppressed
    assert not value(r, "fnr", {"race": "white"}).suppressed
    finding = next(f for f in r.plugin("fairness").findings if f.id == "fnr_by_race")
    assert "rare" not in finding.message and "suppressed" in finding.message


def test_intersections_and_seed_reproducibility(tmp_path, toy_frame):
    kw = dict(sensitive=("sex", "race"), id="patient_id",
              fairness={"threshold": 0.5, "intersections": [["sex", "race"]]})
    r1 = audit_frame(toy_frame, tmp_path / "d.csv", **kw)
    r2 = audit_frame(toy_frame, tmp_path / "d.csv", **kw)
    assert r1.plugin("fairness").metrics == r2.plugin("fairness").metrics
    m = value(r1, "fnr", {"sex": "F", "race": "white"})
    mask = (toy_frame.sex == "F") & (toy_frame.race == "white") & (toy_frame.y == 1)
    assert m.value == pytest.approx(float((toy_frame.p[mask] < 0.5).mean()), abs=1e-12)
    assert "patients (patient_id" in m.ci_method
    assert m.ci[0] <= m.value <= m.ci[1]


def test_holm_adjusted_p_values(tmp_path, toy_frame):
    r = audit_frame(toy_frame, tmp_path / "d.csv", sensitive=("sex", "race"), fairness={"threshold": 0.5})
    tested = [m for m in r.plugin("fairness").metrics if m.id == "fnr_gap" and m.p_value is not None]
    assert len(tested) == 5  # sex: 2 groups, race: 3 (the best group itself has gap 0, p = 1)
    p = np.array([m.p_value for m in tested])
    q = np.array([m.p_adjusted for m in tested])
    # Holm by hand over the fnr_gap family: sorted p_(i) * (k - i + 1), running maximum, capped at 1.
    order = np.argsort(p)
    k = len(p)
    expected = np.minimum(1, np.maximum.accumulate(p[order] * (k - np.arange(k))))
    assert np.allclose(q[order], expected, atol=1e-12)
    assert r.plugin("fairness").settings["multiplicity_correction"].startswith("Holm")


def test_operating_point_chosen_on_reference(tmp_path, toy_frame):
    ref = toy_frame.sample(400, random_state=0)
    r = audit_frame(toy_frame, tmp_path / "d.csv", reference=ref, fairness={"operating_point": "sensitivity:0.9"})
    t = value(r, "threshold").value
    assert ((ref.p >= t) & (ref.y == 1)).sum() / (ref.y == 1).sum() >= 0.9
    assert "reference data" in r.plugin("fairness").settings["threshold_method"]
    # Shared identifiers between reference and test data are a leakage warning.
    r2 = audit_frame(toy_frame, tmp_path / "d.csv", reference=ref, id="patient_id",
                     fairness={"operating_point": "max-f1"})
    assert any("leakage" in w for w in r2.warnings)


def test_intersection_with_unknown_attribute_is_an_error(tmp_path, toy_frame):
    with pytest.raises(ConfigError, match="not among the sensitive attributes"):
        audit_frame(toy_frame, tmp_path / "d.csv", sensitive=("sex",),
                    fairness={"threshold": 0.5, "intersections": [["sex", "race"]]})


def test_suppression_propagates_to_values_that_reveal_a_small_cell(tmp_path, toy_frame):
    frame = toy_frame.copy()
    rare = frame.index[:40]
    frame.loc[rare, "race"] = "rare"
    frame.loc[rare, "y"] = [1] * 5 + [0] * 35  # 5 positives: FNR hidden
    r = audit_frame(frame, tmp_path / "d.csv", sensitive=("race",), fairness={"threshold": 0.5},
                    report={"min_cell": 10})
    g = {"race": "rare"}
    assert not value(r, "n", g).suppressed          # 40 cases may be shown
    assert value(r, "positives", g).suppressed
    assert value(r, "fnr", g).suppressed
    assert value(r, "prevalence", g).suppressed     # prevalence x n gives the positives back
    assert value(r, "fnr_gap_overall", g, reference="overall").suppressed
    gap = [m for m in r.plugin("fairness").metrics if m.id == "fnr_gap" and m.group == g]
    assert all(m.suppressed and m.value is None for m in gap)


def test_degenerate_rates_get_exact_and_mover_intervals(tmp_path):
    # Both groups miss nobody: FNR 0/20 and 0/30. A percentile bootstrap would say [0, 0] for
    # the rates and the gap (certainty); the Clopper-Pearson and MOVER intervals do not.
    from scipy.stats import binomtest

    frame = pd.DataFrame({"sex": ["F"] * 40 + ["M"] * 60,
                          "y": [1] * 20 + [0] * 20 + [1] * 30 + [0] * 30,
                          "p": [0.9] * 20 + [0.1] * 20 + [0.8] * 30 + [0.2] * 30})
    kw = dict(fairness={"threshold": 0.5, "min_positives": 10, "min_group_n": 30})
    r = audit_frame(frame, tmp_path / "d.csv", **kw)
    fnr = value(r, "fnr", {"sex": "F"})
    assert fnr.value == 0.0
    expected = binomtest(0, 20).proportion_ci(0.95, method="exact")
    assert fnr.ci == pytest.approx((expected.low, expected.high), abs=1e-12)
    assert "Clopper-Pearson" in fnr.ci_method
    gap = value(r, "fnr_gap", {"sex": "F"}, reference="best")
    # One other group, so the MOVER interval of 0/20 - 0/30 at 95%, floored at 0 (a gap to the
    # best group is never negative): upper bound = F's Clopper-Pearson upper bound.
    assert gap.value == 0.0 and gap.ci[0] == 0.0
    assert gap.ci[1] == pytest.approx(expected.high, abs=1e-12)
    over = value(r, "fnr_gap_overall", {"sex": "F"}, reference="overall")
    assert over.ci[0] < 0 < over.ci[1]
    # A gate cannot pass on certainty that is not there.
    r2 = audit_frame(frame, tmp_path / "d.csv", gates=["fairness.fnr_gap<=0.01"], **kw)
    assert r2.gates[0].status == Status.INCONCLUSIVE


def test_min_detectable_gap_matches_hand_formula(tmp_path, toy_frame):
    from scipy.stats import norm

    frame = toy_frame.copy()
    frame.loc[:40, "race"] = "tiny"
    r = audit_frame(frame, tmp_path / "d.csv", sensitive=("race",), fairness={"threshold": 0.5, "min_group_n": 50})
    g = {"race": "tiny"}
    k = value(r, "positives", g).value
    n_all = value(r, "positives").value
    p = value(r, "fnr").value
    expected = (norm.ppf(0.975) + norm.ppf(0.8)) * np.sqrt(p * (1 - p) * (1 / k + 1 / n_all))
    assert value(r, "min_detectable_gap", g).value == pytest.approx(expected, rel=1e-12)


def test_rows_versus_patients(tmp_path):
    # Ward "w": 12 positive images from 4 patients (3 each), every one missed; 40 negatives from
    # 40 patients. Counting rows it would pass min_positives=10; counting patients it does not.
    rng = np.random.default_rng(0)
    big = pd.DataFrame({"ward": "big", "pid": [f"b{i}" for i in range(400)],
                        "y": rng.binomial(1, 0.3, 400), "p": rng.random(400)})
    small = pd.DataFrame({"ward": "w", "pid": [f"w{i // 3}" for i in range(12)] + [f"n{i}" for i in range(40)],
                          "y": [1] * 12 + [0] * 40, "p": [0.1] * 12 + [0.2] * 40})
    frame = pd.concat([big, small], ignore_index=True)
    kw = dict(sensitive=("ward",), fairness={"threshold": 0.5, "min_positives": 10, "min_group_n": 30})
    by_rows = audit_frame(frame, tmp_path / "d.csv", **kw)
    by_patients = audit_frame(frame, tmp_path / "d.csv", id="pid", **kw)
    w = {"ward": "w"}
    assert "under_powered" not in value(by_rows, "fnr", w).flags
    m = value(by_patients, "fnr", w)
    assert "under_powered" in m.flags
    assert value(by_patients, "patients", w).value == 44
    # 12/12 from 4 patients carries less information than 12 independent rows.
    assert m.ci[0] < value(by_rows, "fnr", w).ci[0]
    assert "patients (pid" in m.ci_method
    # An under-powered group never decides a gate.
    r = audit_frame(frame, tmp_path / "d.csv", id="pid", gates=["fairness.fnr_gap_overall<=0.05"], **kw)
    check = next(c for c in r.gates[0].checks if c.group == w)
    assert check.status == Status.INCONCLUSIVE


def test_unseeded_run_records_its_seed_and_replays(tmp_path, toy_frame):
    toy_frame.to_csv(tmp_path / "d.csv", index=False)
    raw = {"data": {"path": str(tmp_path / "d.csv"), "label": "y", "score": "p", "sensitive": ["sex", "race"],
                    "id": "patient_id"}, "fairness": {"threshold": 0.5}}
    cfg = build_config(raw, base_dir=tmp_path, plugin_names=("fairness",), flags={})
    first = run_audit(cfg)
    seed = first.provenance["seed"]
    # Recorded once, in provenance (the config record does not repeat it).
    assert isinstance(seed, int) and "seed" not in first.config
    replay = run_audit(build_config(raw, base_dir=tmp_path, plugin_names=("fairness",), flags={"seed": seed}))
    assert replay.plugin("fairness").metrics == first.plugin("fairness").metrics
