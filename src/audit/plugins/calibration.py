"""Calibration plugin: do the model's predicted risks match the observed event rates?

Per label, for the whole population, each group of each sensitive attribute and each site:
the calibration slope and intercept (logistic recalibration on ``logit(score)``), calibration
in the large (the intercept with ``logit(score)`` as offset, and the observed/expected ratio),
the expected calibration error and the Brier score, each with an interval; a smoothed
reliability curve with a bootstrap band; and decision curves (net benefit of the model and of
treating everyone). The statistics are those of :mod:`audit.stats.calibration`; this module
adds the groups, the small-cell rule, the curves' privacy rule and the findings.

References
----------
Van Calster B, McLernon DJ, van Smeden M, Wynants L, Steyerberg EW. Calibration: the Achilles
heel of predictive analytics. BMC Med 2019;17:230. Vickers AJ, Elkin EB. Decision curve
analysis. Med Decis Making 2006;26:565-574.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from audit import __version__
from audit.core.progress import track
from audit.core.results import (
    Curve,
    Finding,
    Metric,
    PluginResult,
    Status,
    worst_status,
)
from audit.errors import ConfigError
from audit.plugins.base import AuditPlugin
from audit.plugins.disaggregation import analyse_grouping
from audit.plugins.records import (
    group_codes,
    grouping_records,
    patient_clusters,
    powered,
    small_cell,
)
from audit.privacy import Count
from audit.report.names import DisplayNames
from audit.stats.calibration import (
    EPSILON,
    brier,
    calibration_in_the_large,
    calibration_slope,
    clip_scores,
    decision_curve,
    ece_interval,
    reliability_curve,
)
from audit.stats.influence import wald_interval

CHECKLIST = (
    "TRIPOD+AI:12e", "TRIPOD+AI:23a", "TRIPOD+AI:14",
    "CLAIM-2024:28", "CLAIM-2024:37",
    "FUTURE-AI:Fairness 3", "FUTURE-AI:Traceability 3",
)
COUNT_IDS = ("n", "patients", "positives", "prevalence")
# Hidden when the group's positive patients are a small cell.
CITL_IDS = ("calibration_in_the_large", "oe_ratio")
# Hidden when the group's positive or negative patients are a small cell.
FIT_IDS = ("calibration_slope", "calibration_intercept", "ece", "brier")
CAL_IDS = ("calibration_slope", "calibration_intercept", "calibration_in_the_large", "oe_ratio", "ece", "brier")
METRIC_IDS = COUNT_IDS + CAL_IDS + ("clipped_scores",)
# Values with a Wald interval on a known standard error, hence a simultaneous interval too.
SIMULTANEOUS_IDS = ("calibration_slope", "calibration_intercept", "calibration_in_the_large", "oe_ratio", "brier")
MAX_BOOT = 100_000
MAX_BINS = 1000
MIN_BOOT = 50
# Groups get fewer bootstrap replicates than the whole population (their curves, ECE
# intervals and net-benefit bands): at most n_boot // 5, at least 100, never more than n_boot.
GROUP_BOOT_FRACTION = 5
GROUP_BOOT_MIN = 100
# The reliability curve's grid: the stats default (50 points over the 1st-99th percentile).
RELIABILITY_GRID = "50 points from the 1st to the 99th percentile of the group's scores"

RATE_METHOD = "Clopper-Pearson exact interval"
SUPPRESSION_RULE = (
    "as the fairness plugin, in patients when there is an identifier: a group with fewer than min_cell "
    "patients is hidden with every record; calibration_in_the_large and oe_ratio are hidden when the "
    "group's positive patients are 1 to min_cell - 1; calibration_slope, calibration_intercept, ece and "
    "brier when its positive or negative patients are 1 to min_cell - 1 (report.keep_small_numerators does "
    "not apply to them); then complementary (secondary) suppression; finally every calibration record of a "
    "group whose n or positives record ended up hidden"
)
RELIABILITY_RULE = (
    "overall and for every group (sensitive attribute or site) whose n and positives records are published "
    "and whose patients, positive patients and negative patients are all at least min_cell"
)
NET_BENEFIT_RULE = (
    "net_benefit (the model) and net_benefit_treat_all overall; net_benefit per site when a site column is "
    "set and every site qualifies (n and positives published, at least min_cell patients and positive "
    "patients: otherwise the overall curve minus the others would give a hidden site back); a point whose "
    "true- or false-positive count (patients, with an identifier) is 1 to min_cell - 1 is null, band "
    "included, unless report.keep_small_numerators; net_benefit_treat_all only when the overall positives "
    "are published"
)


@dataclass(frozen=True)
class CalibrationParams:
    """Parameters of the calibration plugin (section ``[calibration]`` of audit.toml).

    bins, binning : the ECE's bins (``quantile``: equal counts; ``uniform``: equal widths).
    smoother : the reliability curve's smoother, ``isotonic`` or ``loess``.
    n_boot : bootstrap replicates (over patients) for the overall ECE interval and the overall
        curves' bands; groups use ``min(n_boot, max(100, n_boot // 5))``.
    level : interval level.
    slope_range, oe_range : the calibration slope and the observed/expected ratio the
        findings accept.
    decision_thresholds, decision_step : the decision curves' threshold grid (inclusive).
    min_group_n, min_positives : groups below either are flagged under-powered and decide no
        finding.
    """

    bins: int = 10
    binning: str = "quantile"
    smoother: str = "isotonic"
    n_boot: int = 500
    level: float = 0.95
    slope_range: tuple[float, float] = (0.8, 1.25)
    oe_range: tuple[float, float] = (0.8, 1.25)
    decision_thresholds: tuple[float, float] = (0.01, 0.5)
    decision_step: float = 0.01
    min_group_n: int = 30
    min_positives: int = 10

    def validate(self) -> None:
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 2:
            raise ConfigError(f"calibration.bins: expected an integer >= 2, got {self.bins}.")
        if self.bins > MAX_BINS:
            raise ConfigError(f"calibration.bins: expected at most {MAX_BINS} bins, got {self.bins}.")
        if self.binning not in ("quantile", "uniform"):
            raise ConfigError(f"calibration.binning: '{self.binning}' is not one of quantile, uniform.")
        if self.smoother not in ("isotonic", "loess"):
            raise ConfigError(f"calibration.smoother: '{self.smoother}' is not one of isotonic, loess.")
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or not MIN_BOOT <= self.n_boot <= MAX_BOOT:
            raise ConfigError(f"calibration.n_boot: expected an integer from {MIN_BOOT} to {MAX_BOOT:,}, "
                              f"got {self.n_boot}.")
        if not 0.5 < self.level < 1:
            raise ConfigError(f"calibration.level: expected a number in (0.5, 1), got {self.level}.")
        for name in ("slope_range", "oe_range"):
            rng = tuple(getattr(self, name))
            if len(rng) != 2 or not 0 < rng[0] < 1 < rng[1] or not all(math.isfinite(v) for v in rng):
                raise ConfigError(f"calibration.{name}: expected two numbers [low, high] with 0 < low < 1 < high, "
                                  f"got {list(rng)}.")
        t = tuple(self.decision_thresholds)
        if len(t) != 2 or not 0 < t[0] <= t[1] < 1:
            raise ConfigError(f"calibration.decision_thresholds: expected two numbers [low, high] with "
                              f"0 < low <= high < 1, got {list(t)}.")
        if not (math.isfinite(self.decision_step) and self.decision_step > 0):
            raise ConfigError(f"calibration.decision_step: expected a number > 0, got {self.decision_step}.")
        if (t[1] - t[0]) / self.decision_step > 1000:
            raise ConfigError(f"calibration.decision_step: {self.decision_step:g} gives more than 1,000 thresholds "
                              f"from {t[0]:g} to {t[1]:g}; use a larger step.")
        for name in ("min_group_n", "min_positives"):
            if getattr(self, name) < 1:
                raise ConfigError(f"calibration.{name}: expected an integer >= 1, got {getattr(self, name)}.")

    @property
    def n_boot_groups(self) -> int:
        return min(self.n_boot, max(GROUP_BOOT_MIN, self.n_boot // GROUP_BOOT_FRACTION))

    def threshold_grid(self) -> np.ndarray:
        lo, hi = self.decision_thresholds
        k = math.floor((hi - lo) / self.decision_step + 1e-9)
        return np.round(lo + self.decision_step * np.arange(k + 1), 10)


@dataclass
class _Unit:
    """One population of one label: the overall one (group None) or a group."""

    label: str | None
    k: int  # label index
    grouping: tuple[str, ...] | None
    group: dict[str, str] | None
    rows: np.ndarray
    patients: dict[str, int]
    flags: tuple[str, ...]
    seed_key: tuple[int, ...]  # (label, grouping, group): with the run's seed, this unit's streams
    seed: int

    @property
    def where(self):
        return None if self.group is None else tuple(sorted(self.group.items()))


class CalibrationPlugin(AuditPlugin):
    """Calibration of the predicted probabilities, overall, per group and per site.

    Per label and population (overall, each group of each sensitive attribute, each site):
    ``n``, ``patients``, ``positives`` and ``prevalence`` (as the fairness plugin), then
    ``calibration_slope`` and ``calibration_intercept`` (logistic GLM ``y ~ 1 + logit(p)``; 1
    and 0 when calibrated), ``calibration_in_the_large`` (``y ~ 1`` with offset ``logit(p)``;
    0), ``oe_ratio`` (observed ÷ expected events; 1), ``ece`` and ``brier``, with intervals
    (Wald on model or cluster-robust standard errors; a patient bootstrap for the ECE) and, for
    the Wald ones, simultaneous intervals over every value of the id (Bonferroni), which gates
    use. Overall, ``clipped_scores`` counts the scores clipped to [EPSILON, 1 - EPSILON] before
    the logit. Curves: ``reliability`` (observed rate against predicted probability, with a
    bootstrap band), ``net_benefit`` and ``net_benefit_treat_all`` (decision curves).

    Findings: per label, ``Calibration``: WARN when the overall slope's or O/E ratio's interval
    lies entirely outside ``slope_range`` / ``oe_range``, PASS when both lie inside, otherwise
    INCONCLUSIVE. Per grouping, the same rule over the published, adequately powered groups,
    WARN judged on the simultaneous interval (as gates are); the message names the worst group.
    """

    name = "calibration"
    principle = "General"
    version = __version__
    metrics = METRIC_IDS
    checklist = CHECKLIST
    Params = CalibrationParams

    # ------------------------------------------------------------------ run
    def run(self, ctx) -> PluginResult:
        p: CalibrationParams = self.params
        scores = ctx.predictions("data")
        if scores is None or scores.size == 0:
            return self.skipped("no predicted probabilities")
        frame = ctx.data.frame
        labels = list(ctx.labels)
        multi = len(labels) > 1
        y_all = frame[labels].to_numpy(np.int8)
        scores = np.asarray(scores, dtype=np.float64)
        keep_small = ctx.config.report.keep_small_numerators
        min_cell = ctx.min_cell
        seed = 0 if ctx.random_state is None else int(ctx.random_state)
        clusters, cluster_note = patient_clusters(frame, ctx.id_column)
        unit_word = "patients" if clusters is not None else "cases"
        site = ctx.config.data.site
        groupings = [(c,) for c in ctx.sensitive]
        if site and (site,) not in groupings:
            groupings.append((site,))
        order = {b.name: list(b.labels) for b in ctx.config.data.bins}
        coded = {cols: group_codes(frame, cols, order) for cols in groupings}
        rows_of = {cols: _split(coded[cols][0], len(coded[cols][1])) for cols in groupings}
        n_groups = sum(len(coded[c][1]) for c in groupings)
        family = (n_groups + 1) * len(labels)
        sim_level = 1 - (1 - p.level) / family
        rate_method = RATE_METHOD + (
            f" at the Korn-Graubard effective sample size ({cluster_note})" if clusters is not None else "")

        metrics: list[Metric] = []
        protected: list[Count] = []
        units: list[_Unit] = []
        warnings: list[str] = []
        all_rows = np.arange(len(frame))
        with track(ctx.progress, "calibration: groups", len(labels) * (1 + n_groups)) as advance:
            for k, lab in enumerate(labels):
                label = lab if multi else None
                y, s = y_all[:, k], scores[:, k]
                n_clipped = clip_scores(s)[1]
                metrics.append(Metric("clipped_scores", n_clipped, n=len(frame), label=label))
                if n_clipped:
                    warnings.append(
                        (f"{lab}: " if multi else "") + f"{n_clipped} score(s) lie outside [{EPSILON:g}, "
                        f"1 - {EPSILON:g}] (scores of exactly 0 or 1) and were clipped to that range before the "
                        "logit of the calibration slope, intercept and calibration in the large; the O/E ratio, "
                        "ECE, Brier score and curves use the scores as given.")
                for unit, recs, prot in self._count_records(
                        groupings, coded, rows_of, all_rows, y, clusters, label, k, min_cell, keep_small,
                        rate_method, seed, family):
                    metrics.extend(recs)
                    protected.extend(prot)
                    units.append(unit)
                    cal, cal_prot = self._calibration_records(unit, y, s, clusters, min_cell, sim_level)
                    metrics.extend(cal)
                    protected.extend(cal_prot)
                    advance(1)
        metrics = ctx.suppress(metrics, protected)
        metrics = _hide_with_counts(metrics)

        published = {(m.id, _where(m.group), m.label) for m in metrics if not m.suppressed}
        curves = self._curves(units, y_all, scores, clusters, published, min_cell, keep_small, ctx)
        names = DisplayNames.from_config(ctx.config.to_dict())
        findings = []
        for k, lab in enumerate(labels):
            label = lab if multi else None
            findings.append(self._overall_finding(metrics, label, p, names, unit_word, min_cell))
            for cols in groupings:
                findings.append(self._grouping_finding(metrics, label, cols, p, names, unit_word, min_cell))
        status = worst_status(f.status for f in findings)
        summary = _summary(findings, labels)
        settings = self._settings(labels, groupings, unit_word, cluster_note, min_cell, keep_small, family,
                                  sim_level)
        return PluginResult(
            plugin=self.name, principle=self.principle, version=self.version, status=status,
            summary=summary, metrics=tuple(metrics), findings=tuple(findings), settings=settings,
            warnings=tuple(warnings), checklist=self.checklist, curves=tuple(curves),
        )

    # ------------------------------------------------------------------ records
    def _count_records(self, groupings, coded, rows_of, all_rows, y, clusters, label, k, min_cell,
                       keep_small, rate_method, seed, family):
        """n, patients, positives and prevalence of every population of one label
        (:func:`audit.plugins.records.grouping_records`), with the units they describe."""
        p: CalibrationParams = self.params
        dummy = np.zeros(len(y), np.int8)  # no operating point: only counts and prevalence are kept
        plans = [(cols, coded[cols][0], coded[cols][1]) for cols in groupings]
        if not plans:  # overall only
            plans = [((), np.zeros(len(y), np.int64), [()])]
        for gi, (cols, codes, keys) in enumerate(plans):
            stats = analyse_grouping(cols, codes, keys, y, dummy, None, clusters, level=p.level,
                                     family={"prevalence": family}, rate_method=rate_method, score_method="")
            if not cols:
                stats = replace(stats, groups=[])
            recs, prot = grouping_records(
                stats, label=label, names={}, min_cell=min_cell, level=p.level, min_group_n=p.min_group_n,
                min_positives=p.min_positives, keep_small_numerators=keep_small, clustered=clusters is not None,
                include_overall=gi == 0, keep=("prevalence",), gap_keep=(),
            )
            # The FNR-specific minimum detectable gap means nothing without an operating point.
            recs = [m for m in recs if m.id != "min_detectable_gap"]
            by_group: dict = {}
            for m in recs:
                by_group.setdefault(None if m.group is None else tuple(sorted(m.group.items())), []).append(m)
            by_prot: dict = {}
            for c in prot:
                by_prot.setdefault(c.group, []).append(c)
            if gi == 0:
                unit = _Unit(label, k, None, None, all_rows, stats.overall.patients, (), (k, 0, 0), seed)
                yield unit, by_group.get(None, []), by_prot.get(None, [])
            for g, gs in enumerate(stats.groups):
                group = dict(zip(cols, gs.key, strict=True))
                under = not powered(gs, p.min_group_n, p.min_positives)
                unit = _Unit(label, k, cols, group, rows_of[cols][g], gs.patients,
                             ("under_powered",) if under else (), (k, gi + 1, g), seed)
                where = tuple(sorted(group.items()))
                yield unit, by_group.get(where, []), by_prot.get(where, [])

    def _calibration_records(self, unit: _Unit, y, s, clusters, min_cell, sim_level):
        """The six calibration records of one population, with their primary suppression."""
        p: CalibrationParams = self.params
        rows = unit.rows
        yy, ss = y[rows], s[rows]
        cl = None if clusters is None else clusters[rows]
        n = len(rows)
        nb = p.n_boot if unit.group is None else p.n_boot_groups
        slope, intercept = calibration_slope(yy, ss, clusters=cl, level=p.level)
        citl, oe = calibration_in_the_large(yy, ss, clusters=cl, level=p.level)
        ece = ece_interval(yy, ss, bins=p.bins, strategy=p.binning, clusters=cl, n_boot=nb, level=p.level,
                           random_state=_seed(unit.seed_key + (0,), unit))
        bs = brier(yy, ss, clusters=cl, level=p.level)
        pc = unit.patients
        small = pc["n"] < min_cell
        pos_small = small_cell(pc["positives"], min_cell)
        two_small = pos_small or small_cell(pc["negatives"], min_cell)
        protected = []
        if not small and two_small:
            protected.append(Count("positives", unit.where, unit.label))
        out = []
        for mid, est, hide in (("calibration_slope", slope, two_small), ("calibration_intercept", intercept, two_small),
                               ("calibration_in_the_large", citl, pos_small), ("oe_ratio", oe, pos_small),
                               ("ece", ece, two_small), ("brier", bs, two_small)):
            out.append(self._record(mid, est, n, unit, small or hide, sim_level))
        return out, protected

    def _record(self, mid, est, n, unit: _Unit, suppressed, sim_level) -> Metric:
        p: CalibrationParams = self.params
        value = est.value
        defined = value is not None and np.isfinite(value)
        ci = (est.low, est.high) if est.low is not None and est.high is not None else None
        method, reason = est.method, est.reason
        sim = None
        if ci is not None and defined and mid == "ece" and not ci[0] <= value <= ci[1]:
            # The ECE is biased upwards: near perfect calibration the bootstrap replicates sit
            # above the estimate and the percentile interval can exclude it.
            ci = (min(ci[0], value), max(ci[1], value))
            method += "; extended to the estimate, which the percentile interval excluded"
        if ci is not None and mid in SIMULTANEOUS_IDS and est.se is not None and defined:
            if mid == "oe_ratio":
                lo, hi = wald_interval(math.log(value), est.se, sim_level)
                sim = (float(np.exp(lo)), float(np.exp(hi)))
            else:
                lo, hi = wald_interval(value, est.se, sim_level)
                sim = (float(lo), float(hi))
        if mid == "brier" and ci is not None:  # a Brier score is never negative
            ci = (max(ci[0], 0.0), ci[1])
            sim = None if sim is None else (max(sim[0], 0.0), sim[1])
        if not defined:
            reason = reason or "undefined"
        return Metric(id=mid, value=value if defined else None, n=n, group=unit.group, ci=ci, ci_method=method,
                      level=p.level, reason=reason, label=unit.label, flags=unit.flags, suppressed=suppressed,
                      ci_simultaneous=sim)

    # ------------------------------------------------------------------ curves
    def _curves(self, units, y_all, scores, clusters, published, min_cell, keep_small, ctx):
        p: CalibrationParams = self.params
        site = ctx.config.data.site
        grid = p.threshold_grid()

        def eligible(unit: _Unit) -> bool:
            pc = unit.patients
            shown = all((mid, unit.where, unit.label) in published for mid in ("n", "positives"))
            return shown and min(pc["n"], pc["positives"], pc["negatives"]) >= min_cell

        reliable = [u for u in units if eligible(u)]
        sites: dict = {}
        for u in units:
            if site and u.grouping == (site,):
                sites.setdefault(u.k, []).append(u)
        nb_sites = {k: us for k, us in sites.items() if all(eligible(u) for u in us)}
        overall = {u.k: u for u in units if u.group is None and ("n", None, u.label) in published}
        total = len(reliable) + len(overall) + sum(len(v) for v in nb_sites.values())
        curves: list[Curve] = []
        with track(ctx.progress, "calibration: curves", total) as advance:
            for u in reliable:
                rows = u.rows
                nb = p.n_boot if u.group is None else p.n_boot_groups
                rc = reliability_curve(y_all[rows, u.k], scores[rows, u.k], method=p.smoother,
                                       clusters=None if clusters is None else clusters[rows], n_boot=nb,
                                       level=p.level, random_state=_seed(u.seed_key + (1,), u))
                curves.append(Curve(id="reliability", group=u.group, label=u.label, thresholds=tuple(rc.x),
                                    values=tuple(rc.y), low=tuple(rc.low), high=tuple(rc.high)))
                advance(1)
            for k, u in overall.items():
                curves.extend(self._net_benefit(u, y_all, scores, clusters, grid, p.n_boot, min_cell, keep_small,
                                                published, treat_all=True))
                advance(1)
                for su in nb_sites.get(k, []):
                    curves.extend(self._net_benefit(su, y_all, scores, clusters, grid, p.n_boot_groups, min_cell,
                                                    keep_small, published, treat_all=False))
                    advance(1)
        return curves

    def _net_benefit(self, u: _Unit, y_all, scores, clusters, grid, n_boot, min_cell, keep_small, published,
                     treat_all):
        p: CalibrationParams = self.params
        rows = u.rows
        y, s = y_all[rows, u.k], scores[rows, u.k]
        cl = None if clusters is None else clusters[rows]
        dc = decision_curve(y, s, grid, clusters=cl, n_boot=n_boot, level=p.level,
                            random_state=_seed(u.seed_key + (2,), u))
        tp = _patients_treated(y == 1, s, cl, grid)
        fp = _patients_treated(y == 0, s, cl, grid)
        withheld = np.array([(small_cell(int(a), min_cell) or small_cell(int(b), min_cell)) and not keep_small
                             for a, b in zip(tp, fp, strict=True)], bool)

        def masked(values):
            return tuple(None if w else float(v) for v, w in zip(values, withheld, strict=True))

        out = [Curve(id="net_benefit", group=u.group, label=u.label, thresholds=tuple(grid),
                     values=masked(dc["model"]), low=masked(dc["model_low"]), high=masked(dc["model_high"]))]
        if treat_all and ("positives", None, u.label) in published:
            out.append(Curve(id="net_benefit_treat_all", group=None, label=u.label, thresholds=tuple(grid),
                             values=tuple(float(v) for v in dc["treat_all"])))
        return out

    # ------------------------------------------------------------------ findings
    def _overall_finding(self, metrics, label, p: CalibrationParams, names, unit_word, min_cell) -> Finding:
        mine = _records(metrics, label, None)
        status, problems, doubts, _ = _judge(mine.get("calibration_slope"), mine.get("oe_ratio"), p,
                                             simultaneous=False)
        lv = f"{100 * p.level:g}% CI"
        if status == Status.WARN:
            lead = "The model is poorly calibrated overall: " + _join(problems) + "."
        elif status == Status.PASS:
            lead = (f"The model is well calibrated overall: the calibration slope and the ratio of observed to "
                    f"predicted events both lie within their acceptable ranges with {100 * p.level:g}% confidence.")
        else:
            lead = ("The data cannot show whether the model is well calibrated overall: " + _join(doubts) + ".")
        message = f"{lead} {_values_text(mine, p, lv)}"
        if status != Status.WARN and any(m.suppressed for m in mine.values()):
            message += f" Some overall values are suppressed (fewer than {min_cell} {unit_word} in a cell)."
        label_part = f"{label}: " if label else ""
        return Finding(
            id="calibration" + (f"_{label}" if label else ""), title=f"{label_part}Calibration",
            status=status, message=message, metric="calibration_slope", checklist=self.checklist,
        )

    def _grouping_finding(self, metrics, label, cols, p: CalibrationParams, names, unit_word, min_cell) -> Finding:
        groups: dict = {}
        for m in metrics:
            if m.label == label and m.group is not None and tuple(m.group) == cols and m.id in CAL_IDS + ("n",):
                groups.setdefault(tuple(sorted(m.group.items())), {})[m.id] = m
        judged, hidden, not_judged = [], 0, 0
        for recs in groups.values():
            if recs["n"].suppressed:
                hidden += 1
                continue
            slope, oe = recs.get("calibration_slope"), recs.get("oe_ratio")
            if any(m is None or m.suppressed or "under_powered" in m.flags for m in (slope, oe)):
                not_judged += 1
                continue
            judged.append((recs, *_judge(slope, oe, p, simultaneous=True)))
        statuses = [j[1] for j in judged]
        if not judged:
            status = Status.INCONCLUSIVE
        elif Status.WARN in statuses:
            status = Status.WARN
        elif all(s == Status.PASS for s in statuses):
            status = Status.PASS
        else:
            status = Status.INCONCLUSIVE
        grouping = names.grouping(cols)
        lv = f"{100 * p.level:g}% CI"
        if status == Status.WARN:
            warned = [j for j in judged if j[1] == Status.WARN]
            worst = max(warned, key=lambda j: j[4])
            who = names.group(worst[0]["n"].group)
            lead = (f"Poorly calibrated for {who}, even allowing for every comparison made: "
                    f"{_join(worst[2])}.")
            if len(warned) > 1:
                others = [names.group(j[0]["n"].group) for j in warned if j is not worst]
                lead += f" Also poorly calibrated: {', '.join(others)}."
            detail = _values_text(worst[0], p, lv, who=who)
        elif status == Status.PASS:
            worst = max(judged, key=lambda j: j[4])
            who = names.group(worst[0]["n"].group)
            lead = (f"Every {grouping} group that can be judged ({len(judged)}) is well calibrated with "
                    f"{100 * p.level:g}% confidence.")
            detail = f"The least well calibrated is {who}: " + _values_text(worst[0], p, lv, short=True)
        elif judged:
            worst = max((j for j in judged if j[1] != Status.PASS), key=lambda j: j[4])
            who = names.group(worst[0]["n"].group)
            lead = (f"The data cannot show that every {grouping} group is well calibrated: for {who}, "
                    f"{_join(worst[3])}.")
            detail = _values_text(worst[0], p, lv, who=who)
        else:
            lead = f"No {grouping} group can be judged."
            detail = ""
        message = " ".join(x for x in (lead, detail) if x)
        if hidden:
            message += (f" {hidden} group(s) are suppressed (fewer than {min_cell} {unit_word} in a cell, or they "
                        "would give such a cell back).")
        if not_judged:
            message += (f" {not_judged} group(s) cannot be judged (fewer than {p.min_group_n} {unit_word} or "
                        f"{p.min_positives} positive {unit_word}, or a value is suppressed); they decide nothing.")
        label_part = f"{label}: " if label else ""
        return Finding(
            id=f"calibration_by_{'_x_'.join(cols)}" + (f"_{label}" if label else ""),
            title=f"{label_part}Calibration by {grouping}", status=status, message=message,
            metric="calibration_slope", checklist=self.checklist,
        )

    # ------------------------------------------------------------------ settings
    def _settings(self, labels, groupings, unit_word, cluster_note, min_cell, keep_small, family, sim_level):
        p: CalibrationParams = self.params
        lv = f"{100 * p.level:g}%"
        se = "model-based SE, or cluster-robust by patient (statsmodels cov_type='cluster') with an identifier"
        return {
            "mode": "multi-label" if len(labels) > 1 else "binary",
            "labels": labels,
            "groupings": [list(c) for c in groupings],
            "bins": p.bins,
            "binning": p.binning,
            "smoother": p.smoother,
            "epsilon": EPSILON,
            "clipping": (f"scores are clipped to [{EPSILON:g}, 1 - {EPSILON:g}] before the logit (slope, intercept, "
                         "calibration in the large); clipped_scores counts them; the other values use the scores "
                         "as given"),
            "n_boot": p.n_boot,
            "n_boot_groups": p.n_boot_groups,
            "bootstrap": (f"resampling {unit_word} (all rows of a drawn patient together); n_boot replicates for the "
                          "whole population, n_boot_groups = min(n_boot, max(100, n_boot // 5)) for each group and "
                          "site; random numbers from the run's seed (provenance.seed), one stream per label, "
                          "population and quantity"),
            "level": p.level,
            "slope_range": list(p.slope_range),
            "oe_range": list(p.oe_range),
            "decision_thresholds": [float(t) for t in p.threshold_grid()],
            "decision_range": list(p.decision_thresholds),
            "decision_step": p.decision_step,
            "treat_none": "net benefit of treating no one is 0 at every threshold (not published as a curve)",
            "methods": {
                "calibration_slope": f"slope of the logistic GLM y ~ 1 + logit(p); {lv} Wald CI, {se}",
                "calibration_intercept": f"intercept of the same GLM; {lv} Wald CI, {se}",
                "calibration_in_the_large": f"intercept of the logistic GLM y ~ 1 with offset logit(p); {lv} Wald "
                                            f"CI, {se}",
                "oe_ratio": (f"observed / expected events, sum(y) / sum(p); {lv} CI exp(log O/E ± z SE), delta-method "
                             "SE (influence of a ratio of sums, summed within patients)"),
                "ece": (f"sum over {p.bins} {p.binning} bins of (bin share) × |observed rate - mean prediction|; {lv} "
                        "percentile bootstrap CI (bins re-derived in each replicate), extended to the estimate where "
                        "the percentile interval excludes it (the ECE is biased upwards near perfect calibration)"),
                "brier": f"mean (p - y)^2; {lv} Wald CI from influence functions (lower bound at least 0)",
                "reliability": (f"{p.smoother} regression of y on p evaluated at {RELIABILITY_GRID}; pointwise {lv} "
                                "percentile bootstrap band"),
                "net_benefit": ("TP/n - FP/n × t/(1 - t), treating score >= t (Vickers & Elkin 2006); pointwise "
                                f"{lv} percentile bootstrap band"),
                "net_benefit_treat_all": "prevalence - (1 - prevalence) × t/(1 - t)",
                "counts": RATE_METHOD + " for prevalence",
            },
            "simultaneous_intervals": (f"Bonferroni over every value of one metric id (all populations and labels, "
                                       f"m = {family}): each Wald interval also at level 1 - (1 - level) / m = "
                                       f"{sim_level:.6g}; gates FAIL and grouping findings WARN only on it; the ECE "
                                       "has none (a bootstrap cannot reach such tails)"),
            "finding_rule": (f"overall, per label: WARN when the {lv} CI of the calibration slope lies entirely "
                             "outside slope_range or that of the O/E ratio entirely outside oe_range; PASS when both "
                             "lie inside; INCONCLUSIVE otherwise. Per grouping: the same rule over the published, "
                             "adequately powered groups, WARN on the simultaneous interval; the message names the "
                             "worst group"),
            "counting_unit": unit_word,
            "patients": cluster_note,
            "min_cell": min_cell,
            "min_group_n": p.min_group_n,
            "min_positives": p.min_positives,
            "keep_small_numerators": keep_small,
            "suppression": SUPPRESSION_RULE,
            "curves": {"reliability": RELIABILITY_RULE, "net_benefit": NET_BENEFIT_RULE,
                       "x_axis": "reliability: predicted probability; net benefit: threshold probability"},
        }


# ---------------------------------------------------------------------- helpers
def _where(group: dict[str, str] | None):
    return None if group is None else tuple(sorted(group.items()))


def _split(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row indices of each group code, in row order."""
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=n_groups))[:-1]
    return np.split(order, bounds)


