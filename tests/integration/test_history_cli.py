"""The audit history on the command line: run --history, history, compare, baseline gates."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import jsonschema
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from audit import history as hist
from audit.cli import app
from audit.schema import results_schema

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def frame(*, worse: bool = False, n: int = 1200, seed: int = 7) -> pd.DataFrame:
    """Two sexes and three races; ``worse``: most positive men are missed (a large FNR gap)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    race = rng.choice(["black", "white", "asian"], n, p=[0.3, 0.5, 0.2])
    y = rng.binomial(1, 0.35, n)
    p = 0.35 + 0.35 * (y - 0.35) + rng.normal(0, 0.18, n)
    if worse:
        p = np.where((sex == "M") & (y == 1), p - 0.4, p)
    return pd.DataFrame({"sex": sex, "race": race, "y": y, "p": np.clip(p, 0, 1).round(6)})


@pytest.fixture
def csvs(tmp_path):
    paths = {}
    for name, worse in (("a", False), ("b", True)):
        paths[name] = tmp_path / f"{name}.csv"
        frame(worse=worse).to_csv(paths[name], index=False)
    return paths


def audit(data, out, *extra, sensitive=("sex",)):
    args = ["run", "--data", data, "--label", "y", "--score", "p", "--threshold", "0.5", "--plugin", "fairness",
            "--format", "json", "--seed", "1", "--out", out, "--quiet", *extra]
    for column in sensitive:
        args += ["--sensitive", column]
    return invoke(*args)


def one_error_line(res, *fragments):
    assert res.exit_code == 4, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def results(out):
    return json.loads((out / "results.json").read_text())


def gap(doc, sex):
    plugin = next(p for p in doc["plugins"] if p["plugin"] == "fairness")
    return next(m for m in plugin["metrics"] if m["id"] == "fnr_gap" and m["group"] == {"sex": sex})


# -- recording and listing ----------------------------------------------------------------

def test_two_runs_recorded_then_listed(tmp_path, csvs):
    db = tmp_path / "history.db"
    assert audit(csvs["a"], tmp_path / "o1", "--history", db).exit_code == 0
    res = audit(csvs["b"], tmp_path / "o2", "--history", db, "--accept")
    assert res.exit_code == 0, res.output
    runs = hist.list_runs(db)
    assert len(runs) == 2 and [r.accepted for r in runs] == [None, True] and runs[1].baseline
    # What is stored is the results.json the run wrote, number for number.
    assert hist.load_run(db, runs[0].id) == results(tmp_path / "o1")
    assert hist.load_run(db, runs[1].id) == results(tmp_path / "o2")

    res = invoke("history", "--history", db)
    assert res.exit_code == 0, res.output
    rows = [line for line in res.output.splitlines() if runs[0].id[:8] in line or runs[1].id[:8] in line]
    assert len(rows) == 2 and "baseline" in rows[1] and "baseline" not in rows[0]
    assert runs[0].data_hash in rows[0] and "predictions:p" in rows[0]

    # Accepting the first run by its short id does not move the baseline: it was accepted earlier.
    res = invoke("history", "--history", db, "--accept", runs[0].id[:8])
    assert res.exit_code == 0 and "the baseline stays run" in res.output
    assert [r.accepted for r in hist.list_runs(db)] == [True, True]
    one_error_line(invoke("history", "--history", db, "--accept", "zzzz"), "No run 'zzzz'")
    one_error_line(invoke("history", "--history", tmp_path / "none.db"), "No audit history")


def test_full_record_run_stores_the_public_record(tmp_path):
    small = frame().assign(race=lambda f: np.where(np.arange(len(f)) < 6, "other", f.race))
    small.to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "audit.toml").write_text('[report]\nfull_record = true\n')
    db = tmp_path / "h.db"
    res = audit(tmp_path / "s.csv", tmp_path / "o", "--config", tmp_path / "audit.toml", "--history", db,
                sensitive=("race",))
    assert res.exit_code == 0, res.output
    written = results(tmp_path / "o")
    assert written["full_record"] is True
    assert any(m["suppressed"] and m["value"] is not None for p in written["plugins"] for m in p["metrics"])
    stored = hist.load_run(db, hist.list_runs(db)[0].id)
    assert stored["full_record"] is False
    suppressed = [m for p in stored["plugins"] for m in p["metrics"] if m["suppressed"]]
    assert suppressed and all(m["value"] is None and m["ci"] is None for m in suppressed)
    assert "other" not in json.dumps(stored)


