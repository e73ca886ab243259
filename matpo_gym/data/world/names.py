"""Fictional, pronounceable names from syllable tables, unique within a world.

Names are invented so that no model can answer from memory. A :class:`NameBook` hands out names
per entity kind and near-miss variants of an existing name for distractor pages (one word changed,
a word added, or a vowel shifted), never the same name twice, ignoring case.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_ONSETS = (
    "b",
    "br",
    "c",
    "cr",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "j",
    "k",
    "kr",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "sk",
    "st",
    "t",
    "th",
    "tr",
    "v",
    "vr",
    "z",
    "al",
    "el",
    "or",
    "ul",
    "an",
    "ar",
)
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ae", "ia", "ei", "ou")
_CODAS = ("", "", "", "n", "r", "l", "s", "th", "m", "nd", "rk", "x", "v", "lt")

_CITY_ENDS = (
    "mar",
    "holm",
    "vik",
    "burg",
    "ford",
    "stad",
    "gard",
    "wyn",
    "dale",
    "port",
    "mere",
    "wick",
)
_COUNTRY_ENDS = ("ia", "land", "ora", "stan", "via", "mark", "onia", "eth")
_COMPANY_WORDS = (
    "Industries",
    "Holdings",
    "Works",
    "Group",
    "Labs",
    "Systems",
    "Trading",
    "Foundry",
    "Dynamics",
    "Mills",
    "Partners",
)
_TITLE_ADJ = (
    "Silent",
    "Hollow",
    "Crimson",
    "Distant",
    "Broken",
    "Golden",
    "Quiet",
    "Lost",
    "Winter",
    "Amber",
    "Iron",
    "Glass",
    "Pale",
    "Last",
    "Wandering",
    "Hidden",
    "Burning",
    "Northern",
    "Bitter",
    "Endless",
    "Small",
    "Sleeping",
    "Narrow",
    "Shifting",
    "Salt",
)
_TITLE_NOUN = (
    "Harbor",
    "Orchard",
    "Lantern",
    "Tide",
    "Archive",
    "Meridian",
    "Garden",
    "Engine",
    "Chorus",
    "Bridge",
    "River",
    "Tower",
    "Season",
    "Mirror",
    "Compass",
    "Letter",
    "Voyage",
    "Fever",
    "Hour",
    "Signal",
    "Kingdom",
    "Ledger",
    "Island",
    "Feather",
    "Crown",
)
_PLACE_PREFIXES = ("New", "Upper", "Lower", "Port", "North", "East", "Old")
_PLACE_SUFFIXES = ("Heights", "Springs", "Crossing", "Falls")


def syllable_word(rng: random.Random, syllables: int) -> str:
    """A capitalised made-up word of ``syllables`` onset-vowel-coda syllables."""
    parts = []
    for i in range(syllables):
        coda = rng.choice(_CODAS) if i == syllables - 1 else rng.choice(_CODAS[:6])
        parts.append(rng.choice(_ONSETS) + rng.choice(_VOWELS) + coda)
    return "".join(parts).capitalize()


def _shift_vowel(rng: random.Random, word: str) -> str:
    """``word`` with one vowel replaced: sounds alike, spelled differently."""
    positions = [i for i, ch in enumerate(word) if ch in "aeiou"]
    i = rng.choice(positions) if positions else len(word) - 1
    replacement = rng.choice([v for v in "aeiou" if v != word[i]])
    return word[:i] + replacement + word[i + 1 :]


class NameBook:
    """Hands out unique names; ``variant`` makes a confusable sibling of an existing name."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def _claim(self, make: Callable[[], str]) -> str:
        for _ in range(1000):
            name = make()
            if name.lower() not in self._used:
                self._used.add(name.lower())
                return name
        raise RuntimeError("name space exhausted; use fewer entities")

    def person(self) -> str:
        rng = self._rng
        return self._claim(
            lambda: f"{syllable_word(rng, 2)} {syllable_word(rng, rng.choice((2, 2, 3)))}"
        )

    def city(self) -> str:
        rng = self._rng
        return self._claim(lambda: syllable_word(rng, rng.choice((1, 2))) + rng.choice(_CITY_ENDS))

    def country(self) -> str:
        rng = self._rng
        return self._claim(lambda: syllable_word(rng, 2) + rng.choice(_COUNTRY_ENDS))

    def company(self) -> str:
        rng = self._rng
        return self._claim(lambda: f"{syllable_word(rng, 2)} {rng.choice(_COMPANY_WORDS)}")

    def river(self) -> str:
        rng = self._rng
        return self._claim(lambda: f"{syllable_word(rng, 2)} River")

    def title(self) -> str:
        """A book or album title."""
        rng = self._rng

        def make() -> str:
            adj, noun = rng.choice(_TITLE_ADJ), rng.choice(_TITLE_NOUN)
            form = rng.randrange(4)
            if form == 0:
                return f"The {adj} {noun}"
            if form == 1:
                return f"The {noun} of {syllable_word(rng, 2)}"
            if form == 2:
                return f"{adj} {noun}s of {syllable_word(rng, 2)}"
            return f"{syllable_word(rng, 2)} {noun}"

        return self._claim(make)

    def variant(self, name: str, kind: str) -> str:
        """A new name that a searcher could mistake for ``name`` (a distractor's name)."""
        rng = self._rng
        words = name.split()

        def make() -> str:
            if kind == "Person":
                if rng.random() < 0.5:
                    return f"{syllable_word(rng, 2)} {words[-1]}"
                return f"{words[0]} {_shift_vowel(rng, words[-1])}"
            if kind == "City":
                form = rng.randrange(3)
                if form == 0:
                    return f"{rng.choice(_PLACE_PREFIXES)} {name}"
                if form == 1:
                    return f"{name} {rng.choice(_PLACE_SUFFIXES)}"
                return _shift_vowel(rng, name)
            if kind == "Company":
                if rng.random() < 0.5:
                    return f"{words[0]} {rng.choice(_COMPANY_WORDS)}"
                return f"{_shift_vowel(rng, words[0])} {words[1]}"
            if kind == "River":
                return f"{rng.choice(('Little', 'North', 'South', 'Upper'))} {name}"
            if kind in ("Book", "Album"):
                i = rng.randrange(len(words))
                swap = rng.choice(_TITLE_ADJ + _TITLE_NOUN)
                return " ".join(swap if j == i and j > 0 else w for j, w in enumerate(words))
            return _shift_vowel(rng, name)

        return self._claim(make)
