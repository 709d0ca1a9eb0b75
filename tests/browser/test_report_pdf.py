"""report.pdf of the demo: pages as images (pdftoppm), text per page (pdftotext), page count
(pdfinfo), and the same numbers as report.html."""

from __future__ import annotations

import html as html_lib
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.slow

POPPLER = ("pdftoppm", "pdftotext", "pdfinfo")


def _run(*args) -> str:
    # No skip: `make test` installs poppler-utils, so a missing tool is a failure to fix.
    assert shutil.which(args[0]), f"{args[0]} (poppler-utils) is not installed: run `make system-deps`"
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout


def _pages(pdf) -> int:
    return int(re.search(r"^Pages:\s+(\d+)$", _run("pdfinfo", str(pdf)), flags=re.M).group(1))


def _page_text(pdf, first: int, last: int | None = None) -> str:
    return _run("pdftotext", "-layout", "-f", str(first), "-l", str(last or first), str(pdf), "-")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_pages_as_images_and_page_count(demo_pdf, tmp_path):
    pages = _pages(demo_pdf)
    assert pages >= 3
    _run("pdftoppm", "-png", "-r", "40", str(demo_pdf), str(tmp_path / "page"))
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == pages
    assert all(p.stat().st_size > 1000 for p in images)


def _bare(text: str) -> str:
    """Without any whitespace: table cells wrap at different places in HTML and PDF."""
    return "".join(text.split())


def test_first_page_carries_the_verdict(demo_pdf, demo):
    first = _flat(_page_text(demo_pdf, 1))
    assert "Verdict" in first and "What the audit found" in first
    assert "Among patients with covid=1, the model missed" in first
    html = demo.html.read_text(encoding="utf-8")
    sentence = re.search(r"(Among patients with covid=1, the model missed [^<]+?\.) ", html).group(1)
    raw_first = _run("pdftotext", "-raw", "-f", "1", "-l", "1", str(demo_pdf), "-")
    assert _bare(html_lib.unescape(sentence)) in _bare(raw_first)  # the same sentence, the same numbers
    for principle in ("Fairness", "Universality", "Traceability", "Usability", "Robustness", "Explainability"):
        assert principle in first
    assert f"Page 1 of {_pages(demo_pdf)}" in first


def _overall_fnr(html: str) -> str:
    """The overall row's FNR cell of the first group table of report.html, as text."""
    table = html.split('<table class="metrics">', 1)[1].split("</table>", 1)[0]
    headers = re.findall(r"<th>([^<]*)</th>", table.split("</thead>")[0])
    overall = table.split('<tr class="overall">', 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", overall)
    return _flat(html_lib.unescape(re.sub(r"<[^>]+>", " ", cells[headers.index("FNR")])))


def test_pdf_numbers_equal_the_html(demo_pdf, demo):
    html = demo.html.read_text(encoding="utf-8")
    fnr = _overall_fnr(html)
    assert re.fullmatch(r"\d+\.\d% \(\d+\.\d%–\d+\.\d%\)", fnr)
    text = _run("pdftotext", "-raw", str(demo_pdf), "-")
    assert _bare(fnr) in _bare(text)
    caption = re.search(r"dashed line: overall \((\d+\.\d%)\)", html).group(1)
    assert f"dashed line: overall ({caption})" in _flat(text) and fnr.startswith(caption)


def test_contents_give_the_right_page_numbers(demo_pdf):
    toc = _page_text(demo_pdf, 1, 2)
    entries = dict(re.findall(r"^\s*(Findings|Gates|Methods|Checklist coverage|Provenance|Glossary)\s*\.+\s*(\d+)\s*$",
                              toc, flags=re.M))
    assert set(entries) == {"Findings", "Gates", "Methods", "Checklist coverage", "Provenance", "Glossary"}
    for heading, page in entries.items():
        lines = [line.strip() for line in _page_text(demo_pdf, int(page)).splitlines()]
        assert heading in lines, (heading, page)


def test_table_headers_repeat_on_every_page(demo_pdf):
    header = "Evidence, answer or what is missing"
    pages = [p for p in range(1, _pages(demo_pdf) + 1) if header in _flat(_page_text(demo_pdf, p))]
    assert len(pages) > 3  # three checklists, at least one spanning pages
