"""Adjusting p-values for the many subgroup comparisons of one audit."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["adjust_pvalues"]

_METHODS = ("bh", "holm")


def adjust_pvalues(p: np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjust a family of p-values for multiple comparisons.

    Parameters
    ----------
    p : array-like of float
        P-values in [0, 1], any shape; the family is all non-NaN entries.
        NaN entries (tests that could not be run) are passed through as NaN
        and do not count towards the family size.
    method : {"holm", "bh"}, default "holm"
        "holm": Holm's step-down procedure, controls the family-wise error
        rate. With the m defined p-values sorted ascending,
        ``p_adj_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j))``.
        "bh": Benjamini-Hochberg, controls the false discovery rate
        (``scipy.stats.false_discovery_control(method="bh")``).

    Returns
    -------
    p_adjusted : ndarray of float, same shape as ``p``

    Raises
    ------
    ValueError
        On an unknown method or p-values outside [0, 1].

    References
    ----------
    Holm (1979), Scand J Statist 6:65. Benjamini & Hochberg (1995), JRSS B 57:289.
    """
    if method not in _METHODS:
        raise ValueError(
            f"Unknown p-value adjustment method {method!r}; expected one of: "
            + ", ".join(repr(m) for m in _METHODS)
            + "."
        )
    arr = np.asarray(p, dtype=np.float64)
    defined = ~np.isnan(arr)
    values = arr[defined]
    if np.any((values < 0) | (values > 1)):
        raise ValueError("p-values must lie in [0, 1] (or be NaN for tests not run).")
    out = np.full(arr.shape, np.nan)
    m = values.size
    if m == 0:
        return out
    if method == "holm":
        order = np.argsort(values, kind="stable")
        stepped = np.minimum(1.0, (m - np.arange(m)) * values[order])
        adjusted = np.empty(m)
        # The running maximum keeps the adjusted values in the order of the raw ones.
        adjusted[order] = np.maximum.accumulate(stepped)
    else:
        adjusted = stats.false_discovery_control(values, method="bh")
    out[defined] = adjusted
    return out
