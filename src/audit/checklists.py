"""Reporting checklists (CLAIM 2024, TRIPOD+AI, FUTURE-AI) and what an audit answers of them.

Each checklist is a data file in ``checklists/`` (shipped inside the wheel as
``audit/checklist_data``) listing its items, our short paraphrase of each, and the evidence that
answers it: metric ids produced by installed plugins, or the core evidence every audit
records (:data:`CORE_EVIDENCE`). :func:`item_states` then sorts every item of a checklist into
one of :data:`STATES`:

- ``measured``: the audit's evidence answers the whole item (its ``coverage`` is full, no
  planned capability is missing and every evidence kind it ``requires`` is present),
- ``partly measured``: the audit answers part of it; the rest needs a written answer,
- ``attested``: the team answered it in writing (see :mod:`audit.attestations`); a partly
  measured item with an answer is attested and keeps its evidence,
- ``not applicable``: the item is about a kind of data the audit did not have (imaging
  items for a model on tabular data),
- ``open``: none of these; the note says which planned capability would measure it, or that
  it needs a written answer.

Checklist references are spelled one way everywhere (``"CLAIM-2024:38"``,
``"TRIPOD+AI:23a"``, ``"FUTURE-AI:Fairness 3"``): build them with :func:`ref`, read them with
:func:`parse_ref`, check them with :func:`validate_references`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from audit.core.results import AuditResult, Status
from audit.errors import ChecklistError, ConfigError

if TYPE_CHECKING:
    from rich.table import Table

    from audit.attestations import Attestation

__all__ = [
    "CHECKLIST_IDS",
    "CORE_EVIDENCE",
    "STATES",
    "Checklist",
    "ChecklistItem",
    "ItemState",
    "checklists_dir",
    "coverage",
    "coverage_line",
    "format_checklist_table",
    "item_states",
    "load_checklist",
    "needs_answer",
    "parse_ref",
    "ref",
    "resolve_checklist_id",
    "validate_references",
]

CHECKLIST_IDS = ("claim-2024", "tripod-ai", "future-ai")
CORE_EVIDENCE = ("provenance", "dataset_summary", "operating_point", "uncertainty", "model_call")
# In the order of the coverage line: answered in full (by the audit, or in writing), answered
# in part, not needed for this audit, not answered.
STATES = ("measured", "attested", "partly measured", "not applicable", "open")
COVERAGE_LEVELS = ("full", "partial", "none")
# Kinds of data an item can be specific to (``modality``), with what the audit must have
# read for the item to apply. The audit reads tables only so far: see _has_modality.
MODALITIES = ("imaging",)
_MODALITY_NA = {
    "imaging": "this item is about images, and this audit read no imaging data (the model was "
               "audited on tabular data)",
}
_MODALITY_OPEN = {"imaging": "applies to imaging models only"}
# What is missing when a required evidence kind is absent, for the partly-measured note.
_REQUIRE_MISSING = {
    "model_call": "the audit read a predictions file instead of calling the model, so how those "
                  "predictions were made needs a written answer",
    "uncertainty": "no metric has a confidence interval",
}
APPLIES_TO = ("D", "E", "D;E")
# The prefix of a checklist reference, as plugins write it in Finding.checklist.
REF_PREFIX = {"claim-2024": "CLAIM-2024", "tripod-ai": "TRIPOD+AI", "future-ai": "FUTURE-AI"}
_ALIASES = {
    "claim": "claim-2024", "claim2024": "claim-2024", "claim-2024": "claim-2024",
    "tripod": "tripod-ai", "tripod+ai": "tripod-ai", "tripodai": "tripod-ai", "tripod-ai": "tripod-ai",
    "futureai": "future-ai", "future-ai": "future-ai",
}
_REPAIR = "reinstall future-audit: pip install --force-reinstall future-audit"
# Plugins whose metrics and findings do not count as evidence.
_NOT_RUN = (Status.SKIPPED, Status.ERROR)
_TOP_KEYS = {"id", "name", "version", "source", "unit", "expected_count", "items"}
_ITEM_KEYS = {"id", "section", "topic", "evidence", "planned", "coverage", "applies_to",
              "principle", "alias", "note", "requires", "modality"}
_NEEDS_ANSWER = "needs a written answer (attestation)"


@dataclass(frozen=True)
class ChecklistItem:
    """One item (CLAIM), sub-item (TRIPOD+AI) or recommendation (FUTURE-AI).

    ``evidence`` names metric ids or :data:`CORE_EVIDENCE` kinds that answer the item now
    (any one of them answers part of it); ``planned`` describes capabilities that would
    answer it but no installed plugin has; ``coverage`` is how much of the item automated
    evidence could answer at best; ``requires`` lists evidence that must all be present for
    the evidence to answer the whole item; ``modality`` names the kind of data the item is
    about (``imaging``), where it applies to no other; ``note`` says what the evidence does
    and does not show.
    """

    id: str
    section: str
    topic: str
    evidence: tuple[str, ...] = ()
    planned: tuple[str, ...] = ()
    coverage: str = "none"
    applies_to: str | None = None
    principle: str | None = None
    alias: str | None = None
    note: str = ""
    requires: tuple[str, ...] = ()
    modality: str | None = None

    @property
    def fully_measurable(self) -> bool:
        """Whether the installed evidence can answer the whole item (given ``requires``)."""
        return self.coverage == "full" and not self.planned and bool(self.evidence)


@dataclass(frozen=True)
class Checklist:
    """A reporting guideline as data: its identity, citation and items in guideline order."""

    id: str
    name: str
    version: str
    source: str
    unit: str
    items: tuple[ChecklistItem, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    @property
    def unit_plural(self) -> str:
        return f"{self.unit}s"

    def find(self, item_id: Any) -> ChecklistItem | None:
        """The item with this id or alias (``"12c"``, ``12``, ``"F3"``, ``"fairness 3"``), or None."""
        key = _norm_item(item_id)
        for item in self.items:
            if key == _norm_item(item.id) or (item.alias and key == _norm_item(item.alias)):
                return item
        return None

    def item(self, item_id: Any) -> ChecklistItem:
        """Like :meth:`find`, but an unknown id raises ConfigError with close matches."""
        found = self.find(item_id)
        if found is None:
            raise ConfigError(unknown_item_message(self, item_id))
        return found


@dataclass(frozen=True)
class ItemState:
    """Where one checklist item stands after an audit.

    ``state`` is one of :data:`STATES`; ``findings`` are (plugin, finding id, status)
    triples giving evidence for the item; ``metric_ids`` the evidence metric ids that were
    produced; ``kinds`` the core evidence kinds that were present (an attested item keeps
    the evidence that measured part of it); ``note`` a one-line explanation for readers,
    which does not repeat the state.
    """

    item: ChecklistItem
    state: str
    findings: tuple[tuple[str, str, str], ...] = ()
    metric_ids: tuple[str, ...] = ()
    attestation: Attestation | None = None
    note: str = ""
    kinds: tuple[str, ...] = ()

    @property
    def evidence(self) -> tuple[str, ...]:
        """The evidence present for the item: metric ids, then core kinds."""
        return (*self.metric_ids, *self.kinds)

    @property
    def wants_answer(self) -> bool:
        """Whether a written answer is still needed: open, or partly measured."""
        return self.state in ("open", "partly measured")


# -------------------------------------------------------------------------------- files
def _package_dir() -> Path | None:
    try:
        base = resources.files("audit") / "checklist_data"
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - audit is always importable here
        return None
    return Path(str(base)) if base.is_dir() else None


def _repo_dir() -> Path | None:
    path = Path(__file__).resolve().parents[2] / "checklists"
    return path if path.is_dir() else None


def checklists_dir() -> Path:
    """The folder holding the checklist files.

    The installed package first (the wheel force-includes ``checklists/`` as
    ``audit/checklist_data``, a name that cannot shadow this module); then the repository
    root, which is where an editable install finds them.
    """
    for candidate in (_package_dir(), _repo_dir()):
        if candidate is not None:
            return candidate
    raise ChecklistError(
        "The checklist files are missing: neither the installed package (audit/checklist_data) "
        f"nor the source tree has a checklists/ folder, so the install is broken. To repair it, {_REPAIR}."
    )


def resolve_checklist_id(name: Any) -> str:
    """The canonical id of a checklist name or alias (``claim`` → ``claim-2024``)."""
    key = str(name).strip().lower().replace(" ", "-").replace("_", "-")
    for candidate in (key, key.replace("-", "")):
        if candidate in _ALIASES:
            return _ALIASES[candidate]
    for cid, prefix in REF_PREFIX.items():
        if key == prefix.lower():
            return cid
    raise ConfigError(
        f"Unknown checklist '{name}'. Valid checklists: {', '.join(CHECKLIST_IDS)} "
        "(also accepted: claim, tripod, tripod+ai, futureai)."
    )


_CACHE: dict[tuple[str, int, int], Checklist] = {}


def load_checklist(name: str) -> Checklist:
    """Load a checklist by id or alias: ``claim-2024`` / ``claim``, ``tripod-ai`` / ``tripod``
    / ``tripod+ai``, ``future-ai`` / ``futureai``.

    Raises ConfigError for an unknown name and ChecklistError for a missing or invalid file.
    """
    cid = resolve_checklist_id(name)
    path = checklists_dir() / f"{cid}.yaml"
    try:
        stat = path.stat()
    except OSError:
        raise ChecklistError(
            f"Checklist file {path} is missing, so the install is broken. To repair it, {_REPAIR}."
        ) from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        _CACHE[key] = _parse_checklist(path, cid)
    return _CACHE[key]


def item_topic(checklist: str, item_id: str) -> str:
    """The topic of one checklist item, or "" when the checklist or the item is unknown."""
    try:
        item = load_checklist(checklist).find(item_id)
    except ChecklistError:
        return ""
    return item.topic if item is not None else ""


def _parse_checklist(path: Path, cid: str) -> Checklist:
    where = f"Checklist file {path}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ChecklistError(f"{where} is not valid YAML{at}: {problem}. To repair it, {_REPAIR}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChecklistError(f"{where} cannot be read ({exc}). To repair it, {_REPAIR}.") from None
    if not isinstance(data, dict):
        raise ChecklistError(f"{where}: expected a mapping with keys {', '.join(sorted(_TOP_KEYS))}.")
    missing = sorted(_TOP_KEYS - set(data))
    if missing:
        raise ChecklistError(f"{where}: missing key(s) {', '.join(missing)}.")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ChecklistError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(_TOP_KEYS))}.")
    if data["id"] != cid:
        raise ChecklistError(f"{where}: its id is '{data['id']}', expected '{cid}'.")
    raw_items = data["items"]
    if not isinstance(raw_items, list):
        raise ChecklistError(f"{where}: 'items' must be a list.")
    items = tuple(_parse_item(raw, i, where, cid) for i, raw in enumerate(raw_items))
    expected = data["expected_count"]
    if len(items) != expected:
        raise ChecklistError(f"{where}: has {len(items)} {data['unit']}s, expected {expected}.")
    seen: dict[str, str] = {}
    for item in items:
        for label in filter(None, (item.id, item.alias)):
            key = _norm_item(label)
            if key in seen:
                raise ChecklistError(f"{where}: duplicate id '{label}' (also used by '{seen[key]}').")
            seen[key] = item.id
    return Checklist(id=cid, name=str(data["name"]), version=str(data["version"]),
                     source=" ".join(str(data["source"]).split()), unit=str(data["unit"]), items=items)


def _parse_item(raw: Any, index: int, where: str, cid: str) -> ChecklistItem:
    if not isinstance(raw, dict):
        raise ChecklistError(f"{where}: item #{index + 1} is not a mapping.")
    label = f"{where}: item '{raw.get('id', f'#{index + 1}')}'"
    unknown = sorted(set(raw) - _ITEM_KEYS)
    if unknown:
        raise ChecklistError(f"{label} has unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(_ITEM_KEYS))}.")
    for key in ("id", "section", "topic", "coverage"):
        if raw.get(key) in (None, ""):
            raise ChecklistError(f"{label} has no '{key}'.")
    if raw["coverage"] not in COVERAGE_LEVELS:
        raise ChecklistError(f"{label}: coverage '{raw['coverage']}' is not one of {', '.join(COVERAGE_LEVELS)}.")
    lists = {}
    for key in ("evidence", "planned", "requires"):
        value = raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ChecklistError(f"{label}: '{key}' must be a list of non-empty strings.")
        lists[key] = tuple(value)
    stray = [r for r in lists["requires"] if r not in lists["evidence"]]
    if stray:
        raise ChecklistError(f"{label}: requires {', '.join(stray)}, which its 'evidence' does not list.")
    modality = raw.get("modality")
    if modality is not None and modality not in MODALITIES:
        raise ChecklistError(f"{label}: modality '{modality}' is not one of {', '.join(MODALITIES)}.")
    applies_to = raw.get("applies_to")
    if cid == "tripod-ai" and applies_to not in APPLIES_TO:
        raise ChecklistError(f"{label}: applies_to '{applies_to}' is not one of {', '.join(APPLIES_TO)}.")
    if cid == "future-ai" and not (raw.get("principle") and raw.get("alias")):
        raise ChecklistError(f"{label} needs a 'principle' and an 'alias'.")
    return ChecklistItem(
        id=str(raw["id"]), section=str(raw["section"]), topic=str(raw["topic"]),
        evidence=lists["evidence"], planned=lists["planned"], coverage=raw["coverage"],
        applies_to=None if applies_to is None else str(applies_to),
        principle=raw.get("principle"), alias=raw.get("alias"),
        note=" ".join(str(raw.get("note") or "").split()),
        requires=lists["requires"], modality=modality,
    )


def _norm_item(value: Any) -> str:
    return " ".join(str(value).split()).lower()


def unknown_item_message(checklist: Checklist, item_id: Any) -> str:
    """An error message for an item id the checklist lacks, with close matches."""
    labels = {_norm_item(x): x for x in (*checklist.ids, *(i.alias for i in checklist.items if i.alias))}
    close = [labels[c] for c in difflib.get_close_matches(_norm_item(item_id), list(labels), n=4, cutoff=0.5)]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return (f"{checklist.name} has no {checklist.unit} '{item_id}'.{hint} It has "
            f"{len(checklist.items)} {checklist.unit_plural}: {checklist.ids[0]} ... {checklist.ids[-1]}"
            f" (run 'future-audit checklist {checklist.id}' to list them).")


# -------------------------------------------------------------------------------- references
def ref(checklist_id: str, item_id: str) -> str:
    """The reference string of an item: ``ref("claim-2024", "38") == "CLAIM-2024:38"``."""
    return f"{REF_PREFIX[resolve_checklist_id(checklist_id)]}:{item_id}"


def parse_ref(text: str) -> tuple[str, str]:
    """``"TRIPOD+AI:23a"`` → ``("tripod-ai", "23a")``; the prefix may also be an id or alias.

    Only the spelling is checked; :func:`validate_references` checks that the item exists.
    """
    prefix, sep, item = str(text).partition(":")
    if not sep or not prefix.strip() or not item.strip():
        raise ConfigError(
            f"Checklist reference '{text}' is not of the form CHECKLIST:ITEM "
            "(e.g. CLAIM-2024:38, TRIPOD+AI:23a, FUTURE-AI:Fairness 3)."
        )
    return resolve_checklist_id(prefix), " ".join(item.split())


def validate_references(refs: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Check checklist references; return them as canonical (checklist id, item id) pairs.

    Raises ConfigError naming the reference for an unknown checklist or item.
    """
    out = []
    for text in refs:
        cid, item_id = parse_ref(text)
        checklist = load_checklist(cid)
        item = checklist.find(item_id)
        if item is None:
            raise ConfigError(f"Checklist reference '{text}': {unknown_item_message(checklist, item_id)}")
        out.append((cid, item.id))
    return tuple(out)


