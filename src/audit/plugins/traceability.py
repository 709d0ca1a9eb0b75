"""Traceability plugin: has the data, or the model's behaviour on it, moved (FUTURE-AI Traceability)?

Between the reference data and the audited data (:mod:`audit.stats.drift`): per input feature
the effect size that decides its status (normalised Wasserstein distance for numbers,
Jensen-Shannon distance for categories) with the tests beside it (KS, chi-square; corrected
across features), PSI and the change in the share of missing values; a domain classifier for
drift of all features together; the drift of the model's scores; and, the labels being known,
the change in prevalence, AUROC and sensitivity at the operating point, with intervals.

Over time (``--time``, ``traceability.window``): per window the counts, prevalence, mean
score, AUROC and sensitivity under the small-cell rule (:mod:`audit.plugins.records`, as
fairness groups), the score drift of each window against the reference, and where a series
shifts (:func:`audit.stats.change.detect_change`, ruptures' PELT).

Effect sizes come first: at a million rows every p-value is tiny, so a feature's status needs
its effect past a threshold *and* its corrected test to reject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import norm

from audit import __version__
from audit.core.progress import track
from audit.core.results import SMALL_GROUP, Distribution, Finding, Metric, PluginResult, Status, worst_status
from audit.errors import ConfigError, InputError
from audit.plugins.base import AuditPlugin
from audit.plugins.disaggregation import analyse_grouping
from audit.plugins.records import grouping_records, patient_clusters, shared_operating_point, small_cell
from audit.stats import auroc_influence, influence_se, mover_interval, mover_p_value
from audit.stats import parse_operating_point
from audit.stats.change import detect_change
from audit.stats.drift import DriftThresholds, domain_classifier, feature_drift, score_drift
from audit.stats.histogram import safe_histogram
from audit.stats.proportions import cluster_proportions, difference_interval, difference_p_value

CHECKLIST = ("FUTURE-AI:Traceability 4", "TRIPOD+AI:16", "TRIPOD+AI:20c", "CLAIM-2024:30")
FEATURE_IDS = ("drift_effect", "ks", "wasserstein", "wasserstein_normalised", "chi2", "psi", "jensen_shannon",
               "missing_change")
PREDICTION_IDS = ("score_drift_effect", "score_ks", "score_psi", "score_jensen_shannon")
CHANGE_IDS = ("prevalence_change", "auroc_change", "sensitivity_change")
DOMAIN_IDS = ("domain_auroc", "domain_importance")
WINDOW_IDS = ("n", "patients", "positives", "prevalence", "sensitivity", "auroc", "score_mean", "score_js",
              "min_detectable_gap")
SHIFT_IDS = tuple(f"{m}_shift" for m in ("prevalence", "score_mean", "auroc", "sensitivity"))
_STATUS = {"none": Status.PASS, "inconclusive": Status.INCONCLUSIVE, "moderate": Status.WARN, "large": Status.WARN}
_WINDOW = re.compile(r"^(day|week|month|(\d+)\s*rows|\d+(\.\d+)?)$")


@dataclass(frozen=True)
class TraceabilityParams:
    """Parameters of the traceability plugin (section ``[traceability]`` of audit.toml).

    window : ``day``, ``week`` or ``month`` (a date/time column), a number (the window's
        width in the units of a numeric time column, e.g. ``7`` for days since a start), or
        ``"N rows"`` (consecutive blocks of N rows in time order).
    numeric_moderate, numeric_large, categorical_moderate, categorical_large,
    missing_moderate, missing_large, domain_moderate, domain_large : the effect sizes at which
        drift is "moderate" and "large" (:class:`audit.stats.drift.DriftThresholds`, whose
        defaults these are).
    correction : ``holm`` or ``bh`` across features; ``bins`` for PSI and Jensen-Shannon of
        numbers (reference quantiles).
    domain_classifier, folds, max_rows : the multivariate drift check and its cost.
    threshold, operating_point : the operating point for sensitivity, as in ``[fairness]``.
    auroc_tolerance, rate_tolerance : the performance losses the findings judge against.
    min_window_n, min_window_positives : windows below either are flagged under-powered.
    plot_features : the number of drifting features whose distributions the report draws
        (largest effect first; bins merged under the small-cell rule).
    """

    window: str = "month"
    level: float = 0.95
    correction: str = "holm"
    bins: int = 10
    numeric_moderate: float = 0.1
    numeric_large: float = 0.25
    categorical_moderate: float = 0.1
    categorical_large: float = 0.2
    missing_moderate: float = 0.05
    missing_large: float = 0.15
    domain_classifier: bool = True
    domain_moderate: float = 0.6
    domain_large: float = 0.75
    folds: int = 2
    max_rows: int = 20_000
    threshold: float | None = None
    operating_point: str | None = None
    auroc_tolerance: float = 0.05
    rate_tolerance: float = 0.05
    min_window_n: int = 30
    min_window_positives: int = 10
    plot_features: int = 4

    def validate(self) -> None:
        if not _WINDOW.match(str(self.window).strip()):
            raise ConfigError(f"traceability.window: '{self.window}' is not day, week, month, a number "
                              "(width in the time column's units) or 'N rows'.")
        if not 0.5 < self.level < 1:
            raise ConfigError(f"traceability.level: expected a number in (0.5, 1), got {self.level}.")
        if self.correction not in ("holm", "bh"):
            raise ConfigError(f"traceability.correction: '{self.correction}' is not one of holm, bh.")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ConfigError(f"traceability.threshold: {self.threshold:g} is outside [0, 1].")
        if self.operating_point is not None:
            try:
                parse_operating_point(self.operating_point)
            except ValueError as exc:
                raise ConfigError(f"traceability.operating_point: {exc}") from None
        if not 2 <= self.bins <= 100:
            raise ConfigError(f"traceability.bins: expected 2 to 100, got {self.bins}.")
        if not 2 <= self.folds <= 10:
            raise ConfigError(f"traceability.folds: expected 2 to 10, got {self.folds}.")
        if not 0 <= self.plot_features <= 20:
            raise ConfigError(f"traceability.plot_features: expected 0 to 20, got {self.plot_features}.")
        for name in ("min_window_n", "min_window_positives", "max_rows"):
            if getattr(self, name) < 1:
                raise ConfigError(f"traceability.{name}: expected an integer >= 1, got {getattr(self, name)}.")
        try:
            self.thresholds()
        except ValueError as exc:
            raise ConfigError(f"traceability: {exc}") from None

    def thresholds(self) -> DriftThresholds:
        return DriftThresholds(
            numeric_moderate=self.numeric_moderate, numeric_large=self.numeric_large,
            categorical_moderate=self.categorical_moderate, categorical_large=self.categorical_large,
            missing_moderate=self.missing_moderate, missing_large=self.missing_large,
            domain_auroc_moderate=self.domain_moderate, domain_auroc_large=self.domain_large,
            alpha=1 - self.level)


class TraceabilityPlugin(AuditPlugin):
    """Drift between the reference and the audited data, and over time within the audited data.

    Needs reference data (``--reference``) for drift, a time column (``--time``) for the
    windows; SKIPPED with the reason when it has neither.
    """

    name = "traceability"
    principle = "Traceability"
    version = __version__
    metrics = tuple(dict.fromkeys(FEATURE_IDS + PREDICTION_IDS + CHANGE_IDS + DOMAIN_IDS + WINDOW_IDS + SHIFT_IDS))
    checklist = CHECKLIST
    Params = TraceabilityParams

    def run(self, ctx) -> PluginResult:
        p: TraceabilityParams = self.params
        time_col = ctx.config.data.time
        if ctx.reference is None and not time_col:
            return self.skipped("no reference data (--reference) and no time column (--time): nothing to compare")
        if len(ctx.labels) > 1:
            return self.skipped("several label columns: the traceability plugin audits one label")
        label = ctx.labels[0]
        frame = ctx.data.frame
        scores = ctx.predictions("data")[:, 0]
        y = frame[label].to_numpy(np.int8)
        warnings: list[str] = []
        _, threshold, threshold_method = shared_operating_point(ctx, p.threshold, p.operating_point, warnings)
        metrics: list[Metric] = []
        findings: list[Finding] = []
        distributions: list[Distribution] = []
        settings: dict = {"label": label, "threshold": threshold, "threshold_method": threshold_method,
                          "interval_level": p.level, "thresholds": self._threshold_settings()}
        if ctx.reference is not None:
            drift, drift_findings, drift_settings = self._drift(ctx, frame, scores, y, threshold, warnings)
            metrics += drift
            findings += drift_findings
            settings.update(drift_settings)
            distributions = self._distributions(ctx, drift)
        else:
            settings["reference"] = "none given: no drift against a reference (pass --reference)"
        if time_col:
            windows, window_findings, window_settings = self._windows(ctx, frame, scores, y, threshold)
            metrics += windows
            findings += window_findings
            settings.update(window_settings)
        else:
            settings["windows"] = "no time column (--time / data.time): no drift over time"
        status = worst_status(f.status for f in findings) if findings else Status.INCONCLUSIVE
        summary = findings[0].message if findings else "Nothing could be compared."
        return PluginResult(
            plugin=self.name, principle=self.principle, version=self.version, status=status, summary=summary,
            metrics=tuple(metrics), findings=tuple(findings), settings=settings, warnings=tuple(warnings),
            checklist=self.checklist, distributions=tuple(distributions),
        )

    # ------------------------------------------------------------------ inputs
    def _threshold_settings(self) -> dict:
        p: TraceabilityParams = self.params
        return {"numeric (normalised Wasserstein)": [p.numeric_moderate, p.numeric_large],
                "categorical (Jensen-Shannon distance)": [p.categorical_moderate, p.categorical_large],
                "missing share (absolute change)": [p.missing_moderate, p.missing_large],
                "domain classifier AUROC": [p.domain_moderate, p.domain_large]}

    # ------------------------------------------------------------------ drift against the reference
    def _drift(self, ctx, frame, scores, y, threshold, warnings):
        p: TraceabilityParams = self.params
        ref = ctx.reference.frame
        th = p.thresholds()
        features = [f for f in ctx.config.data.features if f in frame.columns]
        missing_here = [f for f in features if f not in ref.columns]
        if missing_here:
            raise InputError(f"{ctx.reference.path.name}: feature column '{missing_here[0]}' is in "
                             f"{ctx.data.path.name} but not in the reference data; give both files the same columns.")
        out: list[Metric] = []
        if ctx.config.data.features and not features:
            warnings.append("The model's input features are read only when a model is audited ([model]); this is a "
                            "predictions-only audit, so only the scores are compared.")
        results = []
        if features:
            try:
                results = feature_drift(ref[features], frame[features], features, bins=p.bins,
                                        correction=p.correction, thresholds=th)
            except ValueError as exc:
                raise InputError(f"{ctx.data.path.name} against {ctx.reference.path.name}: {exc}") from None
        n_cur = len(frame)
        for r in results:
            out += _feature_records(r, n_cur, p.level)
        ref_scores = ctx.predictions("reference")[:, 0]
        sd = score_drift(ref_scores, scores, bins=p.bins, thresholds=th)
        out += [
            Metric("score_drift_effect", sd.effect, n=n_cur, reason=sd.effect_name, p_value=sd.p_value,
                   flags=_status_flags(sd.status)),
            Metric("score_ks", sd.statistic, n=n_cur, p_value=sd.p_value, ci_method=sd.method),
            Metric("score_psi", sd.psi, n=n_cur, ci_method=f"{sd.n_bins} reference-quantile bins"),
            Metric("score_jensen_shannon", sd.jensen_shannon, n=n_cur, ci_method=f"{sd.n_bins} reference-quantile bins, base 2"),
        ]
        out += self._performance_change(ctx, ref, ref_scores, frame, scores, y, threshold)
        domain = None
        if p.domain_classifier and features:
            with track(ctx.progress, "traceability: domain classifier", 1) as advance:
                domain = self._domain(ctx, ref, frame, features, th)
                advance(1)
            out += domain
        findings = [self._feature_finding(results, sd), self._performance_finding(out)]
        if domain:
            findings.append(self._domain_finding(domain))
        settings = {
            "features": features,
            "feature_method": ("numbers: KS test and Wasserstein distance (scipy), normalised by the reference SD; "
                               "categories: chi-square test of homogeneity; both: Jensen-Shannon distance (base 2) "
                               f"and PSI on {p.bins} reference-quantile bins (numbers) or the categories; "
                               f"p-values corrected across features ({p.correction})"),
            "status_rule": ("moderate or large only when the effect size passes its threshold and the corrected "
                            "test rejects; inconclusive when the effect passes but the test does not"),
            "performance_method": ("prevalence and sensitivity: MOVER difference of Clopper-Pearson intervals "
                                   "(Korn-Graubard effective size by patient); AUROC: MOVER difference of the "
                                   "two logit-scale DeLong intervals (independent samples)"),
        }
        return out, findings, settings

    def _distributions(self, ctx, records: list[Metric]) -> list[Distribution]:
        """Histograms (small-cell safe) of the features that drift most: flagged ones, largest
        effect first, at most ``plot_features``."""
        drifting = sorted((m for m in records if m.id == "drift_effect" and m.value is not None
                           and any(f in DRIFT_FLAGS for f in m.flags)), key=lambda m: -m.value)
        kinds = {m.feature: ("numeric" if any(x.id == "ks" and x.feature == m.feature for x in records)
                             else "categorical") for m in drifting}
        out = []
        for m in drifting[:self.params.plot_features]:
            h = safe_histogram(ctx.reference.frame[m.feature], ctx.data.frame[m.feature], kind=kinds[m.feature],
                               min_cell=ctx.config.report.min_cell)
            if h is not None:
                out.append(Distribution(feature=m.feature, kind=h.kind, bins=h.bins, reference=h.reference,
                                        audited=h.current, edges=h.edges))
        return out

    def _performance_change(self, ctx, ref, ref_scores, frame, scores, y, threshold) -> list[Metric]:
        p: TraceabilityParams = self.params
        label = ctx.labels[0]
        y_ref = ref[label].to_numpy(np.int8)
        parts = {}
        for name, yy, ss, fr in (("reference", y_ref, ref_scores, ref), ("data", y, scores, frame)):
            clusters, _ = patient_clusters(fr, ctx.id_column)
            cl = np.arange(len(yy)) if clusters is None else clusters
            pred = (ss >= threshold).astype(np.int8)
            parts[name] = {
                "prevalence": _proportion(yy, np.ones_like(yy), cl),
                "sensitivity": _proportion(pred * yy, yy, cl),
                "auroc": auroc_influence(yy, ss) if 0 < yy.sum() < len(yy) else (float("nan"), None),
                "clusters": clusters, "pos": int(yy.sum()), "tp": int((pred * yy).sum()),
            }
        out = []
        a, b = parts["data"], parts["reference"]
        for mid, key in (("prevalence_change", "prevalence"), ("sensitivity_change", "sensitivity")):
            pa, pb = a[key], b[key]
            if pa.n[0] == 0 or pb.n[0] == 0:
                out.append(Metric(mid, None, n=len(y), reason="undefined: no cases in one of the two datasets"))
                continue
            lo, hi = difference_interval(pa, pb, level=p.level)
            pv = difference_p_value(pa, pb)
            # The audited counts behind a sensitivity are the fairness plugin's overall counts;
            # a small numerator is not shown here either.
            hide = key == "sensitivity" and any(small_cell(c, ctx.min_cell) for c in (a["tp"], a["pos"] - a["tp"],
                                                                                     b["tp"], b["pos"] - b["tp"]))
            out.append(Metric(mid, float(pa.p[0] - pb.p[0]), n=len(y), ci=(float(lo[0]), float(hi[0])),
                              ci_method="MOVER (Clopper-Pearson)", level=p.level, p_value=float(pv[0]),
                              reference="reference", suppressed=hide))
        (auc_a, psi_a), (auc_b, psi_b) = a["auroc"], b["auroc"]
        if psi_a is None or psi_b is None:
            out.append(Metric("auroc_change", None, n=len(y), reason="undefined: one class only in one dataset"))
        else:
            se_a, se_b = influence_se(psi_a, a["clusters"]), influence_se(psi_b, b["clusters"])
            se_d = float(np.hypot(se_a, se_b))  # independent samples
            lo, hi = mover_interval(auc_a, se_a, auc_b, se_b, se_d, level=p.level)
            out.append(Metric("auroc_change", float(auc_a - auc_b), n=len(y), ci=(float(lo), float(hi)),
                              ci_method="MOVER (logit DeLong)", level=p.level,
                              p_value=float(mover_p_value(auc_a, se_a, auc_b, se_b, se_d)), reference="reference"))
        return out

    def _domain(self, ctx, ref, frame, features, th) -> list[Metric]:
        p: TraceabilityParams = self.params
        groups = None
        if ctx.id_column:
            groups = (ref[ctx.id_column].astype(str).to_numpy(), frame[ctx.id_column].astype(str).to_numpy())
        try:
            d = domain_classifier(ref[features], frame[features], folds=p.folds, groups=groups, level=p.level,
                                  max_rows=p.max_rows, thresholds=th, random_state=ctx.random_state or 0)
        except ValueError as exc:
            return [Metric("domain_auroc", None, n=len(frame), reason=str(exc)[:200])]
        out = [Metric("domain_auroc", d.auroc, n=d.n_current, ci=(d.low, d.high), ci_method=d.method, level=d.level,
                      flags=_status_flags(d.status))]
        out += [Metric("domain_importance", float(v), n=d.n_current, feature=f,
                       ci_method="permutation importance: drop in held-out AUROC") for f, v in d.top_features]
        return out

    # ------------------------------------------------------------------ windows
    def _windows(self, ctx, frame, scores, y, threshold):
        p: TraceabilityParams = self.params
        col = ctx.config.data.time
        codes, labels, rule = _window_codes(frame[col], str(p.window).strip(), col, ctx.data.path.name)
        present = np.unique(codes)
        index = {int(w): i for i, w in enumerate(present)}
        dense = np.array([index[int(c)] for c in codes], np.int64)
        keys = [(labels[int(w)],) for w in present]
        clusters, cluster_note = patient_clusters(frame, ctx.id_column)
        pred = (scores >= threshold).astype(np.int8)
        rate_method = "Clopper-Pearson exact interval" + (
            f" at the Korn-Graubard effective sample size ({cluster_note})" if clusters is not None else "")
        stats = analyse_grouping(("window",), dense, keys, y, pred, scores, clusters, level=p.level,
                                 family={m: len(keys) for m in ("prevalence", "sensitivity", "auroc")},
                                 rate_method=rate_method, score_method="logit-Wald (DeLong) interval")
        recs, protected = grouping_records(
            stats, label=None, names={}, min_cell=ctx.min_cell, level=p.level, min_group_n=p.min_window_n,
            min_positives=p.min_window_positives, keep_small_numerators=ctx.config.report.keep_small_numerators,
            clustered=clusters is not None, include_overall=False, keep=("prevalence", "sensitivity", "auroc"),
            gap_keep=())
        # A window's label is a stretch of time, not a value of somebody's row: unlike a rare
        # category it stays shown when the window is small (its numbers are hidden).
        recs = [replace(m, flags=tuple(f for f in m.flags if f != SMALL_GROUP)) for m in recs]
        recs = ctx.suppress(recs, protected)
        hidden = {m.group["window"] for m in recs if m.id == "n" and m.suppressed}
        ref_scores = ctx.predictions("reference")[:, 0] if ctx.reference is not None else None
        extra = []
        for i, (lab,) in enumerate(keys):
            rows = dense == i
            small = lab in hidden
            flags = next((m.flags for m in recs if m.id == "n" and m.group == {"window": lab}), ())
            mean = float(scores[rows].mean())
            se = influence_se((scores[rows] - mean) / rows.sum(), None if clusters is None else clusters[rows])
            z = float(norm.ppf((1 + p.level) / 2))
            ci = (mean - z * se, mean + z * se) if np.isfinite(se) else None
            extra.append(Metric("score_mean", mean, n=int(rows.sum()), group={"window": lab}, ci=ci,
                                ci_method="Wald interval, cluster-robust" if clusters is not None else "Wald interval",
                                level=p.level, flags=flags, suppressed=small))
            if ref_scores is not None:
                js = score_drift(ref_scores, scores[rows], bins=p.bins).jensen_shannon
                extra.append(Metric("score_js", float(js), n=int(rows.sum()), group={"window": lab}, flags=flags,
                                    suppressed=small, reason=None,
                                    ci_method=f"Jensen-Shannon distance (base 2) of the scores against the reference, "
                                              f"{p.bins} reference-quantile bins"))
        # Windows with no rows at all: shown as empty (0 identifies nobody), never a crash.
        empty = [lab for w, lab in enumerate(labels) if w not in index]
        empty_recs = [Metric("n", 0, n=0, group={"window": lab}, reason="no rows in this window") for lab in empty]
        window_recs = recs + extra + empty_recs
        order = {lab: k for k, lab in enumerate(labels)}
        window_recs.sort(key=lambda m: order.get((m.group or {}).get("window"), -1))
        shifts, shift_findings = self._shifts(window_recs, labels)
        settings = {"time_column": col, "window": rule, "windows": len(labels), "empty_windows": len(empty),
                    "change_method": "ruptures PELT (l2 cost) on published window values, standardised by a robust "
                                     "noise SD; penalty 3 ln n; suppressed or empty windows skipped",
                    "min_window_n": p.min_window_n, "min_window_positives": p.min_window_positives}
        return window_recs + shifts, shift_findings, settings

    def _shifts(self, recs, labels):
        out, findings = [], []
        series = {}
        for mid in ("prevalence", "score_mean", "auroc", "sensitivity"):
            by_window = {m.group["window"]: m for m in recs if m.id == mid and m.group}
            values = np.array([np.nan if (m := by_window.get(lab)) is None or m.suppressed or m.value is None
                               or "under_powered" in m.flags else m.value for lab in labels], float)
            series[mid] = values
            ses = np.array([np.nan if (m := by_window.get(lab)) is None or m.ci is None or np.isnan(values[k])
                            else (m.ci[1] - m.ci[0]) / (2 * 1.959963984540054) for k, lab in enumerate(labels)], float)
            det = detect_change(values)
            pv = _shift_p_value(det, ses) if det.index is not None else None
            if det.index is None:
                out.append(Metric(f"{mid}_shift", None, n=det.n_used, reason=det.reason or "no change found",
                                  ci_method=det.method))
            elif pv is None or pv > 0.05 / 4:
                # The windows' own intervals say how much a window moves by chance; a level
                # change that the segmentation finds but they do not support is not reported.
                out.append(Metric(f"{mid}_shift", None, n=det.n_used, ci_method=det.method, p_value=pv,
                                  reason=(f"a change of {det.shift:+.3g} at window {labels[det.index]} is within the "
                                          f"windows' sampling error (p = {pv:.2g}, Bonferroni over 4 series)"
                                          if pv is not None else "no interval to test the change with")))
            else:
                out.append(Metric(f"{mid}_shift", float(det.shift), n=det.n_used, group={"window": labels[det.index]},
                                  ci_method=det.method + "; tested with the windows' standard errors", p_value=pv,
                                  reason=f"from {det.before:.3g} to {det.after:.3g} starting in window {labels[det.index]}"))
        changed = [m for m in out if m.value is not None]
        if changed:
            lead = "; ".join(f"{_WORDS[m.id]} shifted by {m.value:+.3g} from window {m.group['window']}" for m in changed)
            findings.append(Finding(id="change_over_time", title="Change over time", status=Status.WARN,
                                    message=f"Over {len(labels)} windows: {lead}.", metric=changed[0].id,
                                    checklist=self.checklist))
        else:
            tested = sum(np.isfinite(v).sum() >= 6 for v in series.values())
            status = Status.PASS if tested else Status.INCONCLUSIVE
            message = (f"No shift found over {len(labels)} windows in prevalence, mean score, AUROC or sensitivity."
                       if tested else f"Too few adequately powered windows ({len(labels)} in all) to look for a shift "
                                      "over time: at least 6 are needed.")
            findings.append(Finding(id="change_over_time", title="Change over time", status=status, message=message,
                                    metric="auroc_shift", checklist=self.checklist))
        return out, findings

    # ------------------------------------------------------------------ findings
    def _feature_finding(self, results, sd) -> Finding:
        drifted = sorted([r for r in results if r.status in ("moderate", "large")], key=lambda r: -r.effect)
        unclear = [r for r in results if r.status == "inconclusive"]
        score_words = {"none": "did not drift", "inconclusive": "may have drifted (the test does not confirm it)",
                       "moderate": "drifted moderately", "large": "drifted strongly"}[sd.status]
        if drifted:
            top = ", ".join(f"{r.feature} ({_effect_words(r)}, {r.status})" for r in drifted[:3])
            message = (f"{len(drifted)} of {len(results)} input features drifted from the reference data: {top}. "
                       f"The model's scores {score_words}.")
            status = Status.WARN
        else:
            message = (f"No input feature drifted beyond its threshold ({len(results)} compared"
                       + (f"; {len(unclear)} inconclusive" if unclear else "") + f"). The model's scores {score_words}.")
            status = Status.WARN if sd.status in ("moderate", "large") else (
                Status.INCONCLUSIVE if unclear or sd.status == "inconclusive" else Status.PASS)
        return Finding(id="feature_drift", title="Drift from the reference data", status=status, message=message,
                       metric="drift_effect", checklist=self.checklist)

    def _performance_finding(self, metrics) -> Finding:
        p: TraceabilityParams = self.params
        auc = next(m for m in metrics if m.id == "auroc_change")
        sens = next(m for m in metrics if m.id == "sensitivity_change")
        parts = []
        for m, what, tol in ((auc, "AUROC", p.auroc_tolerance), (sens, "sensitivity", p.rate_tolerance)):
            if m.value is None or m.suppressed or m.ci is None:
                parts.append((Status.INCONCLUSIVE, f"the change in {what} cannot be shown"))
            elif m.ci[1] < -tol:
                parts.append((Status.WARN, f"{what} fell by {-m.value:.3f} (95% CI {-m.ci[1]:.3f} to {-m.ci[0]:.3f}), "
                                           f"more than {tol:g}"))
            elif m.ci[0] >= -tol:
                parts.append((Status.PASS, f"{what} changed by {m.value:+.3f} (95% CI {m.ci[0]:+.3f} to {m.ci[1]:+.3f}), "
                                           f"no loss beyond {tol:g}"))
            else:
                parts.append((Status.INCONCLUSIVE, f"{what} changed by {m.value:+.3f} (95% CI {m.ci[0]:+.3f} to "
                                                   f"{m.ci[1]:+.3f}): a loss beyond {tol:g} cannot be ruled out"))
        status = worst_status(s for s, _ in parts)
        message = "Against the reference data " + "; ".join(t for _, t in parts) + "."
        return Finding(id="performance_change", title="Performance against the reference", status=status,
                       message=message, metric="auroc_change", threshold=-p.auroc_tolerance, checklist=self.checklist)

    def _domain_finding(self, domain) -> Finding:
        d = domain[0]
        if d.value is None:
            return Finding(id="domain_classifier", title="Drift of all features together", status=Status.INCONCLUSIVE,
                           message=f"The domain classifier could not be fitted: {d.reason}.", metric="domain_auroc",
                           checklist=self.checklist)
        status = _STATUS[_flag_status(d.flags)]
        top = [m.feature for m in domain[1:4] if m.value is not None and m.value > 0]
        message = (f"A classifier tells audited rows from reference rows with AUROC {d.value:.2f} "
                   f"(95% CI {d.ci[0]:.2f} to {d.ci[1]:.2f}; 0.5 means no difference)"
                   + (f"; it relies most on {', '.join(top)}." if top else "."))
        return Finding(id="domain_classifier", title="Drift of all features together", status=status, message=message,
                       metric="domain_auroc", checklist=self.checklist)


def _shift_p_value(det, ses: np.ndarray) -> float | None:
    """Two-sided z test of the level change ``det`` finds, with each window's standard error
    (windows are disjoint rows: independent), before against after the change point."""
    from scipy import stats

    end = det.indices[1] if len(det.indices) > 1 else len(ses)
    before, after = ses[:det.index], ses[det.index:end]
    before, after = before[np.isfinite(before)], after[np.isfinite(after)]
    if not len(before) or not len(after):
        return None
    se = np.sqrt((before**2).sum() / len(before) ** 2 + (after**2).sum() / len(after) ** 2)
    return float(2 * stats.norm.sf(abs(det.shift) / se)) if se > 0 else None


def _effect_words(r) -> str:
    if r.effect_name == "wasserstein_normalised":
        return f"shifted by {r.effect:.2f} reference standard deviations"
    if r.effect_name == "jensen_shannon":
        return f"Jensen-Shannon distance {r.effect:.2f}"
    return f"{r.effect_name} {r.effect:.2f}"


DRIFT_FLAGS = ("drift_moderate", "drift_large", "drift_inconclusive")


def _status_flags(status: str) -> tuple[str, ...]:
    """``drift_moderate``, ``drift_large``, ``drift_inconclusive``; nothing for no drift."""
    return () if status == "none" else (f"drift_{status}",)


def _flag_status(flags) -> str:
    return next((f.removeprefix("drift_") for f in flags if f.startswith("drift_")), "none")


_WORDS = {"prevalence_shift": "prevalence", "score_mean_shift": "the mean score", "auroc_shift": "AUROC",
          "sensitivity_shift": "sensitivity"}


def _feature_records(r, n, level) -> list[Metric]:
    """The records of one feature's drift (:class:`audit.stats.drift.FeatureDrift`)."""
    flags = _status_flags(r.status)
    base = dict(n=n, feature=r.feature)
    out = [Metric("drift_effect", r.effect, reason=r.effect_name if r.reason is None else f"{r.effect_name}; {r.reason}",
                  p_value=r.p_value, p_adjusted=r.p_adjusted, flags=flags, **base)]
    if r.kind == "numeric":
        out += [Metric("ks", r.statistic, p_value=r.p_value, p_adjusted=r.p_adjusted, ci_method="two-sample KS", **base),
                Metric("wasserstein", r.wasserstein, **base),
                Metric("wasserstein_normalised", r.wasserstein_normalised, ci_method=f"divided by {r.scale}"
                       if isinstance(r.scale, str) else "divided by the reference SD", **base)]
    else:
        out.append(Metric("chi2", r.statistic, p_value=r.p_value, p_adjusted=r.p_adjusted,
                          ci_method=f"chi-square test of homogeneity, {r.df} df", **base))
    out += [Metric("psi", r.psi, ci_method=f"{r.n_bins} bins", **base),
            Metric("jensen_shannon", r.jensen_shannon, ci_method=f"{r.n_bins} bins, base 2", **base),
            Metric("missing_change", r.missing_difference, p_value=r.missing_p_value, p_adjusted=r.missing_p_adjusted,
                   ci_method="share missing, audited minus reference", **base)]
    return out


