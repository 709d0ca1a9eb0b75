import numpy as np
import pytest
from scipy.stats import false_discovery_control

from audit.stats import adjust_pvalues

P = [0.01, 0.04, 0.03, 0.005]


def test_holm_hand_computed():
    # Sorted: 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> 0.02, 0.03, 0.06, max(0.06, 0.04).
    np.testing.assert_allclose(adjust_pvalues(P, "holm"), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(adjust_pvalues(P), [0.03, 0.06, 0.06, 0.02])


def test_holm_is_monotone_and_capped():
    np.testing.assert_allclose(adjust_pvalues([0.5, 0.6, 0.01]), [1.0, 1.0, 0.03])
    rng = np.random.default_rng(0)
    p = rng.random(50) ** 3
    adj = adjust_pvalues(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0)
    assert np.all(adj >= p) and np.all(adj <= 1)


def test_bh_hand_computed_and_matches_scipy():
    # Sorted: 0.005*4/1, 0.01*4/2, 0.03*4/3, 0.04*4/4 -> step-up minimum.
    np.testing.assert_allclose(adjust_pvalues(P, "bh"), [0.02, 0.04, 0.04, 0.02])
    p = np.random.default_rng(1).random(40) ** 2
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), false_discovery_control(p, method="bh"))


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_nan_passed_through_and_not_counted(method):
    out = adjust_pvalues([0.01, np.nan, 0.04], method)
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], adjust_pvalues([0.01, 0.04], method))
    assert np.isnan(adjust_pvalues([np.nan, np.nan], method)).all()
    assert adjust_pvalues(np.array([]), method).shape == (0,)


def test_bad_input():
    message = "Unknown p-value adjustment method 'bonferroni'; expected one of: 'bh', 'holm'"
    with pytest.raises(ValueError, match=message):
        adjust_pvalues(P, "bonferroni")
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        adjust_pvalues([0.5, 1.5])
