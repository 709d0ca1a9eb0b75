"""Per-group metrics, intervals and gap tests for one binary outcome at one threshold.

The computation behind the fairness plugin (and any plugin that compares groups), free of
configuration and reporting:

- confusion-count rates (prevalence, sensitivity, specificity, FNR, FPR, PPV, NPV, and the
  flagged share: predicted positives over n) with exact
  Clopper-Pearson intervals at a Korn-Graubard effective sample size when rows repeat per
  patient (:mod:`audit.stats.proportions`): they cover at 5 positives as at 5,000 and no bound
  sits at 0 or 1 unless the observed rate does;
- AUROC and Brier score with cluster-robust influence-function (DeLong) intervals;
- gaps, signed so that a positive gap means *worse* than the reference:

  * to the rest of the population, reported as the gap to overall
    (``rate_g - rate_overall = (1 - w_g)(rate_g - rate_rest)``, ``w_g`` the group's share of
    the denominator), from the MOVER interval of the group against the rest, two
    independent samples, so both sides' uncertainty is carried whatever their size;
  * to the best group, where "best" is not fixed from point estimates: the gap is
    ``max(0, max_r sign * (rate_g - rate_r))`` over the adequately powered groups r, and its
    interval takes the maximum of the bounds of Bonferroni-adjusted pairwise intervals. It
    therefore carries the best group's uncertainty and the selection of the best group;

- every interval also at a simultaneous level ``1 - alpha / m`` for a family of m
  comparisons (Bonferroni), which gates use so that a gate over many groups keeps its error
  rate; p-values invert the same intervals, so adjusted p-values and intervals agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audit.stats import (
    auroc_influence,
    brier_influence,
    cell_codes,
    influence_se,
    mover_interval,
    mover_p_value,
    wald_interval,
    wald_p_value,
)
from audit.stats.proportions import (
    Proportion,
    cluster_proportions,
    difference_interval,
    difference_p_value,
    proportion_interval,
)

RATE_METRICS = ("prevalence", "sensitivity", "specificity", "fnr", "fpr", "ppv", "npv", "flagged")
SCORE_METRICS = ("auroc", "brier")
# +1: higher is better (gap = reference - group); -1: lower is better (gap = group - reference).
DIRECTION = {"sensitivity": 1, "specificity": 1, "ppv": 1, "npv": 1, "auroc": 1,
             "fnr": -1, "fpr": -1, "brier": -1}
GAP_METRICS = ("fnr", "fpr", "sensitivity", "specificity", "ppv", "npv", "auroc", "brier")
# The denominator of each rate: which count a small cell refers to.
DENOMINATOR = {"prevalence": "n", "sensitivity": "positives", "fnr": "positives",
               "specificity": "negatives", "fpr": "negatives", "ppv": "pred_pos", "npv": "pred_neg",
               "flagged": "n"}


# Numerator count of each rate (its denominator is DENOMINATOR).
NUMERATOR = {"prevalence": "positives", "sensitivity": "tp", "fnr": "fn", "specificity": "tn", "fpr": "fp",
             "ppv": "tp", "npv": "tn", "flagged": "pred_pos"}
# Which confusion cells (tp, fn, fp, tn) each count adds up.
COUNT_CELLS = {"n": (0, 1, 2, 3), "positives": (0, 1), "negatives": (2, 3), "pred_pos": (0, 2),
               "pred_neg": (1, 3), "tp": (0,), "fn": (1,), "fp": (2,), "tn": (3,)}


@dataclass
class Estimate:
    """A point estimate with its interval, its simultaneous interval and (for gaps) test."""

    value: float
    ci: tuple[float, float] | None
    method: str
    p_value: float | None = None
    reason: str | None = None
    ci_simultaneous: tuple[float, float] | None = None


@dataclass
class GroupStats:
    """Everything measured for one group of one grouping.

    ``counts`` are rows; ``patients`` the distinct patients behind each count (equal to
    ``counts`` without an identifier), which the under-power and small-cell rules use.
    """

    key: tuple[str, ...]
    counts: dict[str, int]
    patients: dict[str, int]
    metrics: dict[str, Estimate] = field(default_factory=dict)
    gap_best: dict[str, Estimate] = field(default_factory=dict)
    gap_overall: dict[str, Estimate] = field(default_factory=dict)


@dataclass
class GroupingStats:
    columns: tuple[str, ...]
    groups: list[GroupStats]
    overall: GroupStats
    best: dict[str, tuple[str, ...] | None]


def _undefined_reason(metric: str) -> str:
    need = DENOMINATOR.get(metric)
    return {"positives": "no positive cases in this group", "negatives": "no negative cases in this group",
            "pred_pos": "no positive predictions in this group",
            "pred_neg": "no negative predictions in this group"}.get(need, "undefined")


def _pair(x: np.ndarray) -> tuple[float, float] | None:
    lo, hi = float(x[0]), float(x[1])
    return (lo, hi) if np.isfinite(lo) and np.isfinite(hi) else None


class _Cells:
    """Per-(patient, group) confusion counts: the sufficient statistics of every rate.

    Without patient identifiers each row is its own patient, and nothing is built per row.
    """

    def __init__(self, group_codes, cells, n_groups, clusters):
        self.n_groups = n_groups
        self.observed = np.bincount(group_codes * 4 + cells, minlength=n_groups * 4).reshape(n_groups, 4)
        self.clustered = clusters is not None
        if not self.clustered:
            return
        pair_key = clusters.astype(np.int64) * n_groups + group_codes
        pairs, inverse = np.unique(pair_key, return_inverse=True)
        self.q = np.bincount(inverse * 4 + cells, minlength=len(pairs) * 4).reshape(len(pairs), 4)
        self.pair_group = (pairs % n_groups).astype(np.int64)
        pair_cluster = pairs // n_groups
        self.pair_cluster = np.unique(pair_cluster, return_inverse=True)[1]
        n_clusters = int(self.pair_cluster.max()) + 1 if len(pairs) else 0
        # Per-patient totals over all groups, for the complement of each group.
        self.q_total = np.zeros((n_clusters, 4), np.int64)
        np.add.at(self.q_total, self.pair_cluster, self.q)

    def patients(self, g: int | None) -> dict[str, int]:
        """Distinct patients behind each count of group g (None: overall)."""
        if not self.clustered:
            c = self.observed[g] if g is not None else self.observed.sum(axis=0)
            return {name: int(c[list(cols)].sum()) for name, cols in COUNT_CELLS.items()}
        q = self.q[self.pair_group == g] if g is not None else self.q_total
        return {name: int((q[:, list(cols)].sum(axis=1) > 0).sum()) for name, cols in COUNT_CELLS.items()}

    def proportions(self, num: str, den: str) -> tuple[Proportion, Proportion, Proportion]:
        """(per group, overall, rest of the population per group) for the rate num/den."""
        nc, dc = list(COUNT_CELLS[num]), list(COUNT_CELLS[den])
        k = self.observed[:, nc].sum(axis=1)
        n = self.observed[:, dc].sum(axis=1)
        k_all, n_all = k.sum(), n.sum()
        if not self.clustered:
            return (Proportion.independent(k, n), Proportion.independent(k_all, n_all),
                    Proportion.independent(k_all - k, n_all - n))
        y, m = self.q[:, nc].sum(axis=1), self.q[:, dc].sum(axis=1)
        groups = cluster_proportions(y, m, self.pair_group, self.n_groups)
        yt, mt = self.q_total[:, nc].sum(axis=1), self.q_total[:, dc].sum(axis=1)
        overall = cluster_proportions(yt, mt, np.zeros(len(yt), np.int64), 1).take(0)
        # Rest of g: per patient, the totals minus the rows in g. Expanding the squares keeps
        # this O(pairs) instead of O(patients x groups).
        k_rest, n_rest = k_all - k, n_all - n
        with np.errstate(divide="ignore", invalid="ignore"):
            p_rest = np.where(n_rest > 0, k_rest / np.where(n_rest > 0, n_rest, 1), 0.0)
        a2, am, m2 = float(yt @ yt), float(yt @ mt), float(mt @ mt)
        ytp, mtp = yt[self.pair_cluster], mt[self.pair_cluster]
        pr = p_rest[self.pair_group]
        cross = np.bincount(self.pair_group, weights=(ytp - pr * mtp) * (y - pr * m), minlength=self.n_groups)
        own = np.bincount(self.pair_group, weights=(y - pr * m) ** 2, minlength=self.n_groups)
        ss_rest = a2 - 2 * p_rest * am + p_rest ** 2 * m2 - 2 * cross + own
        gone = np.bincount(self.pair_group, weights=((m == mtp) & (m > 0)).astype(float), minlength=self.n_groups)
        c_rest = float((mt > 0).sum()) - gone
        rest = Proportion.from_sums(k_rest, n_rest, c_rest, np.maximum(ss_rest, 0.0))
        return groups, overall, rest


def analyse_grouping(
    columns: tuple[str, ...],
    group_codes: np.ndarray,
    group_keys: list[tuple[str, ...]],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray | None,
    clusters: np.ndarray | None,
    *,
    level: float,
    family: dict[str, int] | None = None,
    eligible_for_best: np.ndarray | None = None,
    rate_method: str,
    score_method: str,
) -> GroupingStats:
    """Measure every group of one grouping (e.g. sex, or sex × age band).

    Parameters
    ----------
    group_codes : int array, one per row, in [0, len(group_keys)).
    clusters : int codes of the patient of each row, or None (rows independent).
    family : metric id (``fnr``, ``fnr_gap``, ``fnr_gap_overall``, ...) → number of
        comparisons m in its family; simultaneous intervals are at level ``1 - (1 - level) / m``.
    eligible_for_best : callable (GroupStats, metric id) -> bool, or a bool per group; the best-group
        references are the eligible groups with a defined value (all groups with a defined
        value if none is eligible).
    """
    family = family or {}
    alpha = 1 - level
    n_groups = len(group_keys)
    cells = cell_codes(y_true, y_pred)
    data = _Cells(group_codes.astype(np.int64), cells, n_groups, clusters)
    groups = [GroupStats(key=group_keys[g], counts=_counts_dict(data.observed[g]), patients=data.patients(g))
              for g in range(n_groups)]
    overall = GroupStats(key=(), counts=_counts_dict(data.observed.sum(axis=0)), patients=data.patients(None))
    def eligible(metric: str) -> np.ndarray:
        if eligible_for_best is None:
            return np.ones(n_groups, bool)
        if callable(eligible_for_best):
            return np.array([bool(eligible_for_best(gs, metric)) for gs in groups], bool)
        return np.asarray(eligible_for_best, bool)

    best: dict[str, tuple[str, ...] | None] = {}
    share = {}
    for m in RATE_METRICS:
        props, prop_all, prop_rest = data.proportions(NUMERATOR[m], DENOMINATOR[m])
        sim = 1 - alpha / max(family.get(m, 1), 1)
        lo, hi = proportion_interval(props, level)
        slo, shi = proportion_interval(props, sim)
        p = props.p
        for g, gs in enumerate(groups):
            gs.metrics[m] = _rate(p[g], (lo[g], hi[g]), (slo[g], shi[g]), rate_method, m)
        olo, ohi = proportion_interval(prop_all, level)
        oslo, oshi = proportion_interval(prop_all, sim)
        overall.metrics[m] = _rate(prop_all.p, (olo, ohi), (oslo, oshi), rate_method, m)
        if m not in GAP_METRICS:
            continue
        sign = -DIRECTION[m]  # +1 when higher is worse: gap = sign * (group - reference)
        with np.errstate(divide="ignore", invalid="ignore"):
            share[m] = np.where(prop_all.n > 0, prop_rest.n / prop_all.n, np.nan)
        _rate_gaps_overall(groups, m, props, prop_rest, share[m], sign, level, family, rate_method)
        best[m] = _rate_gaps_best(groups, m, props, sign, eligible(m), level, family, rate_method)

    if y_score is not None:
        index = [np.flatnonzero(group_codes == g) for g in range(n_groups)]
        for m in SCORE_METRICS:
            _score_metrics(groups, overall, m, index, y_true, y_score, clusters, level, family,
                           score_method, eligible(m), best)
    return GroupingStats(columns=columns, groups=groups, overall=overall, best=best)


def _counts_dict(c: np.ndarray) -> dict[str, int]:
    return {name: int(c[list(cols)].sum()) for name, cols in COUNT_CELLS.items()}


def _rate(point, ci, ci_sim, method, metric) -> Estimate:
    if not np.isfinite(point):
        return Estimate(float("nan"), None, method, reason=_undefined_reason(metric))
    return Estimate(float(point), _pair(ci), method, ci_simultaneous=_pair(ci_sim))


GAP_OVERALL_METHOD = ("MOVER interval of the group against the rest of the population (exact "
                      "Clopper-Pearson components at the effective sample size), scaled by the rest's "
                      "share; test by inverting the interval")
GAP_BEST_METHOD = ("maximum over the adequately powered groups of Bonferroni-adjusted MOVER intervals "
                   "(the best group re-selected within the interval); test by inverting them")


def _signed(low, high, sign):
    return (low, high) if sign > 0 else (-high, -low)


def _rate_gaps_overall(groups, m, props, rest, share, sign, level, family, method):
    alpha = 1 - level
    sim = 1 - alpha / max(family.get(f"{m}_gap_overall", 1), 1)
    lo, hi = _signed(*difference_interval(props, rest, level), sign)
    slo, shi = _signed(*difference_interval(props, rest, sim), sign)
    pval = difference_p_value(props, rest)
    diff = sign * (props.p - rest.p)
    for g, gs in enumerate(groups):
        if not (np.isfinite(diff[g]) and share[g] > 0):
            reason = ("the group is the whole population" if rest.n[g] == 0
                      else "undefined for this group or the rest of the population")
            gs.gap_overall[m] = Estimate(float("nan"), None, GAP_OVERALL_METHOD, reason=reason)
            continue
        w = share[g]
        gs.gap_overall[m] = Estimate(
            float(w * diff[g]), _pair((w * lo[g], w * hi[g])), GAP_OVERALL_METHOD,
            p_value=float(pval[g]), ci_simultaneous=_pair((w * slo[g], w * shi[g])))


def _references(values: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    defined = np.isfinite(values)
    pool = defined & eligible
    return np.flatnonzero(pool if pool.any() else defined)


def _pairs(groups_n: int, values: np.ndarray, refs: np.ndarray):
    """Every (group, reference) pair with the group defined and the reference another group."""
    g = np.repeat(np.arange(groups_n), len(refs))
    r = np.tile(refs, groups_n)
    keep = (g != r) & np.isfinite(values[g])
    return g[keep], r[keep]


def _max_over_references(groups, m, method, g, d, lo, hi, slo, shi, p, n_refs, values, reason):
    """Gap to the best of the references (and of the group itself, which contributes 0).

    For each group: ``max(0, max_r d_r)``, its interval from the maxima of the pairwise bounds
    (valid because the pairwise intervals hold simultaneously, Bonferroni over the r
    references), and the p-value ``min(1, r * min p_r)`` over the references it is worse than.
    """
    for k, gs in enumerate(groups):
        mine = g == k
        if not np.isfinite(values[k]) or not mine.any():
            gs.gap_best[m] = Estimate(float("nan"), None, method,
                                      reason="undefined for this group" if not np.isfinite(values[k]) else reason)
            continue
        dk = d[mine]
        worse = dk > 0
        p_value = min(1.0, float(n_refs[k]) * float(np.min(p[mine][worse]))) if worse.any() else 1.0
        gs.gap_best[m] = Estimate(
            max(0.0, float(dk.max())), (max(0.0, float(lo[mine].max())), max(0.0, float(hi[mine].max()))),
            method, p_value=p_value,
            ci_simultaneous=(max(0.0, float(slo[mine].max())), max(0.0, float(shi[mine].max()))))


def _rate_gaps_best(groups, m, props, sign, eligible, level, family, method):
    alpha = 1 - level
    values = props.p
    refs = _references(values, eligible)
    if len(refs) == 0:
        return None
    best = int(refs[np.argmin(sign * values[refs])])
    m_family = max(family.get(f"{m}_gap", 1), 1)
    g, r = _pairs(len(groups), values, refs)
    n_refs = np.bincount(g, minlength=len(groups)).astype(float)
    a, b = props.take(g), props.take(r)
    lo, hi = _signed(*difference_interval(a, b, 1 - alpha / n_refs[g]), sign)
    slo, shi = _signed(*difference_interval(a, b, 1 - alpha / (n_refs[g] * m_family)), sign)
    d = sign * (a.p - b.p)
    _max_over_references(groups, m, GAP_BEST_METHOD, g, d, lo, hi, slo, shi, difference_p_value(a, b),
                         n_refs, values, "no other adequately powered group to compare with")
    return groups[best].key


def _score_estimate(y, s, what):
    fn = auroc_influence if what == "auroc" else brier_influence
    if len(y) == 0:
        return float("nan"), None, "no cases in this group"
    value, psi = fn(y, s)
    if psi is None or not np.isfinite(value):
        return float("nan"), None, "only one class in this group (AUROC needs cases and controls)"
    return value, psi, None


SCORE_GAP_METHOD = "Wald interval and test, cluster-robust influence functions"
# Near AUROC 1 the raw-scale Wald interval of a difference under-covers (15 cases at 0.97:
# 0.908 at 95%); MOVER on the two logit-scale intervals does not (tests/unit/plugins/
# test_universality_coverage.py).
AUROC_GAP_METHOD = ("MOVER interval (Zou & Donner) from the two logit-scale DeLong intervals, correlation "
                    "from the influence functions, cluster-robust; test by inverting that interval")


def _score_metrics(groups, overall, m, index, y_true, y_score, clusters, level, family, method,
                   eligible, best):
    """AUROC or Brier per group, and their gaps: influence functions zero-padded to all rows,
    so differences of groups (or group vs overall) share patients correctly."""
    alpha = 1 - level
    sim = 1 - alpha / max(family.get(m, 1), 1)
    value, psi_all, reason = _score_estimate(y_true, y_score, m)
    overall.metrics[m] = _score_interval(value, psi_all, clusters, level, sim, method, reason, m)
    psis, values = [], np.full(len(groups), np.nan)
    for g, gs in enumerate(groups):
        idx = index[g]
        v, psi, reason = _score_estimate(y_true[idx], y_score[idx], m)
        full = None
        if psi is not None:
            full = np.zeros(len(y_true))
            full[idx] = psi
            values[g] = v
        psis.append(full)
        gs.metrics[m] = _score_interval(v, full, clusters, level, sim, method, reason, m)
    sign = -DIRECTION[m]
    sim_o = 1 - alpha / max(family.get(f"{m}_gap_overall", 1), 1)
    for g, gs in enumerate(groups):
        gs.gap_overall[m] = _score_gap(overall.metrics[m].value, values[g], psi_all, psis[g], sign,
                                       clusters, level, sim_o, m)
    refs = _references(values, eligible)
    best[m] = groups[int(refs[np.argmin(sign * values[refs])])].key if len(refs) else None
    m_family = max(family.get(f"{m}_gap", 1), 1)
    g, r = _pairs(len(groups), values, refs)
    n_refs = np.bincount(g, minlength=len(groups)).astype(float)
    se = np.array([influence_se(psis[i] - psis[j], clusters) for i, j in zip(g, r, strict=True)])
    d = sign * (values[g] - values[r])
    if m == "auroc" and len(g):
        own = np.array([influence_se(p, clusters) if p is not None else np.nan for p in psis])
        # d = sign * (group - reference): a - b with a the better-is-lower side first.
        a, b = (values[g], values[r]) if sign > 0 else (values[r], values[g])
        sa, sb = (own[g], own[r]) if sign > 0 else (own[r], own[g])
        lo, hi = mover_interval(a, sa, b, sb, se, level=1 - alpha / n_refs[g])
        slo, shi = mover_interval(a, sa, b, sb, se, level=1 - alpha / (n_refs[g] * m_family))
        p = mover_p_value(a, sa, b, sb, se)
        method = AUROC_GAP_METHOD
    else:
        lo, hi = wald_interval(d, se, level=1 - alpha / n_refs[g]) if len(g) else (d, d)
        slo, shi = wald_interval(d, se, level=1 - alpha / (n_refs[g] * m_family)) if len(g) else (d, d)
        p = wald_p_value(d, se)
        method = SCORE_GAP_METHOD
    _max_over_references(groups, m, method, g, d, np.atleast_1d(lo), np.atleast_1d(hi),
                         np.atleast_1d(slo), np.atleast_1d(shi), np.atleast_1d(p), n_refs,
                         values, "no other adequately powered group to compare with")


def _score_interval(value, psi, clusters, level, sim, method, reason, metric) -> Estimate:
    if psi is None or not np.isfinite(value):
        return Estimate(float("nan"), None, method, reason=reason)
    se = influence_se(psi, clusters)
    transform = "logit" if metric == "auroc" else None
    lo, hi = wald_interval(value, se, level=level, transform=transform)
    slo, shi = wald_interval(value, se, level=sim, transform=transform)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return Estimate(value, None, method, reason="interval undefined (estimate at the boundary 0 or 1)")
    if metric == "brier":  # a Brier score is never negative
        lo, slo = max(lo, 0.0), max(slo, 0.0)
    return Estimate(value, (float(lo), float(hi)), method, ci_simultaneous=_pair((slo, shi)))


def _score_gap(ref_value, value, psi_ref, psi_g, sign, clusters, level, sim, metric="brier") -> Estimate:
    if psi_ref is None or psi_g is None or not (np.isfinite(ref_value) and np.isfinite(value)):
        return Estimate(float("nan"), None, SCORE_GAP_METHOD, reason="undefined for this group or the reference")
    diff = sign * (value - ref_value)
    se = influence_se(psi_g - psi_ref, clusters)
    if metric == "auroc":
        own, ref_se = influence_se(psi_g, clusters), influence_se(psi_ref, clusters)
        a, b = (value, ref_value) if sign > 0 else (ref_value, value)
        sa, sb = (own, ref_se) if sign > 0 else (ref_se, own)
        lo, hi = mover_interval(a, sa, b, sb, se, level=level)
        slo, shi = mover_interval(a, sa, b, sb, se, level=sim)
        p, method = float(mover_p_value(a, sa, b, sb, se)), AUROC_GAP_METHOD
    else:
        lo, hi = wald_interval(diff, se, level=level)
        slo, shi = wald_interval(diff, se, level=sim)
        p, method = float(wald_p_value(diff, se)), SCORE_GAP_METHOD
    return Estimate(float(diff), _pair((lo, hi)), method, p_value=p if np.isfinite(p) else None,
                    ci_simultaneous=_pair((slo, shi)))
