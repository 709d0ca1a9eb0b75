"""Report sets: one run's files swapped into --out at once, the preflight check of --out, and
the cleanup of what a killed run leaves behind."""

from __future__ import annotations

import errno
import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.errors import AuditError, ConfigError
from audit.report import check_output_folder, files, report_set, write_reports

from .factories import make_result

FAST = ("json", "junit", "md")
NO_PDF = tuple(f for f in files.FORMATS if f not in ("pdf", "technical_pdf"))


def run_result(started: str):
    """A result whose provenance (and so whose run) is told apart by ``started``."""
    base = make_result()
    return replace(base, provenance={**base.provenance, "started": started})


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def marker(out: Path) -> dict:
    return json.loads((out / files.MARKER).read_text(encoding="utf-8"))


def test_second_run_with_fewer_formats_leaves_only_its_files(tmp_path):
    out = tmp_path / "audit"
    write_reports(run_result("2024-05-01T10:00:00+00:00"), out, NO_PDF)
    written = write_reports(run_result("2024-05-02T10:00:00+00:00"), out, ["json"])
    assert sorted(p.name for p in out.iterdir()) == [files.MARKER, "results.json"]
    assert written == {"json": out / "results.json"}
    assert json.loads((out / "results.json").read_text())["provenance"]["started"].startswith("2024-05-02")
    assert marker(out)["started"].startswith("2024-05-02") and marker(out)["formats"] == ["json"]
    assert leftovers(out) == []


def test_a_failure_between_writes_keeps_the_previous_set(tmp_path, monkeypatch):
    out = tmp_path / "audit"
    write_reports(run_result("2024-05-01T10:00:00+00:00"), out, FAST)
    before = snapshot(out)
    real = report_set._write_file
    calls = []

    def full_after_one(path, data):
        calls.append(path.name)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(report_set, "_write_file", full_after_one)
    with pytest.raises(AuditError, match=r"Cannot write the reports to '.*audit': No space left on device \[ENOSPC\]") as info:
        write_reports(run_result("2024-05-02T10:00:00+00:00"), out, NO_PDF)
    assert info.value.exit_code == 4 and isinstance(info.value, ConfigError)
    assert len(calls) == 2
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_a_failing_swap_keeps_the_previous_set(tmp_path, monkeypatch):
    out = tmp_path / "audit"
    write_reports(run_result("2024-05-01T10:00:00+00:00"), out, FAST)
    before = snapshot(out)

    def busy(a, b):
        raise OSError(errno.EBUSY, "Device or resource busy", str(b))

    monkeypatch.setattr(report_set, "_exchange", busy)
    with pytest.raises(ConfigError, match=r"Device or resource busy \[EBUSY\]"):
        write_reports(run_result("2024-05-02T10:00:00+00:00"), out, ["json"])
    assert snapshot(out) == before and leftovers(out) == []


def _fail_renames(monkeypatch, exc, *, from_call):
    """os.rename raises ``exc`` from its ``from_call``-th call on (1-based)."""
    real = os.rename
    calls = []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) >= from_call:
            raise exc
        real(src, dst)

    monkeypatch.setattr(report_set, "_exchange", lambda a, b: False)  # the two-rename fallback
    monkeypatch.setattr(report_set.os, "rename", rename)
    return calls