def _ref_key(text: str) -> tuple[str, str] | None:
    """Canonical (checklist id, item id) of a reference, or None if it names nothing known."""
    try:
        cid, item_id = parse_ref(text)
        item = load_checklist(cid).find(item_id)
    except ConfigError:
        return None
    return None if item is None else (cid, item.id)


# -------------------------------------------------------------------------------- states
def item_states(
    checklist: Checklist,
    result: AuditResult | None,
    attestations: Mapping[str, Any] | None = None,
) -> list[ItemState]:
    """Sort every item of ``checklist`` into one of :data:`STATES`.

    Evidence is *present* for an item when a plugin that ran (not SKIPPED or ERROR)
    produced a defined value of one of its evidence metric ids, or when it names a core
    evidence kind the result holds: ``provenance`` (non-empty provenance),
    ``dataset_summary`` (non-empty data summary), ``operating_point`` (a ``threshold``
    metric), ``uncertainty`` (any metric with an interval) or ``model_call`` (the audit
    called the model itself rather than reading a predictions file).

    The item is then *measured* when that evidence answers all of it: the checklist file
    rates its coverage full, names no planned capability for it, and every kind it
    ``requires`` is present. Evidence for part of an item makes it *partly measured*, or
    *attested* when ``attestations`` answers it too (it keeps the evidence). Without
    evidence it is attested when answered, else *not applicable* when it is about a kind of
    data the audit did not have (``modality: imaging`` and no imaging data), else *open*.
    A measured item keeps its attestation; so does a not-applicable one, which the answer
    makes attested (the team says it applies).

    Linked findings are those of the plugins that produced the evidence, plus any finding
    (of a plugin that ran) whose ``checklist`` references name the item. A reference alone
    does not make an item measured: only the reviewed evidence lists of the checklist
    files do, so that a plugin cannot claim an item the checklist does not support.

    ``attestations`` maps item id → Attestation for this checklist, or checklist id → item
    id → Attestation (as :func:`audit.attestations.load_attestations` returns). Without a
    result (``None``) nothing is measured and nothing is ruled not applicable.
    """
    answers = _answers_for(checklist, attestations)
    plugins = [p for p in (result.plugins if result is not None else ()) if p.status not in _NOT_RUN]
    # metric id -> plugins that produced a defined value of it
    produced: dict[str, list[Any]] = {}
    for plugin in plugins:
        for metric in plugin.metrics:
            if metric.value is not None and plugin not in produced.setdefault(metric.id, []):
                produced[metric.id].append(plugin)
    with_ci = [p for p in plugins if any(m.ci is not None for m in p.metrics)]
    kinds_present = {
        "provenance": (result is not None and bool(result.provenance), []),
        "dataset_summary": (result is not None and bool(result.data_summary), []),
        "operating_point": ("threshold" in produced, produced.get("threshold", [])),
        "uncertainty": (bool(with_ci), with_ci),
        "model_call": (_model_called(result), []),
    }
    referenced: dict[tuple[str, str], list[tuple[Any, Any]]] = {}
    for plugin in plugins:
        for finding in plugin.findings:
            if finding.status in _NOT_RUN:
                continue
            for text in finding.checklist:
                key = _ref_key(text)
                if key is not None:
                    referenced.setdefault(key, []).append((plugin, finding))

    states = []
    for item in checklist.items:
        metric_ids = tuple(e for e in item.evidence if e not in CORE_EVIDENCE and e in produced)
        kinds = tuple(e for e in item.evidence if e in CORE_EVIDENCE and kinds_present[e][0])
        sources = [p for e in metric_ids for p in produced[e]]
        sources += [p for k in kinds for p in kinds_present[k][1]]
        linked: dict[tuple[str, str], str] = {}
        for plugin in sources:
            for f in plugin.findings:
                linked.setdefault((plugin.plugin, f.id), str(f.status))
        for plugin, f in referenced.get((checklist.id, item.id), []):
            linked.setdefault((plugin.plugin, f.id), str(f.status))
        findings = tuple((p, fid, status) for (p, fid), status in linked.items())
        answer = answers.get(item.id)
        present = {*metric_ids, *kinds}
        missing = tuple(r for r in item.requires if r not in present)
        not_applicable = (result is not None and item.modality is not None
                          and not _has_modality(result, item.modality))
        if present and item.fully_measurable and not missing:
            state, note = "measured", "also answered in writing" if answer is not None else ""
        elif present and answer is not None:
            state, note = "attested", "answered in writing; the audit measured part of it"
        elif present:
            state, note = "partly measured", _partial_note(item, missing)
        elif answer is not None:
            state, note = "attested", "answered in writing (attestation)"
        elif not_applicable:
            state, note = "not applicable", _MODALITY_NA[item.modality]
        else:
            state, note = "open", _open_note(item, result is not None)
        if not present and findings:
            # A plugin's own reference links its findings, but only the reviewed evidence
            # list of the checklist file makes an item measured.
            note += "; findings reference it but the checklist names none of their metrics as evidence"
        states.append(ItemState(item=item, state=state, findings=findings, metric_ids=metric_ids,
                                attestation=answer, note=note, kinds=kinds))
    return states