# -- one metric over time -----------------------------------------------------------------

def test_metric_series_and_trend_html(tmp_path, csvs):
    db = tmp_path / "h.db"
    for i, data in enumerate((csvs["a"], csvs["b"])):
        assert audit(data, tmp_path / f"o{i}", "--history", db).exit_code == 0
    trend = tmp_path / "trend.html"
    res = invoke("history", "--history", db, "--metric", "fairness.fnr_gap", "--group", "sex=M", "--out", trend)
    assert res.exit_code == 0, res.output
    assert "fairness.fnr_gap (sex=M vs best)" in res.output
    assert f"{gap(results(tmp_path / 'o1'), 'M')['value']:.6g}" in res.output
    text = trend.read_text()
    assert "<svg" in text and "<script" not in text.lower()
    assert "default-src 'none'" in text

    one_error_line(invoke("history", "--history", db, "--metric", "fairness.fnr_gap"),
                   "sex=F vs best", "sex=M vs best", "--group")
    one_error_line(invoke("history", "--history", db, "--metric", "fairness.fnr_gapp"),
                   "'fairness.fnr_gapp' is not in the latest run", "fairness.fnr_gap")
    one_error_line(invoke("history", "--history", db, "--metric", "fairness.fnr", "--group", "sex"),
                   "expected COLUMN=VALUE")
    one_error_line(invoke("history", "--history", db, "--out", trend), "pass --metric")
    one_error_line(invoke("history", "--history", db, "--metric", "fairness.fnr", "--out", tmp_path / "t.txt"),
                   "must end in .html, .svg or .png")


# -- compare ------------------------------------------------------------------------------

def test_compare_exits_1_only_when_the_metric_got_worse(tmp_path, csvs):
    assert audit(csvs["a"], tmp_path / "a").exit_code == 0
    assert audit(csvs["a"], tmp_path / "a2", "--seed", "2").exit_code == 0
    assert audit(csvs["b"], tmp_path / "b").exit_code == 0
    a, a2, b = (tmp_path / name / "results.json" for name in ("a", "a2", "b"))
    before, after = gap(results(tmp_path / "a"), "M"), gap(results(tmp_path / "b"), "M")
    assert after["ci"][0] > before["ci"][1]  # the data were built so that the intervals are disjoint

    res = invoke("compare", a, b, "--metric", "fairness.fnr_gap")
    assert res.exit_code == 1, res.output
    assert res.stdout.startswith(f"# {a} → {b}")
    assert "## Worse beyond the interval" in res.stdout and "fairness.fnr_gap (sex=M, vs best)" in res.stdout
    assert "fairness.fnr_gap got worse beyond its interval" in res.stderr

    assert invoke("compare", b, a, "--metric", "fairness.fnr_gap").exit_code == 0  # better, not worse
    assert invoke("compare", a, a2, "--metric", "fairness.fnr_gap").exit_code == 0
    assert invoke("compare", a, b).exit_code == 0  # without --metric it only reports


def test_compare_bad_input_exits_4_with_one_line(tmp_path, csvs):
    assert audit(csvs["a"], tmp_path / "a").exit_code == 0
    a = tmp_path / "a" / "results.json"
    one_error_line(invoke("compare", a, tmp_path / "missing.json"), "not found")
    (tmp_path / "x.json").write_text('{"hello": 1}')
    one_error_line(invoke("compare", a, tmp_path / "x.json"), "is not a future-audit results.json")
    (tmp_path / "t.json").write_text("not json")
    one_error_line(invoke("compare", tmp_path / "t.json", a), "not valid JSON")
    newer = results(tmp_path / "a") | {"schema_version": "9.0"}
    (tmp_path / "n.json").write_text(json.dumps(newer))
    one_error_line(invoke("compare", a, tmp_path / "n.json"), "same major version")
    one_error_line(invoke("compare", a, a, "--metric", "fairness.nope"), "'fairness.nope' is in neither")


# -- baseline gates -----------------------------------------------------------------------

GATE = "fairness.fnr_gap<=baseline+0.02"


