"""A local audit history: every run's results.json in one SQLite file.

:func:`append_run` records a run; :func:`list_runs`, :func:`metric_series`,
:func:`last_accepted` and :func:`baseline_value` read the history back, so that a gate can
compare a metric with the last accepted run (``fairness.fnr_gap<=baseline+0.02``) and
:func:`render_trend` can draw one metric over time.

Guarantees
----------
- One run is written in one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``); any failure
  rolls it back, so the file holds whole runs or nothing of a run.
- Every number is stored as it is in results.json and read back bit for bit: the numeric
  columns have no declared type (SQLite's REAL affinity would store ``-0.0`` as ``0``).
  results.json never holds NaN or infinities; a run that does is refused, not altered.
- Only what results.json holds is stored (suppressed values are not in it, so not here).
- The file is marked as ours (``PRAGMA application_id``) with the history schema version in
  ``PRAGMA user_version`` and the ``history_schema`` table; any other file is refused, never
  written to.

Journal mode: the default rollback journal (``DELETE``), not WAL. A history is one file that
people copy, commit, attach to CI artifacts and keep on network shares: WAL keeps recent
commits in a ``-wal`` side file (a copy of the main file alone loses them) and does not work
over network file systems. One write per audit run needs none of WAL's concurrency.
Readers and writers wait :data:`LOCK_TIMEOUT_S` for a lock, then fail with a clear message.

Accepted runs: a run is *accepted* when it was recorded (or marked, :func:`mark_accepted`)
with ``accepted=True``. The baseline (:func:`last_accepted`) is the latest accepted run;
in a history with no accepted run at all, it is the latest run that exited 0 and was not
marked ``accepted=False``. Explicit acceptance therefore pins the baseline: later passing
runs do not move it, so a metric cannot drift by ``+0.02`` per run.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import sqlite3
import uuid
import zlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit import __version__
from audit.compare import require_results
from audit.core.config import Baseline, BaselineRecord, GateSpec
from audit.errors import ConfigError, InputError

__all__ = [
    "APPLICATION_ID", "HISTORY_VERSION", "HistoryError", "RunSummary", "SeriesPoint",
    "append_run", "baseline_value", "check_history", "last_accepted", "list_runs", "load_run",
    "mark_accepted", "metric_records", "metric_series", "render_trend", "resolve_baselines",
]

APPLICATION_ID = 0x46417564  # "FAud": marks a file as a future-audit history
HISTORY_VERSION = 3
# Version 2 added gate_checks.feature and gate_checks.threshold (results.json 1.4); a version-1
# file is upgraded in place, inside the first write transaction that opens it.
_UPGRADES = {1: ("ALTER TABLE gate_checks ADD COLUMN feature TEXT",
                 "ALTER TABLE gate_checks ADD COLUMN threshold CHECK (typeof(threshold) IN ('null', 'integer', 'real'))"),
             # Version 3 added gate_checks.perturbation and gate_checks.severity (results.json 1.6).
             2: ("ALTER TABLE gate_checks ADD COLUMN perturbation TEXT",
                 "ALTER TABLE gate_checks ADD COLUMN severity CHECK (typeof(severity) IN ('null', 'integer'))")}
# Seconds to wait for another process's lock before failing: an append takes milliseconds,
# so a longer wait means a stuck process, which the user should hear about.
LOCK_TIMEOUT_S = 2.0
_SQLITE_MAGIC = b"SQLite format 3\x00"
_NAMESPACE = uuid.UUID("5b0f8e52-3c1d-4a8e-9a57-0b8b1d3f6a21")


class HistoryError(InputError):
    """The audit history file cannot be used (not ours, newer, locked, missing folder)."""


_SCHEMA = """
CREATE TABLE history_schema (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    finished TEXT,
    sort_time TEXT NOT NULL,
    recorded TEXT NOT NULL,
    git_commit TEXT,
    git_dirty INTEGER,
    model_sha256 TEXT,
    data_sha256 TEXT,
    reference_sha256 TEXT,
    seed CHECK (typeof(seed) IN ('null', 'integer', 'real', 'text')),
    tool_version TEXT,
    schema_version TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    full_record INTEGER NOT NULL,
    accepted INTEGER CHECK (accepted IN (0, 1)),
    document BLOB NOT NULL
);
CREATE TABLE plugins (
    run INTEGER NOT NULL REFERENCES runs(seq),
    position INTEGER NOT NULL,
    plugin TEXT NOT NULL,
    version TEXT,
    status TEXT NOT NULL,
    PRIMARY KEY (run, position)
);
CREATE TABLE gates (
    run INTEGER NOT NULL REFERENCES runs(seq),
    position INTEGER NOT NULL,
    expression TEXT NOT NULL,
    metric TEXT,
    operator TEXT,
    threshold CHECK (typeof(threshold) IN ('null', 'integer', 'real')),
    policy TEXT,
    status TEXT NOT NULL,
    empty INTEGER,
    message TEXT,
    PRIMARY KEY (run, position)
);
CREATE TABLE gate_checks (
    run INTEGER NOT NULL,
    gate INTEGER NOT NULL,
    position INTEGER NOT NULL,
    group_json TEXT,
    label TEXT,
    reference TEXT,
    value CHECK (typeof(value) IN ('null', 'integer', 'real')),
    ci_low CHECK (typeof(ci_low) IN ('null', 'integer', 'real')),
    ci_high CHECK (typeof(ci_high) IN ('null', 'integer', 'real')),
    status TEXT,
    suppressed INTEGER,
    feature TEXT,
    threshold CHECK (typeof(threshold) IN ('null', 'integer', 'real')),
    perturbation TEXT,
    severity CHECK (typeof(severity) IN ('null', 'integer')),
    PRIMARY KEY (run, gate, position),
    FOREIGN KEY (run, gate) REFERENCES gates(run, position)
);
CREATE TABLE metrics (
    run INTEGER NOT NULL,
    plugin_position INTEGER NOT NULL,
    position INTEGER NOT NULL,
    plugin TEXT NOT NULL,
    metric_id TEXT NOT NULL,
    label TEXT,
    group_json TEXT,
    reference TEXT,
    value CHECK (typeof(value) IN ('null', 'integer', 'real')),
    ci_low CHECK (typeof(ci_low) IN ('null', 'integer', 'real')),
    ci_high CHECK (typeof(ci_high) IN ('null', 'integer', 'real')),
    ci_method TEXT,
    level CHECK (typeof(level) IN ('null', 'integer', 'real')),
    ci_sim_low CHECK (typeof(ci_sim_low) IN ('null', 'integer', 'real')),
    ci_sim_high CHECK (typeof(ci_sim_high) IN ('null', 'integer', 'real')),
    n CHECK (typeof(n) IN ('null', 'integer', 'real')),
    denominator CHECK (typeof(denominator) IN ('null', 'integer', 'real')),
    p_value CHECK (typeof(p_value) IN ('null', 'integer', 'real')),
    p_adjusted CHECK (typeof(p_adjusted) IN ('null', 'integer', 'real')),
    reason TEXT,
    reference_group_json TEXT,
    flags_json TEXT,
    suppressed INTEGER,
    extra_json TEXT,
    PRIMARY KEY (run, plugin_position, position),
    FOREIGN KEY (run, plugin_position) REFERENCES plugins(run, position)
);
CREATE INDEX metrics_by_id ON metrics (plugin, metric_id);
"""
_TABLES = {"history_schema", "runs", "plugins", "gates", "gate_checks", "metrics"}

# Metric keys with columns of their own; any other key (feature, perturbation, severity,
# window, task, ...) is kept in extra_json.
_NUMBER_KEYS = ("value", "level", "n", "denominator", "p_value", "p_adjusted")
_COLUMNS = {"id", "label", "group", "reference", "ci", "ci_method", "ci_simultaneous", "reason",
            "reference_group", "flags", "suppressed", *_NUMBER_KEYS}


# -- public types -------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSummary:
    """One recorded run, as :func:`list_runs` shows it.

    ``time`` is ``provenance.finished`` as written; ``model_hash`` and ``data_hash`` are the
    first 12 characters of the sha256 (as in the report headers; another fingerprint, such as a
    score-column model's ``predictions:p``, is shown whole); ``accepted`` is what was
    recorded (None: not said), ``baseline`` whether it is the run :func:`last_accepted` picks.
    """

    id: str
    time: str | None
    status: str
    exit_code: int
    commit: str | None
    model_hash: str | None
    data_hash: str | None
    n_metrics: int
    accepted: bool | None
    baseline: bool = False


@dataclass(frozen=True)
class SeriesPoint:
    """One run's value of one metric record (``group`` None = overall)."""

    run_id: str
    time: str | None
    commit: str | None
    accepted: bool | None
    plugin: str
    metric_id: str
    label: str | None
    group: dict[str, str] | None
    reference: str | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    suppressed: bool


# -- opening the file ---------------------------------------------------------------------

def _connect(path: Path, create: bool) -> sqlite3.Connection:
    # A URI with mode=rw never creates a file, so a read of a mistyped path cannot leave an
    # empty database behind; isolation_level=None: we issue BEGIN/COMMIT ourselves.
    uri = path.absolute().as_uri() + ("?mode=rwc" if create else "?mode=rw")
    conn = sqlite3.connect(uri, uri=True, timeout=LOCK_TIMEOUT_S, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _sniff(path: Path, *, create: bool) -> bool:
    """Check the file before SQLite touches it; True when it is new (may be initialised)."""
    if not path.exists():
        if not create:
            raise HistoryError(f"No audit history at {str(path)!r}. Record a run first, or check the path.")
        if not path.parent.is_dir():
            raise HistoryError(f"Cannot create the audit history {str(path)!r}: the folder "
                               f"{str(path.parent)!r} does not exist. Create it or choose another path.")
        return True
    if path.is_dir():
        raise HistoryError(f"{str(path)!r} is a folder, not an audit history file. Choose a file path.")
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise HistoryError(f"Cannot read the audit history {str(path)!r} ({exc.strerror}).") from None
    if not head and create:
        return True  # an empty file (touch history.db) holds nothing to protect
    if head != _SQLITE_MAGIC:
        raise HistoryError(f"{str(path)!r} is not an audit history (not an SQLite database). "
                           "Choose another file, or move this one away.")
    return False


def _check_schema(conn: sqlite3.Connection, path: Path, *, new: bool) -> bool:
    """Validate an existing history; True when the database is blank and may be initialised."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if new and app_id == 0 and version == 0 and not tables:
        return True
    if app_id != APPLICATION_ID:
        raise HistoryError(f"{str(path)!r} is an SQLite database but not a future-audit history. "
                           "Choose another file; this one is left untouched.")
    if version > HISTORY_VERSION:
        raise HistoryError(f"{str(path)!r} was written by a newer future-audit (history schema {version}, "
                           f"this version reads up to {HISTORY_VERSION}); upgrade future-audit.")
    missing = _TABLES - tables
    if version < 1 or missing:
        raise HistoryError(f"{str(path)!r} is a damaged future-audit history (missing tables: "
                           f"{', '.join(sorted(missing)) or 'none'}; schema {version}). Restore it from a copy.")
    return False


def _is_locked(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in str(exc)


@contextmanager
def _transaction(path: str | os.PathLike, *, write: bool) -> Iterator[sqlite3.Connection]:
    """Open the history, check it is ours and run the body in one transaction.

    Writes take the write lock up front (BEGIN IMMEDIATE), so the schema check and the
    inserts see the same file; a failure anywhere rolls everything back.
    """
    p = Path(path)
    new = _sniff(p, create=write)
    created = new and not p.exists()
    committed = False
    try:
        with closing(_connect(p, create=write)) as conn:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                if _check_schema(conn, p, new=new):
                    if not write:
                        raise HistoryError(f"{str(p)!r} is an empty audit history. Record a run first.")
                    _initialise(conn)
                elif write:
                    _upgrade(conn)
                yield conn
                conn.execute("COMMIT")
                committed = True
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        if _is_locked(exc):
            raise HistoryError(f"The audit history {str(p)!r} is locked by another process (waited "
                               f"{LOCK_TIMEOUT_S:g} s). Try again when it has finished.") from None
        if isinstance(exc, sqlite3.IntegrityError):
            raise
        raise HistoryError(f"Cannot use the audit history {str(p)!r} ({exc}). "
                           "Restore it from a copy or choose another file.") from None
    finally:
        # A file this call created and then could not fill is removed, so no blank
        # database is left where the user expects a history.
        if created and not committed and p.exists() and p.stat().st_size == 0:
            p.unlink()


def _initialise(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.executemany("INSERT INTO history_schema VALUES (?, ?)",
                     [("format", "future-audit history"), ("version", str(HISTORY_VERSION)),
                      ("created_by", f"future-audit {__version__}")])
    # Header pragmas are part of the transaction: a rolled-back creation leaves no mark.
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {HISTORY_VERSION}")


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring an older history to HISTORY_VERSION (in the caller's write transaction)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    while version < HISTORY_VERSION:
        for statement in _UPGRADES[version]:
            conn.execute(statement)
        version += 1
        conn.execute("UPDATE history_schema SET value = ? WHERE key = 'version'", (str(version),))
        conn.execute(f"PRAGMA user_version = {version}")


# -- writing ------------------------------------------------------------------------------

def _canonical(obj: Any) -> str | None:
    return None if obj is None else json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _check_severity(x: Any, where: str) -> Any:
    if x is None or (isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**31):
        return x
    raise HistoryError(f"Cannot record the run: {where} is {x!r}, not a whole number or null.")


def _check_number(x: Any, where: str) -> Any:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise HistoryError(f"Cannot record the run: {where} is {x!r}, not a number or null.")
    if isinstance(x, float) and not math.isfinite(x):
        raise HistoryError(f"Cannot record the run: {where} is {x!r}; results.json holds null for an "
                           "undefined number, never NaN or infinity. Record the results.json the audit wrote.")
    if isinstance(x, int) and not -2**63 <= x < 2**63:
        raise HistoryError(f"Cannot record the run: {where} is {x}, beyond a 64-bit integer.")
    return x


def _check_text(x: Any, where: str) -> str | None:
    # TEXT columns would turn a number into a string: refuse rather than alter.
    if x is not None and not isinstance(x, str):
        raise HistoryError(f"Cannot record the run: {where} is {x!r}, not a string or null.")
    return x


def _pair(x: Any, where: str) -> tuple[Any, Any]:
    if x is None:
        return (None, None)
    if not isinstance(x, list | tuple) or len(x) != 2:
        raise HistoryError(f"Cannot record the run: {where} is {x!r}, not [low, high] or null.")
    return (_check_number(x[0], f"{where}[0]"), _check_number(x[1], f"{where}[1]"))


def _metric_row(run: int, pi: int, plugin: str, mi: int, m: dict) -> tuple:
    where = f"plugins[{pi}].metrics[{mi}]"
    numbers = {k: _check_number(m.get(k), f"{where}.{k}") for k in _NUMBER_KEYS}
    ci, ci_sim = _pair(m.get("ci"), f"{where}.ci"), _pair(m.get("ci_simultaneous"), f"{where}.ci_simultaneous")
    extra = {k: v for k, v in m.items() if k not in _COLUMNS}
    extra_json = json.dumps(extra, sort_keys=True, ensure_ascii=False) if extra else None
    text = {k: _check_text(m.get(k), f"{where}.{k}") for k in ("label", "reference", "ci_method", "reason")}
    suppressed = m.get("suppressed")
    if suppressed is not None and not isinstance(suppressed, bool):
        raise HistoryError(f"Cannot record the run: {where}.suppressed is {suppressed!r}, not true or false.")
    return (run, pi, mi, plugin, m["id"], text["label"], _canonical(m.get("group")), text["reference"],
            numbers["value"], *ci, text["ci_method"], numbers["level"], *ci_sim, numbers["n"],
            numbers["denominator"], numbers["p_value"], numbers["p_adjusted"], text["reason"],
            _canonical(m.get("reference_group")), _canonical(m.get("flags")),
            None if suppressed is None else int(bool(suppressed)), extra_json)


def _sha(entry: Any) -> str | None:
    """sha256 of a provenance file entry; one digest over the files of a list or mapping."""
    if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    parts = (entry if isinstance(entry, list) else list(entry.values()) if isinstance(entry, dict) else [])
    shas = [_sha(e) for e in parts]
    if not shas or None in shas:
        return None
    return shas[0] if len(shas) == 1 else hashlib.sha256("\n".join(shas).encode()).hexdigest()


def _utc(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def _non_finite(obj: Any, where: str = "") -> tuple[str, float] | None:
    """The first NaN or infinity in a parsed JSON document, with its path."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return (where or "the document", obj)
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{where}[{k}]" if isinstance(k, int) else f"{where}.{k}" if where else str(k))
        if found:
            return found
    return None


def append_run(path: str | os.PathLike, results: dict, *, accepted: bool | None = None) -> str:
    """Record one audit run in the history at ``path`` (created when missing).

    Parameters
    ----------
    path : str or path-like
        The history file; its folder must exist.
    results : dict
        A parsed results.json (``json.load``), stored as it is: every metric record of every
        plugin, every gate and its checks, plugin statuses and provenance.
    accepted : bool, optional
        True: this run is a baseline; False: never a baseline; None (default): a baseline
        only when no run is explicitly accepted and it exited 0 (see the module docstring).

    Returns
    -------
    str
        The run id: the results' own ``run_id`` (or ``id``) when it has one, else a UUID
        derived from the content, so recording the same results.json twice is refused.

    Raises
    ------
    HistoryError
        The file is not a history of ours, is newer, locked or damaged; its folder is
        missing; the run is already recorded; a number is NaN or infinite. Nothing is written.
    InputError
        ``results`` is not a results.json.
    """
    require_results(results, source="The run to record")
    if accepted is not None and not isinstance(accepted, bool):
        raise ConfigError(f"accepted must be true, false or unset, not {accepted!r}.")
    prov = results["provenance"]
    bad = _non_finite(results)
    if bad is not None:
        raise HistoryError(f"Cannot record the run: {bad[0]} is {bad[1]!r}; results.json never holds NaN or "
                           "infinity (an undefined number is null). Record the results.json the audit wrote.")
    text = json.dumps(results, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    own = results.get("run_id", results.get("id", prov.get("run_id")))
    run_id = own if isinstance(own, str) and own else str(uuid.uuid5(_NAMESPACE, text))
    recorded = datetime.now(UTC).isoformat(timespec="microseconds")
    git = prov.get("git") if isinstance(prov.get("git"), dict) else {}
    tool = prov.get("tool") if isinstance(prov.get("tool"), dict) else {}
    seed = prov.get("seed")
    with _transaction(path, write=True) as conn:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
            raise HistoryError(f"Run {run_id} is already in {str(path)!r} (the same results were recorded "
                               "before); nothing was written.")
        finished = prov.get("finished") if isinstance(prov.get("finished"), str) else None
        run = conn.execute(
            "INSERT INTO runs (id, finished, sort_time, recorded, git_commit, git_dirty, model_sha256,"
            " data_sha256, reference_sha256, seed, tool_version, schema_version, status, exit_code,"
            " full_record, accepted, document) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, finished, _utc(finished) or recorded, recorded, git.get("commit"),
             None if git.get("dirty") is None else int(bool(git.get("dirty"))),
             _sha(prov.get("model")), _sha(prov.get("data")), _sha(prov.get("reference")),
             seed if isinstance(seed, int | float | str) and not isinstance(seed, bool) else None,
             tool.get("version"), results["schema_version"], results["status"], results["exit_code"],
             int(bool(results.get("full_record"))), None if accepted is None else int(accepted),
             zlib.compress(text.encode("utf-8"))),
        ).lastrowid
        for pi, p in enumerate(results["plugins"]):
            conn.execute("INSERT INTO plugins VALUES (?, ?, ?, ?, ?)",
                         (run, pi, p["plugin"], p.get("version"), p["status"]))
            for mi, m in enumerate(p["metrics"]):
                conn.execute(f"INSERT INTO metrics VALUES ({', '.join('?' * 24)})",
                             _metric_row(run, pi, p["plugin"], mi, m))
        for gi, g in enumerate(results["gates"]):
            conn.execute("INSERT INTO gates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (run, gi, g["expression"], g.get("metric"), g.get("operator"),
                          _check_number(g.get("threshold"), f"gates[{gi}].threshold"), g.get("policy"),
                          g["status"], None if g.get("empty") is None else int(bool(g["empty"])), g.get("message")))
            for ci, c in enumerate(g.get("checks") or []):
                where = f"gates[{gi}].checks[{ci}]"
                conn.execute("INSERT INTO gate_checks (run, gate, position, group_json, label, reference, value, "
                             "ci_low, ci_high, status, suppressed, feature, threshold, perturbation, severity) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (run, gi, ci, _canonical(c.get("group")), c.get("label"), c.get("reference"),
                              _check_number(c.get("value"), f"{where}.value"), *_pair(c.get("ci"), f"{where}.ci"),
                              c.get("status"), None if c.get("suppressed") is None else int(bool(c["suppressed"])),
                              c.get("feature"), _check_number(c.get("threshold"), f"{where}.threshold"),
                              c.get("perturbation"), _check_severity(c.get("severity"), f"{where}.severity")))
    return run_id


def mark_accepted(path: str | os.PathLike, run_id: str, accepted: bool | None = True) -> None:
    """Set (or with None clear) the accepted flag of a recorded run.

    Raises
    ------
    HistoryError
        No run ``run_id`` in the history (or the file is unusable).
    """
    if accepted is not None and not isinstance(accepted, bool):
        raise ConfigError(f"accepted must be true, false or unset, not {accepted!r}.")
    with _transaction(path, write=True) as conn:
        cur = conn.execute("UPDATE runs SET accepted = ? WHERE id = ?",
                           (None if accepted is None else int(bool(accepted)), run_id))
        if cur.rowcount == 0:
            raise HistoryError(f"No run {run_id!r} in {str(path)!r}. 'list_runs' shows the run ids.")


# -- reading ------------------------------------------------------------------------------

_BASELINE = ("SELECT seq FROM runs WHERE accepted = 1 ORDER BY sort_time DESC, seq DESC LIMIT 1",
             "SELECT seq FROM runs WHERE accepted IS NULL AND exit_code = 0 AND NOT EXISTS "
             "(SELECT 1 FROM runs WHERE accepted = 1) ORDER BY sort_time DESC, seq DESC LIMIT 1")


def _baseline_seq(conn: sqlite3.Connection) -> int | None:
    for query in _BASELINE:
        row = conn.execute(query).fetchone()
        if row:
            return row[0]
    return None


