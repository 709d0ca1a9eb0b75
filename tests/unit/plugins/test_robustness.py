"""The robustness plugin against independent references (sklearn AUROC, numpy rates on the
scores of the perturbed inputs recomputed here), its paired intervals by simulation where they
are hardest (few cases, AUROC near 0.95, two rows per patient), an image audit end to end on a
tiny CNN (images read once, seeded, monotone in severity), a tabular pipeline that cannot take
missing values, predictions-only audits, the small-cell rule against a reader of every record,
and the results.json contract."""

from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audit.core.config import build_config
from audit.core.results import AuditResult, Metric, Status
from audit.core.runner import run_audit
from audit.errors import ConfigError
from audit.plugins.base import make_params
from audit.plugins.fairness import FairnessPlugin
from audit.plugins.robustness import (
    RobustnessPlugin,
    fnr_gap_change,
    paired_auroc_drop,
    paired_rate_drop,
)
from audit.privacy import Count, feasible_ranges
from audit.robustness import TABULAR_PERTURBATIONS
from audit.schema import results_schema

AVAILABLE = {"robustness": RobustnessPlugin, "fairness": FairnessPlugin}
FEATURES = ["age", "crp"]


# ----------------------------------------------------------------------------- tabular data --

def cohort(n=900, seed=0, small_group=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "patient_id": [f"P{i // 2:05d}" for i in range(n)],
        "sex": np.repeat(rng.choice(["F", "M"], n // 2), 2)[:n],
        "site": rng.choice(["north", "south", "east"], n, p=[0.45, 0.35, 0.2]),
        "age": rng.normal(60, 10, n).round(1),
        "crp": rng.lognormal(2, 0.6, n).round(2),
    })
    logit = 0.08 * (df.age - 60) + 1.2 * (np.log(df.crp) - 2) - 1.0
    df["y"] = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    if small_group:
        df.loc[df.index[:small_group], "site"] = "island"
    return df


def tabular_audit(tmp_path, frame, robustness=None, sensitive=("site",), plugins=("robustness",), report=None,
                  **data):
    import skops.io as sio

    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[FEATURES], frame.y)
    sio.dump(model, tmp_path / "model.skops")
    frame.to_csv(tmp_path / "d.csv", index=False)
    raw = {"data": {"path": "d.csv", "label": "y", "features": FEATURES, "sensitive": list(sensitive),
                    "id": "patient_id", **data},
           "model": {"path": "model.skops"},
           "robustness": {"threshold": 0.35, "n_boot": 300, **(robustness or {})},
           "fairness": {"threshold": 0.35}, "report": {"min_cell": 10, **(report or {})},
           "run": {"seed": 11, "plugins": list(plugins)}}
    cfg = build_config(raw, base_dir=tmp_path, plugin_names=tuple(AVAILABLE))
    return run_audit(cfg, available=AVAILABLE, cwd=tmp_path), model


def one(result, mid, perturbation=None, severity=None, group=None):
    [m] = [m for m in result.metrics if m.id == mid and m.perturbation == perturbation and m.severity == severity
           and m.group == group]
    return m


# ----------------------------------------------------------------------- reference values --

