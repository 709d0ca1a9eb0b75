import numpy as np
import pytest

from audit.stats import choose_threshold, parse_operating_point

Y = np.array([0, 0, 1, 0, 1, 1])
S = np.array([0.1, 0.3, 0.35, 0.4, 0.8, 0.9])


def _sens(y, s, t):
    return np.mean(s[y == 1] >= t)


def _spec(y, s, t):
    return np.mean(s[y == 0] < t)


def test_youden_hand_computed_highest_on_ties():
    # J = TPR - FPR: t=0.9: 1/3; 0.8: 2/3; 0.4: 1/3; 0.35: 2/3; 0.3: 1/3; 0.1: 0.
    assert choose_threshold(Y, S, "youden") == 0.8


def test_max_f1_hand_computed():
    # F1 at t = 0.1, 0.3, 0.35, 0.4, 0.8, 0.9: 2/3, 3/4, 6/7, 2/3, 4/5, 1/2.
    assert choose_threshold(Y, S, "max-f1") == 0.35


def test_max_f1_zero_precision_and_recall_is_not_nan():
    # At t=0.9 precision = recall = 0; the paper's formula gives NaN there.
    assert choose_threshold([1, 0], [0.2, 0.9], "max-f1") == 0.2


def test_max_f1_matches_brute_force():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    s = np.round(y + rng.standard_normal(300), 1)
    candidates = np.unique(s)  # ascending: argmax picks the lowest on ties
    f1 = []
    for t in candidates:
        pred = s >= t
        tp = np.sum(pred & y)
        f1.append(2 * tp / (pred.sum() + y.sum()))
    assert choose_threshold(y, s, "max-f1") == candidates[int(np.argmax(f1))]


def test_sensitivity_target_met_by_the_largest_threshold():
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.3).astype(int)
    s = np.round(y + rng.standard_normal(500), 2)
    for target in (0.5, 0.8, 0.9, 0.95):
        t = choose_threshold(y, s, f"sensitivity:{target}")
        assert _sens(y, s, t) >= target
        higher = np.unique(s)[np.unique(s) > t]
        assert all(_sens(y, s, h) < target for h in higher)


def test_sensitivity_hand_computed():
    y = np.array([1] * 10 + [0] * 3)
    s = np.array(list(range(1, 11)) + [5, 6, 7], dtype=float)
    # 9 of 10 positives need score >= t: t = 2.
    assert choose_threshold(y, s, "sensitivity:0.9") == 2.0
    assert choose_threshold(y, s, "sensitivity:0.91") == 1.0


def test_specificity_smallest_threshold():
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.25, 0.5])
    assert choose_threshold(y, s, "specificity:0.7") == 0.4  # 3/4 negatives below
    assert choose_threshold(y, s, "specificity:0.9") == 0.5  # all 4 below
    t = choose_threshold([0, 0, 1], [0.1, 0.9, 0.5], "specificity:0.9")
    assert t > 0.9 and t == np.nextafter(0.9, 1)
    rng = np.random.default_rng(2)
    y = rng.random(400) < 0.3
    s = np.round(y + rng.standard_normal(400), 2)
    t = choose_threshold(y, s, "specificity:0.85")
    assert _spec(y, s, t) >= 0.85
    assert all(_spec(y, s, c) < 0.85 for c in np.unique(s) if c < t)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("youden", ("youden", None)),
        (" Max-F1 ", ("max-f1", None)),
        ("sensitivity:0.9", ("sensitivity", 0.9)),
        ("specificity:0.95", ("specificity", 0.95)),
    ],
)
def test_parse_operating_point(text, expected):
    assert parse_operating_point(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "f1",
        "sens:0.9",
        "sensitivity:1",
        "sensitivity:0",
        "sensitivity:1.5",
        "specificity:abc",
        "sensitivity:nan",
        0.9,
    ],
)
def test_parse_operating_point_rejects(text):
    accepted = r"'youden', 'max-f1', 'sensitivity:X' or 'specificity:X' with 0 < X < 1"
    with pytest.raises(ValueError, match=accepted):
        parse_operating_point(text)


def test_choose_threshold_bad_input():
    with pytest.raises(ValueError, match="needs both classes; y_true has 0 positives"):
        choose_threshold([0, 0], [0.1, 0.2], "youden")
    with pytest.raises(ValueError, match="Unknown operating point 'best'"):
        choose_threshold(Y, S, "best")
    with pytest.raises(ValueError, match="NaN or infinite"):
        choose_threshold([0, 1], [0.1, np.nan], "youden")


def test_youden_matches_brute_force():
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.3
    s = np.round(y + rng.standard_normal(300), 1)
    candidates = np.unique(s)[::-1]  # descending: argmax picks the highest on ties
    n1, n0 = y.sum(), (~y).sum()
    j = [np.sum(y & (s >= t)) * n0 - np.sum(~y & (s >= t)) * n1 for t in candidates]
    assert choose_threshold(y, s, "youden") == candidates[int(np.argmax(j))]
