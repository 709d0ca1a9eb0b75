"""The attacker's test: from everything an audit publishes, solve for every suppressed count.

The reports are rendered from the public record alone (``future-audit report results.json``
reproduces them byte for byte, tested in test_cli), so the attack runs on results.json: every
published count, rate (times its denominator), gap and n field becomes a linear constraint on
the unknown integer cell counts of every group and intersection, and integer programming
finds the least and greatest value of each suppressed count. A count is recovered when the
two agree. The findings' sentences are checked too: every percentage they state is a
published value.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.core.results import AuditResult, Metric
from audit.plugins.disaggregation import DENOMINATOR, NUMERATOR
from audit.privacy import Count, _as_table, feasible_ranges

runner = CliRunner()
RATE_IDS = {**{m: m for m in NUMERATOR}, "underdiagnosis_rate": "fnr", "overdiagnosis_rate": "fpr"}


def _targets(public, truth, min_cell=10):
    """The small cells: every count behind a suppressed record that is 1 to ``min_cell - 1``
    (in rows, or in patients for a group's size), read off the private full record."""
    # A perturbed table's records (robustness) are counts of another outcome of the same rows:
    # the disclosure model names it "<label>|<perturbation>@<severity>" (audit.privacy).
    public, truth = [_as_table(m) for m in public], [_as_table(m) for m in truth]
    true = {(m.id, tuple(sorted((m.group or {}).items())), m.label, m.reference): m for m in truth}
    counts = _true_counts(truth)
    out = set()
    for m in public:
        if not m.suppressed:
            continue
        where = tuple(sorted((m.group or {}).items())) or None
        if m.id in ("n", "patients", "positives"):
            cands = [Count("n", where, m.label), Count("positives", where, m.label)]
            patients = true.get(("patients", where or (), m.label, None))
            if patients is not None and patients.value < min_cell:
                out.add(Count("n", where, m.label))
        elif m.id in RATE_IDS:
            base = RATE_IDS[m.id]
            cands = [Count(NUMERATOR[base], where, m.label), Count(DENOMINATOR[base], where, m.label)]
        else:
            continue
        # 1 to min_cell - 1: zero is not a small cell (it identifies nobody; docs/results-json.md).
        out.update(c for c in cands if c in counts and 0 < counts[c] < min_cell)
    return out


def _published(result: AuditResult):
    """Every plugin's records, and the totals data_summary states (rows, positives per label)."""
    summary = result.data_summary["data"]
    labels = result.data_summary["labels"]
    totals = [Metric("n", summary["rows"], n=summary["rows"])]
    totals += [Metric("positives", summary["positives"][lab], n=summary["rows"], label=lab if len(labels) > 1 else None)
               for lab in labels]
    return totals + [m for p in result.plugins for m in p.metrics]


def _attack(out: Path, private: Path):
    public = AuditResult.from_json((out / "results.json").read_text())
    truth = AuditResult.from_json((private / "results.json").read_text())
    assert not public.full_record and truth.full_record
    metrics = _published(public)
    assert all(m.value is None and m.ci is None and m.n is None for m in metrics if m.suppressed)
    # Matched by position: the private record holds the same records, values kept.
    truth_metrics = _published(truth)
    assert len(truth_metrics) == len(metrics)
    targets = _targets(metrics, truth_metrics)
    ranges = feasible_ranges(metrics, targets)
    recovered = [t for t, (lo, hi) in ranges.items() if lo == hi]
    # The attack itself is sound: the truth lies in every range.
    truth_counts = _true_counts(truth_metrics)
    for t, (lo, hi) in ranges.items():
        if t in truth_counts:
            assert lo - 1e-6 <= truth_counts[t] <= hi + 1e-6, (t, lo, hi, truth_counts[t])
    return public, targets, recovered


def _true_counts(metrics):
    counts = {}
    for m in map(_as_table, metrics):
        where = tuple(sorted((m.group or {}).items())) or None
        if m.id == "n" and m.value is not None:
            counts[Count("n", where, m.label)] = m.value
        if m.id == "positives" and m.value is not None:
            counts[Count("positives", where, m.label)] = m.value
        if m.id in RATE_IDS and m.value is not None and m.denominator:
            base = RATE_IDS[m.id]
            counts[Count(NUMERATOR[base], where, m.label)] = round(m.value * m.denominator)
            counts[Count(DENOMINATOR[base], where, m.label)] = m.denominator
    return counts


def _run(args, out):
    result = runner.invoke(app, [str(a) for a in [*args, "--out", out, "--format", "json,md,junit,html,model_card"]])
    assert result.exit_code in (0, 1), result.output
    return out


def _percentages_published(public):
    values = set()
    for m in public.plugin("fairness").metrics:
        for v in (m.value, *(m.ci or ())):
            if v is not None:
                values.add(f"{100 * v:.1f}")
    for f in public.plugin("fairness").findings:
        for num in re.findall(r"(-?\d+\.\d)%", f.message):
            assert num in values, (num, f.message)


@pytest.fixture
def clinics(tmp_path):
    """Four clinics of 511, 512, 40 and 7 rows (the issue's example), crossed with sex."""
    rng = np.random.default_rng(3)
    sizes = {"north": 511, "south": 512, "east": 40, "tiny": 7}
    frames = []
    for clinic, n in sizes.items():
        y = rng.binomial(1, 0.3, n)
        frames.append(pd.DataFrame({"clinic": clinic, "sex": rng.choice(["F", "M"], n), "y": y,
                                    "p": np.clip(0.3 + 0.4 * y + rng.normal(0, 0.25, n), 0, 1).round(4)}))
    frame = pd.concat(frames, ignore_index=True)
    path = tmp_path / "clinics.csv"
    frame.to_csv(path, index=False)
    return path


def test_no_suppressed_cell_of_the_clinics_can_be_recovered(tmp_path, clinics):
    args = ["run", "--data", clinics, "--label", "y", "--score", "p", "--sensitive", "clinic",
            "--sensitive", "sex", "--intersection", "clinic,sex", "--threshold", "0.5"]
    out = _run(args, tmp_path / "public")
    (tmp_path / "private.toml").write_text("[report]\nfull_record = true\n")
    private = _run([*args, "--config", tmp_path / "private.toml"], tmp_path / "private")
    public, targets, recovered = _attack(out, private)
    assert targets, "the 7-row clinic must be suppressed"
    assert not recovered, recovered
    _assert_curves_recover_nothing(public, AuditResult.from_json((private / "results.json").read_text()))
    _percentages_published(public)
    text = "".join((out / f).read_text() for f in ("report.html", "summary.md", "junit.xml", "model_card.md"))
    # Neither its numbers nor its name: a 7-row group's label is withheld (issue 7).
    assert "tiny" not in text and "(small group 1)" in text
    assert "tiny" not in (out / "results.json").read_text()


@pytest.mark.slow
def test_no_suppressed_cell_of_the_demo_can_be_recovered(tmp_path, example_dir):
    cfg = example_dir / "audit.toml"
    out = _run(["run", "--config", cfg], tmp_path / "public")
    private_cfg = tmp_path / "private.toml"
    private_cfg.write_text(cfg.read_text().replace("[report]\n", "[report]\nfull_record = true\n", 1)
                           .replace('path = "', f'path = "{example_dir}/').replace(
                               'reference = "', f'reference = "{example_dir}/').replace(
                               'attestations = "', f'attestations = "{example_dir}/'))
    private = _run(["run", "--config", private_cfg], tmp_path / "private")
    public, targets, recovered = _attack(out, private)
    assert len(targets) > 10
    assert not recovered, recovered
    _assert_curves_recover_nothing(public, AuditResult.from_json((private / "results.json").read_text()))
    _percentages_published(public)


@pytest.mark.parametrize("development", ["largest", "reference"])
def test_no_cell_can_be_recovered_from_every_plugin_together(tmp_path, clinics, development):
    # Fairness, calibration and universality publish counts of the same clinics (as groups and
    # as sites): each one's complements are chosen against what the ones before it published,
    # so the attacker reading all three at once recovers nothing. With --reference the
    # reference data is the development pseudo-site, another population than the audited rows.
    args = ["run", "--data", clinics, "--label", "y", "--score", "p", "--sensitive", "clinic",
            "--sensitive", "sex", "--site", "clinic", "--threshold", "0.5",
            "--plugin", "fairness", "--plugin", "calibration", "--plugin", "universality"]
    if development == "reference":
        ref = tmp_path / "reference.csv"
        frame = pd.read_csv(clinics)
        frame[frame.clinic != "tiny"].sample(300, random_state=1).to_csv(ref, index=False)
        args += ["--reference", ref]
    out = _run(args, tmp_path / "public")
    (tmp_path / "private.toml").write_text("[report]\nfull_record = true\n")
    private = _run([*args, "--config", tmp_path / "private.toml"], tmp_path / "private")
    public, targets, recovered = _attack(out, private)
    assert {p.plugin for p in public.plugins} == {"fairness", "calibration", "universality"}
    assert all(p.status.value != "ERROR" for p in public.plugins), [p.error for p in public.plugins]
    assert targets and not recovered, recovered
    if development == "reference":
        uni = public.plugin("universality")
        assert uni.settings["development_site"] == "(reference data)"
        assert not [m for m in uni.metrics if m.group is None and m.id == "n"]


def _curve_attack(public: AuditResult, truth: AuditResult, min_cell: int = 10):
    """What the fnr_by_threshold curves add, as an integer programme of their own.

    Unknowns: the positives of each finest cell (every listed intersection of the attributes)
    with a score in each bin between consecutive thresholds of the curves' grid (the operating
    point is one of them). Published: every group's positives, its missed cases at the operating
    point (FNR or sensitivity times its denominator), the total, and each curve point (missed
    at that threshold, the FNR times the group's positives; a null point says the missed or the
    caught count is 1 to min_cell - 1: a disjunction, with a binary). The least and greatest
    value of each suppressed cell's positives and missed cases are solved with and without
    the curves; returns the ranges (with, without) and the true counts.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    fair, priv = public.plugin("fairness"), truth.plugin("fairness")
    curves = [c for c in fair.curves if c.id == "fnr_by_threshold"]
    if not curves or any(m.label for m in fair.metrics):
        return None
    grid = sorted({t for c in curves for t in c.thresholds})
    op = curves[0].operating_point
    i_op = grid.index(op)
    attrs = sorted({k for m in fair.metrics if m.group and len(m.group) == 1 for k in m.group})
    listed = {tuple(m.group[a] for a in attrs) for m in fair.metrics if m.group and len(m.group) == len(attrs)}
    cells = sorted(listed)
    nb = len(grid)  # bin j: scores in [grid[j], grid[j+1]) (the last: >= grid[-1])
    nv = len(cells) * nb

    def var(c, j):
        return cells.index(c) * nb + j

    def members(group):
        return [c for c in cells if all(c[attrs.index(k)] == v for k, v in (group or {}).items())]

    def row(group, upto=None):  # positives of the group with a score below grid[upto] (all: None)
        r = np.zeros(nv)
        for c in members(group):
            for j in range(nb if upto is None else upto):
                r[var(c, j)] = 1
        return r

    eqs = []
    for m in fair.metrics:
        if m.suppressed or m.value is None or m.label:
            continue
        if m.id == "positives":
            eqs.append((row(m.group), m.value))
        elif m.id == "fnr" and m.denominator:
            eqs.append((row(m.group, i_op), round(m.value * m.denominator)))
        elif m.id == "sensitivity" and m.denominator:
            eqs.append((row(m.group, i_op), m.denominator - round(m.value * m.denominator)))
    eqs.append((row(None), public.data_summary["data"]["positives"][public.data_summary["labels"][0]]))
    positives = {tuple(sorted((m.group or {}).items())): m.value for m in fair.metrics
                 if m.id == "positives" and not m.suppressed and m.value is not None}
    curve_eqs, nulls = [], []
    for c in curves:
        pos = positives[tuple(sorted(c.group.items()))]
        for t, v in zip(c.thresholds, c.values, strict=True):
            i = grid.index(t)
            (nulls if v is None else curve_eqs).append((row(c.group, i), pos, None if v is None else round(v * pos)))

    def solve(with_curves, objective):
        a = [r for r, _ in eqs]
        lo = [v for _, v in eqs]
        hi = list(lo)
        n_z = len(nulls) if with_curves else 0
        if with_curves:
            for r, _, missed in curve_eqs:
                a.append(r)
                lo.append(missed)
                hi.append(missed)
        A = np.hstack([np.asarray(a), np.zeros((len(a), n_z))])
        big = 10 ** 6
        rows, l2, h2 = [], [], []
        for k, (r, pos, _) in enumerate(nulls[:n_z]):
            z = np.zeros(n_z)
            z[k] = 1
            # z = 0: 1 <= missed <= min_cell - 1; z = 1: 1 <= pos - missed <= min_cell - 1.
            rows += [np.r_[r, big * z], np.r_[r, -big * z], np.r_[-r, big * z - big * 0], np.r_[-r, -big * z]]
            l2 += [1, -np.inf, 1 - pos - big, -np.inf]
            h2 += [np.inf, min_cell - 1, np.inf, min_cell - 1 - pos + big]
        cons = [LinearConstraint(A, lo, hi)]
        if rows:
            cons.append(LinearConstraint(np.asarray(rows), l2, h2))
        c_obj = np.r_[objective, np.zeros(n_z)]
        integrality = np.ones(nv + n_z)
        bounds = Bounds(np.zeros(nv + n_z), np.r_[np.full(nv, np.inf), np.ones(n_z)])
        res = milp(c_obj, constraints=cons, integrality=integrality, bounds=bounds)
        assert res.status == 0, res.message  # the published numbers are consistent
        return res.fun

    truths, ranges = {}, {}
    # Matched by position (the public record withholds a small group's name, as "(small group 1)").
    assert len(priv.metrics) == len(fair.metrics)
    for m, pub in zip(priv.metrics, fair.metrics, strict=True):
        if not (pub.group and len(pub.group) == len(attrs)) or m.label:
            continue
        if not pub.suppressed or m.value is None:
            continue
        c = tuple(pub.group[a] for a in attrs)
        if m.id == "positives":
            truths[(c, "positives")] = int(m.value)
        elif m.id == "fnr" and m.denominator:
            truths[(c, "missed")] = round(m.value * m.denominator)
    for (c, what), _ in truths.items():
        r = row(dict(zip(attrs, c, strict=True)), None if what == "positives" else i_op)
        ranges[(c, what)] = tuple((solve(w, r), -solve(w, -r)) for w in (True, False))
    return ranges, truths


def _assert_curves_recover_nothing(public, truth, min_cell=10):
    out = _curve_attack(public, truth, min_cell)
    assert out is not None, "the audit publishes no fnr_by_threshold curves"
    ranges, truths = out
    assert truths, "no suppressed intersection cell to attack"
    for key, ((lo, hi), (lo0, hi0)) in ranges.items():
        assert lo - 1e-6 <= truths[key] <= hi + 1e-6 and lo0 - 1e-6 <= lo and hi <= hi0 + 1e-6  # sound
        if 0 < truths[key] < min_cell:
            assert hi - lo >= 1 - 1e-6, f"{key} recovered from the curves as {lo:g} (true {truths[key]})"
    narrowed = sum((lo > lo0 + 1e-6) or (hi < hi0 - 1e-6) for (lo, hi), (lo0, hi0) in ranges.values())
    print(f"\ncurve attack: {len(ranges)} suppressed cell counts; the curves narrow {narrowed} ranges, recover none")