def test_baseline_gate_passes_and_fails_against_the_accepted_run(tmp_path, csvs):
    db = tmp_path / "h.db"
    assert audit(csvs["a"], tmp_path / "base", "--history", db, "--accept").exit_code == 0
    base_id = hist.list_runs(db)[0].id
    base = results(tmp_path / "base")

    res = audit(csvs["a"], tmp_path / "same", "--history", db, "--gate", GATE, "--gate-policy", "point")
    assert res.exit_code == 0, res.output
    gate = results(tmp_path / "same")["gates"][0]
    assert gate["expression"] == GATE and gate["status"] == "PASS"
    # The recorded threshold is resolved: the loosest of the per-group baselines plus 0.02.
    assert gate["threshold"] == max(gap(base, s)["value"] for s in ("F", "M")) + 0.02
    assert f"threshold = baseline + 0.02 from run {base_id[:8]} of h.db" in gate["message"]
    assert f"sex=M <= {gap(base, 'M')['value'] + 0.02:.4g}" in gate["message"]
    # Each value records its own threshold, and the gate its baseline (the file name only).
    assert gate["baseline"] == {"run_id": base_id, "history": "h.db", "offset": 0.02}
    assert {c["group"]["sex"]: c["threshold"] for c in gate["checks"]} == {
        s: gap(base, s)["value"] + 0.02 for s in ("F", "M")}
    jsonschema.validate(results(tmp_path / "same"), results_schema())

    res = audit(csvs["b"], tmp_path / "worse", "--history", db, "--gate", GATE)
    assert res.exit_code == 1, res.output
    gate = results(tmp_path / "worse")["gates"][0]
    assert gate["status"] == "FAIL"
    assert {c["group"]["sex"]: c["status"] for c in gate["checks"]}["M"] == "FAIL"
    # The worse run was recorded but is not accepted: the baseline stays where it was.
    assert [r.baseline for r in hist.list_runs(db)] == [True, False, False]

    # The same gates from audit.toml, with run.history relative to the config file.
    (tmp_path / "audit.toml").write_text(
        '[run]\nhistory = "h.db"\ngate_policy = "point"\n'
        '[[gates]]\nmetric = "fairness.fnr_gap"\nop = "<="\nthreshold = "baseline + 0.02"\n')
    res = audit(csvs["a"], tmp_path / "toml", "--config", tmp_path / "audit.toml")
    assert res.exit_code == 0, res.output
    gate = results(tmp_path / "toml")["gates"][0]
    assert gate["expression"] == GATE and gate["status"] == "PASS"
    assert len(hist.list_runs(db)) == 4


def test_baseline_gate_is_inconclusive_without_a_baseline_value(tmp_path, csvs):
    db = tmp_path / "h.db"
    # A history that does not exist yet has no baseline: the gate is empty, so exit 1 ...
    res = audit(csvs["a"], tmp_path / "first", "--history", db, "--gate", GATE)
    assert res.exit_code == 1, res.output
    gate = results(tmp_path / "first")["gates"][0]
    assert gate["status"] == "INCONCLUSIVE" and gate["empty"] is True
    assert "has no accepted run" in gate["message"]
    assert all(c["status"] == "INCONCLUSIVE" for c in gate["checks"])
    assert not hist.list_runs(db)[0].baseline  # it exited 1, so it is no baseline either
    # ... unless empty gates are allowed, as for any gate with nothing to judge.
    res = audit(csvs["a"], tmp_path / "second", "--history", db, "--gate", GATE, "--allow-empty-gates", "--accept")
    assert res.exit_code == 0, res.output
    assert results(tmp_path / "second")["gates"][0]["status"] == "INCONCLUSIVE"

    # The baseline (the second run, accepted, so later runs do not move it) has sex groups
    # only: race groups have no baseline record, so their values are INCONCLUSIVE, never
    # PASS or FAIL.
    res = audit(csvs["a"], tmp_path / "race", "--history", db, "--gate", GATE, "--gate-policy", "point",
                sensitive=("sex", "race"))
    assert res.exit_code == 0, res.output
    gate = results(tmp_path / "race")["gates"][0]
    by_group = {json.dumps(c["group"], sort_keys=True): c["status"] for c in gate["checks"]}
    assert gate["status"] == "INCONCLUSIVE" and gate["empty"] is False
    assert by_group['{"sex": "M"}'] == "PASS" and by_group['{"race": "white"}'] == "INCONCLUSIVE"
    assert "3 without a baseline value" in gate["message"]

    res = audit(csvs["a"], tmp_path / "race_only", "--history", db, "--gate", GATE, sensitive=("race",))
    assert res.exit_code == 1, res.output
    gate = results(tmp_path / "race_only")["gates"][0]
    assert gate["status"] == "INCONCLUSIVE" and gate["empty"] is True
    assert "3 have no baseline value" in gate["message"]


