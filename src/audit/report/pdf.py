"""report.pdf: report.html printed by WeasyPrint (the ``pdf`` extra), with its print stylesheet."""

from __future__ import annotations

from audit.core.results import AuditResult
from audit.errors import MissingExtraError
from audit.report.html import render_html


def _data_only_fetcher():
    """A URL fetcher that loads data: URIs and refuses everything else (nothing to fetch)."""
    try:  # WeasyPrint >= 66
        from weasyprint.urls import URLFetcher

        return URLFetcher(allowed_protocols=("data",))
    except ImportError:
        from weasyprint import default_url_fetcher

        def fetch(url: str, *args, **kwargs):
            if not url.startswith("data:"):
                raise ValueError(f"report.pdf does not load external resources ({url[:60]})")
            return default_url_fetcher(url, *args, **kwargs)

        return fetch


def render_pdf(result: AuditResult) -> bytes:
    """Render :func:`render_html`'s page as PDF (A4, "Page N of M", contents with page numbers).

    The PDF variant of the page (``for_pdf=True``) has every collapsible section open and a
    table of contents; its numbers are those of report.html. Figures stay SVG, loaded from
    their data URIs; nothing else is fetched.

    Raises
    ------
    MissingExtraError
        WeasyPrint (``pip install 'future-audit[pdf]'``) is not installed or cannot load its
        system libraries.
    """
    try:
        import weasyprint
    except (ImportError, OSError):
        raise MissingExtraError("weasyprint", "pdf", "The PDF report") from None
    html = render_html(result, for_pdf=True)
    return weasyprint.HTML(string=html, url_fetcher=_data_only_fetcher()).write_pdf()
