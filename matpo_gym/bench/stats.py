"""Confidence intervals for benchmark accuracies: a seeded percentile bootstrap, pure numpy.

>>> bootstrap_ci([1, 1, 1, 1])
(1.0, 1.0)
>>> bootstrap_ci([])
(nan, nan)
>>> lo, hi = bootstrap_ci([1, 0] * 50, seed=0)
>>> 0.35 < lo < 0.5 < hi < 0.65
True
>>> mean_ci([1, 0, 1, 1])
MeanCI(n=4, mean=0.75, low=0.25, high=1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

_CHUNK_ELEMENTS = 1 << 22
"""Resampled values drawn at once (about 32 MiB of indices); bounds memory for large samples."""


class MeanCI(NamedTuple):
    """A sample mean with its bootstrap confidence interval."""

    n: int
    """Number of values (questions) the mean is over."""
    mean: float
    """Sample mean; NaN when ``n == 0``."""
    low: float
    """Lower end of the interval; NaN when ``n == 0``."""
    high: float
    """Upper end of the interval; NaN when ``n == 0``."""


def _as_values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError("bootstrap values must be finite numbers (no NaN or inf)")
    return array


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values``.

    Draws ``resamples`` samples of ``len(values)`` values with replacement, takes each sample's
    mean, and returns the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of those
    means. The draw is seeded, so the same inputs always give the same interval.

    Degenerate cases are answered without resampling: no values give ``(nan, nan)``, and values
    that are all equal to ``v`` give ``(v, v)`` (every resample has mean ``v``).

    Args:
        values: One number per independent unit (for accuracy: one score per question).
        resamples: Number of bootstrap resamples (at least 1).
        confidence: Coverage of the interval, strictly between 0 and 1.
        seed: Seed of the resampling generator.

    Raises:
        ValueError: On non-finite values, ``resamples < 1`` or ``confidence`` outside (0, 1).
    """
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    array = _as_values(values)
    n = array.size
    if n == 0:
        return (math.nan, math.nan)
    if np.all(array == array[0]):
        value = float(array[0])
        return (value, value)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, rows):
        stop = min(start + rows, resamples)
        index = rng.integers(0, n, size=(stop - start, n))  # [rows, n]
        means[start:stop] = array[index].mean(axis=1)  # [rows]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return (float(low), float(high))


def mean_ci(
    values: Sequence[float] | np.ndarray,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MeanCI:
    """The mean of ``values`` with its :func:`bootstrap_ci` interval (NaN everywhere when empty)."""
    array = _as_values(values)
    low, high = bootstrap_ci(array, resamples=resamples, confidence=confidence, seed=seed)
    mean = float(array.mean()) if array.size else math.nan
    return MeanCI(n=int(array.size), mean=mean, low=low, high=high)
