"""Report size and readability: the demo under 2 MB, 200 groups under 5 MB with readable plots."""

from __future__ import annotations

import base64
import re
import time

import pytest

from audit.core.config import build_config
from audit.core.runner import run_audit
from audit.plugins.base import discover_plugins
from audit.report import render_html
from audit.report.figures import MAX_ROWS

from .factories import demo_raw, make_many_groups

FONT_PX = 9  # the forest plot's label size (figures._RC)


def _svgs(html: str) -> list[str]:
    return [base64.b64decode(u).decode() for u in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)]


def _label_ys(svg: str) -> list[float]:
    """y positions of the group labels (right-aligned y tick labels)."""
    return [float(y) for y in re.findall(r'<text style="[^"]*text-anchor: end"[^>]*\sy="([-\d.]+)"', svg)]


@pytest.fixture(scope="module")
def html_200() -> str:
    return render_html(make_many_groups(200))


def test_two_hundred_groups_stay_under_five_megabytes_and_readable(html_200):
    html = html_200
    assert len(html.encode()) < 5_000_000
    assert "hospital-199" in html and html.rstrip().endswith("</html>")
    svgs = _svgs(html)
    # 200 sites and 200 site × sex groups, at most MAX_ROWS groups a figure
    assert len(svgs) == 2 * -(-200 // MAX_ROWS)
    for svg in svgs:
        ys = sorted(_label_ys(svg))
        assert 0 < len(ys) <= MAX_ROWS
        gaps = [b - a for a, b in zip(ys, ys[1:], strict=False)]
        assert not gaps or min(gaps) >= 1.5 * FONT_PX  # labels never overlap
    assert "200 groups in 7 parts, on one scale" in html


def test_parts_of_a_split_plot_share_the_x_axis(html_200):
    svgs = _svgs(html_200)[:7]

    def ticks(svg):
        return re.findall(r'text-anchor: middle"[^>]*>([^<]*%)</text>', svg)

    assert ticks(svgs[0]) and all(ticks(s) == ticks(svgs[0]) for s in svgs)


def test_demo_report_under_two_megabytes(example_dir, tmp_path):
    start = time.perf_counter()
    raw = demo_raw(example_dir, bootstrap=200, threshold=0.05, predictions_only=True)
    # The fairness plugin's report (the universality plugin's own is tested in test_universality_report).
    raw.setdefault("run", {})["plugins"] = ["fairness"]
    cfg = build_config(raw, base_dir=example_dir, plugin_names=tuple(discover_plugins()))
    html = render_html(run_audit(cfg, cwd=tmp_path))
    elapsed = time.perf_counter() - start
    assert len(html.encode()) < 2_000_000
    assert "Among patients with covid, the model missed" in html
    assert elapsed < 10
