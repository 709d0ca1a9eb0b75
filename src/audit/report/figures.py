"""Forest plots and miss-rate-by-threshold plots as self-contained SVG data URIs.

A forest plot never exaggerates: rates are drawn on 0–100%, gaps on a range symmetric about
0 that includes the plugin's tolerance, and the tolerance itself is drawn (for rates at the
overall value plus the tolerance, the line a group crosses when its gap to all patients
exceeds it). Ordinal groups come in reading order (:mod:`audit.report.view`). Every figure
comes with an alt text that carries its numbers and a caption that explains every mark
(:class:`FigureView`, :func:`forest_figure`, :func:`threshold_figures`; the macros of
``_figures.html.j2`` show them).

Built on :class:`matplotlib.figure.Figure` directly (no pyplot): no global figure registry to
leak, no GUI backend, nothing to close. The SVG is deterministic (fixed hash salt, no date) so
re-rendering a report from results.json gives the same bytes. Text stays SVG text in a
sans-serif font stack (the viewer's own fonts; nothing is loaded): a third of the size of
glyph paths, so a report with many groupings stays small, and any script renders.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from audit.core.results import PluginResult
from audit.report.formatting import base_id, display_name, fmt_interval, fmt_number, is_rate
from audit.report.names import DisplayNames
from audit.report.text import display_label
from audit.report.view import ForestData

# Okabe–Ito, safe for the common colour-vision deficiencies.
BLUE = "#0072B2"
VERMILLION = "#D55E00"
GREY = "#999999"
BLACK = "#000000"
# Okabe–Ito for the lines of a threshold plot, each with its own dash pattern as well.
LINE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))
# Groups in one threshold plot: more lines than this cannot be told apart.
MAX_CURVES = len(LINE_COLOURS)
# Points of a curve drawn: a long threshold grid is thinned to this many, so the SVG stays small.
MAX_CURVE_POINTS = 61

_RC = {
    "svg.hashsalt": "future-audit",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9,
}
_MAX_LABEL = 40
# Rows per figure: at 0.28 in a row the 9 pt labels never overlap, and a figure of this
# many rows still fits one A4 page of the PDF.
MAX_ROWS = 30


def _short(label: str) -> str:
    """A group label as the plot shows it: no control characters (the SVG must stay XML)
    nor bidi controls, at most 40 characters (the table has the label as the report shows it)."""
    return display_label(label, _MAX_LABEL)


def _is_gap(metric_id: str) -> bool:
    return base_id(metric_id) != metric_id


def _limits(data: ForestData) -> tuple[float, float] | None:
    """The x range: 0–100% for a rate; for a gap symmetric about 0, wide enough for every
    interval and the tolerance; for a score (AUROC, Brier) the data, 0 included."""
    values = [v for p in data.points for v in (p.value, *(p.ci or ()))]
    if data.overall is not None and not _is_gap(data.metric_id):
        values.append(data.overall)
    if not values:
        return None
    if _is_gap(data.metric_id):
        reach = max([abs(v) for v in values] + [data.tolerance or 0.0])
        if is_rate(base_id(data.metric_id)):
            reach = min(max(reach, 0.05), 1.0)
        reach = (reach or 0.05) * 1.1
        return -reach, reach
    if is_rate(data.metric_id):
        return 0.0, 1.0
    lo, hi = min(0.0, *values), max(values)
    pad = (hi - lo) * 0.05 or 0.05
    return lo - (pad if lo < 0 else 0.0), hi + pad


def _tolerance_line(data: ForestData) -> float | None:
    """Where the tolerance is drawn: at +tolerance on a gap plot, at overall + tolerance on
    a plot of the rate itself (the rate at which a group's gap to all patients exceeds it)."""
    if data.tolerance is None:
        return None
    if _is_gap(data.metric_id):
        return data.tolerance
    if data.overall is not None and is_rate(data.metric_id):
        line = data.overall + data.tolerance
        return line if line <= 1 else None
    return None


def _name(p) -> str:
    return p.name or p.label


def forest_svgs(data: ForestData, max_rows: int = MAX_ROWS) -> list[str]:
    """The forest plot of ``data``, split into figures of at most ``max_rows`` groups.

    Every part shares one x axis, so groups in different parts compare by eye. Empty when
    no group has a value to plot.
    """
    points = data.points
    xlim = _limits(data)
    chunks = [points[i : i + max_rows] for i in range(0, len(points), max_rows)]
    return [svg for chunk in chunks if (svg := forest_svg(replace(data, points=chunk), xlim)) is not None]


def forest_svg(data: ForestData, xlim: tuple[float, float] | None = None) -> str | None:
    """A forest plot of one metric by group: point, interval whiskers, overall line.

    Returns the SVG text, or None when no group has a value to plot. ``xlim`` fixes the
    x axis (parts of one split plot share it).
    """
    points = data.points
    if not points:
        return None
    # Imported here: only reports with figures pay matplotlib's import time.
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    gap = _is_gap(data.metric_id)
    rate = is_rate(base_id(data.metric_id))
    if xlim is None:
        xlim = _limits(data)
    tolerance = _tolerance_line(data)
    height = 1.0 + 0.28 * len(points)
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        # Layout uses DejaVu Sans metrics; a name in a script it lacks still renders in the
        # browser (the SVG keeps text as text), so the warning says nothing useful here.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        labels = [_short(_name(p)) for p in points]
        xlabel = DisplayNames.metric(data.metric_id)
        xlabel = display_label(xlabel[:1].upper() + xlabel[1:])
        fig = Figure(figsize=(7.5, height))
        # Margins from the labels' measured widths: matplotlib's constrained layout solver
        # took half of a figure's time, and a report draws one figure per grouping and label.
        _fit_margins(fig, left=labels, bottom_lines=2)
        ax = fig.add_subplot()
        ys = list(range(len(points)))[::-1]
        whiskers = [(y, p.ci) for y, p in zip(ys, points, strict=True) if p.ci is not None]
        if whiskers:
            ax.hlines([y for y, _ in whiskers], [ci[0] for _, ci in whiskers], [ci[1] for _, ci in whiskers],
                      color=BLUE, linewidth=1.6)
        for open_dot in (False, True):  # one call per marker style, not one per group
            dots = [(p.value, y) for y, p in zip(ys, points, strict=True) if bool(p.under_powered) is open_dot]
            if dots:
                ax.plot([v for v, _ in dots], [y for _, y in dots], marker="o", markersize=6, color=BLUE,
                        markerfacecolor="white" if open_dot else BLUE, linestyle="none")
        if gap:
            ax.axvline(0.0, color=BLACK, linewidth=0.8)
        elif data.overall is not None:
            ax.axvline(data.overall, color=VERMILLION, linestyle="--", linewidth=1.2)
        if tolerance is not None:
            ax.axvline(tolerance, color=BLACK, linestyle=":", linewidth=1.2)
        ax.set_yticks(ys, labels, parse_math=False)
        ax.set_ylim(-0.7, len(points) - 0.3)
        if xlim is not None:
            ax.set_xlim(*xlim)
        if rate and gap:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:+.0f} pp" if v else "0"))
        elif rate:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.0f}%"))
        ax.set_xlabel(xlabel, parse_math=False)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _text_width(texts: list[str], size: float) -> float:
    """Width in inches of the widest of ``texts`` at ``size`` points in the figures' font."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    if not texts:
        return 0.0
    # DejaVu Sans, the font matplotlib lays the figures out with (it ships with matplotlib).
    prop = FontProperties(family="DejaVu Sans", size=size)
    measure = TextToPath()
    return max(measure.get_text_width_height_descent(t, prop, ismath=False)[0] for t in texts) / 72.0


def _fit_margins(fig, *, left: list[str], bottom_lines: int, left_label: bool = False,
                 right: list[str] | None = None, right_font: float = 9.0, right_extra: float = 0.0) -> None:
    """Set the axes' margins so that the tick labels (``left``), an axis label under the
    axis (``bottom_lines`` lines of text with the tick labels), a y-axis label
    (``left_label``) and a legend to the right (``right``, with ``right_extra`` inches for its
    line samples) fit inside the figure."""
    width, height = fig.get_size_inches()
    size = _RC["font.size"]
    line = size * 1.4 / 72.0
    pad = 0.12
    left_in = _text_width(left, size) + pad + 0.08 + (line if left_label else 0.0)
    right_in = (_text_width(right, right_font) + right_extra + pad) if right else 0.25
    bottom_in = bottom_lines * line + 0.15
    fig.subplots_adjust(left=min(left_in / width, 0.6), right=max(1.0 - right_in / width, 0.45),
                        bottom=min(bottom_in / height, 0.5), top=1.0 - 0.08 / height)


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


# -- figures with their words -------------------------------------------------------------
@dataclass(frozen=True)
class FigureView:
    """One figure as the report shows it (the ``figure`` macro of ``_figures.html.j2``).

    ``uris``: the SVG parts (a forest plot of many groups is split, on one scale); ``alt``:
    the alternative text, with the numbers; ``caption``: every mark explained; ``suppressed``
    and ``undefined``: the groups not drawn, in words (undefined with its reason).
    """

    uris: tuple[str, ...]
    alt: str
    caption: str
    suppressed: tuple[str, ...] = ()
    undefined: tuple[tuple[str, str], ...] = ()
    kind: str = "forest"  # forest (a rate or score), gap, threshold
    title: str = ""


# Groups whose numbers an alt text lists; the rest are in the table next to the figure.
MAX_ALT_GROUPS = 40


def _points_text(metric_id: str, value: float, ci: tuple[float, float] | None) -> str:
    text = fmt_number(metric_id, value)
    return f"{text} {fmt_interval(metric_id, ci)}" if ci is not None else text


def _tolerance_words(data: ForestData) -> str:
    tol = data.tolerance
    if tol is None:
        return ""
    if is_rate(base_id(data.metric_id)):
        return f"{round(tol * 100, 1):g} percentage points"
    return f"{tol:g}"


def forest_alt(data: ForestData) -> str:
    """The alt text of a forest plot: what it shows and every group's number (at most
    :data:`MAX_ALT_GROUPS`, the rest are in the table)."""
    title = data.title or display_name(data.metric_id)
    kind = "Gap plot" if _is_gap(data.metric_id) else "Forest plot"
    items = [
        f"{display_label(_name(p))} {_points_text(data.metric_id, p.value, p.ci)}"
        + (" (under-powered)" if p.under_powered else "")
        for p in data.points[:MAX_ALT_GROUPS]
    ]
    text = f"{kind} of {display_label(title, 200)}: " + "; ".join(items)
    if len(data.points) > MAX_ALT_GROUPS:
        text += f"; and {len(data.points) - MAX_ALT_GROUPS} more groups (see the table)"
    if data.overall is not None and not _is_gap(data.metric_id):
        text += f". All patients: {fmt_number(data.metric_id, data.overall)}"
    if data.tolerance is not None:
        text += f". Tolerance of the check: {_tolerance_words(data)}"
    return text + "."


def forest_caption(data: ForestData, parts: int = 1) -> str:
    """The caption of a forest plot: every mark, the axis and the tolerance explained."""
    title = data.title or display_name(data.metric_id)
    gap = _is_gap(data.metric_id)
    rate = is_rate(base_id(data.metric_id))
    text = f"{title}. Dot: the group's estimate; whisker: its confidence interval"
    if gap:
        text += "; solid line: no gap (positive means the group does worse than all patients)"
    elif data.overall is not None:
        text += f"; dashed line: all patients ({fmt_number(data.metric_id, data.overall)})"
    line = _tolerance_line(data)
    if line is not None:
        tol = _tolerance_words(data)
        if gap:
            text += f"; dotted line: the check's tolerance of {tol}, above which a gap is worth review"
        else:
            text += (f"; dotted line: all patients plus the check's tolerance of {tol} "
                     f"({fmt_number(data.metric_id, line)}), the rate above which a group's gap is worth review")
    if any(p.under_powered for p in data.points):
        rule = data.under_powered_rule or "too few patients or too few with the condition"
        text += f"; open dot: {rule}; it decides nothing"
    if gap:
        text += ". The axis is symmetric about 0"
    elif rate:
        text += ". The axis runs from 0 to 100%"
    if parts > 1:
        text += f". {len(data.points)} groups in {parts} parts, on one scale"
    return text + "."


def forest_figure(data: ForestData | None, max_rows: int = MAX_ROWS) -> FigureView | None:
    """The forest plot of ``data`` with its alt text and caption; None when there is nothing
    to show (no point, and no group hidden or undefined to mention)."""
    if data is None:
        return None
    svgs = forest_svgs(data, max_rows)
    if not svgs and not data.suppressed and not data.undefined:
        return None
    return FigureView(
        uris=tuple(svg_data_uri(svg) for svg in svgs),
        alt=forest_alt(data),
        caption=forest_caption(data, len(svgs)),
        suppressed=data.suppressed_names or data.suppressed,
        undefined=data.undefined_names or data.undefined,
        kind="gap" if _is_gap(data.metric_id) else "forest",
        title=data.title or display_name(data.metric_id),
    )


# -- miss rate across thresholds -----------------------------------------------------------
def _get(curve: Any, name: str, default: Any = None) -> Any:
    return curve.get(name, default) if isinstance(curve, Mapping) else getattr(curve, name, default)


def _curves(plugin: PluginResult, curve_id: str = "fnr_by_threshold") -> list[Any]:
    """The plugin's curves of this id (``PluginResult.curves``; none in older results)."""
    curves = getattr(plugin, "curves", None) or ()
    return [c for c in curves if _get(c, "id") == curve_id and _get(c, "thresholds")]


