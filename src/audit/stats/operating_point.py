"""Turning scores into decisions: choosing the operating threshold.

Underdiagnosis is a property of decisions, not of scores, so an audit must say
which threshold it applied. Predictions are always ``y_score >= threshold``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from .confusion import _binary

__all__ = ["choose_threshold", "parse_operating_point"]

_ACCEPTED = (
    "'youden', 'max-f1', 'sensitivity:X' or 'specificity:X' with 0 < X < 1 "
    "(e.g. 'sensitivity:0.9')"
)


def parse_operating_point(text: str) -> tuple[str, float | None]:
    """Parse an operating-point specification.

    Parameters
    ----------
    text : str
        One of ``"youden"``, ``"max-f1"``, ``"sensitivity:X"`` or
        ``"specificity:X"`` with 0 < X < 1 (case and surrounding spaces ignored).

    Returns
    -------
    kind : str
        ``"youden"``, ``"max-f1"``, ``"sensitivity"`` or ``"specificity"``.
    target : float or None
        X for the target kinds, None otherwise.

    Raises
    ------
    ValueError
        Naming the accepted forms, when ``text`` is none of them.
    """
    if not isinstance(text, str):
        raise ValueError(f"Operating point must be a string, one of {_ACCEPTED}; got {text!r}.")
    spec = text.strip().lower()
    if spec in ("youden", "max-f1"):
        return spec, None
    kind, sep, value = spec.partition(":")
    if sep and kind.strip() in ("sensitivity", "specificity"):
        try:
            target = float(value)
        except ValueError:
            target = math.nan
        if 0 < target < 1:
            return kind.strip(), target
    raise ValueError(f"Unknown operating point {text!r}; expected {_ACCEPTED}.")


def choose_threshold(y_true: np.ndarray, y_score: np.ndarray, method: str) -> float:
    """Choose a decision threshold on labelled data.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, 0/1 or bool; both classes must be present.
    y_score : array-like of shape (n,)
        Scores; the decision rule is ``y_score >= threshold``.
    method : str
        See :func:`parse_operating_point`:

        - ``"youden"``: the threshold maximising TPR - FPR over the (finite)
          thresholds of ``sklearn.metrics.roc_curve``; the highest on ties.
        - ``"max-f1"``: as in Seyyed-Kalantari et al. (2021): the threshold of
          ``sklearn.metrics.precision_recall_curve`` maximising
          F1 = 2PR / (P + R) (F1 = 0 where P + R = 0); the first (lowest) on
          ties. The curve's final point (P = 1, R = 0) has no threshold and is
          skipped.
        - ``"sensitivity:X"``: the largest threshold whose sensitivity is >= X.
        - ``"specificity:X"``: the smallest threshold whose specificity is >= X.

    Returns
    -------
    threshold : float
        Always an observed score, except for ``specificity:X`` when every score
        must be excluded: then the next float above the maximum score. Hence
        the rule reproduces the stated metric on the data it was chosen on.

    Raises
    ------
    ValueError
        On a bad ``method``, mismatched inputs, or a single class in y_true.
    """
    kind, target = parse_operating_point(method)
    y = _binary("y_true", y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if s.shape != y.shape:
        raise ValueError(f"y_score must have shape {y.shape} like y_true; got {s.shape}.")
    if not np.all(np.isfinite(s)):
        raise ValueError("y_score contains NaN or infinite values.")
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        raise ValueError(
            f"Choosing a threshold needs both classes; y_true has {n1} positives and "
            f"{n0} negatives."
        )

    # Ties are decided on exact counts: TPR - FPR or 2PR/(P+R) computed in
    # floating point can differ in the last bit between equal values.
    if kind == "youden":
        fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
        tp, fp = np.rint(tpr * n1), np.rint(fpr * n0)
        finite = np.isfinite(thresholds)  # sklearn prepends +inf ("predict none")
        youden = (tp * n0 - fp * n1)[finite]  # (TPR - FPR) * n1 * n0
        return float(thresholds[finite][np.argmax(youden)])

    if kind == "max-f1":
        _, recall, thresholds = precision_recall_curve(y, s)
        # The last (P=1, R=0) point has no threshold. F1 = 2PR/(P+R) =
        # 2TP/(predicted positives + n1), which is 0, not NaN, where P = R = 0.
        tp = np.rint(recall[:-1] * n1)
        predicted = s.size - np.searchsorted(np.sort(s), thresholds, side="left")
        f1 = 2 * tp / (predicted + n1)
        return float(thresholds[np.argmax(f1)])

    if kind == "sensitivity":
        pos = np.sort(s[y])
        candidates = np.unique(pos)
        # Positives with score >= t, for each candidate t.
        sensitivity = (n1 - np.searchsorted(pos, candidates, side="left")) / n1
        return float(candidates[sensitivity >= target].max())

    neg = np.sort(s[~y])
    candidates = np.append(np.unique(s), np.nextafter(s.max(), np.inf))
    # Negatives with score < t, for each candidate t.
    specificity = np.searchsorted(neg, candidates, side="left") / n0
    return float(candidates[specificity >= target].min())
