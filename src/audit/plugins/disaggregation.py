"""Per-group metrics, intervals and gap tests for one binary outcome at one threshold.

The computation behind the fairness plugin, free of configuration and reporting:

- confusion-count rates (prevalence, sensitivity, specificity, FNR, FPR, PPV, NPV) with
  percentile intervals from an exact cluster bootstrap (:func:`audit.stats.bootstrap_counts`:
  patients are resampled, not rows, when rows repeat per patient);
- AUROC and Brier score with cluster-robust influence-function (DeLong) intervals on the
  logit scale;
- gaps of each group to the best group and to the overall population, signed so that a
  positive gap means *worse* than the reference, with intervals and two-sided tests
  (bootstrap test for rates, Wald test for AUROC/Brier).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import binomtest

from audit.stats import (
    auroc_influence,
    bootstrap_counts,
    bootstrap_p_value,
    brier_influence,
    cell_codes,
    defined_fraction,
    influence_se,
    percentile_interval,
    rates_from_counts,
    wald_interval,
    wald_p_value,
)

RATE_METRICS = ("prevalence", "sensitivity", "specificity", "fnr", "fpr", "ppv", "npv")
SCORE_METRICS = ("auroc", "brier")
# +1: higher is better (gap = reference - group); -1: lower is better (gap = group - reference).
DIRECTION = {"sensitivity": 1, "specificity": 1, "ppv": 1, "npv": 1, "auroc": 1,
             "fnr": -1, "fpr": -1, "brier": -1}
GAP_METRICS = ("fnr", "fpr", "sensitivity", "specificity", "ppv", "npv", "auroc", "brier")
# The denominator of each rate: which count a small cell refers to.
DENOMINATOR = {"prevalence": "n", "sensitivity": "positives", "fnr": "positives",
               "specificity": "negatives", "fpr": "negatives", "ppv": "pred_pos", "npv": "pred_neg"}


@dataclass
class Estimate:
    """A point estimate with its interval and (for gaps) test."""

    value: float
    ci: tuple[float, float] | None
    method: str
    p_value: float | None = None
    reason: str | None = None


@dataclass
class GroupStats:
    """Everything measured for one group of one grouping."""

    key: tuple[str, ...]
    counts: dict[str, int]
    metrics: dict[str, Estimate] = field(default_factory=dict)
    gap_best: dict[str, Estimate] = field(default_factory=dict)
    gap_overall: dict[str, Estimate] = field(default_factory=dict)


@dataclass
class GroupingStats:
    columns: tuple[str, ...]
    groups: list[GroupStats]
    overall: GroupStats
    best: dict[str, tuple[str, ...] | None]


def _counts_dict(c: np.ndarray) -> dict[str, int]:
    tp, fn, fp, tn = (int(x) for x in c)
    return {"n": tp + fn + fp + tn, "positives": tp + fn, "negatives": fp + tn,
            "pred_pos": tp + fp, "pred_neg": fn + tn, "tp": tp, "fn": fn, "fp": fp, "tn": tn}


# Numerator count of each rate (its denominator is DENOMINATOR).
NUMERATOR = {"prevalence": "positives", "sensitivity": "tp", "fnr": "fn", "specificity": "tn", "fpr": "fp",
             "ppv": "tp", "npv": "tn"}


def _binomial(metric: str, counts: dict[str, int]) -> tuple[int, int]:
    return counts[NUMERATOR[metric]], counts[DENOMINATOR[metric]]


def _undefined_reason(metric: str, counts: dict[str, int]) -> str:
    need = DENOMINATOR.get(metric)
    if need == "positives":
        return "no positive cases in this group"
    if need == "negatives":
        return "no negative cases in this group"
    if need == "pred_pos":
        return "no positive predictions in this group"
    if need == "pred_neg":
        return "no negative predictions in this group"
    return "undefined"


def _rate_estimate(point: float, samples: np.ndarray, level: float, method: str, reason: str,
                   successes: int | None = None, trials: int | None = None) -> Estimate:
    if not np.isfinite(point):
        return Estimate(float("nan"), None, method, reason=reason)
    lo, hi = percentile_interval(samples, level=level)
    if trials and np.isfinite(lo) and lo == hi:
        # 0 of n or n of n: every replicate repeats the observed rate and the percentile
        # interval collapses to a point, which would claim certainty. Use the exact
        # Clopper-Pearson interval instead (scipy.stats.binomtest).
        ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=level, method="exact")
        return Estimate(point, (float(ci.low), float(ci.high)),
                        "Clopper-Pearson exact interval (the bootstrap is degenerate at 0% or 100%)")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        frac = float(defined_fraction(samples))
        return Estimate(point, None, method,
                        reason=f"interval undefined: only {frac:.0%} of bootstrap replicates define it")
    return Estimate(point, (float(lo), float(hi)), method)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, level: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p2 (method 10), from Wilson intervals.

    Newcombe RG. Interval estimation for the difference between independent proportions.
    Stat Med 1998;17:873-890.
    """
    def wilson(k, n):
        ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
        return ci.low, ci.high

    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def _gap_estimate(diff_point: float, diff_samples: np.ndarray, level: float, method: str,
                  counts: tuple[int, int, int, int] | None = None, sign: int = 1) -> Estimate:
    """``counts`` = (k_group, n_group, k_ref, n_ref) of the rate, for the degenerate case."""
    if not np.isfinite(diff_point):
        return Estimate(float("nan"), None, method, reason="undefined for this group or the reference")
    lo, hi = percentile_interval(diff_samples, level=level)
    p = float(bootstrap_p_value(diff_samples))
    if counts is not None and np.isfinite(lo) and lo == hi and min(counts[1], counts[3]) > 0:
        # Every replicate gives the same gap (both rates at 0% or 100%): the percentile
        # interval would claim certainty. Newcombe's score interval does not.
        kg, ng, kr, nr = counts
        a, b = newcombe_interval(kr, nr, kg, ng, level)  # reference minus group
        lo, hi = sorted((sign * a, sign * b))
        return Estimate(diff_point, (float(lo), float(hi)),
                        "Newcombe hybrid score interval (the bootstrap is degenerate)", p_value=p)
    ci = (float(lo), float(hi)) if np.isfinite(lo) and np.isfinite(hi) else None
    return Estimate(diff_point, ci, method, p_value=p if np.isfinite(p) else None,
                    reason=None if ci else "too few bootstrap replicates define the gap")


