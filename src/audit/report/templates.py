"""Where the Jinja2 templates are, and the environment that renders them."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

import audit
from audit.errors import AuditError


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


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """HTML environment: every ``{{ }}`` is escaped, undefined names are errors."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
