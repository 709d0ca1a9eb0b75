"""Histograms of a feature in two samples that are safe to publish under the small-cell rule.

A drift report shows where a feature's distribution moved: the share of rows in each bin (or
category), reference against audited. Every bin count it implies is 0 or at least ``min_cell``
in both samples; bins are merged until that holds, so nothing in the figure rests on 1 to
``min_cell - 1`` rows and no count can be solved for (every cell is published, none hidden).

- Numbers: up to ``max_bins`` bins with edges at quantiles of the pooled sample, rounded to
  three significant digits (an edge is then a round number, not one patient's value); the
  outer bins are open ("< 20", ">= 80"), so neither sample's minimum or maximum is shown.
  Adjacent bins are merged left to right.
- Categories: the most frequent categories that pass the rule, at most ``max_bins - 1``; the
  rest pooled as "other"; a pool that fails the rule is merged with the smallest shown category.
- Missing values: a bar of their own when their count passes the rule in both samples,
  otherwise merged with the smallest bin that still passes with them (its label says "or
  missing").

Shares are of all rows of each sample, missing included, so each sample's shares sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SafeHistogram", "safe_histogram"]


@dataclass(frozen=True)
class SafeHistogram:
    """Bin labels and the share of each sample's rows in each bin (see the module docstring)."""

    kind: str
    bins: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    edges: tuple[float, ...] | None  # numbers: the inner edges kept (a bin holds its lower edge)


def _ok(count, min_cell: int) -> bool:
    return count == 0 or count >= min_cell


def _passes(r: np.ndarray, c: np.ndarray, min_cell: int) -> bool:
    return all(_ok(int(x), min_cell) for x in r) and all(_ok(int(x), min_cell) for x in c)


def _fmt(x: float) -> str:
    return f"{x:,.3g}" if abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3) else f"{x:.4g}"


def _round3(x: float) -> float:
    return float(f"{x:.3g}")


def _numeric(r: np.ndarray, c: np.ndarray, min_cell: int, max_bins: int):
    pooled = np.sort(np.concatenate([r, c]))
    raw = np.quantile(pooled, np.linspace(0, 1, max_bins + 1)[1:-1]) if pooled.size else np.array([])
    edges = np.unique([_round3(e) for e in raw])
    # An edge at or below the minimum (or above the maximum) makes an empty outer bin; drop it.
    if pooled.size:
        edges = edges[(edges > pooled[0]) & (edges <= pooled[-1])]
    rs, cs = np.sort(r), np.sort(c)

    def counts(x_sorted):
        below = np.searchsorted(x_sorted, edges, side="left")
        return np.diff(np.concatenate([[0], below, [x_sorted.size]]))

    hr, hc = counts(rs), counts(cs)
    # Greedy merge left to right: close a bin once both counts pass; a failing tail joins the
    # last closed bin. groups[i] = (first raw bin, last raw bin) of merged bin i.
    groups: list[list[int]] = []
    start = 0
    acc_r = acc_c = 0
    for i in range(hr.size):
        acc_r += int(hr[i])
        acc_c += int(hc[i])
        if _ok(acc_r, min_cell) and _ok(acc_c, min_cell) and (acc_r + acc_c) > 0:
            groups.append([start, i])
            start, acc_r, acc_c = i + 1, 0, 0
    if start < hr.size:
        if groups:
            groups[-1][1] = hr.size - 1
        else:
            groups.append([start, hr.size - 1])
    mr = np.array([hr[a:b + 1].sum() for a, b in groups], dtype=np.int64)
    mc = np.array([hc[a:b + 1].sum() for a, b in groups], dtype=np.int64)
    kept = [float(edges[b]) for _, b in groups[:-1]]  # upper edge of every merged bin but the last
    labels = []
    for i in range(len(groups)):
        lo = kept[i - 1] if i > 0 else None
        hi = kept[i] if i < len(kept) else None
        if lo is None and hi is None:
            labels.append("all values")
        elif lo is None:
            labels.append(f"< {_fmt(hi)}")
        elif hi is None:
            labels.append(f">= {_fmt(lo)}")
        else:
            labels.append(f"{_fmt(lo)} to < {_fmt(hi)}")
    return labels, mr, mc, tuple(kept)


