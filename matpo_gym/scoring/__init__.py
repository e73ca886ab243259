"""Answer scoring: normalisation, exact match / F1, GAIA quasi-exact match."""

from matpo_gym.scoring.metrics import exact_match, f1, gaia_match
from matpo_gym.scoring.normalize import normalize_answer
from matpo_gym.scoring.scorers import SCORERS, Scorer, get_scorer

__all__ = ["SCORERS", "Scorer", "exact_match", "f1", "gaia_match", "get_scorer", "normalize_answer"]
