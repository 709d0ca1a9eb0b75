"""The Universality section: how the model transfers across sites, from the universality plugin.

The generic views (a table of every metric by group, gap matrices) do not suit a plugin whose
groups are sites: an audit of 77 collection sites made 77 rows × 30 metrics, most of them
hidden, and a PDF that did not finish in two minutes. This module gives the section its own
views instead (:func:`universality_view`):

- a forest plot of the key metric (AUROC) by site with its confidence intervals: published
  sites only, the development site first and marked (a square), under-powered sites as open
  dots; the pooled value as a diamond (its confidence interval) and the prediction interval
  for a new site as a bar; the axis includes 0.5 and 1 (for AUROC) and is not stretched to
  the data; the alt text carries every number;
- a compact table, one row per published site (at most :data:`MAX_SITE_ROWS`, the rest
  counted): n, positives, AUROC, sensitivity, specificity, O/E, calibration slope and the
  sensitivity the shared threshold costs the site, each with its interval. A site whose every
  value is hidden is not a row: such sites are counted in one line;
- the heterogeneity between sites: per pooled metric the pooled value, the prediction
  interval, tau², I² and the Q test, with the method in the caption;
- the fairness plugin's key gap within each site (``fnr_gap_overall`` by site × group),
  published cells only.

:func:`universality_parts` is the verdict's plain sentence ("Across 4 sites AUROC ranged from
0.55 (QLD) to 0.68 (NSW); in a new site expect 0.42 to 0.80 (95% prediction interval).").

The plugin is recognised by its name (``universality``); nothing here imports it. Site names
come from the data: they stay names (:class:`~audit.report.text.Name`, the ``user`` filter)
until the output escapes them, and are cleaned and shortened in figures.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass

from markupsafe import Markup

from audit.core.results import Metric, PluginResult, Status
from audit.report.figures import (
    _RC,
    BLACK,
    BLUE,
    GREY,
    MAX_ROWS,
    VERMILLION,
    FigureView,
    _short,
    svg_data_uri,
)
from audit.report.formatting import (
    DASH,
    display_name,
    flag_texts,
    fmt_interval,
    fmt_number,
    fmt_p,
    is_rate,
    suppressed_why,
)
from audit.report.names import DisplayNames
from audit.report.text import Name, Part, display_label, phrase_html
from audit.report.view import Cell, count_cell, metric_cell, under_powered_rule

PLUGIN = "universality"
# The plugin's pseudo-site for the reference data, when that is the development data.
REFERENCE_SITE = "(reference data)"
POOLED = ("auroc", "sensitivity", "specificity", "calibration_slope", "oe_ratio")
SUFFIXES = ("pooled", "pi_low", "pi_high", "tau2", "i2", "q")
# The per-site table's value columns, after n and positives.
TABLE_IDS = ("auroc", "sensitivity", "specificity", "oe_ratio", "calibration_slope", "sensitivity_transfer_loss")
# Rows of the per-site table (and of the within-site fairness table); more are counted.
MAX_SITE_ROWS = 40
# Sites drawn in the forest plot (the largest, the development site first): it stays one figure.
MAX_FOREST_SITES = MAX_ROWS
# Sites whose numbers an alt text lists; the rest are in the table.
MAX_ALT_SITES = 40
# The analysis scale of tau², by pooled metric (the plugin's ci_method says it when it can).
_SCALES = {"auroc": "logit", "sensitivity": "logit", "specificity": "logit", "calibration_slope": "identity",
           "oe_ratio": "log"}
_SCALE_RE = re.compile(r"tau² on the (\w+) scale")


def is_universality(plugin: PluginResult) -> bool:
    return plugin.plugin == PLUGIN


def key_metric(plugin: PluginResult) -> str:
    key = plugin.settings.get("key_metric")
    return key if isinstance(key, str) and key else "auroc"


def site_column(plugin: PluginResult) -> str | None:
    col = plugin.settings.get("site_column")
    if isinstance(col, str) and col:
        return col
    return next((next(iter(m.group)) for m in plugin.metrics if m.group and len(m.group) == 1), None)


def development_site(plugin: PluginResult) -> str | None:
    dev = plugin.settings.get("development_site")
    return str(dev) if dev is not None else None


def site_records(plugin: PluginResult, col: str) -> dict[str, dict[str, Metric]]:
    """site → {metric id → record} of the per-site values (not gaps), in the plugin's order."""
    out: dict[str, dict[str, Metric]] = {}
    for m in plugin.metrics:
        if m.group and len(m.group) == 1 and col in m.group and m.reference is None and m.label is None:
            out.setdefault(m.group[col], {}).setdefault(m.id, m)
    return out


