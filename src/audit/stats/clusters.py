"""Cluster labels (e.g. patient ids) as dense integer codes, shared by the bootstrap and the
influence-function standard errors."""

from __future__ import annotations

import numpy as np


def cluster_index(clusters: object, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """Dense codes 0..C-1 for the cluster label of each row, and C.

    Non-negative integer labels (e.g. from ``pandas.factorize``) are recoded with
    ``bincount`` in O(n); other labels are sorted once with ``np.unique``. Callers that
    reuse the same clusters many times should pass integer codes.

    Raises
    ------
    ValueError
        When there is not one label per row.
    """
    cl = np.asarray(clusters)
    if cl.shape != shape:
        raise ValueError(f"clusters must have one label per row: expected shape {shape}, got {cl.shape}.")
    cl = cl.reshape(-1)
    if cl.size and np.issubdtype(cl.dtype, np.integer) and cl.min() >= 0:
        present = np.bincount(cl) > 0
        remap = np.cumsum(present) - 1
        return remap[cl].astype(np.int64), int(present.sum())
    _, idx = np.unique(cl, return_inverse=True)
    idx = idx.reshape(-1).astype(np.int64)
    return idx, int(idx.max()) + 1 if idx.size else 0
