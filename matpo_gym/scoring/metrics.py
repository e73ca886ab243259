"""Answer-correctness metrics: exact match, token F1, and GAIA's quasi-exact match."""

from __future__ import annotations

import re
import string
from collections import Counter

from matpo_gym.scoring.normalize import as_number, normalize_answer


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when both are the same number, or (not both numbers) the normalised strings agree.

    Two numbers are compared as numbers only, so a sign or a decimal point matters.

    >>> exact_match("The answer is 1,873.", "1873")
    0.0
    >>> exact_match("1,873", "1873.0")
    1.0
    >>> exact_match("-5", "5"), exact_match("1.5 km", "15 km")
    (0.0, 0.0)
    """
    pred_num, gold_num = as_number(prediction), as_number(gold)
    if pred_num is not None and gold_num is not None:
        return float(pred_num == gold_num)
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised strings (SQuAD definition)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _gaia_string(text: str, *, remove_punctuation: bool) -> str:
    text = re.sub(r"\s", "", text).lower()
    if remove_punctuation:
        text = text.translate(str.maketrans("", "", string.punctuation))
    return text


def _gaia_number(text: str) -> float | None:
    try:
        return float(re.sub(r"[$%,]", "", text).strip())
    except ValueError:
        return None


def gaia_match(prediction: str, gold: str) -> float:
    """GAIA's quasi-exact match.

    * a numeric gold answer: the prediction, without ``$ % ,``, must be the same float;
    * a gold answer containing ``,`` or ``;`` is a list: both sides are split on those, must have
      the same length, and are compared element by element (numbers as numbers, strings without
      whitespace and case, punctuation kept);
    * any other string: compared without whitespace, case and punctuation.

    >>> gaia_match("$1,200", "1200")
    1.0
    >>> gaia_match("apples; Pears", "apples, pears")
    1.0
    >>> gaia_match("apples", "apples, pears")
    0.0
    >>> gaia_match("St. Petersburg", "Saint Petersburg")
    0.0
    """
    if _gaia_number(gold) is not None:
        value = _gaia_number(prediction)
        return float(value is not None and value == _gaia_number(gold))
    if any(sep in gold for sep in ",;"):
        gold_items = re.split(r"[,;]", gold)
        pred_items = re.split(r"[,;]", prediction)
        if len(gold_items) != len(pred_items):
            return 0.0
        for pred_item, gold_item in zip(pred_items, gold_items):
            gold_value = _gaia_number(gold_item)
            if gold_value is not None:
                if _gaia_number(pred_item) != gold_value:
                    return 0.0
            elif _gaia_string(pred_item, remove_punctuation=False) != _gaia_string(
                gold_item, remove_punctuation=False
            ):
                return 0.0
        return 1.0
    return float(
        _gaia_string(prediction, remove_punctuation=True) == _gaia_string(gold, remove_punctuation=True)
    )
