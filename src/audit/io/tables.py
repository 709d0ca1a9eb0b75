"""Tabular datasets: read CSV/Parquet, check the configured columns, derive bins.

Only configured columns are parsed (the header is read first, to name missing or repeated
columns), so nothing else can leak into an output or cost memory. Sensitive attributes must
name groups: never all missing, never identifier-like, at most ``data.max_groups`` of them.
Every problem is reported as one :class:`~audit.errors.InputError` line naming the file and column.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from audit.core.config import BinSpec, DataConfig
from audit.errors import InputError

# The group of rows whose attribute is missing. A cell holding this text literally is refused
# (see _check_sensitive) rather than merged with the empty cells or silently renamed.
MISSING_GROUP = "(missing)"
_CSV = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
_PARQUET = (".parquet", ".pq")
# pandas' default missing-value strings (pandas.read_csv, na_values), kept for the numeric roles
# (label, score, features, time, binned columns); categorical columns treat only empty cells
# (and data.na_values) as missing, so a category called "None" or "NA" stays a category.
DEFAULT_NA = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}
# A categorical column looks like an identifier when it has more distinct values than this share
# of the rows (of the patients, with data.id), and at least MIN_ID_VALUES of them: a toy file of
# four rows and four categories is not an identifier.
ID_SHARE = 0.5
MIN_ID_VALUES = 20


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


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(_PARQUET)


def _check_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"Data file not found: {path}. Check data.path / --data.")
    if path.is_dir():
        raise InputError(f"{path} is a folder; expected a CSV or Parquet file.")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes); expected a CSV or Parquet table with a header and rows.")
    name = path.name.lower()
    if not (name.endswith(_PARQUET) or name.endswith(_CSV) or "." not in name):
        raise InputError(f"{path}: unsupported file type '{path.suffix}'; expected .csv, .tsv or .parquet.")
    return path


def _separator(path: Path, delimiter: str | None) -> str:
    if delimiter is not None:
        return delimiter
    return "\t" if ".tsv" in path.name.lower() else ","


@contextmanager
def _readable(path: Path):
    """Turn the parsers' exceptions into one InputError line naming the file."""
    try:
        yield
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} has no columns; expected a CSV table with a header row.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        kind = "Parquet" if _is_parquet(path) else "CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path} is not a readable {kind} table ({first}).") from None


def delimiter_hint(names: list[str], sep: str) -> str | None:
    """The separator a header seems to use instead of ``sep`` (as a ``data.delimiter`` value)."""
    text = "".join(names)
    for char in _DELIMITERS:
        if char != sep and text.count(char) >= max(1, len(names)):
            return char
    return None


def _hint_text(path: Path, char: str) -> str:
    shown = '"\\t"' if char == "\t" else repr(char)
    return f"{path} looks {_DELIMITERS[char]}-separated; set data.delimiter = {shown} in the config"


def read_header(path: Path, *, delimiter: str | None = None) -> list[str]:
    """The column names of a CSV or Parquet file, as written (duplicates kept), without its rows."""
    path = _check_file(path)
    with _readable(path):
        if _is_parquet(path):
            import pyarrow.parquet as pq

            names = [n for n in pq.read_schema(path).names if not n.startswith("__index_level_")]
        else:
            sep = _separator(path, delimiter)
            # header=None: the raw first row, before pandas renames a repeated 'x' to 'x.1'.
            row = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
            names = [v if v != "" else f"Unnamed: {i}" for i, v in enumerate(row.iloc[0].tolist())] \
                if len(row) else []
    if not names:
        raise InputError(f"{path} has no columns; expected a table with a header row.")
    if len(names) == 1 and not _is_parquet(path):
        char = delimiter_hint(names, _separator(path, delimiter))
        if char is not None:
            raise InputError(f"{path} has one column ({names[0][:60]!r}): {_hint_text(path, char)}.")
        if len(names[0]) > 200:
            raise InputError(f"{path} does not look like a table (one very long column name); expected CSV.")
    return names


def read_table(
    path: Path,
    columns: list[str] | None = None,
    *,
    delimiter: str | None = None,
    categorical: tuple[str, ...] | list[str] = (),
    na_values: tuple[str, ...] | list[str] = (),
) -> pd.DataFrame:
    """Read a CSV or Parquet file, with one-line errors for the usual ways it goes wrong.

    Only ``columns`` (default: all) are parsed. In ``categorical`` columns only empty cells and
    ``na_values`` are missing, so that "None", "NA" or "null" stay categories; the other columns
    keep pandas' default missing markers.
    """
    path = Path(path)
    header = read_header(path, delimiter=delimiter)
    if columns is not None:
        check_columns(path, header, columns, delimiter=delimiter)
    return _read(path, header, columns, delimiter=delimiter, categorical=categorical, na_values=na_values)


