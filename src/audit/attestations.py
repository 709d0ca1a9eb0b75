"""Attestations: the team's written answers to checklist items no tool can measure.

An attestation file is YAML, keyed by checklist id and then item id::

    # future-audit attestations: the team's answers to checklist items no tool can measure
    claim-2024:
      "3":
        answer: "Intended use: ..."
        links: ["https://..."]          # optional
        by: "Jane Doe, PI"              # optional
        date: 2026-11-01                # optional
    tripod-ai:
      "5a": { answer: "..." }
    future-ai:
      "General 1": { answer: "..." }

Item ids may be written as YAML numbers (``3:``) and FUTURE-AI items by alias (``G1``);
checklist ids accept the same aliases as :func:`audit.checklists.load_checklist`. An item may
also be given as a plain string, which is its answer.

:func:`attestation_template` writes a file in this format whose items are all commented out:
it loads as "no answers yet", and an item the user uncomments must have a non-empty answer,
so an item is never left blank by accident.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from audit.checklists import (
    CHECKLIST_IDS,
    Checklist,
    ItemState,
    load_checklist,
    needs_answer,
    resolve_checklist_id,
    unknown_item_message,
)
from audit.errors import ChecklistError, ConfigError

__all__ = ["Attestation", "attestation_template", "load_attestations"]

_KEYS = ("answer", "links", "by", "date")


@dataclass(frozen=True)
class Attestation:
    """A written answer to one checklist item.

    ``links`` point to where the answer is documented (protocol, paper, ethics approval);
    ``by`` says who answers for it; ``date`` is an ISO date string.
    """

    answer: str
    links: tuple[str, ...] = ()
    by: str | None = None
    date: str | None = None


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: PyYAML silently keeps the last one, which
    would drop an answer without a word."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_attestations(path: str | Path) -> dict[str, dict[str, Attestation]]:
    """Read an attestation file: checklist id → item id → :class:`Attestation`.

    Raises
    ------
    ChecklistError
        The file is missing or is not valid YAML (the message gives line and column), or an
        item has no answer or an unknown field.
    ConfigError
        A checklist id or item id is unknown (the message lists valid ones).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChecklistError(
            f"Attestation file {path} not found. Check the path given to --attestations."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChecklistError(f"Attestation file {path} cannot be read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ChecklistError(_yaml_message(path, exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ChecklistError(
            f"{path}: expected checklist ids at the top level ({', '.join(CHECKLIST_IDS)}), "
            f"found a {type(data).__name__}."
        )
    out: dict[str, dict[str, Attestation]] = {}
    for raw_cid, section in data.items():
        try:
            cid = resolve_checklist_id(raw_cid)
        except ConfigError:
            raise ConfigError(
                f"{path}: unknown checklist '{raw_cid}'. Valid checklists: {', '.join(CHECKLIST_IDS)}."
            ) from None
        if cid in out:
            raise ChecklistError(f"{path}: checklist {cid} appears twice (as '{raw_cid}' too).")
        checklist = load_checklist(cid)
        out[cid] = _read_section(path, checklist, section)
    return out


def _yaml_message(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"Attestation file {path} is not valid YAML{where}: {problem}."


def _read_section(path: Path, checklist: Checklist, section: Any) -> dict[str, Attestation]:
    if section is None:  # a heading with every item commented out, as in the template
        return {}
    if not isinstance(section, dict):
        raise ChecklistError(
            f"{path}: under '{checklist.id}' expected item ids with their answers, "
            f"found a {type(section).__name__}."
        )
    answers: dict[str, Attestation] = {}
    for raw_id, entry in section.items():
        item = checklist.find(raw_id)
        if item is None:
            raise ConfigError(f"{path}: {unknown_item_message(checklist, raw_id)}")
        if item.id in answers:
            raise ChecklistError(f"{path}: {checklist.name} {checklist.unit} '{item.id}' is answered twice.")
        answers[item.id] = _read_entry(path, checklist, item.id, entry)
    return answers


def _read_entry(path: Path, checklist: Checklist, item_id: str, entry: Any) -> Attestation:
    where = f"{path}: {checklist.id} {checklist.unit} '{item_id}'"
    if isinstance(entry, str):
        entry = {"answer": entry}
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        raise ChecklistError(f"{where}: expected a mapping with 'answer' (and optional links, by, date).")
    unknown = sorted(str(k) for k in entry if k not in _KEYS)
    if unknown:
        raise ChecklistError(f"{where}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(_KEYS)}.")
    answer = entry.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise ChecklistError(f"{where}: 'answer' must be text; put it in quotes (YAML read {answer!r}).")
    if not answer or not answer.strip():
        raise ChecklistError(
            f"{where} has no answer. Write it under 'answer:', or comment the item out to leave it open."
        )
    links = entry.get("links") or ()
    if isinstance(links, str):
        links = (links,)
    if not isinstance(links, list | tuple) or not all(isinstance(x, str) and x.strip() for x in links):
        raise ChecklistError(f"{where}: 'links' must be a list of URLs or document references.")
    by = entry.get("by")
    if by is not None and not isinstance(by, str):
        raise ChecklistError(f"{where}: 'by' must be text, e.g. \"Jane Doe, PI\".")
    date = entry.get("date")
    if isinstance(date, dt.datetime):
        date = date.date().isoformat()
    elif isinstance(date, dt.date):
        date = date.isoformat()
    elif date is not None and not isinstance(date, str):
        raise ChecklistError(f"{where}: 'date' must be a date such as 2026-11-01.")
    return Attestation(answer=answer.strip(), links=tuple(x.strip() for x in links),
                       by=by.strip() if by else None, date=date.strip() if date else None)


# -------------------------------------------------------------------------------- template
_HEADER = """\
# future-audit attestations: the team's answers to checklist items no tool can measure.
#
# Every item below is commented out, so this file loads as "no answers yet" and those items
# stay open in the report. To answer one, uncomment its two lines (the id and 'answer:') and
# write the answer. An uncommented item with an empty answer is an error, so nothing is left
# blank by accident. Optional fields per item:
#   links: ["https://..."]   by: "Jane Doe, PI"   date: 2026-11-01
# Pass this file to the audit with --attestations.
"""


def attestation_template(
    source: Mapping[str, Iterable[ItemState]] | Iterable[Checklist] | Checklist | None = None,
) -> str:
    """A commented YAML template listing the items that need a written answer.

    ``source`` is either the states of an audit (checklist id → :func:`item_states` list),
    in which case open items are listed and so are measured items whose evidence answers
    only part of them, while items already answered are left out; or checklists (default:
    all three), in which case items the tool cannot measure are listed, then those it
    measures only in part. Every item is commented out (see the module docstring).
    """
    blocks = [_HEADER]
    for checklist, open_items, partial in _template_items(source):
        blocks.append(f"{checklist.id}:  # {checklist.name}: {len(open_items) + len(partial)} "
                      f"{checklist.unit_plural} to answer")
        if open_items:
            blocks.append("  # ---- not measured by the audit")
            blocks.extend(_template_entry(item, note) for item, note in open_items)
        if partial:
            blocks.append("  # ---- measured only in part: answer what the audit cannot show")
            blocks.extend(_template_entry(item, note) for item, note in partial)
        if not (open_items or partial):
            blocks.append("  # nothing left to answer")
        blocks.append("")
    return "\n".join(blocks)


def _template_items(source):
    if source is None:
        source = [load_checklist(cid) for cid in CHECKLIST_IDS]
    elif isinstance(source, Checklist):
        source = [source]
    if isinstance(source, Mapping):
        for cid, states in source.items():
            checklist = load_checklist(cid)
            states = list(states)
            open_items = [(s.item, s.note) for s in states if s.state == "open"]
            partial = [(s.item, s.item.note) for s in states
                       if s.state == "partly measured"]
            yield checklist, open_items, partial
        return
    for checklist in source:
        open_items = [(i, i.note or ("not assessed yet: " + "; ".join(i.planned) if i.planned else ""))
                      for i in checklist.items if not i.evidence]
        partial = [(i, i.note) for i in checklist.items if i.evidence and needs_answer(i)]
        yield checklist, open_items, partial


def _template_entry(item, note: str) -> str:
    key = json.dumps(item.id)
    label = f"{item.section} | {item.topic}"
    lines = [f"  # {key}:  # {label}"]
    if note and note != "needs a written answer (attestation)":
        lines.append(f"  #   # {note}")
    lines.append('  #   answer: ""')
    return "\n".join(lines)


def attestations_from_record(record: Mapping[str, Any] | None) -> dict[str, dict[str, Attestation]]:
    """Attestations back from their JSON form in ``AuditResult.attestations``."""
    return {
        cid: {item: Attestation(answer=a["answer"], links=tuple(a.get("links") or ()), by=a.get("by"),
                                date=a.get("date"))
              for item, a in items.items()}
        for cid, items in (record or {}).items()
    }