def _score_estimate(y, s, what):
    fn = auroc_influence if what == "auroc" else brier_influence
    if len(y) == 0:
        return float("nan"), None, "no cases in this group"
    value, psi = fn(y, s)
    if psi is None or not np.isfinite(value):
        return float("nan"), None, "only one class in this group (AUROC needs cases and controls)"
    return value, psi, None


def analyse_grouping(
    columns: tuple[str, ...],
    group_codes: np.ndarray,
    group_keys: list[tuple[str, ...]],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray | None,
    clusters: np.ndarray | None,
    *,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
    eligible_for_best: np.ndarray | None = None,
    boot_method: str,
    score_method: str,
) -> GroupingStats:
    """Measure every group of one grouping (e.g. sex, or sex × age band).

    Parameters
    ----------
    group_codes : int array, one per row, in [0, len(group_keys)).
    eligible_for_best : bool array per group; the best group is chosen among eligible groups
        with a defined value (all groups if none is eligible).
    """
    n_groups = len(group_keys)
    cells = cell_codes(y_true, y_pred)
    codes = group_codes.astype(np.int64) * 4 + cells
    observed = np.bincount(codes, minlength=n_groups * 4).reshape(n_groups, 4)
    boot = bootstrap_counts(codes, n_groups * 4, clusters=clusters, n_boot=n_boot,
                            random_state=rng).reshape(n_boot, n_groups, 4)
    obs_rates = rates_from_counts(observed)
    boot_rates = rates_from_counts(boot)
    overall_obs = rates_from_counts(observed.sum(axis=0))
    overall_boot = rates_from_counts(boot.sum(axis=1))

    groups = [GroupStats(key=group_keys[g], counts=_counts_dict(observed[g])) for g in range(n_groups)]
    overall = GroupStats(key=(), counts=_counts_dict(observed.sum(axis=0)))
    for m in RATE_METRICS:
        k, n = _binomial(m, overall.counts)
        overall.metrics[m] = _rate_estimate(float(overall_obs[m]), overall_boot[m], level, boot_method,
                                            _undefined_reason(m, overall.counts), k, n)
        for g, gs in enumerate(groups):
            k, n = _binomial(m, gs.counts)
            gs.metrics[m] = _rate_estimate(float(obs_rates[m][g]), boot_rates[m][:, g], level, boot_method,
                                           _undefined_reason(m, gs.counts), k, n)

    # AUROC and Brier: influence functions, zero-padded to all rows so differences of
    # groups (or group vs overall) share clusters correctly.
    psis: dict[str, dict[object, np.ndarray | None]] = {m: {} for m in SCORE_METRICS}
    if y_score is not None:
        index = [np.flatnonzero(group_codes == g) for g in range(n_groups)]
        for m in SCORE_METRICS:
            value, psi, reason = _score_estimate(y_true, y_score, m)
            overall.metrics[m] = _score_interval(value, psi, clusters, level, score_method, reason, m)
            psis[m]["overall"] = psi
            for g, gs in enumerate(groups):
                idx = index[g]
                value, psi, reason = _score_estimate(y_true[idx], y_score[idx], m)
                full = None
                if psi is not None:
                    full = np.zeros(len(y_true))
                    full[idx] = psi
                psis[m][g] = full
                gs.metrics[m] = _score_interval(value, full, clusters, level, score_method, reason, m)

    eligible = np.ones(n_groups, bool) if eligible_for_best is None else np.asarray(eligible_for_best, bool)
    best: dict[str, tuple[str, ...] | None] = {}
    for m in GAP_METRICS:
        if m not in overall.metrics:
            continue
        values = np.array([gs.metrics[m].value for gs in groups], float)
        sign = DIRECTION[m]
        b = _best_index(values, sign, eligible)
        best[m] = None if b is None else groups[b].key
        for g, gs in enumerate(groups):
            if m in RATE_METRICS:
                diff_o = sign * (overall_obs[m] - obs_rates[m][g])
                samples_o = sign * (overall_boot[m] - boot_rates[m][:, g])
                gs.gap_overall[m] = _gap_estimate(float(diff_o), samples_o, level, boot_method,
                                                  (*_binomial(m, gs.counts), *_binomial(m, overall.counts)), sign)
                if b is not None and g != b:
                    diff_b = sign * (obs_rates[m][b] - obs_rates[m][g])
                    samples_b = sign * (boot_rates[m][:, b] - boot_rates[m][:, g])
                    gs.gap_best[m] = _gap_estimate(float(diff_b), samples_b, level, boot_method,
                                                   (*_binomial(m, gs.counts), *_binomial(m, groups[b].counts)), sign)
            else:
                gs.gap_overall[m] = _score_gap(overall.metrics[m].value, gs.metrics[m].value,
                                               psis[m].get("overall"), psis[m].get(g), sign, clusters, level)
                if b is not None and g != b:
                    gs.gap_best[m] = _score_gap(groups[b].metrics[m].value, gs.metrics[m].value,
                                                psis[m].get(b), psis[m].get(g), sign, clusters, level)
    return GroupingStats(columns=columns, groups=groups, overall=overall, best=best)


