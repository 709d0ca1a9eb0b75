"""Rendering the requested formats and writing them as one report set (see
:mod:`audit.report.report_set`), and reading results.json back."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from audit.core.results import SCHEMA_VERSION, AuditResult
from audit.errors import ConfigError, InputError, MissingExtraError
from audit.report.html import render_html
from audit.report.junit import render_junit
from audit.report.markdown import render_markdown
from audit.report.model_card import render_model_card
from audit.report.pdf import render_pdf
from audit.report.report_set import FILE_NAMES, FORMATS, MARKER, check_output_folder, write_set

__all__ = ["FILE_NAMES", "FORMATS", "MARKER", "check_output_folder", "load_result", "render_json",
           "write_atomic", "write_reports"]


def render_json(result: AuditResult) -> str:
    """The results.json contract: ``result.to_json()`` (schema in ``audit/schema``)."""
    return result.to_json()


def render_board_html(result: AuditResult) -> str:
    """report.html: the board edition (:func:`~audit.report.render_html`, ``edition="board"``)."""
    return render_html(result, edition="board")


def render_board_pdf(result: AuditResult) -> bytes:
    """report.pdf: the board edition printed (:func:`~audit.report.render_pdf`)."""
    return render_pdf(result, edition="board")


def render_technical_html(result: AuditResult) -> str:
    """technical-report.html: the whole report (``edition="technical"``)."""
    return render_html(result, edition="technical")


def render_technical_pdf(result: AuditResult) -> bytes:
    """technical-report.pdf: the whole report printed."""
    return render_pdf(result, edition="technical")


RENDERERS: dict[str, Callable[[AuditResult], str | bytes]] = {
    "html": render_board_html,
    "json": render_json,
    "junit": render_junit,
    "md": render_markdown,
    "pdf": render_board_pdf,
    "model_card": render_model_card,
    "technical": render_technical_html,
    "technical_pdf": render_technical_pdf,
}
# Formats that need WeasyPrint (the ``pdf`` extra).
PDF_FORMATS = frozenset({"pdf", "technical_pdf"})


def _continue_without_pdf(result: AuditResult) -> bool:
    report = result.config.get("report") or {}
    return isinstance(report, dict) and report.get("continue_without_pdf") is True


def write_atomic(path: str | os.PathLike, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8) to ``path`` so readers never see a partial file.

    The content goes to a temporary file in the same folder, which is then renamed over
    ``path`` (:func:`os.replace`); on any error the temporary file is removed and an existing
    ``path`` is left as it was.
    """
    path = Path(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    # O_EXCL + 0o666 gives a fresh file with the user's umask (tempfile would make it 0600).
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_reports(result: AuditResult, out_dir: str | os.PathLike, formats: Iterable[str]) -> dict[str, Path]:
    """Render the requested formats and write them into ``out_dir`` as one report set.

    Every format is rendered before anything is written, so a renderer that fails leaves
    nothing behind (not even ``out_dir``). The files and the marker ``.future-audit-run`` are
    then written and fsynced into a staging folder beside ``out_dir``
    (``.<name>.staging-<uuid>``), which replaces ``out_dir`` in one step: on Linux the two
    folders are exchanged with ``renameat2(RENAME_EXCHANGE)``; elsewhere ``out_dir`` is
    renamed aside and the staging folder renamed into place. Readers see the complete previous
    set or the complete new one, and no file of an earlier run is left beside the new ones.
    Files already in ``out_dir`` that were written from the same run (the same provenance,
    e.g. when ``future-audit report`` re-renders next to results.json) are carried into the
    new set.

    Parameters
    ----------
    result : AuditResult
        The audit to report.
    out_dir : path
        Folder for the reports; created (with parents) if missing. An existing folder must
        hold only report files of future-audit (see :func:`check_output_folder`).
    formats : iterable of str
        Any of ``"html"`` (report.html, the board edition), ``"technical"``
        (technical-report.html, the whole report), ``"json"`` (results.json), ``"junit"``
        (junit.xml), ``"md"`` (summary.md), ``"pdf"`` (report.pdf) and ``"technical_pdf"``
        (technical-report.pdf), both needing the ``pdf`` extra, and ``"model_card"``
        (model_card.md).

    Returns
    -------
    dict of str to Path
        Format → path of the file written, in the order requested. ``"pdf"`` and
        ``"technical_pdf"`` are left out when WeasyPrint is missing and
        ``config["report"]["continue_without_pdf"]`` is true.

    Raises
    ------
    ConfigError
        A format is not one of the above; ``out_dir`` cannot be used (see
        :func:`check_output_folder`); or writing failed (no space left, read-only file system,
        permission denied): the previous set is left as it was and the staging folder removed.
    MissingExtraError
        A PDF was asked for, WeasyPrint is not installed and the configuration does not
        allow continuing without it. Nothing is written.
    """
    wanted = list(dict.fromkeys(str(f).strip().lower() for f in formats))
    unknown = [f for f in wanted if f not in FILE_NAMES]
    if unknown:
        raise ConfigError(
            f"Unknown report format(s) {', '.join(map(repr, unknown))} in report.formats; "
            f"expected any of: {', '.join(FORMATS)}."
        )
    texts = {}
    for fmt in wanted:
        try:
            texts[fmt] = RENDERERS[fmt](result)
        except MissingExtraError:
            if fmt in PDF_FORMATS and _continue_without_pdf(result):
                continue
            raise
    out = write_set(out_dir, {FILE_NAMES[fmt]: text for fmt, text in texts.items()}, result.provenance)
    return {fmt: out / FILE_NAMES[fmt] for fmt in texts}


def load_result(path: str | os.PathLike) -> AuditResult:
    """Read a results.json written by :func:`write_reports` (or ``AuditResult.to_json``).

    Raises
    ------
    InputError
        The file is missing or unreadable, is not JSON, or is not a future-audit results
        file (of a compatible schema version); the message names the file.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"Results file {str(p)!r} not found. Pass the results.json of an audit run."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise InputError(f"Results file {str(p)!r} cannot be read ({reason}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"Results file {str(p)!r} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}). Expected a results.json written by future-audit."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("plugins"), list):
        raise InputError(
            f"{str(p)!r} is not a future-audit results file: expected a JSON object with a "
            "'plugins' list (a results.json written by future-audit)."
        )
    version = str(data.get("schema_version", ""))
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise InputError(
            f"{str(p)!r} has results schema version {version or 'missing'!r}; this future-audit "
            f"reads version {SCHEMA_VERSION.split('.')[0]}.x. Re-run the audit with this version."
        )
    try:
        return AuditResult.from_dict(data)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{str(p)!r} is not a valid future-audit results file ({first_line}).") from None
