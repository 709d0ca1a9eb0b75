"""The Calibration section: do the predicted risks match what happened (the calibration plugin)?

The plugin (``calibration``, principle "General") reports per population (all patients, each
group of each sensitive attribute, each site) the calibration slope and intercept,
calibration-in-the-large, the observed/expected ratio, the ECE and the Brier score with
intervals, and curves: ``reliability`` (observed rate against predicted probability, with a
pointwise band), ``net_benefit`` (the model) and ``net_benefit_treat_all`` over decision
thresholds (:class:`~audit.core.results.Curve`; ``thresholds`` is the x axis).

:func:`calibration_view` gives what the technical edition shows: reliability diagrams (all
patients with the band and the diagonal; one per grouping, a line per group, at most
:data:`~audit.report.figures.MAX_CURVES`), a decision-curve plot (model, treat all, treat none,
the model's band) and one per site when the plugin publishes them, and a table per grouping of
the six values (hidden cells as every table shows them; a group whose every value is hidden is
counted, not a row). :func:`overall_lines` is the line of the first screen ("Calibration: slope
0.93 (0.81–1.05), observed/expected 1.02 (0.95–1.09)").

Axes never exaggerate: a reliability diagram has the same range on both axes (from 0), so the
diagonal stays at 45°; a decision curve is cut below only where treating everyone falls far
below 0, and says so.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from audit.core.results import Metric, PluginResult, Status
from audit.report.anchors import plugin_anchor
from audit.report.figures import (
    _RC,
    BLACK,
    BLUE,
    GREY,
    LINE_COLOURS,
    LINE_STYLES,
    MAX_CURVES,
    VERMILLION,
    FigureView,
    _get,
    _group_of,
    _short,
    svg_data_uri,
)
from audit.report.formatting import (
    display_name,
    metric_parts,
    metric_text,
    suppressed_text,
    suppressed_why,
)
from audit.report.names import DisplayNames
from audit.report.text import display_label, shorten
from audit.report.view import GroupTable, Row, count_cell, group_tables, metric_cell, status_symbol

PLUGIN = "calibration"
CAL_IDS = ("calibration_slope", "calibration_intercept", "calibration_in_the_large", "oe_ratio", "ece", "brier")
TABLE_IDS = ("n", "positives", *CAL_IDS)
# Rows of a table by group; more are counted.
MAX_TABLE_ROWS = 40
# Decision thresholds an alt text gives the net benefit at (those in the curve's range).
ALT_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5)


def is_calibration(plugin: PluginResult) -> bool:
    return plugin.plugin == PLUGIN


# -- curves ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    name: str
    xs: tuple[float, ...]
    ys: tuple[float | None, ...]
    low: tuple[float | None, ...] | None = None
    high: tuple[float | None, ...] | None = None
    overall: bool = False


def _floats(values: Any, n: int) -> tuple[float | None, ...] | None:
    if values is None:
        return None
    out = tuple(None if v is None or not math.isfinite(float(v)) else float(v) for v in values)
    return out[:n] if len(out) >= n else None


def _line(curve: Any, name: str, overall: bool = False) -> Line:
    xs = tuple(float(t) for t in _get(curve, "thresholds", ()))
    ys = _floats(_get(curve, "values", ()), len(xs)) or ()
    n = min(len(xs), len(ys))
    return Line(name, xs[:n], ys[:n], _floats(_get(curve, "low"), n), _floats(_get(curve, "high"), n), overall)


def _curves(plugin: PluginResult, curve_id: str) -> list[Any]:
    return [c for c in getattr(plugin, "curves", None) or () if _get(c, "id") == curve_id and _get(c, "thresholds")]


def _labels(plugin: PluginResult) -> list[str | None]:
    seen = list(dict.fromkeys(m.label for m in plugin.metrics if m.group is None and m.id in CAL_IDS))
    seen += [c.label for c in getattr(plugin, "curves", None) or () if c.label not in seen]
    return list(dict.fromkeys(seen)) or [None]


def _pct(x: float) -> str:
    return f"{round(x * 100, 1) + 0.0:.1f}%"


def _defined(line: Line) -> list[int]:
    return [i for i, y in enumerate(line.ys) if y is not None]


def _sample(line: Line, k: int = 3) -> list[int]:
    """Indices of ``k`` defined points spread over the line: first, middle(s), last."""
    idx = _defined(line)
    if len(idx) <= k:
        return idx
    return sorted({idx[round(i * (len(idx) - 1) / (k - 1))] for i in range(k)})


def _band_text(line: Line, i: int) -> str:
    if line.low is None or line.high is None or line.low[i] is None or line.high[i] is None:
        return ""
    return f" ({_pct(line.low[i])}–{_pct(line.high[i])})"


def _axis_top(lines: list[Line]) -> float:
    values = [v for ln in lines for v in (*ln.xs, *(y for y in ln.ys if y is not None),
                                           *(h for h in (ln.high or ()) if h is not None))]
    top = max(values, default=1.0)
    return min(1.0, max(0.1, math.ceil(top * 10 - 1e-9) / 10))


def _style(ax) -> None:
    ax.grid(color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _nan(values) -> list[float]:
    return [math.nan if v is None else v for v in values]


def reliability_svg(lines: list[Line], top: float) -> str:
    """Observed rate against predicted probability: the diagonal, the all-patients line with its
    band, and a line per group (colour and dash pattern). Both axes run from 0 to ``top``."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    groups = [ln for ln in lines if not ln.overall]
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(7.5, 4.2), layout="constrained")
        ax = fig.add_subplot()
        ax.plot([0, top], [0, top], color=GREY, linestyle="--", linewidth=1.0, label="perfect calibration")
        for ln in lines:
            if not ln.overall:
                continue
            if ln.low is not None and ln.high is not None:
                lo = _nan(ln.low)
                hi = _nan(ln.high)
                ax.fill_between(ln.xs, lo, hi, color=GREY if groups else BLUE, alpha=0.25, linewidth=0,
                                label="95% band" if not groups else "all patients: 95% band")
            ax.plot(ln.xs, _nan(ln.ys), color=BLACK if groups else BLUE, linewidth=2.2, label=_short(ln.name))
        for i, ln in enumerate(groups):
            ax.plot(ln.xs, _nan(ln.ys), color=LINE_COLOURS[i % len(LINE_COLOURS)],
                    linestyle=LINE_STYLES[i % len(LINE_STYLES)], linewidth=1.5, label=_short(ln.name))
        ax.set_xlim(0.0, top)
        ax.set_ylim(0.0, top)
        ax.set_aspect("equal")
        percent = FuncFormatter(lambda v, _: f"{v * 100:.0f}%")
        ax.xaxis.set_major_formatter(percent)
        ax.yaxis.set_major_formatter(percent)
        ax.set_xlabel("Predicted probability (the model's score)", parse_math=False)
        ax.set_ylabel("Observed rate", parse_math=False)
        _style(ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def decision_svg(model: list[Line], treat_all: Line | None, bottom: float, top: float) -> str:
    """Net benefit against the decision threshold: the model (with its band when it has one, or
    a line per site), treating everyone (dashed) and no one (0)."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    by_site = len(model) > 1 or (model and not model[0].overall)
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(7.5, 3.6), layout="constrained")
        ax = fig.add_subplot()
        xs = [x for ln in model for x in ln.xs] + list(treat_all.xs if treat_all else ())
        ax.axhline(0.0, color=BLACK, linewidth=1.0, label="treat no one")
        if treat_all is not None:
            ax.plot(treat_all.xs, _nan(treat_all.ys), color=VERMILLION, linestyle="--", linewidth=1.6,
                    label="treat everyone")
        for i, ln in enumerate(model):
            if ln.overall:
                colour, style, width = (BLACK, "-", 2.2) if by_site else (BLUE, "-", 2.0)
            else:
                colour, style, width = LINE_COLOURS[i % len(LINE_COLOURS)], LINE_STYLES[i % len(LINE_STYLES)], 1.4
            if not by_site and ln.low is not None and ln.high is not None:
                ax.fill_between(ln.xs, _nan(ln.low), _nan(ln.high), color=BLUE, alpha=0.2, linewidth=0,
                                label="model: 95% band")
            ax.plot(ln.xs, _nan(ln.ys), color=colour, linestyle=style, linewidth=width, label=_short(ln.name))
        ax.set_xlim(min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 0.01)
        ax.set_ylim(bottom, top)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.0f}%"))
        ax.set_xlabel("Decision threshold (the risk at which one would act)", parse_math=False)
        ax.set_ylabel("Net benefit (per patient)", parse_math=False)
        _style(ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _label_words(names: DisplayNames, label: str | None) -> str:
    return f" ({names.label_name(label)})" if label is not None else ""


def _method(plugin: PluginResult, key: str) -> str:
    methods = plugin.settings.get("methods")
    text = methods.get(key) if isinstance(methods, Mapping) else None
    return str(text) if text else ""


def _sizes(plugin: PluginResult, label: str | None) -> dict[tuple, float]:
    return {tuple(sorted(m.group.items())): m.value for m in plugin.metrics
            if m.id == "n" and m.group and m.label == label and not m.suppressed and m.value is not None}


def reliability_figures(plugin: PluginResult, names: DisplayNames) -> list[FigureView]:
    """All patients (per label), then per grouping (a single label only: in multi-label mode
    the groups' curves are in results.json)."""
    curves = _curves(plugin, "reliability")
    if not curves:
        return []
    labels = _labels(plugin)
    method = _method(plugin, "reliability")
    if len(labels) > 1:
        return _label_grids(plugin, curves, labels, names, method, "reliability")
    multi = labels[0] is not None
    figures = []
    for label in labels:
        mine = [c for c in curves if _get(c, "label") == label]
        base = next((c for c in mine if _group_of(c) is None), None)
        overall = _line(base, "all patients", overall=True) if base is not None else None
        if overall is not None and _defined(overall):
            figures.append(_reliability_figure(plugin, [overall], names, label, None, method))
        if multi:
            continue
        groupings: dict[tuple[str, ...], list[Any]] = {}
        for c in mine:
            group = _group_of(c)
            if group is not None:
                groupings.setdefault(tuple(group), []).append(c)
        sizes = _sizes(plugin, label)
        for columns, members in groupings.items():
            left = 0
            if len(members) > MAX_CURVES:
                members = sorted(members, key=lambda c: -sizes.get(tuple(sorted(_group_of(c).items())), 0))
                left = len(members) - MAX_CURVES
                members = members[:MAX_CURVES]
            by_key = {tuple(sorted(_group_of(c).items())): c for c in members}
            ordered = [by_key[tuple(sorted(g.items()))] for g in names.sort_groups(_group_of(c) for c in members)]
            lines = ([overall] if overall is not None else []) + [_line(c, names.group(_group_of(c))) for c in ordered]
            lines = [ln for ln in lines if _defined(ln)]
            if lines:
                figures.append(_reliability_figure(plugin, lines, names, label, columns, method, left))
    return figures


def _reliability_figure(plugin: PluginResult, lines: list[Line], names: DisplayNames, label: str | None,
                        columns: tuple[str, ...] | None, method: str, left: int = 0) -> FigureView:
    top = _axis_top(lines)
    svg = reliability_svg(lines, top)
    who = f"by {names.grouping(columns)}" if columns else ": all patients"
    title = f"Calibration {who}{_label_words(names, label)}".replace(" :", ":")
    items = []
    for ln in lines:
        points = [f"predicted {_pct(ln.xs[i])}: observed {_pct(ln.ys[i])}{_band_text(ln, i)}" for i in _sample(ln)]
        items.append(f"{display_label(ln.name)}, " + ", ".join(points))
    alt = f"Reliability diagram, {title}: observed rate against predicted probability. " + "; ".join(items) + "."
    hidden = any(y is None for ln in lines for y in ln.ys)
    caption = (f"{title}. The observed rate against the model's predicted probability"
               + (f" ({method})" if method else "") + "; dashed diagonal: perfect calibration (observed = "
               "predicted). Above the diagonal the model under-predicts the risk, below it over-predicts it.")
    if columns:
        caption += (" Each line is one group, told apart by colour and dash pattern; the thick black line is all "
                    "patients, its 95% band shaded grey (each group's band is in results.json). A group is drawn "
                    "only when its patients, with and without the condition, all reach the small-cell limit.")
        if left:
            caption += f" {left} smaller group{'s' if left != 1 else ''} not drawn (at most {MAX_CURVES} lines)."
    else:
        caption += " Shaded: the 95% pointwise band."
    if hidden:
        caption += " A break in a line is a value withheld because it rests on a small count."
    caption += f" Both axes run from 0 to {top * 100:.0f}%, the range of the scores shown."
    return FigureView((svg_data_uri(svg),), alt, caption, kind="reliability", title=title)


def _near(line: Line, x: float) -> int | None:
    if not line.xs:
        return None
    i = min(range(len(line.xs)), key=lambda k: abs(line.xs[k] - x))
    return i if abs(line.xs[i] - x) <= 0.0051 else None


def _nb(v: float | None) -> str:
    return "hidden" if v is None else f"{v + 0.0:.3f}"


def decision_figures(plugin: PluginResult, names: DisplayNames) -> list[FigureView]:
    """Per label: the model against treating everyone and no one; then, when the plugin publishes
    them, the model's net benefit at each site (at most :data:`MAX_CURVES` sites). Several
    labels: one panel per label (all patients), in figures of :data:`GRID_PANELS`."""
    model_curves = _curves(plugin, "net_benefit")
    if not model_curves:
        return []
    all_curves = _curves(plugin, "net_benefit_treat_all")
    labels = _labels(plugin)
    if len(labels) > 1:
        return _label_grids(plugin, model_curves + all_curves, labels, names, "", "decision")
    figures = []
    for label in labels:
        mine = [c for c in model_curves if _get(c, "label") == label]
        base = next((c for c in mine if _group_of(c) is None), None)
        treat = next((c for c in all_curves if _get(c, "label") == label and _group_of(c) is None), None)
        treat_line = _line(treat, "treat everyone") if treat is not None else None
        if base is not None:
            model = _line(base, "model", overall=True)
            if _defined(model):
                figures.append(_decision_figure(plugin, [model], treat_line, names, label))
        sites = [c for c in mine if _group_of(c) is not None]
        if sites and len(sites) <= MAX_CURVES:
            ordered = names.sort_groups(_group_of(c) for c in sites)
            by_key = {tuple(sorted(_group_of(c).items())): c for c in sites}
            lines = ([_line(base, "model, all patients", overall=True)] if base is not None else [])
            lines += [_line(by_key[tuple(sorted(g.items()))], names.group(g)) for g in ordered]
            lines = [ln for ln in lines if _defined(ln)]
            if lines:
                columns = tuple(_group_of(sites[0]))
                figures.append(_decision_figure(plugin, lines, None, names, label, columns))
    return figures


def _decision_figure(plugin: PluginResult, model: list[Line], treat_all: Line | None, names: DisplayNames,
                     label: str | None, columns: tuple[str, ...] | None = None) -> FigureView:
    merged = Line("", (), tuple(v for ln in model for v in ln.ys), None,
                  tuple(v for ln in model for v in (ln.high or ())) or None)
    bottom, top, cut = _decision_limits(merged, treat_all)
    svg = decision_svg(model, treat_all, bottom, top)
    who = f" by {names.grouping(columns)}" if columns else ""
    title = f"Decision curve{who}{_label_words(names, label)}"
    xs = model[0].xs
    at = list(dict.fromkeys(i for x in ALT_THRESHOLDS if xs and min(xs) - 1e-9 <= x <= max(xs) + 1e-9
                            for i in [_near(model[0], x)] if i is not None))
    items = []
    for i in at:
        parts = [f"{display_label(ln.name)} {_nb(ln.ys[i] if i < len(ln.ys) else None)}"
                 + (f" ({ln.low[i]:.3f} to {ln.high[i]:.3f})" if ln.low and ln.high and ln.low[i] is not None
                    and ln.high[i] is not None and ln.ys[i] is not None else "") for ln in model]
        if treat_all is not None and i < len(treat_all.ys):
            parts.append(f"treat everyone {_nb(treat_all.ys[i])}")
        parts.append("treat no one 0")
        items.append(f"at a threshold of {_pct(xs[i])}: " + ", ".join(parts))
    alt = f"{title}: net benefit against the decision threshold; " + "; ".join(items) + "."
    caption = (f"{title}. Net benefit: the patients with the condition whom acting on the model would treat, "
               "less those without it, weighted by the odds of the threshold, per patient (Vickers and Elkin). "
               "Solid black line at 0: treating no one")
    if treat_all is not None:
        caption += "; dashed line: treating everyone"
    if columns:
        caption += ("; each coloured line is one site (colour and dash pattern), the thick black line all "
                    "patients; each site's band is in results.json")
    elif model and model[0].low is not None:
        caption += "; shaded: the model's 95% pointwise band"
    caption += (". The model helps where its line lies above treating no one" if columns or treat_all is None
                else ". The model helps where its line lies above both alternatives")
    if any(y is None for ln in model for y in ln.ys):
        caption += "; a break in a line is a value withheld because it rests on a small count"
    if cut:
        caption += f". The y axis is cut at {bottom:.3f}: treating everyone falls further below as the threshold rises"
    return FigureView((svg_data_uri(svg),), alt, caption + ".", kind="decision", title=title)


# -- several labels: one panel per label ---------------------------------------------------------
# Panels of one figure (4 × 4); more labels make more figures.
GRID_PANELS = 16
GRID_COLUMNS = 4


def _decision_limits(model: Line, treat_all: Line | None) -> tuple[float, float, bool]:
    values = [v for v in (*model.ys, *(model.high or ())) if v is not None]
    values += [v for v in (treat_all.ys if treat_all else ()) if v is not None]
    top = max([0.0, *values]) * 1.15 or 0.05
    lowest = min([0.0, *values])
    floor = -0.25 * top
    bottom = max(lowest * 1.05, floor) if lowest < 0 else -0.05 * top
    return bottom, top, lowest < floor


def grid_svg(panels: list[tuple[str, Line, Line | None]], kind: str) -> str:
    """Small multiples: a panel per label, each on its own range. ``kind`` "reliability" (observed
    against predicted, the band, the diagonal; the same range on both axes) or "decision" (the
    model's net benefit with its band, treating everyone dashed, treating no one at 0)."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    rows = math.ceil(len(panels) / GRID_COLUMNS)
    percent = FuncFormatter(lambda v, _: f"{v * 100:.0f}%")
    with matplotlib.rc_context({**_RC, "font.size": 7}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(7.5, 1.9 * rows + 0.4), layout="constrained")
        axes = fig.subplots(rows, GRID_COLUMNS, squeeze=False)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax, (title, line, other) in zip(axes.flat, panels, strict=False):
            if line.low is not None and line.high is not None:
                ax.fill_between(line.xs, _nan(line.low), _nan(line.high), color=BLUE, alpha=0.25, linewidth=0)
            if kind == "reliability":
                top = _axis_top([line])
                ax.plot([0, top], [0, top], color=GREY, linestyle="--", linewidth=0.8)
                ax.set_xlim(0.0, top)
                ax.set_ylim(0.0, top)
                ax.yaxis.set_major_formatter(percent)
            else:
                bottom, top, _ = _decision_limits(line, other)
                ax.axhline(0.0, color=BLACK, linewidth=0.8)
                if other is not None:
                    ax.plot(other.xs, _nan(other.ys), color=VERMILLION, linestyle="--", linewidth=1.0)
                ax.set_ylim(bottom, top)
                ax.set_xlim(min(line.xs), max(line.xs) if max(line.xs) > min(line.xs) else min(line.xs) + 0.01)
            ax.plot(line.xs, _nan(line.ys), color=BLUE, linewidth=1.4)
            ax.xaxis.set_major_formatter(percent)
            ax.set_title(_short(title), fontsize=7.5, loc="left")
            ax.tick_params(labelsize=6)
            _style(ax)
        if kind == "reliability":
            fig.supxlabel("Predicted probability", fontsize=7.5)
            fig.supylabel("Observed rate", fontsize=7.5)
        else:
            fig.supxlabel("Decision threshold", fontsize=7.5)
            fig.supylabel("Net benefit (per patient)", fontsize=7.5)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _label_grids(plugin: PluginResult, curves: list[Any], labels: list[str | None], names: DisplayNames,
                 method: str, kind: str) -> list[FigureView]:
    """Several labels: all patients' curve of each label, one panel each (the groups' curves
    are in results.json)."""
    panels: list[tuple[str, Line, Line | None]] = []
    for label in labels:
        title = names.label_name(label) if label is not None else "all labels"
        if kind == "reliability":
            base = next((c for c in curves if _get(c, "label") == label and _group_of(c) is None), None)
            other = None
        else:
            base = next((c for c in curves if _get(c, "id") == "net_benefit" and _get(c, "label") == label
                         and _group_of(c) is None), None)
            treat = next((c for c in curves if _get(c, "id") == "net_benefit_treat_all" and _get(c, "label") == label
                          and _group_of(c) is None), None)
            other = _line(treat, "treat everyone") if treat is not None else None
        if base is None:
            continue
        line = _line(base, title, overall=True)
        if _defined(line):
            panels.append((title, line, other))
    figures = []
    for start in range(0, len(panels), GRID_PANELS):
        part = panels[start:start + GRID_PANELS]
        svg = grid_svg(part, kind)
        items = []
        for title, line, other in part:
            if kind == "reliability":
                points = [f"predicted {_pct(line.xs[i])}: observed {_pct(line.ys[i])}{_band_text(line, i)}"
                          for i in _sample(line)]
            else:
                points = [f"at {_pct(line.xs[i])}: model {_nb(line.ys[i])}"
                          + (f", treat everyone {_nb(other.ys[i])}" if other is not None and i < len(other.ys) else "")
                          for i in _sample(line)]
            items.append(f"{display_label(title)}, " + ", ".join(points))
        if kind == "reliability":
            title = "Calibration of all patients, label by label"
            alt = f"Reliability diagrams, {title}: observed rate against predicted probability. "
            caption = (f"{title}: one panel per label, the observed rate against the model's predicted probability"
                       + (f" ({method})" if method else "") + "; shaded: the 95% pointwise band; dashed diagonal: "
                       "perfect calibration. Each panel has its own range, the same on both axes and starting at 0. "
                       "The groups' curves are in results.json.")
        else:
            title = "Decision curves of all patients, label by label"
            alt = f"{title}: net benefit against the decision threshold. "
            caption = (f"{title}: one panel per label, the net benefit of acting on the model (solid, its 95% "
                       "band shaded) against treating everyone (dashed) and no one (0). The model helps where its "
                       "line lies above both. Each panel has its own range; a steep fall of treating everyone is "
                       "cut.")
        if len(panels) > GRID_PANELS:
            caption += f" Labels {start + 1} to {start + len(part)} of {len(panels)}."
        figures.append(FigureView((svg_data_uri(svg),), alt + "; ".join(items) + ".", caption, kind=kind,
                                  title=title))
    return figures


# -- tables ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CalibrationTable:
    table: GroupTable
    hidden_line: str
    more_line: str
    # Several labels: a label's tables by group are on screen only (the PDF prints the table of
    # all patients label by label, and says where the rest are).
    screen_only: bool = False


def _reorder(table: GroupTable) -> GroupTable:
    """The columns of :data:`TABLE_IDS` in that order (n, positives, slope, intercept, ...)."""
    order = [table.columns.index(c) for c in TABLE_IDS if c in table.columns]
    rows = tuple(replace(r, cells=tuple(r.cells[i] for i in order)) for r in table.rows)
    return replace(table, columns=tuple(table.columns[i] for i in order),
                   headers=tuple(table.headers[i] for i in order), rows=rows, key_metric=None, key_index=None,
                   forest=None, gap_forest=None)


def _all_hidden(row: Row) -> bool:
    return not row.overall and all(c.state in ("suppressed", "missing") for c in row.cells)


def calibration_tables(plugin: PluginResult, limit: int, names: DisplayNames) -> list[CalibrationTable]:
    """One table per (label, grouping): all patients first, then the groups; a group whose every
    value is hidden is counted, not a row; at most :data:`MAX_TABLE_ROWS` rows."""
    metrics = tuple(m for m in plugin.metrics if m.id in TABLE_IDS and m.reference is None)
    if not any(m.id in CAL_IDS for m in metrics):
        return []
    out = []
    labels = _labels(plugin)
    multi = len(labels) > 1
    if multi:
        out.append(_by_label(metrics, labels, limit, names))
    for t in group_tables(replace(plugin, metrics=metrics, settings={}), limit, names):
        if multi and not t.grouping:
            continue
        t = _reorder(t)
        hidden = [r for r in t.rows if _all_hidden(r)]
        # Each flag once, without the reason of one value ("under_powered (no events: ...)").
        rows = [replace(r, flags=tuple(dict.fromkeys(f.split(" (", 1)[0] for f in r.flags)))
                for r in t.rows if not _all_hidden(r)]
        more = max(0, len(rows) - MAX_TABLE_ROWS)
        t = replace(t, rows=tuple(rows[:MAX_TABLE_ROWS]), caption=t.caption.replace("Results by", "Calibration by"))
        hidden_line = (f"{len(hidden)} group{'s' if len(hidden) != 1 else ''} not shown: each rests on, or would "
                       f"reveal, a count below {limit}." if hidden else "")
        more_line = f"And {more} more groups: every number is in results.json." if more else ""
        out.append(CalibrationTable(t, hidden_line, more_line, screen_only=multi))
    return out


def _by_label(metrics: tuple[Metric, ...], labels: list[str | None], limit: int,
              names: DisplayNames) -> CalibrationTable:
    """Several labels: all patients, one row per label."""
    rows = []
    for label in labels:
        recs = {m.id: m for m in metrics if m.group is None and m.label == label}
        if not recs:
            continue
        hidden = any(m.suppressed for m in recs.values())
        cells = (count_cell(recs, "n", hidden, limit), count_cell(recs, "positives", hidden, limit),
                 *(metric_cell(recs.get(mid), limit) for mid in CAL_IDS))
        name = names.label_name(label) if label is not None else "all labels"
        rows.append(Row(shorten(label) if label is not None else name, cells,
                        tuple(dict.fromkeys(f for m in recs.values() for f in m.flags)), name=name))
    columns = TABLE_IDS
    table = GroupTable(title="all patients, label by label", label=None, grouping=(), columns=columns,
                       headers=tuple(display_name(c) for c in columns), rows=tuple(rows), key_metric=None,
                       key_index=None, forest=None, heading="All patients, label by label",
                       caption="Calibration of all patients, one row per label; each value with its 95% confidence "
                               "interval below it.")
    return CalibrationTable(table, "", "")


# -- the section and the first screen -------------------------------------------------------------
@dataclass(frozen=True)
class CalibrationView:
    reliability: tuple[FigureView, ...]
    decision: tuple[FigureView, ...]
    tables: tuple[CalibrationTable, ...]
    note: str  # scores clipped before the logit, when any


def _clipped_note(plugin: PluginResult) -> str:
    clipped = [m for m in plugin.metrics if m.id == "clipped_scores" and m.group is None and not m.suppressed
               and m.value]
    if not clipped:
        return ""
    total = sum(int(m.value) for m in clipped)
    return (f"{total:,} score{'s' if total != 1 else ''} of exactly 0 or 1 were clipped just inside (0, 1) before "
            "the logit of the slope, intercept and calibration-in-the-large; the other values use the scores as given.")


def calibration_view(plugin: PluginResult, limit: int, names: DisplayNames | None = None) -> CalibrationView:
    names = names or DisplayNames()
    return CalibrationView(
        reliability=tuple(reliability_figures(plugin, names)),
        decision=tuple(decision_figures(plugin, names)),
        tables=tuple(calibration_tables(plugin, limit, names)),
        note=_clipped_note(plugin),
    )


def overall_reliability(plugin: PluginResult, names: DisplayNames | None = None) -> FigureView | None:
    """The board edition's one figure: all patients' reliability diagram (the first label's)."""
    names = names or DisplayNames()
    curves = [c for c in _curves(plugin, "reliability") if _group_of(c) is None]
    if not curves:
        return None
    label = _labels(plugin)[0]
    base = next((c for c in curves if _get(c, "label") == label), curves[0])
    line = _line(base, "all patients", overall=True)
    if not _defined(line):
        return None
    return _reliability_figure(plugin, [line], names, _get(base, "label"), None, _method(plugin, "reliability"))


def overall_finding(plugin: PluginResult):
    """The plugin's finding on all patients (``calibration``, or ``calibration_<label>``)."""
    overall = [f for f in plugin.findings if f.group is None and "_by_" not in f.id]
    return next(iter(overall), None) or next(iter(plugin.findings), None)


@dataclass(frozen=True)
class CalibrationLine:
    """One line of "How well the model works overall": "Calibration: slope 0.93 (0.81–1.05), …"."""

    label: str  # "" for a single label
    status: str
    symbol: str
    text: str
    anchor: str


def _two(metric_id: str, m: Metric | None, limit: int) -> str:
    """A value with two decimals and its interval, for the plain line; hidden or undefined in words."""
    if m is None:
        return "not reported"
    if m.suppressed:
        return suppressed_text(limit)
    if m.value is None:
        return metric_parts(m, limit)[0]
    text = f"{m.value + 0.0:.2f}"
    if m.ci is not None:
        lo, hi = m.ci
        sep = " to " if min(lo, hi) < 0 else "–"
        text += f" ({lo + 0.0:.2f}{sep}{hi + 0.0:.2f})"
    return text


# Labels given a line of their own on the first screen; more are counted.
MAX_LINES = 3


def overall_lines(plugin: PluginResult, limit: int) -> list[CalibrationLine]:
    """The first screen's calibration line(s): slope and observed/expected ratio of all patients,
    with intervals, per label (at most :data:`MAX_LINES`); the check's status when it did not run."""
    anchor = plugin_anchor(plugin.plugin)
    if plugin.status in (Status.SKIPPED, Status.ERROR):
        why = plugin.error if plugin.status == Status.ERROR else plugin.summary
        text = ("the check failed: " if plugin.status == Status.ERROR else "not assessed: ") + shorten(why or "", 300)
        return [CalibrationLine("", str(plugin.status), status_symbol(plugin.status), text, anchor)]
    lines = []
    labels = _labels(plugin)
    for label in labels[:MAX_LINES]:
        recs = {m.id: m for m in plugin.metrics if m.group is None and m.label == label and m.id in CAL_IDS}
        if not recs:
            continue
        fid = "calibration" if label is None else f"calibration_{label}"
        finding = next((f for f in plugin.findings if f.id == fid), None) or (
            overall_finding(plugin) if label is None else None)
        status = finding.status if finding is not None else plugin.status
        text = (f"slope {_two('calibration_slope', recs.get('calibration_slope'), limit)}, "
                f"observed/expected {_two('oe_ratio', recs.get('oe_ratio'), limit)}")
        # The plugin's section, which both editions have (a label's finding may be only in the technical one).
        lines.append(CalibrationLine(shorten(label) if label is not None else "", str(status), status_symbol(status),
                                     text, anchor))
    if len(labels) > MAX_LINES and lines:
        rest = len(labels) - MAX_LINES
        lines.append(CalibrationLine("", "", "", f"and {rest} more label{'s' if rest != 1 else ''} in the technical "
                                     "report", anchor))
    return lines


def overall_values(plugin: PluginResult, limit: int) -> list[tuple[str | None, list[tuple[str, str]]]]:
    """Per label, the six values of all patients as (metric id, "0.890 (0.740–1.040)") pairs,
    for the Markdown outputs; a hidden value says why it is hidden."""
    out = []
    for label in _labels(plugin):
        recs = {m.id: m for m in plugin.metrics if m.group is None and m.label == label and m.id in CAL_IDS}
        if not recs:
            continue
        values = [(mid, f"suppressed ({suppressed_why(limit)})" if recs[mid].suppressed
                   else metric_text(recs[mid], limit)) for mid in CAL_IDS if mid in recs]
        out.append((label, values))
    return out