def test_perturbed_values_equal_sklearn_and_numpy_on_the_perturbed_scores(tmp_path):
    frame = cohort()
    audit, model = tabular_audit(tmp_path, frame, {"tabular_perturbations": ["gaussian_noise", "unit_shift"],
                                                   "severities": [1, 3, 5]})
    r = audit.plugin("robustness")
    assert r.status != Status.ERROR, r.error
    seed = audit.provenance["seed"]
    y = frame.y.to_numpy()
    clean = model.predict_proba(frame[FEATURES])[:, 1]
    t = 0.35
    for name in ("gaussian_noise", "unit_shift"):
        for s in (1, 3, 5):
            perturbed = TABULAR_PERTURBATIONS[name].apply(frame[FEATURES], s, seed)
            score = model.predict_proba(perturbed)[:, 1]
            suffix = "" if s <= 3 else "_stress"
            assert one(r, "auroc", name, s).value == pytest.approx(roc_auc_score(y, score), abs=1e-12)
            sens, spec = (score[y == 1] >= t).mean(), (score[y == 0] < t).mean()
            assert one(r, "sensitivity", name, s).value == pytest.approx(sens, abs=1e-12)
            assert one(r, "specificity", name, s).value == pytest.approx(spec, abs=1e-12)
            assert one(r, "flip_rate" + suffix, name, s).value == pytest.approx(((score >= t) != (clean >= t)).mean(),
                                                                                abs=1e-12)
            assert one(r, "score_shift" + suffix, name, s).value == pytest.approx((score - clean).mean(), abs=1e-12)
            drop = one(r, "auroc_drop" + suffix, name, s)
            assert drop.value == pytest.approx(roc_auc_score(y, clean) - roc_auc_score(y, score), abs=1e-12)
            assert drop.ci[0] <= drop.value <= drop.ci[1]
            assert one(r, "sensitivity_drop" + suffix, name, s).value == pytest.approx(
                (clean[y == 1] >= t).mean() - sens, abs=1e-12)
            # Per group: the same drop on the group's rows.
            g = frame.site.to_numpy() == "north"
            assert one(r, "auroc_drop" + suffix, name, s, {"site": "north"}).value == pytest.approx(
                roc_auc_score(y[g], clean[g]) - roc_auc_score(y[g], score[g]), abs=1e-12)
            # The FNR gap between the worst and the best site, perturbed minus clean.
            def gap(sc):
                fnr = [(sc[(frame.site == g).to_numpy() & (y == 1)] < t).mean() for g in ("north", "south", "east")]
                return max(fnr) - min(fnr)

            change = one(r, "fnr_gap_change" + suffix, name, s)
            assert change.feature == "site" and change.value == pytest.approx(gap(score) - gap(clean), abs=1e-12)
            assert change.ci[0] <= change.value <= change.ci[1]
    assert one(r, "auroc").value == pytest.approx(roc_auc_score(y, clean), abs=1e-12)
    # The worst case over the gated severities, named with its perturbation and severity.
    gated = [m for m in r.metrics if m.id == "auroc_drop" and m.group is None]
    [worst] = [m for m in r.metrics if m.id == "auroc_drop_worst"]
    top = max(gated, key=lambda m: m.value)
    assert len(gated) == 4 and worst.value == top.value
    assert (worst.perturbation, worst.severity) == (top.perturbation, top.severity)
    assert worst.ci[1] >= max(m.ci[1] for m in gated)  # the maxima of Bonferroni bounds over 4 runs
    assert r.settings["thresholds"] == {"y": 0.35}


def test_severity_split_and_gates_judge_each_record(tmp_path):
    frame = cohort()
    audit, _ = tabular_audit(tmp_path, frame, {"tabular_perturbations": ["unit_shift"], "max_severity_gate": 2})
    r = audit.plugin("robustness")
    assert {m.severity for m in r.metrics if m.id == "auroc_drop"} == {1, 2}
    assert {m.severity for m in r.metrics if m.id == "auroc_drop_stress"} == {3, 4, 5}
    assert {m.severity for m in r.metrics if m.id == "auroc"} == {None, 1, 2, 3, 4, 5}
    raw_gates = ["robustness.specificity_drop<=0.05", "robustness.auroc_drop_worst<=0.05"]
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = build_config({"data": {"path": "d.csv", "label": "y", "features": FEATURES, "sensitive": ["site"],
                                 "id": "patient_id"}, "model": {"path": "model.skops"},
                        "robustness": {"threshold": 0.35, "tabular_perturbations": ["unit_shift"], "n_boot": 300},
                        "run": {"seed": 11, "plugins": ["robustness"]}},
                       base_dir=tmp_path, plugin_names=tuple(AVAILABLE), flags={"gates": raw_gates})
    gated = run_audit(cfg, available=AVAILABLE, cwd=tmp_path)
    spec, worst = gated.gates
    # One check per record: overall and every site, severities 1 to 3 (the default gate).
    assert len(spec.checks) == 3 * 4 and spec.status == Status.FAIL  # unit_shift x1.1 costs specificity
    assert worst.status == Status.PASS and len(worst.checks) == 1  # a scale change keeps the ranking


# ------------------------------------------------------------------------- coverage --------

def _auroc_truth(delta, su, tau):
    v = su**2 + 1
    return stats.norm.cdf(delta / np.sqrt(2 * v)) - stats.norm.cdf(delta / np.sqrt(2 * (v + tau**2)))


