"""Exact match and F1 on the cases that decide a reward: numbers, signs, decimal points, units."""

import pytest

from matpo_gym.scoring.metrics import exact_match, f1


@pytest.mark.parametrize("prediction, gold, expected", [
    ("1,873", "1873", 1.0),
    ("1873.0", "1,873", 1.0),
    ("$1,200", "1200", 1.0),
    ("-5", "5", 0.0),           # a sign error is wrong
    ("1.5", "15", 0.0),         # so is a misplaced decimal point
    ("12.5", "125", 0.0),
    ("1.5 km", "15 km", 0.0),   # not a bare number: the string keeps its decimal point
    ("1.5 km", "1.5 km.", 1.0),
    ("The Krelvo Industries", "krelvo industries!", 1.0),
    ("Born in 1990.", "born in 1990", 1.0),
])
def test_exact_match(prediction, gold, expected):
    assert exact_match(prediction, gold) == expected


def test_f1_keeps_numbers_whole():
    assert f1("3.5 metres", "35 metres") == pytest.approx(0.5)
    assert f1("-4 degrees", "-4 degrees") == 1.0
    assert f1("4 degrees", "-4 degrees") == pytest.approx(0.5)
