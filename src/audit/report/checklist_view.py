"""Evidence mapping: every item of the three checklists with its state, for the reports.

For each checklist, :func:`checklist_views` gives the coverage line ("TRIPOD+AI: 1 of 52
sub-items measured, 4 attested, 10 partly measured, 0 not applicable, 37 open") and one row
per item in one of five states (:data:`audit.checklists.STATES`):

- measured: the evidence answers the whole item (the findings that give it, with status);
- partly measured: the evidence answers part of it; the note says what still needs a
  written answer;
- attested: the team's answer, who gave it and when, and where it is documented; with the
  evidence too when the audit measured part of the item;
- not applicable: the item is about data the audit did not have (imaging items of a model
  audited on tabular data); the note says so;
- open: what would answer it.
Attestation links are kept as text: a report must load nothing from the network, and a
clickable link to an outside site is a request waiting to happen.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.attestations import attestations_from_record
from audit.checklists import (
    CHECKLIST_IDS,
    ItemState,
    coverage,
    coverage_line,
    item_states,
    load_checklist,
)
from audit.core.results import AuditResult, Status
from audit.errors import AuditError
from audit.report.anchors import finding_anchor, plugin_anchor, slug
from audit.report.view import status_symbol

# Core evidence kinds → the report section that shows them.
KIND_ANCHORS = {
    "provenance": "provenance",
    "dataset_summary": "provenance",
    "operating_point": "methods",
    "uncertainty": "findings",
    "model_call": "provenance",
}


@dataclass(frozen=True)
class FindingLink:
    anchor: str
    title: str
    status: str
    symbol: str


@dataclass(frozen=True)
class ItemView:
    id: str
    alias: str
    section: str
    topic: str
    state: str  # measured | attested | partly measured | not applicable | open
    evidence: tuple[tuple[str, str], ...]  # (text, anchor or "")
    findings: tuple[FindingLink, ...]
    answer: str
    links: tuple[str, ...]
    by: str
    date: str
    note: str
    # Findings of a plugin past MAX_ITEM_FINDINGS, counted: (plugin section anchor, text).
    more: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ChecklistView:
    id: str
    anchor: str
    name: str
    version: str
    source: str
    unit: str
    line: str
    counts: dict[str, int]
    items: tuple[ItemView, ...]
    error: str = ""


# Findings of one plugin an item lists one by one; more are counted, with a link to the plugin's
# section (a 15-label audit gave an item 45 calibration findings, 2,000 links in all, and most
# of the technical PDF's layout time).
MAX_ITEM_FINDINGS = 6
_WORST = {"FAIL": 0, "ERROR": 1, "WARN": 2, "INCONCLUSIVE": 3, "PASS": 4, "SKIPPED": 5}


def _findings(st: ItemState, titles: dict[tuple[str, str], str]):
    """The item's findings, at most :data:`MAX_ITEM_FINDINGS` per plugin (the worst, in the
    plugin's order), and a count of the rest per plugin."""
    by_plugin: dict[str, list[tuple[str, str]]] = {}
    for plugin, fid, status in st.findings:
        if (plugin, fid) in titles:
            by_plugin.setdefault(plugin, []).append((fid, str(status)))
    links, more = [], []
    for plugin, found in by_plugin.items():
        kept = found
        if len(found) > MAX_ITEM_FINDINGS:
            ranked = sorted(range(len(found)), key=lambda i: (_WORST.get(found[i][1], 9), i))[:MAX_ITEM_FINDINGS]
            kept = [found[i] for i in sorted(ranked)]
            rest = [f for f in found if f not in kept]
            counts: dict[str, int] = {}
            for _, status in rest:
                counts[status] = counts.get(status, 0) + 1
            words = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: _WORST.get(kv[0], 9)))
            more.append((plugin_anchor(plugin), f"and {len(rest)} more {plugin} findings ({words})"))
        links += [FindingLink(finding_anchor(plugin, fid), titles[(plugin, fid)], status, status_symbol(Status(status)))
                  for fid, status in kept]
    return tuple(links), tuple(more)


def _item_view(st: ItemState, titles: dict[tuple[str, str], str]) -> ItemView:
    item = st.item
    evidence = tuple((m, "") for m in st.metric_ids) + tuple((k, KIND_ANCHORS.get(k, "")) for k in st.kinds)
    findings, more = _findings(st, titles)
    a = st.attestation
    # An attested row shows the answer itself; its note only says that the audit's evidence
    # (shown beside it) answers part of the item.
    note = st.note
    if st.state == "attested":
        note = "Partly measured by the audit; the written answer completes it" if evidence else ""
    note = note[:1].upper() + note[1:]
    return ItemView(
        id=item.id,
        alias=item.alias or "",
        section=item.section,
        topic=item.topic,
        state=st.state,
        evidence=evidence,
        findings=findings,
        answer=a.answer if a is not None else "",
        links=tuple(a.links) if a is not None else (),
        by=(a.by or "") if a is not None else "",
        date=(a.date or "") if a is not None else "",
        note=note,
        more=more,
    )


def checklist_views(result: AuditResult) -> list[ChecklistView]:
    """The three checklists (CLAIM 2024, TRIPOD+AI, FUTURE-AI) against this audit.

    ``result`` should already be the display version (:func:`for_display`); a checklist
    that cannot be read (a broken install, an attestation naming an unknown item in a
    hand-edited results.json) is shown with the error instead of stopping the report.
    """
    titles = {(p.plugin, f.id): f.title for p in result.plugins for f in p.findings}
    try:
        answers = attestations_from_record(result.attestations)
    except (KeyError, TypeError, AttributeError) as exc:
        answers = {}
        broken = f"The attestations recorded in the results cannot be read ({type(exc).__name__})."
    else:
        broken = ""
    views = []
    for cid in CHECKLIST_IDS:
        try:
            checklist = load_checklist(cid)
            states = item_states(checklist, result, answers)
        except AuditError as exc:
            views.append(ChecklistView(cid, "checklist-" + slug(cid), cid, "", "", "item", "", {}, (), str(exc)))
            continue
        views.append(
            ChecklistView(
                id=cid,
                anchor="checklist-" + slug(cid),
                name=checklist.name,
                version=checklist.version,
                source=checklist.source,
                unit=checklist.unit,
                line=coverage_line(checklist, states),
                counts=coverage(states),
                items=tuple(_item_view(st, titles) for st in states),
                error=broken,
            )
        )
    return views


def attested_by_principle(views: list[ChecklistView]) -> dict[str, tuple[int, int]]:
    """FUTURE-AI principle → (recommendations answered in writing, recommendations)."""
    out: dict[str, tuple[int, int]] = {}
    try:
        checklist = load_checklist("future-ai")
    except AuditError:
        return out
    view = next((v for v in views if v.id == "future-ai" and v.items), None)
    if view is None:
        return out
    principle_of = {i.id: i.principle or "" for i in checklist.items}
    for item in view.items:
        principle = principle_of.get(item.id, "")
        answered, total = out.get(principle, (0, 0))
        out[principle] = (answered + bool(item.answer), total + 1)
    return out
