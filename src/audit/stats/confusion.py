"""Confusion-matrix cells and the rates derived from them.

Everything downstream (bootstrap, subgroup gaps) works on *counts* of the four
cells, so rates are computed from counts with any leading shape: one call turns
an ``(n_boot, n_groups, 4)`` array of bootstrap counts into per-replicate,
per-group rates.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CELLS", "cell_codes", "rates_from_counts"]

#: Order of the confusion cells along the last axis of every counts array.
CELLS = ("tp", "fn", "fp", "tn")


def _binary(name: str, values: object) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got an array of shape {arr.shape}.")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold 0/1 (or bool) values; got dtype {arr.dtype}.")
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        found = np.unique(arr[bad])[:5].tolist()
        raise ValueError(f"{name} must hold only 0 and 1; found {found}.")
    return arr.astype(bool)


def cell_codes(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Code each row by its confusion-matrix cell.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0/1 or bool (1 = disease present).
    y_pred : array-like of shape (n,)
        Predicted labels, 0/1 or bool.

    Returns
    -------
    codes : ndarray of shape (n,), int64
        0 = TP (y=1, pred=1), 1 = FN (y=1, pred=0), 2 = FP (y=0, pred=1),
        3 = TN (y=0, pred=0); the order of :data:`CELLS`. Combine with a group
        index as ``group * 4 + codes`` to bootstrap all groups at once.

    Raises
    ------
    ValueError
        If the inputs are not 1-D, differ in length, or hold values other than 0/1.
    """
    yt = _binary("y_true", y_true)
    yp = _binary("y_pred", y_pred)
    if yt.shape != yp.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length; got {yt.size} and {yp.size}."
        )
    # 2 * (not y) + (not pred) gives TP=0, FN=1, FP=2, TN=3.
    return 2 * (~yt).astype(np.int64) + (~yp).astype(np.int64)


def rates_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Rates of a confusion matrix given as counts.

    Parameters
    ----------
    counts : array-like of shape (..., 4)
        Counts of (tp, fn, fp, tn) along the last axis, any leading shape
        (e.g. ``(n_boot, n_groups, 4)``).

    Returns
    -------
    rates : dict of str to ndarray of shape (...), float64
        ``n`` = tp+fn+fp+tn; ``positives`` = tp+fn; ``prevalence`` = positives/n;
        ``sensitivity`` = tp/(tp+fn); ``specificity`` = tn/(tn+fp);
        ``fnr`` = fn/(tp+fn) (the underdiagnosis rate when "positive" means
        "has a finding"); ``fpr`` = fp/(fp+tn); ``ppv`` = tp/(tp+fp);
        ``npv`` = tn/(tn+fn).
        A rate whose denominator is 0 is NaN, never 0: a group with no
        positives has an undefined FNR, not a perfect one.

    Raises
    ------
    ValueError
        If the last axis does not have length 4 or counts are negative.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim == 0 or c.shape[-1] != 4:
        raise ValueError(
            f"counts must have a last axis of length 4 (tp, fn, fp, tn); got shape {c.shape}."
        )
    if np.any(c < 0):
        raise ValueError("counts must be non-negative.")
    tp, fn, fp, tn = (c[..., i] for i in range(4))

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / den, np.nan)

    n = tp + fn + fp + tn
    positives = tp + fn
    return {
        "n": n,
        "positives": positives,
        "prevalence": ratio(positives, n),
        "sensitivity": ratio(tp, positives),
        "specificity": ratio(tn, tn + fp),
        "fnr": ratio(fn, positives),
        "fpr": ratio(fp, fp + tn),
        "ppv": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
    }