@pytest.mark.parametrize(("positive_patients", "tau"), [(5, 1.2), (10, 0.6), (20, 1.2)])
def test_paired_auroc_drop_interval_covers_with_few_cases_near_auroc_095(positive_patients, tau):
    # Two rows per patient sharing a patient effect; clean AUROC 0.95 (rows of distinct
    # patients), perturbed = clean + noise of sd tau: 10 to 40 positive rows.
    rng = np.random.default_rng(positive_patients)
    su, negatives, reps = 0.5, 100, 400
    delta = stats.norm.ppf(0.95) * np.sqrt(2 * (su**2 + 1))
    truth = _auroc_truth(delta, su, tau)
    n_pat = positive_patients + negatives
    y = np.repeat(np.r_[np.ones(positive_patients, int), np.zeros(negatives, int)], 2)
    patient = np.repeat(np.arange(n_pat), 2)
    covered = 0
    for _ in range(reps):
        clean = delta * y + np.repeat(rng.normal(0, su, n_pat), 2) + rng.normal(0, 1, 2 * n_pat)
        perturbed = clean + tau * rng.normal(0, 1, 2 * n_pat)
        _, (ci,), _ = paired_auroc_drop(y, clean, perturbed, patient)
        covered += ci[0] <= truth <= ci[1]
    coverage = covered / reps
    print(f"paired AUROC drop, {positive_patients} positive patients x 2 rows, true drop {truth:.3f}: "
          f"coverage {coverage:.3f}")
    assert 0.92 <= coverage <= 0.995


@pytest.mark.parametrize(("patients", "mu", "tau", "shift"), [(5, 1.3, 0.5, 0.3), (10, 1.0, 0.6, 0.2),
                                                               (20, 2.0, 0.3, 0.1)])
def test_paired_sensitivity_drop_interval_covers_with_few_cases(patients, mu, tau, shift):
    # 10 to 40 positive rows (2 per patient), sensitivity 0.75 to 0.97; the perturbation adds
    # noise and lowers the score, so few decisions change: a Wald interval is then a point.
    rng = np.random.default_rng(100 + patients)
    big = 2_000_000
    u = rng.normal(0, 0.6, big)
    c = mu + u + rng.normal(0, 1, big)
    truth = (c >= 0).mean() - (c + tau * rng.normal(0, 1, big) - shift >= 0).mean()
    patient = np.repeat(np.arange(patients), 2)
    covered, reps = 0, 400
    for _ in range(reps):
        clean = mu + np.repeat(rng.normal(0, 0.6, patients), 2) + rng.normal(0, 1, 2 * patients)
        perturbed = clean + tau * rng.normal(0, 1, 2 * patients) - shift
        _, (ci,) = paired_rate_drop(clean >= 0, perturbed >= 0, patient)
        covered += ci[0] <= truth <= ci[1]
    coverage = covered / reps
    print(f"paired sensitivity drop, {patients} positive patients x 2 rows, true drop {truth:.3f}: "
          f"coverage {coverage:.3f}")
    assert coverage >= 0.93


def test_fnr_gap_change_bootstrap_covers():
    # Three groups of about 60 cases; clean FNRs 0.20, 0.25, 0.30; the perturbation misses 5%,
    # 5% and 10% more of the cases found: the gap grows from 0.10 to 0.13.
    rng = np.random.default_rng(8)
    truth = (1 - 0.7 * 0.9) - (1 - 0.8 * 0.95) - 0.1
    covered, reps = 0, 300
    for _ in range(reps):
        g = rng.integers(0, 3, 600)
        y = rng.binomial(1, 0.3, 600)
        miss = rng.binomial(1, np.array([0.2, 0.25, 0.3])[g])
        lost = rng.binomial(1, np.array([0.05, 0.05, 0.1])[g])
        _, (ci,), _ = fnr_gap_change(y, miss, np.maximum(miss, lost), g, 3, n_boot=300, random_state=rng)
        covered += ci[0] <= truth <= ci[1]
    coverage = covered / reps
    print(f"fnr_gap_change, 3 groups of about 60 cases, true change {truth:.3f}: coverage {coverage:.3f}")
    assert coverage >= 0.92


