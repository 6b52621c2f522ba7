"""The contract every environment keeps, as checks that return what they found.

The test suite asserts them over every registered, runnable env (tests/test_env_conformance.py);
``agentbench check-env NAME`` runs them on any env, a plugin's included, and prints a report:

- determinism: the same task, seed and actions give the same episode;
- the expert: the share of sampled tasks per split it solves (the contract asks >= 95% of test);
- branching: replaying a prefix reaches the same state, and where the env snapshots, a restored
  state branches as the original did and leaves the env as replay does;
- robustness: garbage actions are invalid, not fatal, and the episode goes on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from agentbench.env import Env, NoExpert, Task, replay

GARBAGE_ACTIONS: tuple[str, ...] = ("", "asdf qwerty", "Action: Action:", "💥" * 50, "x" * 5000)
EXPERT_THRESHOLD = 0.95
"""Share of sampled test tasks the expert must solve."""


def play(env: Env, task: Task, seed: int, actions: Sequence[str]) -> list[tuple[str, float, bool]]:
    """(observation, reward, done) from ``reset`` through ``actions`` (stopping when done)."""
    out = [(env.reset(task, seed=seed), 0.0, False)]
    for action in actions:
        step = env.step(action)
        out.append((step.observation, step.reward, step.done))
        if step.done:
            break
    return out


def expert_episode(env: Env, task: Task, seed: int, limit: int) -> tuple[list[str], bool]:
    """The expert's actions on ``task`` (at most ``limit``) and whether they solved it."""
    env.reset(task, seed=seed)
    actions: list[str] = []
    try:
        for _ in range(limit):
            action = env.expert_step().action
            actions.append(action)
            step = env.step(action)
            if step.done:
                return actions, step.info.success
    except NoExpert:
        pass
    return actions, False


@dataclass
class ExpertRate:
    split: str
    solved: int
    sampled: int
    mean_actions: float
    failed: list[str] = field(default_factory=list)
    """Ids of the sampled tasks the expert did not solve."""

    @property
    def rate(self) -> float:
        return self.solved / self.sampled if self.sampled else 0.0


def sample_tasks(env: Env, split: str, n: int, seed: int = 0) -> list[Task]:
    tasks = list(env.tasks(split))
    return random.Random(seed).sample(tasks, min(n, len(tasks)))


def expert_rate(env: Env, split: str, n: int, seed: int = 0) -> ExpertRate:
    """The expert on ``n`` tasks of ``split`` sampled with ``seed``; episodes get 4x the turn limit."""
    limit = 4 * type(env).default_max_turns
    solved, lengths, failed = 0, [], []
    sample = sample_tasks(env, split, n, seed)
    for task in sample:
        actions, success = expert_episode(env, task, 0, limit)
        solved += success
        lengths.append(len(actions))
        if not success:
            failed.append(task.id)
    mean = sum(lengths) / len(lengths) if lengths else 0.0
    return ExpertRate(split, solved, len(sample), mean, failed)


def is_deterministic(env: Env, task: Task) -> bool:
    actions, _ = expert_episode(env, task, 0, type(env).default_max_turns)
    return play(env, task, 0, actions) == play(env, task, 0, actions)


def branching_problems(env: Env, task: Task) -> list[str]:
    """What breaks when branching from the middle of an expert episode (empty: nothing)."""
    actions, _ = expert_episode(env, task, 0, type(env).default_max_turns)
    cut = max(1, len(actions) // 2)
    prefix, expert_next = actions[:cut], actions[min(cut, len(actions) - 1)]
    here = replay(env, task, 0, prefix)
    problems = []
    if replay(env, task, 0, prefix) != here:
        problems.append("replaying the same prefix reaches a different state")
    if not getattr(env, "supports_snapshot", False):
        return problems
    alternative = (env.admissible_actions() or ["garbage action"])[-1]
    snap = env.snapshot()
    branched = env.step(alternative).observation
    env.restore(snap)
    if env.step(alternative).observation != branched:
        problems.append("a restored state branches differently")
    env.restore(snap)
    continued = env.step(expert_next).observation
    replay(env, task, 0, prefix)
    if env.step(expert_next).observation != continued:
        problems.append("restore leaves the env in another state than replay")
    return problems


def garbage_problem(env: Env, task: Task, garbage: str) -> str | None:
    """Why ``garbage`` was not survived as an invalid move (None: it was)."""
    env.reset(task, seed=0)
    try:
        step = env.step(garbage)
    except Exception as exc:  # the point of the check: report, don't crash
        return f"raised {exc!r}"
    if not (isinstance(step.observation, str) and step.observation):
        return "no observation"
    if step.info.valid:
        return "counted as a valid action"
    if step.done:
        return "ended the episode"
    try:
        follow = env.step(env.expert_step().action)
    except NoExpert:
        return None
    return None if follow.info.valid else "the expert's next action became invalid"
