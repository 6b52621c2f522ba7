"""Frozen Lake specifics: reproducible maps, an optimal expert, splits of the promised shapes."""

from __future__ import annotations

from agentbench.envs.frozenlake import FrozenLake


def test_maps_are_reproducible_and_shaped_by_split():
    a, b = FrozenLake(), FrozenLake()
    assert a.tasks("test")[:20] == b.tasks("test")[:20]
    assert [t.spec for t in a.tasks("test")[:20]] == [t.spec for t in b.tasks("test")[:20]]
    assert {t.spec["size"] for t in a.tasks("train")} == {4, 5, 6}
    assert {t.spec["size"] for t in a.tasks("ood")} == {7, 8}
    assert min(t.spec["frozen_p"] for t in a.tasks("ood")) < min(t.spec["frozen_p"] for t in a.tasks("test"))


def test_test_and_ood_maps_never_occur_in_train():
    env = FrozenLake()
    train = {tuple(t.spec["desc"]) for t in env.tasks("train")}
    assert not train & {tuple(t.spec["desc"]) for t in env.tasks("test")}
    assert not train & {tuple(t.spec["desc"]) for t in env.tasks("ood")}


def test_expert_walks_a_shortest_path():
    env = FrozenLake()
    for task in env.tasks("test")[:50]:
        env.reset(task)
        optimal = len(env._shortest_path())
        steps = 0
        while True:
            step = env.step(env.expert_step().action)
            steps += 1
            if step.done:
                break
        assert step.info.success and steps == optimal


def test_observation_spells_out_position_goal_and_neighbours():
    env = FrozenLake()
    task = next(t for t in env.tasks("train") if t.spec["size"] == 4)
    obs = env.reset(task)
    assert "You are at row 1, column 1" in obs
    assert "up is the edge of the map" in obs and "left is the edge of the map" in obs
    assert "The goal is 3 rows down and 3 columns right from you" in obs
    assert obs.count("\n") >= 4 + 3  # the map's rows
    bump = env.step("up")
    assert bump.info.valid and "tried to move up but hit the edge" in bump.observation


def test_progress_rises_toward_the_goal_and_holes_end_the_episode():
    env = FrozenLake()
    task = env.tasks("test")[0]
    env.reset(task)
    first = env.step(env.expert_step().action)
    assert 0 < first.info.progress < 1
    desc = task.spec["desc"]
    hole_task = next(t for t in env.tasks("train") if t.spec["desc"][1][0] == "H")
    env.reset(hole_task)
    fell = env.step("down")
    assert fell.done and not fell.info.success and fell.reward == 0 and "hole" in fell.observation
    assert desc  # the map itself is part of the spec (hashed into the task set)
