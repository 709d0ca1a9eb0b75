"""The audits the browser and PDF tests render: the demo (examples/covid_testing) and a
synthetic chest X-ray audit of the published shape (15 labels; sex, age band and their
intersection), each run once per session, with the time the audit itself took."""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.core.config import build_config
from audit.core.results import AuditResult
from audit.core.runner import run_audit
from audit.plugins.base import discover_plugins
from audit.report import render_pdf, write_reports

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

# The 14 findings of NIH ChestX-ray14 and one more: the shape of the published audits.
CXR_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Emphysema", "Fibrosis",
              "Hernia", "Infiltration", "Mass", "Nodule", "Pleural_Thickening", "Pneumonia", "Pneumothorax",
              "Lung_Lesion")
CXR_ROWS = 20_000


@dataclass(frozen=True)
class Demo:
    result: AuditResult
    html: Path  # report.html, the board edition
    technical: Path  # technical-report.html
    model_card: Path
    out: Path
    audit_s: float  # seconds run_audit took


@dataclass(frozen=True)
class Pdfs:
    board: Path
    technical: Path
    board_s: float  # seconds render_pdf took, WeasyPrint's child process included
    technical_s: float


@dataclass(frozen=True)
class Audit:
    """A result with the time its audit took, and a folder to write into."""

    result: AuditResult
    audit_s: float
    folder: Path


def _timed_audit(cfg, cwd: Path, available=None) -> tuple[AuditResult, float]:
    start = time.perf_counter()
    result = run_audit(cfg, cwd=cwd, available=available)
    return result, time.perf_counter() - start


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    """Run the installed plugins on the demo and write both HTML editions and the model card."""
    tmp = tmp_path_factory.mktemp("demo")
    attestations = tmp / "attestations.yaml"
    attestations.write_text(ATTESTATIONS, encoding="utf-8")
    raw = tomllib.loads((EXAMPLE / "audit.toml").read_text(encoding="utf-8"))
    raw["report"] = {"min_cell": raw["report"].get("min_cell", 10), "attestations": str(attestations)}
    # Every installed plugin, as `make demo` runs them (the example configures each).
    cfg = build_config(raw, base_dir=EXAMPLE, plugin_names=tuple(discover_plugins()))
    result, seconds = _timed_audit(cfg, tmp)
    out = tmp / "reports"
    written = write_reports(result, out, ["html", "technical", "model_card"])
    return Demo(result, written["html"], written["technical"], written["model_card"], out, seconds)


def _pdfs(result: AuditResult, folder: Path) -> Pdfs:
    pytest.importorskip("weasyprint")
    paths, seconds = {}, {}
    for edition, name in (("board", "report.pdf"), ("technical", "technical-report.pdf")):
        start = time.perf_counter()
        data = render_pdf(result, edition=edition)
        seconds[edition] = time.perf_counter() - start
        paths[edition] = folder / name
        paths[edition].write_bytes(data)
    return Pdfs(paths["board"], paths["technical"], seconds["board"], seconds["technical"])


@pytest.fixture(scope="session")
def demo_pdfs(demo, tmp_path_factory) -> Pdfs:
    """report.pdf and technical-report.pdf of the demo, each render timed."""
    return _pdfs(demo.result, tmp_path_factory.mktemp("demo-pdf"))


@pytest.fixture(scope="session")
def demo_pdf(demo_pdfs) -> Path:
    """technical-report.pdf of the demo: every section, with contents."""
    return demo_pdfs.technical


def cxr_frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Synthetic chest X-ray labels and scores: prevalences of 2-12%, scores that rank cases
    above controls (AUROC about 0.9), and fewer cases found among women and patients over 80."""
    sex = rng.choice(["female", "male"], n)
    age = rng.choice(["0-20", "20-40", "40-60", "60-80", "80+"], n, p=[0.1, 0.25, 0.3, 0.25, 0.1])
    columns: dict[str, object] = {"patient_id": np.arange(n), "sex": sex, "age_band": age}
    for label in CXR_LABELS:
        y = rng.random(n) < 0.02 + 0.1 * rng.random()
        shift = 0.4 * (sex == "female") + 0.3 * (age == "80+")
        logit = -2.5 + (2.5 - shift) * y + rng.normal(0.0, 1.0, n)
        columns[label] = y.astype(int)
        columns[f"p_{label}"] = np.round(1.0 / (1.0 + np.exp(-logit)), 5)
    return pd.DataFrame(columns)


@pytest.fixture(scope="session")
def cxr(tmp_path_factory) -> Audit:
    """A 15-label (multi-label) audit of 20,000 images by sex, age band and sex × age band,
    scores given with the data; the operating points chosen on a reference set."""
    tmp = tmp_path_factory.mktemp("cxr")
    rng = np.random.default_rng(20261202)
    cxr_frame(CXR_ROWS, rng).to_csv(tmp / "test.csv", index=False)
    cxr_frame(6_000, rng).to_csv(tmp / "reference.csv", index=False)
    raw = {
        "data": {"path": "test.csv", "reference": "reference.csv", "label": list(CXR_LABELS),
                 "score": [f"p_{label}" for label in CXR_LABELS], "id": "patient_id",
                 "sensitive": ["sex", "age_band"]},
        "fairness": {"operating_point": "max-f1", "intersections": [["sex", "age_band"]]},
        "report": {"min_cell": 10},
    }
    cfg = build_config(raw, base_dir=tmp, plugin_names=("fairness",))
    # The fairness report at the published scale. With the calibration plugin too, 15 labels
    # give a technical PDF past the layout limit (a known limit, stated in the note).
    from audit.plugins.fairness import FairnessPlugin

    result, seconds = _timed_audit(cfg, tmp, available={"fairness": FairnessPlugin})
    return Audit(result, seconds, tmp)


@pytest.fixture(scope="session")
def cxr_board_pdf(cxr) -> tuple[Path, float]:
    """report.pdf of the 15-label audit, and the seconds it took."""
    pytest.importorskip("weasyprint")
    start = time.perf_counter()
    data = render_pdf(cxr.result, edition="board")
    seconds = time.perf_counter() - start
    path = cxr.folder / "report.pdf"
    path.write_bytes(data)
    return path, seconds


def pytest_collection_modifyitems(items):
    # Under pytest-xdist (`make test` runs two workers) the browser tests share their
    # session fixtures (the demo audit, the 15-label audit, their PDFs): one worker runs them
    # all, so each fixture is built once.
    for item in items:
        if "tests/browser/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.xdist_group("browser"))
