"""Coverage of audit.stats.proportions intervals at small counts, for both interval methods.

Prints markdown tables; it is not a test (tests/unit/stats/test_small_count_coverage.py
asserts the default method on the same scenarios at 4,000 replicates). For every scenario
and method: the share of 95% intervals containing the true rate (or difference) with rows
independent and with rows clustered in patients, its Monte Carlo standard error, and the
mean interval width; then the rejection rate of the two-sided 5% test under the null.

Designs, as in the test:

- rows independent: k ~ Binomial(n, rate);
- rows clustered: n rows in patients of 1-4 rows (sizes uniform, the last patient cut to
  make exactly n rows), each patient with its own probability ~ Beta with mean ``rate`` and
  intra-class correlation 0.3, so every row's marginal rate is ``rate``.

Coverages below 93% are marked with a "!".

Usage: python benchmarks/coverage_small_counts.py [--sims 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from audit.stats.proportions import (
    INTERVAL_METHODS,
    Proportion,
    cluster_proportions,
    difference_interval,
    difference_p_value,
    proportion_interval,
)

ICC = 0.3
FLOOR = 0.93
ROWS = (5, 10, 20, 40)
RATES = (0.03, 0.5, 0.9)
DIFFERENCES = (
    [(12, 0.90, 200, 0.10)]
    + [(n, rate, 300, 0.5) for n in ROWS for rate in (0.03, 0.97)]
    + [(10, 0.5, 10, 0.9)]
)
NULLS = [(10, 10, 0.5), (12, 200, 0.9), (20, 200, 0.1), (40, 300, 0.5), (5, 300, 0.03),
         (10, 300, 0.97)]


def rows(k, n) -> Proportion:
    k, n = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    return Proportion(k.copy(), n.copy(), n.copy(), np.ones_like(n))


def independent(rng: np.random.Generator, n_rows: int, rate: float, n_sims: int) -> Proportion:
    return rows(rng.binomial(n_rows, rate, n_sims), n_rows)


def clustered(rng: np.random.Generator, n_rows: int, rate: float, n_sims: int) -> Proportion:
    sizes = rng.integers(1, 5, (n_sims, n_rows))  # n_rows patients always suffice
    start = np.cumsum(sizes, axis=1) - sizes
    m = np.clip(n_rows - start, 0, sizes)
    s = 1 / ICC - 1  # Beta(rate s, (1 - rate) s): mean rate, ICC 1 / (s + 1)
    y = rng.binomial(m, rng.beta(rate * s, (1 - rate) * s, m.shape))
    unit = np.repeat(np.arange(n_sims), n_rows)
    return cluster_proportions(y.ravel(), m.ravel(), unit, n_sims)


DESIGNS = (independent, clustered)


def se(share: float, n: int) -> float:
    return float(np.sqrt(share * (1 - share) / n))


def cell(coverage: float) -> str:
    return f"{coverage:.4f}{' !' if coverage < FLOOR else ''}"


def single_rates(method: str, n_sims: int, seed: int) -> list[tuple]:
    out = []
    for n_rows in ROWS:
        for rate in RATES:
            res = []
            for i, design in enumerate(DESIGNS):
                rng = np.random.default_rng([seed, 1, n_rows, int(rate * 100), i])
                low, high = proportion_interval(design(rng, n_rows, rate, n_sims), 0.95, method)
                res.append((float(np.mean((low <= rate) & (rate <= high))),
                            float(np.mean(high - low))))
            out.append((f"{n_rows} rows, rate {rate}", res))
    return out


def differences(method: str, n_sims: int, seed: int) -> list[tuple]:
    out = []
    for n_a, rate_a, n_b, rate_b in DIFFERENCES:
        truth = rate_a - rate_b
        res = []
        for i, design in enumerate(DESIGNS):
            rng = np.random.default_rng([seed, 2, n_a, int(rate_a * 100), n_b, i])
            a = design(rng, n_a, rate_a, n_sims)
            b = design(rng, n_b, rate_b, n_sims)
            low, high = difference_interval(a, b, 0.95, method)
            res.append((float(np.mean((low <= truth) & (truth <= high))),
                        float(np.mean(high - low))))
        out.append((f"{n_a} at {rate_a} - {n_b} at {rate_b}", res))
    return out


def null_rejections(method: str, n_sims: int, seed: int) -> list[tuple]:
    out = []
    for n_a, n_b, rate in NULLS:
        res = []
        for i, design in enumerate(DESIGNS):
            rng = np.random.default_rng([seed, 3, n_a, n_b, int(rate * 100), i])
            a = design(rng, n_a, rate, n_sims)
            b = design(rng, n_b, rate, n_sims)
            # The inversion raises floating-point warnings at levels that round to 1.
            with np.errstate(invalid="ignore", divide="ignore"):
                p = difference_p_value(a, b, method)
            res.append(float(np.mean(p < 0.05)))
        out.append((f"{n_a} vs {n_b} at {rate}", res))
    return out


def coverage_table(title: str, results: list[tuple], n_sims: int) -> str:
    lines = [f"#### {title}", "",
             "| scenario | coverage, rows independent | coverage, clustered "
             "| MC s.e. (ind / clu) | mean width (ind / clu) |",
             "|---|---|---|---|---|"]
    for name, ((c_ind, w_ind), (c_clu, w_clu)) in results:
        lines.append(f"| {name} | {cell(c_ind)} | {cell(c_clu)} "
                     f"| {se(c_ind, n_sims):.4f} / {se(c_clu, n_sims):.4f} "
                     f"| {w_ind:.3f} / {w_clu:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.sims
    started = time.perf_counter()
    print(f"# Small-count coverage of 95% intervals ({n:,} replicates per cell; "
          f"MC s.e. at 95% = {se(0.95, n):.4f}; ICC {ICC}; '!' = below {FLOOR:.0%})\n")
    nulls = {}
    for method in INTERVAL_METHODS:
        default = " (default)" if method == INTERVAL_METHODS[0] else ""
        print(f"## {method}{default}\n")
        print(coverage_table("One rate", single_rates(method, n, args.seed), n) + "\n")
        print(coverage_table("Difference of two independent rates (MOVER)",
                             differences(method, n, args.seed), n) + "\n")
        nulls[method] = null_rejections(method, n, args.seed)
    print(f"## Rejection rate of the two-sided 5% test under the null "
          f"(MC s.e. at 5% = {se(0.05, n):.4f})\n")
    header = " | ".join(f"{m}, independent | {m}, clustered" for m in INTERVAL_METHODS)
    print(f"| scenario | {header} |")
    print("|---" * (1 + 2 * len(INTERVAL_METHODS)) + "|")
    for i, (name, _) in enumerate(nulls[INTERVAL_METHODS[0]]):
        cells = " | ".join(f"{r:.4f}" for m in INTERVAL_METHODS for r in nulls[m][i][1])
        print(f"| {name} | {cells} |")
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
