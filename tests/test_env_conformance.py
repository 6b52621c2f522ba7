"""The contract every local environment keeps (run over every registered, runnable env).

- the same task and seed give the same episode;
- the expert solves at least 95% of sampled test tasks;
- snapshot/restore (or replay, where the env cannot snapshot) returns to the same state;
- garbage actions are survived: invalid, not fatal, the episode goes on.
"""

from __future__ import annotations

import pytest

from agentbench import conformance, registry
from agentbench.env import Env

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
    # an env may name the settings its contract is checked under (tau-bench: the scripted user)
    instance = cls.from_params(dict(getattr(cls, "conformance_params", {})))
    yield instance
    instance.close()


def test_same_seed_same_episode(env: Env):
    assert conformance.is_deterministic(env, env.tasks("test")[0])


def test_expert_solves_test_tasks(env: Env):
    n = getattr(type(env), SAMPLE_ATTR, EXPERT_SAMPLE)
    found = conformance.expert_rate(env, "test", n)
    assert found.rate >= conformance.EXPERT_THRESHOLD, \
        f"{env.name}: expert solved {found.solved}/{found.sampled} (failed: {found.failed})"


def test_snapshot_or_replay_round_trips(env: Env):
    assert conformance.branching_problems(env, env.tasks("train")[0]) == []


@pytest.mark.parametrize("garbage", conformance.GARBAGE_ACTIONS)
def test_garbage_actions_are_survived(env: Env, garbage: str):
    assert conformance.garbage_problem(env, env.tasks("test")[0], garbage) is None
