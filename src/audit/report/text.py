"""Text safety: how every human-readable report writes a string that came from the data.

Group names, column and label names, file names and attestations hold whatever a CSV cell or
a YAML file held, and plugins quote them in their messages. Three things go wrong with such
strings; this module is the one place that handles each, and every renderer uses it.

* Control characters (C0, DEL, C1) corrupt the outputs: XML 1.0 (junit.xml, the SVG figures)
  cannot carry most of them and a newline breaks a Markdown table row. :func:`clean` drops
  them; a tab, newline or other line break becomes a space.
* Bidirectional controls (LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI; LRM, RLM, ALM) reorder
  the text around them: an RLO (U+202E) in a group name reverses the rest of a verdict
  sentence, numbers included. :func:`clean` removes them, in every output. In HTML a user
  string with anything that can change direction (such a control, a right-to-left letter
  or an Arabic digit) is also isolated in ``<bdi>`` (:func:`user_html`, the ``user``
  template filter), so that even a genuinely right-to-left name cannot reorder the English
  sentence around it. A string of left-to-right and neutral characters cannot reorder a
  left-to-right page and gets no markup: a 1,000-group report does not carry a ``<bdi>`` in
  every cell, and the sentences of an ordinary report read the same in HTML and in text.
* Length: a 10 KB group name stalled WeasyPrint's line breaking for minutes and filled every
  table. A name is shown with at most :data:`DISPLAY_LIMIT` characters (:func:`shorten`,
  :func:`display_label`), a free text (message, summary, warning) with at most
  :data:`TEXT_LIMIT`; results.json keeps every value whole.

Plugins write names into their messages themselves, so :class:`Names` knows the names of a
result that need care (long, or able to change direction) and finds them inside free text,
where they are shortened and isolated as in the tables.

Names are shortened where the report's views are built (``formatting.group_label``) and
keep their bidi controls until the output: plain-text outputs :func:`clean` them, the HTML
filter decides on the original string whether to isolate it and then cleans it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from markupsafe import Markup, escape

from audit.core.results import AuditResult

# Characters of a name shown in a report: more than any real group, column or file name we
# have met (the 61-character hospital name of the PDF tests is shown whole), few enough that
# a group table stays readable and a hostile name costs 80 characters wherever it is named.
DISPLAY_LIMIT = 80
# Characters of a free text (a finding message, a summary, a warning) shown. A fairness
# message names every group, about 45 characters each: 20,000 shows ~400 groups; the rest
# is in the tables (and whole in results.json).
TEXT_LIMIT = 20_000
ELLIPSIS = "…"

_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Controls that separate words become a space; XML cannot carry surrogates, U+FFFE, U+FFFF.
_SPACES = "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029"
_CONTROLS = {c: None for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROLS.update({ord(c): " " for c in _SPACES})
_CONTROLS.update({c: "\ufffd" for c in [*range(0xD800, 0xE000), 0xFFFE, 0xFFFF]})
_CLEAN = {**_CONTROLS, **{ord(c): None for c in _BIDI_CONTROLS}}
# Bidi classes that can change the direction of the text around them (or of themselves).
_DIRECTIONAL = frozenset({"R", "AL", "AN", "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})


def _plain(s: str) -> bool:
    return s.isascii() and s.isprintable()


def clean(text: object, *, lines: bool = False) -> str:
    """``text`` without control characters and bidi controls (line breaks become spaces,
    or with ``lines`` stay ``\\n``, for a text whose lines matter: an attestation answer).

    For every output; in plain text (Markdown, the model card, junit.xml, figure labels)
    it is all there is to do, HTML also isolates (:func:`user_html`).
    """
    s = str(text)
    if _plain(s):
        return s
    if lines:
        return "\n".join(part.translate(_CLEAN) for part in s.replace("\r\n", "\n").split("\n"))
    return s.translate(_CLEAN)


def shorten(text: object, limit: int = DISPLAY_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis; control characters
    dropped, bidi controls kept (each output removes them, HTML first decides on them)."""
    s = str(text)
    if not _plain(s):
        s = s.translate(_CONTROLS)
    if len(s) <= limit:
        return s
    return s[: limit - 1].rstrip() + ELLIPSIS


def display_label(text: object, limit: int = DISPLAY_LIMIT) -> str:
    """``text`` cleaned (:func:`clean`) and shortened to ``limit`` characters with an ellipsis.

    ``limit`` defaults to :data:`DISPLAY_LIMIT` (80): the full value stays in results.json.
    """
    return shorten(clean(text), limit)


def needs_isolation(text: str) -> bool:
    """Whether ``text`` holds a character that can change direction: a right-to-left letter,
    an Arabic digit or a bidi control. Only such a string can reorder a left-to-right page."""
    return not text.isascii() and any(unicodedata.bidirectional(c) in _DIRECTIONAL for c in text)


def user_html(value: object, lines: bool = False) -> Markup:
    """A user string for HTML: cleaned, escaped and, when it can change direction, in ``<bdi>``.

    The ``user`` filter of the report templates (``lines=true`` keeps its line breaks, for
    a ``white-space: pre-line`` block). Markup (HTML this package built) is returned as it is.
    """
    if isinstance(value, Markup):
        return value
    s = str(value)
    safe = escape(clean(s, lines=lines))
    return Markup("<bdi>%s</bdi>") % safe if needs_isolation(s) else safe


