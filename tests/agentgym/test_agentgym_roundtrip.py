"""Every registered local env, served by ``serve-env`` and driven by the ``agentgym`` client over
real HTTP, behaves exactly as the in-process env: same tasks, instructions and defaults, and
the same observations, rewards, done flags, success, validity and expert moves, step by step."""

from __future__ import annotations

import random

import pytest
from agentgym_helpers import local_env_names, skip_unavailable, thread_server

from agentbench.env import SPLITS, task_set_sha256
from agentbench.envs.agentgym import AgentGymEnv

GARBAGE = ["", "asdf qwerty", "Action: Action:", "💥" * 50, "x" * 5000]
REPLIES = ["Thought: go\nAction: up", "no action here", "Action:\nclick[Buy Now]", "**Action**: left.", ""]


@pytest.fixture(scope="module", params=local_env_names())
def pair(request):
    """(in-process env, client env over HTTP) for one registered env."""
    cls = skip_unavailable(request.param)
    # as the conformance suite: an env's conformance_params (tau-bench's scripted customer) on both sides
    params = dict(getattr(cls, "conformance_params", {}))
    with thread_server(request.param, tuple(f"{k}={v}" for k, v in params.items())) as url:
        local = cls.from_params(params)
        remote = AgentGymEnv(AgentGymEnv.Config(variant=request.param, url=url))
        yield local, remote
        remote.close()
        local.close()


def _moves(env, step):
    return (step.observation, step.reward, step.done, step.info.valid, step.info.success, step.info.progress,
            env.admissible_actions())


def test_metadata_and_tasks_match(pair):
    local, remote = pair
    assert remote.instructions == local.instructions
    assert remote.version == type(local).version
    assert remote.default_max_turns == type(local).default_max_turns
    assert remote.default_history_turns == type(local).default_history_turns
    assert remote.supports_snapshot == bool(getattr(type(local), "supports_snapshot", False))
    assert AgentGymEnv.max_turns_for(remote.config) == type(local).default_max_turns
    for split in SPLITS:
        theirs, ours = list(local.tasks(split)), remote.tasks(split)
        assert [(t.id, t.split, t.spec) for t in ours] == [(t.id, t.split, t.spec) for t in theirs]
        assert task_set_sha256(ours) == task_set_sha256(theirs)


def test_expert_episodes_are_identical(pair):
    local, remote = pair
    limit = 2 * type(local).default_max_turns
    tasks = [*random.Random(0).sample(list(local.tasks("test")), 2), local.tasks("ood")[0]]
    for task in tasks:
        assert remote.reset(task, seed=0) == local.reset(task, seed=0)
        assert remote.admissible_actions() == local.admissible_actions()
        for _ in range(limit):
            move = local.expert_step()
            assert remote.expert_step() == move
            here, there = local.step(move.action), remote.step(move.action)
            assert _moves(remote, there) == _moves(local, here)
            assert there.info.extra == here.info.extra
            if here.done:
                assert there.info.success == here.info.success
                break


def test_actions_are_parsed_alike(pair):
    local, remote = pair
    local.reset(local.tasks("test")[0], seed=0)
    remote.reset(local.tasks("test")[0], seed=0)
    for reply in REPLIES:
        assert remote.parse_action(reply) == local.parse_action(reply)


def test_garbage_actions_are_survived_alike(pair):
    local, remote = pair
    task = local.tasks("test")[0]
    for garbage in GARBAGE:
        local.reset(task, seed=0)
        remote.reset(task, seed=0)
        assert _moves(remote, remote.step(garbage)) == _moves(local, local.step(garbage))
        move = local.expert_step().action
        assert _moves(remote, remote.step(move)) == _moves(local, local.step(move))


def test_snapshot_restore_branches_alike(pair):
    local, remote = pair
    if not remote.supports_snapshot:
        remote.reset(local.tasks("train")[0], seed=0)
        with pytest.raises(NotImplementedError):
            remote.snapshot()
        return
    task = local.tasks("train")[0]
    local.reset(task, seed=0)
    remote.reset(task, seed=0)
    first = local.expert_step().action
    local.step(first)
    remote.step(first)
    alternative = (local.admissible_actions() or ["garbage action"])[-1]
    mine, theirs = remote.snapshot(), local.snapshot()
    branch_remote, branch_local = remote.step(alternative), local.step(alternative)
    assert _moves(remote, branch_remote) == _moves(local, branch_local)
    remote.restore(mine)
    local.restore(theirs)
    assert remote.admissible_actions() == local.admissible_actions()
    move = local.expert_step().action
    assert remote.expert_step().action == move
    assert _moves(remote, remote.step(move)) == _moves(local, local.step(move))
    remote.restore(mine)  # a snapshot can be restored again
    local.restore(theirs)
    assert _moves(remote, remote.step(alternative)) == _moves(local, local.step(alternative))
