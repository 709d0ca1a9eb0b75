"""The traceability plugin's section: drift from the reference data, feature by feature (largest
effect first), the model's performance against the reference, and the audited period window by
window with the shifts found. Every value comes from the plugin's public records."""

from __future__ import annotations

from dataclasses import dataclass

from audit.core.results import Metric, PluginResult
from audit.report.figures import FigureView

STATUS_WORDS = {"drift_large": "large drift", "drift_moderate": "moderate drift",
                "drift_inconclusive": "possible drift (test not significant)"}
EFFECT_WORDS = {"wasserstein_normalised": "shift in reference SDs (normalised Wasserstein)",
                "jensen_shannon": "Jensen-Shannon distance"}
CHANGE_WORDS = {"prevalence_change": "Prevalence", "auroc_change": "AUROC", "sensitivity_change": "Sensitivity"}
SHIFT_WORDS = {"prevalence_shift": "Prevalence", "score_mean_shift": "Mean score", "auroc_shift": "AUROC",
               "sensitivity_shift": "Sensitivity"}
WINDOW_COLUMNS = (("n", "Tests"), ("prevalence", "Prevalence"), ("auroc", "AUROC"), ("sensitivity", "Sensitivity"),
                  ("score_mean", "Mean score"), ("score_js", "Score drift (JS)"))


def is_traceability(plugin: PluginResult) -> bool:
    return plugin.plugin == "traceability"


@dataclass(frozen=True)
class DriftRow:
    feature: str
    effect: str
    measure: str
    verdict: str
    test: str
    psi: str
    missing: str


@dataclass(frozen=True)
class WindowRow:
    window: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class TraceabilityView:
    drift: tuple[DriftRow, ...]
    changes: tuple[tuple[str, str, str], ...]  # (what, change, interval)
    domain: str
    window_headers: tuple[str, ...]
    windows: tuple[WindowRow, ...]
    shifts: tuple[str, ...]
    window_rule: str
    trend: FigureView | None = None
    distributions: tuple[FigureView, ...] = ()


