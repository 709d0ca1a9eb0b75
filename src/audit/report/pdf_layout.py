"""The child process of :func:`audit.report.render_pdf`: the HTML page on stdin, its PDF on stdout.

WeasyPrint's layout is pure Python and cannot be interrupted from a thread; run in its own
process (``python -m audit.report.pdf_layout``), it can be stopped after a time limit.
"""

from __future__ import annotations

import sys


def _data_only_fetcher():
    """A URL fetcher that loads data: URIs and refuses everything else (nothing to fetch)."""
    try:  # WeasyPrint >= 66
        from weasyprint.urls import URLFetcher

        return URLFetcher(allowed_protocols=("data",))
    except ImportError:
        from weasyprint import default_url_fetcher

        def fetch(url: str, *args, **kwargs):
            if not url.startswith("data:"):
                raise ValueError(f"the PDF report does not load external resources ({url[:60]})")
            return default_url_fetcher(url, *args, **kwargs)

        return fetch


def layout(html: str) -> bytes:
    """The PDF of ``html``: A4 and the page's print stylesheet; only data: URIs are loaded."""
    import weasyprint

    return weasyprint.HTML(string=html, url_fetcher=_data_only_fetcher()).write_pdf()


def main() -> None:
    html = sys.stdin.buffer.read().decode("utf-8")
    sys.stdout.buffer.write(layout(html))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
