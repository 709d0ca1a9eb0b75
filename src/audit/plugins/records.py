"""Metric records of one grouping, with the small-cell rule, shared by the plugins that compare
groups (fairness: sensitive groups; universality: sites).

:func:`grouping_records` turns the :class:`~audit.plugins.disaggregation.GroupingStats` of one
grouping into :class:`~audit.core.results.Metric` records and lists the counts primary
suppression hides (for :func:`audit.privacy.secondary_suppression`): a group of fewer than
``min_cell`` patients is hidden with all its values; a rate whose denominator, or numerator
(unless ``report.keep_small_numerators``), has 1 to ``min_cell - 1`` patients is hidden;
zero is not a small cell. Groups below ``min_group_n`` patients or ``min_positives`` positive
patients are flagged ``under_powered`` and carry their minimum detectable FNR gap.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from audit.core.results import SMALL_GROUP, Metric
from audit.plugins.disaggregation import DENOMINATOR, NUMERATOR, Estimate, GroupingStats, GroupStats
from audit.errors import ConfigError
from audit.privacy import Count
from audit.stats import adjust_pvalues, choose_threshold, min_detectable_gap


def metric_record(mid, est: Estimate, n, group, label, flags, level, *, suppressed, denominator=None,
                  reference=None, reference_group=None) -> Metric:
    """One :class:`Metric` from an :class:`Estimate` (a suppressed undefined value stays
    suppressed: "undefined" tells that a count is 0)."""
    return Metric(
        id=mid, value=est.value, n=n, group=group, ci=est.ci, ci_method=est.method, level=level,
        reason=est.reason, denominator=denominator, label=label, reference=reference,
        reference_group=reference_group, p_value=est.p_value, flags=flags,
        suppressed=suppressed, ci_simultaneous=est.ci_simultaneous,
    )


def small_cell(count: int, min_cell: int) -> bool:
    """A small cell: at least one patient and fewer than min_cell (zero identifies nobody)."""
    return 0 < count < min_cell


def powered(unit: GroupStats, min_group_n: int, min_positives: int) -> bool:
    """Enough patients (cases without an identifier) and positive patients to judge a gap."""
    return unit.patients["n"] >= min_group_n and unit.patients["positives"] >= min_positives


def reference_rule(min_group_n: int, min_positives: int, min_cell: int, keep_small_numerators: bool):
    """Which groups may be a reference for a metric: adequately powered, and with a value
    that can be published (a gap to a suppressed rate would give that rate back)."""
    def eligible(unit: GroupStats, metric: str) -> bool:
        pc = unit.patients
        if not powered(unit, min_group_n, min_positives) or pc["n"] < min_cell:
            return False
        if metric in DENOMINATOR:
            num_ok = keep_small_numerators or pc[NUMERATOR[metric]] >= min_cell
            return pc[DENOMINATOR[metric]] >= min_cell and num_ok
        return min(pc["positives"], pc["negatives"]) >= min_cell

    return eligible


def adjust_gaps(metrics: list[Metric], method: str) -> list[Metric]:
    """Correct the gap tests of each metric id as one family (e.g. every fnr_gap, all labels).

    Undefined gaps count as p = 1, so the family is the same as that of the simultaneous
    intervals: a simultaneous interval that excludes 0 always has an adjusted p below 0.05.
    """
    out = list(metrics)
    families: dict[str, list[int]] = {}
    for i, m in enumerate(metrics):
        if m.reference is not None:
            families.setdefault(m.id, []).append(i)
    for idx in families.values():
        raw = np.array([1.0 if metrics[i].p_value is None else metrics[i].p_value for i in idx])
        adjusted = adjust_pvalues(raw, method=method)
        for i, q in zip(idx, adjusted, strict=True):
            if metrics[i].p_value is not None:
                out[i] = replace(out[i], p_adjusted=float(q))
    return out


def patient_clusters(frame: pd.DataFrame, id_column: str | None) -> tuple[np.ndarray | None, str]:
    """Integer patient codes for the cluster-robust intervals (None when every row is its own
    patient), and how rows were counted, in words."""
    if not id_column:
        return None, "rows (no patient identifier configured)"
    codes, uniques = pd.factorize(frame[id_column])
    if len(uniques) == len(frame):
        return None, f"rows (each {id_column} appears once)"
    return codes.astype(np.int64), f"patients ({id_column}; {len(uniques)} patients, {len(frame)} rows)"


def group_codes(frame: pd.DataFrame, cols: tuple[str, ...], order: dict[str, list[str]] | None = None):
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


def grouping_records(
    stats: GroupingStats, *, label: str | None, names: dict[str, str], min_cell: int, level: float,
    min_group_n: int, min_positives: int, keep_small_numerators: bool, clustered: bool,
    include_overall: bool, keep: tuple[str, ...], gap_keep: tuple[str, ...],
    gap_references: tuple[str, ...] = ("best", "overall"),
) -> tuple[list[Metric], list[Count]]:
    """Metric records of one grouping, and the counts that suppression must protect.

    Parameters
    ----------
    stats : GroupingStats
        From :func:`audit.plugins.disaggregation.analyse_grouping`.
    label : str or None
        The label the records are for (multi-label mode), else None.
    names : dict
        Metric ids renamed in the records (``{"fnr": "underdiagnosis_rate"}``).
    keep, gap_keep : tuple of str
        The metrics, and the metrics whose gaps (``*_gap`` to the best or reference group,
        ``*_gap_overall``), that become records.
    include_overall : bool
        Also the overall population's records (once per label).
    gap_references : tuple of str
        Which gaps: ``"best"`` (to the best, or the one eligible reference, group: ``*_gap``)
        and ``"overall"`` (``*_gap_overall``).

    Notes
    -----
    Primary suppression (counted in patients when there is an identifier): a group with
    fewer than ``min_cell`` patients; a rate whose denominator, or numerator (unless
    ``keep_small_numerators``), has 1 to ``min_cell - 1``. Zero is not a small cell (it
    identifies nobody), so a large group's undefined FNR (no positives) is shown as
    undefined; in a suppressed group even "undefined" is suppressed.
    """
    out, protected = [], []
    units = [(stats.overall, None)] if include_overall else []
    units += [(g, dict(zip(stats.columns, g.key, strict=True))) for g in stats.groups]
    for unit, group in units:
        c, pc = unit.counts, unit.patients
        where = None if group is None else tuple(sorted(group.items()))
        under = group is not None and not powered(unit, min_group_n, min_positives)
        flags = ("under_powered",) if under else ()
        small = pc["n"] < min_cell
        if small:
            protected += [Count("n", where, label), Count("positives", where, label)]
        # SMALL_GROUP tells the public record to withhold this group's label too: the value
        # of a group of fewer than min_cell patients is itself close to a row-level value.
        n_flags = flags + ((SMALL_GROUP,) if small and group is not None else ())
        out.append(Metric("n", c["n"], n=c["n"], group=group, label=label, flags=n_flags, suppressed=small))
        if clustered:
            out.append(Metric("patients", pc["n"], n=c["n"], group=group, label=label, flags=flags,
                              suppressed=small))
        pos_small = small or small_cell(pc["positives"], min_cell) or small_cell(pc["negatives"], min_cell)
        if pos_small and not small:
            protected.append(Count("positives", where, label))
        out.append(Metric("positives", c["positives"], n=c["n"], group=group, label=label, flags=flags,
                          suppressed=pos_small))
        for m in keep:
            est = unit.metrics.get(m)
            if est is None:
                continue
            den, num = DENOMINATOR.get(m, "n"), NUMERATOR.get(m)
            hide = small or small_cell(pc[den], min_cell)
            if m not in DENOMINATOR and (small_cell(pc["positives"], min_cell) or small_cell(pc["negatives"], min_cell)):
                # AUROC and Brier rest on both classes: AUROC 1/11 at n = 12 says 1 positive.
                hide = True
            if small_cell(pc[den], min_cell) and not small:
                protected.append(Count(den, where, label))
            if num and small_cell(pc[num], min_cell) and not keep_small_numerators:
                hide = True
                protected.append(Count(num, where, label))
            out.append(metric_record(names.get(m, m), est, c["n"], group, label, flags, level,
                                     suppressed=hide, denominator=c[den] if m in DENOMINATOR else None))
        if under:
            # The FNR gap this group could show (alpha 0.05, power 0.8) against the overall
            # population, at the overall FNR (0.5, the widest case, when that is undefined).
            base = stats.overall.metrics["fnr"].value
            has_pos = pc["positives"] > 0
            mdg = min_detectable_gap(base if np.isfinite(base) else 0.5, pc["positives"],
                                     stats.overall.patients["positives"]) if has_pos else None
            out.append(Metric("min_detectable_gap", None if mdg is None else float(mdg), n=c["n"], group=group,
                              label=label, flags=flags, suppressed=small or pos_small,
                              reason=None if has_pos else "no positive cases in this group"))
        if group is None:
            continue
        for m in gap_keep:
            mid = names.get(m, m)
            for ref, est in (("best", unit.gap_best.get(m)), ("overall", unit.gap_overall.get(m))):
                if est is None or ref not in gap_references:
                    continue
                best_key = stats.best.get(m)
                ref_group = dict(zip(stats.columns, best_key, strict=True)) if ref == "best" and best_key else None
                out.append(metric_record(f"{mid}_gap" if ref == "best" else f"{mid}_gap_overall", est, c["n"],
                                         group, label, flags, level, suppressed=small, reference=ref,
                                         reference_group=ref_group))
    return out, protected



def shared_operating_point(ctx, threshold: float | None, rule: str | None,
                           warnings: list[str]) -> tuple[str, float, str]:
    """The one threshold a plugin applies to every group, site or window.

    The plugin's own ``threshold``, else ``[fairness]``'s; else chosen by the plugin's rule (or
    ``[fairness]``'s, default ``max-f1``) on the reference data, or on the audited data itself
    with a warning. Returns ``(rule, threshold, how it was chosen, in words)``.
    """
    fair = ctx.config.plugin_params.get("fairness", {})
    rule = rule or fair.get("operating_point") or "max-f1"
    fixed = threshold if threshold is not None else fair.get("threshold")
    label = ctx.labels[0]
    if fixed is not None:
        return rule, float(fixed), f"fixed at {float(fixed):g} (configured)"
    if ctx.reference is not None:
        y, s, where = ctx.reference.frame[label].to_numpy(), ctx.predictions("reference")[:, 0], "reference data"
    else:
        y, s, where = ctx.data.frame[label].to_numpy(), ctx.predictions("data")[:, 0], "audited data itself"
        warnings.append("No reference data and no fixed threshold: the shared operating point was chosen on "
                        "the audited data itself. Pass --reference or --threshold.")
    if y.min() == y.max():
        raise ConfigError(f"Cannot choose the operating point for '{label}' on the {where}: only one class "
                          "is present. Pass --threshold.")
    return rule, float(choose_threshold(y, s, rule)), f"{rule} on the {where}"