def _seed(key: tuple[int, ...], unit: _Unit) -> np.random.SeedSequence:
    """The random stream of one quantity of one unit: independent of the order of the work."""
    return np.random.SeedSequence(entropy=unit.seed, spawn_key=key)


def _hide_with_counts(metrics: list[Metric]) -> list[Metric]:
    """Hide every calibration record of a group whose n or positives record is hidden."""
    hidden_n = {tuple(sorted((m.group or {}).items())) for m in metrics if m.id == "n" and m.suppressed}
    hidden_pos = {(tuple(sorted((m.group or {}).items())), m.label) for m in metrics
                  if m.id == "positives" and m.suppressed}
    out = []
    for m in metrics:
        where = tuple(sorted((m.group or {}).items()))
        if m.id in CAL_IDS and not m.suppressed and (where in hidden_n or (where, m.label) in hidden_pos):
            m = replace(m, suppressed=True)
        out.append(m)
    return out


def _patients_treated(cases: np.ndarray, s: np.ndarray, clusters, grid: np.ndarray) -> np.ndarray:
    """Patients among ``cases`` with a row scored >= t, at each threshold t."""
    if clusters is None:
        top = np.sort(s[cases])
    else:
        pid, first = np.unique(clusters[cases], return_inverse=True)
        top = np.full(len(pid), -np.inf)
        np.maximum.at(top, first, s[cases])
        top.sort()
    return len(top) - np.searchsorted(top, grid, side="left")


