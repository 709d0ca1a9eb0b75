"""Fairness plugin: subgroup and intersectional underdiagnosis (FUTURE-AI Fairness 3).

Implements the audit of Seyyed-Kalantari et al., Nat Med 2021;27:2176-2182: at one operating
point shared by every group, the rate at which patients who have the condition are called
healthy, per group and per intersection, with exact intervals that hold at small counts and
under patient clustering, gaps to the
best group and to the overall population, and multiplicity-corrected tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit import __version__
from audit.core.progress import track
from audit.core.results import Curve, Finding, Metric, PluginResult, Status, worst_status
from audit.errors import ConfigError
from audit.plugins.base import AuditPlugin
from audit.plugins.disaggregation import (
    GAP_BEST_METHOD,
    GAP_METRICS,
    GAP_OVERALL_METHOD,
    RATE_METRICS,
    SCORE_GAP_METHOD,
    SCORE_METRICS,
    GroupingStats,
    GroupStats,
    analyse_grouping,
)
from audit.plugins.records import (
    adjust_gaps,
    group_codes,
    grouping_records,
    patient_clusters,
    powered,
    reference_rule,
    small_cell,
)
from audit.report.names import DisplayNames
from audit.stats import choose_threshold, parse_operating_point

CHECKLIST = (
    "FUTURE-AI:Fairness 3", "CLAIM-2024:38", "CLAIM-2024:39", "CLAIM-2024:29",
    "TRIPOD+AI:23a", "TRIPOD+AI:12e",
)
# In multi-label mode the "has a finding" outcome is analysed with the machinery of a binary
# label; these are its metrics under the names of the Nature Medicine paper.
UNDERDIAGNOSIS_NAMES = {"fnr": "underdiagnosis_rate", "fpr": "overdiagnosis_rate"}
BASE_IDS = ("n", "patients", "positives", "threshold", "min_detectable_gap") + RATE_METRICS + SCORE_METRICS
GAP_IDS = tuple(f"{m}_gap" for m in GAP_METRICS) + tuple(f"{m}_gap_overall" for m in GAP_METRICS)
UD_IDS = ("underdiagnosis_rate", "overdiagnosis_rate", "underdiagnosis_rate_gap",
          "underdiagnosis_rate_gap_overall", "overdiagnosis_rate_gap", "overdiagnosis_rate_gap_overall")


MAX_BOOTSTRAP = 100_000  # the cap of the deprecated fairness.bootstrap (documented)

# The operating-point check (finding ``operating_point``): poor when the overall sensitivity or
# specificity is below this, or the flagged share is outside these multiples of prevalence.
OP_MIN_RATE = 0.5
OP_FLAGGED_RATIO = (0.5, 2.0)
OPERATING_POINT_RULE = (
    f"WARN when, overall, sensitivity < {OP_MIN_RATE:g} or specificity < {OP_MIN_RATE:g}, or the flagged "
    f"share is outside [{OP_FLAGGED_RATIO[0]:g}, {OP_FLAGGED_RATIO[1]:g}] times the prevalence (decided on "
    "point estimates, stated with their intervals); PASS when none holds; INCONCLUSIVE when a value it needs "
    "is suppressed or undefined. It never FAILs and no gate reads it."
)
# fnr_by_threshold: each group's miss rate at these thresholds (0, 0.05, ..., 1).
CURVE_THRESHOLDS = tuple(k / 20 for k in range(21))
CURVE_RULE = (
    "each group's FNR (missed ÷ positives, score >= threshold counts as flagged) at every threshold, for "
    "single-attribute groupings only (no intersections, no overall curve, so that no curve can be differenced "
    "back into a suppressed cell) and only for groups whose n, positives and FNR are published; a point whose "
    "missed or caught count is 1 to min_cell - 1 is null (unless report.keep_small_numerators)"
)


@dataclass(frozen=True)
class FairnessParams:
    """Parameters of the fairness plugin (section ``[fairness]`` of audit.toml).

    threshold : fixed operating point; otherwise chosen by ``operating_point`` on the
        reference data (or, without reference data, on the audited data, with a warning).
    operating_point : ``max-f1`` (the paper's choice), ``youden``, ``sensitivity:X`` or
        ``specificity:X``.
    intersections : lists of sensitive attributes analysed jointly, e.g. [["sex", "age_band"]].
    bootstrap, seed : deprecated and ignored (the intervals are exact; a warning says so). The
        plugin draws no random numbers, so its settings record no seed; the run's seed is
        recorded once, as ``provenance.seed``.
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
        if not 0.5 < self.level < 1:
            raise ConfigError(f"fairness.level: expected a number in (0.5, 1), got {self.level}.")
        if self.correction not in ("holm", "bh"):
            raise ConfigError(f"fairness.correction: '{self.correction}' is not one of holm, bh.")
        # Ignored since the intervals are exact, but still bounded: a config that asks for a
        # billion replicates is a mistake worth saying, not a value to record.
        if not 1 <= self.bootstrap <= MAX_BOOTSTRAP:
            raise ConfigError(f"fairness.bootstrap (--bootstrap): expected 1 to {MAX_BOOTSTRAP:,}, "
                              f"got {self.bootstrap:,}; the key is deprecated and can be removed.")
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
    NPV, the flagged share (``flagged``: predicted positives ÷ n, to set against prevalence),
    AUROC and Brier score, with 95% intervals: exact Clopper-Pearson intervals for the
    rates (at a Korn-Graubard effective sample size when rows repeat per patient),
    cluster-robust DeLong / influence-function intervals for AUROC and Brier. Gaps to the best
    group (``*_gap``, the best re-selected within the interval) and to the overall population
    (``*_gap_overall``, from the group against the rest) are signed so that positive means
    worse, each with an interval, a simultaneous interval for its family and a test
    corrected for multiplicity (Holm or Benjamini-Hochberg). See
    :mod:`audit.plugins.disaggregation`.

    Before the gaps, one finding per label, ``operating_point``, judges the shared operating
    point on the overall numbers: WARN when sensitivity or specificity is below 0.5 or the
    flagged share is outside half to twice the prevalence (also stated among the warnings),
    PASS otherwise, INCONCLUSIVE when a value it needs is suppressed. And per group of each
    single sensitive attribute, a curve ``fnr_by_threshold`` (:class:`audit.core.results.Curve`):
    the miss rate at thresholds 0, 0.05, ..., 1, under the privacy rule of :func:`_fnr_curves`.

    With an identifier column, ``min_group_n``, ``min_positives`` and ``report.min_cell``
    count patients, not rows.

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
        max_groups = ctx.config.data.max_groups
        for combo in p.intersections:
            # Counted before any per-group work: thousands of cells would run for minutes.
            cells = frame.groupby(list(combo), sort=False, observed=True).ngroups
            if cells > max_groups:
                raise ConfigError(
                    f"fairness.intersections: {list(combo)} has {cells} groups in {ctx.data.path}, more "
                    f"than data.max_groups = {max_groups}. Intersect fewer or coarser attributes, or raise "
                    "data.max_groups."
                )
        labels = list(ctx.labels)
        scores = ctx.predictions("data")
        ref_scores = ctx.predictions("reference") if ctx.reference is not None else None
        warnings: list[str] = []
        for key in ("bootstrap", "seed"):
            # --seed sets the run's seed (recorded once, in provenance) and, for old configs,
            # fairness.seed too: that copy is the run's seed, not a stale key to warn about.
            if key == "seed" and p.seed == ctx.random_state:
                continue
            if getattr(p, key) != getattr(FairnessParams, key):
                warnings.append(f"fairness.{key} is no longer used: fairness intervals are exact "
                                "(Clopper-Pearson and MOVER), not bootstrapped, so no replicates or seed "
                                "are needed. Remove the key.")
        thresholds, threshold_method = self._thresholds(ctx, labels, scores, ref_scores, warnings)
        y = frame[labels].to_numpy(np.int8)
        preds = (scores >= np.asarray(thresholds)[None, :]).astype(np.int8)

        clusters, cluster_note = patient_clusters(frame, ctx.id_column)
        groupings = [(c,) for c in ctx.sensitive] + [tuple(c) for c in p.intersections]
        unit = "patients" if clusters is not None else "cases"
        rate_method = ("Clopper-Pearson exact interval" + (
            f" at the Korn-Graubard effective sample size ({cluster_note})" if clusters is not None else ""))
        score_method = "logit-Wald (AUROC, DeLong) / Wald (Brier) interval, influence functions" + (
            ", cluster-robust by patient" if clusters is not None else "")

        analyses = self._analyses(labels, y, preds, scores, thresholds)
        order = {b.name: list(b.labels) for b in ctx.config.data.bins}
        coded = {cols: group_codes(frame, cols, order) for cols in groupings}
        family = _family_sizes(analyses, [len(coded[c][1]) for c in groupings])
        metrics: list[Metric] = []
        protected: list = []
        with track(ctx.progress, "fairness: groups", len(analyses) * len(groupings)) as advance:
            for analysis in analyses:
                if analysis["threshold"] is not None:
                    metrics.append(Metric("threshold", analysis["threshold"], n=len(frame), label=analysis["label"]))
                names = analysis["names"]
                fam = {base + suffix: family[names.get(base, base) + suffix]
                       for base in RATE_METRICS + SCORE_METRICS for suffix in ("", "_gap", "_gap_overall")
                       if names.get(base, base) + suffix in family}
                for cols in groupings:
                    codes, keys = coded[cols]
                    stats = analyse_grouping(
                        cols, codes, keys, analysis["y"], analysis["pred"], analysis["score"], clusters,
                        level=p.level, family=fam,
                        eligible_for_best=_reference_rule(p, ctx.min_cell, ctx.config.report.keep_small_numerators),
                        rate_method=rate_method, score_method=score_method,
                    )
                    out, prot = self._metrics(stats, analysis, ctx.min_cell, p, overall=cols == groupings[0],
                                              keep_small_numerators=ctx.config.report.keep_small_numerators,
                                              clustered=clusters is not None)
                    metrics.extend(out)
                    protected.extend(prot)
                    advance(1)
        metrics = ctx.suppress(metrics, protected)
        metrics = adjust_gaps(metrics, p.correction)
        gap_findings = [self._finding(metrics, analysis, cols, p, ctx, unit)
                        for analysis in analyses for cols in groupings]
        # The operating point first: a model that misses most cases makes its gaps secondary.
        op = [(a, _operating_point_finding(metrics, a, p, ctx, unit, self.checklist))
              for a in analyses if not a["names"]]
        op_findings = [f for _, f in op]
        # Stated among the warnings too, so that no report says "Warnings: none" beside it.
        warnings += [(f"{a['label']}: " if a["label"] else "") + f.message for a, f in op if f.status == Status.WARN]
        findings = op_findings + gap_findings
        status = worst_status(f.status for f in findings)
        summary = self._summary(gap_findings, analyses, threshold_method)
        if any(f.status == Status.WARN for f in op_findings):
            summary += " The operating point is poor (see the finding 'Operating point')."
        curves = _fnr_curves(metrics, analyses, coded, [(c,) for c in ctx.sensitive], clusters, ctx.min_cell,
                             ctx.config.report.keep_small_numerators)
        settings = {
            "mode": "multi-label" if len(labels) > 1 else "binary",
            "labels": labels,
            "key_metric": "underdiagnosis_rate" if len(labels) > 1 else "fnr",
            "thresholds": {lab: float(t) for lab, t in zip(labels, thresholds, strict=True)},
            "threshold_method": threshold_method,
            "prediction_rule": "score >= threshold",
            "groupings": [list(c) for c in groupings],
            "interval_level": p.level,
            "interval_method_rates": rate_method,
            "interval_method_auroc_brier": score_method,
            "interval_method_gaps": {"best": GAP_BEST_METHOD, "overall": GAP_OVERALL_METHOD,
                                     "auroc_brier": SCORE_GAP_METHOD},
            "gap_definition": ("positive = worse than the reference: the best adequately powered group "
                               "(*_gap; 0 for the best group itself) or the overall population (*_gap_overall)"),
            "test_method_rates": "two-sided test inverting the gap's interval (exact resolution, no replicates)",
            "test_method_auroc_brier": "two-sided Wald test on influence-function standard errors",
            "multiplicity_correction": {"holm": "Holm step-down (FWER)", "bh": "Benjamini-Hochberg (FDR)"}[p.correction],
            "multiplicity_family": "every value of one metric id (all groups, groupings and labels), e.g. every fnr_gap",
            "simultaneous_intervals": ("Bonferroni: each value's interval at level 1 - (1 - level) / m, m the size "
                                       "of its family; gates and findings judge 'exceeds' on it"),
            "family_sizes": dict(sorted(family.items())),
            "counting_unit": unit,
            "min_group_n": p.min_group_n,
            "min_positives": p.min_positives,
            "tolerance": p.tolerance,
            "min_cell": ctx.min_cell,
            "keep_small_numerators": ctx.config.report.keep_small_numerators,
            "no_finding": analyses[-1].get("no_finding_rule") if len(labels) > 1 else None,
            "flagged_definition": "predicted positives ÷ n at the operating point (score >= threshold)",
            "operating_point_check": OPERATING_POINT_RULE,
            "curves": {"fnr_by_threshold": CURVE_RULE, "thresholds": list(CURVE_THRESHOLDS),
                       "thresholds_note": "each curve also has a point at its operating point"},
        }
        return PluginResult(
            plugin=self.name, principle=self.principle, version=self.version, status=status,
            summary=summary, metrics=tuple(metrics), findings=tuple(findings), settings=settings,
            warnings=tuple(warnings), checklist=self.checklist, curves=tuple(curves),
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

    def _metrics(self, stats: GroupingStats, analysis, min_cell, p, *, overall, keep_small_numerators,
                 clustered):
        """Metric records of one grouping, and the counts that suppression must protect
        (:func:`audit.plugins.records.grouping_records`)."""
        names = analysis["names"]
        ud_mode = bool(names)
        return grouping_records(
            stats, label=analysis["label"], names=names, min_cell=min_cell, level=p.level,
            min_group_n=p.min_group_n, min_positives=p.min_positives,
            keep_small_numerators=keep_small_numerators, clustered=clustered, include_overall=overall,
            keep=("prevalence", "fnr", "fpr") if ud_mode else RATE_METRICS + SCORE_METRICS,
            gap_keep=("fnr", "fpr") if ud_mode else GAP_METRICS,
        )

    def _finding(self, metrics, analysis, cols, p, ctx, unit) -> Finding:
        """The verdict on one grouping, decided by the groups that can decide it.

        A gap WARNs when its simultaneous interval (adjusted for every comparison of its
        family, as gates are) lies above the tolerance, and PASSes when its 95% interval lies
        below it; under-powered, suppressed and undefined gaps are INCONCLUSIVE and never
        decide. The sentence names only the groups it is built from.
        """
        key = "underdiagnosis_rate" if analysis["names"] else "fnr"
        label = analysis["label"]
        outcome = analysis["outcome"]
        names = _names(ctx)
        mine = [m for m in metrics if m.label == label and m.group is not None and tuple(m.group) == cols]
        rates = [m for m in mine if m.id == key]
        # Both comparisons decide: the best group is often unpublishable (few missed cases is
        # a small cell), and then the gap to the population as a whole carries the finding.
        gaps = [m for m in mine if m.id in (f"{key}_gap", f"{key}_gap_overall")]
        shown = [m for m in rates if not m.suppressed and m.value is not None]
        hidden = sum(m.suppressed for m in rates)
        what = "cases with at least one finding" if analysis["names"] else names.patients(outcome)
        verb = "called 'no finding' for" if analysis["names"] else "missed"
        parts = [f"{names.group(m.group)}: {_pct(m.value)}" + (
            f" (95% CI {_pct(m.ci[0])}–{_pct(m.ci[1])})" if m.ci else " (no interval)") for m in shown]
        rates_text = (f"Among {what}, the model {verb} " + "; ".join(parts) + "." if parts
                      else f"Among {what}, no group's rate can be shown.")
        deciding = [g for g in gaps if g.value is not None and g.ci is not None and not g.suppressed
                    and "under_powered" not in g.flags]
        statuses = []
        for g in gaps:
            if g not in deciding:
                statuses.append(Status.INCONCLUSIVE)
            elif (g.ci_simultaneous or g.ci)[0] > p.tolerance:
                statuses.append(Status.WARN)
            elif g.ci[1] <= p.tolerance:
                statuses.append(Status.PASS)
            else:
                statuses.append(Status.INCONCLUSIVE)
        status = worst_status(statuses) if statuses else Status.INCONCLUSIVE
        tol = _pts(p.tolerance)
        exceeding = [g for g, st in zip(gaps, statuses, strict=True) if st == Status.WARN]
        # The decisive sentence comes first: summary.md and the finding cards cut long
        # messages at a sentence, and the reader needs the verdict before the numbers.
        if exceeding:
            worst = max(exceeding, key=lambda g: g.ci_simultaneous[0] if g.ci_simultaneous else g.ci[0])
            lead = (f"Gap above {tol} points even allowing for every comparison made: "
                    f"{_gap_sentence(worst, names)}")
        elif status == Status.PASS:
            lead = f"Every gap, to the best group and to the whole population, is below {tol} points with 95% confidence."
        else:
            lead = f"The data cannot show that every gap is below {tol} points."
            if deciding:
                worst = max(deciding, key=lambda g: g.value)
                lead += f" Largest gap among the groups that can be judged: {_gap_sentence(worst, names)}"
        message = f"{lead} {rates_text}"
        if hidden:
            message += (f" {hidden} group(s) are suppressed (fewer than {ctx.min_cell} {unit} in a cell, "
                        "or they would give such a cell back).")
        not_judged = len({tuple(g.group.items()) for g in gaps} - {tuple(g.group.items()) for g in deciding})
        if not_judged:
            message += (f" {not_judged} group(s) cannot be judged (fewer than {p.min_group_n} {unit} or "
                        f"{p.min_positives} positive {unit}, suppressed, or undefined); they decide nothing.")
        label_part = f"{label}: " if label else ""
        return Finding(
            id=f"{key}_by_{'_x_'.join(cols)}" + (f"_{label}" if label else ""),
            title=f"{label_part}{'Underdiagnosis' if analysis['names'] else 'Missed cases (FNR)'} by {names.grouping(cols)}",
            status=status, message=message, metric=f"{key}_gap", threshold=p.tolerance,
            checklist=self.checklist,
        )

    def _summary(self, findings, analyses, threshold_method) -> str:
        counts = {s: sum(f.status == s for f in findings) for s in Status}
        parts = [f"{counts[s]} {s.value.lower()}" for s in (Status.WARN, Status.INCONCLUSIVE, Status.PASS) if counts[s]]
        return (f"Underdiagnosis compared across {len(findings)} grouping(s): {', '.join(parts)}. "
                f"Operating point: {threshold_method}.")


def _operating_point_finding(metrics, analysis, p: FairnessParams, ctx, unit, checklist) -> Finding:
    """Whether the shared operating point is usable at all, from the overall numbers of a label.

    Poor (WARN) when the overall sensitivity or specificity is below 0.5, or the flagged share
    is under half or over twice the prevalence: then the model misses (or flags) so many
    patients that the gaps between groups are secondary. Decided on the point estimates and
    stated with their intervals, using only published values; INCONCLUSIVE when a value that
    could decide is suppressed or undefined.
    """
    label, outcome = analysis["label"], analysis["outcome"]
    overall = {m.id: m for m in metrics if m.group is None and m.label == label and m.reference is None}

    def shown(mid: str) -> Metric | None:
        m = overall.get(mid)
        return m if m is not None and not m.suppressed and m.value is not None else None

    fnr, sens, spec, fpr = shown("fnr"), shown("sensitivity"), shown("specificity"), shown("fpr")
    flagged, prev = shown("flagged"), shown("prevalence")
    sensitivity = sens.value if sens else (1 - fnr.value if fnr else None)
    specificity = spec.value if spec else (1 - fpr.value if fpr else None)
    ratio = flagged.value / prev.value if flagged and prev and prev.value > 0 else None
    lo, hi = OP_FLAGGED_RATIO
    reasons = []
    if sensitivity is not None and sensitivity < OP_MIN_RATE:
        reasons.append("it catches fewer than half of the patients with the condition")
    if specificity is not None and specificity < OP_MIN_RATE:
        reasons.append("it clears fewer than half of the patients without it")
    if ratio is not None and ratio < lo:
        reasons.append("it flags fewer than half as many patients as have the condition")
    elif ratio is not None and ratio > hi:
        reasons.append("it flags more than twice as many patients as have the condition")
    decided = None not in (sensitivity, specificity, ratio)
    status = Status.WARN if reasons else (Status.PASS if decided else Status.INCONCLUSIVE)

    patients = _names(ctx).patients(outcome)
    ci_text = f"{100 * p.level:g}% CI"

    def ci(m: Metric, before: str = "") -> str:
        inner = before + (f"{'; ' if before else ''}{ci_text} {_pct(m.ci[0])}–{_pct(m.ci[1])}" if m.ci else "")
        return f" ({inner})" if inner else ""

    parts = []
    if fnr:
        parts.append(f"misses {_pct(fnr.value)} of the {patients}{ci(fnr)}")
    elif sens:
        parts.append(f"catches {_pct(sens.value)} of the {patients}{ci(sens)}")
    if spec:
        parts.append(f"clears {_pct(spec.value)} of those without it{ci(spec)}")
    if flagged:
        parts.append(f"flags {_pct(flagged.value)} of all patients{ci(flagged)}")
    threshold = analysis["threshold"]
    head = f"At the operating point (threshold {_threshold_text(threshold)}) the model "
    if parts:
        message = head + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])
        if prev:
            message += f", while {_pct(prev.value)} have the condition{ci(prev)}"
    else:
        message = f"At the operating point (threshold {_threshold_text(threshold)}) no overall rate can be shown"
    if status == Status.WARN:
        message += (": this operating point is poor (" + "; ".join(reasons) + "); the gaps between groups "
                    "below matter less than this.")
    elif status == Status.PASS:
        message += (": sensitivity and specificity are at least 0.5 and the model flags between half and "
                    "twice as many patients as have the condition.")
    else:
        message += (f". The operating point cannot be judged: a value it needs is suppressed (fewer than "
                    f"{ctx.min_cell} {unit} in a cell) or undefined.")
    return Finding(
        id="operating_point" + (f"_{label}" if label else ""),
        title=(f"{label}: " if label else "") + "Operating point",
        # No single threshold: three criteria decide (sensitivity, specificity, flagged share),
        # and the message names them.
        status=status, message=message, metric="sensitivity", checklist=checklist,
    )