def test_a_group_suppressed_now_gets_no_threshold_from_its_published_baseline(tmp_path):
    # In the baseline "other" is a large group with a published gap (its positives are
    # missed more often); now it has 6 patients.
    big = frame(seed=3).assign(race=lambda f: np.where(np.arange(len(f)) < 400, "other", f.race))
    big["p"] = np.where((big.race == "other") & (big.y == 1), (big.p - 0.15).clip(0, 1), big.p).round(6)
    small = frame(seed=3).assign(race=lambda f: np.where(np.arange(len(f)) < 6, "other", f.race))
    big.to_csv(tmp_path / "big.csv", index=False)
    small.to_csv(tmp_path / "small.csv", index=False)
    db = tmp_path / "h.db"
    assert audit(tmp_path / "big.csv", tmp_path / "base", "--history", db, "--accept",
                 sensitive=("race",)).exit_code == 0
    plugin = next(p for p in results(tmp_path / "base")["plugins"] if p["plugin"] == "fairness")
    before = next(m for m in plugin["metrics"] if m["id"] == "fnr_gap" and m["group"] == {"race": "other"})
    assert before["value"] is not None and before["value"] > 0.05 and not before["suppressed"]
    withheld = before["value"] + 0.02

    res = audit(tmp_path / "small.csv", tmp_path / "now", "--history", db, "--gate", GATE, "--format", "json,md,junit",
                sensitive=("race",))
    assert res.exit_code in (0, 1), res.output
    doc = results(tmp_path / "now")
    jsonschema.validate(doc, results_schema())
    gate = doc["gates"][0]
    hidden = [c for c in gate["checks"] if c["suppressed"]]
    assert hidden and all(c["value"] is None and c["threshold"] is None for c in hidden)
    assert all(c["threshold"] is not None for c in gate["checks"] if not c["suppressed"])
    assert gate["threshold"] != withheld
    for name in ("results.json", "summary.md", "junit.xml"):
        text = (tmp_path / "now" / name).read_text()
        assert repr(withheld) not in text and f"{withheld:.4g}" not in text, name
        assert "other" not in text, name
    assert "baseline + 2.0 pp" in (tmp_path / "now" / "summary.md").read_text()


def test_baseline_gate_without_history_exits_4(tmp_path, csvs):
    out = tmp_path / "out"
    one_error_line(audit(csvs["a"], out, "--gate", GATE), f"Gate '{GATE}' compares with a baseline", "--history")
    one_error_line(audit(csvs["a"], out, "--gate", "fairness.fnr_gap<=baseline+-0.02", "--history",
                         tmp_path / "h.db"), "two signs")
    one_error_line(audit(csvs["a"], out, "--accept"), "--accept", "--history")
    assert not out.exists() and not (tmp_path / "h.db").exists()


# -- a history that cannot be used --------------------------------------------------------

def test_unusable_history_exits_4_before_any_work(tmp_path, csvs):
    out = tmp_path / "out"
    text = tmp_path / "notes.db"
    text.write_text("my notes\n")
    one_error_line(audit(csvs["a"], out, "--history", text), "is not an audit history")
    assert text.read_text() == "my notes\n"

    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
    before = other.read_bytes()
    one_error_line(audit(csvs["a"], out, "--history", other), "not a future-audit history")
    assert other.read_bytes() == before

    one_error_line(audit(csvs["a"], out, "--history", tmp_path / "no" / "h.db"), "does not exist")

    newer = tmp_path / "newer.db"
    assert audit(csvs["a"], tmp_path / "ok", "--history", newer).exit_code == 0
    with closing(sqlite3.connect(newer)) as conn:
        conn.execute(f"PRAGMA user_version = {hist.HISTORY_VERSION + 1}")
    one_error_line(audit(csvs["a"], out, "--history", newer), "newer future-audit")
    assert not out.exists(), "no report may be written when the history cannot be used"


def test_locked_history_at_append_exits_4_and_keeps_the_reports(tmp_path, csvs, monkeypatch):
    db = tmp_path / "h.db"
    assert audit(csvs["a"], tmp_path / "o1", "--history", db).exit_code == 0
    monkeypatch.setattr(hist, "LOCK_TIMEOUT_S", 0.1)
    out = tmp_path / "o2"
    # Another writer holds the write lock: readers (the check before the run) still get in.
    with closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        line = one_error_line(audit(csvs["a"], out, "--history", db), "is locked by another process",
                              f"reports were written to {str(out)!r}", "not in the history")
        other.execute("ROLLBACK")
    assert "Traceback" not in line
    assert (out / "results.json").is_file()
    assert len(hist.list_runs(db)) == 1