def _proportion(k_rows, m_rows, clusters):
    """One Proportion (sum k / sum m) with its design effect from per-patient sums."""
    codes, uniq = pd.factorize(clusters)
    k = np.bincount(codes, weights=k_rows, minlength=len(uniq))
    m = np.bincount(codes, weights=m_rows, minlength=len(uniq))
    return cluster_proportions(k, m, np.zeros(len(uniq), np.int64), 1)


def _window_codes(values: pd.Series, window: str, col: str, file: str):
    """Integer window codes of each row, every window's label (empty ones included), and the rule."""
    if values.isna().any():
        raise InputError(f"{file}: column '{col}' (time) has {int(values.isna().sum())} missing values; "
                         "fill or drop them.")
    m = re.match(r"^(\d+)\s*rows$", window)
    if m:
        size = int(m.group(1))
        order = np.argsort(_sortable(values, col, file), kind="stable")
        codes = np.empty(len(values), np.int64)
        codes[order] = np.arange(len(values)) // size
        t = values.to_numpy()[order]
        labels = [f"{t[i]}–{t[min(i + size, len(t)) - 1]}" for i in range(0, len(t), size)]
        return codes, labels, f"blocks of {size} rows in time order"
    if window in ("day", "week", "month"):
        if pd.api.types.is_numeric_dtype(values):
            raise InputError(f"{file}: column '{col}' (time) is numeric ({values.iloc[0]!r}), so traceability.window "
                             f"'{window}' has no calendar meaning; give a width in its units (e.g. 7) or 'N rows'.")
        t = _dates(values, col, file)
        freq = {"day": "D", "week": "W-MON", "month": "M"}[window]
        periods = t.dt.to_period(freq)
        first, last = periods.min(), periods.max()
        span = pd.period_range(first, last, freq=freq)
        codes = np.asarray((periods - first).map(lambda d: d.n), dtype=np.int64)
        fmt = {"day": lambda q: str(q), "week": lambda q: f"week of {q.start_time.date()}", "month": lambda q: str(q)}
        return codes, [fmt[window](q) for q in span], f"calendar {window}s"
    width = float(window)
    if not pd.api.types.is_numeric_dtype(values):
        raise InputError(f"{file}: column '{col}' (time) is not numeric ({values.iloc[0]!r}); a window of width "
                         f"{window} needs numbers: use day, week, month or 'N rows'.")
    v = values.to_numpy(float)
    start = np.floor(v.min())
    codes = np.floor((v - start) / width).astype(np.int64)
    labels = [f"{start + k * width:g}–{start + (k + 1) * width:g}" for k in range(int(codes.max()) + 1)]
    return codes, labels, f"width {width:g} in the units of {col}, from {start:g}"


def _dates(values: pd.Series, col: str, file: str) -> pd.Series:
    t = pd.to_datetime(values.astype(str), errors="coerce", format="ISO8601")
    bad = t.isna() & values.notna()
    if bad.any():
        raise InputError(f"{file}: column '{col}' (time) has values that are not dates, e.g. "
                         f"{values[bad].iloc[0]!r}; expected ISO dates such as 2020-03-14.")
    return t


def _sortable(values: pd.Series, col: str, file: str):
    return values.to_numpy() if pd.api.types.is_numeric_dtype(values) else _dates(values, col, file).to_numpy()
