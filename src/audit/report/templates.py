"""Where the Jinja2 templates are, and the environment that renders them."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

import audit
from audit.errors import AuditError
from audit.report.text import clean, user_html


def templates_dir() -> Path:
    """The report templates folder.

    A wheel force-includes ``reports/templates`` as ``audit/templates``; an editable install
    does not see force-included folders, so fall back to ``reports/templates`` at the
    repository root.
    """
    installed = Path(audit.__file__).resolve().parent / "templates"
    if installed.is_dir():
        return installed
    repository = Path(__file__).resolve().parents[3] / "reports" / "templates"
    if repository.is_dir():
        return repository
    raise AuditError(
        f"Report templates not found in {installed} nor in {repository}. "
        "Reinstall future-audit (pip install --force-reinstall future-audit)."
    )


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` string is cleaned of control and bidi characters before it is escaped
    (:func:`~audit.report.text.clean`), so no value can carry one into the page, even where
    a template forgot ``|user``. Markup (built by macros or by ``|user``) is already clean."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return clean(value)
    return value


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """HTML environment: every ``{{ }}`` is cleaned and escaped, undefined names are errors.

    The ``user`` filter marks a string from the data (a group, column, label or file name,
    an attestation): :func:`~audit.report.text.user_html` isolates it in ``<bdi>`` when it
    could change the direction of the text around it.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.filters["user"] = user_html
    return env