def _thin(xs: list[float], ys: list[float | None], keep: float | None) -> tuple[list[float], list[float | None]]:
    """At most :data:`MAX_CURVE_POINTS` points, evenly spaced, keeping the one nearest ``keep``."""
    if len(xs) <= MAX_CURVE_POINTS:
        return xs, ys
    step = (len(xs) - 1) / (MAX_CURVE_POINTS - 1)
    idx = {round(i * step) for i in range(MAX_CURVE_POINTS)}
    if keep is not None:
        idx.add(min(range(len(xs)), key=lambda i: abs(xs[i] - keep)))
    order = sorted(idx)
    return [xs[i] for i in order], [ys[i] for i in order]


def _at(xs: list[float], ys: list[float | None], x: float | None) -> float | None:
    """The curve's value at the threshold nearest ``x`` (None when hidden or unknown)."""
    if x is None or not xs:
        return None
    i = min(range(len(xs)), key=lambda k: abs(xs[k] - x))
    return ys[i]


def _group_of(curve: Any) -> dict[str, str] | None:
    group = _get(curve, "group")
    return {str(k): str(v) for k, v in group.items()} if isinstance(group, Mapping) and group else None


def _series(curve: Any) -> tuple[list[float], list[float | None]]:
    xs = [float(t) for t in _get(curve, "thresholds", ())]
    ys = [None if v is None or not math.isfinite(float(v)) else float(v) for v in _get(curve, "values", ())]
    n = min(len(xs), len(ys))
    return xs[:n], ys[:n]