def check_columns(path: Path, header: list[str], columns: list[str], *, delimiter: str | None = None) -> None:
    """Every requested column is in ``header``; else one InputError naming them (and a delimiter hint)."""
    missing = [c for c in columns if c not in header]
    if missing:
        shown = ", ".join(map(str, header[:30])) + (", ..." if len(header) > 30 else "")
        hint = None if _is_parquet(path) else delimiter_hint(header, _separator(path, delimiter))
        raise InputError(
            f"Column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} not found in "
            f"{path} (columns: {shown}). "
            + (f"{_hint_text(path, hint)}." if hint else "Set the data roles to existing columns.")
        )


def _read(path, header, columns, *, delimiter, categorical, na_values, text=()) -> pd.DataFrame:
    wanted = list(header) if columns is None else list(dict.fromkeys(columns))
    twice = sorted({c for c in header if c in wanted and header.count(c) > 1})
    if twice:
        raise InputError(
            f"{path} has several columns named {', '.join(repr(c) for c in twice)}; rename them in the "
            "header so each name is used once (pandas would silently call the second one "
            f"'{twice[0]}.1')."
        )
    categorical = [c for c in categorical if c in wanted]
    markers = [""] + [v for v in na_values if v != ""]
    with _readable(path):
        if _is_parquet(path):
            frame = pd.read_parquet(path, columns=None if columns is None else wanted)
            for col in categorical:
                s = frame[col]
                if not pd.api.types.is_numeric_dtype(s):
                    frame[col] = s.mask(s.astype("string").isin(markers))
        elif columns is None and not categorical:
            frame = pd.read_csv(path, sep=_separator(path, delimiter), low_memory=False)
        else:
            na = {c: markers if c in categorical else list(DEFAULT_NA) for c in wanted}
            # ``text`` columns stay text: a file named 007 must not be read as the number 7.
            dtype = {c: str for c in text if c in wanted} or None
            frame = pd.read_csv(path, sep=_separator(path, delimiter), usecols=wanted, low_memory=False,
                                keep_default_na=False, na_values=na, dtype=dtype)
    if frame.shape[1] == 0:
        raise InputError(f"{path} has no columns; expected a table with a header row.")
    if len(frame) == 0:
        raise InputError(f"{path} has a header but no rows; expected at least one data row.")
    if columns is None or list(frame.columns) == wanted:
        return frame
    return frame.reindex(columns=wanted)  # usecols keeps the file's order; a new frame, not a view


def categorical_columns(cfg: DataConfig) -> tuple[str, ...]:
    """Columns whose values are names (groups, sites, patients): only empty cells are missing."""
    binned = {b.name for b in cfg.bins}
    sources = {b.column for b in cfg.bins}
    cols = [c for c in cfg.sensitive if c not in binned]
    cols += [c for c in (cfg.site, cfg.id) if c]
    return tuple(c for c in dict.fromkeys(cols) if c not in sources)


def required_columns(cfg: DataConfig, *, need_features: bool) -> list[str]:
    cols = list(cfg.label) + list(cfg.score) + list(cfg.sensitive)
    binned = {b.name for b in cfg.bins}
    cols = [c for c in cols if c not in binned]
    cols += [b.column for b in cfg.bins]
    for c in (cfg.id, cfg.site, cfg.time, cfg.image_column):
        if c:
            cols.append(c)
    if need_features:
        cols += list(cfg.features)
    return list(dict.fromkeys(cols))


def load_dataset(path: Path, cfg: DataConfig, *, name: str, need_features: bool, need_scores: bool) -> Dataset:
    """Read and validate one table against the data configuration.

    Only the configured columns are parsed. Sensitive attributes are checked as they load:
    never all missing, never identifier-like, at most ``data.max_groups`` groups.
    """
    path = Path(path)
    header = read_header(path, delimiter=cfg.delimiter)
    for spec in cfg.bins:
        if spec.name != spec.column and spec.name in header:
            raise InputError(
                f"data.bins.{spec.column}.name '{spec.name}' is also a column of {path}: the bin of "
                f"'{spec.column}' would shadow it. Use the existing column '{spec.name}' and remove "
                f"[data.bins.{spec.column}], or give the bin another name."
            )
    wanted = required_columns(cfg, need_features=need_features)
    if not need_scores:
        wanted = [c for c in wanted if c not in cfg.score]
    check_columns(path, header, wanted, delimiter=cfg.delimiter)
    image_column = cfg.image_column
    text = (image_column,) if image_column else ()
    frame = _read(path, header, wanted, delimiter=cfg.delimiter,
                  categorical=categorical_columns(cfg) + text, na_values=cfg.na_values, text=text)
    n_read = len(frame)

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
    if image_column:
        # Before the index is reset, so that the message names the row of the file.
        frame[image_column] = _image_paths(frame[image_column], image_column, path)
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
    binned = {b.column for b in cfg.bins}
    bins = {b.name: b for b in cfg.bins}
    patients = int(frame[cfg.id].nunique()) if cfg.id else None
    for col in cfg.sensitive:
        if col in bins:
            if (frame[col] == MISSING_GROUP).all():
                raise InputError(
                    f"Sensitive attribute '{col}' (data.bins.{bins[col].column}) is missing in all "
                    f"{len(frame)} rows of {path}: column '{bins[col].column}' is empty. Fill it in or "
                    "remove the attribute from data.sensitive."
                )
        else:
            _check_categorical(frame[col], col, path)
            _check_sensitive(frame[col], col, path, cfg, patients)
        _check_group_count(frame[col], col, path, cfg.max_groups)
        frame[col] = _categorical(frame[col])
    if cfg.site and cfg.site not in binned:
        _check_not_identifier(frame[cfg.site], f"Site column '{cfg.site}'", path, patients, cfg.id,
                              "not a site; set data.site to the column naming the hospital or clinic"
                              + ("" if cfg.id else ", or data.id if it identifies patients"))
    if cfg.id:
        frame[cfg.id] = frame[cfg.id].astype("string").fillna(MISSING_GROUP)
    return Dataset(name=name, path=Path(path), frame=frame, sha256=sha256_file(path),
                   n_rows_read=n_read, n_dropped=n_nan)


