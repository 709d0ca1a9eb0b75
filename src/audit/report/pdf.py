"""report.pdf and technical-report.pdf: an edition of the HTML report printed by WeasyPrint (the
``pdf`` extra), with its print stylesheet.

The layout runs in a child process of the same interpreter (:mod:`audit.report.pdf_layout`)
with a time limit, :data:`LAYOUT_TIMEOUT_S` seconds or the environment variable
:data:`TIMEOUT_ENV`: WeasyPrint's line breaking can take minutes on pathological text (1 KB
group names took 85 s), and a report must not hang a CI job. Starting the child costs about a
second (it imports WeasyPrint), paid only for the PDF.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import audit
from audit.core.results import AuditResult
from audit.errors import ConfigError, InputError, MissingExtraError
from audit.report.html import EDITIONS, render_html

# Seconds the PDF layout may take: the demo takes a few, 1,000 groups well under a minute.
LAYOUT_TIMEOUT_S = 120.0
TIMEOUT_ENV = "FUTURE_AUDIT_PDF_TIMEOUT"


def layout_timeout() -> float:
    """The time limit of the PDF layout, in seconds: ``$FUTURE_AUDIT_PDF_TIMEOUT`` if set,
    else :data:`LAYOUT_TIMEOUT_S`.

    Raises
    ------
    ConfigError
        The environment variable is not a positive number.
    """
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return LAYOUT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{TIMEOUT_ENV}: expected a number of seconds > 0, got {raw!r}.")
    return value


def _child_env() -> dict[str, str]:
    # The child imports audit.report.pdf_layout from where this process found audit, also
    # when that is a source tree on sys.path rather than an installed package.
    env = dict(os.environ)
    root = str(Path(audit.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


# The file each edition's PDF is written to, for messages.
PDF_NAMES = {"board": "report.pdf", "technical": "technical-report.pdf"}


def _layout(html: str, limit: float, name: str = "report.pdf") -> bytes:
    # -P: the working directory is not put on sys.path, so a file there named like a module
    # WeasyPrint imports (html.py, weasyprint.py) cannot shadow it.
    command = [sys.executable, "-P", "-m", "audit.report.pdf_layout"]
    try:
        done = subprocess.run(
            command, input=html.encode("utf-8"), capture_output=True, timeout=limit, env=_child_env(), check=False
        )
    except subprocess.TimeoutExpired:  # subprocess.run has killed and reaped the child
        raise InputError(
            f"{name}: layout did not finish within {limit:g} s (very long group names or many "
            "groups?). The other formats do not need it: re-run without the PDF (e.g. --format "
            f"html,json,md), or allow more time with the environment variable {TIMEOUT_ENV}=<seconds>."
        ) from None
    if done.returncode != 0 or not done.stdout.startswith(b"%PDF"):
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(
            f"{name}: WeasyPrint failed (exit code {done.returncode}): {lines[-1] if lines else 'no output'}"
        )
    return done.stdout


def render_pdf(result: AuditResult, *, timeout: float | None = None, edition: str = "technical") -> bytes:
    """Render an edition of :func:`render_html`'s page as PDF (A4, "Page N of M").

    The PDF variant of the page (``for_pdf=True``) has every collapsible section open; its
    numbers are those of the HTML page of the same edition. The technical edition
    (technical-report.pdf) has a table of contents with page numbers; the board edition
    (report.pdf) is a few pages: first screen, key findings, what was not assessed, sign-off
    and provenance. Figures stay SVG, loaded from their data URIs; nothing else is fetched.
    WeasyPrint runs in a child process, stopped after ``timeout`` seconds.

    Parameters
    ----------
    result : AuditResult
        The audit to render.
    timeout : float, optional
        Seconds the layout may take; default :func:`layout_timeout` (120 s, or
        ``$FUTURE_AUDIT_PDF_TIMEOUT``).
    edition : {"technical", "board"}, default "technical"
        Which edition (see :func:`~audit.report.render_html`).

    Raises
    ------
    MissingExtraError
        WeasyPrint (``pip install 'future-audit[pdf]'``) is not installed or cannot load its
        system libraries.
    InputError
        The layout did not finish in time (the child process is killed).
    ConfigError
        ``$FUTURE_AUDIT_PDF_TIMEOUT`` is not a positive number.
    ValueError
        ``edition`` is neither ``"technical"`` nor ``"board"``.
    """
    if edition not in EDITIONS:
        raise ValueError(f"edition: expected one of {', '.join(EDITIONS)}, got {edition!r}.")
    try:
        import weasyprint  # noqa: F401  (here, so that a missing extra is told as such)
    except (ImportError, OSError):
        raise MissingExtraError("weasyprint", "pdf", "The PDF report") from None
    limit = layout_timeout() if timeout is None else timeout
    return _layout(render_html(result, for_pdf=True, edition=edition), limit, PDF_NAMES[edition])
