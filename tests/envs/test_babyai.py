"""BabyAI: the text view of a hand-made state, quiet level generation, split disjointness, and
an expert that keeps up with a policy that strays."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("minigrid")

from minigrid.core.grid import Grid
from minigrid.core.world_object import Ball, Door, Key

from agentbench.env import Task
from agentbench.envs import babyai
from agentbench.envs.babyai import BabyAI, layout_fingerprint
from agentbench.errors import UsageError

UP = 3  # MiniGrid's direction index for facing up (towards smaller y)


@pytest.fixture(scope="module")
def env():
    instance = BabyAI()
    yield instance
    instance.close()


def _handmade_room(env: BabyAI) -> object:
    """A walled 8x8 room: the agent at (3, 6) facing up, a red ball 2 ahead and 1 right,
    a locked yellow door in the wall ahead, a green key on the agent's left."""
    env.reset(Task("t", "test", {"level": "GoToRedBall", "level_seed": 1}))
    game = env._game
    game.grid = Grid(8, 8)
    game.grid.wall_rect(0, 0, 8, 8)
    game.put_obj(Ball("red"), 4, 4)
    game.put_obj(Key("green"), 2, 6)
    game.grid.set(3, 0, Door("yellow", is_locked=True))
    game.agent_pos, game.agent_dir, game.carrying = (3, 6), UP, None
    game.instrs = _NeverDone()  # the generated mission refers to objects no longer there
    return game


class _NeverDone:
    """A mission that is never fulfilled, so hand-made states can be stepped through."""

    def verify(self, action):
        return "continue"

    def update_objs_poss(self):
        pass


def test_observation_describes_a_handmade_state(env):
    game = _handmade_room(env)
    obs = babyai.text.describe(game, "You turned left.")
    lines = obs.splitlines()
    assert lines[0] == "You turned left."
    assert lines[1] == "Mission: go to the red ball."
    assert "a green key 1 step to the left" in lines[2]
    assert "a red ball 2 steps forward and 1 step to the right" in lines[2]
    assert "a locked yellow door 6 steps forward" in lines[2]
    # nearest first
    assert lines[2].index("green key") < lines[2].index("red ball") < lines[2].index("yellow door")
    assert lines[3] == "Ahead of you: 5 steps of free floor, then a locked yellow door."
    assert lines[4] == "You are carrying nothing."


def test_feedback_follows_what_the_action_did(env):
    _handmade_room(env)
    assert env.step("turn left").observation.startswith("You turned left.")
    # the key is now right in front
    assert "Right in front of you is a green key." in env.step("look around").observation
    picked = env.step("pick up")
    assert picked.observation.startswith("You picked up the green key.")
    assert "You are carrying a green key." in picked.observation
    assert env.step("move forward").observation.startswith("You moved forward.")
    assert env.step("move forward").observation.startswith("You moved forward.")
    blocked = env.step("move forward")
    assert blocked.observation.startswith("You could not move forward: a wall is in the way.")
    assert blocked.info.valid  # a legal move that bumps, not an unparsable one
    assert env.step("drop").observation.startswith("You cannot drop it here")


def test_unparsable_actions_are_invalid_and_change_nothing(env):
    env.reset(env.tasks("test")[0])
    before = env.snapshot()
    step = env.step("fly to the moon")
    assert not step.info.valid and not step.done
    assert "Valid actions are: turn left, turn right, move forward, pick up, drop, toggle" in step.observation
    assert env._game.agent_pos == before["game"].agent_pos
    assert env.step("Move Forward!").info.valid  # case and punctuation do not matter


def test_level_generation_prints_nothing(env, capsys):
    # GoToRedBall with level seed 8 rejects samples and prints "Sampling rejected: ...".
    raw = babyai._make_level("GoToRedBall")
    raw.reset(seed=8)
    assert "Sampling rejected" in capsys.readouterr().out
    env.reset(Task("t", "test", {"level": "GoToRedBall", "level_seed": 8}))
    # generating the splits (train seeds 0..39 include seed 8) is quiet too
    BabyAI(BabyAI.Config(n_train=40, n_test=20, levels=("GoToRedBall",))).tasks("test")
    assert capsys.readouterr().out == ""


def test_test_layouts_never_occur_in_train():
    # A 4x4 room has few layouts: without de-duplication, test would repeat train layouts.
    small = BabyAI(BabyAI.Config(n_train=300, n_test=60, levels=("GoToObjS4",)))
    train = babyai._fingerprints("train", ("GoToObjS4",), 300)
    game = babyai._make_level("GoToObjS4")
    test_prints = []
    for task in small.tasks("test"):
        babyai._generate(game, task.spec["level_seed"])
        test_prints.append(layout_fingerprint(game))
    assert not set(test_prints) & train
    assert len(set(test_prints)) == len(test_prints)
    skipped = small.tasks("test")[-1].spec["level_seed"] - babyai.SEED_OFFSETS["test"] + 1 - 60
    assert skipped > 0, "the 4x4 room should have produced some duplicate layouts to skip"


def test_default_splits_hold_out_level_types(env):
    in_domain = {t.spec["level"] for t in env.tasks("train")} | {t.spec["level"] for t in env.tasks("test")}
    ood = {t.spec["level"] for t in env.tasks("ood")}
    assert in_domain == set(babyai.IN_DOMAIN_LEVELS)
    assert ood == set(babyai.OOD_LEVELS) and not ood & in_domain


def test_expert_recovers_after_the_policy_strays(env):
    rng = random.Random(0)
    tasks = rng.sample(env.tasks("test"), 12)
    solved = 0
    for task in tasks:
        env.reset(task)
        for _ in range(4):  # a few random moves first, as a weak model would make
            step = env.step(rng.choice(env.admissible_actions()))
        done = step.done
        for _ in range(60):
            if done:
                break
            step = env.step(env.expert_step().action)
            done = step.done
        solved += step.info.success
    assert solved >= 11


def test_snapshot_is_isolated_from_later_steps(env):
    task = env.tasks("train")[3]
    env.reset(task)
    env.step(env.expert_step().action)
    snap = env.snapshot()
    expert_next = env.expert_step().action
    for _ in range(3):
        env.step("turn left")
    env.restore(snap)
    assert env.expert_step().action == expert_next
    restored = env.step(expert_next).observation
    env.restore(snap)
    assert env.step(expert_next).observation == restored


def test_progress_rises_along_the_expert_path(env):
    progress = _expert_progress(env, env.tasks("test")[2])
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert 0 < progress[0] < 1


def test_unknown_level_is_a_clear_error():
    with pytest.raises(UsageError, match="unknown BabyAI level 'GoToNowhere'"):
        BabyAI.from_params({"levels": ["GoToNowhere"]})
    with pytest.raises(UsageError, match="not solvable by the expert"):
        BabyAI.from_params({"ood_levels": ["KeyInBox"]})


def _expert_progress(env, task) -> list[float]:
    env.reset(task)
    progress = []
    while True:
        step = env.step(env.expert_step().action)
        progress.append(step.info.progress)
        if step.done:
            return progress


def test_progress_does_not_depend_on_the_previous_episode(env):
    # a 2-move episode, then one of 20 moves (more than four times as long)
    short, long_ = env.tasks("test")[5], env.tasks("ood")[7]
    fresh = _expert_progress(BabyAI(), long_)
    assert len(fresh) == 20 and 0 < fresh[0] < 0.1
    _expert_progress(env, short)
    assert _expert_progress(env, long_) == fresh
