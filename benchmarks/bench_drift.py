"""Speed and memory of the drift statistics, and the change-detector comparison.

1. ``feature_drift`` on a reference and a current sample of ``--rows`` rows each (default
   1,000,000) x 50 features: 25 numeric (a quarter of them shifted, some with missing values)
   and 25 categorical with 2 to 50 categories (pandas' default text dtype, or ``category``
   with ``--dtype category``). Target: well under 20 s and 1 GB peak.
   Time is wall-clock; memory is tracemalloc's peak of what the call allocated (numpy and
   pandas buffers included) and the process's peak RSS.
2. ``--change``: ruptures (PELT, l2 cost, the penalty of audit.stats.change) against river's
   Page-Hinkley and ADWIN on simulated window series (60 windows, a step at window 40): the
   detection rate, the location error and the false-alarm rate on series without a change.
   These are the figures in audit.stats.change's docstring.

Usage: python benchmarks/bench_drift.py [--rows 1000000] [--dtype str|category] [--change]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
import pandas as pd


def make_samples(n: int, dtype: str = "str", seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frames = []
    for sample in (0, 1):
        cols = {}
        for j in range(25):
            shift = 0.2 * sample if j % 4 == 0 else 0.0
            x = rng.normal(shift, 1 + 0.1 * (j % 3), n)
            if j % 5 == 1:
                x[rng.random(n) < 0.02 + 0.03 * sample] = np.nan
            cols[f"num{j}"] = x
        for j in range(25):
            k = 2 + 2 * j
            p = np.linspace(1, 2 + (sample if j % 4 == 0 else 0), k)
            codes = rng.choice(k, n, p=p / p.sum())
            cats = pd.Categorical.from_codes(codes, [f"c{j}_{i}" for i in range(k)])
            cols[f"cat{j}"] = cats if dtype == "category" else pd.Series(cats).astype(str)
        frames.append(pd.DataFrame(cols))
    return frames[0], frames[1]


def bench_feature_drift(n: int, dtype: str) -> None:
    from audit.stats.drift import feature_drift

    t0 = time.perf_counter()
    ref, cur = make_samples(n, dtype)
    print(f"generated 2 x {n:,} rows x 50 features ({dtype}) in {time.perf_counter() - t0:.1f} s; "
          f"frames {(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum()) / 2**20:.0f} MiB")
    feature_drift(ref.head(1000), cur.head(1000))  # imports and first-call set-up
    t0 = time.perf_counter()
    base = _reset_peak_rss()
    res = feature_drift(ref, cur)
    elapsed = time.perf_counter() - t0
    rss = _peak_rss()
    counts = pd.Series([r.status for r in res]).value_counts().to_dict()
    print(f"feature_drift: {elapsed:.2f} s; statuses {counts}")
    if base is not None:
        print(f"  peak RSS during the call {rss:.0f} MiB, {rss - base:.0f} MiB above the "
              f"{base:.0f} MiB held before it (the data)")
    tracemalloc.start()
    feature_drift(ref, cur)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"  tracemalloc peak {peak / 2**20:.0f} MiB (numpy/pandas buffers; Arrow's own "
          f"allocations are not traced)")


def _peak_rss() -> float:
    """VmHWM of this process in MiB (Linux), else ru_maxrss."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 2**10
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def _reset_peak_rss() -> float | None:
    """Reset VmHWM to the current RSS (Linux >= 4.0); return it, or None if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return None
    return _peak_rss()


# 2. Change detectors --------------------------------------------------------------------------

def _series(rng, n=60, at=40, step=0.05, sd=0.02, level=0.85):
    x = level + rng.normal(0, sd, n)
    if at is not None:
        x[at:] -= step
    return x


def _river_detect(x, detector) -> int | None:
    from audit.stats.change import _robust_sd

    # Standardised as detect_change does (generous to a streaming detector: the SD uses the
    # whole series), since river's parameters are in the units of the data.
    z = (x - np.median(x[:10])) / _robust_sd(x)
    for i, v in enumerate(z):
        detector.update(float(v))
        if detector.drift_detected:
            return i
    return None


def bench_change(seeds: int = 200) -> None:
    from river import drift as rdrift

    from audit.stats.change import detect_change

    methods = {
        "ruptures PELT (l2)": lambda x: detect_change(x).index,
        # Tuned on standardised series to about 5% false alarms (defaults: ~100%).
        "river PageHinkley": lambda x: _river_detect(
            x, rdrift.PageHinkley(min_instances=10, delta=1.0, threshold=4.0)),
        # clock=1 checks after every value (default 32: never within 60 windows).
        "river ADWIN": lambda x: _river_detect(x, rdrift.ADWIN(clock=1)),
    }
    tol = 3
    print(f"60 windows, step -0.05 at window 40, {seeds} seeds per noise level; "
          f"hit = a change reported within +-{tol} windows of 40")
    for name, fn in methods.items():
        t0 = time.perf_counter()
        parts = []
        for sd in (0.01, 0.02, 0.03, 0.05):
            found = [fn(_series(np.random.default_rng(s), sd=sd)) for s in range(seeds)]
            hits = [f for f in found if f is not None and abs(f - 40) <= tol]
            err = np.median([abs(f - 40) for f in found if f is not None] or [np.nan])
            reported = np.mean([f is not None for f in found])
            parts.append(f"sd {sd}: hit {len(hits) / seeds:.2f} (any report {reported:.2f}), "
                         f"median |error| {err:g}")
        alarms = np.mean([fn(_series(np.random.default_rng(10_000 + s), at=None)) is not None
                          for s in range(seeds)])
        print(f"{name}: " + "; ".join(parts) + f"; false alarms (no change) {alarms:.3f} "
              f"[{time.perf_counter() - t0:.1f} s]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dtype", choices=("str", "category"), default="str")
    ap.add_argument("--change", action="store_true", help="run the change-detector comparison")
    ap.add_argument("--seeds", type=int, default=200)
    args = ap.parse_args()
    if args.change:
        bench_change(args.seeds)
    else:
        bench_feature_drift(args.rows, args.dtype)


if __name__ == "__main__":
    main()