def pooled_records(plugin: PluginResult, metric: str) -> dict[str, Metric]:
    """suffix (pooled, pi_low, ...) → the pooled record of ``metric``."""
    ids = {f"{metric}_{s}": s for s in SUFFIXES}
    return {ids[m.id]: m for m in plugin.metrics if m.group is None and m.label is None and m.id in ids}


def _all_hidden(records: dict[str, Metric]) -> bool:
    """Nothing of the site can be shown: every value is hidden or undefined (an undefined value
    of a site whose counts are all hidden says nothing a reader can use)."""
    return not any(not m.suppressed and m.value is not None for m in records.values())


def _size(records: dict[str, Metric]) -> float:
    n = records.get("n")
    return n.value if n is not None and not n.suppressed and n.value is not None else -1.0


def ordered_sites(plugin: PluginResult, col: str, names: DisplayNames) -> list[tuple[str, dict[str, Metric]]]:
    """The published sites (at least one value shown): the development site first, then by
    size, largest first (ties in reading order)."""
    sites = site_records(plugin, col)
    dev = development_site(plugin)
    reading = {s: i for i, s in enumerate(names.order(col, sites))}
    shown = [(s, r) for s, r in sites.items() if not _all_hidden(r)]
    return sorted(shown, key=lambda sr: (sr[0] != dev, -_size(sr[1]), reading[sr[0]]))


def hidden_sites(plugin: PluginResult, col: str) -> int:
    """Sites whose every value is hidden: counted, never named."""
    return sum(_all_hidden(r) for r in site_records(plugin, col).values())


def site_name(names: DisplayNames, col: str, site: str, dev: str | None = None, *, marked: bool = False) -> str:
    """A site in a table or figure: its value's display name ("NSW"), the reference data in words;
    with ``marked``, "(development)" after the development site."""
    text = "reference data" if site == REFERENCE_SITE else names.value(col, site)
    return f"{text} (development)" if marked and site == dev else text


def site_words(names: DisplayNames, col: str, site: str) -> str:
    """A site in a sentence: "state NSW", "the reference data"."""
    return "the reference data" if site == REFERENCE_SITE else names.group({col: site})


def _shown(m: Metric | None) -> bool:
    return m is not None and not m.suppressed and m.value is not None


def plain_number(metric_id: str, value: float) -> str:
    """A number in a plain sentence: rates as percentages, scores with two decimals."""
    return fmt_number(metric_id, value) if is_rate(metric_id) else f"{value + 0.0:.2f}"


def _level_words(m: Metric | None) -> str:
    level = m.level if m is not None and m.level is not None and 0 < m.level < 1 else 0.95
    return f"{level * 100:g}%"


# -- the forest plot -----------------------------------------------------------------------
@dataclass(frozen=True)
class SitePoint:
    name: str
    value: float
    ci: tuple[float, float] | None
    under_powered: bool
    development: bool


@dataclass(frozen=True)
class SiteForest:
    """What the forest plot draws: the sites, the pooled value and the prediction interval."""

    metric_id: str
    points: tuple[SitePoint, ...]
    pooled: float | None
    pooled_ci: tuple[float, float] | None
    pooled_sites: int
    prediction: tuple[float, float] | None
    level: str  # "95%"
    minimum: float | None  # the value a new site should reach (the finding's threshold)
    not_drawn: str  # sites not drawn, counted, in words
    under_powered_rule: str


