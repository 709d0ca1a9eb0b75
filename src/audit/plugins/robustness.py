"""Robustness plugin: how much does performance fall on degraded inputs (FUTURE-AI Robustness 3)?

The model is called again on perturbed copies of the audited inputs, each named perturbation
(:mod:`audit.robustness`) at each severity: images for an image model (each batch read once,
every perturbation and severity applied to it in memory), the feature table for a tabular
model. The same rows are scored clean and perturbed, so every comparison is *paired*:

- per perturbation and severity: AUROC, sensitivity and specificity at the shared operating
  point (:func:`audit.plugins.records.shared_operating_point`), the share of rows whose
  decision flips (``flip_rate``) and the mean score change (``score_shift``);
- the drops against the clean inputs (clean minus perturbed, positive = worse), overall and per
  sensitive group, with paired intervals: :func:`paired_auroc_drop` (the difference of the two
  AUROCs' DeLong influence values row by row, cluster-robust by patient, with small-sample
  corrections) and :func:`paired_rate_drop` (Newcombe's paired MOVER interval from the two
  rates' Wilson intervals at the Korn-Graubard effective sample size);
- per sensitive attribute, whether corruption widens the gap in missed cases between the worst
  and the best group (``fnr_gap_change``, :func:`fnr_gap_change`, patient bootstrap);
- the worst case over the perturbations at severities up to ``max_severity_gate``
  (``*_worst``), and the per-record ids up to that severity, so that gates such as
  ``robustness.auroc_drop<=0.05`` judge the severities a deployment should withstand; the
  same quantities at higher severities are published as ``*_stress`` (drawn in the report,
  judged only by a gate that names them).

Small groups follow the fairness plugin's rules (:mod:`audit.plugins.records`): a group of
fewer than ``report.min_cell`` patients is hidden with its label, rates resting on a count of
1 to ``min_cell - 1`` are hidden, and every perturbed confusion table is protected against
subtraction (:func:`audit.privacy.secondary_suppression`, each table an outcome of the same
rows).

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL (1988) Biometrics 44:837. Newcombe RG (1998) Improved
confidence intervals for the difference between binomial proportions based on paired data.
Stat Med 17:2635 (method 10). Korn EL, Graubard BI (1998) Survey Methodology 24:193.
Hendrycks D, Dietterich T (2019) Benchmarking neural network robustness to common corruptions
and perturbations. ICLR.
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from audit import __version__
from audit.core.progress import track
from audit.core.results import (
    NOT_RUN,
    SMALL_GROUP,
    Finding,
    Metric,
    PluginResult,
    Status,
    worst_status,
)
from audit.errors import ConfigError, ModelError
from audit.plugins.base import AuditPlugin
from audit.plugins.records import (
    group_codes,
    patient_clusters,
    shared_operating_point,
    small_cell,
)
from audit.privacy import Count, secondary_suppression
from audit.robustness import get_perturbations, get_tabular_perturbations
from audit.stats import (
    auroc_influence,
    bootstrap_counts,
    bootstrap_p_value,
    choose_threshold,
    influence_se,
    parse_operating_point,
    percentile_interval,
    wald_interval,
)
from audit.stats.proportions import cluster_proportions, proportion_interval

CHECKLIST = ("FUTURE-AI:Robustness 3", "CLAIM-2024:30", "TRIPOD+AI:27a")
COUNT_IDS = ("n", "patients", "positives", "threshold")
SCORE_IDS = ("auroc", "sensitivity", "specificity")
DROP_IDS = ("auroc_drop", "sensitivity_drop", "specificity_drop")
PAIR_IDS = DROP_IDS + ("flip_rate", "score_shift", "fnr_gap_change")
STRESS_IDS = tuple(f"{m}_stress" for m in PAIR_IDS)
WORST_IDS = ("auroc_drop_worst", "sensitivity_drop_worst", "specificity_drop_worst", "flip_rate_worst",
             "fnr_gap_change_worst")
TASK = "classification"  # segmentation records (task "segmentation") are planned, not built

# The perturbations in words, for findings ("Under Gaussian noise at severity 3, ...").
IMAGE_WORDS = {
    "gaussian_noise": "Gaussian noise", "gaussian_blur": "Gaussian blur", "contrast": "lower contrast",
    "brightness": "brightening", "gamma": "a gamma curve", "jpeg": "JPEG compression",
    "downsample": "lower resolution", "rotation": "rotation", "translation": "a shift of the image",
    "mri_rician_noise": "MRI Rician noise", "mri_bias_field": "an MRI bias field", "mri_gibbs": "MRI Gibbs ringing",
    "mri_kspace_spike": "an MRI k-space spike", "mri_ghosting": "MRI ghosting", "mri_motion": "MRI motion",
    "xray_exposure": "a lower X-ray dose", "xray_gamma": "an X-ray look-up-table gamma", "ct_noise": "CT noise",
}
TABULAR_WORDS = {"gaussian_noise": "noise on the numeric features", "missing": "missing values",
                 "unit_shift": "a unit or calibration error", "rounding": "coarser recording of numbers"}

AUROC_DROP_METHOD = (
    "paired Wald interval on the difference of the clean and perturbed AUROCs' DeLong influence values, row by "
    "row (the same rows), cluster-robust by patient; small-sample corrections: each class's influence scaled by "
    "C/(C-1) of its patients (DeLong's n-1) and a t quantile with min(patients with, patients without the "
    "condition) - 1 degrees of freedom")
RATE_DROP_METHOD = (
    "paired MOVER interval (Newcombe 1998, method 10): Wilson score intervals of the clean and the perturbed "
    "rate at the Korn-Graubard effective sample size, their correlation recovered from the cluster-robust "
    "variances of the two rates and of their difference")
CP_METHOD = "Clopper-Pearson exact interval at the Korn-Graubard effective sample size"
SHIFT_METHOD = "mean of the per-row score change, cluster-robust Wald interval with a t quantile (patients - 1 df)"
WORST_METHOD = ("maximum over the K perturbations at severities <= max_severity_gate; interval from the maxima of "
                "their bounds at the Bonferroni level 1 - (1 - level) / K (it covers the largest true drop)")


def _gap_method(n_boot: int) -> str:
    return (f"patient bootstrap ({n_boot} replicates, exact resampling of count profiles), percentile "
            "interval; the worst and the best adequately powered group (highest and lowest FNR) re-selected "
            "in each replicate, clean and perturbed from the same resample")


# ------------------------------------------------------------------------------ intervals --

def _codes(clusters, n: int) -> np.ndarray:
    """Dense cluster codes; every row its own cluster when there is no identifier."""
    if clusters is None:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.asarray(clusters), return_inverse=True)[1].astype(np.int64).reshape(-1)


def _t(level: float, df: float) -> float:
    return float(sps.t.ppf((1 + level) / 2, max(df, 1)))


def paired_auroc_drop(y_true, score_clean, score_perturbed, clusters=None, levels=(0.95,)):
    """AUROC on clean minus AUROC on perturbed inputs of the same rows, with paired intervals.

    Parameters
    ----------
    y_true : array of 0/1, shape (n,)
    score_clean, score_perturbed : arrays of shape (n,)
        The model's scores for the same rows, clean and perturbed.
    clusters : array of shape (n,), optional
        Patient of each row (rows of one patient are correlated); None: rows independent.
    levels : sequence of float
        Interval levels (e.g. the nominal and a simultaneous one).

    Returns
    -------
    drop : float
        ``AUROC(clean) - AUROC(perturbed)`` (NaN with one class only).
    intervals : list of (low, high) or None
        Paired Wald intervals: the standard error is that of the row-wise difference of the two
        DeLong influence vectors, cluster-robust (:func:`audit.stats.influence_se`), with each
        class's influence scaled by ``sqrt(C_k / (C_k - 1))`` (its patients C_k: DeLong's n-1,
        which the pooled cluster factor leaves out when one class has few patients) and the
        quantile of a t distribution with ``min(C_1, C_0) - 1`` degrees of freedom. Bounds are
        clipped to [-1, 1]. None when a class has fewer than 2 patients.
    reason : str or None
        Why the drop or its interval is undefined.

    Notes
    -----
    Coverage by simulation (tests/unit/plugins/test_robustness.py): 5 to 20 patients with the
    condition (2 rows each), clean AUROC 0.95, drops 0.003 to 0.16: at least 0.92 at 95%;
    without the two corrections the same Wald interval covered 0.80 to 0.93.
    """
    y = np.asarray(y_true).astype(bool)
    a, psi_a = auroc_influence(y, score_clean)
    if psi_a is None:
        return float("nan"), None, "only one class (AUROC needs cases and controls)"
    b, psi_b = auroc_influence(y, score_perturbed)
    codes = _codes(clusters, y.size)
    c1, c0 = len(np.unique(codes[y])), len(np.unique(codes[~y]))
    drop = a - b
    if min(c1, c0) < 2:
        return drop, None, "fewer than 2 patients with or without the condition: no interval"
    scale = np.where(y, np.sqrt(c1 / (c1 - 1)), np.sqrt(c0 / (c0 - 1)))
    se = influence_se((psi_a - psi_b) * scale, codes)
    out = []
    for lv in levels:
        q = _t(lv, min(c1, c0) - 1)
        out.append((max(-1.0, drop - q * se), min(1.0, drop + q * se)))
    return drop, out, None


def paired_rate_drop(hit_clean, hit_perturbed, clusters=None, levels=(0.95,)):
    """A rate on clean minus the same rate on perturbed inputs (e.g. sensitivity: ``hit`` = a
    detected case), over the same rows (its denominator), with Newcombe's paired interval.

    Parameters
    ----------
    hit_clean, hit_perturbed : arrays of 0/1, shape (n,)
        Per row of the denominator: counted in the rate's numerator, clean and perturbed.
    clusters : array of shape (n,), optional
        Patient of each row.
    levels : sequence of float

    Returns
    -------
    drop : float
        ``mean(hit_clean) - mean(hit_perturbed)`` (NaN when there are no rows).
    intervals : list of (low, high) or None
        Newcombe's method 10, the MOVER interval of a paired difference: with ``(l_k, u_k)``
        the Wilson score interval of each rate at its Korn-Graubard effective sample size
        (:func:`audit.stats.proportions.proportion_interval`) and ``r`` their correlation,
        ``L = d - sqrt((p_1 - l_1)^2 - 2 r (p_1 - l_1)(u_2 - p_2) + (u_2 - p_2)^2)`` and
        ``U = d + sqrt((u_1 - p_1)^2 - 2 r (u_1 - p_1)(p_2 - l_2) + (p_2 - l_2)^2)``.
        ``r`` is recovered from the cluster-robust variances of the two rates and of their
        difference; 0 when a rate is 0 or 1 (Newcombe's rule for an empty margin).

    Notes
    -----
    Unlike a Wald interval of the per-row differences, it is not a point when no row's
    decision changed (with 10 cases and no change the truth can still be 0.2 either way).
    Coverage by simulation: 5 to 20 patients with the condition, 2 rows each, sensitivity 0.75
    to 0.97: at least 0.95 at 95% (the cluster-robust Wald interval: 0.19 to 0.96).
    """
    h1 = np.asarray(hit_clean, dtype=np.float64)
    h2 = np.asarray(hit_perturbed, dtype=np.float64)
    if h1.size == 0:
        return float("nan"), None
    codes = _codes(clusters, h1.size)
    k1, k2 = np.bincount(codes, weights=h1), np.bincount(codes, weights=h2)
    m = np.bincount(codes).astype(np.float64)
    unit = np.zeros(len(m), np.int64)
    one, two = cluster_proportions(k1, m, unit, 1), cluster_proportions(k2, m, unit, 1)
    p1, p2 = float(one.p[0]), float(two.p[0])
    d = p1 - p2
    v1, v2 = float(((k1 - p1 * m) ** 2).sum()), float(((k2 - p2 * m) ** 2).sum())
    vd = float(((k1 - k2 - d * m) ** 2).sum())
    r = float(np.clip((v1 + v2 - vd) / (2 * np.sqrt(v1 * v2)), -1.0, 1.0)) if v1 > 0 and v2 > 0 else 0.0
    out = []
    for lv in levels:
        l1, u1 = (float(x[0]) for x in proportion_interval(one, lv, "wilson"))
        l2, u2 = (float(x[0]) for x in proportion_interval(two, lv, "wilson"))
        down = (p1 - l1) ** 2 - 2 * r * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
        up = (u1 - p1) ** 2 - 2 * r * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
        out.append((max(-1.0, d - np.sqrt(max(down, 0.0))), min(1.0, d + np.sqrt(max(up, 0.0)))))
    return d, out


def rate_estimate(hit, clusters=None, levels=(0.95,)):
    """A rate (share of rows with ``hit``) with Clopper-Pearson intervals at the Korn-Graubard
    effective sample size, as the fairness plugin's rates."""
    h = np.asarray(hit, dtype=np.float64)
    if h.size == 0:
        return float("nan"), None
    codes = _codes(clusters, h.size)
    prop = cluster_proportions(np.bincount(codes, weights=h), np.bincount(codes).astype(float),
                               np.zeros(codes.max() + 1, np.int64), 1)
    out = [tuple(float(x[0]) for x in proportion_interval(prop, lv)) for lv in levels]
    return float(prop.p[0]), out


def auroc_estimate(y_true, y_score, clusters=None, levels=(0.95,)):
    """AUROC with logit-Wald DeLong intervals (cluster-robust), as the fairness plugin's."""
    y = np.asarray(y_true).astype(bool)
    value, psi = auroc_influence(y, y_score)
    if psi is None:
        return float("nan"), None, "only one class (AUROC needs cases and controls)"
    se = influence_se(psi, _codes(clusters, y.size))
    out = []
    for lv in levels:
        lo, hi = wald_interval(value, se, level=lv, transform="logit")
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return value, None, "interval undefined (AUROC at the boundary 0 or 1)"
        out.append((float(lo), float(hi)))
    return value, out, None


def mean_shift(diff, clusters=None, levels=(0.95,)):
    """Mean of per-row differences (perturbed minus clean score), cluster-robust Wald with t."""
    d = np.asarray(diff, dtype=np.float64)
    mean = float(d.mean())
    codes = _codes(clusters, d.size)
    c = int(codes.max()) + 1
    if c < 2:
        return mean, None
    se = influence_se((d - mean) / d.size, codes)
    return mean, [(mean - _t(lv, c - 1) * se, mean + _t(lv, c - 1) * se) for lv in levels]


def fnr_gap_change(y_true, miss_clean, miss_perturbed, group, n_groups, clusters=None, *, n_boot=1000,
                   random_state=None, levels=(0.95,)):
    """How much a perturbation widens the FNR gap between the worst and the best group.

    Parameters
    ----------
    y_true : array of 0/1
    miss_clean, miss_perturbed : arrays of 0/1
        Per row: a case the model misses (only rows with ``y_true == 1`` count).
    group : int array in [0, n_groups)
        The (eligible) group of each row; -1 for rows outside the groups compared.
    clusters : array, optional
        Patient of each row: the bootstrap resamples patients.

    Returns
    -------
    change : float
        ``(max_g FNR'_g - min_g FNR'_g) - (max_g FNR_g - min_g FNR_g)`` (perturbed minus clean);
        positive means that corruption widens the gap. NaN with fewer than 2 groups with cases.
    intervals : list of (low, high) or None
        Percentile intervals of the patient bootstrap of that change (clean and perturbed from
        the same resample, the worst and the best group re-selected in each), from
        :func:`audit.stats.bootstrap_counts` (exact resampling of count profiles), widened where
        needed to contain the estimate; None when fewer than half the replicates are defined.
        Coverage by simulation (3 groups of about 60 cases, the change 0.03): 0.98 to 0.99 at 95%.
    p_value : float or None
        Bootstrap test of "no change".
    """
    y = np.asarray(y_true).astype(bool)
    g = np.asarray(group, dtype=np.int64)
    keep = g >= 0
    miss_c = np.asarray(miss_clean, np.int64)
    miss_p = np.asarray(miss_perturbed, np.int64)
    cat = np.where(keep & y, g * 4 + miss_c * 2 + miss_p, n_groups * 4)
    observed = np.bincount(cat, minlength=n_groups * 4 + 1)[None, :]
    change = float(_gap_change(observed, n_groups)[0])
    if not np.isfinite(change):
        return change, None, None
    cl = None if clusters is None else np.asarray(clusters)
    reps = bootstrap_counts(cat, n_groups * 4 + 1, clusters=cl, n_boot=n_boot, random_state=random_state)
    samples = _gap_change(reps, n_groups)
    out = []
    for lv in levels:
        lo, hi = percentile_interval(samples, lv)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return change, None, None
        # A skewed bootstrap of a maximum can leave the estimate just outside its percentile
        # interval; the interval is widened to contain it (never narrowed).
        out.append((min(float(lo), change), max(float(hi), change)))
    return change, out, float(bootstrap_p_value(samples))


def _gap_change(counts: np.ndarray, n_groups: int) -> np.ndarray:
    c = counts[:, : n_groups * 4].reshape(len(counts), n_groups, 4).astype(np.float64)
    pos = c.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        fnr_c = np.where(pos > 0, (c[:, :, 2] + c[:, :, 3]) / np.where(pos > 0, pos, 1), np.nan)
        fnr_p = np.where(pos > 0, (c[:, :, 1] + c[:, :, 3]) / np.where(pos > 0, pos, 1), np.nan)
    defined = (pos > 0).sum(axis=1) >= 2

    def gap(f):
        hi = np.max(np.where(np.isnan(f), -np.inf, f), axis=1)
        lo = np.min(np.where(np.isnan(f), np.inf, f), axis=1)
        return hi - lo

    return np.where(defined, gap(fnr_p) - gap(fnr_c), np.nan)


# ---------------------------------------------------------------------------------- params --

@dataclass(frozen=True)
class RobustnessParams:
    """Parameters of the robustness plugin (section ``[robustness]`` of audit.toml).

    perturbations : image perturbation names (:data:`audit.robustness.PERTURBATIONS`); default
        the generic ones plus those of ``modality``.
    modality : ``mri``, ``xray`` or ``ct`` (or DICOM codes MR, CR, DX): adds that family's
        artefacts to the default, and refuses another family's by name.
    tabular_perturbations : for tabular models (:data:`audit.robustness.TABULAR_PERTURBATIONS`);
        default all (``gaussian_noise``, ``missing``, ``unit_shift``, ``rounding``).
    severities : the severities run, 1 (mild) to 5 (severe).
    max_severity_gate : the highest severity the per-record gate ids (``auroc_drop`` ...) and
        the worst cases (``*_worst``) cover; above it the records are ``*_stress``.
    sample : at most this many rows are audited (drawn by label, seeded by the run's seed);
        default all.
    level : interval level. threshold, operating_point : the shared operating point, as in
        ``[fairness]`` (whose values apply when these are not set).
    auroc_tolerance, rate_tolerance : the losses the findings judge against.
    n_boot : patient-bootstrap replicates of ``fnr_gap_change``.
    min_group_n, min_positives : groups below either are under-powered (default: as
        ``[fairness]``, else 30 and 10).
    """

    perturbations: tuple[str, ...] | None = None
    modality: str | None = None
    tabular_perturbations: tuple[str, ...] | None = None
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    max_severity_gate: int = 3
    sample: int | None = None
    level: float = 0.95
    threshold: float | None = None
    operating_point: str | None = None
    auroc_tolerance: float = 0.05
    rate_tolerance: float = 0.05
    n_boot: int = 1000
    min_group_n: int | None = None
    min_positives: int | None = None

    def validate(self) -> None:
        try:
            get_perturbations(self.perturbations, self.modality)
            get_tabular_perturbations(self.tabular_perturbations)
        except ConfigError as exc:
            raise ConfigError(f"robustness: {exc}") from None
        if self.perturbations is not None and not self.perturbations:
            raise ConfigError("robustness.perturbations: the list is empty; remove the key for the default set.")
        if not self.severities or len(set(self.severities)) != len(self.severities) or any(
                s not in (1, 2, 3, 4, 5) for s in self.severities):
            raise ConfigError(f"robustness.severities: expected distinct integers from 1 to 5, got "
                              f"{list(self.severities)}.")
        if self.max_severity_gate not in (1, 2, 3, 4, 5):
            raise ConfigError(f"robustness.max_severity_gate: expected 1 to 5, got {self.max_severity_gate}.")
        if not any(s <= self.max_severity_gate for s in self.severities):
            raise ConfigError(f"robustness.max_severity_gate = {self.max_severity_gate} is below every severity "
                              f"run ({list(self.severities)}): no record could be gated. Add a severity <= "
                              f"{self.max_severity_gate} or raise max_severity_gate.")
        if self.sample is not None and self.sample < 20:
            raise ConfigError(f"robustness.sample: expected at least 20 rows (or no key: all rows), got {self.sample}.")
        if not 0.5 < self.level < 1:
            raise ConfigError(f"robustness.level: expected a number in (0.5, 1), got {self.level}.")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ConfigError(f"robustness.threshold: {self.threshold:g} is outside [0, 1].")
        if self.operating_point is not None:
            try:
                parse_operating_point(self.operating_point)
            except ValueError as exc:
                raise ConfigError(f"robustness.operating_point: {exc}") from None
        for name in ("auroc_tolerance", "rate_tolerance"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"robustness.{name}: expected a number in [0, 1], got {getattr(self, name)}.")
        if not 200 <= self.n_boot <= 100_000:
            raise ConfigError(f"robustness.n_boot: expected 200 to 100,000, got {self.n_boot}.")
        for name in ("min_group_n", "min_positives"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"robustness.{name}: expected an integer >= 1, got {v}.")


# ---------------------------------------------------------------------------- the plugin --

@dataclass
class _Pair:
    """One perturbation at one severity: its scores (rows x labels), or why there are none;
    ``gated``: at a severity up to max_severity_gate."""

    name: str
    severity: int
    gated: bool = True
    scores: np.ndarray | None = None
    reason: str | None = None


@dataclass
class _Unit:
    """The overall population (group None) or one group of a sensitive attribute."""

    group: dict[str, str] | None
    rows: np.ndarray
    counts: dict[str, int]
    patients: dict[str, int]
    powered: bool
    column: str | None = None


class RobustnessPlugin(AuditPlugin):
    """Performance on perturbed inputs against the same rows' clean inputs.

    SKIPPED for a predictions-only audit (nothing to perturb), a model the plugin cannot call
    again (neither an image network nor a tabular model), or a tabular model without
    ``data.features``. A tabular model that fails on a perturbation (a pipeline without an
    imputer on ``missing``) gets records without values and the reason, and a finding.
    """

    name = "robustness"
    principle = "Robustness"
    version = __version__
    metrics = tuple(dict.fromkeys(COUNT_IDS + SCORE_IDS + PAIR_IDS + STRESS_IDS + WORST_IDS))
    checklist = CHECKLIST
    Params = RobustnessParams

    def run(self, ctx) -> PluginResult:
        p: RobustnessParams = self.params
        image = getattr(ctx.model, "network", None) is not None
        kind = getattr(ctx.model, "kind", None)
        if not image and kind == "predictions":
            return self.skipped("a predictions-only audit (scores read from the data): there is no model to call on "
                                "perturbed inputs; give the model (model.path) to assess robustness")
        if not image and kind not in ("sklearn", "callable"):
            return self.skipped(f"the model ({kind}) cannot be called on perturbed inputs by this plugin")
        features = list(ctx.config.data.features)
        if not image and not features:
            return self.skipped("no input features configured (data.features): nothing to perturb")
        warnings: list[str] = []
        perts = get_perturbations(p.perturbations, p.modality) if image else \
            get_tabular_perturbations(p.tabular_perturbations)
        if not image and (p.perturbations is not None or p.modality is not None):
            warnings.append("robustness.perturbations and robustness.modality apply to image models; this tabular "
                            "model gets robustness.tabular_perturbations.")
        words = IMAGE_WORDS if image else TABULAR_WORDS
        labels = list(ctx.labels)
        thresholds, threshold_method = self._thresholds(ctx, labels, p.threshold, p.operating_point, warnings)
        frame = ctx.data.frame
        rows, sample_note = self._sample(ctx, frame, labels[0])
        sub = frame.iloc[rows].reset_index(drop=True)
        clean = np.asarray(ctx.predictions("data"), dtype=np.float64)[rows]
        severities = sorted(p.severities)
        pairs = [_Pair(pt.name, s, gated=s <= p.max_severity_gate) for pt in perts for s in severities]
        seed = int(ctx.random_state or 0) % (2**32)
        if image:
            self._image_scores(ctx, rows, len(frame), perts, pairs, seed, len(labels))
        else:
            self._tabular_scores(ctx, sub, features, perts, pairs, seed, len(labels))
        clusters, cluster_note = patient_clusters(sub, ctx.id_column)
        fair = ctx.config.plugin_params.get("fairness", {})
        min_group_n = p.min_group_n or fair.get("min_group_n", 30)
        min_positives = p.min_positives or fair.get("min_positives", 10)
        # The clean confusion table is the fairness plugin's when the same rows are scored at the
        # same threshold: the disclosure model must then see the two as one table.
        fair_thresholds, _ = self._thresholds(ctx, labels, None, None, [])
        same_table = len(rows) == len(frame) and list(fair_thresholds) == list(thresholds)
        analysis = _Analysis(self, ctx, sub, labels, thresholds, clean, pairs, clusters, min_group_n,
                             min_positives, seed, same_table)
        metrics = analysis.records()
        findings = self._findings(metrics, pairs, words, labels, bool(ctx.sensitive))
        status = worst_status(f.status for f in findings) if findings else Status.INCONCLUSIVE
        lead = min(findings, key=lambda f: [Status.ERROR, Status.FAIL, Status.WARN, Status.INCONCLUSIVE,
                                            Status.PASS, Status.SKIPPED].index(f.status))
        unit = "patients" if clusters is not None else "cases"
        settings = {
            "task": TASK,
            "model_input": "images" if image else "feature table",
            "labels": labels,
            "thresholds": {lab: float(t) for lab, t in zip(labels, thresholds, strict=True)},
            "threshold_method": threshold_method,
            "prediction_rule": "score >= threshold",
            "perturbations": [{"name": pt.name, "family": getattr(pt, "family", "tabular"), "words": words.get(pt.name, pt.name),
                               "description": pt.description, "values": list(pt.severities)} for pt in perts],
            "severities": severities,
            "max_severity_gate": p.max_severity_gate,
            "gate_ids": (f"auroc_drop, sensitivity_drop, specificity_drop, flip_rate, score_shift and fnr_gap_change "
                         f"cover severities <= {p.max_severity_gate}; above it the same records are *_stress; "
                         "auroc, sensitivity and specificity cover every severity"),
            "rows": {"audited": len(rows), "of": len(frame), "sample": sample_note},
            "seed_use": ("the run's seed (provenance.seed) seeds every perturbation, per image or column; the "
                         "severities of one perturbation share their random draws"),
            "images_read": "once: every perturbation and severity is applied to each batch in memory" if image else None,
            "interval_level": p.level,
            "interval_methods": {
                "auroc": "logit-Wald interval, DeLong influence functions" + (", cluster-robust" if clusters is not None else ""),
                "sensitivity, specificity, flip_rate": "Clopper-Pearson exact interval at the Korn-Graubard effective "
                                                       "sample size",
                "auroc_drop": AUROC_DROP_METHOD,
                "sensitivity_drop, specificity_drop": RATE_DROP_METHOD,
                "score_shift": SHIFT_METHOD,
                "fnr_gap_change": _gap_method(p.n_boot),
                "*_worst": WORST_METHOD,
            },
            "drop_definition": "clean minus perturbed on the same rows: positive = worse under the perturbation",
            "simultaneous_intervals": ("Bonferroni: each value's interval also at level 1 - (1 - level) / m, m the "
                                       "number of records of its id; gates and findings judge 'exceeds' on it"),
            "counting_unit": unit,
            "clusters": cluster_note,
            "min_group_n": min_group_n,
            "min_positives": min_positives,
            "min_cell": ctx.min_cell,
            "auroc_tolerance": p.auroc_tolerance,
            "rate_tolerance": p.rate_tolerance,
            "n_boot": p.n_boot,
            "failed": {f"{q.name}@{q.severity}": q.reason for q in pairs if q.reason},
        }
        return PluginResult(
            plugin=self.name, principle=self.principle, version=self.version, status=status, summary=lead.message,
            metrics=tuple(metrics), findings=tuple(findings), settings=settings, warnings=tuple(warnings),
            checklist=self.checklist,
        )

    # ------------------------------------------------------------------ inputs
    def _thresholds(self, ctx, labels, threshold, rule, warnings):
        """The shared operating point of each label (the first through
        :func:`~audit.plugins.records.shared_operating_point`, the others by the same rule)."""
        rule_used, first, method = shared_operating_point(ctx, threshold, rule, warnings)
        out = [first]
        fixed = threshold if threshold is not None else ctx.config.plugin_params.get("fairness", {}).get("threshold")
        for lab in labels[1:]:
            if fixed is not None:
                out.append(float(fixed))
                continue
            k = labels.index(lab)
            ds = ctx.reference if ctx.reference is not None else ctx.data
            y, s = ds.frame[lab].to_numpy(), ctx.predictions("reference" if ctx.reference is not None else "data")[:, k]
            if y.min() == y.max():
                raise ConfigError(f"Cannot choose the operating point for '{lab}': only one class is present. "
                                  "Pass --threshold.")
            out.append(float(choose_threshold(y, s, rule_used)))
        if len(labels) > 1:
            method += ", one threshold per label"
        return out, method

    def _sample(self, ctx, frame, label):
        p: RobustnessParams = self.params
        n = len(frame)
        if p.sample is None or p.sample >= n:
            return np.arange(n), "all rows"
        rng = np.random.default_rng([int(ctx.random_state or 0) % (2**32), zlib.crc32(b"robustness sample")])
        y = frame[label].to_numpy()
        picked = []
        for value in np.unique(y):
            idx = np.flatnonzero(y == value)
            k = max(1, round(p.sample * len(idx) / n))
            picked.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
        rows = np.sort(np.concatenate(picked))
        return rows, f"{len(rows)} of {n} rows, drawn by '{label}' (stratified, seeded by the run's seed)"

    def _image_scores(self, ctx, rows, n_all, perts, pairs, seed, n_labels):
        import torch

        from audit.imaging.loader import ImageSource

        adapter = ctx.model
        source = adapter.image_source(ctx.data)
        position = np.full(n_all, -1, np.int64)
        position[rows] = np.arange(len(rows))
        subset = len(rows) < n_all and isinstance(source, ImageSource)
        if subset:
            source = ImageSource([source.paths[i] for i in rows], source.base_dir, source.preprocessing,
                                 window=source.window, nifti_slice=source.nifti_slice, base_label=source.base_label)
        for q in pairs:
            q.scores = np.full((len(rows), n_labels), np.nan)
        by_name = {pt.name: pt for pt in perts}
        with track(ctx.progress, "robustness: perturbed images", len(rows) * len(pairs)) as advance:
            for idx, batch in source.batches(adapter.batch_size, adapter.workers):
                idx = np.asarray(idx)
                # where: the position among the audited rows; data_rows: the row of the data.
                data_rows = rows[idx] if subset else idx
                where = idx if subset else position[idx]
                keep = where >= 0
                if not keep.any():
                    continue
                x = torch.from_numpy(np.ascontiguousarray(batch[keep]))
                at, ids = where[keep], [int(i) for i in data_rows[keep]]
                for q in pairs:
                    if q.reason is None:
                        try:
                            out = by_name[q.name].apply(x, q.severity, seed, sample_ids=ids)
                            probs = np.asarray(adapter.network.forward(out.numpy().astype(np.float32, copy=False)),
                                               dtype=np.float64)
                            q.scores[at] = _check_scores(probs, len(at), n_labels)
                        except (ModelError, ValueError, RuntimeError) as exc:
                            q.reason, q.scores = f"the model failed on the perturbed images: {_first_line(exc)}", None
                    advance(len(at))

    def _tabular_scores(self, ctx, sub, features, perts, pairs, seed, n_labels):
        X = sub[features]
        by_name = {pt.name: pt for pt in perts}
        with track(ctx.progress, "robustness: perturbed features", len(sub) * len(pairs)) as advance:
            for q in pairs:
                perturbed = by_name[q.name].apply(X, q.severity, seed)
                try:
                    # The user's pipeline may warn on perturbed values (log1p of a negative
                    # value shifted by noise): what it returns is the finding, not its warnings.
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        raw = ctx.model.predict(perturbed)
                    q.scores = _check_scores(np.asarray(raw, dtype=np.float64), len(sub), n_labels)
                except Exception as exc:  # noqa: BLE001 - the user's model failing is the finding
                    what = ("the model cannot take missing values" if q.name == "missing"
                            else "the model failed on the perturbed features")
                    q.reason = f"{what}: {_first_line(exc)}"
                advance(len(sub))

    # ------------------------------------------------------------------ findings
    def _findings(self, metrics, pairs, words, labels, has_groups):
        p: RobustnessParams = self.params
        multi = len(labels) > 1
        out = []
        failed_runs = {(q.name, q.severity) for q in pairs if q.reason}
        # Runs the model failed on have their own finding; the others decide these.
        overall = [m for m in metrics if m.group is None and (m.perturbation, m.severity) not in failed_runs]
        for lab in (labels if multi else [None]):
            where = f" for {lab}" if lab else ""
            mine = [m for m in overall if m.label == lab]
            out.append(_drop_finding("auroc_drop", f"AUROC under perturbation{where}", "AUROC",
                                     [m for m in mine if m.id == "auroc_drop"], p.auroc_tolerance, words, p,
                                     points=False, checklist=self.checklist, label=lab))
            out.append(_drop_finding("sensitivity_drop", f"Decisions under perturbation{where}", "sensitivity",
                                     [m for m in mine if m.id in ("sensitivity_drop", "specificity_drop")],
                                     p.rate_tolerance, words, p, points=True, checklist=self.checklist, label=lab))
            if has_groups:
                gaps = [m for m in overall if m.id == "fnr_gap_change" and m.label == lab]
                out.append(_gap_finding(gaps, p, words, self.checklist, lab, where))
        failed = [q for q in pairs if q.reason]
        if failed:
            names = sorted({q.name for q in failed})
            first = failed[0]
            out.append(Finding(
                id="model_failures", title="Inputs the model cannot take", status=Status.WARN,
                message=(f"{first.reason[0].upper()}{first.reason[1:]} (under {words.get(first.name, first.name)}; "
                         f"{len(failed)} of {len(pairs)} perturbation-severity runs failed: {', '.join(names)}). "
                         "In use, such inputs must be caught before the model sees them."),
                metric="auroc_drop", checklist=self.checklist, kind="measurement"))
        return out


def _first_line(exc: BaseException) -> str:
    """The first line of the underlying error (``ValueError: Input X contains NaN``): the
    adapter's wrapper names the model file, which the findings must not print."""
    inner = exc.__cause__ if isinstance(exc, ModelError) and exc.__cause__ is not None else exc
    text = f"{type(inner).__name__}: {inner}" if inner is not exc or not isinstance(exc, ModelError) else str(exc)
    lines = [s.strip() for s in text.strip().splitlines() if s.strip()]
    return (lines[0] if lines else type(inner).__name__).rstrip(".")[:300]


def _check_scores(scores: np.ndarray, n_rows: int, n_labels: int) -> np.ndarray:
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.shape != (n_rows, n_labels):
        raise ModelError(f"the model returned shape {scores.shape} for {n_rows} rows and {n_labels} label(s)")
    if not np.all(np.isfinite(scores)):
        raise ModelError(f"the model returned {int((~np.isfinite(scores)).sum())} NaN or infinite scores")
    if np.any((scores < 0) | (scores > 1)):
        raise ModelError("the model returned scores outside [0, 1]")
    return scores


def _pct(v: float) -> str:
    return f"{100 * v:.0f}" if abs(100 * v - round(100 * v)) < 0.05 else f"{100 * v:.1f}"


def _fmt(v: float, points: bool) -> str:
    return f"{_pct(v)} points" if points else f"{v:.3f}"


def _ci(ci, points: bool) -> str:
    return f"95% CI {_pct(ci[0])} to {_pct(ci[1])}" if points else f"95% CI {ci[0]:.3f} to {ci[1]:.3f}"


def _judge(m: Metric, tol: float) -> Status:
    """WARN when the simultaneous interval lies above the tolerance, PASS when the 95% interval
    lies at or below it, INCONCLUSIVE otherwise (and for anything hidden or undefined)."""
    if m.value is None or m.suppressed or m.ci is None or "under_powered" in m.flags:
        return Status.INCONCLUSIVE
    if (m.ci_simultaneous or m.ci)[0] > tol:
        return Status.WARN
    return Status.PASS if m.ci[1] <= tol else Status.INCONCLUSIVE


def _under(m: Metric, words) -> str:
    return f"Under {words.get(m.perturbation, m.perturbation)} at severity {m.severity}"


def _drop_finding(fid, title, what, records, tol, words, p, *, points, checklist, label) -> Finding:
    tol_words = f"{_pct(tol)}-point" if points else f"{tol:g}"
    if not records:
        return Finding(fid, title, Status.INCONCLUSIVE, f"No {what} drop could be measured.", metric=fid,
                       threshold=tol, checklist=checklist)
    judged = [(m, _judge(m, tol)) for m in records]
    status = worst_status(s for _, s in judged)
    defined = [m for m, _ in judged if m.value is not None and not m.suppressed]
    name = {"auroc_drop": "AUROC", "sensitivity_drop": "sensitivity", "specificity_drop": "specificity"}
    runs = len({(m.perturbation, m.severity) for m in records})
    if status == Status.WARN:
        bad = sorted((m for m, s in judged if s == Status.WARN), key=lambda m: -(m.ci_simultaneous or m.ci)[0])
        worst = bad[0]
        others = len({(m.perturbation, m.severity) for m in bad}) - 1
        message = (f"{_under(worst, words)}, {name[worst.id]} falls by {_fmt(worst.value, points)} "
                   f"({_ci(worst.ci, points)}), more than the {tol_words} tolerance"
                   + (f"; {others} other perturbation-severity run{'s' if others > 1 else ''} too." if others else "."))
    elif status == Status.PASS:
        top = max(defined, key=lambda m: m.value)
        message = (f"No perturbation up to severity {p.max_severity_gate} lowers {what if not points else 'sensitivity or specificity'} "
                   f"by more than the {tol_words} tolerance ({runs} runs); the largest fall is "
                   f"{_fmt(top.value, points)} ({_ci(top.ci, points)}), {_under(top, words).lower()}.")
    else:
        open_ = [m for m, s in judged if s == Status.INCONCLUSIVE]
        shown = [m for m in open_ if m.value is not None and not m.suppressed and m.ci is not None]
        if shown:
            m = max(shown, key=lambda m: m.ci[1])
            message = (f"The data cannot decide whether {name[m.id]} falls by more than the {tol_words} tolerance "
                       f"{_under(m, words).lower()}: it falls by {_fmt(m.value, points)} ({_ci(m.ci, points)})"
                       + (f"; {len(open_) - 1} other record{'s' if len(open_) > 2 else ''} undecided." if len(open_) > 1 else "."))
        else:
            reasons = sorted({m.reason for m in open_ if m.reason})
            message = (f"No {what} drop can be judged: " + ("; ".join(reasons[:2]) if reasons else "no interval") + ".")
    return Finding(fid, title, status, message, metric=fid, threshold=tol, checklist=checklist)


def _gap_finding(records, p, words, checklist, label, where) -> Finding:
    title = f"Does corruption widen the gap in missed cases{where}?"
    tol = p.rate_tolerance
    usable = [m for m in records if m.value is not None and not m.suppressed and m.ci is not None]
    if not usable:
        none = "no sensitive attribute has two adequately powered groups with published miss rates"
        reasons = sorted({m.reason for m in records if m.reason}) or [none]
        return Finding("fnr_gap_change", title, Status.INCONCLUSIVE,
                       f"The gap in missed cases between groups cannot be compared: {reasons[0]}.",
                       metric="fnr_gap_change", threshold=tol, checklist=checklist)
    widened = sorted((m for m in usable if (m.ci_simultaneous or m.ci)[0] > 0), key=lambda m: -(m.ci_simultaneous or m.ci)[0])
    beyond = [m for m in widened if (m.ci_simultaneous or m.ci)[0] > tol]
    if widened:
        m = (beyond or widened)[0]
        status = Status.WARN if beyond else (Status.PASS if all(x.ci[1] <= tol for x in usable) else Status.INCONCLUSIVE)
        tail = (f", more than the {_pct(tol)}-point tolerance" if beyond else
                f", within the {_pct(tol)}-point tolerance" if status == Status.PASS else
                f"; a widening beyond the {_pct(tol)}-point tolerance cannot be ruled out")
        message = (f"Corruption widens the gap in missed cases between {m.feature} groups: "
                   f"{_under(m, words).lower()} the gap grows by {_pct(m.value)} points ({_ci(m.ci, True)}){tail}"
                   + (f"; {len(widened) - 1} other run{'s' if len(widened) > 2 else ''} widen it too." if len(widened) > 1 else "."))
        return Finding("fnr_gap_change", title, status, message, metric="fnr_gap_change", threshold=tol,
                       checklist=checklist)
    top = max(usable, key=lambda m: m.ci[1])
    status = Status.PASS if top.ci[1] <= tol else Status.INCONCLUSIVE
    message = ("No perturbation widened the gap in missed cases between groups beyond its interval "
               f"({len(usable)} comparisons). " + (
                   f"A widening of more than {_pct(tol)} points is ruled out for every one." if status == Status.PASS
                   else f"A widening of up to {_pct(top.ci[1])} points cannot be ruled out "
                        f"({top.feature}, {_under(top, words).lower()})."))
    return Finding("fnr_gap_change", title, status, message, metric="fnr_gap_change", threshold=tol, checklist=checklist)


# ---------------------------------------------------------------------------- the records --

class _Analysis:
    """Every record of one run: counts and clean values per unit, then per perturbation and
    severity the perturbed values and the paired drops, with suppression applied."""

    def __init__(self, plugin, ctx, frame, labels, thresholds, clean, pairs, clusters, min_group_n,
                 min_positives, seed, same_table):
        self.p: RobustnessParams = plugin.params
        self.ctx, self.frame, self.labels, self.thresholds = ctx, frame, labels, thresholds
        self.clean, self.pairs, self.clusters = clean, pairs, clusters
        self.min_group_n, self.min_positives, self.seed = min_group_n, min_positives, seed
        self.same_table = same_table
        self.sampled = len(frame) != ctx.data.n_rows
        self.min_cell = ctx.min_cell
        self.keep_small = ctx.config.report.keep_small_numerators
        self.multi = len(labels) > 1
        self.alpha = 1 - self.p.level
        order = {b.name: list(b.labels) for b in ctx.config.data.bins}
        self.groupings = [(c, *group_codes(frame, (c,), order)) for c in ctx.sensitive]
        n_units = 1 + sum(len(keys) for _, _, keys in self.groupings)
        n_gated = sum(q.gated for q in pairs)
        n_stress = len(pairs) - n_gated
        n_lab, n_att = len(labels), len(self.groupings)
        # Family sizes (Bonferroni) of each id: every record it has, undefined ones included.
        self.family = {
            **{m: n_lab * n_units * n_gated for m in DROP_IDS},
            **{f"{m}_stress": n_lab * n_units * n_stress for m in DROP_IDS},
            **{m: n_lab * n_units * len(pairs) for m in SCORE_IDS},
            "flip_rate": n_lab * n_gated, "score_shift": n_lab * n_gated,
            "flip_rate_stress": n_lab * n_stress, "score_shift_stress": n_lab * n_stress,
            "fnr_gap_change": n_lab * n_att * n_gated, "fnr_gap_change_stress": n_lab * n_att * n_stress,
        }
        # The worst case of an id is the maximum over K records (one label's overall records at
        # gated severities); each record's interval at 1 - alpha / K gives its interval.
        scored = sum(q.gated and q.scores is not None for q in pairs)
        self.k_worst = {m: scored for m in ("auroc_drop", "sensitivity_drop", "specificity_drop", "flip_rate")}
        self.k_worst["fnr_gap_change"] = scored * n_att
        self.worst_ci: dict[tuple, tuple[float, float] | None] = {}

    # -- helpers
    def levels(self, mid: str, worst: bool = False) -> tuple[float, ...]:
        lv = (self.p.level, 1 - self.alpha / max(self.family.get(mid, 1), 1))
        return lv + (1 - self.alpha / max(self.k_worst.get(mid, 1), 1),) if worst else lv

    def _pid(self, mid: str, q: _Pair | None) -> str:
        return mid if q is None or q.gated or mid in SCORE_IDS else f"{mid}_stress"

    def _patients(self, rows: np.ndarray, mask: np.ndarray) -> int:
        if self.clusters is None:
            return int(mask.sum())
        return len(np.unique(self.clusters[rows][mask]))

    def _cl(self, rows):
        return None if self.clusters is None else self.clusters[rows]

    def _record(self, mid, value, cis, *, worst_key=None, **kw) -> Metric:
        """A record with its nominal and simultaneous intervals; a third interval, at the
        worst-case level, is kept aside for the ``*_worst`` record."""
        if worst_key is not None:
            self.worst_ci[worst_key] = cis[2] if cis else None
        return Metric(mid, value, ci=cis[0] if cis else None, ci_simultaneous=cis[1] if cis else None,
                      level=self.p.level, **kw)

    def units(self, y: np.ndarray) -> list[_Unit]:
        out = []
        everyone = np.arange(len(y))
        for column, codes, keys in [(None, None, [None])] + self.groupings:
            for k, key in enumerate(keys):
                rows = everyone if column is None else np.flatnonzero(codes == k)
                yy = y[rows] == 1
                counts = {"n": len(rows), "positives": int(yy.sum()), "negatives": int((~yy).sum())}
                pats = {"n": self._patients(rows, np.ones(len(rows), bool)), "positives": self._patients(rows, yy),
                        "negatives": self._patients(rows, ~yy)}
                powered = column is None or (pats["n"] >= self.min_group_n and pats["positives"] >= self.min_positives)
                out.append(_Unit(None if column is None else {column: key[0]}, rows, counts, pats, powered, column))
        return out

    # -- primary suppression (the fairness plugin's rule) of one confusion table of one unit
    def _primary(self, u: _Unit, y, pred, where, tl, clean: bool):
        """Which of a unit's values rest on a small cell, and the counts that hides: the unit
        itself, a rate's denominator, or (unless keep_small_numerators) its numerator."""
        r = u.rows
        yy, pp = y[r] == 1, pred[r] == 1
        hits = {"tp": self._patients(r, yy & pp), "tn": self._patients(r, ~yy & ~pp)}
        pc, mc = u.patients, self.min_cell
        small = pc["n"] < mc
        pos_small = small or small_cell(pc["positives"], mc) or small_cell(pc["negatives"], mc)
        hidden = {"n": small, "positives": pos_small, "auroc": pos_small}
        protected = []
        if clean and small:
            protected += [Count("n", where, tl), Count("positives", where, tl)]
        elif clean and pos_small:
            protected.append(Count("positives", where, tl))
        for rate, den, num in (("sensitivity", "positives", "tp"), ("specificity", "negatives", "tn")):
            hide = small or small_cell(pc[den], mc)
            if small_cell(pc[den], mc) and not small:
                protected.append(Count(den, where, tl))
            if small_cell(hits[num], mc) and not self.keep_small:
                hide = True
                if not small:
                    protected.append(Count(num, where, tl))
            hidden[rate] = hide
        return hidden, protected

    # -- records
    def records(self) -> list[Metric]:
        out: list[Metric] = []
        for k, lab in enumerate(self.labels):
            out += self._label_records(k, lab if self.multi else None)
        return out

    def _label_records(self, k: int, label: str | None) -> list[Metric]:
        y = self.frame[self.labels[k]].to_numpy(np.int8)
        t = self.thresholds[k]
        s0 = self.clean[:, k]
        pred0 = (s0 >= t).astype(np.int8)
        units = self.units(y)
        base = {"label": label}
        recs: list[Metric] = [Metric("threshold", t, n=len(y), label=label)]
        # The disclosure model's view: the clean confusion table and each perturbed one as an
        # outcome of the same rows (a "label" of the reader), each with its primary suppression.
        clean_label = label if self.same_table else f"{label or ''}|robustness clean"
        tables = [(None, clean_label, s0, pred0)]
        for q in self.pairs:
            if q.scores is not None:
                sq = q.scores[:, k]
                tables.append((q, f"{label or ''}|{q.name}@{q.severity}", sq, (sq >= t).astype(np.int8)))
        shadow: list[Metric] = []
        protected: list[Count] = []
        hidden: dict[tuple, bool] = {}
        for q, tl, _, pred in tables:
            for u in units:
                where = _ukey(u)
                h, prot = self._primary(u, y, pred, where, tl, clean=q is None)
                protected += prot
                c = u.counts
                if q is None:
                    shadow += [Metric("n", c["n"], n=c["n"], group=u.group, label=tl, suppressed=h["n"]),
                               Metric("positives", c["positives"], n=c["n"], group=u.group, label=tl,
                                      suppressed=h["positives"])]
                for rate, den in (("sensitivity", "positives"), ("specificity", "negatives")):
                    shadow.append(Metric(rate, _rate_value(y, pred, u.rows, rate), n=c["n"], group=u.group, label=tl,
                                         denominator=c[den], suppressed=h[rate]))
                for key, value in h.items():
                    hidden[(tl, where, key)] = value
        if self.sampled:
            # A sample is another population than the whole data the other plugins publish:
            # protected on its own, and not added to what they read.
            shadow = secondary_suppression(shadow, protected)
        else:
            shadow = self.ctx.suppress(shadow, protected)
        for m in shadow:
            hidden[(m.label, _gkey(m.group), m.id)] = m.suppressed or hidden.get((m.label, _gkey(m.group), m.id), False)
        # Counts and clean values of every unit.
        for u in units:
            def hk(key, u=u):
                return hidden[(clean_label, _ukey(u), key)]
            flags = () if u.powered else ("under_powered",)
            small = u.patients["n"] < self.min_cell
            c = u.counts
            recs.append(Metric("n", c["n"], n=c["n"], group=u.group, label=label, suppressed=hk("n"),
                               flags=flags + ((SMALL_GROUP,) if small and u.group is not None else ())))
            if self.clusters is not None:
                recs.append(Metric("patients", u.patients["n"], n=c["n"], group=u.group, label=label, flags=flags,
                                   suppressed=hk("n")))
            recs.append(Metric("positives", c["positives"], n=c["n"], group=u.group, label=label, flags=flags,
                               suppressed=hk("positives")))
            recs += self._values(None, u, y, s0, pred0, hk, flags, base)
        # Per perturbation and severity.
        for q, tl, sq, pred in tables[1:]:
            for u in units:
                def hk(key, u=u, tl=tl):
                    return hidden[(tl, _ukey(u), key)]

                def hc(key, u=u):
                    return hidden[(clean_label, _ukey(u), key)]
                flags = () if u.powered else ("under_powered",)
                recs += self._values(q, u, y, sq, pred, hk, flags, base)
                recs += self._drops(q, u, y, s0, sq, pred0, pred, hk, hc, flags, base)
                if u.group is None:
                    recs += self._pair_overall(q, u, s0, sq, pred0, pred, base)
            recs += self._gaps(q, y, pred0, pred, units, hidden, clean_label, tl, base)
        for q in self.pairs:
            if q.scores is None:
                recs += [Metric(self._pid(mid, q), None, n=len(y), perturbation=q.name, severity=q.severity,
                                reason=q.reason, flags=(NOT_RUN,), **base) for mid in SCORE_IDS + PAIR_IDS]
        recs += self._worst(recs, label)
        return recs

    def _values(self, q, u, y, s, pred, hk, flags, base) -> list[Metric]:
        r, cl = u.rows, self._cl(u.rows)
        n = u.counts["n"]
        kw = dict(n=n, group=u.group, flags=flags, perturbation=None if q is None else q.name,
                  severity=None if q is None else q.severity, **base)
        value, cis, reason = auroc_estimate(y[r], s[r], cl, self.levels("auroc"))
        out = [self._record("auroc", value, cis, reason=reason, suppressed=hk("auroc"),
                            ci_method="logit-Wald interval, DeLong influence functions", **kw)]
        for rate, cls in (("sensitivity", 1), ("specificity", 0)):
            rows = y[r] == cls
            # The denominator is published as on the fairness plugin's rates: the reader of the
            # disclosure model (and the suppression chosen against it) knows it, and a rate
            # without one is a far harder programme for the attacker test to solve.
            den = u.counts["positives" if cls == 1 else "negatives"]
            if not rows.any():
                out.append(Metric(rate, None, suppressed=hk(rate), reason=f"no {_class_word(cls)} cases",
                                  denominator=den, **kw))
                continue
            value, cis = rate_estimate(pred[r][rows] == cls, None if cl is None else cl[rows], self.levels(rate))
            out.append(self._record(rate, value, cis, suppressed=hk(rate), ci_method=CP_METHOD, denominator=den, **kw))
        return out

    def _drops(self, q, u, y, s0, sq, pred0, pred, hk, hc, flags, base) -> list[Metric]:
        r, cl = u.rows, self._cl(u.rows)
        overall = u.group is None and q.gated
        kw = dict(n=u.counts["n"], group=u.group, flags=flags, perturbation=q.name, severity=q.severity, **base)
        mid = self._pid("auroc_drop", q)
        drop, cis, reason = paired_auroc_drop(y[r], s0[r], sq[r], cl, self.levels(mid, overall))
        out = [self._record(mid, drop, cis, reason=reason, ci_method=AUROC_DROP_METHOD,
                            suppressed=hk("auroc") or hc("auroc"),
                            worst_key=(mid, q.name, q.severity, None) if overall else None, **kw)]
        for rate, cls in (("sensitivity", 1), ("specificity", 0)):
            mid = self._pid(f"{rate}_drop", q)
            rows = y[r] == cls
            hide = hk(rate) or hc(rate)
            if not rows.any():
                out.append(Metric(mid, None, suppressed=hide, reason=f"no {_class_word(cls)} cases", **kw))
                continue
            d, cis = paired_rate_drop(pred0[r][rows] == cls, pred[r][rows] == cls, None if cl is None else cl[rows],
                                      self.levels(mid, overall))
            out.append(self._record(mid, d, cis, ci_method=RATE_DROP_METHOD, suppressed=hide,
                                    worst_key=(mid, q.name, q.severity, None) if overall else None, **kw))
        return out

    def _pair_overall(self, q, u, s0, sq, pred0, pred, base) -> list[Metric]:
        cl = self._cl(u.rows)
        kw = dict(n=u.counts["n"], perturbation=q.name, severity=q.severity, **base)
        flips = pred0 != pred
        mid = self._pid("flip_rate", q)
        value, cis = rate_estimate(flips, cl, self.levels(mid, q.gated))
        # The rows whose decision flips are a count like any numerator: 1 to min_cell - 1 is hidden.
        hide = not self.keep_small and small_cell(self._patients(u.rows, flips), self.min_cell)
        out = [self._record(mid, value, cis, suppressed=hide, ci_method=CP_METHOD,
                            worst_key=(mid, q.name, q.severity, None) if q.gated else None, **kw)]
        mid = self._pid("score_shift", q)
        value, cis = mean_shift(sq - s0, cl, self.levels(mid))
        out.append(self._record(mid, value, cis, ci_method=SHIFT_METHOD, **kw))
        return out

    def _gaps(self, q, y, pred0, pred, units, hidden, clean_label, tl, base) -> list[Metric]:
        out = []
        mid = self._pid("fnr_gap_change", q)
        for column, _, _ in self.groupings:
            # Only groups that are adequately powered and whose miss rates are published clean
            # and perturbed: the change is then a function of published numbers.
            eligible = [u for u in units if u.column == column and u.powered and u.counts["positives"] > 0
                        and not hidden[(clean_label, _ukey(u), "sensitivity")]
                        and not hidden[(tl, _ukey(u), "sensitivity")]]
            kw = dict(n=int(sum(u.counts["n"] for u in eligible)), perturbation=q.name, severity=q.severity,
                      feature=column, **base)
            if len(eligible) < 2:
                out.append(Metric(mid, None, reason=f"fewer than 2 adequately powered {column} groups with published "
                                                    "miss rates", **kw))
                continue
            group = np.full(len(y), -1, np.int64)
            for j, u in enumerate(eligible):
                group[u.rows] = j
            rng = np.random.default_rng([self.seed, zlib.crc32(f"{q.name}@{q.severity}:{column}".encode())])
            change, cis, pv = fnr_gap_change(y, 1 - pred0, 1 - pred, group, len(eligible), self.clusters,
                                             n_boot=self.p.n_boot, random_state=rng, levels=self.levels(mid, q.gated))
            out.append(self._record(mid, change, cis, p_value=pv, ci_method=_gap_method(self.p.n_boot),
                                    reason=None if cis else "the bootstrap interval is undefined (too few cases)",
                                    worst_key=(mid, q.name, q.severity, column) if q.gated else None, **kw))
        return out

    def _worst(self, recs: list[Metric], label) -> list[Metric]:
        """The largest value over the gated perturbations (overall records), with the interval
        from the maxima of the Bonferroni-adjusted bounds."""
        out = []
        for mid in self.k_worst:
            pool = [m for m in recs if m.id == mid and m.group is None and m.perturbation is not None
                    and (m.perturbation, m.severity) in {(q.name, q.severity) for q in self.pairs if q.scores is not None}]
            wid = f"{mid}_worst"
            shown = [m for m in pool if m.value is not None and not m.suppressed]
            if not shown:
                hidden = any(m.suppressed for m in pool)
                out.append(Metric(wid, None, label=label, suppressed=hidden, reason=(
                    "suppressed" if hidden else "no perturbation at a gated severity has a value")))
                continue
            top = max(shown, key=lambda m: m.value)
            cis = [self.worst_ci.get((m.id, m.perturbation, m.severity, m.feature)) for m in pool]
            complete = len(shown) == len(pool) and all(ci is not None for ci in cis)
            ci = (max(c[0] for c in cis), max(c[1] for c in cis)) if complete else None
            out.append(Metric(wid, top.value, n=top.n, label=label, level=self.p.level, ci=ci, ci_simultaneous=ci,
                              ci_method=WORST_METHOD, perturbation=top.perturbation, severity=top.severity,
                              feature=top.feature, reason=None if ci else (
                                  "no interval: a perturbation's value or interval is undefined or suppressed")))
        return out


def _rate_value(y, pred, rows, rate) -> float | None:
    cls = 1 if rate == "sensitivity" else 0
    mine = y[rows] == cls
    if not mine.any():
        return None
    return float((pred[rows][mine] == cls).mean())


def _class_word(cls: int) -> str:
    return "positive" if cls else "negative"


def _gkey(group):
    return None if not group else tuple(sorted(group.items()))


def _ukey(u: _Unit):
    return None if u.group is None else tuple(sorted(u.group.items()))
