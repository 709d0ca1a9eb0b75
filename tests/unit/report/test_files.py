from __future__ import annotations

import errno
import json
import os
import sys
from dataclasses import replace

import pytest

from audit.core.results import AuditResult
from audit.errors import ConfigError, InputError, MissingExtraError
from audit.report import (
    load_result,
    render_html,
    render_json,
    render_junit,
    render_markdown,
    write_atomic,
    write_reports,
)
from audit.report import files, report_set

ALL = {"html": "report.html", "technical": "technical-report.html", "json": "results.json", "junit": "junit.xml",
       "md": "summary.md"}


def test_writes_exactly_the_requested_files(tmp_path, result):
    out = tmp_path / "a" / "b"
    written = write_reports(result, out, ["html", "technical", "json", "junit", "md"])
    assert {k: p.name for k, p in written.items()} == ALL
    # No temp files left, and the marker that makes the folder a report set.
    assert sorted(p.name for p in out.iterdir()) == sorted([*ALL.values(), files.MARKER])
    assert not list(out.parent.glob(f".{out.name}.*"))  # no staging folder either
    assert (out / "report.html").read_text(encoding="utf-8") == render_html(result, edition="board")
    assert (out / "technical-report.html").read_text(encoding="utf-8") == render_html(result, edition="technical")
    assert (out / "summary.md").read_text(encoding="utf-8") == render_markdown(result)
    assert (out / "junit.xml").read_text(encoding="utf-8") == render_junit(result)
    assert (out / "results.json").read_text(encoding="utf-8") == render_json(result)


def test_only_requested_formats(tmp_path, result):
    written = write_reports(result, tmp_path, ("JUnit", "md", "md"))
    assert list(written) == ["junit", "md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [files.MARKER, "junit.xml", "summary.md"]


def test_unknown_format_is_a_config_error(tmp_path, result):
    with pytest.raises(ConfigError, match=r"Unknown report format\(s\) 'docx'.*html, json, junit, md, pdf"):
        write_reports(result, tmp_path / "out", ["html", "docx"])
    assert not (tmp_path / "out").exists()


def test_a_failing_renderer_leaves_nothing_behind(tmp_path, result, monkeypatch):
    def boom(_):
        raise RuntimeError("renderer broke")

    monkeypatch.setitem(files.RENDERERS, "junit", boom)
    with pytest.raises(RuntimeError, match="renderer broke"):
        write_reports(result, tmp_path / "out", ["html", "json", "junit"])
    assert not (tmp_path / "out").exists()


def test_a_failing_write_keeps_the_old_file_and_no_temp(tmp_path, result, monkeypatch):
    (tmp_path / "summary.md").write_text("old", encoding="utf-8")

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report_set, "_write_file", disk_full)
    with pytest.raises(ConfigError, match="No space left on device"):
        write_reports(result, tmp_path, ["md"])
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"]
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == "old"
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.*"))


def test_files_are_not_private_to_the_writer(tmp_path, result):
    path = write_reports(result, tmp_path, ["json"])["json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_rerendering_from_json_is_byte_identical(result):
    again = AuditResult.from_json(render_json(result))
    assert again == result
    for edition in ("board", "technical"):
        assert render_html(again, edition=edition) == render_html(result, edition=edition)
    assert render_markdown(again) == render_markdown(result)
    assert render_junit(again) == render_junit(result)


def test_json_keeps_suppressed_values(result):
    data = json.loads(render_json(result))
    x = [m for m in data["plugins"][0]["metrics"] if m["group"] == {"sex": "X"} and m["id"] == "fnr"]
    assert x == [dict(x[0], value=0.123456, n=7, suppressed=True)]
    assert x[0]["ci"] == [0.0111, 0.5999]


def test_load_result_round_trip(tmp_path, result):
    path = write_reports(result, tmp_path, ["json"])["json"]
    assert load_result(path) == result
    assert load_result(str(path)) == result


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"'.*missing\.json' not found"),
        ("{not json", r"'.*missing\.json' is not valid JSON \(line 1, column 2"),
        ("[1, 2]", r"'.*missing\.json' is not a future-audit results file: expected a JSON object"),
        ('{"a": 1}', r"is not a future-audit results file"),
        ('{"plugins": [], "schema_version": "2.0"}', r"schema version '2\.0'; this future-audit reads version 1\.x"),
        ('{"plugins": [{"plugin": "x"}], "schema_version": "1.0"}', r"'.*missing\.json' is not a valid"),
        ('{"plugins": [], "status": "OK", "schema_version": "1.0"}', r"is not a valid future-audit results file"),
    ],
)
def test_load_result_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "missing.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_result(path)
    assert "\n" not in str(info.value)


def test_load_result_on_a_directory_or_binary(tmp_path):
    with pytest.raises(InputError, match="cannot be read"):
        load_result(tmp_path)
    (tmp_path / "r.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="cannot be read"):
        load_result(tmp_path / "r.json")


def test_pdf_is_the_printed_html(tmp_path, result):
    pytest.importorskip("weasyprint")
    written = write_reports(result, tmp_path, ["pdf", "technical_pdf"])
    assert written["pdf"].name == "report.pdf"
    assert written["technical_pdf"].name == "technical-report.pdf"
    assert all(p.read_bytes().startswith(b"%PDF") for p in written.values())


def test_formats_and_file_names_of_the_two_editions():
    assert files.FILE_NAMES["html"] == "report.html" and files.FILE_NAMES["pdf"] == "report.pdf"
    assert files.FILE_NAMES["technical"] == "technical-report.html"
    assert files.FILE_NAMES["technical_pdf"] == "technical-report.pdf"
    assert set(files.RENDERERS) == set(files.FILE_NAMES) == set(files.FORMATS)
    from audit.core.config import DEFAULT_FORMATS, FORMATS

    assert set(FORMATS) == set(files.FORMATS)
    assert DEFAULT_FORMATS == ("html", "technical", "json", "junit", "md")


def test_pdf_without_weasyprint(tmp_path, result, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import weasyprint -> ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'future-audit\[pdf\]'"):
        write_reports(result, tmp_path / "out", ["md", "pdf"])
    with pytest.raises(MissingExtraError, match=r"pip install 'future-audit\[pdf\]'"):
        write_reports(result, tmp_path / "out", ["md", "technical_pdf"])
    assert not (tmp_path / "out").exists()
    config = {**result.config, "report": {"min_cell": 10, "continue_without_pdf": True}}
    written = write_reports(replace(result, config=config), tmp_path / "out", ["md", "pdf", "technical_pdf"])
    assert list(written) == ["md"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [files.MARKER, "summary.md"]


def test_write_atomic_text_and_bytes(tmp_path):
    assert write_atomic(tmp_path / "a.txt", "é\n").read_bytes() == "é\n".encode()
    assert write_atomic(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]