def _limits(f: SiteForest) -> tuple[float, float]:
    """0–100% for a rate; for AUROC at least 0.5 to 1 (chance to perfect), wider only where an
    interval reaches further; any other score: the data, 0 included."""
    values = [v for p in f.points for v in (p.value, *(p.ci or ()))]
    values += [v for v in (f.pooled, *(f.pooled_ci or ()), *(f.prediction or ()), f.minimum) if v is not None]
    if is_rate(f.metric_id):
        return 0.0, 1.0
    if f.metric_id == "auroc":
        low = min([0.5, *values])
        return max(0.0, math.floor(low * 10) / 10), 1.0
    lo, hi = min([0.0, *values]), max([1.0, *values])
    pad = (hi - lo) * 0.05
    return lo - (pad if lo < 0 else 0.0), hi + pad


def site_forest_svg(f: SiteForest) -> str:
    """The forest plot: a row per site (point and whisker; the development site a black square,
    an under-powered site an open dot), then the pooled diamond and the prediction-interval bar."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Polygon, Rectangle
    from matplotlib.ticker import FuncFormatter

    rows = len(f.points) + (f.pooled is not None) + (f.prediction is not None)
    summary = (f.pooled is not None) or (f.prediction is not None)
    height = 1.1 + 0.28 * (rows + (0.6 if summary else 0))
    xlim = _limits(f)
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(7.5, height), layout="constrained")
        ax = fig.add_subplot()
        labels: list[tuple[float, str]] = []
        y = float(rows - 1) + (0.6 if summary else 0)
        for p in f.points:
            colour = BLACK if p.development else BLUE
            if p.ci is not None:
                ax.hlines(y, p.ci[0], p.ci[1], color=colour, linewidth=1.6)
            ax.plot([p.value], [y], marker="s" if p.development else "o", markersize=6.5 if p.development else 6,
                    color=colour, markerfacecolor="white" if p.under_powered else colour, linestyle="none")
            labels.append((y, _short(p.name)))
            y -= 1
        if summary:
            ax.axhline(y + 0.7, color="#bbbbbb", linewidth=0.8)
            y -= 0.6
        if f.pooled is not None:
            lo, hi = f.pooled_ci or (f.pooled, f.pooled)
            ax.add_patch(Polygon([(lo, y), (f.pooled, y + 0.32), (hi, y), (f.pooled, y - 0.32)], closed=True,
                                 facecolor=BLACK, edgecolor=BLACK))
            labels.append((y, f"Pooled ({f.pooled_sites} sites)"))
            y -= 1
        if f.prediction is not None:
            lo, hi = f.prediction
            ax.add_patch(Rectangle((lo, y - 0.2), hi - lo, 0.4, facecolor=VERMILLION, alpha=0.35,
                                   edgecolor=VERMILLION, linewidth=1.2))
            labels.append((y, f"New site ({f.level} prediction interval)"))
        if f.pooled is not None:
            ax.axvline(f.pooled, color=BLACK, linestyle="--", linewidth=0.8)
        if f.metric_id == "auroc":
            ax.axvline(0.5, color=GREY, linewidth=1.0)
        if f.minimum is not None:
            ax.axvline(f.minimum, color=VERMILLION, linestyle=":", linewidth=1.4)
        ax.set_yticks([t for t, _ in labels], [text for _, text in labels], parse_math=False)
        top = float(rows - 1) + (0.6 if summary else 0)
        ax.set_ylim(min(t for t, _ in labels) - 0.7, top + 0.7)
        ax.set_xlim(*xlim)
        if is_rate(f.metric_id):
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.0f}%"))
        words = DisplayNames.metric(f.metric_id)
        ax.set_xlabel(display_label(words[:1].upper() + words[1:]), parse_math=False)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _value_text(metric_id: str, value: float, ci: tuple[float, float] | None) -> str:
    text = fmt_number(metric_id, value)
    return f"{text} {fmt_interval(metric_id, ci)}" if ci is not None else text


def _between(metric_id: str, lo: float, hi: float) -> str:
    return f"{fmt_number(metric_id, lo)} to {fmt_number(metric_id, hi)}"


def site_forest_alt(f: SiteForest) -> str:
    name = display_name(f.metric_id)
    items = [f"{display_label(p.name)} {_value_text(f.metric_id, p.value, p.ci)}"
             + (" (under-powered)" if p.under_powered else "") for p in f.points[:MAX_ALT_SITES]]
    text = f"Forest plot of {name} by site, each with its {f.level} confidence interval: " + "; ".join(items)
    if len(f.points) > MAX_ALT_SITES:
        text += f"; and {len(f.points) - MAX_ALT_SITES} more sites (see the table)"
    if f.pooled is not None:
        text += f". Pooled over {f.pooled_sites} sites: {_value_text(f.metric_id, f.pooled, f.pooled_ci)}"
    if f.prediction is not None:
        text += f". {f.level} prediction interval for a new site: {_between(f.metric_id, *f.prediction)}"
    if f.minimum is not None:
        text += f". The check's minimum for a new site: {fmt_number(f.metric_id, f.minimum)}"
    return text + "."


def site_forest_caption(f: SiteForest) -> str:
    name = display_name(f.metric_id)
    text = (f"{name} by site. Dot: the site's estimate; whisker: its {f.level} confidence interval; sites in "
            "order of size, largest first")
    if any(p.development for p in f.points):
        text += "; black square: the development site, drawn first"
    if any(p.under_powered for p in f.points):
        rule = f.under_powered_rule or "too few patients or too few with the condition"
        text += f"; open dot: an under-powered site ({rule}), which decides nothing"
    if f.pooled is not None:
        text += (f". Diamond: the {name} pooled over {f.pooled_sites} sites by random-effects meta-analysis, "
                 f"its width the {f.level} confidence interval: {_value_text(f.metric_id, f.pooled, f.pooled_ci)}; "
                 "dashed line: the pooled value")
    if f.prediction is not None:
        text += (f". Bar: the {f.level} prediction interval, where a new site's {name} is expected to fall: "
                 f"{_between(f.metric_id, *f.prediction)}")
    if f.minimum is not None:
        text += f"; dotted line: the check's minimum for a new site ({fmt_number(f.metric_id, f.minimum)})"
    if f.metric_id == "auroc":
        text += "; grey line: chance (0.5). The axis runs to 1 (perfect)"
    elif is_rate(f.metric_id):
        text += ". The axis runs from 0 to 100%"
    if f.not_drawn:
        text += f". Not drawn: {f.not_drawn}"
    return text + "."


def _count_words(n: int, what: str) -> str:
    return f"{n} site{'s' if n != 1 else ''} {what}"


def site_forest(plugin: PluginResult, limit: int, names: DisplayNames) -> tuple[SiteForest | None, FigureView | None]:
    """The forest plot of the key metric by site, with its alt text and caption."""
    col = site_column(plugin)
    if col is None:
        return None, None
    key = key_metric(plugin)
    dev = development_site(plugin)
    sites = ordered_sites(plugin, col, names)
    drawn, hidden, undefined = [], 0, 0
    for site, recs in sites:
        m = recs.get(key)
        if m is None:
            continue
        if m.suppressed:
            hidden += 1
        elif m.value is None:
            undefined += 1
        else:
            drawn.append(SitePoint(site_name(names, col, site, dev, marked=True), m.value, m.ci,
                                   "under_powered" in m.flags, site == dev))
    pooled = pooled_records(plugin, key)
    p, lo, hi = pooled.get("pooled"), pooled.get("pi_low"), pooled.get("pi_high")
    if not drawn and not _shown(p):
        return None, None
    omitted = max(0, len(drawn) - MAX_FOREST_SITES)
    parts = []
    if omitted:
        parts.append(_count_words(omitted, "with a published value, the smallest (they are in the table)"))
    if hidden:
        parts.append(_count_words(hidden, f"whose {display_name(key)} is hidden ({suppressed_why(limit)})"))
    if undefined:
        parts.append(_count_words(undefined, f"whose {display_name(key)} is undefined (see the table)"))
    all_hidden = hidden_sites(plugin, col)
    if all_hidden:
        parts.append(_count_words(all_hidden, "whose every value is hidden"))
    minimum = plugin.settings.get("min_auroc") if key == "auroc" else None
    forest = SiteForest(
        metric_id=key,
        points=tuple(drawn[:MAX_FOREST_SITES]),
        pooled=p.value if _shown(p) else None,
        pooled_ci=p.ci if _shown(p) else None,
        pooled_sites=int(p.n) if p is not None and p.n is not None else 0,
        prediction=(lo.value, hi.value) if _shown(lo) and _shown(hi) else None,
        level=_level_words(p),
        minimum=float(minimum) if isinstance(minimum, int | float) and not isinstance(minimum, bool) else None,
        not_drawn="; ".join(parts),
        under_powered_rule=under_powered_rule(plugin) or _site_rule(plugin),
    )
    figure = FigureView(
        uris=(svg_data_uri(site_forest_svg(forest)),),
        alt=site_forest_alt(forest),
        caption=site_forest_caption(forest),
        kind="forest",
        title=f"{display_name(key)} by site",
    )
    return forest, figure


def _site_rule(plugin: PluginResult) -> str:
    n, pos = plugin.settings.get("min_site_n"), plugin.settings.get("min_site_positives")
    unit = plugin.settings.get("counting_unit") or "patients"
    parts = []
    if isinstance(n, int) and not isinstance(n, bool):
        parts.append(f"{n} {unit}")
    if isinstance(pos, int) and not isinstance(pos, bool):
        parts.append(f"{pos} with the condition")
    return "fewer than " + " or ".join(parts) if parts else ""


# -- the tables ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SiteRow:
    name: str
    cells: tuple[Cell, ...]
    flags: tuple[str, ...]
    development: bool = False


@dataclass(frozen=True)
class PooledRow:
    metric: str
    sites: str
    pooled: Cell
    prediction: Cell
    tau2: Cell
    i2: Cell
    q: Cell


@dataclass(frozen=True)
class WithinSiteTable:
    """``fnr_gap_overall`` within each site: one row per site, one column per group."""

    headers: tuple[str, ...]
    rows: tuple[SiteRow, ...]
    caption: str
    more: int  # published sites beyond the rows shown


@dataclass(frozen=True)
class UniversalityView:
    forest: FigureView | None
    site_heading: str  # "Site (state)"
    headers: tuple[str, ...]
    rows: tuple[SiteRow, ...]
    caption: str
    hidden_line: str  # "41 sites not shown: each rests on, or would reveal, a count below 10."
    undefined_line: str  # "Undefined: AUROC at 16 sites (only one class in this group)."
    more_line: str  # "and 12 more sites (the smallest) in results.json."
    pooled: tuple[PooledRow, ...]
    pooled_caption: str
    within: WithinSiteTable | None
    within_note: str
    parts: tuple[Part, ...]  # the plain sentence (the verdict's)

    @property
    def html(self) -> Markup:
        """The plain sentence for HTML, every site name isolated where it needs it."""
        return phrase_html(self.parts)


def _site_flags(recs: dict[str, Metric], development: bool) -> tuple[str, ...]:
    """The site's flags, each once ("under_powered"), the development site named first."""
    flags = ["development site"] if development else []
    for mid in ("n", *TABLE_IDS):
        m = recs.get(mid)
        if m is not None:
            flags += m.flags
    return tuple(dict.fromkeys(flags))


