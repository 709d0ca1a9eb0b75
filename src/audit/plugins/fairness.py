"""Fairness plugin: subgroup and intersectional underdiagnosis (FUTURE-AI Fairness 3).

Implements the audit of Seyyed-Kalantari et al., Nat Med 2021;27:2176-2182: at one operating
point shared by every group, the rate at which patients who have the condition are called
healthy, per group and per intersection, with patient-level bootstrap intervals, gaps to the
best group and to the overall population, and multiplicity-corrected tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from audit import __version__
from audit.core.progress import track
from audit.core.results import Finding, Metric, PluginResult, Status, worst_status
from audit.errors import ConfigError
from audit.plugins.base import AuditPlugin
from audit.plugins.disaggregation import (
    DENOMINATOR,
    GAP_METRICS,
    RATE_METRICS,
    SCORE_METRICS,
    Estimate,
    GroupingStats,
    analyse_grouping,
)
from audit.stats import adjust_pvalues, choose_threshold, min_detectable_gap, parse_operating_point

CHECKLIST = (
    "FUTURE-AI:Fairness 3", "CLAIM-2024:38", "CLAIM-2024:39", "CLAIM-2024:29",
    "TRIPOD+AI:23a", "TRIPOD+AI:12e",
)
# In multi-label mode the "has a finding" outcome is analysed with the machinery of a binary
# label; these are its metrics under the names of the Nature Medicine paper.
UNDERDIAGNOSIS_NAMES = {"fnr": "underdiagnosis_rate", "fpr": "overdiagnosis_rate"}
BASE_IDS = ("n", "positives", "threshold", "min_detectable_gap") + RATE_METRICS + SCORE_METRICS
GAP_IDS = tuple(f"{m}_gap" for m in GAP_METRICS) + tuple(f"{m}_gap_overall" for m in GAP_METRICS)
UD_IDS = ("underdiagnosis_rate", "overdiagnosis_rate", "underdiagnosis_rate_gap",
          "underdiagnosis_rate_gap_overall", "overdiagnosis_rate_gap", "overdiagnosis_rate_gap_overall")


@dataclass(frozen=True)
class FairnessParams:
    """Parameters of the fairness plugin (section ``[fairness]`` of audit.toml).

    threshold : fixed operating point; otherwise chosen by ``operating_point`` on the
        reference data (or, without reference data, on the audited data, with a warning).
    operating_point : ``max-f1`` (the paper's choice), ``youden``, ``sensitivity:X`` or
        ``specificity:X``.
    intersections : lists of sensitive attributes analysed jointly, e.g. [["sex", "age_band"]].
    bootstrap : replicates of the patient-level bootstrap; seed : its random seed.
    level : interval level. correction : ``holm`` or ``bh`` over all gap tests.
    min_group_n, min_positives : groups below either are flagged under-powered.
    tolerance : the gap the plugin's own findings judge against (gates set their own).
    no_finding_label : in multi-label mode, the label column meaning "no finding"; when absent
        "no finding" is derived as "no positive finding".
    """

    threshold: float | None = None
    operating_point: str = "max-f1"
    intersections: tuple[tuple[str, ...], ...] = ()
    bootstrap: int = 2000
    seed: int | None = None
    level: float = 0.95
    correction: str = "holm"
    min_group_n: int = 30
    min_positives: int = 10
    tolerance: float = 0.05
    no_finding_label: str | None = None

    def validate(self) -> None:
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ConfigError(f"fairness.threshold: {self.threshold:g} is outside [0, 1].")
        try:
            parse_operating_point(self.operating_point)
        except ValueError as exc:
            raise ConfigError(f"fairness.operating_point: {exc}") from None
        if self.bootstrap < 200:
            raise ConfigError(f"fairness.bootstrap: {self.bootstrap} replicates are too few; use at least 200.")
        if not 0.5 < self.level < 1:
            raise ConfigError(f"fairness.level: expected a number in (0.5, 1), got {self.level}.")
        if self.correction not in ("holm", "bh"):
            raise ConfigError(f"fairness.correction: '{self.correction}' is not one of holm, bh.")
        for name in ("min_group_n", "min_positives"):
            if getattr(self, name) < 1:
                raise ConfigError(f"fairness.{name}: expected an integer >= 1.")
        for combo in self.intersections:
            if len(combo) < 2:
                raise ConfigError(f"fairness.intersections: {list(combo)} needs at least two attributes.")


class FairnessPlugin(AuditPlugin):
    """Subgroup and intersectional underdiagnosis at one shared operating point.

    Per group (each sensitive attribute) and per configured intersection: n, positives,
    prevalence, sensitivity, specificity, FNR (underdiagnosis of a disease label), FPR, PPV,
    NPV, AUROC and Brier score, with 95% intervals: percentile intervals of an exact
    patient-level bootstrap for the rates, cluster-robust DeLong / influence-function
    intervals for AUROC and Brier. Gaps to the best group (``*_gap``) and to the overall
    population (``*_gap_overall``) are signed so that positive means worse, each with an
    interval and a test, corrected for multiplicity (Holm or Benjamini-Hochberg).

    In multi-label mode (several label columns), ``underdiagnosis_rate`` is the published
    rate: among cases with at least one finding, the share predicted "no finding"
    (Seyyed-Kalantari et al., Nat Med 2021).

    References
    ----------
    Seyyed-Kalantari L, Zhang H, McDermott MBA, Chen IY, Ghassemi M. Underdiagnosis bias of
    artificial intelligence algorithms applied to chest radiographs in under-served patient
    populations. Nat Med 2021;27:2176-2182.
    """

    name = "fairness"
    principle = "Fairness"
    version = __version__
    metrics = tuple(dict.fromkeys(BASE_IDS + GAP_IDS + UD_IDS))
    checklist = CHECKLIST
    Params = FairnessParams

    # ------------------------------------------------------------------ run
    def run(self, ctx) -> PluginResult:
        p: FairnessParams = self.params
        if not ctx.sensitive:
            return self.skipped("no sensitive attributes configured (data.sensitive / --sensitive)")
        for combo in p.intersections:
            unknown = [c for c in combo if c not in ctx.sensitive]
            if unknown:
                raise ConfigError(
                    f"fairness.intersections: {unknown} not among the sensitive attributes "
                    f"({', '.join(ctx.sensitive)}); add them to data.sensitive."
                )
        frame = ctx.data.frame
        labels = list(ctx.labels)
        scores = ctx.predictions("data")
        ref_scores = ctx.predictions("reference") if ctx.reference is not None else None
        warnings: list[str] = []
        thresholds, threshold_method = self._thresholds(ctx, labels, scores, ref_scores, warnings)
        y = frame[labels].to_numpy(np.int8)
        preds = (scores >= np.asarray(thresholds)[None, :]).astype(np.int8)

        clusters, cluster_note = _clusters(frame, ctx.id_column)
        seed = p.seed if p.seed is not None else ctx.random_state
        rng = np.random.default_rng(seed)
        groupings = [(c,) for c in ctx.sensitive] + [tuple(c) for c in p.intersections]
        boot_method = (f"percentile bootstrap, {p.bootstrap} replicates, resampling "
                       f"{cluster_note}")
        score_method = "logit-Wald (AUROC, DeLong) / Wald (Brier) interval, influence functions" + (
            ", cluster-robust by patient" if clusters is not None else "")

        analyses = self._analyses(labels, y, preds, scores, thresholds)
        order = {b.name: list(b.labels) for b in ctx.config.data.bins}
        metrics: list[Metric] = []
        findings: list[Finding] = []
        with track(ctx.progress, "fairness: bootstrap", len(analyses) * len(groupings)) as advance:
            for analysis in analyses:
                metrics.append(Metric("threshold", analysis["threshold"], n=len(frame),
                                      label=analysis["label"]) if analysis["threshold"] is not None
                               else None)
                for cols in groupings:
                    codes, keys = _group_codes(frame, cols, order)
                    positives = np.bincount(codes, weights=analysis["y"], minlength=len(keys))
                    sizes = np.bincount(codes, minlength=len(keys))
                    eligible = (sizes >= p.min_group_n) & (positives >= p.min_positives)
                    stats = analyse_grouping(
                        cols, codes, keys, analysis["y"], analysis["pred"], analysis["score"], clusters,
                        n_boot=p.bootstrap, level=p.level, rng=rng, eligible_for_best=eligible,
                        boot_method=boot_method, score_method=score_method,
                    )
                    metrics.extend(self._metrics(stats, analysis, ctx.min_cell, p, overall=cols == groupings[0]))
                    advance(1)
        metrics = [m for m in metrics if m is not None]
        metrics = _propagate_suppression(metrics)
        metrics = _adjust(metrics, p.correction)
        for analysis in analyses:
            for cols in groupings:
                findings.append(self._finding(metrics, analysis, cols, p, ctx))
        status = worst_status(f.status for f in findings)
        summary = self._summary(findings, analyses, threshold_method)
        settings = {
            "mode": "multi-label" if len(labels) > 1 else "binary",
            "labels": labels,
            "key_metric": "underdiagnosis_rate" if len(labels) > 1 else "fnr",
            "thresholds": {lab: float(t) for lab, t in zip(labels, thresholds, strict=True)},
            "threshold_method": threshold_method,
            "prediction_rule": "score >= threshold",
            "groupings": [list(c) for c in groupings],
            "interval_level": p.level,
            "interval_method_rates": boot_method,
            "interval_method_auroc_brier": score_method,
            "gap_definition": "positive = worse than the reference: best group (*_gap) or overall (*_gap_overall)",
            "test_method_rates": "two-sided bootstrap test (percentile-interval inversion)",
            "test_method_auroc_brier": "two-sided Wald test on influence-function standard errors",
            "multiplicity_correction": {"holm": "Holm step-down (FWER)", "bh": "Benjamini-Hochberg (FDR)"}[p.correction],
            "multiplicity_family": "all gap tests of one metric id, reference and label (e.g. every fnr_gap)",
            "bootstrap_replicates": p.bootstrap,
            "seed": seed,
            "min_group_n": p.min_group_n,
            "min_positives": p.min_positives,
            "tolerance": p.tolerance,
            "min_cell": ctx.min_cell,
            "no_finding": analyses[-1].get("no_finding_rule") if len(labels) > 1 else None,
        }
        return PluginResult(
            plugin=self.name, principle=self.principle, version=self.version, status=status,
            summary=summary, metrics=tuple(metrics), findings=tuple(findings), settings=settings,
            warnings=tuple(warnings), checklist=self.checklist,
        )

    # ------------------------------------------------------------------ pieces
    def _thresholds(self, ctx, labels, scores, ref_scores, warnings):
        p: FairnessParams = self.params
        if p.threshold is not None:
            return [p.threshold] * len(labels), f"fixed at {p.threshold:g} (configured)"
        if ref_scores is not None:
            source, y_src, s_src = "reference data", ctx.reference.frame[labels].to_numpy(), ref_scores
        else:
            source, y_src, s_src = "audited data itself", ctx.data.frame[labels].to_numpy(), scores
            warnings.append(
                "No reference data and no fixed threshold: the operating point was chosen on the "
                "audited data itself, which flatters the overall results. Pass --reference or --threshold."
            )
        out = []
        for k, lab in enumerate(labels):
            if y_src[:, k].min() == y_src[:, k].max():
                raise ConfigError(
                    f"Cannot choose the operating point for '{lab}' on the {source}: only one class "
                    "is present. Pass --threshold."
                )
            out.append(float(choose_threshold(y_src[:, k], s_src[:, k], p.operating_point)))
        return out, f"{p.operating_point} on the {source}, one threshold per label shared by all groups"

    def _analyses(self, labels, y, preds, scores, thresholds):
        if len(labels) == 1:
            return [{"label": None, "y": y[:, 0], "pred": preds[:, 0], "score": scores[:, 0],
                     "threshold": thresholds[0], "names": {}, "outcome": labels[0]}]
        p: FairnessParams = self.params
        analyses = [{"label": lab, "y": y[:, k], "pred": preds[:, k], "score": scores[:, k],
                     "threshold": thresholds[k], "names": {}, "outcome": lab}
                    for k, lab in enumerate(labels)]
        if p.no_finding_label is not None:
            if p.no_finding_label not in labels:
                raise ConfigError(
                    f"fairness.no_finding_label: '{p.no_finding_label}' is not a label column "
                    f"({', '.join(labels)})."
                )
            k = labels.index(p.no_finding_label)
            true_nf, pred_nf = y[:, k], preds[:, k]
            rule = f"'{p.no_finding_label}' label and its score at its threshold"
        else:
            true_nf = (y.max(axis=1) == 0).astype(np.int8)
            pred_nf = (preds.max(axis=1) == 0).astype(np.int8)
            rule = "derived: no finding = no positive finding label (true) / no label predicted (model)"
        # "Has a finding" as a binary outcome: its FNR is the share of cases with a finding
        # predicted "no finding", i.e. the FPR of the no-finding label (the paper's definition).
        analyses.append({"label": None, "y": (1 - true_nf).astype(np.int8), "pred": (1 - pred_nf).astype(np.int8),
                         "score": None, "threshold": None, "names": UNDERDIAGNOSIS_NAMES,
                         "outcome": "any finding", "no_finding_rule": rule})
        return analyses

    def _metrics(self, stats: GroupingStats, analysis, min_cell, p, *, overall):
        names = analysis["names"]
        label = analysis["label"]
        ud_mode = bool(names)
        keep = (("prevalence", "fnr", "fpr") if ud_mode else RATE_METRICS + SCORE_METRICS)
        gap_keep = (("fnr", "fpr") if ud_mode else GAP_METRICS)
        out = []
        units = [(stats.overall, None)] if overall else []
        units += [(g, dict(zip(stats.columns, g.key, strict=True))) for g in stats.groups]
        for unit, group in units:
            c = unit.counts
            under = group is not None and (c["n"] < p.min_group_n or c["positives"] < p.min_positives)
            flags = ("under_powered",) if under else ()
            small = c["n"] < min_cell
            out.append(Metric("n", c["n"], n=c["n"], group=group, label=label, flags=flags, suppressed=small))
            out.append(Metric("positives", c["positives"], n=c["n"], group=group, label=label, flags=flags,
                              suppressed=small or min(c["positives"], c["negatives"]) < min_cell))
            for m in keep:
                est = unit.metrics.get(m)
                if est is None:
                    continue
                denom = c[DENOMINATOR[m]] if m in DENOMINATOR else c["n"]
                out.append(_metric(names.get(m, m), est, c["n"], group, label, flags, p.level,
                                   suppressed=small or (m != "prevalence" and denom < min_cell),
                                   denominator=denom if m in DENOMINATOR else None))
            if under:
                # The FNR gap this group could show (alpha 0.05, power 0.8) against the overall
                # population, at the overall FNR (0.5, the widest case, when that is undefined).
                base = stats.overall.metrics["fnr"].value
                has_pos = c["positives"] > 0
                mdg = min_detectable_gap(base if np.isfinite(base) else 0.5, c["positives"],
                                         stats.overall.counts["positives"]) if has_pos else None
                out.append(Metric("min_detectable_gap", None if mdg is None else float(mdg), n=c["n"], group=group,
                                  label=label, flags=flags, suppressed=small,
                                  reason=None if has_pos else "no positive cases in this group"))
            if group is None:
                continue
            for m in gap_keep:
                mid = names.get(m, m)
                for ref, est in (("best", unit.gap_best.get(m)), ("overall", unit.gap_overall.get(m))):
                    if est is None:
                        continue
                    best_key = stats.best.get(m)
                    ref_group = dict(zip(stats.columns, best_key, strict=True)) if ref == "best" and best_key else None
                    out.append(_metric(f"{mid}_gap" if ref == "best" else f"{mid}_gap_overall", est, c["n"], group,
                                       label, flags, p.level, suppressed=small, reference=ref,
                                       reference_group=ref_group))
        return out

    def _finding(self, metrics, analysis, cols, p, ctx) -> Finding:
        key = "underdiagnosis_rate" if analysis["names"] else "fnr"
        label = analysis["label"]
        outcome = analysis["outcome"]
        mine = [m for m in metrics if m.label == label and m.group is not None and tuple(m.group) == cols]
        rates = [m for m in mine if m.id == key]
        gaps = [m for m in mine if m.id == f"{key}_gap"]
        under = sorted({m.group_label for m in rates if "under_powered" in m.flags})
        shown = [m for m in rates if not m.suppressed]  # undefined values are never suppressed
        hidden = len(rates) - len(shown)
        what = f"{'cases with at least one finding' if analysis['names'] else f'patients with {outcome}=1'}"
        parts = []
        for m in shown:
            if m.value is None:
                parts.append(f"{m.group_label}: undefined ({m.reason})")
            else:
                ci = f" (95% CI {_pct(m.ci[0])}–{_pct(m.ci[1])})" if m.ci else " (no interval)"
                parts.append(f"{m.group_label}: {_pct(m.value)}{ci}")
        verb = "called 'no finding' for" if analysis["names"] else "missed"
        message = f"Among {what}, the model {verb} " + "; ".join(parts) + "."
        if hidden:
            message += f" {hidden} group(s) with fewer than {ctx.min_cell} cases are suppressed."
        visible_gaps = [g for g in gaps if not g.suppressed and g.value is not None]
        powered = [g for g in visible_gaps if "under_powered" not in g.flags]
        worst = max(powered or visible_gaps, key=lambda g: g.value, default=None)
        if worst is not None:
            ci = f" (95% CI {_pts(worst.ci[0])} to {_pts(worst.ci[1])})" if worst.ci else ""
            adj = f", adjusted p = {worst.p_adjusted:.3g}" if worst.p_adjusted is not None else ""
            message += (f" Largest gap to the best group{'' if powered else ' (under-powered groups only)'}: "
                        f"{_pts(worst.value)} percentage points{ci} for {worst.group_label}{adj}.")
        statuses = []
        for g in gaps:
            if g.value is None or g.ci is None:
                statuses.append(Status.INCONCLUSIVE)
            elif g.ci[0] > p.tolerance:
                statuses.append(Status.WARN)
            elif g.ci[1] <= p.tolerance:
                statuses.append(Status.PASS)
            else:
                statuses.append(Status.INCONCLUSIVE)
        status = worst_status(statuses) if statuses else Status.INCONCLUSIVE
        if status == Status.FAIL:  # the plugin warns; only gates fail a run
            status = Status.WARN
        if under:
            message += (f" Under-powered (fewer than {p.min_group_n} cases or {p.min_positives} positives): "
                        f"{len(under)} group(s); their gaps cannot be judged reliably.")
            if status == Status.PASS:
                status = Status.INCONCLUSIVE
        if status == Status.PASS:
            message += f" Every gap to the best group is below {_pts(p.tolerance)} points with 95% confidence."
        elif status == Status.INCONCLUSIVE:
            message += f" The data cannot show that every gap is below {_pts(p.tolerance)} points."
        elif status == Status.WARN:
            message += f" At least one gap exceeds {_pts(p.tolerance)} points with 95% confidence."
        label_part = f"{label}: " if label else ""
        return Finding(
            id=f"{key}_by_{'_x_'.join(cols)}" + (f"_{label}" if label else ""),
            title=f"{label_part}{'Underdiagnosis' if analysis['names'] else 'Missed cases (FNR)'} by {' × '.join(cols)}",
            status=status, message=message, metric=f"{key}_gap", threshold=p.tolerance,
            checklist=self.checklist,
        )

    def _summary(self, findings, analyses, threshold_method) -> str:
        counts = {s: sum(f.status == s for f in findings) for s in Status}
        parts = [f"{counts[s]} {s.value.lower()}" for s in (Status.WARN, Status.INCONCLUSIVE, Status.PASS) if counts[s]]
        return (f"Underdiagnosis compared across {len(findings)} grouping(s): {', '.join(parts)}. "
                f"Operating point: {threshold_method}.")


def _metric(mid, est: Estimate, n, group, label, flags, level, *, suppressed, denominator=None,
            reference=None, reference_group=None) -> Metric:
    # An undefined value has nothing to hide and must be shown as undefined (never as 0),
    # so only defined values are suppressed.
    defined = est.value is not None and np.isfinite(est.value)
    return Metric(
        id=mid, value=est.value, n=n, group=group, ci=est.ci, ci_method=est.method, level=level,
        reason=est.reason, denominator=denominator, label=label, reference=reference,
        reference_group=reference_group, p_value=est.p_value, flags=flags,
        suppressed=suppressed and defined,
    )


def _propagate_suppression(metrics: list[Metric]) -> list[Metric]:
    """Hide every value from which a suppressed one could be recovered.

    A gap gives back its group's rate when the reference is known (and the reference's rate
    when the group is known); prevalence and the minimum detectable gap give back the number
    of positives (and negatives). Undefined values stay visible as undefined.
    """
    def key(m):
        return (m.id, tuple(sorted((m.group or {}).items())), m.label)

    hidden = {key(m) for m in metrics if m.suppressed}
    out = []
    for m in metrics:
        hide = m.suppressed
        if m.value is not None and not hide:
            if m.reference is not None:
                base = m.id.removesuffix("_overall").removesuffix("_gap")
                ref = m.reference_group
                hide = (base, key(m)[1], m.label) in hidden or (
                    ref is not None and (base, tuple(sorted(ref.items())), m.label) in hidden)
            elif m.id in ("prevalence", "min_detectable_gap"):
                hide = ("positives", key(m)[1], m.label) in hidden
        out.append(m if hide == m.suppressed else replace(m, suppressed=bool(hide)))
    return out


def _adjust(metrics: list[Metric], method: str) -> list[Metric]:
    """Correct the gap tests of each metric and reference as one family (e.g. every fnr_gap)."""
    out = list(metrics)
    families: dict[tuple[str, str | None], list[int]] = {}
    for i, m in enumerate(metrics):
        if m.reference is not None and m.p_value is not None:
            families.setdefault((m.id, m.label), []).append(i)
    for idx in families.values():
        adjusted = adjust_pvalues(np.array([metrics[i].p_value for i in idx]), method=method)
        for i, q in zip(idx, adjusted, strict=True):
            out[i] = replace(out[i], p_adjusted=float(q))
    return out


def _clusters(frame: pd.DataFrame, id_column: str | None):
    if not id_column:
        return None, "rows (no patient identifier configured)"
    codes, uniques = pd.factorize(frame[id_column])
    if len(uniques) == len(frame):
        return None, f"rows (each {id_column} appears once)"
    return codes.astype(np.int64), f"patients ({id_column}; {len(uniques)} patients, {len(frame)} rows)"


def _group_codes(frame: pd.DataFrame, cols: tuple[str, ...], order: dict[str, list[str]] | None = None):
    """Integer group codes and their keys; binned columns keep their band order, others sort."""
    order = order or {}
    per_col = []
    for c in cols:
        values = frame[c].astype(str)
        cats = [v for v in order.get(c, []) if v in set(values)] or sorted(values.unique())
        extra = sorted(set(values.unique()) - set(cats))
        per_col.append(pd.Categorical(values, categories=cats + extra))
    combined = np.zeros(len(frame), np.int64)
    for cat in per_col:
        combined = combined * len(cat.categories) + cat.codes.astype(np.int64)
    present, codes = np.unique(combined, return_inverse=True)
    keys = []
    for value in present:
        key = []
        for cat in reversed(per_col):
            value, idx = divmod(int(value), len(cat.categories))
            key.append(str(cat.categories[idx]))
        keys.append(tuple(reversed(key)))
    return codes.astype(np.int64), keys


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pts(x: float) -> str:
    return f"{100 * x:.1f}"
