"""Answer normalisation shared by the scorers."""

from __future__ import annotations

import re
import string
import unicodedata

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")
_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")
_MINUS = re.compile(r"(?<!\w)-(?=\d)")


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation: NFKC, lower case, no punctuation, no articles, single spaces.

    Thousands separators inside numbers are removed first, so ``1,234`` and ``1234`` agree; a
    decimal point and a leading minus sign are part of a number, not punctuation, so ``1.5`` and
    ``15``, or ``-5`` and ``5``, do not.

    >>> normalize_answer("  The Krelvo  Industries! ")
    'krelvo industries'
    >>> normalize_answer("1,234")
    '1234'
    >>> normalize_answer("It fell -1.5 degrees.")
    'it fell -1.5 degrees'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = _DECIMAL_POINT.sub("\x00", text)
    text = _MINUS.sub("\x01", text)
    text = text.translate(_PUNCT).replace("\x00", ".").replace("\x01", "-")
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def as_number(text: str) -> float | None:
    """The number ``text`` denotes (after removing ``$ % ,`` and spaces), or None."""
    cleaned = re.sub(r"[\s$%,]", "", text)
    if not _NUMBER.match(cleaned):
        return None
    return float(cleaned)
