"""Scorers: named answer-correctness functions that declare the metrics they report.

The leaderboard reads the same metric names a run wrote, so each scorer lists its metrics up
front and :meth:`Scorer.score` always returns exactly those keys. ``primary`` is the one used as
the episode's score (and hence the reward's accuracy term).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matpo_gym.data.tasks import Task
from matpo_gym.scoring.metrics import exact_match, f1, gaia_match

Metric = Callable[[str, str], float]


@dataclass(frozen=True)
class Scorer:
    """A primary metric plus secondary ones, each computed against the gold answer and aliases."""

    name: str
    primary: str
    metrics: dict[str, Metric]

    def score(self, prediction: str | None, task: Task) -> dict[str, float]:
        """Every declared metric, maximised over the gold answer and its aliases; 0 for no answer."""
        if prediction is None:
            return {name: 0.0 for name in self.metrics}
        golds = (task.answer, *task.aliases)
        return {
            name: max(metric(prediction, gold) for gold in golds)
            for name, metric in self.metrics.items()
        }


SCORERS: dict[str, Scorer] = {
    "exact_match": Scorer("exact_match", "exact_match", {"exact_match": exact_match, "f1": f1}),
    "f1": Scorer("f1", "f1", {"f1": f1, "exact_match": exact_match}),
    "gaia": Scorer("gaia", "gaia_match", {"gaia_match": gaia_match, "exact_match": exact_match}),
}


def get_scorer(name: str) -> Scorer:
    """The scorer called ``name``; a clear error lists the known ones."""
    try:
        return SCORERS[name]
    except KeyError:
        raise KeyError(f"Unknown scorer {name!r}; known scorers: {', '.join(sorted(SCORERS))}") from None