def _model_called(result: AuditResult | None) -> bool:
    """Whether the audit called the model itself (any adapter but a predictions file)."""
    model = result.provenance.get("model") if result is not None else None
    kind = model.get("kind") if isinstance(model, Mapping) else None
    return isinstance(kind, str) and bool(kind) and kind != "predictions"


def _has_modality(result: AuditResult, modality: str) -> bool:
    """Whether the audited data include ``modality`` (``imaging``).

    The audit reads tables only so far; an image dataset kind will record itself in the
    data configuration (``data.kind``) or the data summary (``modality``), and then the
    imaging items apply.
    """
    data = result.config.get("data") if isinstance(result.config, Mapping) else None
    kind = data.get("kind") if isinstance(data, Mapping) else None
    summary = result.data_summary if isinstance(result.data_summary, Mapping) else {}
    declared = {str(v).lower() for v in (kind, summary.get("modality")) if v}
    return modality in declared or (modality == "imaging" and bool(declared & {"image", "images"}))


def _answers_for(checklist: Checklist, attestations: Mapping[str, Any] | None) -> dict[str, Any]:
    if not attestations:
        return {}
    if checklist.id in attestations and isinstance(attestations[checklist.id], Mapping):
        attestations = attestations[checklist.id]
    elif any(k in CHECKLIST_IDS for k in attestations):
        return {}  # attestations for other checklists only
    out = {}
    for key, answer in attestations.items():
        out[checklist.item(key).id] = answer
    return out