def _image_paths(series: pd.Series, col: str, path: Path) -> pd.Series:
    """The image column as text paths; a missing or non-text value is an InputError.

    ``series`` keeps the file's row positions as its index (0 = the first data row).
    """
    def row(position) -> str:
        position = int(position)
        line = "" if _is_parquet(path) else f", line {position + 2} of the file"
        return f"data row {position + 1}{line}"

    not_text = series.notna() & ~series.map(lambda v: isinstance(v, str))
    if not_text.any():
        first = series.index[not_text.to_numpy()][0]
        raise InputError(
            f"Image column '{col}' in {path} must hold file paths (text), but {int(not_text.sum())} values "
            f"are not text (the first, {_plain(series[first])!r}, in {row(first)}). Store the paths as strings."
        )
    missing = series.isna() | (series.fillna("").astype(str).str.strip() == "")
    if missing.any():
        first = series.index[missing.to_numpy()][0]
        raise InputError(
            f"Image column '{col}' in {path} has {int(missing.sum())} missing image paths (empty cells); "
            f"the first in {row(first)}. Fill in the path of each row's image (relative to the manifest's "
            "folder, or absolute), or remove those rows."
        )
    return series.astype(object)


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


def _check_sensitive(series: pd.Series, col: str, path: Path, cfg: DataConfig, patients: int | None) -> None:
    """An attribute names groups: not all missing, no literal MISSING_GROUP, not an identifier."""
    present = series.notna()
    if not present.any():
        extra = f" or one of data.na_values ({', '.join(map(repr, cfg.na_values))})" if cfg.na_values else ""
        raise InputError(
            f"Sensitive attribute '{col}' is missing in all {len(series)} rows of {path} (empty cells{extra}); "
            "fill it in or remove it from data.sensitive."
        )
    if not pd.api.types.is_numeric_dtype(series):
        literal = int((series[present].astype(str) == MISSING_GROUP).sum())
        if literal:
            raise InputError(
                f"Sensitive attribute '{col}' in {path} holds the text '{MISSING_GROUP}' in {literal} rows, "
                "the name future-audit gives the group of empty cells: rename that category in the data, "
                f"or add \"{MISSING_GROUP}\" to data.na_values to count those rows as missing."
            )
    _check_not_identifier(series, f"Sensitive attribute '{col}'", path, patients, cfg.id,
                          "not a group; use a column of a few categories (or merge its values into groups)"
                          + ("" if cfg.id else ", or set it as data.id if it identifies patients"))


def _check_not_identifier(series: pd.Series, what: str, path: Path, patients: int | None,
                          id_column: str | None, fix: str) -> None:
    distinct = int(series.nunique(dropna=True))
    base = patients if patients is not None else len(series)
    if distinct >= MIN_ID_VALUES and distinct > ID_SHARE * base:
        who = f" ({patients} patients, data.id '{id_column}')" if patients is not None else ""
        raise InputError(
            f"{what} in {path} has {distinct} distinct values for {len(series)} rows{who}: "
            f"it looks like an identifier, {fix}."
        )


def _check_group_count(series: pd.Series, col: str, path: Path, max_groups: int) -> None:
    groups = int(series.nunique(dropna=True)) + int(series.isna().any())
    if groups > max_groups:
        raise InputError(
            f"Sensitive attribute '{col}' in {path} has {groups} groups, more than data.max_groups = "
            f"{max_groups} (reports with that many groups are slow and unreadable). Merge its categories "
            f"into fewer groups (numbers: bin them with [data.bins.{col}]), or raise data.max_groups."
        )


def _categorical(series: pd.Series) -> pd.Series:
    # Sensitive attributes are compared as text; whole floats print as ints (1.0 -> "1").
    if pd.api.types.is_float_dtype(series):
        as_int = series.dropna()
        if (as_int == np.round(as_int)).all():
            series = series.astype("Int64")
    return series.astype("string").fillna(MISSING_GROUP)