def threshold_svg(lines: list[tuple[str, list[float], list[float | None], bool]],
                  operating_point: float | None, ylabel: str) -> str:
    """One plot of miss rate (0–100%) against the threshold: a line per (name, xs, ys,
    overall), hidden values leave a gap, the operating point a dotted vertical line and a dot
    on every line."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(7.5, 3.4))
        legend = [_short(name) for name, *_ in lines]
        _fit_margins(fig, left=["100%"], left_label=True, bottom_lines=2, right=legend, right_font=8,
                     right_extra=0.55)
        ax = fig.add_subplot()
        lo = min(x for _, xs, _, _ in lines for x in xs)
        hi = max(x for _, xs, _, _ in lines for x in xs)
        for i, (name, xs, ys, overall) in enumerate(lines):
            colour = BLACK if overall else LINE_COLOURS[i % len(LINE_COLOURS)]
            style = "-" if overall else LINE_STYLES[i % len(LINE_STYLES)]
            xs_t, ys_t = _thin(xs, ys, operating_point)
            ax.plot(xs_t, [math.nan if y is None else y for y in ys_t], color=colour, linestyle=style,
                    linewidth=2.0 if overall else 1.4, label=_short(name))
            at = _at(xs, ys, operating_point)
            if at is not None:
                ax.plot([operating_point], [at], marker="o", markersize=5, color=colour, linestyle="none")
        if operating_point is not None:
            ax.axvline(operating_point, color=GREY, linestyle=":", linewidth=1.2)
        ax.set_xlim(lo, hi if hi > lo else lo + 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.0f}%"))
        ax.set_xlabel("Decision threshold (score at or above it counts as positive)", parse_math=False)
        ax.set_ylabel(display_label(ylabel), parse_math=False)
        ax.grid(color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def threshold_figures(plugin: PluginResult, names: DisplayNames | None = None) -> list[FigureView]:
    """Each group's miss rate across thresholds, one figure per (label, grouping), with the
    operating point marked: from the plugin's ``fnr_by_threshold`` curves; none when it has
    none. A grouping with more than :data:`MAX_CURVES` groups is not drawn (its lines could
    not be told apart; the forest plot shows it at the operating point)."""
    names = names or DisplayNames()
    curves = _curves(plugin)
    if not curves:
        return []
    overall: dict[str | None, Any] = {}
    groupings: dict[tuple[str | None, tuple[str, ...]], list[Any]] = {}
    for c in curves:
        group = _group_of(c)
        label = _get(c, "label")
        if group is None:
            overall.setdefault(label, c)
        else:
            groupings.setdefault((label, tuple(group)), []).append(c)
    figures = []
    for (label, columns), members in groupings.items():
        if len(members) > MAX_CURVES:
            continue
        by_key = {tuple(sorted(_group_of(c).items())): c for c in members}
        ordered = [by_key[tuple(sorted(g.items()))] for g in names.sort_groups(_group_of(c) for c in members)]
        base = overall.get(label)
        op = next((_get(c, "operating_point") for c in [base, *ordered] if c is not None
                   and _get(c, "operating_point") is not None), None)
        op = None if op is None else float(op)
        lines = []
        if base is not None:
            lines.append(("all patients", *_series(base), True))
        lines += [(names.group(_group_of(c)), *_series(c), False) for c in ordered]
        lines = [line for line in lines if line[1]]
        if not lines:
            continue
        label_words = f" ({names.label_name(label)})" if label is not None else ""
        title = f"Missed cases (FNR) across thresholds by {names.grouping(columns)}{label_words}"
        svg = threshold_svg(lines, op, "Missed cases (FNR)")
        at_op = []
        for name, xs, ys, _ in lines:
            v = _at(xs, ys, op)
            at_op.append(f"{display_label(name)} {'hidden' if v is None else fmt_number('fnr', v)}")
        op_text = f"{op:.3g}" if op is not None else "not recorded"
        alt = f"Line plot of {title}. At the operating point ({op_text}): " + "; ".join(at_op) + "."
        hidden = any(y is None for _, _, ys, _ in lines for y in ys)
        caption = (
            f"{title}. Each line is one group, told apart by colour and dash pattern"
            + ("; the thick black line is all patients" if base is not None else "")
            + f". The dotted vertical line is the operating point ({op_text}), the one threshold every "
            "group shares; a dot marks each group's miss rate there. Moving the threshold trades missed "
            "cases against false alarms for every group at once"
            + ("; a break in a line is a value hidden because it rests on a small count" if hidden else "")
            + "."
        )
        figures.append(FigureView((svg_data_uri(svg),), alt, caption, kind="threshold", title=title))
    return figures

