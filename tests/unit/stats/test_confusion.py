import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from audit.stats import CELLS, cell_codes, rates_from_counts


def test_cell_codes_follow_cells_order():
    y = [1, 1, 0, 0]
    pred = [1, 0, 1, 0]
    assert CELLS == ("tp", "fn", "fp", "tn")
    codes = cell_codes(y, pred)
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(codes, [0, 1, 2, 3])


def test_cell_codes_accept_bool():
    codes = cell_codes(np.array([True, False]), np.array([False, False]))
    np.testing.assert_array_equal(codes, [1, 3])


@pytest.mark.parametrize(
    ("y", "pred", "match"),
    [
        ([0, 2], [0, 1], r"y_true must hold only 0 and 1; found \[2\]"),
        ([0, 1], [0, 1, 1], "same length"),
        (["a", "b"], [0, 1], "0/1"),
        ([[0, 1]], [[0, 1]], "1-D"),
    ],
)
def test_cell_codes_reject_bad_labels(y, pred, match):
    with pytest.raises(ValueError, match=match):
        cell_codes(y, pred)


def test_rates_hand_computed():
    # tp=6, fn=2, fp=3, tn=9
    r = rates_from_counts([6, 2, 3, 9])
    expected = {
        "n": 20,
        "positives": 8,
        "prevalence": 8 / 20,
        "sensitivity": 6 / 8,
        "specificity": 9 / 12,
        "fnr": 2 / 8,
        "fpr": 3 / 12,
        "ppv": 6 / 9,
        "npv": 9 / 11,
    }
    assert set(r) == set(expected)
    for key, value in expected.items():
        assert r[key] == pytest.approx(value, abs=1e-15), key


def test_rates_nan_when_undefined():
    # A group with no positives: FNR and sensitivity are undefined, not 0.
    r = rates_from_counts([0, 0, 2, 5])
    assert np.isnan(r["fnr"]) and np.isnan(r["sensitivity"])
    assert r["ppv"] == 0.0  # 2 false positives: defined, and 0
    assert r["specificity"] == pytest.approx(5 / 7)
    assert r["npv"] == 1.0
    assert r["prevalence"] == 0.0
    empty = rates_from_counts([0, 0, 0, 0])
    assert all(np.isnan(empty[k]) for k in ("prevalence", "fnr", "fpr", "ppv", "npv"))


def test_rates_keep_leading_shape():
    counts = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    r = rates_from_counts(counts)
    assert r["fnr"].shape == (2, 3)
    assert r["fnr"][1, 2] == pytest.approx(counts[1, 2, 1] / (counts[1, 2, 0] + counts[1, 2, 1]))


def test_rates_reject_bad_shape_and_negative_counts():
    with pytest.raises(ValueError, match="last axis of length 4"):
        rates_from_counts(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="non-negative"):
        rates_from_counts([1, -1, 0, 0])


def test_rates_match_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    pred = np.where(rng.random(5000) < 0.8, y, 1 - y)
    codes = cell_codes(y, pred)
    r = rates_from_counts(np.bincount(codes, minlength=4))
    tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
    np.testing.assert_array_equal(np.bincount(codes, minlength=4), [tp, fn, fp, tn])
    assert abs(r["sensitivity"] - recall_score(y, pred)) < 1e-12
    assert abs(r["fnr"] - (1 - recall_score(y, pred))) < 1e-12
    assert abs(r["specificity"] - recall_score(y, pred, pos_label=0)) < 1e-12
    assert abs(r["ppv"] - precision_score(y, pred)) < 1e-12
    assert abs(r["npv"] - precision_score(y, pred, pos_label=0)) < 1e-12
    assert abs(r["fpr"] - fp / (fp + tn)) < 1e-12