def _flag(x: int | None) -> bool | None:
    return None if x is None else bool(x)


def list_runs(path: str | os.PathLike) -> list[RunSummary]:
    """Every recorded run, oldest first (by ``provenance.finished``, then by recording order).

    Raises
    ------
    HistoryError
        The file is missing, not a history of ours, newer, locked or damaged.
    """
    with _transaction(path, write=False) as conn:
        return _summaries(conn)


def _summaries(conn: sqlite3.Connection, seq: int | None = None) -> list[RunSummary]:
    base = _baseline_seq(conn)
    rows = conn.execute(
        "SELECT r.seq, r.id, r.finished, r.status, r.exit_code, r.git_commit, r.model_sha256,"
        " r.data_sha256, (SELECT count(*) FROM metrics m WHERE m.run = r.seq), r.accepted"
        " FROM runs r WHERE ? IS NULL OR r.seq = ? ORDER BY r.sort_time, r.seq", (seq, seq)).fetchall()
    return [RunSummary(id=r[1], time=r[2], status=r[3], exit_code=r[4], commit=r[5],
                       model_hash=_short_hash(r[6]), data_hash=_short_hash(r[7]), n_metrics=r[8],
                       accepted=_flag(r[9]), baseline=r[0] == base) for r in rows]


def _short_hash(text: str | None) -> str | None:
    # A sha256 is cut to 12 characters; any other fingerprint (a score-column model's
    # "predictions:p") is shown whole, since its first 12 characters say nothing.
    return text[:12] if text and len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def _seq(conn: sqlite3.Connection, path, run_id: str) -> int:
    row = conn.execute("SELECT seq FROM runs WHERE id = ?", (run_id,)).fetchone()
    if not row:
        raise HistoryError(f"No run {run_id!r} in {str(path)!r}. 'list_runs' shows the run ids.")
    return row[0]