def _best_index(values: np.ndarray, sign: int, eligible: np.ndarray) -> int | None:
    defined = np.isfinite(values)
    pool = defined & eligible
    if not pool.any():
        pool = defined
    if not pool.any():
        return None
    masked = np.where(pool, sign * values, -np.inf)
    return int(np.argmax(masked))


def _score_interval(value, psi, clusters, level, method, reason, metric) -> Estimate:
    if psi is None or not np.isfinite(value):
        return Estimate(float("nan"), None, method, reason=reason)
    se = influence_se(psi, clusters)
    lo, hi = wald_interval(value, se, level=level, transform="logit" if metric == "auroc" else None)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return Estimate(value, None, method, reason="interval undefined (estimate at the boundary 0 or 1)")
    if metric == "brier":  # a Brier score is never negative
        lo = max(lo, 0.0)
    return Estimate(value, (float(lo), float(hi)), method)


def _score_gap(ref_value, value, psi_ref, psi_g, sign, clusters, level) -> Estimate:
    method = "Wald interval and test, cluster-robust influence functions (DeLong for AUROC)"
    if psi_ref is None or psi_g is None or not (np.isfinite(ref_value) and np.isfinite(value)):
        return Estimate(float("nan"), None, method, reason="undefined for this group or the reference")
    diff = sign * (ref_value - value)
    se = influence_se(psi_ref - psi_g, clusters)
    lo, hi = wald_interval(diff, se, level=level)
    p = float(wald_p_value(diff, se))
    return Estimate(float(diff), (float(lo), float(hi)), method, p_value=p if np.isfinite(p) else None)