def test_paired_rate_drop_is_not_a_point_when_no_decision_changes():
    hit = np.array([1] * 9 + [0])
    d, (ci,) = paired_rate_drop(hit, hit)
    assert d == 0 and ci[0] < -0.05 and ci[1] > 0.05
    _, cis, reason = paired_auroc_drop(np.array([1, 0, 0]), np.array([0.9, 0.1, 0.2]), np.array([0.8, 0.1, 0.2]))
    assert cis is None and "fewer than 2 patients" in reason


# --------------------------------------------------------------------------- image audit --

class CountingReads:
    """Counts ImageSource reads (monkeypatched __getitem__)."""

    def __init__(self):
        self.count = 0


def write_images(tmp_path, n=48, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = []
    (tmp_path / "img").mkdir()
    for i in range(n):
        y = int(i % 2)
        img = rng.normal(90, 10, (16, 16))
        if y:  # a faint bright square: the model looks for the brightest pixel
            img[6:10, 6:10] += rng.uniform(5, 40)
        img = np.clip(img, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / "img" / f"{i:03d}.png")
        rows.append({"path": f"img/{i:03d}.png", "y": y, "patient_id": f"P{i // 2:03d}",
                     "sex": "F" if i % 4 < 2 else "M"})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)


def tiny_network(tmp_path):
    import torch

    from audit.io.networks import OutputMapping, load_network

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(1, 1)
            with torch.no_grad():
                self.head.weight.fill_(40.0)
                self.head.bias.fill_(-40.0 * 0.5)

        def forward(self, x):
            return self.head(torch.amax(x, dim=(2, 3)))

    import warnings

    path = tmp_path / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
        torch.jit.script(Tiny().eval()).save(str(path))
    return load_network(str(path), mapping=OutputMapping("sigmoid"))


class ImageAdapter:
    """What the image-model adapter offers the plugins (see the plugin's docstring)."""

    kind = "torch"
    output_names = None

    def __init__(self, network, base_dir, batch_size=16):
        from audit.imaging import ImageSource, Preprocessing

        self.network, self.batch_size, self.workers = network, batch_size, 0
        self.source = "tiny.pt"
        self._base, self._pre = base_dir, Preprocessing(normalize="range", range=(0, 255))
        self._source_cls = ImageSource

    def image_source(self, dataset):
        return self._source_cls(list(dataset.frame["path"]), self._base, self._pre)

    def fingerprint(self):
        return self.network.fingerprint()

    def predict(self, frame):
        source = self._source_cls(list(frame["path"]), self._base, self._pre)
        return np.concatenate([self.network.forward(b) for _, b in source.batches(self.batch_size)])


def image_audit(tmp_path, monkeypatch, robustness=None, seed=5):
    import audit.io.models

    adapter = ImageAdapter(tiny_network(tmp_path), tmp_path)
    monkeypatch.setattr(audit.io.models, "load_model", lambda *a, **k: adapter)
    raw = {"data": {"path": "manifest.csv", "label": "y", "features": ["path"], "sensitive": ["sex"],
                    "id": "patient_id"},
           "model": {"path": "tiny.pt"}, "report": {"min_cell": 5}, "run": {"seed": seed, "plugins": ["robustness"]},
           "robustness": {"perturbations": ["gaussian_noise", "contrast"], "threshold": 0.5, "n_boot": 200,
                          **(robustness or {})}}
    cfg = build_config(raw, base_dir=tmp_path, plugin_names=tuple(AVAILABLE))
    return run_audit(cfg, available=AVAILABLE, cwd=tmp_path).plugin("robustness")


