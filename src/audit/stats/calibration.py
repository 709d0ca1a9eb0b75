"""Calibration of predicted probabilities: logistic recalibration, calibration in the large,
Brier score, ECE, reliability curves and decision curves.

Common parameters: ``y`` (n,) labels 0/1 or bool; ``p`` (n,) predicted probabilities in
[0, 1]; ``clusters`` (n,) optional patient id per row, with which analytic standard errors
are cluster-robust and bootstraps resample patients (all rows of a drawn patient together);
``level`` two-sided coverage in (0, 1); ``random_state`` None, an int or a Generator.
Undefined results come back with value NaN and a ``reason``, never as an error or a warning;
invalid input raises ValueError.

References
----------
Cox (1958), Biometrika 45:562. Van Calster et al. (2019), BMC Medicine 17:230.
Vickers & Elkin (2006), Medical Decision Making 26:565.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special

from .bootstrap import _as_generator, percentile_interval
from .clusters import cluster_index
from .confusion import _binary
from .influence import brier_influence, influence_se, wald_interval

__all__ = ["EPSILON", "Estimate", "ReliabilityCurve", "brier", "calibration_in_the_large",
           "calibration_slope", "clip_scores", "decision_curve", "ece_interval",
           "expected_calibration_error", "net_benefit", "reliability_curve"]

#: Scores are clipped to [EPSILON, 1 - EPSILON] before the logit.
EPSILON = 1e-6
_SEPARATION = "perfect separation: the slope is not finite"


@dataclass(frozen=True)
class Estimate:
    """Point estimate (NaN when undefined), interval, standard error, method and reason."""

    value: float
    low: float | None
    high: float | None
    se: float | None
    method: str
    reason: str | None = None  # why the value or the interval is missing, else None


@dataclass(frozen=True)
class ReliabilityCurve:
    """Observed event rate ``y`` at predicted probabilities ``x`` with a pointwise band.

    ``counts[k]`` counts the predictions nearest to ``x[k]`` (cells end half-way to the
    neighbouring grid points; predictions beyond the outer half-cells are not counted).
    """

    x: np.ndarray
    y: np.ndarray
    low: np.ndarray
    high: np.ndarray
    method: str
    counts: np.ndarray
    reason: str | None = None


def _inputs(y, p, clusters):
    yy = _binary("y", y).astype(np.float64)
    pp = np.asarray(p, dtype=np.float64)
    if pp.shape != yy.shape:
        raise ValueError(f"p must have the same shape as y {yy.shape}; got {pp.shape}.")
    if not np.all(np.isfinite(pp)) or np.any((pp < 0) | (pp > 1)):
        raise ValueError("p must hold finite probabilities in [0, 1].")
    if clusters is None:
        return yy, pp, None, yy.size
    return (yy, pp, *cluster_index(clusters, yy.shape))


def _level(level) -> str:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}.")
    return f"{100 * level:g}%"


def _count(name, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _se_text(idx, n_clusters) -> str:
    return "model SE" if idx is None else f"cluster-robust SE over {n_clusters} patients"


def _unit(idx, n_clusters=None) -> str:
    if idx is None:
        return "rows"
    return "patients" if n_clusters is None else f"{n_clusters} patients"


def _undefined(method: str, reason: str) -> Estimate:
    return Estimate(float("nan"), None, None, None, method, reason)


def _class_reason(y) -> str | None:
    if y.size < 2:
        return "fewer than 2 rows"
    return "no events" if y.sum() == 0 else ("no non-events" if y.all() else None)


def clip_scores(p, epsilon: float = EPSILON) -> tuple[np.ndarray, int]:
    """Clip scores to ``[epsilon, 1 - epsilon]`` so that their logit is finite.

    Returns
    -------
    clipped : ndarray of float64, the shape of ``p``
    n_clipped : int
        Scores that were changed: outside ``[epsilon, 1 - epsilon]`` (0, 1 or beyond).
    """
    if not 0 < epsilon < 0.5:
        raise ValueError(f"epsilon must be in (0, 0.5); got {epsilon!r}.")
    arr = np.asarray(p, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("p contains NaN or infinite values.")
    out = np.clip(arr, epsilon, 1 - epsilon)
    return out, int(np.count_nonzero(out != arr))


def _newton(y, exog, offset, beta):
    """Newton-Raphson with step halving on the logistic log-likelihood (a safe fallback)."""
    def nll(b):
        eta = exog @ b + offset
        return np.sum(np.logaddexp(0.0, eta) - y * eta)

    for _ in range(200):
        mu = special.expit(exog @ beta + offset)
        hess = exog.T @ (exog * (mu * (1 - mu))[:, None])
        step = np.linalg.lstsq(hess, exog.T @ (y - mu), rcond=None)[0]
        t, f0 = 1.0, nll(beta)
        while nll(beta + t * step) > f0 and t > 1e-10:
            t /= 2
        beta = beta + t * step
        if np.max(np.abs(t * step)) < 1e-12:
            break
    return beta


def _glm(y, exog, offset, idx, n_clusters, start):
    """Logistic GLM by statsmodels IRLS: (params or None, bse or None, reason).

    IRLS has no step control and can diverge (or report a wrong optimum as converged) when
    scores are extreme, e.g. wrong predictions of exactly 0 or 1 after clipping. A fit is
    accepted only if its parameters are finite and solve the score equations; otherwise
    IRLS restarts from a step-halving Newton solution started at ``start``.
    """
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM

    robust = idx is not None and n_clusters >= 2
    reason = None if idx is None or robust else "fewer than 2 patients: no cluster-robust interval"
    off = np.zeros(y.size) if offset is None else offset
    kw = {"cov_type": "cluster", "cov_kwds": {"groups": idx}} if robust else {}
    for attempt in range(2):
        # Warnings (overflow in exp, PerfectSeparationWarning, ConvergenceWarning) describe
        # intermediate iterates; the result itself is checked below.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            init = None if attempt == 0 else _newton(y, exog, off, np.asarray(start, float))
            res = GLM(y, exog, family=Binomial(), offset=offset).fit(start_params=init, **kw)
            params = np.asarray(res.params)
            score = exog.T @ (y - special.expit(exog @ params + off))
        if np.all(np.isfinite(params)) and np.max(np.abs(score)) <= 1e-6 * y.size:
            break
    else:
        return None, None, "the logistic fit did not converge"
    bse = np.asarray(res.bse)
    if robust and not np.all(np.isfinite(bse)):
        # statsmodels' robust covariance divides by mu (1 - mu), which underflows to 0 for
        # rows fitted at exactly 0 or 1; the same sandwich in the canonical-link form:
        mu = special.expit(exog @ params + off)
        bread = np.linalg.pinv(exog.T @ (exog * (mu * (1 - mu))[:, None]))
        sums = np.zeros((n_clusters, exog.shape[1]))
        np.add.at(sums, idx, exog * (y - mu)[:, None])
        n, k = exog.shape
        factor = n_clusters / (n_clusters - 1) * (n - 1) / (n - k)
        bse = np.sqrt(np.diag(bread @ sums.T @ sums @ bread) * factor)
    if reason is None and not np.all(np.isfinite(bse)):
        reason = "the standard error is not finite"
    return params, (None if reason else bse), reason


def _wald(value, se, level, method, reason) -> Estimate:
    if se is None or not np.isfinite(se):
        reason = reason or "the standard error is not finite"
        return Estimate(float(value), None, None, None, method, reason)
    low, high = wald_interval(value, se, level)
    return Estimate(float(value), float(low), float(high), float(se), method)


def calibration_slope(y, p, *, clusters=None, level=0.95) -> tuple[Estimate, Estimate]:
    """Calibration slope and intercept: logistic GLM ``y ~ 1 + logit(p)``.

    ``p`` is clipped with :data:`EPSILON` before the logit (:func:`clip_scores` counts the
    clipped scores). Standard errors are model-based, or cluster-robust (statsmodels
    ``cov_type="cluster"`` with its small-sample factor) with ``clusters``; Wald intervals.

    Returns
    -------
    slope, intercept : Estimate
        1 and 0 for a calibrated model. NaN with a reason for no events, no non-events,
        fewer than 2 rows, constant scores, or (quasi-)complete separation.
    """
    y, p, idx, n_cl = _inputs(y, p, clusters)
    tail = f"logistic GLM y ~ 1 + logit(p), {_level(level)} Wald CI, {_se_text(idx, n_cl)}"
    m_slope, m_int = f"calibration slope: {tail}", f"calibration intercept: {tail}"
    x = special.logit(clip_scores(p)[0])
    reason = _class_reason(y)
    if reason is None and np.ptp(x) == 0:
        reason = "all scores are equal: the slope is not identifiable"
    if reason is None:
        x0, x1 = x[y == 0], x[y == 1]
        if x0.max() <= x1.min() or x1.max() <= x0.min():
            reason = _SEPARATION
    params = bse = None
    if reason is None:
        exog = np.column_stack([np.ones_like(x), x])
        params, bse, reason = _glm(y, exog, None, idx, n_cl, start=[0.0, 1.0])
    if params is None:
        return _undefined(m_slope, reason), _undefined(m_int, reason)
    se = (None, None) if bse is None else (bse[1], bse[0])
    return (_wald(params[1], se[0], level, m_slope, reason),
            _wald(params[0], se[1], level, m_int, reason))


def calibration_in_the_large(y, p, *, clusters=None, level=0.95) -> tuple[Estimate, Estimate]:
    """Calibration in the large: the CITL intercept and the observed/expected ratio.

    Returns
    -------
    citl : Estimate
        Intercept of the logistic GLM ``y ~ 1`` with offset ``logit(p)`` (p clipped with
        :data:`EPSILON`); 0 when calibrated. Wald CI, model or cluster-robust SE.
    oe : Estimate
        ``sum(y) / sum(p)`` (unclipped p); 1 when calibrated. CI ``exp(log O/E +- z SE)``
        where ``se`` is the delta-method SE of log O/E from the influence of a ratio of
        sums, ``psi_i = (y_i - O/E p_i) / sum(p)``, summed within patients.
    """
    y, p, idx, n_cl = _inputs(y, p, clusters)
    lv = _level(level)
    m_citl = f"CITL: logistic GLM y ~ 1 with offset logit(p), {lv} Wald CI, {_se_text(idx, n_cl)}"
    m_oe = (f"O/E = sum(y)/sum(p), {lv} CI exp(log O/E +- z SE), SE of log O/E by the delta "
            f"method (influence of a ratio of sums over {_unit(idx, n_cl)})")
    params, reason = None, _class_reason(y)
    if reason is None:
        offset = special.logit(clip_scores(p)[0])
        params, bse, reason = _glm(y, np.ones((y.size, 1)), offset, idx, n_cl, start=[0.0])
    citl = (_undefined(m_citl, reason) if params is None
            else _wald(params[0], None if bse is None else bse[0], level, m_citl, reason))
    expected = p.sum()
    if expected == 0:
        return citl, _undefined(m_oe, "no rows" if y.size == 0 else "all predictions are 0")
    oe = y.sum() / expected
    if oe == 0:
        return citl, Estimate(0.0, None, None, None, m_oe, "no events: no log-scale interval")
    se_log = influence_se((y - oe * p) / expected, idx) / oe
    if not np.isfinite(se_log):
        return citl, Estimate(float(oe), None, None, None, m_oe, f"fewer than 2 {_unit(idx)}")
    low, high = wald_interval(np.log(oe), se_log, level)
    return citl, Estimate(float(oe), float(np.exp(low)), float(np.exp(high)), float(se_log), m_oe)


def brier(y, p, *, clusters=None, level=0.95) -> Estimate:
    """Brier score ``mean((p - y)**2)`` with a Wald CI from its influence-function SE."""
    y, p, idx, n_cl = _inputs(y, p, clusters)
    method = (f"Brier score, {_level(level)} Wald CI, influence-function SE over "
              f"{_unit(idx, n_cl)}")
    if y.size == 0:
        return _undefined(method, "no rows")
    value, psi = brier_influence(y, p)
    se = influence_se(psi, idx)
    se = se if np.isfinite(se) else None
    return _wald(value, se, level, method, f"fewer than 2 {_unit(idx)}")


def _ece(y, p, bins: int, strategy: str) -> float:
    if y.size == 0:
        return float("nan")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    else:
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, bins + 1)))
    which = np.searchsorted(edges[1:-1], p, side="right")  # [e_k, e_k+1), the last closed
    return float(np.abs(np.bincount(which, weights=y - p)).sum() / y.size)


def _check_bins(bins, strategy) -> int:
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy must be 'uniform' or 'quantile'; got {strategy!r}.")
    return _count("bins", bins, 1)


def expected_calibration_error(y, p, *, bins=10, strategy="quantile") -> float:
    """ECE, ``sum_b (n_b / n) |mean(y_b) - mean(p_b)|`` over the non-empty bins.

    Parameters
    ----------
    bins : int
    strategy : {"quantile", "uniform"}
        "uniform": equal-width bins on [0, 1]; "quantile": edges
        ``np.quantile(p, linspace(0, 1, bins + 1))``, duplicate edges merged. Bins are
        ``[e_k, e_k+1)``, the last closed on the right. NaN when there are no rows.
    """
    bins = _check_bins(bins, strategy)
    y, p, _, _ = _inputs(y, p, None)
    return _ece(y, p, bins, strategy)


def _resamples(n, idx, n_clusters, n_boot, rng):
    """Row indices of ``n_boot`` bootstrap samples drawing patients (rows if idx is None)."""
    if idx is None:
        for _ in range(n_boot):
            yield rng.integers(0, n, n)
        return
    order = np.argsort(idx, kind="stable")
    sizes = np.bincount(idx, minlength=n_clusters)
    starts = np.cumsum(sizes) - sizes
    for _ in range(n_boot):
        lens = sizes[drawn := rng.integers(0, n_clusters, n_clusters)]
        yield order[np.repeat(starts[drawn] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())]


def _replicates(fn, y, p, idx, n_cl, n_boot, random_state) -> np.ndarray:
    draws = _resamples(y.size, idx, n_cl, n_boot, _as_generator(random_state))
    return np.array([fn(y[r], p[r]) for r in draws], dtype=np.float64)


def ece_interval(y, p, *, bins=10, strategy="quantile", clusters=None, n_boot=1000,
                 level=0.95, random_state=0) -> Estimate:
    """ECE with a percentile bootstrap interval over patients (rows without clusters).

    Quantile bin edges are re-derived in each replicate; ``se`` is the bootstrap SD. The
    ECE is biased upwards in small samples, and the interval does not correct for that.
    """
    bins, n_boot = _check_bins(bins, strategy), _count("n_boot", n_boot, 1)
    y, p, idx, n_cl = _inputs(y, p, clusters)
    _level(level)
    method = f"ECE, {bins} {strategy} bins, percentile bootstrap over {_unit(idx)}, B={n_boot}"
    value = _ece(y, p, bins, strategy)
    if n_cl < 2:
        return Estimate(value, None, None, None, method, f"fewer than 2 {_unit(idx)}")
    reps = _replicates(lambda a, b: _ece(a, b, bins, strategy), y, p, idx, n_cl, n_boot,
                       random_state)
    low, high = percentile_interval(reps, level)
    se = float(reps.std(ddof=1)) if n_boot > 1 else None
    return Estimate(value, float(low), float(high), se, method)


def _curve(method, y, p, grid):
    if np.ptp(p) == 0:
        return np.full(grid.size, y.mean())
    if method == "isotonic":
        # sklearn's IsotonicRegression(increasing=True, out_of_bounds="clip"), computed the way it
        # does (ties pooled with their counts as weights, linear interpolation between the
        # distinct scores, clipped beyond them) on scipy's solver: sklearn's per-fit overhead was
        # most of a 100k-row audit's bootstrap time.
        from scipy.optimize import isotonic_regression

        xs, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
        means = np.bincount(inverse, weights=y.astype(np.float64), minlength=xs.size) / counts
        fitted = isotonic_regression(means, weights=counts.astype(np.float64), increasing=True).x
        return np.interp(grid, xs, fitted)
    from statsmodels.nonparametric.smoothers_lowess import lowess

    k = min(max(int(2 / 3 * p.size + 1e-10), 2), p.size)  # statsmodels' neighbourhood size
    if np.unique(p, return_counts=True)[1].max() >= k:  # a neighbourhood of radius 0
        return np.full(grid.size, np.nan)
    fit = lowess(y, p, frac=2 / 3, it=0, delta=0.01 * np.ptp(p))
    xs, first = np.unique(fit[:, 0], return_index=True)
    return np.clip(np.interp(grid, xs, fit[first, 1]), 0.0, 1.0)


def reliability_curve(y, p, *, method="isotonic", grid=None, clusters=None, n_boot=200,
                      level=0.95, random_state=0) -> ReliabilityCurve:
    """Observed event rate as a smooth function of the predicted probability.

    Parameters
    ----------
    method : {"isotonic", "loess"}
        isotonic regression as sklearn's ``IsotonicRegression(increasing=True,
        out_of_bounds="clip")`` (computed with scipy's solver), or statsmodels
        ``lowess(frac=2/3, it=0, delta=0.01 * range(p))`` interpolated linearly on the grid
        and clipped to [0, 1] (undefined when one score value holds 2/3 of the rows).
    grid : array-like, optional
        Increasing probabilities; default 50 points from the 1st to the 99th percentile of p.
    n_boot : int
        Replicates of the bootstrap over patients giving the pointwise percentile band
        (``low``/``high`` NaN when 0).
    """
    if method not in ("isotonic", "loess"):
        raise ValueError(f"method must be 'isotonic' or 'loess'; got {method!r}.")
    n_boot = _count("n_boot", n_boot, 0)
    y, p, idx, n_cl = _inputs(y, p, clusters)
    text = (f"{method} reliability curve, pointwise {_level(level)} percentile band, "
            f"bootstrap over {_unit(idx)}, B={n_boot}")
    if grid is None:
        grid = np.unique(np.linspace(*np.quantile(p, [0.01, 0.99]), 50)) if p.size else p
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or not np.all((grid >= 0) & (grid <= 1)) or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must be a 1-D increasing array of probabilities in [0, 1].")
    nan = np.full(grid.size, np.nan)
    if grid.size == 0 or p.size == 0:
        return ReliabilityCurve(grid, nan, nan, nan, text, np.zeros(grid.size, int), "no rows")
    half = (grid[[1, -1]] - grid[[0, -2]]) / 2 if grid.size > 1 else np.zeros(2)
    inside = p[(p >= grid[0] - half[0]) & (p <= grid[-1] + half[1])]
    counts = np.bincount(np.searchsorted((grid[1:] + grid[:-1]) / 2, inside),
                         minlength=grid.size)
    curve = _curve(method, y, p, grid)
    reason = ("loess undefined: one score value holds 2/3 of the rows" if np.isnan(curve).any()
              else "n_boot=0: no band" if n_boot == 0
              else f"fewer than 2 {_unit(idx)}: no band" if n_cl < 2 else None)
    if reason:
        return ReliabilityCurve(grid, curve, nan, nan, text, counts, reason)
    reps = _replicates(lambda a, b: _curve(method, a, b, grid), y, p, idx, n_cl, n_boot,
                       random_state)
    low, high = (np.asarray(b) for b in percentile_interval(reps, level))
    reason = None if np.all(np.isfinite(low)) else "band NaN where under half the replicates fit"
    return ReliabilityCurve(grid, curve, low, high, text, counts, reason)


def _thresholds(thresholds) -> np.ndarray:
    t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if t.ndim != 1 or not np.all((t > 0) & (t < 1)):
        raise ValueError("thresholds must be a 1-D array of values in (0, 1).")
    return t


def _nb(y, p, t):
    if y.size == 0:
        return np.full(t.size, np.nan)
    pos, neg = np.sort(p[y == 1]), np.sort(p[y == 0])
    tp = pos.size - np.searchsorted(pos, t, side="left")  # treated when p >= t
    fp = neg.size - np.searchsorted(neg, t, side="left")
    return tp / y.size - fp / y.size * t / (1 - t)


def net_benefit(y, p, thresholds) -> np.ndarray:
    """Net benefit ``TP/n - FP/n * t/(1-t)`` at each threshold t in (0, 1), treating p >= t."""
    t = _thresholds(thresholds)
    y, p, _, _ = _inputs(y, p, None)
    return _nb(y, p, t)


def decision_curve(y, p, thresholds=None, *, clusters=None, n_boot=0, level=0.95,
                   random_state=0) -> dict:
    """Decision curve: net benefit of the model, of treating all and of treating none.

    Returns
    -------
    curve : dict of str to ndarray
        ``threshold`` (default 0.01, 0.02, ..., 0.50), ``model`` (:func:`net_benefit`),
        ``treat_all`` (``prev - (1 - prev) t/(1-t)``), ``treat_none`` (0) and, when
        ``n_boot > 0``, ``model_low``/``model_high``: a pointwise percentile band from a
        bootstrap over patients.
    """
    t = _thresholds(np.arange(1, 51) / 100 if thresholds is None else thresholds)
    n_boot = _count("n_boot", n_boot, 0)
    y, p, idx, n_cl = _inputs(y, p, clusters)
    _level(level)
    prev = y.mean() if y.size else np.nan
    out = {"threshold": t, "model": _nb(y, p, t),
           "treat_all": prev - (1 - prev) * t / (1 - t), "treat_none": np.zeros(t.size)}
    if n_boot:
        if n_cl < 2:
            out["model_low"] = out["model_high"] = np.full(t.size, np.nan)
            return out
        reps = _replicates(lambda a, b: _nb(a, b, t), y, p, idx, n_cl, n_boot, random_state)
        low, high = percentile_interval(reps, level)
        out["model_low"], out["model_high"] = np.asarray(low), np.asarray(high)
    return out
