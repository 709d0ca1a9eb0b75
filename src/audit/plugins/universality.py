"""Universality plugin: does the model transfer across sites (FUTURE-AI Universality)?

Per site, the metrics of the fairness plugin (counts, rates at the shared operating point,
AUROC, Brier) with the same intervals and the same small-cell and under-powered rules
(:mod:`audit.plugins.disaggregation`, :mod:`audit.plugins.records`), plus the calibration
slope and the O/E ratio (:mod:`audit.stats.calibration`); each site against the development
site (its gap, interval and test, corrected for multiplicity); the heterogeneity between
sites by random-effects meta-analysis with a prediction interval for a new site
(:mod:`audit.stats.meta`, statsmodels underneath); what the shared threshold costs each site
against its own threshold chosen by the same rule; how well the site can be told from the
model's inputs; and the fairness plugin's key gap within each site.

References
----------
Riley RD, Higgins JPT, Deeks JJ. Interpretation of random effects meta-analyses. BMJ
2011;342:d549. Debray TPA et al. A guide to systematic review and meta-analysis of prediction
model performance. BMJ 2017;356:i6460.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from audit import __version__
from audit.core.progress import track
from audit.core.results import ACROSS_SITES, REFERENCE_DATA, Finding, Metric, PluginResult, Status, worst_status
from audit.errors import ConfigError
from audit.plugins.base import AuditPlugin
from audit.plugins.disaggregation import (
    GAP_METRICS,
    RATE_METRICS,
    SCORE_METRICS,
    analyse_grouping,
)
from audit.plugins.records import (
    adjust_gaps,
    group_codes,
    grouping_records,
    patient_clusters,
    shared_operating_point,
    small_cell,
)
from audit.privacy import Count
from audit.report.names import DisplayNames
from audit.stats import (
    auroc_influence,
    choose_threshold,
    influence_se,
    meta,
    parse_operating_point,
)
from audit.stats import calibration as cal
from audit.stats.bootstrap import percentile_interval
from audit.stats.proportions import cluster_proportions

CHECKLIST = (
    "FUTURE-AI:Universality 3", "FUTURE-AI:Universality 4", "TRIPOD+AI:6a", "TRIPOD+AI:12d",
    "TRIPOD+AI:23b", "CLAIM-2024:33", "CLAIM-2024:37",
)
# The pseudo-site of the reference data, when it is the development data.
REFERENCE_SITE = "(reference data)"
# Fewest sites a random-effects meta-analysis is run on: with two, tau² rests on one
# difference and no prediction interval exists (Riley et al. 2011 ask for more).
MIN_POOLED_SITES = 3
POOLED = ("auroc", "sensitivity", "specificity", "calibration_slope", "oe_ratio")
POOLED_IDS = tuple(f"{m}_{s}" for m in POOLED for s in ("pooled", "pi_low", "pi_high", "tau2", "i2", "q"))
TRANSFER_IDS = ("threshold_own", "sensitivity_own", "specificity_own",
                "sensitivity_transfer_loss", "specificity_transfer_loss")
SITE_IDS = ("n", "patients", "positives", "threshold", "calibration_slope", "oe_ratio") + RATE_METRICS + SCORE_METRICS
GAP_IDS = tuple(f"{m}_gap" for m in GAP_METRICS)
FAIRNESS_IDS = ("fnr_gap_overall",)
IDENTIFIABILITY_IDS = ("site_identifiability_auroc",)
DEVELOPMENT_METHOD = ("the gap to the development site, max(0, sign × (site − development)), positive = worse; "
                      "MOVER interval of two independent proportions (rates) or Wald on influence functions "
                      "(AUROC, Brier)")


@dataclass(frozen=True)
class UniversalityParams:
    """Parameters of the universality plugin (section ``[universality]`` of audit.toml).

    development_site : the site the model was developed at; else the reference data when
        given (as a pseudo-site), else the largest site.
    threshold, operating_point : the shared operating point, as in ``[fairness]`` (whose
        values are used when these are not set); each site's own threshold is chosen by
        ``operating_point`` on the site's own data.
    level, correction : interval level; ``holm`` or ``bh`` across sites.
    min_site_n, min_site_positives : sites below either are flagged under-powered; they are
        reported but decide no finding.
    meta_method : ``pm`` (Paule-Mandel) or ``dl`` (DerSimonian-Laird); ``hartung_knapp``:
        the Hartung-Knapp interval for the pooled mean (recommended with few sites).
    transfer_bootstrap : patient-level bootstrap replicates for the transfer intervals.
    auroc_tolerance, rate_tolerance : the losses the findings judge against.
    min_auroc : the AUROC a new site should reach (the prediction interval's lower end).
    identifiability_warn : the cross-validated AUROC of a site classifier above which
        site-specific shortcuts are likely.
    """

    development_site: str | None = None
    threshold: float | None = None
    operating_point: str | None = None
    level: float = 0.95
    correction: str = "holm"
    min_site_n: int = 30
    min_site_positives: int = 10
    meta_method: str = "pm"
    hartung_knapp: bool = True
    transfer_bootstrap: int = 200
    auroc_tolerance: float = 0.05
    rate_tolerance: float = 0.05
    min_auroc: float = 0.7
    identifiability: bool = True
    identifiability_warn: float = 0.8
    # The interval bounds the mean of the folds' errors, so it widens with sqrt(folds): two folds
    # keep it tight (as the domain classifier of the traceability plugin).
    folds: int = 2

    def validate(self) -> None:
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ConfigError(f"universality.threshold: {self.threshold:g} is outside [0, 1].")
        if self.operating_point is not None:
            try:
                parse_operating_point(self.operating_point)
            except ValueError as exc:
                raise ConfigError(f"universality.operating_point: {exc}") from None
        if not 0.5 < self.level < 1:
            raise ConfigError(f"universality.level: expected a number in (0.5, 1), got {self.level}.")
        if self.correction not in ("holm", "bh"):
            raise ConfigError(f"universality.correction: '{self.correction}' is not one of holm, bh.")
        if self.meta_method not in ("pm", "dl"):
            raise ConfigError(f"universality.meta_method: '{self.meta_method}' is not one of pm, dl.")
        for name in ("min_site_n", "min_site_positives", "transfer_bootstrap"):
            if getattr(self, name) < 1:
                raise ConfigError(f"universality.{name}: expected an integer >= 1, got {getattr(self, name)}.")
        if not 2 <= self.folds <= 20:
            raise ConfigError(f"universality.folds: expected 2 to 20, got {self.folds}.")
        for name in ("auroc_tolerance", "rate_tolerance", "min_auroc", "identifiability_warn"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"universality.{name}: expected a number in [0, 1], got {getattr(self, name)}.")


class UniversalityPlugin(AuditPlugin):
    """Cross-site transferability: per-site performance, gaps to the development site,
    heterogeneity with a prediction interval for a new site, operating-point transfer, site
    identifiability and the fairness gap within each site.

    Needs a site column (``--site`` / ``data.site``); SKIPPED when there is none or it holds
    one site. Only the audited data's rows are sites; the reference data, when it is the
    development data, is compared as the pseudo-site ``(reference data)`` and pooled with
    nothing. Pooling uses the sites whose value is published and defined (a suppressed site
    is left out, so that no pooled figure gives its value back); the records say how many.
    """

    name = "universality"
    principle = "Universality"
    version = __version__
    metrics = tuple(dict.fromkeys(SITE_IDS + GAP_IDS + POOLED_IDS + TRANSFER_IDS + FAIRNESS_IDS
                                  + IDENTIFIABILITY_IDS + ("min_detectable_gap",)))
    checklist = CHECKLIST
    Params = UniversalityParams

    def run(self, ctx) -> PluginResult:
        p: UniversalityParams = self.params
        site_col = ctx.config.data.site
        if not site_col:
            return self.skipped("no site column configured (data.site / --site)")
        frame = ctx.data.frame
        sites = frame[site_col].astype(str)
        if sites.nunique() < 2:
            return self.skipped(f"the site column '{site_col}' holds one site only ({sites.iloc[0]!r})"
                                if len(sites) else f"the site column '{site_col}' is empty")
        if len(ctx.labels) > 1:
            return self.skipped("several label columns: the universality plugin audits one label")
        label = ctx.labels[0]
        names = DisplayNames.from_config(ctx.config.to_dict())
        warnings: list[str] = []
        rule, threshold, threshold_method = shared_operating_point(ctx, p.threshold, p.operating_point, warnings)
        scores = ctx.predictions("data")[:, 0]
        y = frame[label].to_numpy(np.int8)
        clusters, cluster_note = patient_clusters(frame, ctx.id_column)

        dev, dev_note = self._development(ctx, sites)
        site_values = sites.to_numpy()
        if dev == REFERENCE_SITE:
            ref = ctx.reference.frame
            y = np.concatenate([y, ref[label].to_numpy(np.int8)])
            scores = np.concatenate([scores, ctx.predictions("reference")[:, 0]])
            site_values = np.concatenate([site_values, np.full(len(ref), REFERENCE_SITE, dtype=object)])
            if ctx.id_column:
                import pandas as pd

                ids = pd.concat([frame[ctx.id_column].astype(str), ref[ctx.id_column].astype(str)])
                clusters, cluster_note = patient_clusters(ids.to_frame(), ctx.id_column)
        import pandas as pd

        codes, keys = group_codes(pd.DataFrame({site_col: site_values}), (site_col,))
        site_names = [k[0] for k in keys]
        dev_index = site_names.index(dev)
        pred = (scores >= threshold).astype(np.int8)
        unit = "patients" if clusters is not None else "cases"
        rate_method = "Clopper-Pearson exact interval" + (
            f" at the Korn-Graubard effective sample size ({cluster_note})" if clusters is not None else "")
        score_method = "logit-Wald (AUROC, DeLong) / Wald (Brier) interval, influence functions" + (
            ", cluster-robust by patient" if clusters is not None else "")
        n_sites = len(site_names)
        family = {m: n_sites + 1 for m in RATE_METRICS + SCORE_METRICS}
        family.update({f"{m}_gap": n_sites - 1 for m in GAP_METRICS})
        eligible_mask = np.zeros(n_sites, bool)
        eligible_mask[dev_index] = True
        stats = analyse_grouping(
            (site_col,), codes, keys, y, pred, scores, clusters, level=p.level, family=family,
            eligible_for_best=eligible_mask, rate_method=rate_method, score_method=score_method,
        )
        keep_small = ctx.config.report.keep_small_numerators
        metrics, protected = grouping_records(
            stats, label=None, names={}, min_cell=ctx.min_cell, level=p.level, min_group_n=p.min_site_n,
            min_positives=p.min_site_positives, keep_small_numerators=keep_small,
            # With the reference data as the development pseudo-site, "all sites" would mix two
            # populations; the audited data's overall figures are the fairness plugin's.
            clustered=clusters is not None, include_overall=dev != REFERENCE_SITE, keep=RATE_METRICS + SCORE_METRICS,
            gap_keep=GAP_METRICS, gap_references=("best",),
        )
        metrics.insert(0, Metric("threshold", threshold, n=len(frame)))
        metrics = [self._as_development_gap(m, stats, dev, site_col) for m in metrics]
        metrics = [m for m in metrics if not (m.reference and m.group == {site_col: dev})]
        # Calibration per site (for the meta-analysis of slope and O/E).
        with track(ctx.progress, "universality: sites", n_sites) as advance:
            cal_records, cal_protected, slope_inputs, oe_inputs = self._calibration(
                codes, site_names, site_col, y, scores, clusters, stats, ctx.min_cell, p, advance)
        metrics += cal_records
        protected += cal_protected
        # The reference data's records describe another population than the audited rows.
        metrics = [replace(m, flags=m.flags + (REFERENCE_DATA,)) if m.group and m.group.get(site_col) == REFERENCE_SITE
                   else m for m in metrics]
        metrics = ctx.suppress(metrics, protected)
        metrics = adjust_gaps(metrics, p.correction)
        hidden = {m.group[site_col] for m in metrics
                  if m.group and m.id in ("n", "positives") and m.suppressed}
        metrics = [replace(m, suppressed=True) if m.group and m.group.get(site_col) in hidden
                   and m.id in ("calibration_slope", "oe_ratio") else m for m in metrics]

        pooled_sites = [s for s in site_names if s != REFERENCE_SITE]
        pooled, meta_results = self._pooled(metrics, stats, codes, site_names, pooled_sites, site_col, y, pred,
                                            scores, clusters, slope_inputs, oe_inputs, p, ctx.random_state)
        metrics += pooled
        transfer = self._transfer(codes, site_names, site_col, y, scores, threshold, rule, clusters, stats,
                                  metrics, p, ctx)
        metrics += transfer
        metrics += self._fairness_by_site(ctx, frame, site_col, y[: len(frame)], pred[: len(frame)],
                                          clusters[: len(frame)] if clusters is not None else None, p, keep_small,
                                          rate_method, score_method)
        ident = self._identifiability(ctx, frame, site_col, clusters, p, warnings)
        metrics += ident

        findings = [
            self._discrimination_finding(metrics, site_col, dev, names, p),
            self._heterogeneity_finding(meta_results, metrics, site_col, names, p),
            self._transfer_finding(metrics, site_col, names, p),
        ]
        if ident or site_col in ctx.config.data.features:
            findings.append(self._identifiability_finding(ident, site_col, ctx, p, names))
        status = worst_status(f.status for f in findings)
        k = len(pooled_sites)
        summary = (f"{k} sites compared with the development site ({dev_note}) at one shared operating point "
                   f"({threshold_method}); heterogeneity by random-effects meta-analysis "
                   f"({'Paule-Mandel' if p.meta_method == 'pm' else 'DerSimonian-Laird'}"
                   f"{', Hartung-Knapp interval' if p.hartung_knapp else ''}).")
        settings = {
            "site_column": site_col,
            "label": label,
            "development_site": dev,
            "development_site_rule": dev_note,
            "threshold": float(threshold),
            "threshold_method": threshold_method,
            "own_threshold_rule": rule,
            "prediction_rule": "score >= threshold",
            "interval_level": p.level,
            "interval_method_rates": rate_method,
            "interval_method_auroc_brier": score_method,
            "gap_definition": DEVELOPMENT_METHOD,
            "multiplicity_correction": {"holm": "Holm step-down (FWER)", "bh": "Benjamini-Hochberg (FDR)"}[p.correction],
            "multiplicity_family": "every value of one gap id (all sites)",
            "meta_analysis": {m: r.method for m, r in meta_results.items()},
            "meta_inputs": ("adequately powered sites of the audited data (at least min_site_positives positives, and as many "
                            "negatives for all but sensitivity) whose value is published and defined, at least "
                            f"{MIN_POOLED_SITES} of them; the development "
                            "pseudo-site (reference data) is not pooled; AUROC and rates on the logit scale, "
                            "O/E on the log scale, calibration slope as it is"),
            "transfer_method": (f"each site's own threshold by '{rule}' on its own rows (in-sample, so it is the "
                                "best that site could do with this rule); loss = own − shared, positive = the "
                                f"shared threshold costs that site; percentile interval of a {p.transfer_bootstrap}-"
                                "replicate bootstrap over the site's patients, re-choosing the own threshold each time"),
            "identifiability_method": ("multinomial logistic regression on the model's input features (site "
                                       f"column excluded), {p.folds}-fold cross-validated by patient; weighted "
                                       "one-vs-rest AUROC of each fold's model on its held-out fold, averaged; "
                                       "logit interval from the mean of the folds' DeLong errors by patient, "
                                       "which bounds the error of the mean whatever the folds' correlation"),
            "counting_unit": unit,
            "min_site_n": p.min_site_n,
            "min_site_positives": p.min_site_positives,
            "min_cell": ctx.min_cell,
            "auroc_tolerance": p.auroc_tolerance,
            "rate_tolerance": p.rate_tolerance,
            "min_auroc": p.min_auroc,
            "identifiability_warn": p.identifiability_warn,
            "tolerance": p.auroc_tolerance,
            "key_metric": "auroc",
            "groupings": [[site_col]],
        }
        return PluginResult(
            plugin=self.name, principle=self.principle, version=self.version, status=status, summary=summary,
            metrics=tuple(metrics), findings=tuple(findings), settings=settings, warnings=tuple(warnings),
            checklist=self.checklist,
        )

    # ------------------------------------------------------------------ inputs
    def _development(self, ctx, sites) -> tuple[str, str]:
        p: UniversalityParams = self.params
        counts = sites.value_counts()
        if p.development_site is not None:
            if p.development_site not in counts.index:
                shown = [s for s in sorted(counts.index) if counts[s] >= ctx.min_cell]
                hidden = len(counts) - len(shown)
                raise ConfigError(
                    f"universality.development_site: '{p.development_site}' is not a site in "
                    f"{ctx.data.path.name} (column {ctx.config.data.site}). Sites: {', '.join(shown)}"
                    + (f" and {hidden} site(s) of fewer than {ctx.min_cell} rows (not named)" if hidden else "")
                    + ".")
            return p.development_site, "configured (universality.development_site)"
        if ctx.reference is not None:
            return REFERENCE_SITE, "the reference data, the model's validation data"
        largest = str(counts.index[0])
        return largest, "the largest site (no development site or reference data given)"

    @staticmethod
    def _as_development_gap(m: Metric, stats, dev: str, site_col: str) -> Metric:
        """A gap to the "best" of one eligible group is the gap to the development site."""
        if m.reference != "best":
            return m
        base = m.id.removesuffix("_gap")
        best = stats.best.get(base)
        if best is None or best[0] != dev:
            # The development site's value is undefined: no gap can be measured against it.
            return replace(m, value=None, ci=None, ci_simultaneous=None, p_value=None, reference="development",
                           reference_group={site_col: dev},
                           reason=f"undefined at the development site ({dev})")
        return replace(m, reference="development", reference_group={site_col: dev})

    # ------------------------------------------------------------------ calibration
    def _calibration(self, codes, site_names, site_col, y, scores, clusters, stats, min_cell, p, advance):
        records, protected, slopes, oes = [], [], {}, {}
        clipped, _ = cal.clip_scores(scores)
        for g, site in enumerate(site_names):
            rows = codes == g
            unit = stats.groups[g]
            pc = unit.patients
            small = pc["n"] < min_cell
            hide = small or small_cell(pc["positives"], min_cell) or small_cell(pc["negatives"], min_cell)
            cl = clusters[rows] if clusters is not None else None
            slope, _ = cal.calibration_slope(y[rows], clipped[rows], clusters=cl, level=p.level)
            _, oe = cal.calibration_in_the_large(y[rows], scores[rows], clusters=cl, level=p.level)
            group = {site_col: site}
            flags = ("under_powered",) if (pc["n"] < p.min_site_n or pc["positives"] < p.min_site_positives) else ()
            for mid, est in (("calibration_slope", slope), ("oe_ratio", oe)):
                value = est.value if np.isfinite(est.value) else None
                ci = (est.low, est.high) if est.low is not None and est.high is not None else None
                records.append(Metric(mid, value, n=unit.counts["n"], group=group, ci=ci, ci_method=est.method,
                                      level=p.level, reason=est.reason if value is None or ci is None else None,
                                      flags=flags, suppressed=hide))
            if hide and not small:
                protected.append(Count("positives", ((site_col, site),), None))
            if np.isfinite(slope.value) and slope.se:
                slopes[site] = (slope.value, slope.se ** 2)
            if np.isfinite(oe.value) and oe.value > 0 and oe.se:
                oes[site] = (oe.value, oe.se)
            advance(1)
        return records, protected, slopes, oes

    # ------------------------------------------------------------------ heterogeneity
    def _pooled(self, metrics, stats, codes, site_names, pooled_sites, site_col, y, pred, scores, clusters,
                slope_inputs, oe_inputs, p, seed):
        # Adequately powered sites only: a within-site variance from a handful of cases is too
        # unreliable to weight by, and such sites decide nothing elsewhere either.
        shown = {(m.id, m.group[site_col]) for m in metrics
                 if m.group and site_col in m.group and len(m.group) == 1 and not m.suppressed
                 and m.value is not None and m.reference is None and "under_powered" not in m.flags}
        inputs: dict[str, tuple[list, list, list, str]] = {m: ([], [], [], "logit") for m in POOLED}
        for g, site in enumerate(site_names):
            if site not in pooled_sites:
                continue
            rows = np.flatnonzero(codes == g)
            # Powered means enough positives (the under_powered flag); a specificity, AUROC or
            # calibration figure needs as many negatives too (a site of 95% cases pooled a
            # specificity from a handful of controls).
            if stats.groups[g].patients["negatives"] < p.min_site_positives:
                if ("sensitivity", site) in shown:
                    k, n = _effective(y[rows], pred[rows], 1, clusters[rows] if clusters is not None else None)
                    if n > 0:
                        _add(inputs["sensitivity"], site, *meta.logit_proportion(k, n))
                continue
            if ("auroc", site) in shown:
                auc, psi = auroc_influence(y[rows], scores[rows])
                se = influence_se(psi, clusters[rows] if clusters is not None else None)
                if 0 < auc < 1 and se > 0:
                    est, var = meta.logit_auroc(auc, se)
                    _add(inputs["auroc"], site, est, var)
            for mid, positive in (("sensitivity", 1), ("specificity", 0)):
                if (mid, site) not in shown:
                    continue
                k, n = _effective(y[rows], pred[rows], positive, clusters[rows] if clusters is not None else None)
                if n > 0:
                    est, var = meta.logit_proportion(k, n)
                    _add(inputs[mid], site, est, var)
            if ("calibration_slope", site) in shown and site in slope_inputs:
                value, var = slope_inputs[site]
                _add(inputs["calibration_slope"], site, value, var)
            if ("oe_ratio", site) in shown and site in oe_inputs:
                ratio, se_log = oe_inputs[site]
                est, var = meta.log_ratio(ratio, se_log)
                _add(inputs["oe_ratio"], site, est, var)
        scales = {"auroc": "logit", "sensitivity": "logit", "specificity": "logit",
                  "calibration_slope": "identity", "oe_ratio": "log"}
        records, results = [], {}
        for m in POOLED:
            sites_used, ests, vars_, _ = inputs[m]
            k = len(sites_used)
            base = dict(n=k, level=p.level, flags=(ACROSS_SITES,))  # n: the number of sites pooled
            if k < MIN_POOLED_SITES:
                reason = (f"{k} adequately powered site(s) with a published, defined value: pooling needs at least "
                          f"{MIN_POOLED_SITES} (with two, the between-site variance rests on one difference)")
                records += [Metric(f"{m}_{s}", None, reason=reason, **base)
                            for s in ("pooled", "pi_low", "pi_high", "tau2", "i2", "q")]
                continue
            r = meta.random_effects(ests, vars_, method=p.meta_method, hartung_knapp=p.hartung_knapp,
                                    level=p.level, scale=scales[m], random_state=seed or 0)
            nat = r.natural()
            results[m] = nat
            method = nat.method + f"; {k} sites"
            pi_reason = None if nat.pi_low is not None else "a prediction interval needs at least 3 sites"
            records += [
                Metric(f"{m}_pooled", float(nat.pooled), ci=(float(nat.ci_low), float(nat.ci_high)), ci_method=method,
                       **base),
                Metric(f"{m}_pi_low", None if nat.pi_low is None else float(nat.pi_low), ci_method=method,
                       reason=pi_reason, **base),
                Metric(f"{m}_pi_high", None if nat.pi_high is None else float(nat.pi_high), ci_method=method,
                       reason=pi_reason, **base),
                Metric(f"{m}_tau2", float(nat.tau2), ci_method=method + f" (tau² on the {scales[m]} scale)", **base),
                Metric(f"{m}_i2", float(nat.i2), ci_method=method, **base),
                Metric(f"{m}_q", float(nat.q), p_value=float(nat.q_p), ci_method=method + f" (Cochran's Q, {nat.q_df} df)",
                       **base),
            ]
        return records, results

    # ------------------------------------------------------------------ transfer
    def _transfer(self, codes, site_names, site_col, y, scores, threshold, rule, clusters, stats, metrics, p, ctx):
        """Each site's own threshold by the same rule, and what the shared one costs it."""
        shown = {(m.id, m.group[site_col]) for m in metrics if m.group and len(m.group) == 1 and site_col in m.group
                 and not m.suppressed and m.value is not None and m.reference is None}
        rng = np.random.default_rng(ctx.random_state)
        out = []
        for g, site in enumerate(site_names):
            if site == REFERENCE_SITE:
                continue
            rows = np.flatnonzero(codes == g)
            ys, ss = y[rows], scores[rows]
            group = {site_col: site}
            n = len(rows)
            unit = stats.groups[g]
            flags = ("under_powered",) if (unit.patients["n"] < p.min_site_n
                                           or unit.patients["positives"] < p.min_site_positives) else ()
            if ys.min() == ys.max():
                reason = "only one class at this site: no threshold can be chosen"
                out += [Metric(mid, None, n=n, group=group, reason=reason, flags=flags) for mid in TRANSFER_IDS]
                continue
            own = float(choose_threshold(ys, ss, rule))
            sens_own, spec_own = _sens_spec(ys, ss, own)
            sens_sh, spec_sh = _sens_spec(ys, ss, threshold)
            cl = clusters[rows] if clusters is not None else None
            boot = _transfer_bootstrap(ys, ss, cl, rule, threshold, p.transfer_bootstrap, rng)
            method = (f"own threshold by '{rule}' on this site; percentile interval, {p.transfer_bootstrap} "
                      "patient-bootstrap replicates re-choosing it")
            # As the miss-rate curves: a count at the site's own threshold (caught or missed,
            # cleared or flagged) of 1 to min_cell - 1 patients is not published.
            small_sens, small_spec = _small_counts(ys, ss, own, cl, ctx.min_cell)
            keep = ctx.config.report.keep_small_numerators
            hide_sens = ("sensitivity", site) not in shown or (small_sens and not keep)
            hide_spec = ("specificity", site) not in shown or (small_spec and not keep)
            for mid, value, samples, hide in (
                ("sensitivity_transfer_loss", sens_own - sens_sh, boot[:, 0], hide_sens),
                ("specificity_transfer_loss", spec_own - spec_sh, boot[:, 1], hide_spec),
            ):
                lo, hi = percentile_interval(samples[np.isfinite(samples)], p.level) \
                    if np.isfinite(samples).sum() >= 10 else (np.nan, np.nan)
                ci = (float(lo), float(hi)) if np.isfinite(lo) and np.isfinite(hi) else None
                out.append(Metric(mid, float(value), n=n, group=group, ci=ci, ci_method=method, level=p.level,
                                  flags=flags, suppressed=hide,
                                  reason=None if ci else "too few bootstrap replicates with both classes"))
            out += [Metric("threshold_own", own, n=n, group=group, flags=flags, suppressed=hide_sens or hide_spec),
                    Metric("sensitivity_own", float(sens_own), n=n, group=group, flags=flags, suppressed=hide_sens),
                    Metric("specificity_own", float(spec_own), n=n, group=group, flags=flags, suppressed=hide_spec)]
        return out

    # ------------------------------------------------------------------ fairness within sites
    def _fairness_by_site(self, ctx, frame, site_col, y, pred, clusters, p, keep_small, rate_method, score_method):
        """The fairness plugin's key gap (FNR to the site's own population) for each sensitive
        attribute within each adequately powered site."""
        if not ctx.sensitive:
            return []
        out, protected = [], []
        order = {b.name: list(b.labels) for b in ctx.config.data.bins}
        sites = frame[site_col].astype(str).to_numpy()
        for site in sorted(set(sites)):
            rows = np.flatnonzero(sites == site)
            cl = clusters[rows] if clusters is not None else None
            n_pat = len(np.unique(cl)) if cl is not None else len(rows)
            n_pos = len(np.unique(cl[y[rows] == 1])) if cl is not None else int(y[rows].sum())
            if n_pat < p.min_site_n or n_pos < p.min_site_positives:
                continue
            sub = frame.iloc[rows]
            for col in ctx.sensitive:
                codes, keys = group_codes(sub, (col,), order)
                if len(keys) < 2:
                    continue
                cl_codes = np.unique(cl, return_inverse=True)[1] if cl is not None else None
                stats = analyse_grouping((col,), codes, keys, y[rows], pred[rows], None, cl_codes, level=p.level,
                                         family={"fnr_gap_overall": len(keys)}, rate_method=rate_method,
                                         score_method=score_method)
                recs, prot = grouping_records(
                    stats, label=None, names={}, min_cell=ctx.min_cell, level=p.level, min_group_n=p.min_site_n,
                    min_positives=p.min_site_positives, keep_small_numerators=keep_small, clustered=False,
                    include_overall=False, keep=("fnr",), gap_keep=("fnr",), gap_references=("overall",))
                # "Overall" here is the site's own population: the reference group says so. The
                # cells' FNRs go through suppression with their gaps (a gap is hidden with its
                # rate) and are then left out: the site table shows the gaps only.
                where = {site_col: site}
                out += [replace(m, group={**where, **m.group}, reference_group=where if m.reference else None)
                        for m in recs if m.id in ("n", "positives", "fnr", "fnr_gap_overall")]
                protected += [Count(c.name, tuple(sorted({**where, **dict(c.group or ())}.items())), c.label)
                              for c in prot]
        if not out:
            return out
        return [m for m in ctx.suppress(out, protected) if m.id == "fnr_gap_overall"]

    # ------------------------------------------------------------------ identifiability
    def _identifiability(self, ctx, frame, site_col, clusters, p, warnings):
        features = [f for f in ctx.config.data.features if f != site_col]
        if site_col in ctx.config.data.features:
            warnings.append(f"The site column '{site_col}' is itself a model input: the model can give different "
                            "scores at different sites for that reason alone.")
        if not p.identifiability or not features:
            return []
        missing = [f for f in features if f not in frame.columns]
        if missing:
            # Predictions-only audits read the label, score, group and site columns, not the inputs.
            return [Metric("site_identifiability_auroc", None, n=len(frame),
                           reason="the model's input features are read only when a model is audited "
                                  "([model]); this is a predictions-only audit")]
        sites = frame[site_col].astype(str)
        clusters_all = clusters[: len(frame)] if clusters is not None else np.arange(len(frame))
        counts = {s: len(np.unique(clusters_all[(sites == s).to_numpy()])) for s in sites.unique()}
        keep_sites = [s for s, c in counts.items() if c >= max(p.min_site_n, 2 * p.folds)]
        if len(keep_sites) < 2:
            return [Metric("site_identifiability_auroc", None, n=len(frame),
                           reason=f"fewer than 2 sites with at least {max(p.min_site_n, 2 * p.folds)} patients")]
        mask = sites.isin(keep_sites).to_numpy()
        value, ci, n = _site_auroc(frame.loc[mask, features], sites[mask].to_numpy(), clusters_all[mask], p,
                                   ctx.random_state)
        method = (f"cross-validated ({p.folds} folds by patient) AUROC of a logistic regression predicting the site "
                  f"from {len(features)} input feature(s), weighted one-vs-rest over {len(keep_sites)} sites; "
                  "mean of the folds' held-out AUROCs; logit interval from each fold's DeLong error by patient "
                  "(their mean bounds the mean's error)")
        return [Metric("site_identifiability_auroc", value, n=n, ci=ci, ci_method=method, level=p.level)]

    # ------------------------------------------------------------------ findings
    def _discrimination_finding(self, metrics, site_col, dev, names, p) -> Finding:
        gaps = [m for m in metrics if m.id == "auroc_gap" and m.group]
        deciding = [g for g in gaps if g.value is not None and g.ci and not g.suppressed and "under_powered" not in g.flags]
        worse = [g for g in deciding if (g.ci_simultaneous or g.ci)[0] > p.auroc_tolerance]
        aucs = [m for m in metrics if m.id == "auroc" and m.group and site_col in m.group and not m.suppressed
                and m.value is not None and m.group[site_col] != REFERENCE_SITE and "under_powered" not in m.flags]
        dev_name = "the development data (reference)" if dev == REFERENCE_SITE else names.group({site_col: dev})
        tol = f"{p.auroc_tolerance:.2f}"
        if worse:
            w = max(worse, key=lambda g: (g.ci_simultaneous or g.ci)[0])
            status = Status.WARN
            lead = (f"AUROC is lower than at {dev_name} by more than {tol} at {len(worse)} site(s), even allowing for "
                    f"every comparison: at {names.group(w.group)} by {w.value:.3f} (95% CI {w.ci[0]:.3f} to {w.ci[1]:.3f}).")
        elif deciding and all(g.ci[1] <= p.auroc_tolerance for g in deciding) and len(deciding) == len(gaps):
            status = Status.PASS
            lead = f"At every site AUROC is within {tol} of {dev_name} with 95% confidence."
        else:
            status = Status.INCONCLUSIVE
            lead = (f"The data cannot show that every site's AUROC is within {tol} of {dev_name}"
                    + (f" ({len(gaps) - len(deciding)} site(s) too small, suppressed or undefined)." if len(gaps) > len(deciding) else "."))
        if aucs:
            lo, hi = min(aucs, key=lambda m: m.value), max(aucs, key=lambda m: m.value)
            lead += (f" Across the {len(aucs)} adequately powered sites AUROC ranged from {lo.value:.2f} "
                     f"({names.group(lo.group)}) to {hi.value:.2f} ({names.group(hi.group)}).")
        return Finding(id="auroc_by_site", title="Discrimination at each site", status=status, message=lead,
                       metric="auroc_gap", threshold=p.auroc_tolerance, checklist=self.checklist)

    def _heterogeneity_finding(self, results, metrics, site_col, names, p) -> Finding:
        r = results.get("auroc")
        if r is None:
            return Finding(id="auroc_heterogeneity", title="What to expect at a new site", status=Status.INCONCLUSIVE,
                           message=(f"Fewer than {MIN_POOLED_SITES} adequately powered sites have a published AUROC: nothing can "
                                    "be pooled, and no range can be given for a new site."),
                           metric="auroc_pi_low", threshold=p.min_auroc, checklist=self.checklist)
        text = (f"Pooled over {r.k} adequately powered sites AUROC is {r.pooled:.2f} (95% CI {r.ci_low:.2f} to {r.ci_high:.2f}); "
                f"between-site heterogeneity I² = {100 * r.i2:.0f}% (Q test p = {r.q_p:.3g}).")
        if r.pi_low is None:
            status = Status.INCONCLUSIVE
            lead = "With fewer than 3 sites no range can be given for a new site."
        elif r.pi_low >= p.min_auroc:
            status = Status.PASS
            lead = (f"In a new site expect AUROC between {r.pi_low:.2f} and {r.pi_high:.2f} (95% prediction "
                    f"interval), at or above {p.min_auroc:.2f}.")
        else:
            status = Status.WARN
            lead = (f"In a new site expect AUROC between {r.pi_low:.2f} and {r.pi_high:.2f} (95% prediction "
                    f"interval): a new site may get less than {p.min_auroc:.2f}.")
        return Finding(id="auroc_heterogeneity", title="What to expect at a new site", status=status,
                       message=f"{lead} {text}", metric="auroc_pi_low", threshold=p.min_auroc, checklist=self.checklist)

    def _transfer_finding(self, metrics, site_col, names, p) -> Finding:
        losses = [m for m in metrics if m.id in ("sensitivity_transfer_loss", "specificity_transfer_loss")]
        deciding = [m for m in losses if m.value is not None and m.ci and not m.suppressed and "under_powered" not in m.flags]
        worse = [m for m in deciding if m.ci[0] > p.rate_tolerance]
        tol = f"{100 * p.rate_tolerance:.0f}"
        if worse:
            w = max(worse, key=lambda m: m.ci[0])
            what = "sensitivity" if w.id.startswith("sensitivity") else "specificity"
            status = Status.WARN
            sites_hit = len({m.group[site_col] for m in worse})
            message = (f"The shared threshold costs {sites_hit} site(s) more than {tol} points of sensitivity or "
                       f"specificity against the site's own threshold: {names.group(w.group)} loses "
                       f"{100 * w.value:.1f} points of {what} (95% CI {100 * w.ci[0]:.1f} to {100 * w.ci[1]:.1f}).")
        elif deciding and len(deciding) == len(losses) and all(m.ci[1] <= p.rate_tolerance for m in deciding):
            status = Status.PASS
            message = f"At every site the shared threshold costs less than {tol} points of sensitivity or specificity."
        else:
            status = Status.INCONCLUSIVE
            undecided = len(losses) - len(deciding)
            message = (f"The data cannot show that the shared threshold costs every site less than {tol} points of "
                       "sensitivity or specificity: "
                       + (f"{undecided} of {len(losses)} values rest on too few patients, are suppressed or undefined."
                          if undecided else "the intervals of some sites include it."))
        return Finding(id="operating_point_transfer", title="One threshold for every site", status=status,
                       message=message, metric="sensitivity_transfer_loss", threshold=p.rate_tolerance,
                       checklist=self.checklist)

    def _identifiability_finding(self, ident, site_col, ctx, p, names) -> Finding:
        direct = site_col in ctx.config.data.features
        m = ident[0] if ident else None
        if direct:
            status = Status.WARN
            message = (f"The model takes the site ({names.column(site_col)}) as an input, so its scores can differ "
                       "between sites for that reason alone.")
        else:
            message = ""
            status = Status.INCONCLUSIVE
        if m is not None and m.value is not None and m.ci:
            text = (f"A classifier tells the site from the model's other inputs with AUROC {m.value:.2f} "
                    f"(95% CI {m.ci[0]:.2f} to {m.ci[1]:.2f}).")
            if m.ci[0] > p.identifiability_warn:
                status = Status.WARN
                text += " Site-specific shortcuts are possible."
            elif m.ci[1] <= p.identifiability_warn and not direct:
                status = Status.PASS
                text += f" Below {p.identifiability_warn:.2f}: the inputs say little about the site."
            message = f"{message} {text}".strip()
        elif not direct:
            message = (m.reason if m is not None else "No input features to test.") or ""
        return Finding(id="site_identifiability", title="Can the inputs tell the site?", status=status,
                       message=message, metric="site_identifiability_auroc", threshold=p.identifiability_warn,
                       checklist=self.checklist)


# ---------------------------------------------------------------------- helpers
def _add(bucket, site, est, var) -> None:
    est, var = float(np.asarray(est)), float(np.asarray(var))
    if np.isfinite(est) and np.isfinite(var) and var > 0:
        bucket[0].append(site)
        bucket[1].append(est)
        bucket[2].append(var)


def _effective(y, pred, positive, clusters) -> tuple[float, float]:
    """Sensitivity (positive=1) or specificity (0) counts at the effective sample size: the
    design effect of patient clustering divides both (Korn-Graubard, as the intervals do)."""
    rows = y == positive
    hit = (pred == positive)[rows].astype(float)
    if clusters is None:
        return float(hit.sum()), float(rows.sum())
    pid, inv = np.unique(clusters[rows], return_inverse=True)
    k = np.bincount(inv, weights=hit, minlength=len(pid))
    m = np.bincount(inv, minlength=len(pid)).astype(float)
    prop = cluster_proportions(k, m, np.zeros(len(pid), np.int64), 1)
    deff = float(prop.deff[0])
    return float(prop.k[0]) / deff, float(prop.n[0]) / deff


def _small_counts(y, s, t, clusters, min_cell) -> tuple[bool, bool]:
    """Whether caught/missed (positives) or cleared/flagged (negatives) at threshold ``t`` holds
    1 to min_cell - 1 patients (rows without an identifier)."""
    ids = clusters if clusters is not None else np.arange(len(y))

    def count(mask) -> int:
        return len(np.unique(ids[mask]))

    pos, neg, flag = y == 1, y == 0, s >= t
    sens = any(small_cell(count(pos & f), min_cell) for f in (flag, ~flag))
    spec = any(small_cell(count(neg & f), min_cell) for f in (flag, ~flag))
    return sens, spec


def _sens_spec(y, s, t) -> tuple[float, float]:
    pos, neg = y == 1, y == 0
    return float((s[pos] >= t).mean()), float((s[neg] < t).mean())


def _transfer_bootstrap(y, s, clusters, rule, shared, n_boot, rng) -> np.ndarray:
    """(sensitivity loss, specificity loss) in each replicate; NaN where a replicate has one class."""
    if clusters is None:
        clusters = np.arange(len(y))
    pid, inv = np.unique(clusters, return_inverse=True)
    members = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[members], np.arange(len(pid)))
    ends = np.append(starts[1:], len(members))
    out = np.full((n_boot, 2), np.nan)
    for b in range(n_boot):
        drawn = rng.integers(0, len(pid), len(pid))
        rows = np.concatenate([members[starts[d]:ends[d]] for d in drawn])
        yb, sb = y[rows], s[rows]
        if yb.min() == yb.max():
            continue
        own = choose_threshold(yb, sb, rule)
        so, po = _sens_spec(yb, sb, own)
        ss, ps = _sens_spec(yb, sb, shared)
        out[b] = (so - ss, po - ps)
    return out


def _site_auroc(X, sites, clusters, p, seed):
    """Cross-validated weighted one-vs-rest AUROC of predicting the site, with a fold-wise interval.

    Each fold's model is scored on its own held-out fold; with the model fixed, the weighted
    one-vs-rest AUROC there is a weighted sum of per-site AUROCs whose DeLong influence values
    add up row by row, giving a patient-clustered standard error. The folds' AUROCs are
    averaged and the standard error of the average is bounded by the average of theirs, which
    holds whatever their correlation (as :func:`audit.stats.drift.domain_classifier`). A
    patient bootstrap of the pooled out-of-fold predictions, with the models held fixed,
    ignores the models' own variation and under-covers (84% for the domain classifier).
    """
    import warnings

    from sklearn.compose import ColumnTransformer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from audit.stats.influence import influence_se, wald_interval

    numeric = [c for c in X.columns if X[c].dtype.kind in "biuf"]
    categorical = [c for c in X.columns if c not in numeric]
    pre = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
         ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                               OneHotEncoder(handle_unknown="ignore")), categorical)])
    # A diagnostic, not a model to deploy: a loose tolerance keeps 50 sites under seconds.
    model = make_pipeline(pre, LogisticRegression(max_iter=300, tol=1e-3))
    X = X.copy()
    for c in categorical:
        X[c] = X[c].astype(str)
    classes, codes = np.unique(sites, return_inverse=True)
    _, cluster_codes = np.unique(clusters, return_inverse=True)
    cv = StratifiedGroupKFold(n_splits=p.folds, shuffle=True, random_state=(seed or 0) % (2**32))
    fold_auc, fold_se = [], []
    with warnings.catch_warnings():
        # Convergence to 1e-4 is not needed for a diagnostic AUROC; a UserWarning about a class
        # missing from a fold is avoided by the patient floor on the sites kept.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in cv.split(X, codes, cluster_codes):
            fitted = model.fit(X.iloc[train], codes[train])
            proba = fitted.predict_proba(X.iloc[test])
            auc, psi = _weighted_ovr_auroc(codes[test], proba, list(fitted.classes_), len(classes))
            if auc is None:
                continue
            fold_auc.append(auc)
            fold_se.append(influence_se(psi, cluster_codes[test]))
    if not fold_auc:
        return float("nan"), None, len(sites)
    value, se = float(np.mean(fold_auc)), float(np.mean(fold_se))
    if 0 < value < 1 and np.isfinite(se):
        lo, hi = (float(v) for v in wald_interval(value, se, level=p.level, transform="logit"))
        ci = (lo, hi)
    else:
        ci = None
    return value, ci, len(sites)


def _weighted_ovr_auroc(y, proba, fitted_classes, n_classes):
    """sklearn's weighted one-vs-rest AUROC (sites weighted by their rows; for two sites the
    binary AUROC) and its DeLong influence values, the same weighted sum of each site's."""
    from audit.stats.influence import auroc_influence

    columns = {c: j for j, c in enumerate(fitted_classes)}
    targets = [1] if n_classes == 2 else range(n_classes)
    auc_sum, psi_sum, weight = 0.0, np.zeros(len(y)), 0
    for c in targets:
        pos = y == c
        if c not in columns or pos.all() or not pos.any():
            continue
        a, psi = auroc_influence(pos, proba[:, columns[c]])
        auc_sum += pos.sum() * a
        psi_sum += pos.sum() * psi
        weight += pos.sum()
    if weight == 0:
        return None, None
    return auc_sum / weight, psi_sum / weight