def _record(row: sqlite3.Row) -> dict[str, Any]:
    def pair(lo, hi):
        return None if lo is None and hi is None else [lo, hi]

    rec = {"plugin": row["plugin"], "id": row["metric_id"], "value": row["value"], "n": row["n"],
           "group": None if row["group_json"] is None else json.loads(row["group_json"]),
           "ci": pair(row["ci_low"], row["ci_high"]), "ci_method": row["ci_method"], "level": row["level"],
           "reason": row["reason"], "denominator": row["denominator"], "label": row["label"],
           "reference": row["reference"],
           "reference_group": None if row["reference_group_json"] is None else json.loads(row["reference_group_json"]),
           "p_value": row["p_value"], "p_adjusted": row["p_adjusted"],
           "flags": None if row["flags_json"] is None else json.loads(row["flags_json"]),
           "suppressed": _flag(row["suppressed"]),
           "ci_simultaneous": pair(row["ci_sim_low"], row["ci_sim_high"])}
    if row["extra_json"]:
        rec.update(json.loads(row["extra_json"]))
    return rec


def _records(conn: sqlite3.Connection, seq: int) -> list[dict[str, Any]]:
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT * FROM metrics WHERE run = ? ORDER BY plugin_position, position", (seq,)).fetchall()
    conn.row_factory = None
    return [_record(r) for r in rows]