def _threshold_text(t: float | None) -> str:
    if t is None:
        return "—"
    return f"{t:.2f}" if abs(100 * t - round(100 * t)) < 1e-9 else f"{t:.4g}"


def _fnr_curves(metrics, analyses, coded, groupings, clusters, min_cell, keep_small_numerators) -> list[Curve]:
    """``fnr_by_threshold`` of every published group of every single-attribute grouping.

    The privacy rule (documented in docs/results-json.md): a group gets a curve only when its
    n, positives and FNR at the operating point are all published (after secondary
    suppression), so the curve's denominator and its value at the operating point are
    public already; no intersection and no overall curve is published, so that curves of
    complementary groups cannot be subtracted into a suppressed cell; and a point whose
    missed or caught count (patients, with an identifier) is 1 to ``min_cell - 1`` is None
    unless ``report.keep_small_numerators``.
    """
    shown = {(m.id, tuple(sorted(m.group.items())), m.label) for m in metrics
             if m.group is not None and m.reference is None and not m.suppressed and m.value is not None}
    curves = []
    for analysis in analyses:
        if analysis["names"] or analysis["score"] is None:
            continue
        # The operating point is a point of every curve: a value read between grid points
        # (0.05 and 0.10, say) would misstate the miss rate at the threshold actually used.
        op = analysis["threshold"]
        grid = np.unique(np.append(CURVE_THRESHOLDS, [] if op is None else [op]))
        thresholds = tuple(float(t) for t in grid)
        label, y, score = analysis["label"], analysis["y"], analysis["score"]
        for cols in groupings:
            codes, keys = coded[cols]
            for k, key in enumerate(keys):
                group = dict(zip(cols, key, strict=True))
                where = tuple(sorted(group.items()))
                if not all((mid, where, label) in shown for mid in ("n", "positives", "fnr")):
                    continue
                rows = (codes == k) & (y == 1)
                s = np.sort(score[rows])
                missed = np.searchsorted(s, grid, side="left")  # rows with score < t
                caught = len(s) - missed
                if clusters is not None:  # count patients: any row missed / any row caught
                    pid, first = np.unique(clusters[rows], return_inverse=True)
                    lowest = np.full(len(pid), np.inf)
                    highest = np.full(len(pid), -np.inf)
                    np.minimum.at(lowest, first, score[rows])
                    np.maximum.at(highest, first, score[rows])
                    missed_p = (lowest[None, :] < grid[:, None]).sum(axis=1)
                    caught_p = (highest[None, :] >= grid[:, None]).sum(axis=1)
                else:
                    missed_p, caught_p = missed, caught
                values = []
                for i in range(len(grid)):
                    small = small_cell(int(missed_p[i]), min_cell) or small_cell(int(caught_p[i]), min_cell)
                    values.append(None if small and not keep_small_numerators else float(missed[i] / len(s)))
                curves.append(Curve(id="fnr_by_threshold", group=group, label=label, thresholds=thresholds,
                                    values=tuple(values), operating_point=analysis["threshold"]))
    return curves


