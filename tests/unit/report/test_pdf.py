"""report.pdf: the print layout wraps long names instead of clipping them."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from audit.report import render_html, render_pdf

from .factories import LONG_GROUP, make_long_names, make_result

pytestmark = pytest.mark.slow


def _run(*args) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout


def test_board_pdf_variant_has_no_details_and_no_contents():
    html = render_html(make_result(), for_pdf=True, edition="board")
    assert "<details" not in html and '<nav class="toc"' not in html
    assert 'class="board pdf"' in html and 'id="sign-off"' in html


def test_an_unknown_edition_is_refused_before_weasyprint_runs():
    with pytest.raises(ValueError, match="edition: expected one of board, technical"):
        render_pdf(make_result(), edition="summary")


def test_pdf_variant_has_no_details_and_a_table_of_contents():
    html = render_html(make_result(), for_pdf=True)
    assert "<details" not in html and "<summary" not in html
    assert '<nav class="toc" id="contents">' in html
    assert "target-counter(attr(href), page)" in html
    assert 'counter(page) " of " counter(pages)' in html
    screen = render_html(make_result())
    assert "<details" in screen and '<nav class="toc"' not in screen
    # the same numbers either way
    numbers = re.compile(r"\d+\.\d%")
    assert sorted(numbers.findall(screen)) == sorted(numbers.findall(html))


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is not installed")
def test_a_sixty_character_group_name_wraps_and_nothing_is_clipped(tmp_path):
    pytest.importorskip("weasyprint")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render_pdf(make_long_names()))
    text = "".join(_run("pdftotext", "-raw", str(pdf), "-").split())
    # verdict (twice), group table, gap table: every copy complete, only wrapped
    assert text.count(LONG_GROUP) >= 4
    bbox = _run("pdftotext", "-bbox", str(pdf), "-")
    # page by page: the tables of every metric are printed on landscape pages
    pages = re.findall(r'<page width="([\d.]+)"[^>]*>(.*?)</page>', bbox, flags=re.DOTALL)
    assert pages and any(float(w) > 800 for w, _ in pages)
    for width, page in pages:
        right = [float(x) for x in re.findall(r'xMax="([\d.]+)"', page)]
        left = [float(x) for x in re.findall(r'xMin="([\d.]+)"', page)]
        assert right and max(right) <= float(width) - 20  # inside the 14 mm margin, give or take
        assert min(left) >= 20
