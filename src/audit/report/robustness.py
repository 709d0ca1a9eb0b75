"""The robustness plugin's section: AUROC against severity for each family of perturbations,
sensitivity per group under the perturbation that costs most, the worst cases with their paired
intervals, and what the numbers rest on in plain sentences. Every value comes from the plugin's
public records (suppressed ones are not drawn, and are named as not drawn)."""

from __future__ import annotations

from dataclasses import dataclass

from audit.core.results import Metric, PluginResult
from audit.report.figures import FigureView

FAMILY_WORDS = {"generic": "generic image perturbations", "mri": "MRI artefacts", "xray": "X-ray artefacts",
                "ct": "CT artefacts", "tabular": "feature-table perturbations"}
# Perturbations in one figure: more lines than this cannot be told apart (the colour list).
MAX_LINES = 8
# Rows of the worst-case table shown before it folds.
FOLD_ROWS = 12


def is_robustness(plugin: PluginResult) -> bool:
    return plugin.plugin == "robustness"


@dataclass(frozen=True)
class WorstRow:
    """One perturbation at its worst gated severity (the largest AUROC drop up to the gate)."""

    perturbation: str
    severity: str
    auroc_drop: str
    sensitivity_drop: str
    flip_rate: str
    label: str = ""


@dataclass(frozen=True)
class RobustnessView:
    severity_figures: tuple[FigureView, ...]
    group_figure: FigureView | None
    worst: tuple[WorstRow, ...]
    sentences: tuple[str, ...]
    worst_caption: str
    multi_label: bool = False
    fold_rows: int = FOLD_ROWS


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def _pts(v: float) -> str:
    r = round(100 * v, 1)
    return f"{(r if r != 0 else 0.0):.1f}"  # no "-0.0"


def _cell(m: Metric | None, points: bool) -> str:
    """``0.081 (0.052 to 0.110)`` or ``12.0 points (5.1 to 19.0)``; hidden and undefined values
    say so."""
    if m is None:
        return "—"
    if m.suppressed:
        return "suppressed"
    if m.value is None:
        return "undefined"
    if points:
        text = f"{_pts(m.value)} points"
        return text + (f" ({_pts(m.ci[0])} to {_pts(m.ci[1])})" if m.ci else "")
    text = f"{m.value:.3f}"
    return text + (f" ({m.ci[0]:.3f} to {m.ci[1]:.3f})" if m.ci else "")


def _words(plugin: PluginResult) -> dict[str, dict]:
    return {str(p.get("name")): p for p in plugin.settings.get("perturbations", []) if isinstance(p, dict)}


def _word(info: dict[str, dict], name: str | None) -> str:
    if name is None:
        return "clean"
    return str(info.get(name, {}).get("words") or name)


def _labels(plugin: PluginResult) -> list[str | None]:
    labels = list(dict.fromkeys(m.label for m in plugin.metrics if m.id == "threshold"))
    return labels or [None]


def _shown(m: Metric | None) -> bool:
    return m is not None and not m.suppressed and m.value is not None


def robustness_view(plugin: PluginResult) -> RobustnessView:
    info = _words(plugin)
    labels = _labels(plugin)
    multi = labels != [None]
    gate = int(plugin.settings.get("max_severity_gate", 3))
    figures, rows = [], []
    group_fig = None
    for label in labels:
        overall = [m for m in plugin.metrics if m.group is None and m.label == label]
        figures += severity_figures(plugin, overall, info, label if multi else None, gate)
        rows += _worst_rows(overall, info, label if multi else None)
        if group_fig is None:
            group_fig = group_figure(plugin, label, info)
    sentences = []
    rows_info = plugin.settings.get("rows") or {}
    if rows_info:
        sentences.append(f"Rows audited: {rows_info.get('audited')} of {rows_info.get('of')} "
                         f"({rows_info.get('sample', 'all rows')}).")
    sev = plugin.settings.get("severities") or []
    beyond = [s for s in sev if s > gate]
    sentences.append(f"Gates and worst cases cover severities up to {gate}"
                     + (f"; severities {', '.join(map(str, beyond))} are stress tests, reported as *_stress records "
                        "and drawn in the figures." if beyond else "."))
    failed = plugin.settings.get("failed") or {}
    if failed:
        first = next(iter(failed.values()))
        sentences.append(f"{len(failed)} perturbation-severity run{'s' if len(failed) > 1 else ''} could not be "
                         f"assessed: {first}.")
    sentences.append("Drops are clean minus perturbed on the same rows (positive = worse), with paired intervals.")
    caption = (f"Each perturbation at its severity (up to {gate}) with the largest AUROC drop: the drop in AUROC and "
               "in sensitivity, clean minus perturbed on the same rows (positive = worse), with paired 95% "
               "intervals, and the share of rows whose decision flips.")
    return RobustnessView(severity_figures=tuple(figures), group_figure=group_fig, worst=tuple(rows),
                          sentences=tuple(sentences), worst_caption=caption, multi_label=multi)