def _num(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def _p(v: float | None) -> str:
    if v is None:
        return "p —"
    return "p < 0.001" if v < 0.001 else f"p = {v:.3f}"


def _signed(v: float, digits: int) -> str:
    r = round(v, digits)
    return f"{(r if r != 0 else 0.0):+.{digits}f}"  # no "-0.0"


def _cell(m: Metric | None, pct: bool) -> str:
    if m is None:
        return "—"
    if m.suppressed:
        return "suppressed"
    if m.value is None:
        return "undefined"
    text = _pct(m.value) if pct else (f"{int(m.value):,}" if m.id == "n" else _num(m.value))
    return text + (" (under-powered)" if "under_powered" in m.flags and m.id == "n" else "")


def traceability_view(plugin: PluginResult) -> TraceabilityView:
    by_feature: dict[str, dict[str, Metric]] = {}
    for m in plugin.metrics:
        if m.feature and m.id != "domain_importance":
            by_feature.setdefault(m.feature, {})[m.id] = m
    rows = []
    for feature, recs in by_feature.items():
        e = recs.get("drift_effect")
        if e is None:
            continue
        test = recs.get("ks") or recs.get("chi2")
        name = (e.reason or "").split(";")[0]
        verdict = next((STATUS_WORDS[f] for f in e.flags if f in STATUS_WORDS), "no drift")
        miss = recs.get("missing_change")
        rows.append((e.value or 0.0, DriftRow(
            feature=feature, effect=_num(e.value), measure=EFFECT_WORDS.get(name, name), verdict=verdict,
            test=(("KS" if test.id == "ks" else "chi-square") + f" {_p(test.p_adjusted if test.p_adjusted is not None else test.p_value)}")
            if test else "—",
            psi=_num(recs["psi"].value) if "psi" in recs else "—",
            missing=("—" if miss is None or miss.value is None else f"{_signed(100 * miss.value, 1)} points"))))
    drift = tuple(r for _, r in sorted(rows, key=lambda er: -er[0]))
    changes = []
    for mid, what in CHANGE_WORDS.items():
        m = next((x for x in plugin.metrics if x.id == mid), None)
        if m is None:
            continue
        pct = mid != "auroc_change"
        scale = 100 if pct else 1
        unit = " points" if pct else ""
        if m.suppressed or m.value is None:
            changes.append((what, "suppressed" if m.suppressed else "undefined", ""))
            continue
        fmt = (lambda v: _signed(scale * v, 1)) if pct else (lambda v: _signed(v, 3))
        ci = f"{fmt(m.ci[0])} to {fmt(m.ci[1])}{unit}" if m.ci else ""
        changes.append((what, fmt(m.value) + unit, ci))
    dom = next((m for m in plugin.metrics if m.id == "domain_auroc"), None)
    domain = ""
    if dom is not None and dom.value is not None and dom.ci:
        top = [m.feature for m in plugin.metrics if m.id == "domain_importance" and m.value and m.value > 0][:3]
        domain = (f"A classifier tells audited rows from reference rows with AUROC {dom.value:.2f} "
                  f"(95% CI {dom.ci[0]:.2f} to {dom.ci[1]:.2f}; 0.5 means no difference)"
                  + (f", relying most on {', '.join(top)}." if top else "."))
    windows: dict[str, dict[str, Metric]] = {}
    for m in plugin.metrics:
        if m.group and "window" in m.group and not m.id.endswith("_shift"):
            windows.setdefault(m.group["window"], {})[m.id] = m
    window_rows = tuple(WindowRow(w, tuple(_cell(recs.get(mid), mid in ("prevalence", "sensitivity"))
                                           for mid, _ in WINDOW_COLUMNS))
                        for w, recs in windows.items())
    shifts = []
    for m in plugin.metrics:
        if m.id in SHIFT_WORDS:
            if m.value is not None and m.group:
                shifts.append(f"{SHIFT_WORDS[m.id]}: shifted by {m.value:+.3g} from window {m.group['window']} ({m.reason}).")
            else:
                shifts.append(f"{SHIFT_WORDS[m.id]}: {m.reason}.")
    return TraceabilityView(drift=drift, changes=tuple(changes), domain=domain,
                            window_headers=tuple(h for _, h in WINDOW_COLUMNS), windows=window_rows,
                            shifts=tuple(shifts), window_rule=str(plugin.settings.get("window", "")),
                            trend=trend_figure(plugin),
                            distributions=tuple(distribution_figure(d) for d in plugin.distributions))


def trend_figure(plugin: PluginResult) -> FigureView | None:
    """AUROC window by window with its 95% interval (published, adequately powered windows
    only), and a dotted line where a shift of AUROC was found."""
    windows = list(dict.fromkeys(m.group["window"] for m in plugin.metrics
                                 if m.group and "window" in m.group and m.id == "n"))
    auc = {m.group["window"]: m for m in plugin.metrics if m.id == "auroc" and m.group and "window" in m.group}
    points = [(i, auc[w]) for i, w in enumerate(windows) if w in auc and not auc[w].suppressed
              and auc[w].value is not None and "under_powered" not in auc[w].flags]
    if len(points) < 2:
        return None
    # Only a shift of AUROC itself is drawn on the AUROC plot; the others are in words below it.
    shift_at = [windows.index(m.group["window"]) for m in plugin.metrics
                if m.id == "auroc_shift" and m.value is not None and m.group and m.group.get("window") in windows]
    import io
    import warnings

    import matplotlib
    from matplotlib.figure import Figure

    from audit.report.figures import _RC, BLUE, GREY, svg_data_uri

    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(7.5, 3.0), layout="constrained")
        ax = fig.add_subplot()
        xs = [i for i, _ in points]
        ax.errorbar(xs, [m.value for _, m in points],
                    yerr=[[m.value - m.ci[0] if m.ci else 0 for _, m in points],
                          [m.ci[1] - m.value if m.ci else 0 for _, m in points]],
                    fmt="o", color=BLUE, markersize=4, linewidth=1.2, capsize=2)
        for x in shift_at:
            ax.axvline(x - 0.5, color=GREY, linestyle=":", linewidth=1.4)
        step = max(1, len(windows) // 8)
        ax.set_xticks(range(0, len(windows), step), [windows[i] for i in range(0, len(windows), step)],
                      parse_math=False, fontsize=7)
        low = min(m.ci[0] if m.ci else m.value for _, m in points)
        ax.set_ylim(min(0.5, low - 0.02), 1.0)
        ax.set_ylabel("AUROC", parse_math=False)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    lo, hi = min(points, key=lambda p: p[1].value)[1], max(points, key=lambda p: p[1].value)[1]
    alt = (f"AUROC in {len(points)} of {len(windows)} windows, from {lo.value:.2f} ({lo.group['window']}) to "
           f"{hi.value:.2f} ({hi.group['window']})"
           + (f"; AUROC shifts from window {windows[shift_at[0]]}" if shift_at else "; no shift of AUROC found") + ".")
    caption = ("AUROC window by window: dots with their 95% intervals; windows that are suppressed or "
               "under-powered are not drawn" + ("; the dotted line marks where the shift of AUROC starts." if shift_at else "."))
    return FigureView(uris=(svg_data_uri(buf.getvalue()),), alt=alt, caption=caption)


def distribution_figure(d) -> FigureView:
    """One feature's share of rows per bin, reference (grey) against audited (blue), as
    horizontal bars (bin labels stay readable on a narrow screen)."""
    import io
    import warnings

    import matplotlib
    from matplotlib.figure import Figure

    from audit.report.figures import _RC, BLUE, GREY, svg_data_uri

    k = len(d.bins)
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(5.0, 1.2 + 0.32 * k), layout="constrained")
        ax = fig.add_subplot()
        ys = list(range(k))
        h = 0.38
        ax.barh([y - h / 2 for y in ys], [100 * v for v in d.reference], height=h, color=GREY, label="reference")
        ax.barh([y + h / 2 for y in ys], [100 * v for v in d.audited], height=h, color=BLUE, label="audited")
        ax.set_yticks(ys, list(d.bins), parse_math=False, fontsize=8)
        ax.invert_yaxis()  # the first bin (lowest values, most frequent category) at the top
        ax.set_xlabel("share of rows (%)", parse_math=False)
        ax.set_xlim(0, max(5.0, 100 * max(max(d.reference), max(d.audited)) * 1.1))
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.legend(loc="outside upper right", ncols=2, frameon=False, fontsize=8)  # never over a bar
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    # Every bin in words (at most a dozen): the numbers of the figure for a screen reader.
    alt = (f"{d.feature}, share of reference rows against audited rows per bin: "
           + "; ".join(f"{b} {100 * r:.1f}% against {100 * c:.1f}%"
                       for b, r, c in zip(d.bins, d.reference, d.audited, strict=True)) + ".")
    caption = (f"{d.feature}: the share of rows in each bin, reference (grey) against audited (blue). Bins are merged "
               "until each holds no rows or at least the minimum cell size in both samples"
               + ("; the outer bins are open so that no minimum or maximum is shown." if d.kind == "numeric" else "."))
    return FigureView(uris=(svg_data_uri(buf.getvalue()),), alt=alt, caption=caption, kind="distribution",
                      title=str(d.feature))
