"""Per-feature drift: future-audit's ``feature_drift`` against Evidently's data-drift preset.

The same data (``bench_drift.make_samples``: 25 numeric and 25 categorical features, a reference
and a current sample of ``--rows`` rows each) and the same statistics (KS for numbers,
chi-square for categories), one after the other, each timed wall-clock with its peak resident
memory (a fresh process each, so the peaks are their own).

Evidently needs pandas < 3, so it runs in a virtual environment of its own
(``benchmarks/.venv-evidently``, made on first use with ``pip install evidently 'pandas<3'``),
never as a dependency of the project. Goal (the issue): at least 10x faster than Evidently and
under 1 GB peak.

Usage: python benchmarks/bench_drift_evidently.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = HERE / ".venv-evidently"

EVIDENTLY = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from bench_drift import make_samples
ref, cur = make_samples(int(sys.argv[1]))
num = [c for c in ref.columns if c.startswith("num")]
cat = [c for c in ref.columns if c.startswith("cat")]
t0 = time.perf_counter()
try:  # Evidently >= 0.7
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
    report = Report([DataDriftPreset(num_method="ks", cat_method="chisquare")])
    snapshot = report.run(Dataset.from_pandas(cur, data_definition=definition),
                          Dataset.from_pandas(ref, data_definition=definition))
    snapshot.dict()
except ImportError:  # Evidently 0.4 to 0.6
    from evidently import ColumnMapping
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report
    report = Report(metrics=[DataDriftPreset(num_stattest="ks", cat_stattest="chisquare")])
    report.run(reference_data=ref, current_data=cur,
               column_mapping=ColumnMapping(numerical_features=num, categorical_features=cat))
    report.as_dict()
import evidently
print(json.dumps({"seconds": time.perf_counter() - t0, "version": evidently.__version__,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

OURS = r"""
import json, os, resource, sys, threading, time
import psutil
sys.path.insert(0, sys.argv[2])
from bench_drift import make_samples
from audit.stats.drift import feature_drift
ref, cur = make_samples(int(sys.argv[1]))
proc = psutil.Process(os.getpid())
before = proc.memory_info().rss / 2**20
peak = [before]
done = threading.Event()
def sample():  # the process's peak so far is the data generation's: sample RSS during the call
    while not done.wait(0.005):
        peak[0] = max(peak[0], proc.memory_info().rss / 2**20)
t = threading.Thread(target=sample, daemon=True)
t.start()
t0 = time.perf_counter()
feature_drift(ref, cur, categorical=[c for c in ref.columns if c.startswith("cat")])
seconds = time.perf_counter() - t0
done.set(); t.join()
peak[0] = max(peak[0], proc.memory_info().rss / 2**20)
frames = (ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum()) / 2**20
print(json.dumps({"seconds": seconds, "frames_mib": frames, "rss_before_mib": before, "peak_during_mib": peak[0],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _python() -> Path:
    py = ENV / "bin" / "python"
    if not py.exists():
        print(f"making {ENV} (evidently and pandas<3; once)", flush=True)
        venv.create(ENV, with_pip=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "evidently", "pandas<3"], check=True)
    return py


def _run(python, code, rows) -> dict:
    out = subprocess.run([str(python), "-c", code, str(rows), str(HERE)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    rows = ap.parse_args().rows
    ours = _run(sys.executable, OURS, rows)
    extra = ours["peak_during_mib"] - ours["rss_before_mib"]
    print(f"future-audit feature_drift: {ours['seconds']:.1f} s; the process held {ours['rss_before_mib']:.0f} MiB "
          f"before the call (the two samples' frames: {ours['frames_mib']:.0f} MiB) and at most "
          f"{ours['peak_during_mib']:.0f} MiB during it: {extra:.0f} MiB of working memory", flush=True)
    theirs = _run(_python(), EVIDENTLY, rows)
    print(f"Evidently {theirs['version']} DataDriftPreset (ks, chisquare): {theirs['seconds']:.1f} s, "
          f"peak RSS {theirs['peak_rss_mib']:.0f} MiB (data generation and frames included)")
    print(f"2 x {rows:,} rows x 50 features: future-audit is {theirs['seconds'] / ours['seconds']:.1f}x faster "
          f"(goal >= 10x); our working memory {extra:.0f} MiB above the data, peak {ours['peak_during_mib']:.0f} MiB "
          "with the data (goal < 1 GB)")


if __name__ == "__main__":
    main()