def needs_answer(item: ChecklistItem) -> bool:
    """Whether a written answer is needed besides what the tool can measure at best.

    Whether it is needed after a given audit is :attr:`ItemState.wants_answer` (a required
    evidence kind may be missing from that audit).
    """
    return not item.fully_measurable


def _partial_note(item: ChecklistItem, missing: tuple[str, ...]) -> str:
    parts = []
    if item.planned:
        parts.append("not yet assessed: " + "; ".join(item.planned))
    parts += [_REQUIRE_MISSING.get(kind, f"no {kind} in this audit") for kind in missing]
    if item.coverage != "full" or not missing:
        parts.append("the rest needs a written answer")
    return "; ".join(parts)


def _open_note(item: ChecklistItem, have_result: bool) -> str:
    if item.evidence:
        what = ", ".join(item.evidence)
        lead = f"not measured in this audit (evidence would be: {what})" if have_result else f"measurable by: {what}"
        note = lead + (f"; planned: {'; '.join(item.planned)}" if item.planned else "")
    elif item.planned:
        note = "not assessed yet: " + "; ".join(item.planned)
    else:
        note = _NEEDS_ANSWER
    if item.modality is not None:
        note += f" ({_MODALITY_OPEN[item.modality]})"
    return note


def coverage(states: Iterable[ItemState]) -> dict[str, int]:
    """Counts: ``total`` and one per state of :data:`STATES` (``"partly measured"`` ...);
    plus ``attested_partly``: attested items that the audit also measured in part."""
    states = list(states)
    counts = {"total": len(states), **{s: sum(st.state == s for st in states) for s in STATES}}
    counts["attested_partly"] = sum(st.state == "attested" and bool(st.evidence) for st in states)
    return counts


