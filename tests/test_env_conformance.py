"""The contract every local environment keeps (run over every registered, runnable env).

- the same task and seed give the same episode;
- the expert solves at least 95% of sampled test tasks;
- snapshot/restore (or replay, where the env cannot snapshot) returns to the same state;
- garbage actions are survived: invalid, not fatal, the episode goes on.
"""

from __future__ import annotations

import random

import pytest

from agentbench import registry
from agentbench.env import SPLITS, Env, replay

EXPERT_SAMPLE = 20
# Envs that need something this machine lacks are skipped by their availability check;
# envs whose episodes are expensive may lower the sample through this attribute.
SAMPLE_ATTR = "conformance_sample"


def _local_envs() -> list[str]:
    names = []
    for name, _dist, cls in registry.envs.describe():
        if isinstance(cls, Exception) or not hasattr(cls, "availability"):
            continue
        if getattr(cls, "remote", False):
            continue
        names.append(name)
    return names


@pytest.fixture(params=_local_envs())
def env(request) -> Env:
    cls = registry.envs.get(request.param)
    available = cls.availability()
    if not available.runnable:
        pytest.skip(f"{request.param} cannot run here: {available.detail}")
    instance = cls()
    yield instance
    instance.close()


def _play(env: Env, task, seed: int, actions: list[str]) -> list[tuple[str, float, bool]]:
    out = [(env.reset(task, seed=seed), 0.0, False)]
    for action in actions:
        step = env.step(action)
        out.append((step.observation, step.reward, step.done))
        if step.done:
            break
    return out


def _expert_actions(env: Env, task, seed: int, limit: int) -> tuple[list[str], bool]:
    env.reset(task, seed=seed)
    actions, success = [], False
    for _ in range(limit):
        action = env.expert_step().action
        actions.append(action)
        step = env.step(action)
        if step.done:
            success = step.info.success
            break
    return actions, success


def test_splits_are_disjoint_and_named(env: Env):
    ids = {}
    for split in SPLITS:
        tasks = env.tasks(split)
        assert tasks, f"{env.name} has no {split} tasks"
        assert all(t.split == split for t in tasks)
        ids[split] = {t.id for t in tasks}
        assert len(ids[split]) == len(tasks), "task ids must be unique within a split"
    specs = {split: {repr(sorted(t.spec.items())) for t in env.tasks(split)} for split in SPLITS}
    assert not specs["train"] & specs["test"], "a test task also occurs in train"


def test_same_seed_same_episode(env: Env):
    task = env.tasks("test")[0]
    actions, _ = _expert_actions(env, task, 0, type(env).default_max_turns)
    assert _play(env, task, 0, actions) == _play(env, task, 0, actions)


def test_expert_solves_test_tasks(env: Env):
    tasks = env.tasks("test")
    n = min(getattr(type(env), SAMPLE_ATTR, EXPERT_SAMPLE), len(tasks))
    sample = random.Random(0).sample(list(tasks), n)
    solved = sum(_expert_actions(env, t, 0, 4 * type(env).default_max_turns)[1] for t in sample)
    assert solved / n >= 0.95, f"{env.name}: expert solved {solved}/{n}"


def test_snapshot_or_replay_round_trips(env: Env):
    task = env.tasks("train")[0]
    actions, _ = _expert_actions(env, task, 0, type(env).default_max_turns)
    cut = max(1, len(actions) // 2)
    prefix, expert_next = actions[:cut], actions[min(cut, len(actions) - 1)]
    here = replay(env, task, 0, prefix)
    assert replay(env, task, 0, prefix) == here, "replaying the same prefix must reach the same state"
    if not getattr(type(env), "supports_snapshot", False):
        return
    alternative = (env.admissible_actions() or ["garbage action"])[-1]
    snap = env.snapshot()
    branched = env.step(alternative).observation
    env.restore(snap)
    assert env.step(alternative).observation == branched, "a restored state must branch the same way"
    env.restore(snap)
    continued = env.step(expert_next).observation
    replay(env, task, 0, prefix)
    assert env.step(expert_next).observation == continued, "restore must leave the env as replay does"


@pytest.mark.parametrize("garbage", ["", "asdf qwerty", "Action: Action:", "💥" * 50, "x" * 5000])
def test_garbage_actions_are_survived(env: Env, garbage: str):
    task = env.tasks("test")[0]
    env.reset(task, seed=0)
    step = env.step(garbage)
    assert isinstance(step.observation, str) and step.observation
    assert not step.info.valid
    assert not step.done
    # and the episode goes on: the expert can still act
    follow = env.step(env.expert_step().action)
    assert follow.info.valid
