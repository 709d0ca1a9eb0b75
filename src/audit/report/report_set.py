"""Report sets: the folder ``--out`` holds the files of exactly one run, swapped in at once.

A report set is a folder holding the files of one run and a marker, ``.future-audit-run``.
A run writes its set into a hidden staging folder beside ``--out`` and then swaps the two
folders, so readers see the whole previous set or the whole new one, never a mix, and files
of an earlier run never survive beside the new ones. A folder holding anything else is never
replaced.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import uuid
from collections.abc import Callable, Iterable
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import Any

from audit.errors import ConfigError

FILE_NAMES = {
    "html": "report.html",  # the board edition
    "json": "results.json",
    "junit": "junit.xml",
    "md": "summary.md",
    "pdf": "report.pdf",  # the board edition, printed
    "model_card": "model_card.md",
    "technical": "technical-report.html",  # every finding, table and setting
    "technical_pdf": "technical-report.pdf",
}
FORMATS = tuple(FILE_NAMES)
# Marks a folder as a report set and says which run wrote it (JSON).
MARKER = ".future-audit-run"
_OURS = frozenset(FILE_NAMES.values()) | {MARKER}
# What write_atomic leaves behind when it is killed between open and rename.
_TMP = re.compile(r"\.(?:%s)\.[0-9a-f]+\.tmp" % "|".join(re.escape(n) for n in sorted(_OURS)))
# <linux/fcntl.h> and <linux/fs.h>
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def write_set(out_dir: str | os.PathLike, files: dict[str, str | bytes], provenance: dict[str, Any]) -> Path:
    """Write ``files`` (name → content) as the report set at ``out_dir``, replacing the old one.

    Files already in ``out_dir`` from the same run (the same provenance: ``future-audit
    report`` re-rendering next to results.json) are carried into the new set.

    Returns
    -------
    Path
        The absolute path of the folder.

    Raises
    ------
    ConfigError
        ``out_dir`` cannot be used (see :func:`check_output_folder`), or writing failed: the
        previous set is left as it was and the staging folder removed.
    """
    out = _absolute(out_dir)
    # Checked after rendering (which can take seconds), right before the folder is replaced.
    check_output_folder(out)
    run = _run_id(provenance)
    data = {name: text.encode("utf-8") if isinstance(text, str) else text for name, text in files.items()}
    carried = _same_run_files(out, run, exclude=data)
    set_formats = [fmt for fmt, name in FILE_NAMES.items() if name in data or name in carried]
    data[MARKER] = json.dumps({
        "tool": "future-audit",
        "run": run,
        "started": provenance.get("started"),
        "formats": set_formats,
    }, indent=2).encode("utf-8")
    try:
        staging = _stage(out, data, carried)
        _swap(staging, out)
    except OSError as exc:
        raise ConfigError(
            f"Cannot write the reports to {str(out)!r}: {_reason(exc)}. The reports already there, if "
            "any, were left as they were. Free some space or choose a writable folder for "
            "--out / report.out."
        ) from None
    return out


def check_output_folder(out: str | os.PathLike) -> None:
    """Check, before any work, that a report set can be written to ``out``.

    Nothing is created (``out`` and missing parents are made only when the reports are
    written); leftovers of a killed run are removed: ``.<name>.staging-*`` and
    ``.<name>.old-*`` folders beside ``out`` and ``.<file>.<hex>.tmp`` files inside it.

    Parameters
    ----------
    out : path
        The folder ``--out`` / ``report.out`` names; it may not exist yet.

    Raises
    ------
    ConfigError
        ``out`` is a file, a symbolic link or a mount point; one of its parents is a file;
        the folder it would be created in cannot be written (the OS reason is given:
        permission denied, read-only file system, no space left); or ``out`` holds files that
        are not future-audit reports (a run replaces the whole folder, so it is refused).
    """
    out = _absolute(out)
    where = f"--out / report.out {str(out)!r}"
    if out.name in ("", ".", ".."):
        raise ConfigError(f"{where} cannot hold a report set; name a folder such as reports/audit.")
    if os.path.islink(out):
        raise ConfigError(f"{where} is a symbolic link; a run replaces the whole folder, so name "
                          "the folder itself (or a new one) instead.")
    if os.path.lexists(out) and not os.path.isdir(out):
        raise ConfigError(f"{where} is a file, not a folder; choose an empty or new folder.")
    ancestor = next(p for p in out.parents if os.path.lexists(p))
    if not os.path.isdir(ancestor):
        raise ConfigError(f"{where} cannot be created: {str(ancestor)!r} is a file, not a folder.")
    if os.path.isdir(out) and os.path.ismount(out):
        raise ConfigError(f"{where} is a mount point, which a run cannot replace as a whole; "
                          f"choose a folder inside it, e.g. {str(out / 'audit')!r}.")
    reason = _not_writable(ancestor)
    if reason:
        raise ConfigError(f"{where} cannot be written: {str(ancestor)!r} is not writable ({reason}). "
                          "Choose a writable folder.")
    if os.path.isdir(out):
        foreign = _foreign_entries(out)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise ConfigError(
                f"{where} holds files that are not future-audit reports ({shown}); a run replaces "
                "the whole folder, so it is not used. Choose an empty or new folder for "
                "--out / report.out."
            )
    _clean_leftovers(out)


def _absolute(path: str | os.PathLike) -> Path:
    # abspath, not resolve: a symbolic link at ``out`` must stay visible to be refused.
    return Path(os.path.abspath(os.fspath(path)))


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text} [{errno.errorcode[exc.errno]}]" if exc.errno in errno.errorcode else text


def _not_writable(folder: Path) -> str | None:
    """The OS reason why files cannot be made in ``folder``, or None if they can."""
    # os.access alone is not enough: it says yes to root on a full disk, and to anyone where
    # ACLs or a read-only bind mount decide; a small file written and fsynced finds out.
    probe = folder / f".future-audit-probe-{uuid.uuid4().hex}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0" * 1024)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        return _reason(exc)
    finally:
        with suppress(OSError):
            os.unlink(probe)
    if not os.access(folder, os.W_OK | os.X_OK):
        return "Permission denied"
    return None


def _is_ours(entry: os.DirEntry) -> bool:
    return entry.is_file(follow_symlinks=False) and (entry.name in _OURS or _TMP.fullmatch(entry.name) is not None)


def _foreign_entries(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if not _is_ours(e))
    except OSError as exc:
        raise ConfigError(f"--out / report.out {str(folder)!r} cannot be read ({_reason(exc)}).") from None


def _clean_leftovers(out: Path) -> None:
    """Remove what a killed run left: staging and old sets beside ``out``, temp files in it."""
    leftover = re.compile(rf"\.{re.escape(out.name)}\.(?:staging|old)-.+")
    with suppress(OSError):
        with os.scandir(out.parent) as entries:
            found = [Path(e.path) for e in entries if leftover.fullmatch(e.name)]
        for path in found:
            _discard(path)
    with suppress(OSError):
        with os.scandir(out) as entries:
            tmp = [e.path for e in entries if _TMP.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
        for path in tmp:
            os.unlink(path)


def _discard(path: Path) -> None:
    """Best-effort removal of a folder this module made; a folder holding anything else is kept."""
    # Cleanup often runs on the way out of an error: a failure here must not replace that one.
    try:
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)
        elif not _foreign_entries(path):
            shutil.rmtree(path)
    except Exception:  # OSError, or ConfigError from a folder that cannot be read
        pass


def _run_id(provenance: dict) -> str:
    """Identifies a run: re-rendering from its results.json gives the same id."""
    text = json.dumps(provenance, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _same_run_files(out: Path, run: str, exclude: Iterable[str]) -> list[str]:
    """Report files in ``out`` that the same run wrote earlier and this write does not replace."""
    if not os.path.isdir(out):
        return []
    try:
        marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
        same = isinstance(marker, dict) and marker.get("run") == run
    except (OSError, ValueError):
        # Older versions wrote no marker: results.json says which run the folder holds.
        try:
            data = json.loads((out / FILE_NAMES["json"]).read_text(encoding="utf-8"))
            same = isinstance(data, dict) and _run_id(data.get("provenance")) == run
        except (OSError, ValueError):
            same = False
    skip = set(exclude)
    return sorted(n for n in FILE_NAMES.values() if same and n not in skip and (out / n).is_file())


def _write_file(path: Path, data: bytes) -> None:
    # O_EXCL + 0o666 gives a fresh file with the user's umask (tempfile would make it 0600).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    # Makes the names durable, not only the contents; not possible on every platform.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stage(out: Path, files: dict[str, bytes], carried: list[str]) -> Path:
    """Write the new set into a fresh hidden folder beside ``out``; removed again on any error."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{uuid.uuid4().hex}"
    os.mkdir(staging)
    try:
        if os.path.isdir(out):  # the new folder replaces the old one: keep its permissions
            os.chmod(staging, stat.S_IMODE(os.stat(out).st_mode))
        for name in carried:
            try:
                os.link(out / name, staging / name)
            except OSError:
                shutil.copy2(out / name, staging / name)
        for name, data in files.items():
            _write_file(staging / name, data)
        _fsync_dir(staging)
    except BaseException:
        _discard(staging)
        raise
    return staging


def _swap(staging: Path, out: Path) -> None:
    """Put the staged set at ``out`` in one step; on any error ``out`` is as it was."""
    try:
        if not os.path.lexists(out):
            os.rename(staging, out)
        elif _exchange(staging, out):
            _discard(staging)  # now the previous set
        else:
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex}"
            os.rename(out, old)
            try:
                os.rename(staging, out)
            except BaseException:
                with suppress(OSError):  # put the previous set back
                    os.rename(old, out)
                raise
            _discard(old)
    except BaseException:
        if os.path.lexists(staging):
            _discard(staging)
        raise
    _fsync_dir(out.parent)


@cache
def _renameat2() -> Callable | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the system or file system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))