def coverage_line(checklist: Checklist, states: Iterable[ItemState]) -> str:
    """``"TRIPOD+AI: 1 of 52 sub-items measured, 4 attested, 10 partly measured,
    0 not applicable, 37 open"``: every state, always in this order."""
    c = coverage(states)
    rest = ", ".join(f"{c[s]} {s}" for s in STATES[1:])
    return f"{checklist.name}: {c['measured']} of {c['total']} {checklist.unit_plural} measured, {rest}"


# -------------------------------------------------------------------------------- terminal
_STYLE = {"measured": "green", "attested": "cyan", "partly measured": "blue", "not applicable": "dim",
          "open": "yellow"}


def format_checklist_table(checklist: Checklist, states: Iterable[ItemState]) -> Table:
    """A rich table of the checklist: id, section, topic, state, evidence or answer.

    For ``future-audit checklist NAME [results.json]``: without results every item is open
    (or attested) and the last column says what could measure it.
    """
    from rich.table import Table
    from rich.text import Text

    states = list(states)
    table = Table(title=f"{checklist.name} ({checklist.version})", caption=coverage_line(checklist, states),
                  show_lines=False, expand=False)
    table.add_column("id", no_wrap=True)
    table.add_column("section")
    table.add_column("topic")
    table.add_column("state", no_wrap=True)
    table.add_column("evidence / answer")
    for st in states:
        item = st.item
        ident = item.id + (f" ({item.alias})" if item.alias else "")
        if item.applies_to:
            ident += f" [{item.applies_to}]"
        table.add_row(Text(ident), Text(item.section), Text(item.topic),
                      Text(st.state, style=_STYLE.get(st.state, "")), Text(_evidence_cell(st)))
    return table


def _evidence_cell(st: ItemState) -> str:
    lines = []
    if st.evidence:  # measured, partly measured, or attested and measured in part
        lines.append(", ".join(st.evidence))
        if st.findings:
            lines.append("findings: " + ", ".join(f"{p}.{fid} {status}" for p, fid, status in st.findings))
        if st.note:
            lines.append(st.note)
        if st.item.note:
            lines.append(st.item.note)
    if st.attestation is not None:
        answer = " ".join(str(st.attestation.answer).split())
        lines.append("answer: " + (answer if len(answer) <= 160 else answer[:157] + "..."))
    elif not st.evidence:  # open or not applicable: why
        lines.append(st.note)
    return "\n".join(lines)
