"""Renderers: they read an :class:`~audit.core.results.AuditResult` and nothing else.

``render_html`` (two editions: ``edition="board"`` is report.html, for the people who decide,
and ``edition="technical"``, the default, is technical-report.html, every number),
``render_markdown`` (summary.md), ``render_model_card`` (model_card.md), ``render_junit``
(junit.xml) and ``render_json`` (results.json) each return a string, ``render_pdf`` (report.pdf
or technical-report.pdf, the ``pdf`` extra) bytes; ``write_reports`` writes the requested ones as one
report set (swapped into the output folder at once; ``check_output_folder`` checks that folder
before a run), ``load_result`` reads results.json back so any report can be re-rendered from it.
"""

from audit.report.html import render_html
from audit.report.junit import render_junit
from audit.report.markdown import render_markdown
from audit.report.model_card import render_model_card
from audit.report.files import (
    FORMATS,
    check_output_folder,
    load_result,
    render_json,
    write_atomic,
    write_reports,
)
from audit.report.pdf import render_pdf
from audit.report.templates import templates_dir

__all__ = [
    "FORMATS",
    "check_output_folder",
    "load_result",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_model_card",
    "render_pdf",
    "templates_dir",
    "write_atomic",
    "write_reports",
]
