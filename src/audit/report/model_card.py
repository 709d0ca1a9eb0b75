"""model_card.md: a model-card summary drawn from the results and the team's attestations.

Plain Markdown (no HTML), in the sections of a model card (Mitchell et al., FAT* 2019): model
details, intended use, data, metrics with intervals, fairness findings, limitations and
provenance. What the audit measured comes from the result; what only the team can say
(intended use, data sources, known limitations) comes from the attestations, and where an
answer is missing the card says which checklist item to answer. Suppression is applied as in
every human-readable report; links given in attestations are written as code, so no Markdown
viewer turns them into something to click. Text from the data is cleaned of control and bidi
characters and names are shortened, as in summary.md (:mod:`audit.report.text`).

A suppressed cell says it rests on, or would reveal, a count below 10: the same words for every
hidden cell, since naming which count would tell complementary suppression apart (see
:func:`audit.report.formatting.suppressed_why`). The limitations count hidden cells, not groups: every group is
assessed, only some of its values are withheld. The random seed is stated once, in the
provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit.attestations import Attestation, attestations_from_record
from audit.checklists import item_topic, ref
from audit.core.results import AuditResult, PluginResult, Status
from audit.report import context
from audit.report.calibration import is_calibration, overall_values
from audit.report.checklist_view import checklist_views
from audit.report.formatting import display_name, metric_text, min_cell, suppressed_why
from audit.report.markdown import cell_text, md_escape, universality_lines
from audit.report.names import DisplayNames
from audit.report.suppression import for_display
from audit.report.text import clean, for_plain_text, shorten
from audit.report.universality import is_universality
from audit.report.verdict import NOT_ASSESSED, verdict_rows
from audit.report.view import (
    COLUMN_ORDER,
    group_tables,
    key_metric_for,
    under_powered_rule,
)

# Checklist items whose answers describe the intended use, the data and the limitations.
INTENDED_USE = (("claim-2024", "3"), ("tripod-ai", "3b"), ("claim-2024", "41"), ("future-ai", "Usability 1"))
DATA_ITEMS = (
    ("tripod-ai", "5a"),
    ("claim-2024", "7"),
    ("tripod-ai", "5b"),
    ("tripod-ai", "6a"),
    ("tripod-ai", "6b"),
    ("claim-2024", "8"),
    ("tripod-ai", "8a"),
    ("claim-2024", "14"),
)
LIMITATION_ITEMS = (("claim-2024", "40"), ("tripod-ai", "26"))
_NOT_RUN = (Status.SKIPPED, Status.ERROR)
# Groups named in a line of the limitations; the rest are counted (77 sites were a paragraph).
MAX_NAMED = 25
_DATE_KEYS = ("dates", "date_range", "period", "time_range", "first_date", "last_date")
_SEED_KEYS = ("seed", "random_state")


def _code(text: str) -> str:
    """Inline code: inert in every Markdown viewer (no autolink, no formatting)."""
    text = " ".join(clean(text).split()).replace("`", "'")
    return f"`{text}`"


def _answers(result: AuditResult, items) -> list[tuple[str, str, Attestation]]:
    record = attestations_from_record(result.attestations)
    out = []
    for cid, item_id in items:
        answer = record.get(cid, {}).get(item_id)
        if answer is not None:
            out.append((cid, item_id, answer))
    return out


def _answer_lines(answers: list[tuple[str, str, Attestation]]) -> list[str]:
    lines = []
    for cid, item_id, a in answers:
        who = ""
        if a.by or a.date:
            who = " (" + ", ".join(md_escape(x) for x in (a.by, a.date) if x) + ")"
        line = f"- {md_escape(a.answer)} _[{md_escape(ref(cid, item_id))}{who}]_"
        if a.links:
            line += " Documented at: " + ", ".join(_code(link) for link in a.links) + "."
        lines.append(line)
    return lines


def _missing(items) -> str:
    named = " or ".join(f"{ref(cid, i)} ({item_topic(cid, i)})" for cid, i in items)
    return f"Not stated: add an attestation for {md_escape(named)}."


def _model_lines(result: AuditResult) -> list[str]:
    model = result.provenance.get("model")
    model = model if isinstance(model, Mapping) else {}
    sha = model.get("sha256")
    lines = [
        f"- Source: {md_escape(model.get('source') or '—')}",
        f"- Kind: {md_escape(model.get('kind') or '—')}",
    ]
    if isinstance(sha, str) and len(sha) == 64:
        lines.append(f"- SHA-256: `{sha[:12]}…` (full value in results.json)")
    elif sha:
        lines.append(f"- Identity: {md_escape(sha)}")
    return lines


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dataset_lines(name: str, summary: Mapping, file_ref: context.FileRef | None, limit: int) -> list[str]:
    rows = _count(summary.get("rows"))
    what = f"- {name}: "
    if file_ref is not None:
        what += md_escape(file_ref.name) + (f" (SHA-256 `{file_ref.short}…`)" if file_ref.short else "")
    else:
        what += "—"
    if rows is not None:
        what += f", {rows:,} rows"
        dropped = _count(summary.get("rows_dropped"))
        if dropped:
            what += f" ({dropped:,} dropped for a missing label or score)"
    lines = [what]
    positives = summary.get("positives")
    if isinstance(positives, Mapping) and rows:
        for label, count in positives.items():
            count = _count(count)
            if count is None:
                continue
            if 0 < count < limit:
                text = f"suppressed (fewer than {limit} with the condition)"
            elif 0 < rows - count < limit:
                text = f"suppressed (fewer than {limit} without the condition)"
            else:
                text = f"{count / rows * 100:.1f}% ({count:,} of {rows:,})"
            lines.append(f"  - Prevalence of {md_escape(shorten(label))}: {md_escape(text)}")
    for key in _DATE_KEYS:
        if summary.get(key) is not None:
            lines.append(f"  - {md_escape(key.replace('_', ' ').capitalize())}: {md_escape(summary[key])}")
    return lines


def _data_lines(result: AuditResult, limit: int) -> list[str]:
    head = context.header(result)
    summary = result.data_summary or {}
    data = summary.get("data") if isinstance(summary.get("data"), Mapping) else summary
    lines = _dataset_lines("Audited data", data, (head["data_files"] or [None])[0], limit)
    reference = summary.get("reference")
    if isinstance(reference, Mapping):
        lines += _dataset_lines("Reference data (operating point chosen here)", reference,
                                (head["reference_files"] or [None])[0], limit)
    sensitive = summary.get("sensitive")
    if isinstance(sensitive, list | tuple) and sensitive:
        lines.append(f"- Attributes audited for fairness: {md_escape(', '.join(map(shorten, sensitive)))}")
    answers = _answers(result, DATA_ITEMS)
    if answers:
        lines += ["", "Stated by the team:", "", *_answer_lines(answers)]
    else:
        lines += ["", "Where the data come from: " + _missing(DATA_ITEMS[:2])]
    dated = any(cid == "tripod-ai" and i == "5b" for cid, i, _ in answers)
    if not dated and not any(summary.get(k) for k in _DATE_KEYS):
        lines += ["", "Dates of data collection: " + _missing((("tripod-ai", "5b"),))]
    return lines


def _overall_table(plugin: PluginResult, limit: int) -> list[str]:
    overall = {m.id: m for m in plugin.metrics if m.group is None and m.label is None and m.reference is None}
    ids = [i for i in COLUMN_ORDER if i in overall and i not in ("n", "positives")]
    if not ids:
        return []
    rows = [f"| {md_escape(display_name(i))} | {md_escape(_value_text(overall[i], limit))} |" for i in ids]
    threshold = overall.get("threshold")
    lines = ["| Metric (overall) | Value (95% CI) |", "|---|---|", *rows]
    if threshold is not None and threshold.value is not None:
        lines += ["", f"Operating point: score ≥ {threshold.value:.4g}"
                  + (f" ({md_escape(plugin.settings['threshold_method'])})"
                     if isinstance(plugin.settings.get("threshold_method"), str) else "") + "."]
    return lines


def _calibration_table(plugin: PluginResult, limit: int) -> list[str]:
    lines = []
    for label, values in overall_values(plugin, limit):
        what = f"Calibration (all patients{f', {md_escape(shorten(label))}' if label is not None else ''})"
        lines += ([""] if lines else []) + [f"| {what} | Value (95% CI) |", "|---|---|"]
        lines += [f"| {md_escape(display_name(mid))} | {md_escape(text)} |" for mid, text in values]
    return lines


def _value_text(metric, limit: int) -> str:
    """``metric_text``, with a suppressed value saying why it is hidden."""
    if metric.suppressed:
        return f"suppressed ({suppressed_why(limit)})"
    return metric_text(metric, limit)


def _group_tables(plugin: PluginResult, limit: int, names: DisplayNames) -> list[str]:
    key = key_metric_for(plugin, {m.id for m in plugin.metrics})
    lines: list[str] = []
    for table in group_tables(plugin, limit, names):
        if table.key_metric != key or not table.grouping or table.key_index is None:
            continue
        name = display_name(key)
        auroc = table.columns.index("auroc") if "auroc" in table.columns else None
        header = f"| Group | n | {md_escape(name)} (95% CI) |" + (" AUROC (95% CI) |" if auroc is not None else "")
        lines += ["", f"**{md_escape(name)} by {md_escape(table.title)}**", "", header + " Flags |",
                  "|---|---|---|" + ("---|" if auroc is not None else "") + "---|"]
        for r in table.rows:
            label = f"**{md_escape(r.label)}**" if r.overall else md_escape(r.label)
            cells = [label, md_escape(cell_text(r.cells[0])), md_escape(cell_text(r.cells[table.key_index]))]
            if auroc is not None:
                cells.append(md_escape(cell_text(r.cells[auroc])))
            cells.append(md_escape("; ".join(r.flags)) or "—")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _hidden_cells(plugin: PluginResult, limit: int, names: DisplayNames) -> str:
    """How many cells of the plugin's group tables are hidden: "12 of 96 cells ... are hidden
    because they rest on, or would reveal, a count below 10; every group was assessed." Empty
    when nothing is hidden. Which count hides which cell is not said (see
    :func:`~audit.report.formatting.suppressed_why`)."""
    total = hidden = 0
    for table in group_tables(plugin, limit, names):
        for r in table.rows:
            if r.overall:
                continue
            for cell in r.cells:
                if cell.state == "missing":
                    continue
                total += 1
                hidden += cell.state == "suppressed"
    if not hidden:
        return ""
    return (f"{hidden} of {total} cells of the {md_escape(plugin.plugin)} tables by group are hidden because "
            f"they rest on, or would reveal, a count below {limit}; every group was assessed, and a hidden "
            "cell says nothing either way about how that group is treated.")


def _limitations(result: AuditResult, limit: int, names: DisplayNames) -> list[str]:
    lines = []
    for plugin in result.plugins:
        if plugin.status in _NOT_RUN:
            continue
        under = list(dict.fromkeys(
            names.group(m.group) for m in plugin.metrics
            if m.group and "under_powered" in m.flags and m.reference is None
        ))
        if under:
            rule = under_powered_rule(plugin)
            rule = f" ({rule})" if rule else ""
            more = f" and {len(under) - MAX_NAMED} more" if len(under) > MAX_NAMED else ""
            lines.append(f"- Under-powered groups{rule}, whose numbers are unreliable: "
                         f"{md_escape('; '.join(under[:MAX_NAMED]))}{more}.")
        hidden = _hidden_cells(plugin, limit, names)
        if hidden:
            lines.append(f"- {hidden}")
        inconclusive = [f.title for f in plugin.findings if f.status == Status.INCONCLUSIVE]
        if inconclusive:
            lines.append(
                f"- The data cannot decide ({md_escape(plugin.plugin)}): {md_escape('; '.join(inconclusive))}."
            )
    lines += [f"- Warning ({md_escape(source)}): {md_escape(text)}" for source, text in context.all_warnings(result)]
    not_assessed = [v.principle for v in verdict_rows(result) if v.status == NOT_ASSESSED]
    skipped = [v.principle for v in verdict_rows(result) if v.status in ("SKIPPED", "ERROR")]
    if not_assessed:
        lines.append(f"- Not assessed by this audit: {', '.join(not_assessed)}.")
    if skipped:
        lines.append(f"- Skipped or failed in this audit: {', '.join(skipped)}.")
    for view in checklist_views(result):
        if view.counts:
            lines.append(f"- Checklist coverage: {md_escape(view.line)}.")
    answers = _answers(result, LIMITATION_ITEMS)
    if answers:
        lines += ["", "Stated by the team:", ""] + _answer_lines(answers)
    else:
        lines += ["", _missing(LIMITATION_ITEMS)]
    return lines


def _is_seed(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value.strip() not in ("", "—", "-"))


def _seed_line(result: AuditResult) -> str:
    """The random seed, once: the run's (``provenance["seed"]``), and a plugin's own seed
    only where it used a different one (or the run recorded none). Empty when no seed is
    known: the card never says "seed —"."""
    run_seed = result.provenance.get("seed")
    own: dict[str, Any] = {}
    for p in result.plugins:
        value = next((p.settings[k] for k in _SEED_KEYS if _is_seed(p.settings.get(k))), None)
        if value is not None:
            own[p.plugin] = value
    if _is_seed(run_seed):
        others = {name: v for name, v in own.items() if str(v) != str(run_seed)}
        text = md_escape(run_seed)
        if others:
            text += " (" + "; ".join(f"{md_escape(n)} used its own: {md_escape(v)}" for n, v in others.items()) + ")"
        return text
    if not own:
        return ""
    values = list(dict.fromkeys(str(v) for v in own.values()))
    if len(values) == 1:
        return f"{md_escape(values[0])} (set by {md_escape(', '.join(own))})"
    return "; ".join(f"{md_escape(v)} ({md_escape(n)})" for n, v in own.items())


def _provenance(result: AuditResult) -> list[str]:
    prov = result.provenance
    head = context.header(result)
    tool = prov.get("tool") if isinstance(prov.get("tool"), Mapping) else {}
    lines = [
        f"- Audited with future-audit {md_escape(tool.get('version', '—'))} on {md_escape(head['finished_at'])}",
    ]
    for name, refs in (("Data", head["data_files"]), ("Reference data", head["reference_files"]),
                       ("Model", head["model_files"])):
        for f in refs:
            lines.append(f"- {name}: {md_escape(f.name)}" + (f", SHA-256 `{f.sha256}`" if f.short else ""))
    git = prov.get("git")
    if isinstance(git, Mapping) and git.get("commit"):
        dirty = " (with uncommitted changes)" if git.get("dirty") else ""
        lines.append(f"- Code: git commit `{md_escape(git['commit'])[:40]}`{dirty}")
    seed = _seed_line(result)
    if seed:
        lines.append(f"- Random seed: {seed}")
    env = prov.get("environment")
    if isinstance(env, Mapping) and env.get("python"):
        platform = f" on {md_escape(env['platform'])}" if env.get("platform") else ""
        lines.append(f"- Python {md_escape(env['python'])}{platform}")
    lines.append("- The complete record (every number, setting and version) is results.json; "
                 "the full report is technical-report.html.")
    return lines


def render_model_card(result: AuditResult) -> str:
    """Render a model-card summary of the audit as Markdown (model_card.md).

    Sections: Model details (source, kind, SHA-256), Intended use (attested answers to
    CLAIM 2024 item 3, TRIPOD+AI 3b, CLAIM 2024 item 41, FUTURE-AI Usability 1; or which one to
    answer), Data (rows, prevalence, attested sources and dates), Metrics (overall and per
    group, with intervals), Fairness findings, Limitations (under-powered and suppressed groups,
    warnings, principles not assessed, open checklist items, attested limitations) and
    Provenance. Suppressed values show only ``suppressed (< min_cell)``.
    """
    result = for_plain_text(for_display(result))
    names = DisplayNames.from_result(result)
    limit = min_cell(result)
    head = context.header(result)
    ran = [p for p in result.plugins if p.status not in _NOT_RUN]
    model = result.provenance.get("model")
    source = model.get("source") if isinstance(model, Mapping) else None
    lines = [
        f"# Model card: {md_escape(source or head['title'])}",
        "",
        (f"_Drawn from a future-audit run of {md_escape(head['finished_at'])}. Overall audit result: "
         f"**{head['status']}**. A value resting on fewer than {limit} patients, or fewer than {limit} "
         "with (or without) the condition, or that would reveal such a count, is suppressed; its cell "
         "says which count is small._"),
        "",
        "## Model details",
        "",
        *_model_lines(result),
        "",
        "## Intended use",
        "",
    ]
    answers = _answers(result, INTENDED_USE)
    lines += _answer_lines(answers) if answers else [_missing(INTENDED_USE[:2])]
    lines += ["", "## Data", "", *_data_lines(result, limit), "", "## Metrics", ""]
    if not ran:
        lines.append("No check produced metrics in this audit.")
    for plugin in ran:
        lines += [f"### {md_escape(plugin.principle)} ({md_escape(plugin.plugin)})", ""]
        if is_universality(plugin):
            # Its overall values are of every site together: the sites and the pooled value say more.
            lines += universality_lines(plugin, limit, names)[1:]
        elif is_calibration(plugin):
            lines += _calibration_table(plugin, limit)
        else:
            lines += _overall_table(plugin, limit)
            lines += _group_tables(plugin, limit, names)
        lines.append("")
    lines += ["## Fairness findings", ""]
    fairness = [p for p in result.plugins if p.principle.lower() == "fairness"]
    if not fairness:
        lines.append("Not assessed: no fairness check ran in this audit.")
    for plugin in fairness:
        if plugin.status in _NOT_RUN or not plugin.findings:
            lines.append(f"- **{plugin.status}**: {md_escape(plugin.summary)}")
        for f in plugin.findings:
            lines.append(f"- **{f.status}** {md_escape(f.title)}: {md_escape(f.message)}")
    lines += ["", "## Limitations", "", *_limitations(result, limit, names), "", "## Provenance", "",
              *_provenance(result)]
    return "\n".join(lines) + "\n"