def metric_records(path: str | os.PathLike, run_id: str) -> list[dict[str, Any]]:
    """Every metric record of one run, in results.json order, each with its ``plugin``.

    Each record has the results.json metric keys (absent optional keys read back as null)
    plus any extra keys it was recorded with; every number is the one recorded, exactly.
    """
    with _transaction(path, write=False) as conn:
        return _records(conn, _seq(conn, path, run_id))


def load_run(path: str | os.PathLike, run_id: str | None = None) -> dict[str, Any]:
    """The results.json of a recorded run (default: the baseline), as recorded.

    Raises
    ------
    HistoryError
        No such run, or no baseline in the history.
    """
    with _transaction(path, write=False) as conn:
        seq = _baseline_seq(conn) if run_id is None else _seq(conn, path, run_id)
        if seq is None:
            raise HistoryError(f"{str(path)!r} has no accepted run to compare with. Record one with accepted=True.")
        blob = conn.execute("SELECT document FROM runs WHERE seq = ?", (seq,)).fetchone()[0]
    return json.loads(zlib.decompress(blob).decode("utf-8"))


def _split(metric_id: str, plugin: str | None) -> tuple[str, str]:
    if plugin is None:
        if "." not in metric_id:
            raise ConfigError(f"Metric {metric_id!r}: name it as plugin.id (e.g. fairness.fnr_gap) or pass plugin=.")
        plugin, metric_id = metric_id.split(".", 1)
    return plugin, metric_id


