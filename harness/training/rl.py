"""Online-RL pieces shared by the policy-gradient methods (``grpo``, ``spear``): group-relative
advantages, schedules, the replay buffer with advantage recalibration, and turn samples.

Everything here is pure (no model, no env) and pinned by unit tests on hand-computed cases.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from agentbench.training.batch import TokenSample
from agentbench.trajectory import EpisodeRecord, Termination


@dataclass(frozen=True)
class GroupStats:
    advantages: list[float | None]
    """Per episode: its advantage, or None when its group was skipped (zero reward variance)."""
    skipped_groups: int


def group_advantages(rewards: Sequence[float], groups: Sequence[int], normalise: str = "mean_std",
                     eps: float = 1e-6) -> GroupStats:
    """Episode-level group-relative advantages: ``r - mean(group)``, divided by the group's
    (population) standard deviation + ``eps`` under ``mean_std``. A group whose rewards are all
    equal carries no signal: its episodes get None and the group is counted as skipped."""
    if normalise not in ("mean", "mean_std"):
        raise ValueError(f"unknown normalisation {normalise!r}; mean or mean_std")
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    out: list[float | None] = [None] * len(rewards)
    skipped = 0
    for idx in members.values():
        values = [rewards[i] for i in idx]
        mean = sum(values) / len(values)
        std = statistics.pstdev(values)
        if len(values) < 2 or std == 0:
            skipped += 1
            continue
        for i in idx:
            a = rewards[i] - mean
            out[i] = a / (std + eps) if normalise == "mean_std" else a
    return GroupStats(out, skipped)


def cosine_ramp(step: int, steps: int) -> float:
    """0 at step 0 rising to 1 at ``steps`` along a half cosine (1 from then on; 1 if steps <= 0)."""
    if steps <= 0 or step >= steps:
        return 1.0
    return 0.5 * (1 - math.cos(math.pi * max(step, 0) / steps))


def cosine_decay(step: int, steps: int) -> float:
    """1 at step 0 falling to 0 at ``steps`` along a half cosine (0 from then on)."""
    return 1.0 - cosine_ramp(step, steps) if steps > 0 else 0.0


def shaped_reward(record: EpisodeRecord, invalid_penalty: float) -> float:
    """The env's episode reward less ``invalid_penalty`` per invalid move (verl-agent's penalty)."""
    return record.reward - invalid_penalty * record.invalid_actions


def is_env_error(record: EpisodeRecord) -> bool:
    return record.termination == Termination.env_error


def turn_samples(record: EpisodeRecord, advantage: float, max_len: int, kind: str = "policy") -> list[TokenSample]:
    """One sample per move, the move's sampled tokens carrying the episode's advantage."""
    out = []
    for turn in record.trajectory:
        t = turn.tokens
        if t is None or not t.completion_ids:
            continue
        out.append(TokenSample.from_completion(t.prompt_ids, t.completion_ids, advantage=advantage,
                                               old_logprobs=t.logprobs, kind=kind).truncated(max_len))
    return out


@dataclass
class ReplayEntry:
    samples: list[TokenSample]
    reward: float
    step: int
    """The training step the trajectory was collected at."""


@dataclass
class ReplayBuffer:
    """Successful trajectories for self-imitation (SPEAR).

    Admission: a trajectory whose reward is at least ``min_reward`` and whose advantage at
    collection was positive. Oldest entries leave first past ``capacity``; entries collected
    more than ``staleness`` steps ago are dropped when a batch is drawn. A replayed
    trajectory's advantage is *recalibrated*: its reward less the current policy's recent
    baseline (the median of the last ``window`` rollout rewards); only non-negative ones are
    replayed."""

    capacity: int = 2048
    staleness: int = 5
    min_reward: float = 1.0
    window: int = 10240
    entries: deque = field(default_factory=deque)
    recent: deque = field(default_factory=deque)

    def observe(self, rewards: Sequence[float]) -> None:
        """Record the current policy's rollout rewards (the recalibration baseline)."""
        self.recent.extend(rewards)
        while len(self.recent) > self.window:
            self.recent.popleft()

    def baseline(self) -> float:
        return statistics.median(self.recent) if self.recent else 0.0

    def add(self, samples: list[TokenSample], reward: float, advantage: float, step: int) -> bool:
        if reward < self.min_reward or advantage <= 0 or not samples:
            return False
        self.entries.append(ReplayEntry(samples, reward, step))
        while len(self.entries) > self.capacity:
            self.entries.popleft()
        return True

    def expire(self, step: int) -> int:
        """Drop entries older than the staleness limit; returns how many went."""
        before = len(self.entries)
        self.entries = deque(e for e in self.entries if step - e.step <= self.staleness)
        return before - len(self.entries)

    def draw(self, step: int, limit: int) -> tuple[list[tuple[ReplayEntry, float]], int]:
        """Up to ``limit`` of the newest fresh entries with their recalibrated advantages
        (negative ones left out), and how many were left out for a negative advantage."""
        self.expire(step)
        base = self.baseline()
        chosen, negative = [], 0
        for entry in reversed(self.entries):
            advantage = entry.reward - base
            if advantage < 0:
                negative += 1
                continue
            chosen.append((entry, advantage))
            if len(chosen) >= limit:
                break
        return chosen, negative
