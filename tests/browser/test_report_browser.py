"""report.html in a real browser: Debian's Chromium driven by Playwright.

Never run ``playwright install``: it downloads a browser. CI installs Debian's chromium
(see the Makefile's system-deps).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
# No skip: `make test` installs Chromium and Playwright, so a missing one is a failure to fix.
from playwright import sync_api  # noqa: E402  (pip install -e '.[dev]')

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
A4_WIDTH = 794  # 210 mm at 96 px per inch


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), "Debian's chromium is not installed (/usr/bin/chromium): run `make system-deps`"
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def opened(browser, demo):
    """The demo report at desktop size, with every console error and request recorded."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: requests.append(req.url))
    url = demo.html.as_uri()
    page.goto(url, wait_until="load")
    yield page, url, errors, requests
    context.close()


def test_no_console_errors_and_no_network_request(opened):
    page, url, errors, requests = opened
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_timeout(200)
    assert errors == []
    assert requests and requests[0] == url
    assert [r for r in requests if r != url and not r.startswith("data:")] == []


def test_every_link_is_internal_and_resolves(opened):
    page, *_ = opened
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert hrefs and all(h.startswith("#") and len(h) > 1 for h in hrefs), [h for h in hrefs if not h.startswith("#")]
    missing = page.evaluate(
        "ids => ids.filter(id => document.getElementById(id) === null)", sorted({h[1:] for h in hrefs})
    )
    assert missing == []
    # a checklist item links to a finding
    assert page.locator("a[href^='#finding-fairness-']").count() > 0
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.src.slice(0, 26), e.naturalWidth])")
    assert images and all(src == "data:image/svg+xml;base64," and width > 0 for src, width in images)


def test_verdict_visible_without_scrolling_at_desktop_width(opened, tmp_path):
    page, *_ = opened
    box = page.locator("#verdict-table").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= DESKTOP["height"]
    fairness = page.locator("#verdict-table tbody tr").first.inner_text()
    assert "Fairness" in fairness and "Among patients with covid=1, the model missed" in fairness
    assert page.locator("#verdict-table tbody tr").count() == 6
    page.screenshot(path=tmp_path / "desktop.png")
    page.screenshot(path=tmp_path / "desktop-full.png", full_page=True)
    assert (tmp_path / "desktop.png").stat().st_size > 10_000


def test_a4_width_and_print_media(opened, tmp_path):
    page, *_ = opened
    page.set_viewport_size({"width": A4_WIDTH, "height": 1123})
    page.screenshot(path=tmp_path / "a4.png")
    closed = page.locator("table.checklist-items").first
    assert not closed.is_visible()  # collapsed on screen
    page.emulate_media(media="print")
    assert closed.is_visible()  # every collapsed section prints
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0  # nothing wider than the page
    page.screenshot(path=tmp_path / "a4-print.png", full_page=True)
    assert (tmp_path / "a4-print.png").stat().st_size > 10_000


def test_attestation_links_are_text_not_links(opened):
    page, *_ = opened
    assert page.locator("a[href*='example.org']").count() == 0
    text = page.locator("#checklist-claim-2024").inner_text()
    assert "https://example.org/protocol" not in text  # collapsed: not rendered as text yet
    page.locator("#checklist-claim-2024 summary").click()
    text = page.locator("#checklist-claim-2024").inner_text()
    assert "Demonstration <only>: flags PCR tests" in text and "https://example.org/protocol" in text