def _records(metrics, label, group) -> dict[str, Metric]:
    return {m.id: m for m in metrics if m.label == label and m.group == group and m.reference is None}


def _judge(slope: Metric | None, oe: Metric | None, p: CalibrationParams, *, simultaneous: bool):
    """(status, problems, doubts, badness) of one population: WARN when an interval lies
    entirely outside its range (the simultaneous one when asked), PASS when both 95% intervals
    lie inside, INCONCLUSIVE otherwise. ``badness`` ranks populations (larger is worse)."""
    problems, doubts, inside, badness = [], [], 0, 0.0
    lv = f"{100 * p.level:g}% CI"
    for m, (lo, hi), what in ((slope, p.slope_range, "calibration slope"), (oe, p.oe_range, "observed/expected ratio")):
        if m is None or m.suppressed:
            doubts.append(f"the {what} is suppressed")
            continue
        if m.value is None:
            doubts.append(f"the {what} is undefined ({m.reason})")
            continue
        badness = max(badness, _deviation(m.value))
        if m.ci is None:
            doubts.append(f"the {what} ({_num(m.value)}) has no interval ({m.reason})")
            continue
        wide = (m.ci_simultaneous or m.ci) if simultaneous else m.ci
        if wide[1] < lo or wide[0] > hi:
            problems.append(_problem(m, what, wide[1] < lo, lv))
            badness = max(badness, 10 + _excess(wide, lo, hi))
        elif lo <= m.ci[0] and m.ci[1] <= hi:
            inside += 1
        elif m.ci[1] < lo or m.ci[0] > hi:  # outside at 95%, not once every comparison is allowed for
            doubts.append(f"the {what}'s {lv} ({_span(*m.ci)}) lies outside the acceptable {_span(lo, hi)}, but not "
                          "once every comparison made is allowed for")
        else:
            doubts.append(f"the {what}'s {lv} ({_span(*m.ci)}) reaches outside the acceptable {_span(lo, hi)}")
    status = Status.WARN if problems else Status.PASS if inside == 2 else Status.INCONCLUSIVE
    return status, problems, doubts, badness