def test_interrupt_between_the_two_renames_puts_the_previous_set_back(tmp_path, monkeypatch):
    out = tmp_path / "audit"
    write_reports(run_result("2024-05-01T10:00:00+00:00"), out, FAST)
    before = snapshot(out)
    real = os.rename
    calls = []

    def rename(src, dst):
        calls.append(Path(dst).name)
        if len(calls) == 2:  # staging -> out
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(report_set, "_exchange", lambda a, b: False)
    monkeypatch.setattr(report_set.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        write_reports(run_result("2024-05-02T10:00:00+00:00"), out, ["json"])
    assert calls[0].startswith(".audit.old-") and calls[1] == "audit" and calls[2] == "audit"
    assert snapshot(out) == before and leftovers(out) == []


@pytest.mark.parametrize("kill", [SystemExit(137), KeyboardInterrupt()])
def test_a_run_killed_between_the_renames_is_cleaned_up_by_the_next(tmp_path, monkeypatch, kill):
    out = tmp_path / "audit"
    write_reports(run_result("2024-05-01T10:00:00+00:00"), out, NO_PDF)
    with monkeypatch.context() as m:
        # Killed: the second rename never happens, and no cleanup runs after it.
        calls = _fail_renames(m, kill, from_call=2)
        m.setattr(report_set, "_discard", lambda path: None)
        with pytest.raises(type(kill)):
            write_reports(run_result("2024-05-02T10:00:00+00:00"), out, ["json"])
    assert len(calls) == 3  # out -> old, staging -> out (killed), old -> out (killed)
    assert not out.exists()
    assert [n.split("-")[0] for n in leftovers(out)] == [".audit.old", ".audit.staging"]
    write_reports(run_result("2024-05-03T10:00:00+00:00"), out, ["md", "json"])
    assert sorted(p.name for p in out.iterdir()) == [files.MARKER, "results.json", "summary.md"]
    assert marker(out)["started"].startswith("2024-05-03")
    assert leftovers(out) == []


def test_preflight_removes_leftovers_of_a_killed_run(tmp_path):
    out = tmp_path / "audit"
    write_reports(run_result("2024-05-01T10:00:00+00:00"), out, FAST)
    before = snapshot(out)
    (out / f".report.html.{'ab12' * 8}.tmp").write_text("half a report")
    (out / ".results.json.0f.tmp").write_text("{")
    staging = tmp_path / ".audit.staging-x"
    staging.mkdir()
    (staging / "report.html").write_text("half")
    old = tmp_path / ".audit.old-y"
    old.mkdir()
    (old / "results.json").write_text("{}")
    (old / files.MARKER).write_text("{}")
    other = tmp_path / ".other.staging-z"  # another folder's leftovers are not ours to touch
    other.mkdir()
    check_output_folder(out)
    assert snapshot(out) == before
    assert leftovers(out) == [] and other.exists()


def test_preflight_keeps_a_leftover_that_holds_a_users_file(tmp_path):
    staging = tmp_path / ".audit.staging-x"
    staging.mkdir()
    (staging / "thesis.docx").write_text("mine")
    check_output_folder(tmp_path / "audit")
    assert (staging / "thesis.docx").read_text() == "mine"


def test_a_folder_with_a_users_file_is_refused_and_kept(tmp_path):
    out = tmp_path / "audit"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "results.json").write_text("{}")
    (out / "figures").mkdir()
    message = (r"--out / report.out '.*audit' holds files that are not future-audit reports "
               r"\(figures, notes.txt\).*Choose an empty or new folder for --out / report.out")
    with pytest.raises(ConfigError, match=message):
        check_output_folder(out)
    with pytest.raises(ConfigError, match=message):
        write_reports(run_result("2024-05-01T10:00:00+00:00"), out, ["json"])
    assert (out / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in out.iterdir()) == ["figures", "notes.txt", "results.json"]
    assert leftovers(out) == []


def test_the_refusal_names_the_first_few_entries(tmp_path):
    for i in range(8):
        (tmp_path / f"f{i}.csv").write_text("x")
    with pytest.raises(ConfigError, match=r"\(f0.csv, f1.csv, f2.csv, f3.csv, f4.csv and 3 more\)"):
        check_output_folder(tmp_path)


def test_a_set_of_an_older_version_without_marker_is_replaced(tmp_path):
    out = tmp_path / "audit"
    out.mkdir()
    for name in ("report.html", "junit.xml", "results.json"):
        (out / name).write_text("old run")
    write_reports(run_result("2024-05-01T10:00:00+00:00"), out, ["md"])
    assert sorted(p.name for p in out.iterdir()) == [files.MARKER, "summary.md"]


