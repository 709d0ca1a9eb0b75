"""Both editions of the report in a real browser: Debian's Chromium driven by Playwright.

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
# A phone, a tablet, a laptop.
WIDTHS = (390, 768, 1280)
EDITIONS = ("board", "technical")
# No column of running text (paragraph, list item, card, verdict sentence) narrower than this.
MIN_TEXT_PX = 200

# Visible blocks of running text outside the tables, which scroll in their own box (the
# verdict's sentences are text too, and its table must not squeeze them).
TEXT_BLOCKS = """() => {
  const blocks = document.querySelectorAll(
    'main p, main li, main dd, article.finding, figcaption, table.verdict td:last-child');
  const out = [];
  for (const e of blocks) {
    if (e.closest('table:not(.verdict), .scroll, figure img')) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || !e.textContent.trim()) continue;  // collapsed
    out.push([e.tagName + '.' + e.className, Math.round(r.width), e.textContent.trim().slice(0, 50)]);
  }
  return out;
}"""

# Words of letters (and "=" and "_": "gender=female", "under_powered") laid out on more than
# one line: a word broken in the middle. Hashes, code, paths and long names may break.
BROKEN_WORDS = """() => {
  const walker = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
  const broken = [];
  let checked = 0;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (parent.closest('.long-name, .mono, code, .link-text, dl.kv, .ci, summary')) continue;
    for (const m of node.data.matchAll(/[A-Za-z_=]{3,}/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (tops.size === 0) continue;  // not rendered (collapsed)
      checked += 1;
      if (tops.size > 1) broken.push(m[0] + ' in ' + parent.tagName + '.' + parent.className);
    }
  }
  return [checked, broken.slice(0, 10)];
}"""


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), "Debian's chromium is not installed (/usr/bin/chromium): run `make system-deps`"
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


def _path(demo, edition: str) -> Path:
    return demo.html if edition == "board" else demo.technical


@pytest.fixture(params=EDITIONS)
def opened(request, browser, demo):
    """An edition of the demo report at desktop size, with every console error and request recorded."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: requests.append(req.url))
    url = _path(demo, request.param).as_uri()
    page.goto(url, wait_until="load")
    yield page, url, errors, requests
    context.close()


@pytest.fixture
def technical_page(browser, demo):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(demo.technical.as_uri(), wait_until="load")
    yield page
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
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.src.slice(0, 26), e.naturalWidth])")
    assert images and all(src == "data:image/svg+xml;base64," and width > 0 for src, width in images)


def test_a_checklist_item_links_to_a_finding(technical_page):
    assert technical_page.locator("a[href^='#finding-fairness-']").count() > 0


def test_verdict_visible_without_scrolling_at_desktop_width(opened, tmp_path):
    page, *_ = opened
    box = page.locator("#verdict-table").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= DESKTOP["height"]
    fairness = page.locator("#verdict-table tbody tr").first.inner_text()
    assert "Fairness" in fairness and "age band <1" in fairness
    assert page.locator("#verdict-table tbody tr").count() == 6
    page.screenshot(path=tmp_path / "desktop.png")
    assert (tmp_path / "desktop.png").stat().st_size > 10_000


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("edition", EDITIONS)
def test_layout_at_phone_tablet_and_laptop_width(browser, demo, edition, width, tmp_path):
    """No sideways scrolling of the page, no text column under 200 px, no word broken in two."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(_path(demo, edition).as_uri(), wait_until="load")
    page.screenshot(path=tmp_path / f"{edition}-{width}-first-screen.png")
    page.screenshot(path=tmp_path / f"{edition}-{width}-full.png", full_page=True)
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"the page scrolls sideways at {width} px: {scroll} px wide"
    blocks = page.evaluate(TEXT_BLOCKS)
    assert len(blocks) > 20
    narrow = [b for b in blocks if b[1] < MIN_TEXT_PX]
    assert narrow == [], narrow[:5]
    cards = page.locator("article.finding")
    assert cards.count() >= 1 and all(cards.nth(i).bounding_box()["width"] >= MIN_TEXT_PX for i in range(cards.count()))
    checked, broken = page.evaluate(BROKEN_WORDS)
    assert checked > 500 and broken == [], broken
    # the group column of a table stays in view while the rest of a wide table scrolls
    first = page.locator("table.metrics tbody th[scope=row]").first
    assert page.evaluate("e => getComputedStyle(e).position", first.element_handle()) == "sticky"
    # the Flags column sits beside the group, not at the far end of the table
    header = page.locator("table.metrics thead tr").first.inner_text().split("\t")
    assert "Flags" in header[:3], header
    context.close()
    print(f"\n{edition} at {width} px: {blocks and min(b[1] for b in blocks)} px narrowest text column, "
          f"{checked} words checked; screenshots in {tmp_path}")


def test_group_names_are_not_broken_at_phone_width(browser, demo):
    """'gender=female' in the tables: never 'gend er=fe male' (no break-all, no anywhere)."""
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    page.goto(demo.technical.as_uri(), wait_until="load")
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    styles = page.eval_on_selector_all(
        "table.metrics th[scope=row]",
        "els => els.map(e => [e.textContent, getComputedStyle(e).wordBreak, getComputedStyle(e).overflowWrap, "
        "e.getClientRects().length && e.getBoundingClientRect().height])",
    )
    names = [s for s in styles if "gender=" in s[0]]
    assert names and all(word == "normal" and wrap == "normal" for _, word, wrap, _ in names)
    checked, broken = page.evaluate(BROKEN_WORDS)
    assert broken == [] and checked > 1000
    context.close()


def test_a4_width_and_print_media(technical_page, tmp_path):
    page = technical_page
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


def test_attestation_links_are_text_not_links(technical_page):
    page = technical_page
    assert page.locator("a[href*='example.org']").count() == 0
    text = page.locator("#checklist-claim-2024").inner_text()
    assert "https://example.org/protocol" not in text  # collapsed: not rendered as text yet
    page.locator("#checklist-claim-2024 summary").click()
    text = page.locator("#checklist-claim-2024").inner_text()
    assert "Demonstration <only>: flags PCR tests" in text and "https://example.org/protocol" in text


def test_no_path_of_the_machine_in_either_edition(demo):
    for path in (demo.html, demo.technical):
        text = path.read_text(encoding="utf-8")
        for secret in (str(Path(__file__).resolve().parents[2]), str(demo.out.parent), "/tmp/", "/home/"):
            assert secret not in text, (path.name, secret)
        assert "test.csv" in text and "model.skops" in text
