"""Maze: the generator, the BFS expert, the LMRL-Gym-style observation, the splits."""

from __future__ import annotations

import random
import re

import pytest

from agentbench.env import Task
from agentbench.envs.maze import DELTAS, SPLIT_SHAPES, Maze, distances, generate_maze, shortest_path


@pytest.fixture(scope="module")
def env():
    return Maze()


@pytest.mark.parametrize("size", [3, 5, 8])
def test_generated_mazes_are_perfect_and_seeded(size):
    rows = generate_maze(size, random.Random(7))
    assert rows == generate_maze(size, random.Random(7))
    assert rows != generate_maze(size, random.Random(8))
    assert len(rows) == len(rows[0]) == 2 * size + 1
    assert set(rows[0] + rows[-1]) == {"#"}, "the outer wall is closed"
    # A perfect maze is a spanning tree: every cell reachable, exactly cells - 1 passages.
    assert len(distances(rows, (0, 0))) == size * size
    passages = sum(rows[r][c] == "." for r in range(1, 2 * size) for c in range(1, 2 * size) if (r + c) % 2 == 1)
    assert passages == size * size - 1


def test_shortest_path_on_a_crafted_maze():
    rows = ("#######",
            "#.....#",
            "#####.#",
            "#.....#",
            "#######")
    # From the bottom-left cell to the top-left one the only way is right, up, left.
    assert shortest_path(rows, (1, 0), (0, 0)) == ["right", "right", "up", "left", "left"]
    assert shortest_path(rows, (0, 0), (0, 0)) == []


@pytest.mark.parametrize("split", ["test", "ood"])
def test_expert_reaches_every_goal_in_the_optimal_number_of_moves(env, split):
    for task in env.tasks(split)[:200]:
        env.reset(task)
        moves = 0
        while True:
            step = env.step(env.expert_step().action)
            moves += 1
            assert step.info.valid
            if step.done:
                break
        assert step.info.success and moves == task.spec["optimal_moves"] <= Maze.default_max_turns


def test_observation_names_position_goal_and_the_blocked_moves(env):
    task = env.tasks("test")[3]
    observation = env.reset(task)
    start, goal = task.spec["start"], task.spec["goal"]
    assert f"You are at row {start[0] + 1}, column {start[1] + 1}." in observation
    assert f"The goal is at row {goal[0] + 1}, column {goal[1] + 1}" in observation
    assert "#" not in observation, "the map stays hidden by default"
    blocked = re.search(r"Walls block: (.*)\. Open moves", observation).group(1).split(", ")
    for move in DELTAS:
        env.reset(task)
        step = env.step(move)
        assert step.info.valid == (move not in blocked), move
        if not step.info.valid:
            assert "there is a wall" in step.observation and f"row {start[0] + 1}, column {start[1] + 1}." in step.observation


def test_show_map_adds_the_map_with_player_and_goal():
    env = Maze(Maze.Config(show_map=True))
    observation = env.reset(env.tasks("test")[0])
    map_lines = observation.split("Map (# wall, P you, G goal):\n")[1].splitlines()
    assert len(map_lines) == 2 * env.tasks("test")[0].spec["size"] + 1
    assert sum(line.count("P") for line in map_lines) == 1 and sum(line.count("G") for line in map_lines) == 1


def test_splits_are_disjoint_by_content_and_ood_is_larger(env):
    def key(t: Task):
        return (tuple(t.spec["rows"]), tuple(t.spec["start"]), tuple(t.spec["goal"]))

    train = {key(t) for t in env.tasks("train")}
    assert not train & {key(t) for t in env.tasks("test")}
    assert max(t.spec["size"] for t in env.tasks("test")) < min(t.spec["size"] for t in env.tasks("ood"))
    for split in ("train", "test", "ood"):
        shape = SPLIT_SHAPES[split]
        assert all(shape.min_path <= t.spec["optimal_moves"] <= shape.max_path for t in env.tasks(split))


def test_progress_and_snapshot(env):
    task = env.tasks("test")[0]
    env.reset(task)
    first = env.expert_step().action
    step = env.step(first)
    assert 0 < step.info.progress < 1
    snap = env.snapshot()
    wrong = next(m for m in DELTAS if m != env.expert_step().action)
    env.step(wrong)
    env.restore(snap)
    assert env.step(env.expert_step().action).info.valid