def _worst_rows(overall: list[Metric], info, label) -> list[WorstRow]:
    drops = [m for m in overall if m.id == "auroc_drop" and m.perturbation is not None]
    by_pert: dict[str, Metric] = {}
    for m in drops:
        cur = by_pert.get(m.perturbation)
        if cur is None or (_shown(m) and (not _shown(cur) or m.value > cur.value)):
            by_pert[m.perturbation] = m
    out = []
    for name, m in sorted(by_pert.items(), key=lambda kv: -(kv[1].value if _shown(kv[1]) else -1.0)):
        def find(mid, m=m):
            return next((x for x in overall if x.id == mid and x.perturbation == m.perturbation
                         and x.severity == m.severity), None)
        flip = find("flip_rate")
        flip_text = ("suppressed" if flip is not None and flip.suppressed else
                     "—" if flip is None or flip.value is None else f"{_pts(flip.value)}%")
        out.append(WorstRow(perturbation=_word(info, name), severity=str(m.severity), auroc_drop=_cell(m, False),
                            sensitivity_drop=_cell(find("sensitivity_drop"), True), flip_rate=flip_text,
                            label=label or ""))
    return out


def _family(info, name: str) -> str:
    return str(info.get(name, {}).get("family") or "generic")


def severity_figures(plugin: PluginResult, overall: list[Metric], info, label: str | None,
                     gate: int) -> list[FigureView]:
    """AUROC against severity, one figure per family of perturbations, one line per
    perturbation; the clean AUROC dashed; a dotted line after the highest gated severity."""
    clean = next((m for m in overall if m.id == "auroc" and m.perturbation is None), None)
    aucs = [m for m in overall if m.id == "auroc" and m.perturbation is not None]
    families: dict[str, list[str]] = {}
    for m in aucs:
        names = families.setdefault(_family(info, m.perturbation), [])
        if m.perturbation not in names:
            names.append(m.perturbation)
    out = []
    for family, names in families.items():
        for start in range(0, len(names), MAX_LINES):
            part = names[start:start + MAX_LINES]
            series = {n: sorted(((m.severity, m) for m in aucs if m.perturbation == n), key=lambda sm: sm[0])
                      for n in part}
            fig = _severity_figure(series, clean, info, family, label, gate,
                                   part_no=start // MAX_LINES + 1 if len(names) > MAX_LINES else None)
            if fig is not None:
                out.append(fig)
    return out


def _severity_figure(series, clean, info, family, label, gate, part_no=None) -> FigureView | None:
    drawn = {n: [(s, m) for s, m in pts if _shown(m)] for n, pts in series.items()}
    drawn = {n: pts for n, pts in drawn.items() if pts}
    hidden = [_word(info, n) for n, pts in series.items() if not drawn.get(n) and any(m.suppressed for _, m in pts)]
    undefined = [(_word(info, n), next((m.reason for _, m in pts if m.reason), "undefined"))
                 for n, pts in series.items() if not drawn.get(n) and not any(m.suppressed for _, m in pts)]
    if not drawn:
        return None
    import io
    import warnings

    import matplotlib
    from matplotlib.figure import Figure

    from audit.report.figures import _RC, GREY, LINE_COLOURS, LINE_STYLES, svg_data_uri

    severities = sorted({s for pts in series.values() for s, _ in pts})
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(6.5, 3.2), layout="constrained")
        ax = fig.add_subplot()
        if _shown(clean):
            ax.axhline(clean.value, color=GREY, linestyle="--", linewidth=1.2, label="clean")
        for k, (name, pts) in enumerate(drawn.items()):
            ax.plot([s for s, _ in pts], [m.value for _, m in pts], color=LINE_COLOURS[k % len(LINE_COLOURS)],
                    linestyle=LINE_STYLES[k % len(LINE_STYLES)], marker="o", markersize=3.5, linewidth=1.4,
                    label=_word(info, name))
        if severities and max(severities) > gate >= min(severities):
            ax.axvline(gate + 0.5, color=GREY, linestyle=":", linewidth=1.2)
            ax.text(gate + 0.55, 0.995, "stress tests", transform=ax.get_xaxis_transform(), fontsize=7,
                    color=GREY, va="top", parse_math=False)
        ax.set_xticks(severities, [str(s) for s in severities])
        ax.set_xlabel("severity", parse_math=False)
        ax.set_ylabel("AUROC", parse_math=False)
        values = [m.value for pts in drawn.values() for _, m in pts] + ([clean.value] if _shown(clean) else [])
        ax.set_ylim(max(0.0, min(0.5, min(values) - 0.05)), 1.0)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.legend(loc="outside right upper", frameon=False, fontsize=8)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    what = FAMILY_WORDS.get(family, family) + (f" ({label})" if label else "") + (
        f", part {part_no}" if part_no else "")
    parts = [f"{_word(info, n)} {', '.join(f'{m.value:.2f}' for _, m in pts)} at severities "
             f"{', '.join(str(s) for s, _ in pts)}" for n, pts in drawn.items()]
    alt = (f"AUROC against severity, {what}: "
           + (f"clean {clean.value:.2f}; " if _shown(clean) else "")
           + "; ".join(parts) + ".")
    caption = (f"AUROC at each severity of the {what}: one line per perturbation, the clean AUROC dashed"
               + (f"; the dotted line separates the gated severities (up to {gate}) from the stress tests."
                  if severities and max(severities) > gate >= min(severities) else "."))
    return FigureView(uris=(svg_data_uri(buf.getvalue()),), alt=alt, caption=caption, suppressed=tuple(hidden),
                      undefined=tuple(undefined), kind="severity", title=f"AUROC against severity: {what}")