def _gap_sentence(g: Metric, names: DisplayNames) -> str:
    ci = f" (95% CI {_pts(g.ci[0])} to {_pts(g.ci[1])})" if g.ci else ""
    if g.reference == "overall":
        ref = " against the whole population"
    else:
        ref = f" against {names.group(g.reference_group)}" if g.reference_group and g.reference_group != g.group else ""
    adj = f", adjusted {_p_text(g.p_adjusted)}" if g.p_adjusted is not None else ""
    return f"{_pts(g.value)} percentage points{ci} for {names.group(g.group)}{ref}{adj}."


def _names(ctx) -> DisplayNames:
    """The report's display names, so that findings read as the report does ("age band <1")."""
    return DisplayNames.from_config(ctx.config.to_dict())


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _powered(unit: GroupStats, p: FairnessParams) -> bool:
    return powered(unit, p.min_group_n, p.min_positives)


def _reference_rule(p: FairnessParams, min_cell: int, keep_small_numerators: bool):
    return reference_rule(p.min_group_n, p.min_positives, min_cell, keep_small_numerators)


def _family_sizes(analyses, group_counts) -> dict[str, int]:
    """Number of values of each metric id: the family of its simultaneous intervals and tests.

    Every group counts, defined or not, so the family size reveals nothing about which values
    are undefined or suppressed.
    """
    n_groups = sum(group_counts)
    family: dict[str, int] = {}
    for analysis in analyses:
        names = analysis["names"]
        bases = ("prevalence", "fnr", "fpr") if names else RATE_METRICS + SCORE_METRICS
        for base in bases:
            mid = names.get(base, base)
            family[mid] = family.get(mid, 0) + n_groups + 1
            if base in GAP_METRICS:
                for suffix in ("_gap", "_gap_overall"):
                    family[mid + suffix] = family.get(mid + suffix, 0) + n_groups
    return family


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pts(x: float) -> str:
    return f"{100 * x:.1f}"
