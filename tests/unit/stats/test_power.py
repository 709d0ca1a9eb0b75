import numpy as np
import pytest

from audit.stats import min_detectable_gap


def test_matches_hand_computation():
    # (z_0.975 + z_0.8) * sqrt(0.2 * 0.8 * (1/100 + 1/400))
    z = 1.959963984540054 + 0.8416212335729143
    expected = z * np.sqrt(0.16 * (0.01 + 0.0025))
    assert min_detectable_gap(0.2, 100, 400) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.12529, abs=1e-5)


def test_options_and_vectorised():
    z = 2.5758293035489004 + 1.2815515655446004  # alpha 0.01, power 0.9
    gap = min_detectable_gap(0.5, 50, 50, alpha=0.01, power=0.9)
    assert gap == pytest.approx(z * np.sqrt(0.25 * 0.04))
    gaps = min_detectable_gap(0.2, np.array([0, 25, 100]), 400)
    assert np.isnan(gaps[0]) and gaps[1] > gaps[2] > 0


def test_bad_input():
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        min_detectable_gap(0.2, 10, 10, alpha=5)
    with pytest.raises(ValueError, match=r"p must be a proportion"):
        min_detectable_gap(1.2, 10, 10)
    with pytest.raises(ValueError, match="non-negative counts"):
        min_detectable_gap(0.2, -1, 10)
