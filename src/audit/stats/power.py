"""How large a subgroup gap the data could have detected."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["min_detectable_gap"]


def min_detectable_gap(
    p: float | np.ndarray,
    n_group: int | np.ndarray,
    n_ref: int | np.ndarray,
    alpha: float = 0.05,
    power: float = 0.8,
) -> np.ndarray:
    """Smallest difference in a proportion a two-sample z-test could detect.

    An audit that finds no significant FNR gap in a small subgroup has not
    shown there is none; this says how big a gap it could have seen.

    Parameters
    ----------
    p : float or array-like
        Base rate of the proportion (e.g. the reference group's FNR), in [0, 1].
    n_group, n_ref : int or array-like
        Denominators of the proportion in the group and in the reference
        (for an FNR: the number of positives).
    alpha : float, default 0.05
        Two-sided significance level.
    power : float, default 0.8
        Desired probability of rejecting when the gap is this large.

    Returns
    -------
    gap : ndarray (numpy scalar for scalar input)
        Normal approximation with the variance at the base rate in both groups:

        .. math:: \\delta = (z_{1-\\alpha/2} + z_{\\text{power}})
                  \\sqrt{p(1-p)\\left(\\frac{1}{n_{group}} + \\frac{1}{n_{ref}}\\right)}

        NaN where n_group or n_ref is 0. The approximation is poor for tiny
        n or p near 0 or 1; treat the value as an order of magnitude.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}.")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1); got {power!r}.")
    rate = np.asarray(p, dtype=np.float64)
    ng = np.asarray(n_group, dtype=np.float64)
    nr = np.asarray(n_ref, dtype=np.float64)
    if np.any((rate < 0) | (rate > 1)) or np.any(np.isnan(rate)):
        raise ValueError("p must be a proportion in [0, 1].")
    if np.any(ng < 0) or np.any(nr < 0):
        raise ValueError("n_group and n_ref must be non-negative counts.")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = z * np.sqrt(rate * (1 - rate) * (1 / ng + 1 / nr))
    return np.where((ng > 0) & (nr > 0), gap, np.nan)[()]
