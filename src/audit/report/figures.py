"""Forest plots as self-contained SVG data URIs.

Built on :class:`matplotlib.figure.Figure` directly (no pyplot): no global figure registry to
leak, no GUI backend, nothing to close. The SVG is deterministic (fixed hash salt, no date) so
re-rendering a report from results.json gives the same bytes. Text stays SVG text in a
sans-serif font stack (the viewer's own fonts; nothing is loaded): a third of the size of
glyph paths, so a report with many groupings stays small, and any script renders.
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import replace

from audit.report.formatting import display_name, is_rate
from audit.report.text import display_label
from audit.report.view import ForestData

# Okabe–Ito, safe for the common colour-vision deficiencies.
BLUE = "#0072B2"
VERMILLION = "#D55E00"
GREY = "#999999"

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


def _limits(data: ForestData) -> tuple[float, float] | None:
    values = [v for p in data.points for v in (p.value, *(p.ci or ()))]
    if data.overall is not None:
        values.append(data.overall)
    if not values:
        return None
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 or 0.05
    return lo - pad, hi + pad


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

    rate = is_rate(data.metric_id)
    height = 1.0 + 0.28 * len(points)
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        # Layout uses DejaVu Sans metrics; a name in a script it lacks still renders in the
        # browser (the SVG keeps text as text), so the warning says nothing useful here.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(7.5, height), layout="constrained")
        ax = fig.add_subplot()
        ys = list(range(len(points)))[::-1]
        for y, p in zip(ys, points, strict=True):
            if p.ci is not None:
                ax.hlines(y, p.ci[0], p.ci[1], color=BLUE, linewidth=1.6)
            ax.plot(
                [p.value],
                [y],
                marker="o",
                markersize=6,
                color=BLUE,
                markerfacecolor="white" if p.under_powered else BLUE,
                linestyle="none",
            )
        if data.overall is not None:
            ax.axvline(data.overall, color=VERMILLION, linestyle="--", linewidth=1.2)
        ax.set_yticks(ys, [_short(p.label) for p in points], parse_math=False)
        ax.set_ylim(-0.7, len(points) - 0.3)
        if xlim is not None:
            ax.set_xlim(*xlim)
        if rate:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.0f}%"))
        ax.set_xlabel(display_label(display_name(data.metric_id)), parse_math=False)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
