"""Exact, fast (cluster) bootstrap of confusion counts, and what to do with it.

Every metric built on a confusion matrix (FNR, FPR, PPV, ... per subgroup, and
gaps between subgroups) is a function of the counts of a few categories, so the
bootstrap only has to resample *counts*, never rows. :func:`bootstrap_counts`
does that exactly (same distribution as resampling rows or patients one by one)
at a cost that does not grow with the number of rows:

* Without clusters, one replicate draws N rows out of N with replacement, so the
  category counts are Multinomial(N, observed counts / N).
* With clusters (patients), one replicate draws C patients out of C. Patients
  with the same count vector over the categories (the same "profile") are
  exchangeable, so the number of draws of each distinct profile is
  Multinomial(C, f / C), where f are the profile frequencies, and the replicate's
  counts are ``draws @ profiles``.

Profiles shared by many patients go through the multinomial (cost per replicate:
one binomial per distinct profile); profiles held by few patients are drawn
patient by patient (cost: one random integer per draw), whichever is cheaper.
Both halves are exact, so the mixture is too.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import sparse

from .clusters import cluster_index

__all__ = [
    "MIN_DEFINED_FRACTION",
    "bootstrap_counts",
    "bootstrap_p_value",
    "defined_fraction",
    "percentile_interval",
]

#: An interval is reported only when at least this share of replicates is defined.
MIN_DEFINED_FRACTION = 0.5

# A profile held by at least this many clusters is cheaper to sample with one
# binomial (~75 ns) than with its expected number of integer draws (~8 ns each).
_FREQUENT_PROFILE = 8
# Working-memory budget of one chunk of replicates, in array elements (~16 MB per int64 array).
_CHUNK_ELEMENTS = 1 << 21


def _as_generator(random_state: object) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (
        isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool)
    ):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.SeedSequence):
        return np.random.default_rng(random_state)
    raise ValueError(
        "random_state must be None, an int or a numpy.random.Generator; "
        f"got {type(random_state).__name__}."
    )


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _check_codes(codes: object, n_categories: int) -> np.ndarray:
    arr = np.asarray(codes)
    if arr.ndim != 1:
        raise ValueError(f"codes must be 1-D (one code per row); got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError("codes is empty; the bootstrap needs at least one row.")
    if arr.dtype.kind not in "iu":
        raise ValueError(
            "codes must be an integer array (e.g. group_index * 4 + cell); "
            f"got dtype {arr.dtype}."
        )
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n_categories:
        raise ValueError(
            f"codes must lie in [0, {n_categories}) for n_categories={n_categories}; "
            f"found values from {lo} to {hi}."
        )
    return arr.astype(np.int64, copy=False)


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # lexsort + run detection is several times faster than np.unique(axis=0).
    order = np.lexsort(rows.T[::-1])
    srt = rows[order]
    first = np.ones(len(srt), dtype=bool)
    first[1:] = np.any(srt[1:] != srt[:-1], axis=1)
    starts = np.flatnonzero(first)
    return srt[starts], np.diff(np.append(starts, len(srt)))


def _distinct_profiles(
    codes: np.ndarray, cluster_idx: np.ndarray, n_clusters: int, n_categories: int
) -> tuple[sparse.csr_array, np.ndarray]:
    """Distinct per-cluster count vectors (U x K, CSR) and how many clusters hold each."""
    keys, counts = np.unique(cluster_idx * n_categories + codes, return_counts=True)
    entry_cluster, entry_code = np.divmod(keys, n_categories)
    length = np.bincount(entry_cluster, minlength=n_clusters)
    start = np.concatenate(([0], np.cumsum(length)[:-1]))
    indices, data, row_len, freq = [], [], [], []
    # Profiles with the same number of non-zero categories fit one dense block,
    # so exact de-duplication is a row-unique per block.
    for n_nonzero in np.unique(length):
        members = np.flatnonzero(length == n_nonzero)
        idx = start[members][:, None] + np.arange(n_nonzero)
        uniq, f = _unique_rows(np.concatenate([entry_code[idx], counts[idx]], axis=1))
        indices.append(uniq[:, :n_nonzero].ravel())
        data.append(uniq[:, n_nonzero:].ravel())
        row_len.append(np.full(len(uniq), n_nonzero))
        freq.append(f)
    indptr = np.concatenate(([0], np.cumsum(np.concatenate(row_len))))
    profiles = sparse.csr_array(
        (np.concatenate(data), np.concatenate(indices), indptr),
        shape=(len(indptr) - 1, n_categories),
    )
    return profiles, np.concatenate(freq)


def _clustered_replicates(
    profiles: sparse.csr_array,
    freq: np.ndarray,
    n_boot: int,
    chunk: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
    n_clusters = int(freq.sum())
    n_categories = profiles.shape[1]
    frequent = freq >= _FREQUENT_PROFILE
    p_freq, f_freq = profiles[frequent], freq[frequent]
    p_rare, f_rare = profiles[~frequent], freq[~frequent]
    n_rare_clusters = int(f_rare.sum())
    # One entry per rare cluster, naming its profile: a uniform draw over this
    # array is a uniform draw over the rare clusters.
    rare_cluster_profile = np.repeat(np.arange(len(f_rare)), f_rare)
    if chunk is None:
        per_replicate = len(freq) + n_rare_clusters + n_categories
        chunk = max(1, min(n_boot, _CHUNK_ELEMENTS // per_replicate))
    out = np.empty((n_boot, n_categories), dtype=np.int64)
    for lo in range(0, n_boot, chunk):
        m = min(chunk, n_boot - lo)
        if n_rare_clusters == 0:
            n_rare = np.zeros(m, dtype=np.int64)
        elif n_rare_clusters == n_clusters:
            n_rare = np.full(m, n_clusters, dtype=np.int64)
        else:
            # How many of the C draws land on rare clusters; the rest are
            # split among frequent profiles in proportion to their frequency.
            n_rare = rng.binomial(n_clusters, n_rare_clusters / n_clusters, size=m)
        counts = np.zeros((m, n_categories), dtype=np.int64)
        if len(f_freq):
            draws = rng.multinomial(n_clusters - n_rare, f_freq / f_freq.sum())
            counts += np.asarray(p_freq.T @ draws.T).T
        if n_rare_clusters:
            which = rare_cluster_profile[rng.integers(0, n_rare_clusters, size=int(n_rare.sum()))]
            replicate = np.repeat(np.arange(m), n_rare)
            draws = np.bincount(
                replicate * len(f_rare) + which, minlength=m * len(f_rare)
            ).reshape(m, len(f_rare))
            counts += np.asarray(p_rare.T @ draws.T).T
        out[lo : lo + m] = counts
    return out


def bootstrap_counts(
    codes: np.ndarray,
    n_categories: int,
    *,
    clusters: np.ndarray | None = None,
    n_boot: int = 2000,
    random_state: int | np.random.Generator | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """Bootstrap replicates of category counts, resampling rows or clusters.

    One replicate resamples the clusters (patients; rows when ``clusters`` is
    None) with replacement, C draws out of C, and counts the rows of each
    category among the drawn clusters (a cluster drawn twice counts twice).
    The result has exactly the distribution of that naive procedure, computed
    without touching rows: see the module docstring.

    Parameters
    ----------
    codes : array-like of int, shape (n,)
        Category of each row in ``[0, n_categories)``, e.g.
        ``group_index * 4 + cell_codes(y_true, y_pred)``.
    n_categories : int
        Number of categories (length of the count vector).
    clusters : array-like, shape (n,), optional
        Cluster label of each row (e.g. patient id; any hashable, sortable
        values). Rows of one cluster are resampled together. None (default)
        treats every row as its own cluster.
    n_boot : int, default 2000
        Number of replicates.
    random_state : None, int or numpy.random.Generator
        Seed or generator; the global numpy RNG is never used.
    chunk : int, optional
        Replicates generated at a time in the clustered path (bounds working
        memory). None picks a size from the data that keeps it near 16 MB per array.
        The values drawn for a given ``random_state`` depend on ``chunk``.

    Returns
    -------
    counts : ndarray of shape (n_boot, n_categories), int64
        Bootstrapped counts. Without clusters each row sums to n; with
        clusters each row sums to the number of rows in the drawn clusters.

    Raises
    ------
    ValueError
        On codes that are not 1-D non-negative integers below ``n_categories``,
        on ``clusters`` of another length, or on non-positive ``n_boot``/``chunk``.

    Notes
    -----
    Cost: without clusters, O(n) to count plus O(n_boot * n_categories).
    With clusters, O(n log n) once to find distinct profiles, then per
    replicate one binomial per profile shared by >= 8 clusters plus one
    random integer per draw of the other clusters.
    """
    n_categories = _positive_int("n_categories", n_categories)
    n_boot = _positive_int("n_boot", n_boot)
    if chunk is not None:
        chunk = _positive_int("chunk", chunk)
    codes = _check_codes(codes, n_categories)
    rng = _as_generator(random_state)
    n = codes.size

    if clusters is not None:
        cluster_idx, n_clusters = cluster_index(clusters, codes.shape)
        if n_clusters < n:
            profiles, freq = _distinct_profiles(codes, cluster_idx, n_clusters, n_categories)
            return _clustered_replicates(profiles, freq, n_boot, chunk, rng)
        # Every cluster is one row: identical to (and as fast as) the row bootstrap.

    observed = np.bincount(codes, minlength=n_categories)
    return rng.multinomial(n, observed / n, size=n_boot).astype(np.int64, copy=False)


def defined_fraction(samples: np.ndarray, axis: int = 0) -> np.ndarray:
    """Share of bootstrap replicates that are defined (not NaN).

    Parameters
    ----------
    samples : array-like of float
        Replicates of a statistic, NaN where undefined (e.g. a resampled group
        with no positives has no FNR).
    axis : int, default 0
        Replicate axis.

    Returns
    -------
    fraction : ndarray (numpy scalar for 1-D input)
        Defined replicates / all replicates, along ``axis``.
    """
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim == 0 or s.shape[axis] == 0:
        raise ValueError("samples must have at least one replicate along axis.")
    return np.mean(~np.isnan(s), axis=axis)[()]


def percentile_interval(
    samples: np.ndarray,
    level: float = 0.95,
    axis: int = 0,
    *,
    min_defined: float = MIN_DEFINED_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval that ignores undefined replicates.

    Parameters
    ----------
    samples : array-like of float
        Replicates of a statistic, NaN where undefined.
    level : float, default 0.95
        Coverage of the two-sided interval; bounds are the ``(1 - level) / 2``
        and ``(1 + level) / 2`` quantiles of the defined replicates (linear
        interpolation, numpy's default method).
    axis : int, default 0
        Replicate axis.
    min_defined : float, default 0.5
        Rule for thin evidence: where fewer than this share of replicates is
        defined (see :func:`defined_fraction`), both bounds are NaN, because the
        defined replicates then describe a different, conditional population
        (e.g. only resamples in which a rare group happened to have positives).

    Returns
    -------
    low, high : ndarray (numpy scalars for 1-D input)
        Interval bounds with the replicate axis removed.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}.")
    if not 0 <= min_defined <= 1:
        raise ValueError(f"min_defined must be in [0, 1]; got {min_defined!r}.")
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim == 0 or s.shape[axis] == 0:
        raise ValueError("samples must have at least one replicate along axis.")
    s = np.moveaxis(s, axis, 0)
    # NaN sorts last, so the defined values are the first k of each column and
    # the quantiles can be read off directly (np.nanpercentile warns on all-NaN).
    srt = np.sort(s, axis=0)
    k = np.sum(~np.isnan(s), axis=0)
    usable = (k > 0) & (k >= min_defined * s.shape[0])

    def quantile(prob: float) -> np.ndarray:
        pos = prob * np.maximum(k - 1, 0)
        below = np.floor(pos).astype(np.int64)
        above = np.minimum(below + 1, np.maximum(k - 1, 0))
        v_below = np.take_along_axis(srt, below[None], axis=0)[0]
        v_above = np.take_along_axis(srt, above[None], axis=0)[0]
        with np.errstate(invalid="ignore"):
            value = v_below + (pos - below) * (v_above - v_below)
        return np.where(usable, value, np.nan)[()]

    return quantile((1 - level) / 2), quantile((1 + level) / 2)


def bootstrap_p_value(diff_samples: np.ndarray, axis: int = 0) -> np.ndarray:
    """Two-sided bootstrap p-value for "difference = 0".

    Inverts the percentile interval: the p-value is the smallest ``1 - level``
    at which the percentile interval of the difference excludes 0,

    .. math:: p = \\min\\Bigl(1,\\ 2 \\min\\Bigl(\\frac{1 + \\#\\{d^* \\le 0\\}}{1 + B},
              \\frac{1 + \\#\\{d^* \\ge 0\\}}{1 + B}\\Bigr)\\Bigr),

    where B is the number of defined (non-NaN) replicates. The ``+1`` terms
    (Davison & Hinkley 1997, eq. 4.11) keep p above 0: with B replicates no
    p-value below about 2/(B+1) can be claimed.

    Parameters
    ----------
    diff_samples : array-like of float
        Bootstrap replicates of the difference, NaN where undefined.
    axis : int, default 0
        Replicate axis.

    Returns
    -------
    p : ndarray (numpy scalar for 1-D input)
        NaN where no replicate is defined. No minimum defined share is applied
        here; combine with :func:`defined_fraction` if needed.
    """
    d = np.asarray(diff_samples, dtype=np.float64)
    if d.ndim == 0 or d.shape[axis] == 0:
        raise ValueError("diff_samples must have at least one replicate along axis.")
    d = np.moveaxis(d, axis, 0)
    b = np.sum(~np.isnan(d), axis=0)
    at_or_below = np.sum(d <= 0, axis=0)
    at_or_above = np.sum(d >= 0, axis=0)
    tail = np.minimum(at_or_below, at_or_above)
    p = np.minimum(1.0, 2.0 * (1.0 + tail) / (1.0 + b))
    return np.where(b > 0, p, np.nan)[()]
