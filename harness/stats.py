"""Intervals for success rates and paired tests between two runs. Every random procedure takes
an explicit seed.

Rates and differences here are fractions in [0, 1] (or [-1, 1]); callers show points.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval: well-behaved at 0% and 100%, unlike the normal approximation."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval always contains p; at 0 and n successes centre -/+ half lands a rounding error
    # past it (1.4e-17 above 0), so the bounds are clamped to p as well as to [0, 1].
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


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


# -- paired differences (NEW - BASE) ----------------------------------------------------------
#
# Both estimators below answer the same four questions, so that a comparison can treat them
# alike: the difference, a one-sided confidence bound at any level, a two-sided p-value for
# "no difference", and a one-sided p-value for "NEW is worse by at least m" (non-inferiority).
# Each bound and its p-value are dual: lower_bound(a) > -m exactly when p_noninferiority(m) < a.


@dataclass(frozen=True)
class McNemar:
    """Paired binary outcomes, one pair per task, summarised by the discordant counts.

    Inference is conditional on the number of discordant pairs D = b + c: NEW's share of them,
    pi = c / D, gets an exact Clopper-Pearson interval, and delta = (D / n) (2 pi - 1). This is
    the interval the exact McNemar test inverts (it excludes 0 exactly when that test rejects),
    and it is degenerate at 0 when no pair is discordant: two runs that agree on every episode
    show no difference at all.
    """

    base_only: int
    """Pairs BASE solved and NEW did not (b)."""
    new_only: int
    """Pairs NEW solved and BASE did not (c)."""
    n: int
    """All pairs."""

    @property
    def discordant(self) -> int:
        return self.base_only + self.new_only

    @property
    def delta(self) -> float:
        return (self.new_only - self.base_only) / self.n if self.n else 0.0

    @property
    def sd(self) -> float:
        """Standard deviation of the per-pair difference (values -1, 0, 1)."""
        if not self.n:
            return 0.0
        return math.sqrt(max(0.0, self.discordant / self.n - self.delta**2))

    def _scale(self, pi: float) -> float:
        return self.discordant / self.n * (2 * pi - 1)

    def lower_bound(self, alpha: float) -> float:
        """One-sided lower confidence bound of delta at level 1 - alpha."""
        d, c = self.discordant, self.new_only
        if d == 0:
            return 0.0
        return self._scale(float(sps.beta.ppf(alpha, c, d - c + 1)) if c > 0 else 0.0)

    def upper_bound(self, alpha: float) -> float:
        """One-sided upper confidence bound of delta at level 1 - alpha."""
        d, c = self.discordant, self.new_only
        if d == 0:
            return 0.0
        return self._scale(float(sps.beta.ppf(1 - alpha, c + 1, d - c)) if c < d else 1.0)

    @property
    def p_value(self) -> float:
        return mcnemar_exact(self.base_only, self.new_only)

    def p_noninferiority(self, margin: float) -> float:
        """P-value of H0: delta <= -margin (exact binomial, conditional on D)."""
        d, c = self.discordant, self.new_only
        pi0 = 0.5 * (1 - margin * self.n / d) if d else -1.0
        if pi0 <= 0:  # fewer discordant pairs than the margin: delta >= -D/n > -margin for sure
            return 0.0
        return float(sps.binom.sf(c - 1, d, pi0))


@dataclass(frozen=True)
class PairedBootstrap:
    """Paired differences clustered by task (several seeds per task).

    ``sums[t]`` is the sum of (NEW - BASE) over task t's paired episodes and ``counts[t]`` their
    number; delta is sum(sums) / sum(counts). Bounds are percentiles of a bootstrap that draws
    tasks with replacement (the inverted empirical CDF, so that the duality with
    ``p_noninferiority``, the share of resampled deltas at or below -margin, is exact).

    The two-sided p-value of "no difference" is the sign-flip randomisation test over tasks
    (under H0, swapping BASE and NEW for a whole task does not change the distribution): exact
    over all 2^T flips up to 2^16, else ``n_resamples`` seeded flips. Unlike a bootstrap tail it
    stays honest with few tasks (3 tasks cannot give p below 2/8).
    """

    sums: tuple[float, ...]
    counts: tuple[int, ...]
    seed: int
    n_resamples: int = 10_000
    _draws: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sums, counts = np.asarray(self.sums, dtype=float), np.asarray(self.counts, dtype=float)
        rng = np.random.default_rng(self.seed)
        draws = np.empty(self.n_resamples)
        chunk = 1000  # keeps the index matrix small for large task sets
        for start in range(0, self.n_resamples, chunk):
            picks = rng.integers(0, len(sums), size=(min(chunk, self.n_resamples - start), len(sums)))
            draws[start:start + len(picks)] = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
        object.__setattr__(self, "_draws", np.sort(draws))

    @property
    def delta(self) -> float:
        return float(sum(self.sums) / sum(self.counts))

    @property
    def sd(self) -> float:
        """Standard deviation over tasks of the task's mean difference."""
        return float(np.std(np.asarray(self.sums) / np.asarray(self.counts)))

    def _quantile(self, q: float) -> float:
        return float(np.quantile(self._draws, q, method="inverted_cdf"))

    def lower_bound(self, alpha: float) -> float:
        return self._quantile(alpha)

    def upper_bound(self, alpha: float) -> float:
        return self._quantile(1 - alpha)

    @property
    def p_value(self) -> float:
        """Sign-flip test over tasks: the share of flips whose |sum| reaches the observed one."""
        sums = np.asarray(self.sums, dtype=float)
        observed = abs(sums.sum()) - 1e-9  # tolerance: sums of floats
        t = len(sums)
        if t <= 16:
            signs = 1 - 2 * ((np.arange(2**t)[:, None] >> np.arange(t)) & 1)
            return float(np.mean(np.abs(signs @ sums) >= observed))
        rng = np.random.default_rng(self.seed)
        signs = rng.choice([-1.0, 1.0], size=(self.n_resamples, t))
        return float((1 + np.sum(np.abs(signs @ sums) >= observed)) / (1 + self.n_resamples))

    def p_noninferiority(self, margin: float) -> float:
        """Bootstrap p-value of H0: delta <= -margin: the share of resamples at or below -margin."""
        return float(np.mean(self._draws <= -margin))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def holm_levels(p_values: Sequence[float], alpha: float) -> list[float]:
    """The level Holm tests each hypothesis at: alpha / (m - rank), rank 0 for the smallest p."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    levels = [alpha] * m
    for rank, i in enumerate(order):
        levels[i] = alpha / (m - rank)
    return levels


def paired_sample_size(sd: float, delta: float, null: float, alpha: float, power: float) -> int | None:
    """Tasks a one-sided test of H0: difference = ``null`` at level ``alpha`` needs to reject
    with probability ``power`` when the true difference is ``delta`` and the per-task difference
    has standard deviation ``sd`` (normal approximation):
    n = ((z_{1-alpha} + z_{power}) sd / |delta - null|)^2. None when delta equals the null."""
    gap = abs(delta - null)
    if gap == 0:
        return None
    z = sps.norm.ppf(1 - alpha) + sps.norm.ppf(power)
    return max(1, math.ceil((z * sd / gap) ** 2))


def mcnemar_power(n: int, psi: float, delta: float, alpha: float, margin: float | None = None) -> float:
    """Exact power of the McNemar procedures with ``n`` pairs, discordance rate ``psi`` and true
    difference ``delta``: of the two-sided test of delta = 0 (``margin`` None), else of the
    non-inferiority test of delta <= -margin. D = round(psi n) discordant pairs, of which NEW
    wins each with probability (1 + delta / psi) / 2."""
    d = round(psi * n)
    if d == 0 or psi <= 0:
        return 0.0
    c = np.arange(d + 1)
    if margin is None:
        p = np.minimum(1.0, 2 * np.minimum(sps.binom.cdf(c, d, 0.5), sps.binom.sf(c - 1, d, 0.5)))
    else:
        pi0 = 0.5 * (1 - margin / psi)
        if pi0 <= 0:
            return 1.0
        p = sps.binom.sf(c - 1, d, pi0)
    pi = min(1.0, max(0.0, 0.5 * (1 + delta / psi)))
    return float(sps.binom.pmf(c, d, pi)[p < alpha].sum())


def mcnemar_sample_size(psi: float, delta: float, alpha: float, power: float, margin: float | None = None,
                        start: int = 1, cap: int = 10_000_000) -> int | None:
    """Smallest n >= start (found by doubling, then bisection) at which ``mcnemar_power`` reaches
    ``power``; None when no n up to ``cap`` does (e.g. no true difference to find)."""
    def enough(n: int) -> bool:
        return mcnemar_power(n, psi, delta, alpha, margin) >= power

    hi = max(1, start)
    while not enough(hi):
        if hi >= cap:
            return None
        hi = min(cap, hi * 2)
    lo = max(1, start) - 1  # invariant: not enough(lo) (or lo below start), enough(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi
