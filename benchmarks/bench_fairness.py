"""Fairness plugin speed and memory, against fairlearn's MetricFrame bootstrap.

Prints figures and ratios; it is not a timed test. Two runs:

1. Scale: 1,000,000 rows x 16 intersectional groups (sex x 8 age bands) x 2,000 bootstrap
   replicates through the whole fairness plugin (every metric, interval, gap and test),
   timed in a child process whose peak resident memory is read from the OS.
   Target: under 20 s and under 2 GB on 2 cores.
2. Peer: 100,000 rows, 4 groups, FNR and FPR with intervals: fairlearn
   ``MetricFrame(..., n_boot=N)`` against the fairness plugin with 2,000 replicates.
   Target: at least 100x faster per replicate, identical point estimates.

Usage: python benchmarks/bench_fairness.py [--rows 1000000] [--fairlearn-boot 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def make_data(n: int, seed: int = 0, n_age: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["F", "M"]), n)
    age = rng.integers(0, n_age, n)
    y = rng.binomial(1, 0.1 + 0.02 * age / n_age)
    logit = -2 + 2.5 * y - 0.3 * (sex == "F") * y + rng.normal(0, 1, n)
    return pd.DataFrame({
        "patient_id": np.arange(n) // 2,  # two rows per patient: the bootstrap resamples patients
        "sex": sex, "age_band": np.char.add("band", age.astype(str)), "y": y,
        "p": 1 / (1 + np.exp(-logit)),
    })


def _config(path: Path, n_boot: int, intersections: bool, sensitive):
    from audit.core.config import build_config

    raw = {"data": {"path": str(path), "label": "y", "score": "p", "id": "patient_id", "sensitive": sensitive},
           "fairness": {"threshold": 0.5, "bootstrap": n_boot, "seed": 1,
                        "intersections": [["sex", "age_band"]] if intersections else []}}
    return build_config(raw, base_dir=path.parent, plugin_names=("fairness",))


def child_scale(path: str, n_boot: int) -> None:
    """Run in a fresh process: time loading and the plugin, report peak RSS."""
    from audit.core.runner import run_audit

    cfg = _config(Path(path), n_boot, True, ["sex", "age_band"])
    # Only the intersection is what the target counts; the two single attributes come along.
    t0 = time.perf_counter()
    result = run_audit(cfg)
    total = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_groups = len({tuple(m.group.items()) for m in result.plugin("fairness").metrics
                    if m.group and len(m.group) == 2 and m.id == "fnr"})
    print(json.dumps({"seconds": total, "peak_mb": peak_mb, "groups": n_groups,
                      "metrics": len(result.plugin("fairness").metrics)}))


def bench_scale(rows: int, n_boot: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.parquet"
        make_data(rows).to_parquet(path)
        out = subprocess.run([sys.executable, __file__, "--child", str(path), "--boot", str(n_boot)],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_peer(rows: int, fairlearn_boot: int, n_boot: int) -> dict:
    from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate

    from audit.core.runner import run_audit

    frame = make_data(rows, seed=1, n_age=2)
    frame["group"] = frame["sex"] + "-" + frame["age_band"]  # 4 groups
    pred = (frame["p"] >= 0.5).astype(int)
    t0 = time.perf_counter()
    mf = MetricFrame(metrics={"fnr": false_negative_rate, "fpr": false_positive_rate},
                     y_true=frame["y"], y_pred=pred, sensitive_features=frame["group"],
                     n_boot=fairlearn_boot, ci_quantiles=[0.025, 0.975], random_state=0)
    fl_seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "peer.csv"
        frame.drop(columns=["patient_id"]).assign(patient_id=np.arange(rows)).to_csv(path, index=False)
        cfg = _config(path, n_boot, False, ["group"])
        t0 = time.perf_counter()
        result = run_audit(cfg)
        ours = time.perf_counter() - t0
    metrics = result.plugin("fairness").metrics
    max_diff = 0.0
    for g, row in mf.by_group.iterrows():
        for m in ("fnr", "fpr"):
            mine = next(x.value for x in metrics if x.id == m and x.group == {"group": str(g)})
            max_diff = max(max_diff, abs(mine - row[m]))
    return {"fairlearn_seconds": fl_seconds, "fairlearn_boot": fairlearn_boot,
            "ours_seconds": ours, "ours_boot": n_boot, "max_point_difference": max_diff,
            "fairlearn_per_replicate": fl_seconds / fairlearn_boot, "ours_per_replicate": ours / n_boot}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--peer-rows", type=int, default=100_000)
    ap.add_argument("--fairlearn-boot", type=int, default=20)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child_scale(args.child, args.boot)
        return
    print(f"cores: {os.cpu_count()}")
    s = bench_scale(args.rows, args.boot)
    print(f"scale: {args.rows:,} rows x {s['groups']} intersectional groups x {args.boot} replicates "
          f"(plus the single attributes; {s['metrics']} metrics): {s['seconds']:.1f} s "
          f"(target < 20 s, ratio {s['seconds'] / 20:.2f}), peak {s['peak_mb']:.0f} MB "
          f"(target < 2048 MB, ratio {s['peak_mb'] / 2048:.2f})")
    p = bench_peer(args.peer_rows, args.fairlearn_boot, args.boot)
    speedup = p["fairlearn_per_replicate"] / p["ours_per_replicate"]
    print(f"peer: {args.peer_rows:,} rows, 4 groups: fairlearn MetricFrame n_boot={p['fairlearn_boot']} "
          f"(FNR, FPR) {p['fairlearn_seconds']:.1f} s = {1000 * p['fairlearn_per_replicate']:.0f} ms/replicate; "
          f"future-audit {p['ours_boot']} replicates (all metrics, gaps, tests) {p['ours_seconds']:.2f} s = "
          f"{1000 * p['ours_per_replicate']:.2f} ms/replicate; speed-up {speedup:.0f}x (target >= 100x); "
          f"largest point-estimate difference {p['max_point_difference']:.1e}")


if __name__ == "__main__":
    main()