def _deviation(v: float) -> float:
    return math.inf if v <= 0 else abs(math.log(v))


def _excess(ci, lo, hi) -> float:
    if ci[1] < lo:
        return math.inf if ci[1] <= 0 else math.log(lo / ci[1])
    return math.log(ci[0] / hi)


def _problem(m: Metric, what: str, below: bool, lv: str) -> str:
    ci = f"{lv} {_span(*m.ci)}"
    if what == "calibration slope":
        if below:
            return (f"the model's risks are too extreme (slope {_num(m.value)}, {ci}): high risks are overstated "
                    "and low risks understated")
        return (f"the model's risks are too modest (slope {_num(m.value)}, {ci}): high risks are understated and "
                "low risks overstated")
    if below:
        times = math.inf if m.value == 0 else 1 / m.value
        return (f"it predicts {times:.1f} times as many events as occur (observed/expected {_num(m.value)}, {ci}): "
                "its risks are too high on average")
    return (f"events occur {m.value:.1f} times as often as it predicts (observed/expected {_num(m.value)}, {ci}): "
            "its risks are too low on average")


def _values_text(recs: dict[str, Metric], p: CalibrationParams, lv: str, *, who: str | None = None,
                 short: bool = False) -> str:
    """The values behind a verdict, in words; suppressed and undefined ones are skipped."""
    def val(mid):
        m = recs.get(mid)
        return m if m is not None and not m.suppressed and m.value is not None else None

    parts = []
    slope, oe = val("calibration_slope"), val("oe_ratio")
    if slope:
        parts.append(f"calibration slope {_num(slope.value)}" + (f" ({lv} {_span(*slope.ci)})" if slope.ci else ""))
    if oe:
        parts.append(f"observed/expected events {_num(oe.value)}" + (f" ({lv} {_span(*oe.ci)})" if oe.ci else ""))
    if short:
        return (", ".join(parts) + ".") if parts else "no value can be shown."
    ece, bs = val("ece"), val("brier")
    if ece:
        parts.append(f"ECE {ece.value:.3f} ({p.bins} {p.binning} bins)")
    if bs:
        parts.append(f"Brier score {bs.value:.3f}")
    head = f"For {who}: " if who else "Overall: "
    text = head + (", ".join(parts) + "." if parts else "no value can be shown.")
    return (text + f" Acceptable: slope {_span(*p.slope_range)}, observed/expected {_span(*p.oe_range)} "
            "(both 1 when perfectly calibrated).")


def _join(parts: list[str]) -> str:
    return "; and ".join(parts) if parts else "no value can be judged"


def _num(x: float) -> str:
    return f"{x:.2f}"


def _span(lo: float, hi: float) -> str:
    """An interval in words: 0.51–0.74, or -0.09 to 1.34 (a dash beside a minus sign misreads)."""
    return f"{_num(lo)} to {_num(hi)}" if min(lo, hi) < 0 else f"{_num(lo)}–{_num(hi)}"


def _summary(findings: list[Finding], labels: list[str]) -> str:
    counts = {s: sum(f.status == s for f in findings) for s in Status}
    parts = [f"{counts[s]} {s.value.lower()}" for s in (Status.WARN, Status.INCONCLUSIVE, Status.PASS) if counts[s]]
    return (f"Calibration of {len(labels)} label(s) judged overall and per grouping in {len(findings)} finding(s): "
            f"{', '.join(parts)}.")