def metric_series(path: str | os.PathLike, metric_id: str, *, plugin: str | None = None,
                  label: str | None = None, group: dict[str, str] | None = None,
                  reference: str | None = None) -> list[SeriesPoint]:
    """One metric record's values and intervals over the recorded runs, oldest first.

    Parameters
    ----------
    metric_id : str
        ``plugin.id`` (``fairness.fnr_gap``), or a bare id with ``plugin``.
    label, group : optional
        The record's label and group exactly (None: no label; the overall population).
        ``group`` is a dict as in results.json, e.g. ``{"sex": "F"}``.
    reference : str, optional
        ``best``, ``overall`` or ``development`` for gaps; None matches any.

    Returns
    -------
    list of SeriesPoint
        One per run holding the record (value None when undefined or suppressed).

    Raises
    ------
    HistoryError
        The selection matches more than one record of a run (pass ``reference``).
    """
    plugin, name = _split(metric_id, plugin)
    query = ("SELECT r.id, r.finished, r.git_commit, r.accepted, m.plugin, m.metric_id, m.label, m.group_json,"
             " m.reference, m.value, m.ci_low, m.ci_high, m.n, m.suppressed, r.seq FROM metrics m"
             " JOIN runs r ON r.seq = m.run WHERE m.plugin = ? AND m.metric_id = ? AND m.label IS ?"
             " AND m.group_json IS ?")
    args: list[Any] = [plugin, name, label, _canonical(group)]
    if reference is not None:
        query += " AND m.reference = ?"
        args.append(reference)
    with _transaction(path, write=False) as conn:
        rows = conn.execute(query + " ORDER BY r.sort_time, r.seq, m.plugin_position, m.position", args).fetchall()
    runs = [r[-1] for r in rows]
    if len(runs) != len(set(runs)):
        refs = sorted({str(r[8]) for r in rows})
        raise HistoryError(f"{plugin}.{name} matches several records per run (references: {', '.join(refs)}); "
                           "pass reference= to choose one.")
    return [SeriesPoint(run_id=r[0], time=r[1], commit=r[2], accepted=_flag(r[3]), plugin=r[4], metric_id=r[5],
                        label=r[6], group=None if r[7] is None else json.loads(r[7]), reference=r[8],
                        value=r[9], ci_low=r[10], ci_high=r[11], n=r[12], suppressed=bool(r[13]))
            for r in rows]


def last_accepted(path: str | os.PathLike) -> dict[str, Any] | None:
    """The baseline run: the latest accepted one (rule in the module docstring), or None.

    Returns
    -------
    dict or None
        ``{"run": RunSummary, "metrics": [record, ...]}`` with the records of
        :func:`metric_records`; None when no run counts as accepted.
    """
    with _transaction(path, write=False) as conn:
        seq = _baseline_seq(conn)
        if seq is None:
            return None
        return {"run": _summaries(conn, seq)[0], "metrics": _records(conn, seq)}


