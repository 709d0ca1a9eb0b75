"""The demo audit (examples/covid_testing) rendered once for the browser and PDF tests."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit.core.config import build_config
from audit.core.results import AuditResult
from audit.core.runner import run_audit
from audit.report import write_reports

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "covid_testing"

ATTESTATIONS = """\
claim-2024:
  "3":
    answer: "Demonstration <only>: flags PCR tests likely to be positive. Not for clinical use."
    links: ["https://example.org/protocol"]
    by: "Audit team"
    date: 2026-11-27
tripod-ai:
  "5a":
    answer: "CHOP covid_testing, 2020; see the example's README."
"""


@dataclass(frozen=True)
class Demo:
    result: AuditResult
    html: Path
    model_card: Path
    out: Path


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    """Run the real fairness plugin on the demo (200 bootstrap replicates) and write the
    HTML report and the model card."""
    tmp = tmp_path_factory.mktemp("demo")
    attestations = tmp / "attestations.yaml"
    attestations.write_text(ATTESTATIONS, encoding="utf-8")
    raw = tomllib.loads((EXAMPLE / "audit.toml").read_text(encoding="utf-8"))
    raw["fairness"]["bootstrap"] = 200
    raw["report"] = {"min_cell": raw["report"].get("min_cell", 10), "attestations": str(attestations)}
    cfg = build_config(raw, base_dir=EXAMPLE, plugin_names=("fairness",))
    result = run_audit(cfg, cwd=tmp)
    out = tmp / "reports"
    written = write_reports(result, out, ["html", "model_card"])
    return Demo(result, written["html"], written["model_card"], out)


@pytest.fixture(scope="session")
def demo_pdf(demo) -> Path:
    """report.pdf of the same audit (WeasyPrint takes several seconds)."""
    pytest.importorskip("weasyprint")
    return write_reports(demo.result, demo.out, ["pdf"])["pdf"]
