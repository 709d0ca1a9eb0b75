"""The SQLite audit history: exact round trip, one transaction per run, refusing foreign files."""

from __future__ import annotations

import json
import math
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import history
from audit.core.results import AuditResult, GateCheck, GateResult, Metric, PluginResult, Status
from audit.errors import AuditError, InputError
from audit.history import (
    HistoryError,
    append_run,
    baseline_value,
    last_accepted,
    list_runs,
    load_run,
    mark_accepted,
    metric_records,
    metric_series,
    render_trend,
)

MODEL = "a" * 64
DATA = "b" * 64


def results(fnr_gap=0.05, *, finished="2026-01-01T10:00:00+00:00", exit_code=0, status="PASS",
            extra_metrics=(), label=None, model=MODEL, seed=1):
    """A results.json dict as the audit writes it (through AuditResult.to_json)."""
    metrics = (
        Metric("n", 200.0, n=200),
        Metric("fnr", 0.2, n=200, group={"sex": "F"}, ci=(0.1, 0.3), ci_method="wilson", level=0.95,
               denominator=60, label=label),
        Metric("fnr_gap", fnr_gap, n=200, group={"sex": "F"}, ci=(fnr_gap - 0.03, fnr_gap + 0.03),
               ci_method="mover", level=0.95, reference="best", reference_group={"sex": "M"},
               p_value=0.01, p_adjusted=0.02, label=label),
        Metric("fnr_gap_overall", fnr_gap / 2, n=200, group={"sex": "F"}, ci=(0.0, fnr_gap),
               reference="overall", label=label),
        Metric("fnr", None, n=None, group={"sex": "U"}, suppressed=True, reason="suppressed", label=label),
        *extra_metrics,
    )
    gate = GateResult("fairness.fnr_gap<=0.05", "fairness.fnr_gap", "<=", 0.05, "interval",
                      Status.PASS if fnr_gap <= 0.05 else Status.FAIL, "msg",
                      checks=(GateCheck({"sex": "F"}, fnr_gap, (fnr_gap - 0.03, fnr_gap + 0.03), Status.PASS,
                                        reference="best"),))
    result = AuditResult(
        plugins=(PluginResult("fairness", "Fairness", "0.1.0", status, "summary", metrics=metrics),),
        gates=(gate,),
        provenance={"tool": {"name": "future-audit", "version": "0.1.0"}, "finished": finished, "seed": seed,
                    "model": {"kind": "sklearn", "source": "m.skops", "sha256": model},
                    "data": {"file": "test.csv", "sha256": DATA}, "git": {"commit": "abc123", "dirty": False}},
        status=status, exit_code=exit_code)
    return json.loads(result.to_json())


def flat(doc):
    return [dict(m, plugin=p["plugin"]) for p in doc["plugins"] for m in p["metrics"]]


def rows(path, table="metrics"):
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def db(tmp_path):
    return tmp_path / "history.db"


# -- round trip ---------------------------------------------------------------------------

def test_round_trip_gives_back_every_record(db):
    doc = results(extra_metrics=(Metric("auroc", 0.81, n=200, ci=(0.75, 0.86), flags=("under_powered",)),))
    run = append_run(db, doc)
    assert metric_records(db, run) == flat(doc)
    assert load_run(db, run) == doc


def test_extra_fields_are_kept(db):
    doc = results()
    doc["plugins"][0]["metrics"].append({"id": "auroc_drop", "value": 0.03, "n": 100, "group": None, "ci": None,
                                         "feature": "age", "perturbation": "gaussian_noise", "severity": 3})
    got = metric_records(db, append_run(db, doc))[-1]
    assert (got["feature"], got["perturbation"], got["severity"]) == ("age", "gaussian_noise", 3)
    assert got["value"] == 0.03


numbers = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False),
                    st.integers(min_value=-2**63, max_value=2**63 - 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(numbers, numbers, numbers, numbers, numbers), min_size=1, max_size=8))
