"""The paired statistics of ``agentbench compare`` on crafted inputs with hand-computed values."""

from __future__ import annotations

import math

import pytest

from agentbench.compare import Verdict, decide, overall
from agentbench.stats import (
    McNemar,
    PairedBootstrap,
    holm,
    holm_levels,
    mcnemar_exact,
    mcnemar_power,
    mcnemar_sample_size,
    paired_sample_size,
)


@pytest.mark.parametrize(("b", "c", "expected"), [
    (0, 0, 1.0),                 # no discordant pair: no evidence at all
    (0, 5, 2 / 32),              # 2 * 0.5^5
    (5, 0, 2 / 32),              # symmetric
    (1, 6, 2 * 8 / 128),         # 2 * P(X >= 6), X ~ Bin(7, 1/2) = 2 * (7 + 1) / 128
    (2, 8, 2 * 56 / 1024),       # 2 * (45 + 10 + 1) / 1024
    (3, 3, 1.0),                 # 2 * 42/64 capped at 1
])
def test_exact_mcnemar_matches_the_binomial_tails(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_interval_is_clopper_pearson_scaled_by_the_discordance_rate():
    # all 5 discordant pairs favour NEW, 20 pairs: pi_L = a^(1/5), delta_L = (5/20)(2 pi_L - 1)
    est = McNemar(base_only=0, new_only=5, n=20)
    assert est.delta == 0.25
    assert est.lower_bound(0.025) == pytest.approx(0.25 * (2 * 0.025 ** 0.2 - 1), rel=1e-9)
    assert est.upper_bound(0.025) == 0.25  # pi_U = 1
    # all 4 discordant pairs favour BASE, 10 pairs: pi_U = 1 - a^(1/4)
    worse = McNemar(base_only=4, new_only=0, n=10)
    assert worse.lower_bound(0.05) == pytest.approx(-0.4)
    assert worse.upper_bound(0.05) == pytest.approx(0.4 * (2 * (1 - 0.05 ** 0.25) - 1), rel=1e-9)
    assert worse.sd == pytest.approx(math.sqrt(0.4 - 0.16))


def test_identical_outcomes_have_a_zero_width_interval():
    est = McNemar(0, 0, 24)
    assert (est.delta, est.lower_bound(0.001), est.upper_bound(0.001), est.p_value) == (0, 0, 0, 1)
    assert est.p_noninferiority(0.02) == 0.0


def test_mcnemar_noninferiority_p_value_and_its_duality_with_the_bound():
    # D = 3 of n = 50, margin 0.02: pi0 = (1 - 0.02 * 50 / 3) / 2 = 1/3; P(C >= 1) = 1 - (2/3)^3
    est = McNemar(base_only=2, new_only=1, n=50)
    p = est.p_noninferiority(0.02)
    assert p == pytest.approx(19 / 27, rel=1e-12)
    assert est.lower_bound(p) == pytest.approx(-0.02, abs=1e-9)  # the bound sits on -margin at level p
    assert est.lower_bound(p * 1.01) > -0.02 > est.lower_bound(p * 0.99)
    # fewer discordant pairs than the margin allows: delta >= -1/100 > -0.02 whatever they are
    assert McNemar(base_only=1, new_only=0, n=100).p_noninferiority(0.02) == 0.0


def test_mcnemar_interval_excludes_zero_exactly_when_the_test_rejects():
    for b, c in [(0, 5), (0, 6), (1, 8), (2, 8), (3, 12), (5, 5)]:
        est = McNemar(b, c, 40)
        rejects = est.p_value < 0.05
        assert (est.lower_bound(0.025) > 0 or est.upper_bound(0.025) < 0) == rejects, (b, c)


def test_bootstrap_of_two_tasks_has_the_three_resample_values():
    # task A: diffs (+1, 0) -> sum 1 of 2; task B: (0, 0). Resampled deltas: 0.5 (1/4), 0.25 (1/2), 0 (1/4)
    est = PairedBootstrap(sums=(1.0, 0.0), counts=(2, 2), seed=0, n_resamples=20_000)
    assert est.delta == 0.25
    assert est.p_noninferiority(0.0) == pytest.approx(0.25, abs=0.015)   # share of resamples <= 0
    assert est.p_value == 1.0  # every sign flip of (1, 0) has |sum| = 1
    assert est.lower_bound(0.1) == 0.0 and est.lower_bound(0.4) == 0.25
    assert est.upper_bound(0.1) == 0.5
    assert est.sd == pytest.approx(0.25)  # task means 0.5 and 0


@pytest.mark.parametrize(("sums", "expected"), [
    ((1.0, 1.0, 1.0), 2 / 8),        # only all-plus and all-minus reach |3|
    ((2.0, 1.0, 1.0, 0.0), 4 / 16),  # the same, doubled by the zero task's two signs
    ((0.0, 0.0, 0.0), 1.0),          # identical runs
    ((1.0, -1.0), 1.0),
])
def test_sign_flip_p_value_over_tasks(sums, expected):
    assert PairedBootstrap(sums, (2,) * len(sums), seed=0, n_resamples=100).p_value == pytest.approx(expected)


def test_sign_flip_p_value_by_monte_carlo_for_many_tasks():
    # 20 tasks all -1: the exact p is 2 / 2^20; the seeded Monte Carlo floor is 1 / (1 + resamples)
    est = PairedBootstrap((-1.0,) * 20, (1,) * 20, seed=3, n_resamples=999)
    assert est.p_value == pytest.approx(1 / 1000)
    balanced = PairedBootstrap((1.0, -1.0) * 10, (1,) * 20, seed=3, n_resamples=999)
    assert balanced.p_value == 1.0


def test_bootstrap_is_seeded_and_identical_runs_pass():
    sums, counts = (1.0, -2.0, 0.0, 1.0, 3.0), (3, 3, 3, 3, 3)
    a = PairedBootstrap(sums, counts, seed=7, n_resamples=2000)
    b = PairedBootstrap(sums, counts, seed=7, n_resamples=2000)
    c = PairedBootstrap(sums, counts, seed=8, n_resamples=2000)
    assert (a.lower_bound(0.05), a.p_noninferiority(0.0)) == (b.lower_bound(0.05), b.p_noninferiority(0.0))
    assert a.p_noninferiority(0.0) != c.p_noninferiority(0.0)  # another seed, other resamples
    same = PairedBootstrap((0.0,) * 6, (3,) * 6, seed=0, n_resamples=1000)
    assert (same.lower_bound(0.001), same.upper_bound(0.001), same.p_value) == (0, 0, 1)
    assert same.p_noninferiority(0.02) == 0.0


def test_holm_adjusts_step_down_and_keeps_the_input_order():
    # sorted 0.01, 0.03, 0.04, 0.5 -> 4*0.01, 3*0.03, max(2*0.04, 0.09), max(0.5, 0.09)
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])
    assert holm([0.9]) == [0.9]
    assert holm_levels([0.01, 0.04, 0.03, 0.5], 0.05) == pytest.approx([0.0125, 0.025, 0.05 / 3, 0.05])


