"""Data drift between a reference sample and a current sample: per feature and multivariate.

Per feature (:func:`feature_drift`), missing values are set aside and reported as a share:

- numeric: two-sample Kolmogorov-Smirnov test (statistic and p-value equal to
  ``scipy.stats.ks_2samp``), Wasserstein-1 distance (``scipy.stats.wasserstein_distance``),
  the normalised Wasserstein distance (the effect size), and PSI and Jensen-Shannon distance on
  ``bins`` reference-quantile bins;
- categorical: chi-square test of homogeneity of the 2 x k table of counts (as
  ``scipy.stats.chi2_contingency(correction=False)``), Jensen-Shannon distance (the effect
  size) and PSI over the categories seen in either sample;
- both: the missing share in each sample, their difference and a pooled two-proportion z test.

Effect sizes decide the status, not p-values: at a million rows every p-value is tiny, and at
fifty rows a large effect may be noise. A feature is "moderate" or "large" when its effect
passes the :class:`DriftThresholds` and its test, adjusted across features
(``statsmodels.stats.multitest.multipletests``), rejects at ``alpha``; "inconclusive" when the
effect passes a threshold but the test does not reject; else "none".

Prediction drift is the numeric case applied to the model's scores: :func:`score_drift`.

Multivariate drift (:func:`domain_classifier`): a classifier is cross-validated to tell current
rows from reference rows; its out-of-fold AUROC is 0.5 without drift.

References
----------
Rabanser S, Günnemann S, Lipton Z (2019) Failing loudly: an empirical study of methods for
detecting dataset shift. NeurIPS. Yurdakul B (2018) Statistical properties of population
stability index. Lin J (1991) IEEE Trans Inf Theory 37:145 (Jensen-Shannon divergence).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from .bootstrap import _as_generator
from .clusters import cluster_index
from .influence import auroc_influence, influence_se, wald_interval

__all__ = ["PSI_EPSILON", "DomainClassifierDrift", "DriftThresholds", "FeatureDrift",
           "domain_classifier", "feature_drift", "psi", "score_drift"]

#: Proportions below this are set to it in PSI, so that empty bins give a finite value.
PSI_EPSILON = 1e-4
_STATUS_ORDER = ("none", "inconclusive", "moderate", "large")
_CORRECTIONS = {"holm": "holm", "bh": "fdr_bh"}
# scipy's ks_2samp computes the exact p-value up to this sample size and the asymptotic one
# above it; below it scipy itself is called (cheap there), above it the same formula is used.
_KS_EXACT_MAX_N = 10_000
_N_LABELS = 10  # new/lost categories listed per feature
# HistGradientBoosting's native categorical support needs codes below max_bins (255).
_HGB_MAX_CATEGORIES = 254


@dataclass(frozen=True)
class DriftThresholds:
    """Effect sizes at which drift is called "moderate" and "large" (each pair moderate <= large).

    Attributes
    ----------
    numeric_moderate, numeric_large : float, default 0.1 and 0.25
        Normalised Wasserstein distance. A location shift of d reference standard deviations
        gives d, so the defaults are shifts of 0.1 and 0.25 SD (0.1 is Evidently's default).
    categorical_moderate, categorical_large : float, default 0.1 and 0.2
        Jensen-Shannon distance, base 2, in [0, 1]. For small shifts JS distance ~
        sqrt(PSI / (8 ln 2)), so these are about PSI 0.055 and 0.22 (the usual PSI rule of
        thumb calls 0.1 moderate and 0.25 large).
    missing_moderate, missing_large : float, default 0.05 and 0.15
        Absolute change in the share of missing values (current minus reference).
    domain_auroc_moderate, domain_auroc_large : float, default 0.6 and 0.75
        Out-of-fold AUROC of :func:`domain_classifier` (0.5: no multivariate drift).
    alpha : float, default 0.05
        Level of the adjusted tests that must reject before an effect counts.
    """

    numeric_moderate: float = 0.1
    numeric_large: float = 0.25
    categorical_moderate: float = 0.1
    categorical_large: float = 0.2
    missing_moderate: float = 0.05
    missing_large: float = 0.15
    domain_auroc_moderate: float = 0.6
    domain_auroc_large: float = 0.75
    alpha: float = 0.05

    def __post_init__(self):
        for kind in ("numeric", "categorical", "missing", "domain_auroc"):
            lo, hi = getattr(self, f"{kind}_moderate"), getattr(self, f"{kind}_large")
            if not 0 <= lo <= hi:
                raise ValueError(f"DriftThresholds needs 0 <= {kind}_moderate <= {kind}_large; "
                                 f"got {lo!r} and {hi!r}.")
        if not 0 < self.alpha < 1:
            raise ValueError(f"DriftThresholds.alpha must be in (0, 1); got {self.alpha!r}.")


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature; shares and distances are over non-missing values unless stated.

    Attributes
    ----------
    feature : str
    kind : {"numeric", "categorical"}
    n_reference, n_current : int
        Non-missing values in each sample.
    effect, effect_name : float, str
        The effect size behind ``status``: "wasserstein_normalised" (numeric) or
        "jensen_shannon" (categorical).
    status : {"none", "inconclusive", "moderate", "large"}
        The worse of the distribution's and the missing share's status (module docstring).
    reason : str
        Plain-language account of the status.
    test, statistic, df : str, float, int or None
        "ks_2samp" (KS D, df None) or "chi2_homogeneity" (chi-square and its df).
    p_value, p_adjusted : float
        The test's p-value, and adjusted across the features of one call.
    jensen_shannon, psi : float
        Jensen-Shannon distance (base 2) and PSI on the same ``n_bins`` bins or categories.
    n_bins : int
        Numeric: bins after merging duplicate quantiles; categorical: categories seen.
    wasserstein, wasserstein_normalised, scale : float or None
        Numeric only: Wasserstein-1 distance, divided by ``scale`` (see :func:`feature_drift`).
    missing_reference, missing_current, missing_difference : float
        Missing share of all rows in each sample, and current minus reference.
    missing_p_value, missing_p_adjusted : float
        Two-proportion z test of equal missing shares (1 when no value is missing), raw and
        adjusted across features.
    new_categories, lost_categories : tuple of str
        Categorical only: categories seen only in the current (new) or only in the reference
        (lost) sample, at most 10 each, most frequent first.
    method : str
        How the numbers were computed.
    """

    feature: str
    kind: str
    n_reference: int
    n_current: int
    effect: float
    effect_name: str
    status: str
    reason: str
    test: str
    statistic: float
    df: int | None
    p_value: float
    p_adjusted: float
    jensen_shannon: float
    psi: float
    n_bins: int
    wasserstein: float | None
    wasserstein_normalised: float | None
    scale: float | None
    missing_reference: float
    missing_current: float
    missing_difference: float
    missing_p_value: float
    missing_p_adjusted: float
    new_categories: tuple[str, ...] = ()
    lost_categories: tuple[str, ...] = ()
    method: str = ""


@dataclass(frozen=True)
class DomainClassifierDrift:
    """Result of :func:`domain_classifier`.

    Attributes
    ----------
    auroc, low, high, level : float
        Mean held-out-fold AUROC of telling current (positive) from reference rows, and
        its interval at ``level`` (see :func:`domain_classifier`).
    status, reason : str
        As for :class:`FeatureDrift`, from the ``domain_auroc_*`` thresholds; the "test"
        rejects when ``low > 0.5``.
    n_reference, n_current : int
        Rows used (after subsampling to ``max_rows``).
    folds : int
    top_features : tuple of (str, float)
        Up to ``n_top`` features with the largest mean permutation importance (drop in
        held-out AUROC), largest first; empty when ``n_repeats=0``.
    method : str
    """

    auroc: float
    low: float
    high: float
    level: float
    status: str
    reason: str
    n_reference: int
    n_current: int
    folds: int
    top_features: tuple[tuple[str, float], ...] = field(default=())
    method: str = ""


# Inputs ---------------------------------------------------------------------------------------

def _kind(s: pd.Series, forced: bool) -> str | None:
    dt = s.dtype
    if forced or pd.api.types.is_bool_dtype(dt) or isinstance(dt, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dt):
        return "numeric"
    if pd.api.types.is_object_dtype(dt) or pd.api.types.is_string_dtype(dt):
        return "categorical"
    return None  # datetimes, intervals, ...: no defined comparison here


def _check_frames(reference, current, features, categorical) -> tuple[list[str], set[str]]:
    for name, df in (("reference", reference), ("current", current)):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame; got {type(df).__name__}.")
    if features is None:
        features = list(reference.columns)
        only_cur = [c for c in current.columns if c not in reference.columns]
        if only_cur:
            raise ValueError(
                f"Feature(s) {only_cur} are in the current sample but not in the reference "
                f"(reference columns: {list(reference.columns)}). Add them to the reference, "
                "drop them from the current sample, or pass features=[...].")
    features = [str(f) if not isinstance(f, str) else f for f in features]
    if len(set(features)) != len(features):
        raise ValueError(f"features must not repeat a name; got {features}.")
    for f in features:
        missing = [n for n, df in (("reference", reference), ("current", current))
                   if f not in df.columns]
        if missing:
            other = "current" if missing == ["reference"] else "reference"
            where = " and ".join(missing)
            raise ValueError(
                f"Feature {f!r} is missing from the {where} sample"
                + (f" but present in the {other} sample" if len(missing) == 1 else "")
                + ". Compare only features present in both (pass features=[...]) or add the "
                "column.")
    forced = set(categorical or ())
    unknown = forced - set(features)
    if unknown:
        raise ValueError(f"categorical names {sorted(unknown)}, which are not among the "
                         f"features compared ({features}).")
    return features, forced


def _check_column(f, ref: pd.Series, cur: pd.Series, forced: bool) -> str:
    for name, s, n_total in (("reference", ref, ref.size), ("current", cur, cur.size)):
        if n_total == 0 or not s.notna().any():
            raise ValueError(
                f"Feature {f!r} has no non-missing values in the {name} sample "
                f"({n_total} rows, dtype {s.dtype}). Drop it from features or fix how it "
                "was loaded.")
    k_ref, k_cur = _kind(ref, forced), _kind(cur, forced)
    for name, s, k in (("reference", ref, k_ref), ("current", cur, k_cur)):
        if k is None:
            raise ValueError(
                f"Feature {f!r} has dtype {s.dtype} in the {name} sample, which is neither "
                "numeric nor categorical. Convert it (e.g. a date to days since an origin) "
                "or drop it from features.")
    if k_ref != k_cur:
        raise ValueError(
            f"Feature {f!r} is {k_ref} (dtype {ref.dtype}) in the reference sample but "
            f"{k_cur} (dtype {cur.dtype}) in the current sample. Give it one type in both, "
            f"e.g. pd.to_numeric(df[{f!r}], errors='coerce') where text crept into a numeric "
            f"column, or pass categorical=[{f!r}] to compare it as categories.")
    return k_ref


def _finite(f, name, s: pd.Series) -> np.ndarray:
    x = s.to_numpy(dtype=np.float64, na_value=np.nan)
    x = x[~np.isnan(x)]
    if not np.all(np.isfinite(x)):
        raise ValueError(f"Feature {f!r} has infinite values in the {name} sample. Replace "
                         "them with NaN (missing) or finite values.")
    return x


# Numeric --------------------------------------------------------------------------------------

def _ks_wasserstein(r: np.ndarray, c: np.ndarray) -> tuple[float, float, float]:
    """KS D, its p-value and Wasserstein-1 from sorted samples, as scipy computes them."""
    n1, n2 = r.size, c.size
    both = np.concatenate([r, c])
    order = np.argsort(both, kind="stable")  # two sorted runs: a linear-time merge
    merged = both[order]
    # Right-continuous ECDFs on the merged support, as scipy's ks_2samp computes them with
    # searchsorted(side="right") (three times slower here): exact at the last of equal values.
    c1 = np.cumsum(order < n1)
    diff = c1 / n1 - (np.arange(1, n1 + n2 + 1) - c1) / n2
    wass = float(np.dot(np.abs(diff[:-1]), np.diff(merged)))
    if max(n1, n2) <= _KS_EXACT_MAX_N:
        with warnings.catch_warnings():
            # scipy warns when its exact p-value fails and it falls back to the asymptotic
            # one; the value returned is still scipy's, and the method text says "scipy".
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.ks_2samp(r, c)
        return float(res.statistic), float(res.pvalue), wass
    at = diff[np.append(merged[1:] != merged[:-1], True)]
    d = float(max(at.max(), np.clip(-at.min(), 0, 1)))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    p = float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return d, p, wass


def _quantile_edges(r_sorted: np.ndarray, bins: int) -> np.ndarray:
    return np.unique(np.quantile(r_sorted, np.linspace(0, 1, bins + 1)[1:-1]))


def _bin_counts(x_sorted: np.ndarray, edges: np.ndarray) -> np.ndarray:
    below = np.searchsorted(x_sorted, edges, side="left")  # values < each edge
    return np.diff(np.concatenate([[0], below, [x_sorted.size]]))


def _scale(r: np.ndarray, c: np.ndarray) -> tuple[float, str]:
    sd = float(np.std(r))
    if sd > 0:
        return sd, "reference SD"
    # A constant reference (SD 0; its IQR is then 0 too) is measured in the pooled SD.
    return float(np.std(np.concatenate([r, c]))), "pooled SD (the reference is constant)"


# Categorical ----------------------------------------------------------------------------------

def _codes(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if (isinstance(ref.dtype, pd.CategoricalDtype) and ref.dtype == cur.dtype):
        cats = np.asarray(ref.cat.categories, dtype=object)
        return ref.cat.codes.to_numpy(), cur.cat.codes.to_numpy(), cats
    both = pd.concat([ref, cur], ignore_index=True)
    codes, uniques = pd.factorize(both, use_na_sentinel=True)
    return codes[:ref.size], codes[ref.size:], np.asarray(uniques, dtype=object)


def _chi2(table: np.ndarray) -> tuple[float, int, float]:
    """Pearson chi-square of a 2 x k table with no empty column (scipy's formula)."""
    dof = table.shape[1] - 1
    if dof == 0:
        return 0.0, 0, 1.0
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return stat, dof, float(stats.chi2.sf(stat, dof))


def _labels(cats, counts, mask) -> tuple[str, ...]:
    idx = np.flatnonzero(mask)
    idx = idx[np.argsort(-counts[idx], kind="stable")][:_N_LABELS]
    return tuple(str(cats[i]) for i in idx)


# Shared ---------------------------------------------------------------------------------------

def psi(reference_counts, current_counts, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two histograms on the same bins.

    ``PSI = sum_i (c_i - r_i) * ln(c_i / r_i)`` with ``r_i``, ``c_i`` the proportions of the
    reference and current counts in bin i; proportions below ``epsilon`` (empty bins) are set
    to ``epsilon`` without renormalising, as Evidently does.
    """
    r = np.asarray(reference_counts, dtype=np.float64)
    c = np.asarray(current_counts, dtype=np.float64)
    if r.shape != c.shape or r.ndim != 1 or r.sum() <= 0 or c.sum() <= 0 or (r < 0).any() \
            or (c < 0).any():
        raise ValueError("psi needs two 1-D non-negative count arrays of one length, each "
                         "with a positive total.")
    r = np.maximum(r / r.sum(), epsilon)
    c = np.maximum(c / c.sum(), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def _missing_test(k1, n1, k2, n2) -> float:
    """Two-sided pooled two-proportion z test (= 2x2 chi-square without correction)."""
    pooled = (k1 + k2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var == 0:
        return 1.0
    return float(2 * stats.norm.sf(abs(k2 / n2 - k1 / n1) / math.sqrt(var)))


def _adjust(p: list[float], correction: str) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    return multipletests(np.asarray(p, dtype=np.float64), method=_CORRECTIONS[correction])[1]


def _tier(effect, p_adj, moderate, large, alpha) -> str:
    if not effect >= moderate:
        return "none"
    if not p_adj < alpha:
        return "inconclusive"
    return "large" if effect >= large else "moderate"


def _status(name, effect, p_adj, lo, hi, miss_diff, miss_p, th, correction):
    eff = _tier(effect, p_adj, lo, hi, th.alpha)
    miss = _tier(abs(miss_diff), miss_p, th.missing_moderate, th.missing_large, th.alpha)
    status = max(eff, miss, key=_STATUS_ORDER.index)
    text = f"{name} {effect:.3g} ({eff}; thresholds {lo:g}/{hi:g}, {correction} p {p_adj:.2g})"
    text += (f"; missing share change {miss_diff:+.3g} ({miss}; thresholds "
             f"{th.missing_moderate:g}/{th.missing_large:g}, {correction} p {miss_p:.2g})")
    return status, text


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame,
                  features: list[str] | None = None, *, categorical: list[str] | None = None,
                  bins: int = 10, correction: str = "holm",
                  thresholds: DriftThresholds | None = None) -> list[FeatureDrift]:
    """Drift of each feature between a reference and a current sample.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        One row per case; the features are columns of both.
    features : list of str, optional
        Columns to compare (default: all columns of ``reference``, which then must be all
        the columns of ``current``).
    categorical : list of str, optional
        Features to compare as categories although numeric (e.g. integer-coded sites).
        Otherwise bool, object, string and categorical dtypes are categorical and the
        other numeric dtypes numeric.
    bins : int, default 10
        Numeric PSI and Jensen-Shannon distance use bins cut at the reference quantiles
        ``np.quantile(ref, k / bins)``, k = 1..bins-1 (numpy's linear interpolation),
        duplicate edges merged; bins are ``[e_(j-1), e_j)`` with the outer ones open to
        -inf and +inf, so current values beyond the reference range count in the outer bins.
    correction : {"holm", "bh"}, default "holm"
        Adjustment of the p-values across features (``multipletests`` "holm" or "fdr_bh").
        The distribution tests are one family and the missing-share tests another.
    thresholds : DriftThresholds, optional
        Default ``DriftThresholds()``.

    Returns
    -------
    list of FeatureDrift
        In the order of ``features``.

    Notes
    -----
    Numeric effect: the normalised Wasserstein distance ``W1(ref, cur) / s``, with ``s`` the
    reference standard deviation (ddof 0) or, when the reference is constant, the SD of both
    samples pooled (0 only when both are the same constant, and W1 is then 0 too; an
    IQR / 1.349 fallback would not help, as SD 0 implies IQR 0). Unlike the
    KS statistic it grows with the size of a shift rather than saturating, and in SD units
    it reads like a standardised mean difference.

    Categorical effect: the Jensen-Shannon distance, base 2 (``scipy.spatial.distance.
    jensenshannon``), of the two category distributions. It is bounded in [0, 1], symmetric,
    and finite when a category is absent from one sample, so a new category counts without
    an arbitrary epsilon (PSI, also reported, needs one: :data:`PSI_EPSILON`).

    Tests: numeric, ``scipy.stats.ks_2samp`` (exact p up to 10,000 values per sample, Smirnov's
    asymptotic ``kstwo`` law above, as scipy does); categorical, Pearson's chi-square on the
    2 x k table of the categories seen in either sample (df k - 1; p = 1 when k = 1).

    Raises
    ------
    ValueError
        Naming the feature: present in one sample only, no non-missing values in a sample,
        numeric in one sample and categorical in the other, infinite values, or an
        unsupported dtype; or an invalid parameter.
    TypeError
        When ``reference`` or ``current`` is not a DataFrame, or ``thresholds`` not a
        DriftThresholds.
    """
    th = DriftThresholds() if thresholds is None else thresholds
    if not isinstance(th, DriftThresholds):
        raise TypeError(f"thresholds must be a DriftThresholds; got {type(th).__name__}.")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2; got {bins!r}.")
    if correction not in _CORRECTIONS:
        raise ValueError(f"correction must be 'holm' or 'bh'; got {correction!r}.")
    features, forced = _check_frames(reference, current, features, categorical)
    kinds = [_check_column(f, reference[f], current[f], f in forced) for f in features]
    rows = [_one(f, k, reference[f], current[f], int(bins)) for f, k in zip(features, kinds)]
    p_adj = _adjust([r["p_value"] for r in rows], correction)
    miss_adj = _adjust([r["missing_p_value"] for r in rows], correction)
    out = []
    for r, pa, ma in zip(rows, p_adj, miss_adj):
        lo, hi = ((th.numeric_moderate, th.numeric_large) if r["kind"] == "numeric"
                  else (th.categorical_moderate, th.categorical_large))
        status, reason = _status(r["effect_name"], r["effect"], pa, lo, hi,
                                 r["missing_difference"], ma, th, correction)
        r["method"] += f"; p-values {correction}-adjusted over {len(rows)} features"
        out.append(FeatureDrift(status=status, reason=reason, p_adjusted=float(pa),
                                missing_p_adjusted=float(ma), **r))
    return out


def _one(f, kind, ref: pd.Series, cur: pd.Series, bins: int) -> dict:
    n_ref_rows, n_cur_rows = ref.size, cur.size
    if kind == "numeric":
        r = np.sort(_finite(f, "reference", ref))
        c = np.sort(_finite(f, "current", cur))
        d, p, wass = _ks_wasserstein(r, c)
        scale, scale_text = _scale(r, c)
        effect = wass / scale if scale > 0 else 0.0
        edges = _quantile_edges(r, bins)
        hr, hc = _bin_counts(r, edges), _bin_counts(c, edges)
        res = {"effect": effect, "effect_name": "wasserstein_normalised", "test": "ks_2samp",
               "statistic": d, "df": None, "p_value": p, "wasserstein": wass,
               "wasserstein_normalised": effect, "scale": scale,
               "method": (f"KS two-sample test (scipy ks_2samp); Wasserstein-1 / "
                          f"{scale_text}; PSI and JS on {edges.size + 1} reference-quantile "
                          "bins")}
        n_r, n_c = r.size, c.size
    else:
        cr, cc, cats = _codes(ref, cur)
        k = cats.size
        hr = np.bincount(cr[cr >= 0], minlength=k)
        hc = np.bincount(cc[cc >= 0], minlength=k)
        seen = (hr + hc) > 0  # categories of a pandas Categorical that neither sample holds
        cats, hr, hc = cats[seen], hr[seen], hc[seen]
        stat, dof, p = _chi2(np.vstack([hr, hc]).astype(np.float64))
        res = {"effect_name": "jensen_shannon", "test": "chi2_homogeneity", "statistic": stat,
               "df": dof, "p_value": p, "wasserstein": None, "wasserstein_normalised": None,
               "scale": None, "new_categories": _labels(cats, hc, hr == 0),
               "lost_categories": _labels(cats, hr, hc == 0),
               "method": (f"chi-square test of homogeneity, 2 x {hr.size} table, no "
                          f"continuity correction; JS and PSI over {hr.size} categories")}
        n_r, n_c = int(hr.sum()), int(hc.sum())
    js = float(jensenshannon(hr, hc, base=2))
    m_ref, m_cur = n_ref_rows - n_r, n_cur_rows - n_c
    # Categorical effect: the JS distance; the numeric res sets its own "effect".
    return {"effect": js, **res, "feature": f, "kind": kind, "n_reference": int(n_r),
            "n_current": int(n_c), "jensen_shannon": js, "psi": psi(hr, hc),
            "n_bins": int(hr.size), "missing_reference": m_ref / n_ref_rows,
            "missing_current": m_cur / n_cur_rows,
            "missing_difference": m_cur / n_cur_rows - m_ref / n_ref_rows,
            "missing_p_value": _missing_test(m_ref, n_ref_rows, m_cur, n_cur_rows)}


def score_drift(reference_scores, current_scores, *, bins: int = 10,
                thresholds: DriftThresholds | None = None, name: str = "score") -> FeatureDrift:
    """Prediction drift: :func:`feature_drift` of the model's scores as one numeric feature.

    ``reference_scores`` and ``current_scores`` are 1-D arrays of scores (NaN = missing);
    with one feature the adjusted p-values equal the raw ones.
    """
    frames = []
    for label, s in (("reference_scores", reference_scores), ("current_scores", current_scores)):
        arr = np.asarray(s, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"{label} must be 1-D; got shape {arr.shape}.")
        frames.append(pd.DataFrame({name: arr}))
    return feature_drift(frames[0], frames[1], [name], bins=bins, thresholds=thresholds)[0]


# Multivariate: domain classifier ---------------------------------------------------------------

def _subsample(n, max_rows, rng) -> np.ndarray:
    return np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))


def _design(reference_X, current_X, rng, max_rows):
    """Rows drawn, design matrix (float, NaN missing), names and categorical mask."""
    if isinstance(reference_X, pd.DataFrame) != isinstance(current_X, pd.DataFrame):
        raise ValueError("reference_X and current_X must both be DataFrames or both arrays.")
    if isinstance(reference_X, pd.DataFrame):
        cols = [str(c) for c in reference_X.columns]
        if set(cols) != {str(c) for c in current_X.columns} or len(cols) != current_X.shape[1]:
            raise ValueError(f"reference_X and current_X must have the same columns; got "
                             f"{cols} and {[str(c) for c in current_X.columns]}.")
        if not cols:
            raise ValueError("reference_X has no columns.")
        i_r = _subsample(len(reference_X), max_rows, rng)
        i_c = _subsample(len(current_X), max_rows, rng)
        ref = reference_X.iloc[i_r].set_axis(cols, axis=1)
        cur = current_X.iloc[i_c].set_axis([str(c) for c in current_X.columns], axis=1)[cols]
        blocks, mask = [], []
        for c in cols:
            kind = _check_column(c, ref[c], cur[c], False)
            if kind == "numeric":
                x = np.concatenate([ref[c].to_numpy(np.float64, na_value=np.nan),
                                    cur[c].to_numpy(np.float64, na_value=np.nan)])
                if np.isinf(x).any():
                    raise ValueError(f"Feature {c!r} has infinite values; replace them with "
                                     "NaN (missing) or finite values.")
                mask.append(False)
            else:
                cr, cc, cats = _codes(ref[c], cur[c])
                x = np.concatenate([cr, cc]).astype(np.float64)
                x[x < 0] = np.nan
                # Too many categories for native support: the codes are used as numbers.
                mask.append(cats.size <= _HGB_MAX_CATEGORIES)
            blocks.append(x)
        return i_r, i_c, np.column_stack(blocks), cols, np.array(mask)
    r, c = np.asarray(reference_X), np.asarray(current_X)
    if r.ndim != 2 or c.ndim != 2 or r.shape[1] != c.shape[1] or r.shape[1] == 0:
        raise ValueError(f"reference_X and current_X must be 2-D with the same number of "
                         f"columns; got shapes {r.shape} and {c.shape}.")
    if r.dtype.kind not in "biuf" or c.dtype.kind not in "biuf":
        raise ValueError("array inputs must be numeric; pass DataFrames for categories.")
    i_r, i_c = _subsample(len(r), max_rows, rng), _subsample(len(c), max_rows, rng)
    X = np.concatenate([r[i_r], c[i_c]]).astype(np.float64)
    if np.isinf(X).any():
        raise ValueError("reference_X/current_X have infinite values; replace them with NaN.")
    return i_r, i_c, X, [f"x{j}" for j in range(X.shape[1])], None


def _group_codes(groups, i_r, i_c, n_r, n_c):
    if not (isinstance(groups, (tuple, list)) and len(groups) == 2):
        raise ValueError("groups must be a pair (reference_groups, current_groups) of arrays "
                         "with one patient id per row.")
    g_r, g_c = (np.asarray(g) for g in groups)
    if g_r.shape != (n_r,) or g_c.shape != (n_c,):
        raise ValueError(f"groups must have one id per row: shapes ({n_r},) and ({n_c},); "
                         f"got {g_r.shape} and {g_c.shape}.")
    both = pd.concat([pd.Series(g_r[i_r]).astype(object), pd.Series(g_c[i_c]).astype(object)],
                     ignore_index=True)
    return cluster_index(pd.factorize(both)[0], (both.size,))


def domain_classifier(reference_X, current_X, *, folds: int = 2, groups=None,
                      level: float = 0.95, max_rows: int = 20_000,
                      n_top: int = 10, n_repeats: int = 3,
                      thresholds: DriftThresholds | None = None,
                      random_state=0) -> DomainClassifierDrift:
    """Multivariate drift: how well a classifier tells current rows from reference rows.

    A ``HistGradientBoostingClassifier`` (scikit-learn defaults; categories with native
    categorical support) predicts "current" (1) against "reference" (0). Its out-of-fold
    scores from ``folds``-fold cross-validation give the AUROC: about 0.5 when the two
    samples come from one distribution, towards 1 as they separate.

    Parameters
    ----------
    reference_X, current_X : DataFrame or 2-D array
        The same columns in both. Arrays (e.g. image embeddings) are numeric; DataFrame
        columns are typed as in :func:`feature_drift` (categories coded jointly; more than
        254 categories are used as ordinal codes). NaN is missing (the model handles it).
    folds : int, default 2
        ``StratifiedKFold`` (shuffled), or ``StratifiedGroupKFold`` with ``groups``, so that
        a patient's rows are never split between training and held-out folds.
    groups : pair of arrays, optional
        ``(reference_groups, current_groups)``: the patient id of each row.
    The interval: each fold's model is scored on its own held-out fold, where, the model
    being fixed, DeLong's standard error (cluster-robust by patient with ``groups``) is valid
    for that model's AUROC; under "no drift" every model's AUROC is exactly 0.5. The folds'
    AUROCs are averaged, and the standard error of the average is bounded by the average of
    their standard errors, which holds whatever their correlation (they share training
    rows), so the logit-scale interval covers without assuming independence. Pooling the
    out-of-fold scores and bootstrapping them with the models held fixed does not: in 100
    simulations without drift (300 + 300 rows, 6 normal features) that interval covered 0.5
    in 84%; this interval covered it in 98% (40 + 40 rows) and 94% (300 + 300; 150
    replicates each, tests/unit/stats/test_drift.py). The bound costs width with many folds (about sqrt(folds) times the pooled
    error), hence two folds by default.
    max_rows : int, default 20000
        Each sample is subsampled (without replacement) to at most this many rows first;
        the AUROC of a domain classifier is stable well below it and fitting cost grows
        with it.
    n_top, n_repeats : int, default 10 and 3
        Importance is ``sklearn.inspection.permutation_importance`` (scoring "roc_auc",
        ``n_repeats`` shuffles) of each fold's model on its held-out fold, averaged over
        folds: the drop in held-out AUROC when a column is shuffled. It costs
        columns x n_repeats x folds predictions; ``n_repeats=0`` skips it.
    thresholds : DriftThresholds, optional
        ``domain_auroc_moderate`` / ``domain_auroc_large`` and a "test" that rejects when
        the interval's lower bound exceeds 0.5.
    random_state : int, Generator or None, default 0
        Seeds the subsampling, the folds, the model, the permutations and the bootstrap.

    Returns
    -------
    DomainClassifierDrift
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    th = DriftThresholds() if thresholds is None else thresholds
    for name, value, minimum in (("folds", folds, 2),
                                 ("max_rows", max_rows, 2), ("n_top", n_top, 0),
                                 ("n_repeats", n_repeats, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}.")
    rng = _as_generator(random_state)
    i_r, i_c, X, names, mask = _design(reference_X, current_X, rng, max_rows)
    y = np.r_[np.zeros(i_r.size), np.ones(i_c.size)].astype(np.int64)
    if min(i_r.size, i_c.size) < folds:
        raise ValueError(f"domain_classifier needs at least folds={folds} rows in each sample; "
                         f"got {i_r.size} reference and {i_c.size} current rows.")
    seed = int(rng.integers(2**31 - 1))
    if groups is None:
        idx, n_cl = None, y.size
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)
    else:
        idx, n_cl = _group_codes(groups, i_r, i_c, len(reference_X), len(current_X))
        if n_cl < folds:
            raise ValueError(f"groups hold {n_cl} patients, fewer than folds={folds}.")
        splits = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(X, y, idx)
    oof = np.empty(y.size)
    importance = np.zeros(X.shape[1])
    fold_auc, fold_se = [], []
    for train, test in splits:
        if np.unique(y[train]).size < 2 or np.unique(y[test]).size < 2:
            raise ValueError("a fold holds rows of one sample only; use fewer folds or more "
                             "patients per sample.")
        model = HistGradientBoostingClassifier(
            categorical_features=mask if mask is not None and mask.any() else None,
            random_state=seed).fit(X[train], y[train])
        oof[test] = model.predict_proba(X[test])[:, 1]
        auc_k, psi_k = auroc_influence(y[test], oof[test])
        fold_auc.append(auc_k)
        fold_se.append(influence_se(psi_k, None if idx is None else idx[test]))
        if n_repeats:
            importance += permutation_importance(
                model, X[test], y[test], scoring="roc_auc", n_repeats=n_repeats,
                random_state=seed).importances_mean / folds
    auroc = float(np.mean(fold_auc))
    se = float(np.mean(fold_se))
    if 0 < auroc < 1:
        low, high = (float(v) for v in wald_interval(auroc, se, level=level, transform="logit"))
    else:  # every fold separated perfectly (or inverted): no logit-scale interval
        low, high = (float(v) for v in np.clip(wald_interval(auroc, se, level=level), 0, 1))
    # An interval above 0.5 plays the part of the rejected test of the per-feature statuses.
    status = ("none" if not auroc >= th.domain_auroc_moderate
              else "inconclusive" if not low > 0.5
              else "large" if auroc >= th.domain_auroc_large else "moderate")
    reason = (f"out-of-fold AUROC {auroc:.3f} ({100 * level:g}% CI {low:.3f}-{high:.3f}); "
              f"{status} (thresholds {th.domain_auroc_moderate:g}/{th.domain_auroc_large:g})")
    order = np.argsort(-importance, kind="stable")[:n_top] if n_repeats else []
    top = tuple((names[j], float(importance[j])) for j in order)
    unit = "rows" if idx is None else f"{n_cl} patients"
    method = (f"HistGradientBoostingClassifier, {folds}-fold "
              f"{'StratifiedKFold' if idx is None else 'StratifiedGroupKFold'}: mean of the held-out folds' "
              f"AUROCs; logit-scale interval from each fold's DeLong standard error (clusters: {unit}), "
              "their mean bounding the error of the mean whatever the folds' correlation; permutation "
              f"importance (roc_auc, {n_repeats} repeats) on held-out folds")
    return DomainClassifierDrift(auroc, low, high, level, status, reason, int(i_r.size),
                                 int(i_c.size), folds, top, method)