def test_image_audit_reads_once_degrades_with_severity_and_repeats_under_the_seed(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from audit.imaging.loader import ImageSource

    write_images(tmp_path)
    reads = CountingReads()
    original = ImageSource.__getitem__

    def counted(self, i):
        reads.count += 1
        return original(self, i)

    monkeypatch.setattr(ImageSource, "__getitem__", counted)
    r = image_audit(tmp_path, monkeypatch)
    assert r.status != Status.ERROR, r.error
    # 48 images read for the clean scores (the cache) and 48 for 2 perturbations x 5 severities.
    assert reads.count == 2 * 48
    noise = [one(r, "auroc", "gaussian_noise", s).value for s in range(1, 6)]
    clean = one(r, "auroc").value
    print("clean AUROC", round(clean, 3), "gaussian_noise 1..5", [round(v, 3) for v in noise])
    assert clean > 0.85 and noise[-1] < clean - 0.05
    assert np.polyfit(range(1, 6), noise, 1)[0] < 0  # falls with the severity, on average
    assert np.all(np.diff(noise) <= 0.02) and noise[-1] < noise[0]  # monotone up to a draw's noise
    drops = [m for m in r.metrics if m.id in ("auroc_drop", "auroc_drop_stress") and m.group is None
             and m.perturbation == "gaussian_noise"]
    assert [m.severity for m in drops] == [1, 2, 3, 4, 5]
    assert all(m.perturbation in (None, "gaussian_noise", "contrast") for m in r.metrics)
    assert r.settings["model_input"] == "images" and "once" in r.settings["images_read"]
    again = image_audit(tmp_path, monkeypatch)
    key = [(m.id, m.perturbation, m.severity, m.label, str(m.group), m.value, m.ci) for m in r.metrics]
    assert key == [(m.id, m.perturbation, m.severity, m.label, str(m.group), m.value, m.ci) for m in again.metrics]
    other = image_audit(tmp_path, monkeypatch, seed=6)
    assert one(other, "auroc", "gaussian_noise", 5).value != one(r, "auroc", "gaussian_noise", 5).value


def test_image_sample_reads_only_the_sampled_rows(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    write_images(tmp_path)
    r = image_audit(tmp_path, monkeypatch, {"sample": 24, "severities": [2], "perturbations": ["gaussian_noise"]})
    assert r.status != Status.ERROR, (r.error, r.warnings)
    assert one(r, "n").value == 24 and r.settings["rows"]["audited"] == 24
    assert one(r, "positives").value == 12  # stratified by the label


# ---------------------------------------------------------------------------- tabular ----

def test_a_pipeline_without_imputer_reports_missing_values_and_the_rest_works(tmp_path):
    frame = cohort(600)
    audit, _ = tabular_audit(tmp_path, frame, {"severities": [1, 2]})
    r = audit.plugin("robustness")
    assert r.status == Status.WARN
    missing = [m for m in r.metrics if m.perturbation == "missing"]
    assert missing and all(m.value is None for m in missing)
    assert all(m.reason.startswith("the model cannot take missing values: ValueError: Input X contains NaN")
               for m in missing)
    assert "model.skops" not in missing[0].reason and str(tmp_path) not in missing[0].reason
    others = [m for m in r.metrics if m.id == "auroc" and m.group is None
              and m.perturbation in ("gaussian_noise", "unit_shift", "rounding")]
    assert len(others) == 6 and all(m.value is not None for m in others)
    finding = {f.id: f for f in r.findings}
    assert finding["model_failures"].status == Status.WARN
    assert finding["model_failures"].message.startswith("The model cannot take missing values")
    # The failed runs decide nothing else.
    assert "missing" not in finding["auroc_drop"].message


def test_a_large_drop_warns_in_plain_words_and_an_unclear_one_is_inconclusive(tmp_path):
    frame = cohort(900)
    audit, _ = tabular_audit(tmp_path, frame, {"tabular_perturbations": ["unit_shift"], "severities": [3]})
    f = {x.id: x for x in audit.plugin("robustness").findings}
    msg = f["sensitivity_drop"].message
    assert f["sensitivity_drop"].status == Status.WARN
    assert msg.startswith("Under a unit or calibration error at severity 3, specificity falls by")
    assert "more than the 5-point tolerance" in msg
    # Few rows: the same perturbation, mild, cannot be decided either way.
    small, _ = tabular_audit(tmp_path, cohort(120, seed=3), {"tabular_perturbations": ["rounding"], "severities": [3]})
    g = {x.id: x for x in small.plugin("robustness").findings}
    assert g["auroc_drop"].status in (Status.INCONCLUSIVE, Status.PASS)
    if g["auroc_drop"].status == Status.INCONCLUSIVE:
        assert g["auroc_drop"].message.startswith("The data cannot decide")


class TwoLabelModel:
    """A callable model of two findings (the adapter's contract: ``predict(features)``)."""

    kind = "callable"
    source = "two:labels"
    output_names = None

    def fingerprint(self):
        return "two-labels"

    def predict(self, features):
        a = 1 / (1 + np.exp(-(0.08 * (features.age.to_numpy() - 60))))
        b = 1 / (1 + np.exp(-(1.2 * (np.log(features.crp.to_numpy()) - 2))))
        return np.column_stack([a, b])


def test_multi_label_records_carry_their_label_and_threshold(tmp_path, monkeypatch):
    import audit.io.models

    frame = cohort(600)
    rng = np.random.default_rng(1)
    frame["z"] = rng.binomial(1, 1 / (1 + np.exp(-(1.2 * (np.log(frame.crp) - 2)))))
    frame.to_csv(tmp_path / "d.csv", index=False)
    monkeypatch.setattr(audit.io.models, "load_model", lambda *a, **k: TwoLabelModel())
    cfg = build_config({"data": {"path": "d.csv", "label": ["y", "z"], "features": FEATURES, "sensitive": ["site"],
                                 "id": "patient_id"},
                        "model": {"path": "two:labels"}, "run": {"seed": 2, "plugins": ["fairness", "robustness"]},
                        "robustness": {"tabular_perturbations": ["gaussian_noise"], "severities": [2], "n_boot": 200}},
                       base_dir=tmp_path, plugin_names=tuple(AVAILABLE))
    audit = run_audit(cfg, available=AVAILABLE, cwd=tmp_path)
    r = audit.plugin("robustness")
    assert r.status != Status.ERROR, r.error
    assert set(r.settings["thresholds"]) == {"y", "z"}
    scores = TwoLabelModel().predict(TABULAR_PERTURBATIONS["gaussian_noise"].apply(frame[FEATURES], 2,
                                                                                 audit.provenance["seed"]))
    for k, lab in enumerate(("y", "z")):
        [auc] = [m for m in r.metrics if m.id == "auroc" and m.label == lab and m.group is None
                 and m.perturbation == "gaussian_noise"]
        assert auc.value == pytest.approx(roc_auc_score(frame[lab], scores[:, k]), abs=1e-12)
        assert [m.label for m in r.metrics if m.id == "auroc_drop_worst"] == ["y", "z"]
    assert {f.id for f in r.findings} >= {"auroc_drop", "sensitivity_drop", "fnr_gap_change"}
    assert any(f.title.endswith("for z") for f in r.findings)


def test_predictions_only_is_skipped_with_the_reason(tmp_path):
    frame = cohort(200)
    frame["p"] = 0.5
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = build_config({"data": {"path": "d.csv", "label": "y", "score": "p"}, "run": {"plugins": ["robustness"]}},
                       base_dir=tmp_path, plugin_names=tuple(AVAILABLE))
    r = run_audit(cfg, available=AVAILABLE, cwd=tmp_path).plugin("robustness")
    assert r.status == Status.SKIPPED and "predictions-only" in r.summary and "model.path" in r.summary


def test_the_plugin_contract_holds():
    from audit.testing import check_plugin

    assert check_plugin(RobustnessPlugin).status == Status.SKIPPED  # the toy audit is predictions-only


def test_params_are_validated_with_the_key_named():
    with pytest.raises(ConfigError, match=r"Unknown image perturbation.*'fog'"):
        make_params(RobustnessPlugin, {"perturbations": ["fog"]})
    with pytest.raises(ConfigError, match=r"are for mri images, but the modality is 'xray'"):
        make_params(RobustnessPlugin, {"perturbations": ["mri_gibbs"], "modality": "xray"})
    with pytest.raises(ConfigError, match=r"robustness.severities: expected distinct integers from 1 to 5"):
        make_params(RobustnessPlugin, {"severities": [0, 2]})
    with pytest.raises(ConfigError, match=r"max_severity_gate = 1 is below every severity"):
        make_params(RobustnessPlugin, {"severities": [3, 4], "max_severity_gate": 1})
    with pytest.raises(ConfigError, match=r"Unknown tabular perturbation"):
        make_params(RobustnessPlugin, {"tabular_perturbations": ["blur"]})
    p = make_params(RobustnessPlugin, {"modality": "ct"})
    assert p.max_severity_gate == 3 and p.severities == (1, 2, 3, 4, 5)


# ---------------------------------------------------------------------------- small cells --

def _reader_view(audit):
    """Every table as the reader of results.json can read it: every fairness record; the
    robustness plugin's clean table under its label and each perturbed one as another outcome
    of the same rows, with the group's positives (the same rows have the same cases)."""
    out = list(audit.plugin("fairness").metrics)
    metrics = audit.plugin("robustness").metrics
    positives = {(str(m.group), m.label): m for m in metrics if m.id == "positives"}
    for m in metrics:
        if m.id in ("n", "positives") and m.perturbation is None:
            out.append(m)
        elif m.id in ("sensitivity", "specificity"):
            label = None if m.perturbation is None else f"{m.perturbation}@{m.severity}"
            out.append(Metric(m.id, m.value, n=m.n, group=m.group, label=label, suppressed=m.suppressed))
            pos = positives.get((str(m.group), m.label))
            if label is not None and pos is not None:
                out.append(Metric("positives", pos.value, n=pos.n, group=pos.group, label=label,
                                  suppressed=pos.suppressed))
    return out


def test_a_small_group_is_hidden_everywhere_and_no_count_is_recoverable(tmp_path):
    frame = cohort(900, small_group=12)  # 6 patients on the island
    audit, _ = tabular_audit(tmp_path, frame, {"tabular_perturbations": ["unit_shift", "gaussian_noise"],
                                               "severities": [1, 4]}, plugins=("fairness", "robustness"))
    r = audit.plugin("robustness")
    island = [m for m in r.metrics if m.group and m.group.get("site") != "north" and "small group" in m.group["site"]]
    assert island and all(m.suppressed and m.value is None and m.ci is None and m.n is None for m in island)
    assert not any(m.group == {"site": "island"} for m in r.metrics)  # the label is withheld too
    # A reader of both plugins' records solves for nothing the small-cell rule protects.
    view = _reader_view(audit)
    stand_in = next(m.group for m in island)
    targets = [Count("n", stand_in, None), Count("positives", stand_in, None)]
    targets += [Count(c, stand_in, f"{p}@{s}") for p in ("unit_shift", "gaussian_noise") for s in (1, 4)
                for c in ("tp", "tn")]
    for target, (lo, hi) in feasible_ranges(view, targets).items():
        assert lo < hi, f"{target} recovered as {lo}"
    # The reader has teeth: with nothing suppressed, the same view gives the island back.
    full, _ = tabular_audit(tmp_path, frame, {"tabular_perturbations": ["unit_shift", "gaussian_noise"],
                                              "severities": [1, 4]}, plugins=("fairness", "robustness"),
                            report={"full_record": True})
    naked = [replace(m, suppressed=False) for m in _reader_view(full)]
    lo, hi = feasible_ranges(naked, [Count("n", {"site": "island"}, None)])[Count("n", {"site": "island"}, None)]
    assert lo == hi == 12
    # Nothing of 1 to min_cell - 1 patients is published in a robustness record of a group.
    for m in r.metrics:
        if m.group and not m.suppressed and m.id in ("n", "patients", "positives"):
            assert m.value == 0 or m.value >= 10


# ------------------------------------------------------------------------- results.json --

def test_results_json_round_trip_keeps_perturbation_and_severity_and_validates(tmp_path):
    frame = cohort(400)
    audit, _ = tabular_audit(tmp_path, frame, {"tabular_perturbations": ["rounding"], "severities": [2, 4]})
    back = AuditResult.from_json(audit.to_json())
    assert back == audit
    r = back.plugin("robustness")
    assert {(m.perturbation, m.severity) for m in r.metrics} >= {(None, None), ("rounding", 2), ("rounding", 4)}
    jsonschema.Draft202012Validator(results_schema()).validate(json.loads(audit.to_json()))
    assert audit.schema_version == "1.6"
    # A suppressed record keeps its perturbation and severity in the public record.
    from audit.core.results import public_record

    hidden = Metric("auroc_drop", 0.1, n=5, group={"site": "x"}, suppressed=True, perturbation="rounding", severity=2)
    [pub] = public_record(AuditResult(plugins=(type(r)(plugin="robustness", principle="Robustness", version="1",
                                                         status=Status.PASS, summary="", metrics=(hidden,)),)
                                      )).plugins[0].metrics
    assert pub.value is None and (pub.perturbation, pub.severity) == ("rounding", 2)
