"""Intervals for success rates. Every random procedure takes an explicit seed."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval: well-behaved at 0% and 100%, unlike the normal approximation."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def cluster_bootstrap_interval(
    outcomes: Sequence[tuple[str, float]], seed: int, n_resamples: int = 2000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap of the mean, resampling *tasks* (clusters of seeds) with replacement."""
    by_task: dict[str, list[float]] = defaultdict(list)
    for task, value in outcomes:
        by_task[task].append(value)
    sums = np.array([sum(v) for v in by_task.values()])
    counts = np.array([len(v) for v in by_task.values()])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sums), size=(n_resamples, len(sums)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts of a paired binary outcome
    (``b``: pass before, fail after; ``c``: the reverse): ``min(1, 2 P(X <= min(b, c)))`` with
    ``X ~ Binomial(b + c, 1/2)``; 1 when no pair is discordant."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts are non-negative")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)  # exact integer arithmetic up to one division


def paired_bootstrap_delta(
    before: Sequence[float], after: Sequence[float], weights: Sequence[float], seed: int,
    n_resamples: int = 10000, level: float = 0.95,
) -> tuple[float, tuple[float, float]]:
    """The difference of two paired ratio-of-sums accuracies, ``sum(after)/sum(w) - sum(before)/sum(w)``,
    and its percentile bootstrap interval, resampling *items* (prompts) with replacement: item i
    contributes ``before[i]`` and ``after[i]`` successes out of ``weights[i]`` trials (its
    instructions), so both accuracies of a resample see the same items."""
    b, a, w = (np.asarray(x, dtype=float) for x in (before, after, weights))
    if not len(w) or len(b) != len(w) or len(a) != len(w) or (w <= 0).any():
        raise ValueError("paired_bootstrap_delta needs equally long inputs and positive weights")
    delta = float((a.sum() - b.sum()) / w.sum())
    rng = np.random.default_rng(seed)
    diff = a - b
    stats = np.empty(n_resamples)
    block = max(1, 2_000_000 // len(w))  # bounded memory for large item counts
    for start in range(0, n_resamples, block):
        picks = rng.integers(0, len(w), size=(min(block, n_resamples - start), len(w)))
        stats[start : start + len(picks)] = diff[picks].sum(axis=1) / w[picks].sum(axis=1)
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return delta, (float(lo), float(hi))
