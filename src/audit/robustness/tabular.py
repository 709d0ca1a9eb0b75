"""Named perturbations of a table of model features at five severities, seeded.

Each perturbation takes a pandas DataFrame of features (numeric and categorical columns) and
returns a perturbed copy; the input is not modified.

- ``gaussian_noise``: numeric features plus Gaussian noise of 0.05 to 0.5 times the
  feature's spread (measurement error), kept within the column's observed minimum and
  maximum (a noisy age or turnaround time is never negative).
- ``missing``: 5% to 50% of the rows of every feature set to missing: NaN in numeric
  columns, None (or the dtype's own missing marker) in the others. Models that cannot take
  missing values will fail on these rows; the robustness plugin reports that failure as the
  finding, not as an error of the audit.
- ``unit_shift``: numeric features multiplied by 1.01 to 1.5 (a unit or calibration error
  at a new site: a lab assay that reads high, pounds read as kilograms would be 2.2).
- ``rounding``: numeric features rounded to a step of 0.05 to 1 times their spread (a site
  that records coarser values).

The spread of a feature is its interquartile range / 1.349 (equal to the standard deviation
for a normal distribution but robust to outliers), or its standard deviation where the IQR
is 0 (a mostly-constant or binary column), measured on the frame being perturbed; a
constant column is left as it is by the three numeric perturbations.

Numeric means a numeric dtype other than boolean; booleans, categoricals and strings are
left untouched except by ``missing``. A numeric column that is changed comes back as float:
integer columns become ``float64`` (nullable ``Int64`` becomes ``Float64``), since noise,
scaling and rounding to a fractional step, and NaN, do not fit an integer; float columns
keep their dtype.

Seeding: every column gets its own generator from ``(seed, perturbation name, column
name)``, so a column's perturbation does not depend on which other columns are selected.
The severity is not in the seed (common random numbers): the noise of one column at
severity 5 is ten times its noise at severity 1, and the rows missing at 5% are among those
missing at 50%. The mean absolute change therefore grows with the severity. Rows are drawn
in frame order: reordering the rows changes which row gets which draw.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import ConfigError, InputError

__all__ = ["TABULAR_PERTURBATIONS", "TabularPerturbation", "get_tabular_perturbations"]

_SEVERITY_LEVELS = (1, 2, 3, 4, 5)
# The IQR of a normal distribution is 1.349 standard deviations (exactly 2 z_0.75, the
# constant scipy.stats.iqr(scale="normal") divides by).
_IQR_TO_SD = 2 * NormalDist().inv_cdf(0.75)


@dataclass(frozen=True)
class TabularPerturbation:
    """One named perturbation of a feature table, defined at five severities.

    Parameters
    ----------
    name : str
        Stable snake_case id (``"gaussian_noise"``).
    description : str
        Plain words for the report, with the parameter range.
    severities : tuple of float
        The parameter value at severities 1 to 5 (its unit is in ``description``).
    stochastic : bool
        Whether the output depends on the seed.
    numeric_only : bool
        Whether only numeric columns are changed (all but ``missing``).
    kernel : callable
        ``kernel(values, value, spread, rng) -> values``: the implementation on one column.
    """

    name: str
    description: str
    severities: tuple[float, ...]
    stochastic: bool
    numeric_only: bool
    kernel: Callable[..., Any] = field(repr=False, compare=False)

    def apply(self, frame: pd.DataFrame, severity: int, seed: int,
              columns: Sequence[Any] | None = None) -> pd.DataFrame:
        """Perturb the features of a table.

        Parameters
        ----------
        frame : pandas.DataFrame
            The model's features. Not modified.
        severity : int
            1 (mild) to 5 (severe).
        seed : int
            Non-negative seed; the same seed gives the same output.
        columns : sequence, optional
            The columns to perturb (default: all). Non-numeric columns among them are left
            as they are unless the perturbation is ``missing``.

        Returns
        -------
        pandas.DataFrame
            A copy of ``frame`` with the selected columns perturbed.

        Raises
        ------
        ConfigError
            Severity outside 1..5 or a negative seed.
        InputError
            Not a DataFrame, or a column that is not in it.
        """
        value = self._value(severity)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"Perturbation seed must be a non-negative integer; got {seed!r}.")
        if not isinstance(frame, pd.DataFrame):
            raise InputError(f"Tabular perturbation '{self.name}' needs a pandas DataFrame; "
                             f"got {type(frame).__name__}.")
        selected = _check_columns(frame, columns, self.name)
        out = frame.copy()
        for column in selected:
            series = frame[column]
            numeric = _is_numeric(series)
            if self.numeric_only and not numeric:
                continue
            rng = np.random.default_rng(np.random.SeedSequence(
                [int(seed), _crc(self.name), _crc(str(column))]))
            if numeric:
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                new = self.kernel(values, value, _spread(values), rng)
                out[column] = pd.Series(new, index=frame.index, name=series.name).astype(
                    _float_dtype(series.dtype))
            else:
                missing = self.kernel(np.zeros(len(series)), value, 0.0, rng)
                out[column] = series.where(~np.isnan(missing), None)
        return out

    def _value(self, severity: int) -> float:
        if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
                or severity not in _SEVERITY_LEVELS:
            raise ConfigError(f"Severity {severity!r} for perturbation '{self.name}' is not "
                              f"valid: expected an integer from 1 to {len(self.severities)}.")
        return self.severities[int(severity) - 1]


def get_tabular_perturbations(names: Sequence[str] | None) -> list[TabularPerturbation]:
    """Look tabular perturbations up by name.

    Parameters
    ----------
    names : sequence of str or None
        Names, returned in this order (repeats dropped); ``None`` selects all.

    Returns
    -------
    list of TabularPerturbation

    Raises
    ------
    ConfigError
        An unknown name; the message lists the valid ones.
    """
    if names is None:
        return list(TABULAR_PERTURBATIONS.values())
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in TABULAR_PERTURBATIONS]
    if unknown:
        raise ConfigError(
            f"Unknown tabular perturbation(s): {', '.join(repr(n) for n in unknown)}. "
            f"Valid names: {', '.join(sorted(TABULAR_PERTURBATIONS))}.")
    return [TABULAR_PERTURBATIONS[n] for n in dict.fromkeys(names)]


# ------------------------------------------------------------------------------ helpers --

def _crc(text: str) -> int:
    # zlib.crc32, not hash(): hash() of a str changes between processes.
    return zlib.crc32(text.encode("utf-8"))


def _check_columns(frame: pd.DataFrame, columns, name: str) -> list:
    if columns is None:
        selected = list(frame.columns)
    else:
        selected = [columns] if isinstance(columns, str) else list(columns)
        missing = [c for c in selected if c not in frame.columns]
        if missing:
            shown = ", ".join(map(str, list(frame.columns)[:20]))
            more = ", ..." if frame.shape[1] > 20 else ""
            raise InputError(
                f"Column(s) {', '.join(repr(c) for c in missing)} to perturb with '{name}' "
                f"not found in the feature table (columns: {shown}{more}).")
        selected = list(dict.fromkeys(selected))
    duplicated = [c for c in selected if (frame.columns == c).sum() > 1]
    if duplicated:
        raise InputError(f"Column name(s) {', '.join(repr(c) for c in duplicated)} appear more "
                         "than once in the feature table; give each column a unique name.")
    return selected


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) \
        and not pd.api.types.is_bool_dtype(series.dtype)


def _float_dtype(dtype):
    if pd.api.types.is_float_dtype(dtype):
        return dtype
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return "Float64"  # nullable integers stay nullable
    return np.float64


def _spread(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return 0.0
    q1, q3 = np.percentile(finite, [25, 75])
    spread = (q3 - q1) / _IQR_TO_SD
    return float(spread if spread > 0 else finite.std(ddof=1))


# ------------------------------------------------------------------------------ kernels --
# Each draws its random numbers in full whatever the severity, so that the draws are shared
# across severities (see the module docstring).

def _gaussian_noise(values, sd, spread, rng):
    noisy = values + sd * spread * rng.standard_normal(values.shape)
    # Kept within the range seen in the column: noise on a turnaround time or an age must not
    # make it negative, an impossible input that a model may reject (log1p of -2 is NaN) and
    # that would then be reported as a failure under noise.
    finite = values[np.isfinite(values)]
    return np.clip(noisy, finite.min(), finite.max()) if finite.size else noisy


def _missing(values, share, spread, rng):
    order = rng.permutation(values.shape[0])
    out = values.copy()
    out[order[:round(share * values.shape[0])]] = np.nan
    return out


def _unit_shift(values, factor, spread, rng):
    return values * factor


def _rounding(values, step, spread, rng):
    if spread == 0:
        return values
    width = step * spread
    return np.round(values / width) * width


def _pct(values) -> str:
    return f"{values[0] * 100:g}% to {values[-1] * 100:g}%"


_SPECS = [
    ("gaussian_noise", (0.05, 0.1, 0.2, 0.3, 0.5), True, True, _gaussian_noise,
     ("Gaussian noise on numeric features, sd {first:g} to {last:g} times each feature's "
      "spread, within its observed range")),
    ("missing", (0.05, 0.1, 0.2, 0.3, 0.5), True, False, _missing,
     "Missing values in {pct} of the rows of every feature"),
    ("unit_shift", (1.01, 1.05, 1.1, 1.25, 1.5), False, True, _unit_shift,
     "Unit or calibration error: numeric features multiplied by {first:g} to {last:g}"),
    ("rounding", (0.05, 0.1, 0.25, 0.5, 1.0), False, True, _rounding,
     ("Coarser recording: numeric features rounded to a step of {first:g} to {last:g} times "
      "their spread")),
]

#: Every tabular perturbation by name.
TABULAR_PERTURBATIONS: dict[str, TabularPerturbation] = {
    name: TabularPerturbation(
        name=name, description=text.format(pct=_pct(values), first=values[0], last=values[-1]),
        severities=tuple(float(v) for v in values), stochastic=stochastic,
        numeric_only=numeric_only, kernel=kernel)
    for name, values, stochastic, numeric_only, kernel, text in _SPECS
}
