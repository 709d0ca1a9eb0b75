"""The overall picture before the gaps: the flagged share, the operating-point check, the
miss-rate curves, and the seed recorded once. Every number against numpy, statsmodels or a
hand computation."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from audit.core.config import build_config
from audit.core.results import (
    SMALL_GROUP,
    AuditResult,
    Curve,
    Metric,
    PluginResult,
    Status,
    public_record,
)
from audit.core.runner import run_audit
from audit.plugins.fairness import CURVE_THRESHOLDS, FairnessPlugin
from audit.schema import results_schema


def audit(frame, path, *, sensitive=("sex",), fairness=None, report=None, flags=None, id=None):
    frame.to_csv(path, index=False)
    data = {"path": str(path), "label": "y", "score": "p", "sensitive": list(sensitive)}
    if id:
        data["id"] = id
    raw = {"data": data, "fairness": {"threshold": 0.5, **(fairness or {})}, "report": report or {}}
    cfg = build_config(raw, base_dir=Path(path).parent, plugin_names=("fairness",), flags=flags or {})
    return run_audit(cfg)


def only(result, metric_id, group=None, label=None):
    found = [m for m in result.plugin("fairness").metrics
             if m.id == metric_id and m.group == group and m.label == label and m.reference is None]
    assert len(found) == 1, (metric_id, group, found)
    return found[0]


def poor_cohort(seed=0):
    """5,000 patients, 24.6% with the condition; at 0.5 the model misses 1,127 of the 1,230 and
    flags 200 (103 + 97): 91.6% missed, 4.0% flagged, as in the issue."""
    rng = np.random.default_rng(seed)
    cells = {"tp": (1, 103, (0.5, 1.0)), "fn": (1, 1127, (0.0, 0.5)),
             "fp": (0, 97, (0.5, 1.0)), "tn": (0, 3673, (0.0, 0.5))}
    parts = []
    for y, k, (lo, hi) in cells.values():
        parts.append(pd.DataFrame({"y": y, "p": rng.uniform(lo, hi - 1e-6, k).round(6)}))
    frame = pd.concat(parts, ignore_index=True)
    frame["sex"] = rng.choice(["F", "M"], len(frame))
    return frame.sample(frac=1, random_state=1).reset_index(drop=True)


# -- flagged ------------------------------------------------------------------------------

def test_flagged_against_numpy_and_statsmodels(tmp_path, toy_frame):
    r = audit(toy_frame, tmp_path / "d.csv", sensitive=("sex", "race"))
    assert "flagged" in FairnessPlugin.metrics
    flagged = toy_frame.p >= 0.5
    cases = [(None, np.ones(len(toy_frame), bool))]
    cases += [({col: v}, (toy_frame[col] == v).to_numpy()) for col in ("sex", "race")
              for v in sorted(toy_frame[col].unique())]
    for group, mask in cases:
        m = only(r, "flagged", group)
        k, n = int(flagged[mask].sum()), int(mask.sum())
        assert m.value == pytest.approx(k / n, abs=1e-15)
        assert (m.n, m.denominator) == (n, n)
        lo, hi = proportion_confint(k, n, alpha=0.05, method="beta")
        assert m.ci == pytest.approx((lo, hi), abs=1e-9)
        assert m.ci[0] <= m.value <= m.ci[1] and not m.suppressed
    # A rate without gaps.
    assert not any(m.id.startswith("flagged_") for m in r.plugin("fairness").metrics)


def test_flagged_with_few_predicted_positives_is_suppressed(tmp_path, toy_frame):
    frame = toy_frame.copy()
    # Race "asian": exactly 3 rows flagged (a small numerator) in a large group.
    asian = frame.index[frame.race == "asian"]
    frame.loc[asian, "p"] = 0.1
    frame.loc[asian[:3], "p"] = 0.9
    r = audit(frame, tmp_path / "d.csv", sensitive=("race",), report={"min_cell": 10})
    assert not only(r, "n", {"race": "asian"}).suppressed
    m = only(r, "flagged", {"race": "asian"})
    assert m.suppressed and m.value is None
    assert not only(r, "flagged", {"race": "white"}).suppressed


# -- operating point ----------------------------------------------------------------------

def test_a_useless_operating_point_warns_with_its_numbers(tmp_path):
    frame = poor_cohort()
    r = audit(frame, tmp_path / "d.csv", flags={"gates": ["fairness.fnr_gap<=0.9"]})
    plugin = r.plugin("fairness")
    f = plugin.findings[0]
    assert (f.id, f.title, f.metric, f.status) == ("operating_point", "Operating point", "sensitivity", Status.WARN)
    # The numbers, by hand: 1127 / 1230 missed, 200 / 5000 flagged, 1230 / 5000 with the condition.
    assert only(r, "fnr").value == pytest.approx(1127 / 1230, abs=1e-15)
    assert only(r, "flagged").value == pytest.approx(200 / 5000, abs=1e-15)
    assert only(r, "prevalence").value == pytest.approx(1230 / 5000, abs=1e-15)
    lo, hi = proportion_confint(1127, 1230, alpha=0.05, method="beta")
    assert f.message.startswith(
        f"At the operating point (threshold 0.50) the model misses 91.6% of the patients with y "
        f"(95% CI {100 * lo:.1f}%–{100 * hi:.1f}%)")
    flo, fhi = proportion_confint(200, 5000, alpha=0.05, method="beta")
    assert f"flags 4.0% of all patients (95% CI {100 * flo:.1f}%–{100 * fhi:.1f}%)" in f.message
    assert "while 24.6% have the condition" in f.message
    assert "this operating point is poor" in f.message
    assert "fewer than half of the patients with the condition" in f.message
    assert "fewer than half as many patients as have the condition" in f.message  # 4.0 / 24.6 < 0.5
    assert "the gaps between groups below matter less than this" in f.message
    # The same sentence among the warnings, so that no report can say "Warnings: none".
    assert f.message in plugin.warnings
    # WARN changes neither the gate nor the exit code.
    assert r.gates[0].status == Status.PASS and r.exit_code == 0
    assert plugin.status == Status.WARN
    assert "operating point is poor" in plugin.summary


def test_a_good_operating_point_passes(tmp_path, toy_frame):
    r = audit(toy_frame, tmp_path / "d.csv")
    f = r.plugin("fairness").findings[0]
    assert f.id == "operating_point" and f.status == Status.PASS
    sens, spec = only(r, "sensitivity").value, only(r, "specificity").value
    ratio = only(r, "flagged").value / only(r, "prevalence").value
    assert sens >= 0.5 and spec >= 0.5 and 0.5 <= ratio <= 2  # the rule, by hand
    assert f"misses {100 * only(r, 'fnr').value:.1f}%" in f.message
    assert f"clears {100 * spec:.1f}%" in f.message
    assert not any(w.startswith("At the operating point") for w in r.plugin("fairness").warnings)


def test_poor_specificity_and_flagging_too_many_warn(tmp_path, toy_frame):
    r = audit(toy_frame, tmp_path / "d.csv", fairness={"threshold": 0.0})
    f = r.plugin("fairness").findings[0]
    assert f.status == Status.WARN and "clears fewer than half of the patients without it" in f.message
    assert "clears 0.0% of those without it" in f.message  # everyone flagged at threshold 0
    # Sensitivity and specificity fine, but 3 times as many flagged as have the condition.
    rng = np.random.default_rng(2)
    n = 2000
    y = rng.binomial(1, 0.1, n)
    p = np.where(y == 1, rng.uniform(0.5, 1, n), np.where(rng.random(n) < 0.25, 0.7, 0.2))
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "y": y, "p": p.round(6)})
    r = audit(frame, tmp_path / "e.csv")
    sens, spec = only(r, "sensitivity").value, only(r, "specificity").value
    ratio = only(r, "flagged").value / only(r, "prevalence").value
    assert sens >= 0.5 and spec >= 0.5 and ratio > 2
    f = r.plugin("fairness").findings[0]
    assert f.status == Status.WARN
    assert "more than twice as many patients as have the condition" in f.message


def test_operating_point_is_inconclusive_when_overall_counts_are_suppressed(tmp_path):
    frame = pd.DataFrame({"sex": list("FFFFMMMM"), "y": [1, 0, 1, 0, 1, 0, 0, 0],
                          "p": [0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 0.4, 0.1]})
    r = audit(frame, tmp_path / "d.csv", report={"min_cell": 10})
    f = r.plugin("fairness").findings[0]
    assert f.id == "operating_point" and f.status == Status.INCONCLUSIVE
    assert "%" not in f.message.replace("95% CI", "")  # no suppressed value is stated
    assert "cannot be judged" in f.message


def test_operating_point_per_label_uses_display_names(tmp_path, toy_frame):
    frame = toy_frame.assign(b=(toy_frame.y + (toy_frame.age > 60)).clip(0, 1),
                             pb=np.clip(toy_frame.p + 0.1, 0, 1).round(6))
    frame.to_csv(tmp_path / "d.csv", index=False)
    raw = {"data": {"path": "d.csv", "label": ["y", "b"], "score": ["p", "pb"], "sensitive": ["sex"]},
           "fairness": {"threshold": 0.5},
           "report": {"display_names": {"labels": {"y": "tested positive for covid"}}}}
    r = run_audit(build_config(raw, base_dir=tmp_path, plugin_names=("fairness",)))
    ops = [f for f in r.plugin("fairness").findings if f.id.startswith("operating_point")]
    assert [f.id for f in ops] == ["operating_point_y", "operating_point_b"]
    assert [f.title for f in ops] == ["y: Operating point", "b: Operating point"]
    assert "of the patients who tested positive for covid (95% CI" in ops[0].message
    assert "of the patients with b (95% CI" in ops[1].message and "=1" not in ops[1].message
    fnr_b = only(r, "fnr", label="b").value
    mask = frame.b == 1
    assert fnr_b == pytest.approx(float((frame.pb[mask] < 0.5).mean()), abs=1e-15)
    assert f"misses {100 * fnr_b:.1f}%" in ops[1].message
    # One curve per label and group, at that label's operating point, against numpy.
    curves = r.plugin("fairness").curves
    assert sorted((c.label, c.group_label) for c in curves) == [
        ("b", "sex=F"), ("b", "sex=M"), ("y", "sex=F"), ("y", "sex=M")]
    for c in curves:
        score = frame.pb if c.label == "b" else frame.p
        s = score[(frame[c.label] == 1) & (frame.sex == c.group["sex"])].to_numpy()
        shown = [i for i, v in enumerate(c.values) if v is not None]
        assert len(shown) > 10 and c.operating_point == 0.5
        assert np.allclose([c.values[i] for i in shown], _fnr_by_hand(s, np.array(CURVE_THRESHOLDS)[shown]),
                           atol=1e-15, rtol=0)


# -- curves -------------------------------------------------------------------------------

def _fnr_by_hand(scores, grid):
    return np.array([(scores < t).mean() for t in grid])


def test_fnr_curves_against_numpy(tmp_path, toy_frame):
    r = audit(toy_frame, tmp_path / "d.csv", sensitive=("sex", "race"),
              fairness={"intersections": [["sex", "race"]]}, report={"min_cell": 10})
    curves = r.plugin("fairness").curves
    assert CURVE_THRESHOLDS == tuple(k / 20 for k in range(21)) and CURVE_THRESHOLDS[10] == 0.5
    # One per group of each single attribute; none overall, none for the intersection.
    assert sorted(c.group_label for c in curves) == ["race=asian", "race=black", "race=white", "sex=F", "sex=M"]
    grid = np.array(CURVE_THRESHOLDS)
    for c in curves:
        assert c.id == "fnr_by_threshold" and c.label is None and c.operating_point == 0.5
        assert c.thresholds == CURVE_THRESHOLDS
        (col, v), = c.group.items()
        s = toy_frame.p[(toy_frame[col] == v) & (toy_frame.y == 1)].to_numpy()
        expected = _fnr_by_hand(s, grid)
        missed = np.array([(s < t).sum() for t in grid])
        caught = len(s) - missed
        for i, value in enumerate(c.values):
            small = 0 < missed[i] < 10 or 0 < caught[i] < 10
            if small:
                assert value is None, (c.group, grid[i], missed[i], caught[i])
            else:
                assert value == pytest.approx(expected[i], abs=1e-15)
        # At the operating point the curve is the published FNR.
        assert c.values[10] == pytest.approx(only(r, "fnr", c.group).value, abs=1e-15)
    assert any(v is None for c in curves for v in c.values)  # the small counts at the ends


def test_fnr_curves_pass_through_an_operating_point_between_grid_points(tmp_path, toy_frame):
    # 0.4321 lies between the grid's 0.40 and 0.45: read off a straight line between them, the
    # miss rate at the threshold in use would be wrong; the curve has the point itself.
    r = audit(toy_frame, tmp_path / "d.csv", fairness={"threshold": 0.4321}, report={"min_cell": 1})
    for c in r.plugin("fairness").curves:
        assert c.operating_point == 0.4321 and 0.4321 in c.thresholds
        assert c.thresholds == tuple(sorted((*CURVE_THRESHOLDS, 0.4321)))
        at = c.values[c.thresholds.index(0.4321)]
        s = toy_frame.p[(toy_frame.sex == c.group["sex"]) & (toy_frame.y == 1)].to_numpy()
        assert at == pytest.approx(float((s < 0.4321).mean()), abs=1e-15)
        assert at == pytest.approx(only(r, "fnr", c.group).value, abs=1e-15)


def test_fnr_curves_keep_small_numerators_and_patients(tmp_path, toy_frame):
    r = audit(toy_frame, tmp_path / "d.csv", report={"min_cell": 10, "keep_small_numerators": True})
    grid = np.array(CURVE_THRESHOLDS)
    for c in r.plugin("fairness").curves:
        s = toy_frame.p[(toy_frame.sex == c.group["sex"]) & (toy_frame.y == 1)].to_numpy()
        assert np.allclose(np.array(c.values, float), _fnr_by_hand(s, grid), atol=1e-15, rtol=0)
    # With an identifier the small-count rule counts patients (any row missed / any row caught).
    r = audit(toy_frame, tmp_path / "d.csv", id="patient_id", report={"min_cell": 10})
    for c in r.plugin("fairness").curves:
        pos = toy_frame[(toy_frame.sex == c.group["sex"]) & (toy_frame.y == 1)]
        for t, value in zip(grid, c.values, strict=True):
            missed_pat = pos.patient_id[pos.p < t].nunique()
            caught_pat = pos.patient_id[pos.p >= t].nunique()
            if 0 < missed_pat < 10 or 0 < caught_pat < 10:
                assert value is None
            else:
                assert value == pytest.approx(float((pos.p < t).mean()), abs=1e-15)


def test_no_curve_for_a_suppressed_group(tmp_path, toy_frame):
    frame = toy_frame.copy()
    frame.loc[:6, "race"] = "rare"
    r = audit(frame, tmp_path / "d.csv", sensitive=("race",), report={"min_cell": 10})
    metrics = r.plugin("fairness").metrics
    groups = {c.group_label for c in r.plugin("fairness").curves}

    def shown(mid):
        return {m.group_label for m in metrics if m.id == mid and m.group and not m.suppressed and m.value is not None}

    # Exactly the groups whose n, positives and FNR are published: not the 7-row group, and
    # not the large group that secondary suppression hid to protect it (else its total minus
    # the others gives the small group back; its curve would undo that).
    assert groups == shown("n") & shown("positives") & shown("fnr") == {"race=black", "race=white"}
    assert (toy_frame.race == "asian").sum() > 200 and only(r, "n", {"race": "asian"}).suppressed
    assert "rare" not in r.to_json()


def test_curves_round_trip_validate_and_follow_relabelling(tmp_path, toy_frame):
    r = audit(toy_frame, tmp_path / "d.csv", sensitive=("sex", "race"))
    text = r.to_json()
    jsonschema.validate(json.loads(text), results_schema())
    again = AuditResult.from_json(text)
    assert again == r and again.plugin("fairness").curves == r.plugin("fairness").curves
    assert isinstance(again.plugin("fairness").curves[0], Curve)
    # public_record withholds a small group's label on curves as on metrics.
    plugin = PluginResult(
        plugin="x", principle="Fairness", version="0", status=Status.PASS, summary="",
        metrics=(Metric("n", 3, n=3, group={"site": "tiny"}, flags=(SMALL_GROUP,), suppressed=True),),
        curves=(Curve("fnr_by_threshold", {"site": "tiny"}, None, (0.0, 1.0), (0.0, None), 0.5),))
    public = public_record(AuditResult(plugins=(plugin,)))
    assert public.plugins[0].curves[0].group == {"site": "(small group 1)"}
    with pytest.raises(ValueError, match="2 values for 1 thresholds"):
        Curve("fnr_by_threshold", None, None, (0.0,), (0.0, 1.0))


# -- seed ---------------------------------------------------------------------------------

def test_the_seed_is_recorded_once_in_provenance(tmp_path, toy_frame):
    # --seed sets the run's seed and fairness.seed alike (the CLI's old path): no warning, no copy.
    r = audit(toy_frame, tmp_path / "d.csv", fairness={"seed": 20201}, flags={"seed": 20201})
    assert r.provenance["seed"] == 20201
    plugin = r.plugin("fairness")
    assert not any(k in plugin.settings for k in ("seed", "random_state"))
    assert not any("fairness.seed" in w for w in plugin.warnings)
    assert "seed" not in r.config and "seed" not in r.config["plugin_params"]["fairness"]
    assert json.dumps(r.to_dict()).count("20201") == 1
    # A fairness.seed of its own is still a stale key, said so.
    r = audit(toy_frame, tmp_path / "d.csv", fairness={"seed": 7}, flags={"seed": 5})
    assert any("fairness.seed is no longer used" in w for w in r.plugin("fairness").warnings)
    assert r.provenance["seed"] == 5
