"""Intervals and tests for proportions and their differences that hold at small counts.

A rate such as an FNR is a proportion k/n of rows. When rows repeat per patient they are
correlated, and n overstates the information. Following Korn & Graubard (1998) the rate keeps
its point estimate k/n but its interval is the exact Clopper-Pearson interval at an *effective*
sample size

.. math:: n^* = \\frac{n}{d} \\left(\\frac{t_{n-1}}{t_{C-1}}\\right)^2,
          \\qquad k^* = \\hat p\\, n^*,

where ``d >= 1`` is the design effect (the cluster-robust variance of the ratio estimator over
its binomial variance, never below 1) and the ratio of t quantiles corrects for estimating the
variance from only C patients. Without clusters ``d = 1`` and the interval is Clopper-Pearson.
When the observed rate is 0 or 1 the variance cannot be estimated; the design effect is then
``n / C``, as if every patient's rows agreed (the most conservative case).

The difference of two independent rates gets the MOVER interval (Newcombe 1998; Zou & Donner
2008) built from the two rates' own intervals, so it carries both groups' uncertainty whatever
their size, and is never a point when one side is 0% or 100%. Its two-sided p-value inverts
the same interval (the smallest alpha at which it excludes 0), so p-values and intervals always
agree and their resolution does not depend on any replicate count.

References
----------
Clopper CJ, Pearson ES (1934) Biometrika 26:404.
Korn EL, Graubard BI (1998) Survey Methodology 24:193 (effective sample size, df correction).
Newcombe RG (1998) Stat Med 17:873 (method 10: the hybrid score interval).
Zou GY, Donner A (2008) Stat Med 27:1693 (MOVER).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "INTERVAL_METHODS",
    "Proportion",
    "cluster_proportions",
    "difference_interval",
    "difference_p_value",
    "proportion_interval",
]

#: Interval methods for one proportion: exact (default) or Wilson score.
INTERVAL_METHODS = ("clopper-pearson", "wilson")
# Smallest p-value searched for by inversion (below it, p is reported as this bound).
_P_FLOOR = 1e-300


@dataclass(frozen=True)
class Proportion:
    """Proportions k/n (arrays of any one shape) with their clustering summary.

    Attributes
    ----------
    k, n : ndarray of float
        Numerator and denominator counts (rows).
    clusters : ndarray of float
        Patients (clusters) with at least one row in the denominator; equal to ``n`` without
        clustering.
    deff : ndarray of float
        Design effect, at least 1 (1 without clustering).
    """

    k: np.ndarray
    n: np.ndarray
    clusters: np.ndarray
    deff: np.ndarray

    @property
    def p(self) -> np.ndarray:
        """Point estimates k/n (NaN where n is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n > 0, self.k / np.where(self.n > 0, self.n, 1), np.nan)

    @classmethod
    def from_sums(cls, k, n, clusters, ss) -> Proportion:
        """From totals k, n, the clusters in the denominator and the sum over clusters of
        squared residuals ``(y_c - p m_c)^2`` (see :func:`cluster_proportions`)."""
        return _with_deff(_as_float(k), _as_float(n), _as_float(clusters), _as_float(ss))

    @classmethod
    def independent(cls, k, n) -> Proportion:
        """Proportions of independent rows (no clustering: design effect 1)."""
        k, n = np.broadcast_arrays(_as_float(k), _as_float(n))
        return cls(k, n, n.copy(), np.ones_like(n))

    def take(self, index) -> Proportion:
        """The proportions at ``index`` (numpy fancy indexing on every field)."""
        return Proportion(self.k[index], self.n[index], self.clusters[index], self.deff[index])

    def effective(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Effective numerator and denominator (k*, n*) at an interval level.

        The t-quantile ratio (Korn & Graubard's degrees-of-freedom correction) shrinks n*
        further when the variance was estimated from few patients.
        """
        n_eff = _effective_n(self, np.full(np.shape(self.n), 1 - level))
        return self.p * n_eff, n_eff


def _as_float(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def proportion_interval(
    prop: Proportion, level: float = 0.95, method: str = "clopper-pearson"
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided interval for each proportion.

    Parameters
    ----------
    prop : Proportion
        Counts and clustering summary (see :func:`cluster_proportions`, or build one with
        ``Proportion(k, n, n, 1)`` for independent rows).
    level : float, default 0.95
        Two-sided coverage.
    method : {"clopper-pearson", "wilson"}
        Clopper-Pearson's exact interval (default: it covers at least ``level`` at every
        count) or Wilson's score interval, both at the effective sample size.

    Returns
    -------
    low, high : ndarray
        NaN where n is 0. A bound sits at 0 (or 1) only when the observed rate does.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}.")
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {', '.join(INTERVAL_METHODS)}; got {method!r}.")
    defined = prop.n > 0
    safe = Proportion(np.where(defined, prop.k, 0.0), np.where(defined, prop.n, 1.0),
                      np.where(defined, prop.clusters, 1.0), np.where(defined, prop.deff, 1.0))
    low, high = _interval_at(safe, np.full(np.shape(prop.n), 1 - level), method)
    return np.where(defined, low, np.nan)[()], np.where(defined, high, np.nan)[()]


def difference_interval(
    a: Proportion, b: Proportion, level: float | np.ndarray = 0.95, method: str = "clopper-pearson"
) -> tuple[np.ndarray, np.ndarray]:
    """MOVER interval for ``p_a - p_b`` of independent proportions (elementwise).

    ``L = d - sqrt((p_a - l_a)^2 + (u_b - p_b)^2)`` and
    ``U = d + sqrt((u_a - p_a)^2 + (p_b - l_b)^2)``, from each proportion's own interval
    (:func:`proportion_interval`); Newcombe's method 10 when ``method="wilson"``.
    """
    shape = np.broadcast_shapes(np.shape(a.n), np.shape(b.n), np.shape(level))
    low, high = _difference_at(a, b, 1 - np.broadcast_to(_as_float(level), shape), method)
    return np.asarray(low)[()], np.asarray(high)[()]


def difference_p_value(
    a: Proportion, b: Proportion, method: str = "clopper-pearson", iterations: int = 44
) -> np.ndarray:
    """Two-sided p-value of "p_a = p_b" that inverts :func:`difference_interval`.

    The p-value is the smallest alpha at which the ``1 - alpha`` interval excludes 0, found
    by bisection on log(alpha) (44 halvings of [1e-300, 1]: relative error below 1e-10); it can be far
    below 1/B for any replicate count B. 1 where the estimates are equal; NaN where either
    is undefined; ``1e-300`` is the smallest value returned.
    """
    d = _as_float(a.p - b.p)
    shape = d.shape
    d = d.reshape(-1)
    out = np.full(d.size, np.nan)
    defined = np.isfinite(d)
    out[defined & (d == 0)] = 1.0
    todo = np.flatnonzero(defined & (d != 0))
    if todo.size:
        flat_a = _flat(a, shape)
        flat_b = _flat(b, shape)
        sub_a, sub_b, sub_d = flat_a.take(todo), flat_b.take(todo), d[todo]
        lo = np.full(todo.size, np.log(_P_FLOOR))  # here the interval still excludes 0 ...
        hi = np.zeros(todo.size)  # ... and here (alpha = 1, a point) it always does
        excludes_at_floor = _excludes_zero(sub_a, sub_b, sub_d, np.exp(lo), method)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            exc = _excludes_zero(sub_a, sub_b, sub_d, np.exp(mid), method)
            hi = np.where(exc, mid, hi)
            lo = np.where(exc, lo, mid)
        out[todo] = np.where(excludes_at_floor, _P_FLOOR, np.minimum(1.0, np.exp(hi)))
    return out.reshape(shape)[()]


def _flat(prop: Proportion, shape) -> Proportion:
    def f(x):
        return np.broadcast_to(_as_float(x), shape).reshape(-1)

    return Proportion(f(prop.k), f(prop.n), f(prop.clusters), f(prop.deff))


def _excludes_zero(a: Proportion, b: Proportion, d: np.ndarray, alpha: np.ndarray,
                   method: str) -> np.ndarray:
    # Level varies per element: evaluate the interval elementwise at its own level. Only the
    # bound on the side of 0 matters: the lower one when d > 0, which needs a's lower and b's
    # upper bound (by symmetry, swap the two when d < 0).
    pos = d > 0
    first = Proportion(*(np.where(pos, x, y) for x, y in zip(_fields(a), _fields(b), strict=True)))
    second = Proportion(*(np.where(pos, y, x) for x, y in zip(_fields(a), _fields(b), strict=True)))
    lo, _ = _interval_at(first, alpha, method)
    _, hi = _interval_at(second, alpha, method)
    p1, p2 = first.p, second.p
    return np.abs(d) - np.sqrt((p1 - lo) ** 2 + (hi - p2) ** 2) > 0


def _fields(prop: Proportion) -> tuple[np.ndarray, ...]:
    return prop.k, prop.n, prop.clusters, prop.deff


def _difference_at(a: Proportion, b: Proportion, alpha: np.ndarray, method: str):
    pa, pb = a.p, b.p
    la, ua = _interval_at(a, alpha, method)
    lb, ub = _interval_at(b, alpha, method)
    d = pa - pb
    return (d - np.sqrt((pa - la) ** 2 + (ub - pb) ** 2),
            d + np.sqrt((ua - pa) ** 2 + (pb - lb) ** 2))


def _effective_n(prop: Proportion, alpha: np.ndarray) -> np.ndarray:
    n_eff = prop.n / prop.deff
    clustered = prop.clusters < prop.n
    if np.any(clustered):
        with np.errstate(invalid="ignore", divide="ignore"):
            # The lower-tail t quantiles at alpha / 2 (their ratio is that of the upper ones)
            # stay accurate for tiny alpha, where 1 - alpha / 2 would round to 1.
            # special.stdtrit is the t quantile as a ufunc (stats.t.ppf costs ~100x more).
            factor = (special.stdtrit(np.maximum(prop.n - 1, 1), alpha / 2)
                      / special.stdtrit(np.maximum(prop.clusters - 1, 1), alpha / 2)) ** 2
            # Far in the tails the few-patient t quantile overflows: no information left (n* 0).
            factor = np.nan_to_num(factor, nan=0.0, posinf=0.0)
            n_eff = np.where(clustered, n_eff * factor, n_eff)
    return n_eff


def _interval_at(prop: Proportion, alpha: np.ndarray, method: str):
    """proportion_interval at an elementwise ``alpha = 1 - level`` (used by the p-value
    bisection; computed from alpha, not the level, so that alpha can be far below 1e-16)."""
    n = _effective_n(prop, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = prop.p * n
        if method == "clopper-pearson":
            low = np.where(k > 0, special.betaincinv(k, n - k + 1, alpha / 2), 0.0)
            # For tiny alpha the upper bound by symmetry, 1 - B^-1(n - k, k + 1; alpha / 2), as
            # 1 - alpha / 2 rounds to 1; otherwise directly (1 - x loses digits of small bounds).
            direct = special.betaincinv(k + 1, n - k, 1 - alpha / 2)
            mirrored = 1 - special.betaincinv(n - k, k + 1, alpha / 2)
            high = np.where(k < n, np.where(alpha > 1e-8, direct, mirrored), 1.0)
            return low, high
        z = -special.ndtri(alpha / 2)
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return np.where(k > 0, centre - half, 0.0), np.where(k < n, centre + half, 1.0)


def cluster_proportions(
    y: np.ndarray, m: np.ndarray, unit: np.ndarray, n_units: int
) -> Proportion:
    """Per-unit proportions Σy / Σm from per-cluster counts, with their design effects.

    Parameters
    ----------
    y, m : array-like of shape (P,)
        For each (cluster, unit) pair: rows in the numerator and in the denominator
        (``0 <= y <= m``). A unit is a group, or any set of rows a rate is taken over.
    unit : array-like of int, shape (P,)
        The unit of each pair, in ``[0, n_units)``.
    n_units : int

    Returns
    -------
    Proportion
        One entry per unit. The design effect is the cluster-robust variance of the ratio
        estimator, ``C/(C-1) Σ_c (y_c - p m_c)^2 / (Σ m)^2``, over the binomial variance
        ``p(1-p)/n``, floored at 1; ``n / C`` where the rate is 0 or 1 (see the module
        docstring). Pairs with ``m = 0`` do not count as clusters.
    """
    y = _as_float(y)
    m = _as_float(m)
    unit = np.asarray(unit, dtype=np.int64)
    k = np.bincount(unit, weights=y, minlength=n_units)
    n = np.bincount(unit, weights=m, minlength=n_units)
    c = np.bincount(unit, weights=(m > 0).astype(np.float64), minlength=n_units)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / np.where(n > 0, n, 1), 0.0)
    resid = y - p[unit] * m
    ss = np.bincount(unit, weights=resid * resid, minlength=n_units)
    return _with_deff(k, n, c, ss)


def _with_deff(k, n, c, ss) -> Proportion:
    """Proportion from totals and the sum of squared cluster residuals."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / np.where(n > 0, n, 1), 0.0)
        var_cluster = np.where(c > 1, c / np.maximum(c - 1, 1) * ss / np.where(n > 0, n, 1) ** 2, np.nan)
        var_binom = p * (1 - p) / np.where(n > 0, n, 1)
        deff = np.where(var_binom > 0, var_cluster / np.where(var_binom > 0, var_binom, 1), np.nan)
    degenerate = (p <= 0) | (p >= 1) | ~np.isfinite(deff)
    fallback = np.where(c > 0, n / np.maximum(c, 1), 1.0)  # all of a patient's rows agree
    deff = np.where(degenerate, fallback, np.maximum(deff, 1.0))
    deff = np.where(c >= n, 1.0, deff)  # one row per patient: no clustering at all
    return Proportion(k, n, np.minimum(c, n), deff)