def baseline_value(path: str | os.PathLike, plugin: str, metric_id: str, label: str | None = None,
                   group: dict[str, str] | None = None, *, reference: str | None = None) -> float | None:
    """The value of one metric record in the baseline run, for gates such as ``<=baseline+0.02``.

    Returns
    -------
    float or None
        None when there is no baseline, the baseline lacks the record, or its value is
        undefined or suppressed (a gate then has nothing to compare with).

    Raises
    ------
    HistoryError
        The selection matches several records (pass ``reference``), or the file is unusable.
    """
    found = last_accepted(path)
    if found is None:
        return None
    matches = [m for m in found["metrics"] if m["plugin"] == plugin and m["id"] == metric_id
               and m["label"] == label and m["group"] == group
               and (reference is None or m["reference"] == reference)]
    if len(matches) > 1:
        raise HistoryError(f"{plugin}.{metric_id} matches {len(matches)} records of the baseline (references: "
                           f"{', '.join(sorted(str(m['reference']) for m in matches))}); pass reference=.")
    return matches[0]["value"] if matches else None


def check_history(path: str | os.PathLike) -> None:
    """Check, before an audit runs, that a run can be recorded in the history at ``path``.

    A missing file is fine when its folder exists and can be written (the first
    :func:`append_run` creates it); an existing file must be a history of ours of a schema
    this version reads. Nothing is written.

    Raises
    ------
    HistoryError
        The folder is missing or not writable, or the file is not ours, newer or damaged.
    """
    p = Path(path)
    new = _sniff(p, create=True)
    folder = p.parent if str(p.parent) else Path(".")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise HistoryError(f"Cannot record runs in the audit history {str(p)!r}: "
                           f"{'the file' if p.exists() else 'its folder'} is not writable.")
    if not new:
        with _transaction(p, write=False):
            pass


def resolve_baselines(path: str | os.PathLike, gates: tuple[GateSpec, ...]) -> tuple[GateSpec, ...]:
    """Attach the baseline run's records to every baseline gate (``<=baseline+0.02``).

    The baseline is :func:`last_accepted`; a history that does not exist yet, or has no run
    that counts as accepted, gives each baseline gate a :class:`~audit.core.config.Baseline`
    without a run, which makes the gate INCONCLUSIVE (see :mod:`audit.core.gates`). Other
    gates are returned as they are.

    Raises
    ------
    HistoryError
        The file is not a history of ours, is newer, locked or damaged.
    """
    if not any(g.baseline for g in gates):
        return tuple(gates)
    p = Path(path)
    found = None if _sniff(p, create=True) else last_accepted(p)
    out = []
    for g in gates:
        if not g.baseline:
            out.append(g)
            continue
        if found is None:
            out.append(replace(g, baseline_run=Baseline(history=p.name, run_id=None)))
            continue
        records = tuple(
            BaselineRecord(label=m["label"], group=None if m["group"] is None else tuple(sorted(m["group"].items())),
                           reference=m["reference"], value=m["value"], feature=m.get("feature"),
                           perturbation=m.get("perturbation"), severity=m.get("severity"),
                           reason=None if m["value"] is not None else
                           "suppressed" if m["suppressed"] else (m["reason"] or "undefined"))
            for m in found["metrics"] if m["plugin"] == g.plugin and m["id"] == g.metric)
        out.append(replace(g, baseline_run=Baseline(history=p.name, run_id=found["run"].id, records=records)))
    return tuple(out)


# -- the trend chart ----------------------------------------------------------------------

def _title(series: list[SeriesPoint]) -> str:
    p = series[0]
    where = ", ".join(f"{k}={v}" for k, v in p.group.items()) if p.group else "overall"
    extra = "".join(f", {x}" for x in (p.label and f"label {p.label}", p.reference and f"vs {p.reference}") if x)
    return f"{p.plugin}.{p.metric_id} ({where}{extra})"