@dataclass(frozen=True)
class Name:
    """A user name inside a sentence, as shown (already shortened, e.g. a ``group_label``):
    cleaned in plain text, isolated in HTML where it needs it."""

    text: str


Part = str | Name


def phrase_text(parts: Iterable[Part]) -> str:
    """A sentence made of text and names, as plain text: everything cleaned."""
    return "".join(clean(p.text) if isinstance(p, Name) else clean(p) for p in parts)


def phrase_html(parts: Iterable[Part]) -> Markup:
    """The same sentence as HTML: text escaped, each name in ``<bdi>`` when it needs it, and
    the whole in ``<bdi>`` when its own text is right-to-left (a plugin writing Hebrew)."""
    parts = tuple(parts)
    body = Markup("").join(user_html(p.text) if isinstance(p, Name) else escape(clean(p)) for p in parts)
    if any(isinstance(p, str) and needs_isolation(p) for p in parts):
        return Markup("<bdi>%s</bdi>") % body
    return body


def _care(name: str) -> bool:
    return len(name) > DISPLAY_LIMIT or needs_isolation(name)


def _group_names(group: dict[str, str] | None) -> Iterator[str]:
    for key, value in (group or {}).items():
        yield str(key)
        yield str(value)


def result_names(result: AuditResult) -> Iterator[str]:
    """Every name of the data a result holds: group columns and values, finding labels."""
    for plugin in result.plugins:
        for m in plugin.metrics:
            yield from _group_names(m.group)
            yield from _group_names(m.reference_group)
            if m.label:
                yield m.label
        for f in plugin.findings:
            yield from _group_names(f.group)
        for key in ("labels", "sensitive_features"):
            value = plugin.settings.get(key)
            if isinstance(value, list | tuple):
                yield from map(str, value)
    for gate in result.gates:
        for c in gate.checks:
            yield from _group_names(c.group)
            if c.label:
                yield c.label


class Names:
    """The names of a result that need care in free text (longer than :data:`DISPLAY_LIMIT`,
    or able to change direction), found and marked in the messages that quote them.

    An ordinary result has none, and then free text is only cleaned (and, past
    :data:`TEXT_LIMIT` characters, cut).
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        wanted = {n for n in set(names) if n and _care(n)}
        self._names = sorted(wanted, key=len, reverse=True)
        self._cache: dict[str, tuple[Part, ...]] = {}

    @classmethod
    def of(cls, result: AuditResult) -> Names:
        return cls(result_names(result))

    def split(self, text: object) -> tuple[Part, ...]:
        """``text`` as parts: plain text and :class:`Name` where a name of the result is."""
        s = str(text)
        if s not in self._cache:
            self._cache[s] = _cut(self._split(s))
        return self._cache[s]

    def _split(self, s: str) -> tuple[Part, ...]:
        spans = []
        for name in self._names:  # longest first: a name inside a longer one is that one
            start = s.find(name)
            while start != -1:
                spans.append((start, start + len(name)))
                start = s.find(name, start + len(name))
        if not spans:
            return (s,)
        parts: list[Part] = []
        pos = 0
        for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
            if start < pos:
                continue  # overlaps a name already taken
            if start > pos:
                parts.append(s[pos:start])
            parts.append(Name(shorten(s[start:end])))
            pos = end
        if pos < len(s):
            parts.append(s[pos:])
        return tuple(parts)

    def text(self, text: object) -> str:
        """Free text for a plain-text output: cleaned, names shortened, at most ``TEXT_LIMIT``."""
        return phrase_text(self.split(text))

    def html(self, text: object) -> Markup:
        """Free text for HTML: escaped, names shortened and isolated (:func:`phrase_html`)."""
        return phrase_html(self.split(text))

    def apply(self, result: AuditResult) -> AuditResult:
        """``result`` with its free text (summaries, errors, warnings, finding titles and
        messages, gate messages) through :meth:`text`: the display version for plain text."""
        plugins = tuple(
            replace(
                p,
                summary=self.text(p.summary),
                error=None if p.error is None else self.text(p.error),
                warnings=tuple(self.text(w) for w in p.warnings),
                findings=tuple(
                    replace(f, title=self.text(f.title), message=self.text(f.message)) for f in p.findings
                ),
            )
            for p in result.plugins
        )
        gates = tuple(replace(g, message=self.text(g.message)) for g in result.gates)
        return replace(result, plugins=plugins, gates=gates, warnings=tuple(self.text(w) for w in result.warnings))


def for_plain_text(result: AuditResult) -> AuditResult:
    """``result`` with its free text cleaned and the names in it shortened, for Markdown, the
    model card and junit.xml (:meth:`Names.apply` with the result's own names)."""
    return Names.of(result).apply(result)


def _cut(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """At most :data:`TEXT_LIMIT` characters shown (names as shortened), then a note."""
    limit = TEXT_LIMIT
    sizes = [len(p) if isinstance(p, str) else len(p.text) for p in parts]
    total = sum(sizes)
    if total <= limit:
        return parts
    out: list[Part] = []
    shown = 0
    for p, size in zip(parts, sizes, strict=True):
        if shown + size > limit:
            if isinstance(p, str):
                out.append(p[: limit - shown])
            break
        out.append(p)
        shown += size
    out.append(f"{ELLIPSIS} (cut at {limit:,} of {total:,} characters; the full text is in results.json)")
    return tuple(out)
