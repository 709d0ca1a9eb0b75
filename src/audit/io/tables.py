"""Tabular datasets: read CSV/Parquet, check the configured columns, derive bins.

Only configured columns are kept, so nothing else can leak into an output. Every problem
is reported as one :class:`~audit.errors.InputError` line naming the file and column.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from audit.core.config import BinSpec, DataConfig
from audit.errors import InputError

MISSING_GROUP = "(missing)"
_CSV = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
_PARQUET = (".parquet", ".pq")


@dataclass(frozen=True)
class Dataset:
    """One validated table: the test data or the reference (validation) data.

    ``frame`` holds only the configured columns (plus derived bins); its index is 0..n-1.
    """

    name: str
    path: Path
    frame: pd.DataFrame = field(repr=False)
    sha256: str
    n_rows_read: int
    n_dropped: int = 0

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @property
    def fingerprint(self) -> str:
        """Identifies the rows the model sees: file hash plus rows dropped."""
        return f"{self.sha256}:{self.n_dropped}:{self.n_rows}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, with one-line errors for the usual ways it goes wrong."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"Data file not found: {path}. Check data.path / --data.")
    if path.is_dir():
        raise InputError(f"{path} is a folder; expected a CSV or Parquet file.")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes); expected a CSV or Parquet table with a header and rows.")
    name = path.name.lower()
    try:
        if name.endswith(_PARQUET):
            frame = pd.read_parquet(path)
        elif name.endswith(_CSV) or "." not in name:
            sep = "\t" if ".tsv" in name else ","
            frame = pd.read_csv(path, sep=sep, low_memory=False)
        else:
            raise InputError(
                f"{path}: unsupported file type '{path.suffix}'; expected .csv, .tsv or .parquet."
            )
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} has no columns; expected a CSV table with a header row.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        kind = "Parquet" if name.endswith(_PARQUET) else "CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path} is not a readable {kind} table ({first}).") from None
    if frame.shape[1] == 0:
        raise InputError(f"{path} has no columns; expected a table with a header row.")
    if len(frame) == 0:
        raise InputError(f"{path} has a header but no rows; expected at least one data row.")
    if frame.shape[1] == 1 and not name.endswith(_PARQUET) and len(frame.columns[0]) > 200:
        raise InputError(f"{path} does not look like a table (one very long column name); expected CSV.")
    return frame


def required_columns(cfg: DataConfig, *, need_features: bool) -> list[str]:
    cols = list(cfg.label) + list(cfg.score) + list(cfg.sensitive)
    binned = {b.name for b in cfg.bins}
    cols = [c for c in cols if c not in binned]
    cols += [b.column for b in cfg.bins]
    for c in (cfg.id, cfg.site, cfg.time):
        if c:
            cols.append(c)
    if need_features:
        cols += list(cfg.features)
    return list(dict.fromkeys(cols))


def load_dataset(path: Path, cfg: DataConfig, *, name: str, need_features: bool, need_scores: bool) -> Dataset:
    """Read and validate one table against the data configuration."""
    raw = read_table(path)
    n_read = len(raw)
    wanted = required_columns(cfg, need_features=need_features)
    if not need_scores:
        wanted = [c for c in wanted if c not in cfg.score]
    missing = [c for c in wanted if c not in raw.columns]
    if missing:
        shown = ", ".join(map(str, list(raw.columns)[:30])) + (", ..." if raw.shape[1] > 30 else "")
        raise InputError(
            f"Column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} not found in "
            f"{path} (columns: {shown}). Set the data roles to existing columns."
        )
    frame = raw[wanted].copy()
    del raw

    # Missing labels/scores: count them; drop only when asked, and say how many.
    critical = list(cfg.label) + ([c for c in cfg.score] if need_scores else [])
    nan_mask = frame[critical].isna().any(axis=1)
    n_nan = int(nan_mask.sum())
    if n_nan:
        if not cfg.drop_missing:
            per = {c: int(frame[c].isna().sum()) for c in critical if frame[c].isna().any()}
            detail = ", ".join(f"{c}: {k}" for c, k in per.items())
            raise InputError(
                f"{path}: {n_nan} rows have missing values in label/score columns ({detail}). "
                "Fix the data or pass --drop-missing to drop them (the report states how many)."
            )
        frame = frame.loc[~nan_mask]
    frame = frame.reset_index(drop=True)
    if len(frame) == 0:
        raise InputError(f"{path}: no rows left after dropping {n_nan} rows with missing label/score.")

    for col in cfg.label:
        frame[col] = _binary_labels(frame[col], col, path)
    if need_scores:
        for col in cfg.score:
            frame[col] = _probabilities(frame[col], col, path)
    for spec in cfg.bins:
        frame[spec.name] = _bin(frame[spec.column], spec, path)
    binned = {b.name for b in cfg.bins}
    for col in cfg.sensitive:
        if col not in binned:
            _check_categorical(frame[col], col, path)
        frame[col] = _categorical(frame[col])
    if cfg.id:
        frame[cfg.id] = frame[cfg.id].astype("string").fillna(MISSING_GROUP)
    return Dataset(name=name, path=Path(path), frame=frame, sha256=sha256_file(path),
                   n_rows_read=n_read, n_dropped=n_nan)


def _binary_labels(series: pd.Series, col: str, path: Path) -> pd.Series:
    if series.dtype == bool:
        return series.astype(np.int8)
    values = pd.unique(series)
    bad = [v for v in values if not _is_01(v)]
    if bad:
        shown = ", ".join(repr(_plain(v)) for v in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise InputError(
            f"Label column '{col}' in {path} must hold only 0 and 1; found {shown}. "
            "Recode the label to 0/1 (1 = the condition is present)."
        )
    return pd.to_numeric(series).astype(np.int8)


def _is_01(v) -> bool:
    if isinstance(v, str):
        return v.strip() in ("0", "1")
    try:
        return float(v) in (0.0, 1.0)
    except (TypeError, ValueError):
        return False


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _probabilities(series: pd.Series, col: str, path: Path) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    n_bad = int(values.isna().sum())
    if n_bad:
        example = series[values.isna()].iloc[0]
        raise InputError(
            f"Score column '{col}' in {path} has {n_bad} non-numeric values (e.g. {_plain(example)!r}); "
            "expected probabilities in [0, 1]."
        )
    arr = values.to_numpy(dtype=float)
    out = (arr < 0) | (arr > 1)
    if out.any():
        raise InputError(
            f"Score column '{col}' in {path} has {int(out.sum())} values outside [0, 1] "
            f"(min {arr.min():g}, max {arr.max():g}); expected probabilities. "
            "Apply a sigmoid/softmax to logits, or choose the probability column."
        )
    return values.astype(float)


def _bin(series: pd.Series, spec: BinSpec, path: Path) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna()
    if bad.any():
        raise InputError(
            f"Column '{spec.column}' in {path} has {int(bad.sum())} non-numeric values "
            f"(e.g. {_plain(series[bad].iloc[0])!r}); data.bins.{spec.column} needs numbers."
        )
    lo, hi = spec.edges[0], spec.edges[-1]
    outside = values.notna() & ((values < lo) | (values >= hi))
    if outside.any():
        raise InputError(
            f"Column '{spec.column}' in {path} has {int(outside.sum())} values outside the bin edges "
            f"[{lo:g}, {hi:g}) (min {values.min():g}, max {values.max():g}). "
            f"Widen data.bins.{spec.column}.edges."
        )
    binned = pd.cut(values, bins=list(spec.edges), labels=list(spec.labels), right=False)
    return binned.astype("string").fillna(MISSING_GROUP)


MAX_NUMERIC_LEVELS = 20


def _check_categorical(series: pd.Series, col: str, path: Path) -> None:
    if pd.api.types.is_numeric_dtype(series) and series.nunique() > MAX_NUMERIC_LEVELS:
        raise InputError(
            f"Sensitive attribute '{col}' in {path} is numeric with {series.nunique()} distinct values; "
            f"bin it into groups with [data.bins.{col}] edges = [...] and use the binned name."
        )


def _categorical(series: pd.Series) -> pd.Series:
    # Sensitive attributes are compared as text; whole floats print as ints (1.0 -> "1").
    if pd.api.types.is_float_dtype(series):
        as_int = series.dropna()
        if (as_int == np.round(as_int)).all():
            series = series.astype("Int64")
    return series.astype("string").fillna(MISSING_GROUP)