def site_rows(plugin: PluginResult, limit: int, names: DisplayNames) -> tuple[list[SiteRow], int, str]:
    """The per-site rows (at most :data:`MAX_SITE_ROWS`), how many published sites are left
    out, and why values are undefined, once per column ("AUROC at 16 sites: only one class in
    this group"): an undefined cell says only "undefined", so the table stays narrow."""
    col = site_column(plugin)
    if col is None:
        return [], 0, ""
    dev = development_site(plugin)
    rows = []
    why: dict[str, dict[str, int]] = {}
    sites = ordered_sites(plugin, col, names)
    for site, recs in sites[:MAX_SITE_ROWS]:
        hidden = any(m.suppressed for m in recs.values())
        cells = [count_cell(recs, "n", hidden, limit), count_cell(recs, "positives", hidden, limit)]
        for mid in TABLE_IDS:
            cell = metric_cell(recs.get(mid), limit)
            if cell.state == "undefined":
                reason = recs[mid].reason or "undefined"
                counts = why.setdefault(display_name(mid), {})
                counts[reason] = counts.get(reason, 0) + 1
                cell = Cell("undefined", "undefined")
            cells.append(cell)
        rows.append(SiteRow(site_name(names, col, site), tuple(cells), _site_flags(recs, site == dev), site == dev))
    notes = []
    for column, reasons in why.items():
        for reason, n in reasons.items():
            notes.append(f"{column} at {n} site{'s' if n != 1 else ''} ({reason})" if reason != "undefined"
                         else f"{column} at {n} site{'s' if n != 1 else ''}")
    undefined = f"Undefined: {'; '.join(notes)}." if notes else ""
    return rows, max(0, len(sites) - MAX_SITE_ROWS), undefined


