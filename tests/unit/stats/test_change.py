"""Tests of audit.stats.change: simulated steps, flat series, empty windows, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.robust.scale import qn_scale

from audit.stats.change import ChangeDetection, default_penalty, detect_change


def _series(seed, n=60, at=40, step=-0.05, sd=0.01, level=0.85):
    x = level + np.random.default_rng(seed).normal(0, sd, n)
    if at is not None:
        x[at:] += step
    return x


def test_finds_a_simulated_step_within_two_windows():
    # Window AUROC 0.85 dropping to 0.80 at window 40, noise SD 0.01 and 0.02 (SNR 5, 2.5).
    for sd in (0.01, 0.02):
        found = [detect_change(_series(seed, sd=sd)).index for seed in range(20)]
        assert all(i is not None and abs(i - 40) <= 2 for i in found), (sd, found)


def test_reports_the_segment_means_and_the_noise_sd():
    x = _series(3)
    res = detect_change(x)
    assert isinstance(res, ChangeDetection) and res.reason is None
    assert res.index == 40 and res.indices == (40,)
    assert res.before == pytest.approx(x[:40].mean()) and res.after == pytest.approx(x[40:].mean())
    assert res.shift == pytest.approx(x[40:].mean() - x[:40].mean())
    assert res.noise_sd == pytest.approx(qn_scale(np.diff(x)) / math.sqrt(2))
    assert res.penalty == pytest.approx(3 * math.log(60)) == default_penalty(60)
    assert (res.n_windows, res.n_used) == (60, 60) and "PELT" in res.method


def test_no_alarm_on_flat_series():
    res = detect_change(_series(0, at=None, sd=0.02))
    assert res.index is None and res.indices == () and res.reason == "no change found"
    alarms = [detect_change(_series(100 + s, at=None, sd=0.02)).index is not None
              for s in range(60)]
    assert sum(alarms) <= 3  # about 1-2% expected at 60 windows (default_penalty)


def test_empty_windows_are_skipped_and_positions_kept():
    x = _series(5)
    x[[3, 17, 39, 40]] = np.nan  # the shift lands in a gap: window 41 is the first seen
    res = detect_change(x)
    assert res.index == 41 and res.n_windows == 60 and res.n_used == 56
    kept = ~np.isnan(x)
    assert res.before == pytest.approx(x[:41][kept[:41]].mean())
    assert "4 empty windows skipped" in res.method


def test_short_empty_and_constant_series_return_a_reason():
    short = detect_change([0.8, 0.81, 0.7, np.nan, 0.69])
    assert short.index is None and "4 non-empty windows, fewer than min_windows=6" in short.reason
    empty = detect_change(np.full(10, np.nan))
    assert empty.index is None and empty.n_used == 0 and "0 non-empty" in empty.reason
    assert detect_change([]).index is None
    flat = detect_change(np.full(12, 0.8))
    assert flat.index is None and flat.reason == "the series is constant"


def test_noise_free_step_uses_the_sd_fallback():
    res = detect_change(np.r_[np.full(30, 0.8), np.full(30, 0.7)])
    assert res.index == 30 and res.shift == pytest.approx(-0.1)


def test_several_changes_and_min_shift():
    rng = np.random.default_rng(7)
    x = 0.85 + rng.normal(0, 0.005, 90)
    x[30:] -= 0.02
    x[60:] -= 0.08
    res = detect_change(x)
    assert res.indices == (30, 60) and res.index == 30
    big = detect_change(x, min_shift=0.05)
    assert big.index == 60 and big.shift == pytest.approx(x[60:].mean() - x[30:60].mean())
    none = detect_change(x, min_shift=0.5)
    assert none.index is None and "all with |shift| < min_shift=0.5" in none.reason


def test_penalty_and_min_size_are_used():
    x = _series(2, sd=0.03)
    assert detect_change(x, penalty=1e6).index is None
    late = _series(4, at=57)  # 3 windows at the new level
    assert detect_change(late).index == 57
    # min_size=4: a segment of 4 windows must start at 56 at the latest.
    assert detect_change(late, min_size=4).index in (None, 56)
    assert "fewer than min_windows=10" in detect_change(late[:9], min_size=5).reason


def test_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        detect_change(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="infinite"):
        detect_change([0.1, np.inf] * 5)
    with pytest.raises(ValueError, match="penalty must be a positive number"):
        detect_change(_series(0), penalty=0)
    with pytest.raises(ValueError, match="min_size must be an integer >= 1"):
        detect_change(_series(0), min_size=0)
    with pytest.raises(ValueError, match="min_windows must be an integer >= 2"):
        detect_change(_series(0), min_windows=1)
    with pytest.raises(ValueError, match="min_shift"):
        detect_change(_series(0), min_shift=-1)