def test_verdict_rule():
    # significant and past the margin: regression
    assert decide(0.01, 0.9, delta=-0.05, margin=0.02, alpha=0.05) is Verdict.regression
    # significant but within the margin, non-inferiority not shown: inconclusive
    assert decide(0.01, 0.2, delta=-0.01, margin=0.02, alpha=0.05) is Verdict.inconclusive
    # non-inferiority shown: pass, even with a (small) significant drop
    assert decide(0.01, 0.01, delta=-0.01, margin=0.02, alpha=0.05) is Verdict.passed
    # a big drop that is not significant: inconclusive
    assert decide(0.2, 0.9, delta=-0.3, margin=0.02, alpha=0.05) is Verdict.inconclusive
    assert overall([Verdict.passed, Verdict.inconclusive, Verdict.regression]) is Verdict.regression
    assert overall([Verdict.passed, Verdict.inconclusive]) is Verdict.inconclusive
    assert overall([Verdict.passed, Verdict.passed]) is Verdict.passed


def test_sample_size_by_the_normal_approximation():
    # ((z_.95 + z_.8) * 0.5 / 0.02)^2 = (2.486475 * 25)^2 = 3864.1 -> 3865
    assert paired_sample_size(sd=0.5, delta=0.0, null=-0.02, alpha=0.05, power=0.8) == 3865
    assert paired_sample_size(sd=0.5, delta=-0.02, null=-0.02, alpha=0.05, power=0.8) is None
    # a larger gap needs fewer tasks, a stricter level more
    assert paired_sample_size(0.5, 0.1, -0.02, 0.05, 0.8) < 3865 < paired_sample_size(0.5, 0.0, -0.02, 0.01, 0.8)


def test_exact_mcnemar_power_and_sample_size():
    # every pair discordant and lost: 6 pairs give p = 2/64 < 0.05, 5 give 2/32 > 0.05
    assert mcnemar_power(6, psi=1.0, delta=-1.0, alpha=0.05) == 1.0
    assert mcnemar_power(5, psi=1.0, delta=-1.0, alpha=0.05) == 0.0
    assert mcnemar_sample_size(1.0, -1.0, 0.05, 0.8, start=4) == 6
    # non-inferiority at psi = 0.1, delta = 0, margin 0.02: pi0 = 0.4 against pi = 0.5; the normal
    # approximation D = ((1.645 sqrt(.24) + 0.842 sqrt(.25)) / 0.1)^2 = 150 gives n = D / psi = 1500
    n = mcnemar_sample_size(0.1, 0.0, 0.05, 0.8, margin=0.02)
    assert 1400 < n < 1650
    assert mcnemar_power(n, 0.1, 0.0, 0.05, margin=0.02) >= 0.8 > mcnemar_power(n - 10, 0.1, 0.0, 0.05, margin=0.02)
    assert mcnemar_sample_size(0.1, -0.02, 0.05, 0.8, margin=0.02, cap=1000) is None  # on the margin: never