def _scale(metric: str, tau2: Metric | None) -> str:
    found = _SCALE_RE.search(tau2.ci_method or "") if tau2 is not None else None
    return found.group(1) if found else _SCALES.get(metric, "")


def pooled_rows(plugin: PluginResult, limit: int) -> list[PooledRow]:
    rows = []
    for metric in POOLED:
        recs = pooled_records(plugin, metric)
        if not recs:
            continue
        p = recs.get("pooled")
        lo, hi = recs.get("pi_low"), recs.get("pi_high")
        if _shown(lo) and _shown(hi):
            prediction = Cell(_between(metric, lo.value, hi.value))
        else:
            m = lo or hi
            prediction = metric_cell(m, limit) if m is not None and m.suppressed else Cell(
                f"not computable ({(m.reason if m is not None else None) or 'undefined'})", "undefined")
        if p is not None and not p.suppressed and p.value is not None:
            pooled = Cell(fmt_number(metric, p.value), "ok", fmt_interval(metric, p.ci))
        else:
            pooled = metric_cell(p, limit)
        tau2, i2, q = recs.get("tau2"), recs.get("i2"), recs.get("q")
        scale = _scale(metric, tau2)
        tau2_cell = (Cell(f"{tau2.value:.3g}", "ok", f"({scale} scale)" if scale and scale != "identity" else "")
                     if _shown(tau2) else metric_cell(tau2, limit))
        i2_cell = Cell(f"{round(i2.value * 100):.0f}%") if _shown(i2) else metric_cell(i2, limit)
        if _shown(q):
            q_cell = Cell(fmt_p(q.p_value), "ok", f"(Q = {q.value:.2f})")
        else:
            q_cell = metric_cell(q, limit)
        k = next((m.n for m in recs.values() if m.n is not None), None)
        rows.append(PooledRow(display_name(metric), DASH if k is None else f"{k}", pooled, prediction, tau2_cell,
                              i2_cell, q_cell))
    return rows


