"""Make the screenshots of docs/report.md: the first screen of the demo's board edition
(report.html) at phone and laptop width.

    python docs/img/make_screenshots.py

Runs the demo audit (examples/covid_testing, predictions from its model), writes report.html
into a temporary folder and photographs it with Debian's Chromium (/usr/bin/chromium) driven by
Playwright; nothing is downloaded. Writes board-first-screen-390.png and
board-first-screen-1280.png next to this file.
"""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

from playwright import sync_api

from audit.core.config import build_config
from audit.core.runner import run_audit
from audit.report import write_reports

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "covid_testing"
CHROMIUM = "/usr/bin/chromium"
# (width, height): a phone and a laptop.
VIEWPORTS = ((390, 844), (1280, 800))


def main() -> None:
    raw = tomllib.loads((EXAMPLE / "audit.toml").read_text(encoding="utf-8"))
    raw["report"].pop("out", None)
    raw["report"]["attestations"] = str(EXAMPLE / raw["report"]["attestations"])
    cfg = build_config(raw, base_dir=EXAMPLE, plugin_names=("fairness",))
    with tempfile.TemporaryDirectory() as tmp:
        result = run_audit(cfg, cwd=Path(tmp))
        html = write_reports(result, Path(tmp) / "reports", ["html"])["html"]
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            for width, height in VIEWPORTS:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(html.as_uri(), wait_until="load")
                target = HERE / f"board-first-screen-{width}.png"
                page.screenshot(path=target)
                page.close()
                print(target)
            browser.close()


if __name__ == "__main__":
    main()