def _svg(series: list[SeriesPoint], title: str) -> str:
    w, h, left, right, top, bottom = 720, 320, 70, 20, 30, 60
    shown = [p for p in series if p.value is not None]
    ys = [y for p in shown for y in (p.value, p.ci_low, p.ci_high) if y is not None]
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 0.5
    lo, hi = lo - pad, hi + pad
    n = len(series)

    def x(i: int) -> float:
        return left + (w - left - right) * (0.5 if n == 1 else i / (n - 1))

    def y(v: float) -> float:
        return top + (h - top - bottom) * (hi - v) / (hi - lo)

    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             f'role="img" aria-label="{e(title)}" font-family="sans-serif" font-size="11">',
             f"<title>{e(title)}</title>",
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#444"/>',
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#444"/>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        parts.append(f'<line x1="{left - 4}" y1="{y(v):.1f}" x2="{w - right}" y2="{y(v):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    step = max(1, math.ceil(n / 10))
    for i, p in enumerate(series):
        if i % step == 0 or i == n - 1:
            stamp = e((p.time or p.run_id)[:10])
            parts.append(f'<text x="{x(i):.1f}" y="{h - bottom + 16}" text-anchor="middle">{stamp}</text>')
        if p.value is None:
            why = "suppressed" if p.suppressed else "undefined"
            parts.append(f'<text x="{x(i):.1f}" y="{h - bottom - 6}" text-anchor="middle" fill="#999">'
                         f"<title>{e(p.time or '')} {e(p.run_id)}: {why}</title>–</text>")
            continue
        if p.ci_low is not None and p.ci_high is not None:
            parts.append(f'<line x1="{x(i):.1f}" y1="{y(p.ci_low):.1f}" x2="{x(i):.1f}" y2="{y(p.ci_high):.1f}" '
                         'stroke="#1f5fa8" stroke-width="2"/>')
            for end in (p.ci_low, p.ci_high):
                parts.append(f'<line x1="{x(i) - 5:.1f}" y1="{y(end):.1f}" x2="{x(i) + 5:.1f}" y2="{y(end):.1f}" '
                             'stroke="#1f5fa8" stroke-width="2"/>')
        interval = f" [{p.ci_low:.4g}, {p.ci_high:.4g}]" if p.ci_low is not None and p.ci_high is not None else ""
        fill = "#1f5fa8" if p.accepted else "#fff"
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="5" fill="{fill}" stroke="#1f5fa8" '
                     f'stroke-width="2"><title>{e(p.time or "")} {e(p.run_id)}: {p.value:.4g}{interval}'
                     f"{' (accepted)' if p.accepted else ''}</title></circle>")
    parts.append(f'<text x="{left}" y="{h - 14}" fill="#555">Filled: accepted run. Bars: interval (ci). '
                 "–: no published value.</text></svg>")
    return "\n".join(parts)


def _html(series: list[SeriesPoint], title: str) -> str:
    e = html.escape
    rows = "\n".join(
        f"<tr><td>{e(p.time or '')}</td><td>{e(p.run_id)}</td><td>{e(p.commit or '')}</td>"
        f"<td>{'—' if p.value is None else f'{p.value:.6g}'}</td>"
        f"<td>{'' if p.ci_low is None or p.ci_high is None else f'[{p.ci_low:.6g}, {p.ci_high:.6g}]'}</td>"
        f"<td>{'' if p.n is None else p.n}</td>"
        f"<td>{'yes' if p.accepted else 'no' if p.accepted is False else ''}</td></tr>" for p in series)
    # The CSP forbids scripts and every network fetch, whatever a string in the data says.
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
            f"<title>{e(title)}</title>\n<style>body{{font-family:sans-serif;margin:2em}}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style>\n"
            f"</head><body>\n<h1>{e(title)}</h1>\n{_svg(series, title)}\n"
            "<table><thead><tr><th>finished</th><th>run</th><th>commit</th><th>value</th><th>interval</th>"
            f"<th>n</th><th>accepted</th></tr></thead><tbody>\n{rows}\n</tbody></table>\n</body></html>\n")


def _png(series: list[SeriesPoint], title: str, out: Path) -> None:
    # The object-oriented API without pyplot: no global figure state, no GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = list(range(len(series)))
    for i, p in zip(xs, series, strict=True):
        if p.value is None:
            continue
        err = None
        if p.ci_low is not None and p.ci_high is not None:
            err = [[p.value - p.ci_low], [p.ci_high - p.value]]
        ax.errorbar([i], [p.value], yerr=err, fmt="o", color="#1f5fa8", capsize=4,
                    markerfacecolor="#1f5fa8" if p.accepted else "white")
    ax.set_xticks(xs, [(p.time or p.run_id)[:10] for p in series], rotation=30, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", color="#ddd")
    fig.tight_layout()
    fig.savefig(out, format="png")


def render_trend(series: list[SeriesPoint], out_path: str | os.PathLike) -> Path:
    """Draw one metric over the runs, with its intervals, to ``.html``, ``.svg`` or ``.png``.

    HTML and SVG are self-contained (inline SVG, no script, nothing fetched; every string
    escaped); PNG uses matplotlib. Accepted runs are filled; runs without a published value
    (undefined or suppressed) are marked on the axis.

    Parameters
    ----------
    series : list of SeriesPoint
        What :func:`metric_series` returned (one metric record).
    out_path : str or path-like
        The file to write; its suffix chooses the format.

    Returns
    -------
    Path
        ``out_path``.
    """
    out = Path(out_path)
    if not series:
        raise InputError("No values to draw: the history holds no run with this metric record.")
    if len({(p.plugin, p.metric_id, p.label, _canonical(p.group), p.reference) for p in series}) > 1:
        raise InputError("A trend is drawn for one metric record: the series mixes several.")
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".svg", ".png"):
        raise ConfigError(f"Trend file {str(out)!r}: the name must end in .html, .svg or .png.")
    if not out.parent.is_dir():
        raise InputError(f"Cannot write {str(out)!r}: the folder {str(out.parent)!r} does not exist.")
    title = _title(series)
    try:
        if suffix == ".png":
            _png(series, title, out)
        else:
            text = _svg(series, title) + "\n" if suffix == ".svg" else _html(series, title)
            out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot write {str(out)!r} ({exc.strerror or exc}).") from None
    return out