def _categorical(r: pd.Series, c: pd.Series, min_cell: int, max_bins: int):
    vr = r.astype(str).value_counts()
    vc = c.astype(str).value_counts()
    cats = sorted(set(vr.index) | set(vc.index), key=lambda k: (-(vr.get(k, 0) + vc.get(k, 0)), k))
    shown = [k for k in cats if _ok(vr.get(k, 0), min_cell) and _ok(vc.get(k, 0), min_cell)][:max_bins - 1]
    rest = [k for k in cats if k not in shown]
    labels = [str(k) for k in shown]
    mr = [int(vr.get(k, 0)) for k in shown]
    mc = [int(vc.get(k, 0)) for k in shown]
    if rest:
        pr, pc = sum(int(vr.get(k, 0)) for k in rest), sum(int(vc.get(k, 0)) for k in rest)
        word = f"{len(rest)} other categories" if len(rest) > 1 else "1 other category"
        # A failing pool joins the smallest shown category until it passes.
        while not (_ok(pr, min_cell) and _ok(pc, min_cell)) and labels:
            j = int(np.argmin(np.asarray(mr) + np.asarray(mc)))
            word = f"{labels.pop(j)} and {word}"
            pr, pc = pr + mr.pop(j), pc + mc.pop(j)
        labels.append(word)
        mr.append(pr)
        mc.append(pc)
    return labels, np.asarray(mr, np.int64), np.asarray(mc, np.int64)


def safe_histogram(reference: pd.Series, current: pd.Series, *, kind: str, min_cell: int,
                   max_bins: int = 12) -> SafeHistogram | None:
    """The two samples' shares per bin, every implied count 0 or at least ``min_cell``.

    Parameters
    ----------
    reference, current : pandas.Series
        The feature in each sample; missing values are counted as their own bin (or merged).
    kind : ``"numeric"`` or ``"categorical"``
    min_cell : int
        The small-cell rule's threshold (``report.min_cell``).
    max_bins : int
        The most bins before merging (numbers) or categories shown (categories).

    Returns
    -------
    SafeHistogram or None
        None when the rule leaves fewer than two bins (nothing to compare) or a sample is
        smaller than ``min_cell``.
    """
    n_r, n_c = int(reference.size), int(current.size)
    if n_r < min_cell or n_c < min_cell:
        return None
    miss_r, miss_c = int(reference.isna().sum()), int(current.isna().sum())
    r, c = reference.dropna(), current.dropna()
    edges = None
    if kind == "numeric":
        labels, hr, hc, edges = _numeric(r.to_numpy(np.float64), c.to_numpy(np.float64), min_cell, max_bins)
    else:
        labels, hr, hc = _categorical(r, c, min_cell, max_bins)
    if miss_r or miss_c:
        if _ok(miss_r, min_cell) and _ok(miss_c, min_cell):
            labels = [*labels, "missing"]
            hr, hc = np.append(hr, miss_r), np.append(hc, miss_c)
        else:
            # A small missing count is not shown on its own: it joins the smallest bin whose
            # counts still pass with it added (a bin with 0 rows of one sample may not).
            fits = [j for j in range(len(labels))
                    if _ok(int(hr[j]) + miss_r, min_cell) and _ok(int(hc[j]) + miss_c, min_cell)]
            if not fits:
                return None
            j = min(fits, key=lambda i: int(hr[i] + hc[i]))
            labels[j] = f"{labels[j]} or missing"
            hr, hc = hr.copy(), hc.copy()
            hr[j] += miss_r
            hc[j] += miss_c
    if len(labels) < 2 or not _passes(hr, hc, min_cell):
        return None
    return SafeHistogram(kind=kind, bins=tuple(labels), reference=tuple(float(x) for x in hr / n_r),
                         current=tuple(float(x) for x in hc / n_c), edges=edges)