def _method(plugin: PluginResult) -> str:
    methods = plugin.settings.get("meta_analysis")
    if not isinstance(methods, dict) or not methods:
        return ""
    key = key_metric(plugin)
    text = str(methods.get(key) or next(iter(methods.values())))
    return re.sub(r"; back-transformed from \w+ \(tau2 on \w+\)$", "", text)


def pooled_caption(plugin: PluginResult) -> str:
    method = _method(plugin)
    inputs = plugin.settings.get("meta_inputs")
    text = ("Heterogeneity between sites. Pooled: the random-effects mean over the sites pooled, with its 95% "
            "confidence interval. Prediction interval: where a new site's value is expected to fall (95%). "
            "tau²: the variance between sites, on the scale of the analysis (logit for AUROC and rates, log "
            "for O/E). I²: the share of the variation that is real difference between sites rather than "
            "chance. Q test p: how surprising these differences would be if every site were alike.")
    if isinstance(inputs, str) and inputs:
        text += f" Sites pooled: {inputs}."
    if method:
        text += f" Method: {method}."
    return text


def within_site_table(plugin: PluginResult, limit: int, names: DisplayNames) -> tuple[WithinSiteTable | None, str]:
    """The fairness gap within each site: published cells only (a site or a group whose every
    cell is hidden is left out and counted)."""
    col = site_column(plugin)
    records = [m for m in plugin.metrics if m.id == "fnr_gap_overall" and m.group and col in m.group
               and len(m.group) == 2 and m.label is None]
    if col is None or not records:
        return None, ""
    groups: dict[tuple[str, str], None] = {}
    by_site: dict[str, dict[tuple[str, str], Metric]] = {}
    for m in records:
        (attr, value), = ((k, v) for k, v in m.group.items() if k != col)
        groups.setdefault((attr, value), None)
        by_site.setdefault(m.group[col], {})[(attr, value)] = m
    published = {g for recs in by_site.values() for g, m in recs.items() if not m.suppressed}
    # Groups in reading order, attribute by attribute.
    attrs = list(dict.fromkeys(a for a, _ in groups))
    columns = [(a, v) for a in attrs for v in names.order(a, [v for a2, v in groups if a2 == a])
               if (a, v) in published]
    sites = [s for s, recs in by_site.items() if any(not m.suppressed for m in recs.values())]
    hidden_sites_ = len(by_site) - len(sites)
    if not columns:
        return None, (f"The fairness gap within sites is hidden at every site where it was measured "
                      f"({len(by_site)}): each value {suppressed_why(limit)}.")
    per_site = site_records(plugin, col)
    size = {s: _size(per_site.get(s, {})) for s in sites}
    dev = development_site(plugin)
    sites.sort(key=lambda s: (s != dev, -size[s]))
    rows = []
    for s in sites[:MAX_SITE_ROWS]:
        cells = tuple(metric_cell(by_site[s].get(g), limit) for g in columns)
        flags = tuple(dict.fromkeys(f for m in by_site[s].values() for f in flag_texts(m)))
        rows.append(SiteRow(site_name(names, col, s), cells, flags, s == dev))
    level = next((m.level for m in records if m.level), 0.95)
    caption = (f"The gap in missed cases (FNR) of each group to its own site's patients, within each site "
               f"where it was measured; positive means the group's patients with the condition are missed more "
               f"often; each with its {level * 100:g}% confidence interval.")
    if hidden_sites_:
        caption += f" {hidden_sites_} site(s) not shown: each value {suppressed_why(limit)}."
    return WithinSiteTable(tuple(names.group_part(a, v) for a, v in columns), tuple(rows), caption,
                           max(0, len(sites) - MAX_SITE_ROWS)), ""


def universality_view(plugin: PluginResult, limit: int, names: DisplayNames | None = None) -> UniversalityView:
    """Everything the technical edition's Universality section shows (see the module docstring)."""
    names = names or DisplayNames()
    col = site_column(plugin)
    _, figure = site_forest(plugin, limit, names)
    rows, more, undefined = site_rows(plugin, limit, names)
    hidden = hidden_sites(plugin, col) if col else 0
    level = next((m.level for m in plugin.metrics if m.level and 0 < m.level < 1), 0.95)
    hidden_line = (f"{hidden} site{'s' if hidden != 1 else ''} not shown: each rests on, or would reveal, a count "
                   f"below {limit}." if hidden else "")
    more_line = (f"And {more} more site{'s' if more != 1 else ''} with published values, the smallest: every number "
                 "is in results.json." if more else "")
    headers = ("n", "Positives", *(display_name(m) for m in TABLE_IDS))
    caption = (f"Each site at the shared operating point, the development site first, then by size; each value "
               f"with its {level * 100:g}% confidence interval below it. The last column is the sensitivity the "
               "site would gain with its own threshold chosen by the same rule (negative: the shared threshold "
               "finds more cases there, at a cost in specificity). A hidden cell rests on, or would reveal, a "
               "count below the small-cell limit. The gaps to the development site, FNR, FPR, PPV, NPV and Brier "
               "score of every site are in results.json.")
    within, within_note = within_site_table(plugin, limit, names)
    return UniversalityView(
        forest=figure,
        site_heading="Site" if col is None or names.column(col).lower() == "site" else f"Site ({names.column(col)})",
        headers=headers,
        rows=tuple(rows),
        caption=caption,
        hidden_line=hidden_line,
        undefined_line=undefined,
        more_line=more_line,
        pooled=tuple(pooled_rows(plugin, limit)),
        pooled_caption=pooled_caption(plugin),
        within=within,
        within_note=within_note,
        parts=universality_parts(plugin, names) or (),
    )