def test_a_symlink_is_refused(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        write_reports(run_result("2024-05-01T10:00:00+00:00"), tmp_path / "link", ["json"])
    assert list(target.iterdir()) == []


def test_preflight_refuses_a_file_and_a_path_under_a_file(tmp_path):
    (tmp_path / "report.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"'.*report.txt' is a file, not a folder"):
        check_output_folder(tmp_path / "report.txt")
    with pytest.raises(ConfigError, match=r"cannot be created: '.*report.txt' is a file, not a folder"):
        check_output_folder(tmp_path / "report.txt" / "sub" / "out")
    assert (tmp_path / "report.txt").read_text() == "x"


def test_preflight_creates_nothing(tmp_path):
    check_output_folder(tmp_path / "a" / "b" / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_preflight_refuses_a_read_only_parent(tmp_path, monkeypatch):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        if os.access(parent, os.W_OK):  # root writes anyway: simulate what a user would see
            monkeypatch.setattr(report_set.os, "access", lambda path, mode: False)
        with pytest.raises(ConfigError, match=r"'.*ro' is not writable \(Permission denied"):
            check_output_folder(parent / "out")
        with pytest.raises(ConfigError, match="is not writable"):
            check_output_folder(parent / "new" / "deeper" / "out")  # nearest existing ancestor
    finally:
        parent.chmod(0o755)
    assert list(parent.iterdir()) == []


@pytest.mark.parametrize(("code", "reason"), [(errno.EROFS, "Read-only file system"),
                                              (errno.ENOSPC, "No space left on device")])
def test_preflight_gives_the_os_reason(tmp_path, monkeypatch, code, reason):
    real = os.open

    def probe_fails(path, *args, **kwargs):
        if Path(path).name.startswith(".future-audit-probe-"):
            raise OSError(code, reason, str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(report_set.os, "open", probe_fails)
    with pytest.raises(ConfigError, match=rf"is not writable \({reason} \[{errno.errorcode[code]}\]\)"):
        check_output_folder(tmp_path / "out")


@pytest.mark.skipif(report_set._renameat2() is None, reason="renameat2 is Linux (glibc >= 2.28) only")
def test_on_linux_the_folders_are_exchanged(tmp_path, monkeypatch):
    out = tmp_path / "audit"
    write_reports(run_result("2024-05-01T10:00:00+00:00"), out, FAST)
    out.chmod(0o750)
    renames = []
    real = os.rename
    monkeypatch.setattr(report_set.os, "rename", lambda a, b: (renames.append(b), real(a, b)))
    write_reports(run_result("2024-05-02T10:00:00+00:00"), out, ["json"])
    assert renames == []  # one renameat2(RENAME_EXCHANGE), no window without an out folder
    assert sorted(p.name for p in out.iterdir()) == [files.MARKER, "results.json"]
    assert out.stat().st_mode & 0o777 == 0o750  # the folder keeps its permissions
    assert leftovers(out) == []


def test_exchange_falls_back_where_unsupported(tmp_path, monkeypatch):
    class NoRenameat2:
        def __call__(self, *args):
            import ctypes

            ctypes.set_errno(errno.ENOSYS)
            return -1

    monkeypatch.setattr(report_set, "_renameat2", lambda: NoRenameat2())
    out = tmp_path / "audit"
    write_reports(run_result("2024-05-01T10:00:00+00:00"), out, FAST)
    write_reports(run_result("2024-05-02T10:00:00+00:00"), out, ["md"])
    assert sorted(p.name for p in out.iterdir()) == [files.MARKER, "summary.md"]
    assert leftovers(out) == []


def test_rerendering_the_same_run_keeps_its_other_files(tmp_path):
    # `future-audit report out/results.json --format html` writes next to results.json.
    out = tmp_path / "audit"
    first = run_result("2024-05-01T10:00:00+00:00")
    write_reports(first, out, ["json", "junit"])
    json_before = (out / "results.json").read_bytes()
    write_reports(files.load_result(out / "results.json"), out, ["md"])
    assert sorted(p.name for p in out.iterdir()) == [files.MARKER, "junit.xml", "results.json", "summary.md"]
    assert (out / "results.json").read_bytes() == json_before
    assert marker(out)["formats"] == ["json", "junit", "md"]
    # An older version's folder (no marker) of the same run is recognised by its results.json.
    (out / files.MARKER).unlink()
    write_reports(first, out, ["model_card"])
    assert sorted(p.name for p in out.iterdir()) == [
        files.MARKER, "junit.xml", "model_card.md", "results.json", "summary.md"]


# --- any sequence of runs, any failures: the folder holds exactly one run's set ------------

FAILURES = st.one_of(
    st.none(),
    st.tuples(st.just("write"), st.integers(0, 6), st.sampled_from(["enospc", "interrupt"])),
    st.tuples(st.just("rename"), st.integers(1, 2), st.sampled_from(["eio", "interrupt"])),
)
RUNS = st.lists(
    st.tuples(st.sets(st.sampled_from(NO_PDF), min_size=1), FAILURES, st.booleans()),
    min_size=1, max_size=5,
)


def _fake(fmt):
    return lambda result: f"{fmt} of run {result.provenance['started']}"


def _raise(kind):
    if kind == "interrupt":
        raise KeyboardInterrupt
    raise OSError(errno.ENOSPC if kind == "enospc" else errno.EIO, kind)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=RUNS)
def test_the_folder_always_holds_exactly_one_runs_set(runs):
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as m:
        out = Path(tmp) / "audit"
        for fmt in ("html", "technical", "junit", "md", "model_card"):
            m.setitem(files.RENDERERS, fmt, _fake(fmt))
        real_write, real_rename, real_exchange = report_set._write_file, os.rename, report_set._exchange
        state = {"writes": 0, "renames": 0, "fail": None, "fallback": False}

        def write(path, data):
            fail = state["fail"]
            if fail and fail[0] == "write" and state["writes"] == fail[1]:
                _raise(fail[2])
            state["writes"] += 1
            real_write(path, data)

        def rename(src, dst):
            state["renames"] += 1
            fail = state["fail"]
            if fail and fail[0] == "rename" and state["renames"] == fail[1]:
                _raise(fail[2])
            real_rename(src, dst)

        m.setattr(report_set, "_write_file", write)
        m.setattr(report_set.os, "rename", rename)
        m.setattr(report_set, "_exchange", lambda a, b: False if state["fallback"] else real_exchange(a, b))
        expected = None
        for i, (formats, fail, fallback) in enumerate(runs):
            started = f"2024-05-01T10:00:{i:02d}+00:00"
            state.update(writes=0, renames=0, fail=fail, fallback=fallback)
            try:
                write_reports(run_result(started), out, sorted(formats))
            except ConfigError:
                assert fail is not None and fail[2] != "interrupt"
            except KeyboardInterrupt:
                assert fail is not None and fail[2] == "interrupt"
            else:
                expected = (formats, started)
            if expected is None:
                assert not out.exists()
            else:
                want, when = expected
                names = {files.FILE_NAMES[f] for f in want}
                assert {p.name for p in out.iterdir()} == names | {files.MARKER}
                assert marker(out)["started"] == when and set(marker(out)["formats"]) == want
                for fmt in want:
                    text = (out / files.FILE_NAMES[fmt]).read_text(encoding="utf-8")
                    if fmt == "json":
                        assert json.loads(text)["provenance"]["started"] == when
                    else:
                        assert text == f"{fmt} of run {when}"
            assert leftovers(out) == []