def test_numbers_round_trip_bit_for_bit(values):
    # -0.0, subnormals, 1e308 and 64-bit integers included: the numeric columns have no
    # declared type, so SQLite neither turns -0.0 into 0 nor 3 into 3.0.
    doc = results()
    doc["plugins"][0]["metrics"] = [
        {"id": "x", "value": v, "n": n, "group": {"i": str(i)}, "ci": None if lo is None else [lo, hi],
         "p_value": p, "p_adjusted": None, "level": None}
        for i, (v, n, lo, hi, p) in enumerate(values)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.db"
        got = metric_records(path, append_run(path, doc))
    for want, have in zip(flat(doc), got, strict=True):
        for key in ("value", "n", "p_value"):
            assert type(have[key]) is type(want[key])
            assert have[key] == want[key]
            if isinstance(want[key], float):
                assert math.copysign(1, have[key]) == math.copysign(1, want[key])
        assert have["ci"] == want["ci"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_not_altered(db, bad):
    doc = results()
    doc["plugins"][0]["metrics"][1]["value"] = bad
    with pytest.raises(HistoryError, match=r"plugins\[0\]\.metrics\[1\]\.value is .*never holds NaN"):
        append_run(db, doc)
    assert not db.exists()


def test_not_a_results_json_is_refused(db):
    with pytest.raises(InputError, match="not a future-audit results.json"):
        append_run(db, {"plugins": []})
    assert not db.exists()


def test_the_same_run_twice_is_refused(db):
    doc = results()
    append_run(db, doc)
    with pytest.raises(HistoryError, match="already in"):
        append_run(db, doc)
    assert len(list_runs(db)) == 1


# -- one transaction ----------------------------------------------------------------------

def test_failure_mid_run_rolls_everything_back(db, monkeypatch):
    append_run(db, results(0.01))
    before, before_bytes = rows(db), db.read_bytes()
    real, calls = history._metric_row, []

    def failing(*args):
        calls.append(1)
        if len(calls) == 4:  # after the run, its plugin and three metrics were inserted
            raise RuntimeError("disk on fire")
        return real(*args)

    monkeypatch.setattr(history, "_metric_row", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        append_run(db, results(0.09))
    assert len(calls) == 4
    assert [r.id for r in list_runs(db)] == [list_runs(db)[0].id] and rows(db) == before
    assert rows(db, "runs") == 1 and rows(db, "gates") == 1
    assert db.read_bytes() == before_bytes
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_failed_first_run_leaves_no_file(db, monkeypatch):
    monkeypatch.setattr(history, "_metric_row", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        append_run(db, results())
    assert not db.exists()


# -- refusing files -----------------------------------------------------------------------

def test_new_file_is_marked_as_ours(db):
    append_run(db, results())
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == history.APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == history.HISTORY_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert dict(conn.execute("SELECT key, value FROM history_schema"))["format"] == "future-audit history"


def test_a_file_that_is_not_sqlite_is_refused_and_untouched(db):
    db.write_text("patient_id,sex\n1,F\n")
    for call in (lambda: append_run(db, results()), lambda: list_runs(db)):
        with pytest.raises(HistoryError, match=r"history\.db.*not an SQLite database") as info:
            call()
        assert "\n" not in str(info.value) and isinstance(info.value, AuditError)
    assert db.read_text() == "patient_id,sex\n1,F\n"


def test_a_foreign_sqlite_file_is_refused_and_untouched(db):
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE patients (id TEXT)")
        conn.commit()
    before = db.read_bytes()
    for call in (lambda: append_run(db, results()), lambda: list_runs(db)):
        with pytest.raises(HistoryError, match="SQLite database but not a future-audit history"):
            call()
    assert db.read_bytes() == before


def test_ours_with_missing_tables_is_damaged(db):
    append_run(db, results())
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TABLE gate_checks")
        conn.commit()
    with pytest.raises(HistoryError, match="damaged.*gate_checks"):
        list_runs(db)


def test_a_newer_history_is_refused(db):
    append_run(db, results())
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryError, match="written by a newer future-audit.*upgrade"):
        append_run(db, results(0.02))
    with pytest.raises(HistoryError, match="newer future-audit"):
        list_runs(db)


def test_a_locked_history_fails_after_a_short_wait(db, monkeypatch):
    monkeypatch.setattr(history, "LOCK_TIMEOUT_S", 0.2)
    append_run(db, results())
    with closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(HistoryError, match="locked by another process"):
            append_run(db, results(0.02))
        with pytest.raises(HistoryError, match="locked"):
            list_runs(db)
        other.execute("ROLLBACK")
    append_run(db, results(0.02))
    assert len(list_runs(db)) == 2


def test_missing_folder_and_missing_file(tmp_path):
    with pytest.raises(HistoryError, match="folder .*nowhere.* does not exist"):
        append_run(tmp_path / "nowhere" / "h.db", results())
    with pytest.raises(HistoryError, match="No audit history at"):
        list_runs(tmp_path / "h.db")
    assert not (tmp_path / "h.db").exists()  # a read never creates the file


def test_an_empty_file_becomes_a_history(db):
    db.touch()
    append_run(db, results())
    assert len(list_runs(db)) == 1


# -- reading ------------------------------------------------------------------------------

def test_list_runs_in_time_order(db):
    late = append_run(db, results(0.03, finished="2026-03-01T00:00:00+00:00"), accepted=True)
    # Written later, finished earlier (and in another time zone): sorted by the UTC time.
    early = append_run(db, results(0.02, finished="2026-03-01T01:00:00+02:00", model="c" * 64))
    runs = list_runs(db)
    assert [r.id for r in runs] == [early, late]
    assert runs[0].model_hash == "c" * 12 and runs[1].data_hash == "b" * 12
    assert runs[1].n_metrics == 5 and runs[1].accepted is True and runs[0].accepted is None
    assert runs[1].commit == "abc123" and runs[1].status == "PASS" and runs[1].baseline


def test_metric_series(db):
    for i, gap in enumerate((0.01, 0.04, 0.02)):
        append_run(db, results(gap, finished=f"2026-01-0{i + 1}T00:00:00+00:00", seed=i))
    series = metric_series(db, "fairness.fnr_gap", group={"sex": "F"})
    assert [p.value for p in series] == [0.01, 0.04, 0.02]
    assert [(p.ci_low, p.ci_high) for p in series] == [(g - 0.03, g + 0.03) for g in (0.01, 0.04, 0.02)]
    assert series[0].reference == "best" and series[0].n == 200
    assert metric_series(db, "fnr_gap", plugin="fairness", group={"sex": "F"}) == series
    assert metric_series(db, "fairness.fnr_gap") == []  # no overall record
    assert metric_series(db, "fairness.fnr_gap", group={"sex": "F"}, label="covid") == []
    hidden = metric_series(db, "fairness.fnr", group={"sex": "U"})
    assert [(p.value, p.suppressed) for p in hidden] == [(None, True)] * 3


def test_metric_series_refuses_an_ambiguous_selection(db):
    doc = results()
    doc["plugins"][0]["metrics"].append(dict(doc["plugins"][0]["metrics"][2], reference="overall"))
    append_run(db, doc)
    with pytest.raises(HistoryError, match="several records.*pass reference="):
        metric_series(db, "fairness.fnr_gap", group={"sex": "F"})
    assert len(metric_series(db, "fairness.fnr_gap", group={"sex": "F"}, reference="best")) == 1


def test_last_accepted_without_explicit_acceptance_is_the_last_clean_run(db):
    assert_no_baseline = append_run(db, results(0.09, finished="2026-01-01T00:00:00+00:00", exit_code=1))
    assert last_accepted(db) is None and baseline_value(db, "fairness", "fnr_gap", group={"sex": "F"}) is None
    ok = append_run(db, results(0.02, finished="2026-01-02T00:00:00+00:00"))
    append_run(db, results(0.08, finished="2026-01-03T00:00:00+00:00", exit_code=1))
    append_run(db, results(0.03, finished="2026-01-04T00:00:00+00:00"), accepted=False)
    base = last_accepted(db)
    assert base["run"].id == ok and base["run"].id != assert_no_baseline
    assert {m["id"] for m in base["metrics"]} == {"n", "fnr", "fnr_gap", "fnr_gap_overall"}
    assert baseline_value(db, "fairness", "fnr_gap", group={"sex": "F"}) == 0.02


def test_explicit_acceptance_pins_the_baseline(db):
    pinned = append_run(db, results(0.01, finished="2026-01-01T00:00:00+00:00"), accepted=True)
    later = append_run(db, results(0.03, finished="2026-01-02T00:00:00+00:00"))  # exit 0, not accepted
    assert last_accepted(db)["run"].id == pinned
    assert baseline_value(db, "fairness", "fnr_gap", group={"sex": "F"}) == 0.01
    mark_accepted(db, later)
    assert baseline_value(db, "fairness", "fnr_gap", group={"sex": "F"}) == 0.03
    assert load_run(db) == load_run(db, later)
    with pytest.raises(HistoryError, match="No run 'nope'"):
        mark_accepted(db, "nope")


def test_baseline_value_missing_suppressed_and_ambiguous(db):
    append_run(db, results(0.02, label="covid"), accepted=True)
    assert baseline_value(db, "fairness", "fnr_gap", group={"sex": "F"}) is None  # no such label
    assert baseline_value(db, "fairness", "fnr_gap", "covid", {"sex": "F"}) == 0.02
    assert baseline_value(db, "fairness", "fnr", "covid", {"sex": "U"}) is None  # suppressed
    assert baseline_value(db, "fairness", "auroc") is None
    assert baseline_value(db, "fairness", "fnr_gap", "covid", {"sex": "F"}, reference="overall") is None


# -- the trend chart ----------------------------------------------------------------------

EVIL = '<script>alert("x")</script>'


@pytest.fixture
def evil_series(db):
    for i, gap in enumerate((0.01, 0.04)):
        append_run(db, results(gap, finished=f"2026-01-0{i + 1}T00:00:00+00:00", label=EVIL), accepted=i == 0)
    return metric_series(db, "fairness.fnr_gap", label=EVIL, group={"sex": "F"})


def test_trend_html_is_self_contained_and_escaped(tmp_path, evil_series):
    text = render_trend(evil_series, tmp_path / "trend.html").read_text()
    assert "<script" not in text.lower() and EVIL not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "<svg" in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert text.count("<circle") == 2


def test_trend_svg_and_png(tmp_path, evil_series):
    svg = render_trend(evil_series, tmp_path / "trend.svg").read_text()
    assert svg.startswith("<svg") and "<script" not in svg
    png = render_trend(evil_series, tmp_path / "trend.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_trend_refuses_bad_input(tmp_path, evil_series):
    with pytest.raises(AuditError, match=r"must end in \.html, \.svg or \.png"):
        render_trend(evil_series, tmp_path / "trend.pdf")
    with pytest.raises(InputError, match="No values to draw"):
        render_trend([], tmp_path / "trend.html")
    with pytest.raises(InputError, match="does not exist"):
        render_trend(evil_series, tmp_path / "no" / "trend.html")


def test_gate_checks_keep_feature_and_threshold(db):
    doc = results()
    doc["gates"][0]["checks"][0] |= {"feature": "age", "threshold": 0.07}
    append_run(db, doc)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT feature, threshold, value FROM gate_checks").fetchall() == [("age", 0.07, 0.05)]


def test_gate_checks_keep_perturbation_and_severity(db):
    doc = results()
    doc["gates"][0]["checks"][0] |= {"perturbation": "gaussian_noise", "severity": 3}
    append_run(db, doc)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT perturbation, severity FROM gate_checks").fetchall() == [("gaussian_noise", 3)]
    doc["gates"][0]["checks"][0]["severity"] = 2.5
    with pytest.raises(InputError, match=r"checks\[0\]\.severity is 2\.5, not a whole number"):
        append_run(db, doc)


def test_a_version_1_history_is_upgraded_in_place_on_the_next_write(db):
    first = append_run(db, results())
    # Make it a version-1 file: no feature or threshold on gate checks.
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("ALTER TABLE gate_checks DROP COLUMN feature")
        conn.execute("ALTER TABLE gate_checks DROP COLUMN threshold")
        conn.execute("ALTER TABLE gate_checks DROP COLUMN perturbation")
        conn.execute("ALTER TABLE gate_checks DROP COLUMN severity")
        conn.execute("UPDATE history_schema SET value = '1' WHERE key = 'version'")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    assert [r.id for r in list_runs(db)] == [first]  # read as it is
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    append_run(db, results(0.04, finished="2026-02-01T10:00:00+00:00"))
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == history.HISTORY_VERSION == 3
        assert dict(conn.execute("SELECT key, value FROM history_schema"))["version"] == "3"
        assert conn.execute("SELECT count(*), count(threshold) FROM gate_checks").fetchone() == (2, 0)
    assert len(list_runs(db)) == 2