# -- the verdict's sentence --------------------------------------------------------------------
def universality_parts(plugin: PluginResult, display: DisplayNames | None = None, *,
                       checks: bool = False) -> tuple[Part, ...] | None:
    """The plain sentence of the Universality verdict, as parts (site names are :class:`Name`):

    "Across 4 sites AUROC ranged from 0.55 to 0.68; in a new site expect 0.42 to 0.80 (95%
    prediction interval)." The range is over the adequately powered sites with
    a published value (all published ones when none is adequately powered), the development
    pseudo-site (reference data) left out; the sites are named in the section, not here (one
    site alone is named); hidden sites are counted, never named; then, with
    ``checks``, the plugin's findings and their statuses. None when there is nothing to say (no
    site value and no pooled value).
    """
    display = display or DisplayNames()
    col = site_column(plugin)
    if col is None:
        return None
    key = key_metric(plugin)
    name = display_name(key)
    per_site = site_records(plugin, col)
    values = [(s, recs[key]) for s, recs in per_site.items()
              if s != REFERENCE_SITE and key in recs and _shown(recs[key])]
    powered = [(s, m) for s, m in values if "under_powered" not in m.flags]
    use = powered or values
    pooled = pooled_records(plugin, key)
    p, lo, hi = pooled.get("pooled"), pooled.get("pi_low"), pooled.get("pi_high")
    if not use and not _shown(p):
        return None
    parts: list[Part] = []
    which = "adequately powered sites" if powered and len(powered) < len(values) else "sites"
    if len(use) >= 2:
        # The sites are named in the section (the forest plot, the table): the verdict stays two lines.
        lo_value, hi_value = min(m.value for _, m in use), max(m.value for _, m in use)
        parts.append(f"Across {len(use)} {which} {name} ranged from {plain_number(key, lo_value)} to "
                     f"{plain_number(key, hi_value)}")
    elif use:
        s, m = use[0]
        parts += [f"{name} was {plain_number(key, m.value)} at ", Name(site_words(display, col, s)),
                  ", the only site with a value to show"]
    if _shown(lo) and _shown(hi):
        parts.append(f"{'; in' if parts else 'In'} a new site expect {plain_number(key, lo.value)} to "
                     f"{plain_number(key, hi.value)} ({_level_words(p)} prediction interval).")
    elif _shown(p):
        ci = ""
        if p.ci is not None:
            ci = f" ({_level_words(p)} CI {plain_number(key, p.ci[0])} to {plain_number(key, p.ci[1])})"
        parts.append(f"{'; pooled' if parts else 'Pooled'} {name} {plain_number(key, p.value)}{ci}; with fewer than "
                     "3 sites no range can be given for a new site.")
    else:
        parts.append(".")
    hidden = sum(1 for recs in per_site.values() if key in recs and recs[key].suppressed)
    if hidden:
        parts.append(f" {hidden} small site{'s' if hidden != 1 else ''} not shown.")
    checked = [f for f in plugin.findings if f.status != Status.SKIPPED]
    if checked and checks:
        parts.append(" Checks: " + "; ".join(f"{f.title} ({f.status})" for f in checked) + ".")
    return tuple(parts)