def _worst_perturbation(plugin: PluginResult, label) -> str | None:
    for mid in ("sensitivity_drop_worst", "auroc_drop_worst"):
        m = next((x for x in plugin.metrics if x.id == mid and x.label == label), None)
        if m is not None and m.perturbation:
            return m.perturbation
    return None


def group_figure(plugin: PluginResult, label, info) -> FigureView | None:
    """Sensitivity of each group (single attributes) against severity under the perturbation
    that costs most (the worst sensitivity drop, else AUROC drop, up to the gate); severity 0 is
    the clean inputs. Suppressed groups are named, not drawn; under-powered ones are dashed."""
    name = _worst_perturbation(plugin, label)
    if name is None:
        return None
    recs = [m for m in plugin.metrics if m.id == "sensitivity" and m.group and m.label == label
            and m.perturbation in (None, name)]
    groups: dict[str, list[Metric]] = {}
    for m in recs:
        groups.setdefault(m.group_label, []).append(m)
    drawn, hidden, undefined, weak = {}, [], [], set()
    for g, ms in groups.items():
        pts = sorted((((0 if m.perturbation is None else m.severity), m) for m in ms if _shown(m)),
                     key=lambda sm: sm[0])
        if len(pts) < 2:
            if any(m.suppressed for m in ms):
                hidden.append(g)
            else:
                undefined.append((g, next((m.reason for m in ms if m.reason), "undefined")))
            continue
        drawn[g] = pts
        if any("under_powered" in m.flags for _, m in pts):
            weak.add(g)
    if not drawn:
        return None
    import io
    import warnings

    import matplotlib
    from matplotlib.figure import Figure

    from audit.report.figures import _RC, LINE_COLOURS, svg_data_uri

    shown = dict(list(drawn.items())[:MAX_LINES])
    undefined += [(g, f"at most {MAX_LINES} lines per figure; see the records") for g in drawn if g not in shown]
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(6.5, 3.2), layout="constrained")
        ax = fig.add_subplot()
        for k, (g, pts) in enumerate(shown.items()):
            ax.plot([s for s, _ in pts], [100 * m.value for _, m in pts], color=LINE_COLOURS[k % len(LINE_COLOURS)],
                    linestyle="--" if g in weak else "-", marker="o", markersize=3.5, linewidth=1.4, label=g)
        xs = sorted({s for pts in shown.values() for s, _ in pts})
        ax.set_xticks(xs, ["clean" if s == 0 else str(s) for s in xs])
        ax.set_xlabel("severity", parse_math=False)
        ax.set_ylabel("sensitivity (%)", parse_math=False)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.legend(loc="outside right upper", frameon=False, fontsize=8)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    what = _word(info, name)
    alt = (f"Sensitivity per group under {what}" + (f" ({label})" if label else "") + ": "
           + "; ".join(f"{g} " + ", ".join(f"{100 * m.value:.1f}% ({'clean' if s == 0 else f'severity {s}'})"
                                          for s, m in pts) for g, pts in shown.items()) + ".")
    caption = (f"Sensitivity of each group at each severity of {what}, the perturbation with the largest drop up to "
               "the gate; 'clean' is the unperturbed inputs" + ("; dashed lines are under-powered groups."
                                                              if weak else "."))
    return FigureView(uris=(svg_data_uri(buf.getvalue()),), alt=alt, caption=caption, suppressed=tuple(hidden),
                      undefined=tuple(undefined), kind="severity", title=f"Sensitivity per group under {what}")
