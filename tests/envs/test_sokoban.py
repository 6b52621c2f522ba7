"""Sokoban: the BFS solver, its agreement with TextArena's rules, the stored levels, the text."""

from __future__ import annotations

import random

import pytest

from agentbench.env import NoExpert, Task
from agentbench.envs.sokoban import Sokoban
from agentbench.envs.sokoban.levels import SHAPES, Level, generate_level, stored_levels
from agentbench.envs.sokoban.solver import MOVES, Room, apply_move, solve


def _room(rows: list[str]) -> Room:
    walls = [(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == "#"]
    targets = [(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch in "O√"]
    return Room.build(len(rows), len(rows[0]), walls, targets)


def _task(rows: list[str], player, boxes) -> Task:
    fixed = [row.replace("P", "_").replace("X", "_").replace("√", "O") for row in rows]
    return Task("crafted", "test", Level(tuple(fixed), player, tuple(boxes)).to_spec())


@pytest.fixture(scope="module")
def env():
    return Sokoban()


def test_bfs_finds_the_shortest_solution_on_a_crafted_level():
    rows = ["#######",
            "#_____#",
            "#_X__O#",
            "#######"]
    # The box sits against no wall it needs: step down, then push right three times.
    solution = solve(_room(rows), (1, 1), [(2, 2)])
    assert solution.moves == ["down", "right", "right", "right"]


def test_bfs_walks_around_to_push_from_the_other_side():
    rows = ["######",
            "#____#",
            "#O_X_#",
            "#____#",
            "######"]
    # The player starts left of the box, which must go left: walk round it, then push twice.
    solution = solve(_room(rows), (2, 2), [(2, 3)])
    assert solution.moves is not None and len(solution.moves) == 6
    assert solution.moves[-2:] == ["left", "left"]


def test_bfs_reports_unsolvable_and_capped_searches():
    rows = ["#####",
            "#X__#",
            "#__O#",
            "#####"]
    room = _room(rows)
    assert (1, 1) in room.dead, "a corner without a target is a dead square"
    stuck = solve(room, (2, 1), [(1, 1)])
    assert stuck.moves is None and stuck.exhausted
    big = ["#" * 9] + ["#" + "_" * 7 + "#"] * 7 + ["#" * 9]
    big[7] = "#______O#"
    capped = solve(_room(big), (1, 1), [(2, 2)], max_states=3)
    assert capped.moves is None and not capped.exhausted


def test_solver_model_agrees_with_textarena_rules(env):
    """Random walks through stored rooms: every TextArena move does what the solver predicts."""
    rng = random.Random(0)
    levels = env.tasks("test")[:15] + env.tasks("ood")[:15]
    for task in levels:
        env.reset(task)
        room = Level.from_spec(task.spec).room()
        for _ in range(25):
            move = rng.choice(list(MOVES))
            predicted = apply_move(room, env._player(), env._boxes(), move)
            step = env.step(move)
            if predicted is None:
                assert not step.info.valid
            else:
                assert step.info.valid and (env._player(), env._boxes()) == predicted
            if step.done:
                break


@pytest.mark.parametrize("split", ["test", "ood"])
def test_expert_solves_every_level_in_the_optimal_number_of_moves(env, split):
    for task in env.tasks(split):
        env.reset(task)
        moves = 0
        while True:
            step = env.step(env.expert_step().action)
            moves += 1
            assert step.info.valid
            if step.done:
                break
        assert step.info.success and step.reward == 1.0
        assert moves == task.spec["optimal_moves"] <= Sokoban.default_max_turns


def test_stored_levels_regenerate_from_their_seeds():
    data = stored_levels()
    for split, index in [("train", 0), ("train", 1), ("test", 0), ("ood", 0)]:
        stored = data["splits"][split][index]
        made = generate_level(SHAPES[split], stored["seed"])
        assert made is not None
        level, moves = made
        assert level == Level.from_spec(stored) and moves == stored["optimal_moves"]


def test_splits_hold_distinct_rooms_of_the_promised_shapes(env):
    keys = {split: {Level.from_spec(t.spec).key() for t in env.tasks(split)} for split in ("train", "test", "ood")}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["ood"]
    assert len(keys["test"]) == len(env.tasks("test"))
    for split in ("train", "test", "ood"):
        shape = SHAPES[split]
        for task in env.tasks(split)[:50]:
            assert len(task.spec["rows"]) == shape.height and len(task.spec["boxes"]) == shape.boxes


def test_observation_shows_board_coordinates_and_player_on_target(env):
    rows = ["######",
            "#_PX_#",
            "#_O__#",
            "######"]
    task = _task(rows, (1, 2), [(1, 3)])
    first = env.reset(task)
    board = first.splitlines()[1:5]
    assert board == ["# # # # # #", "# _ P X _ #", "# _ O _ _ #", "# # # # # #"]
    assert "You are at row 2 column 3. Boxes: row 2 column 4. Targets: row 3 column 3." in first
    assert "\x1b" not in first
    step = env.step("down")
    assert step.info.valid and "# _ + _ _ #" in step.observation  # standing on the target shows '+'
    step = env.step("up")
    assert "# _ O _ _ #" in step.observation  # and the target shows again once left


def test_blocked_moves_are_invalid_and_change_nothing(env):
    rows = ["#####",
            "#PX_#",
            "#__O#",
            "#####"]
    env.reset(_task(rows, (1, 1), [(1, 2)]))
    before = env.snapshot()
    for move in ("up", "left"):
        step = env.step(move)
        assert not step.info.valid and not step.done and "cannot move" in step.observation
    assert env._player() == (1, 1) and env._boxes() == ((1, 2),)
    assert env.snapshot()["progress"] == before["progress"]


@pytest.mark.parametrize("action", ["up", "UP", "[w]", "move up", "Up."])
def test_action_spellings(env, action):
    env.reset(env.tasks("test")[0])
    step = env.step(action)
    assert "Invalid action" not in step.observation  # understood: a move, or a move a wall blocks
    assert step.info.valid or "cannot move up" in step.observation


def test_a_stuck_box_is_reported_and_the_expert_gives_up(env):
    rows = ["######",
            "#____#",
            "#_X_O#",
            "#____#",
            "######"]
    env.reset(_task(rows, (2, 1), [(2, 2)]))
    env.step("down")
    step = env.step("right")  # now below the box
    assert step.info.extra["solvable"] and env.expert_step().action == "left"
    step = env.step("up")  # pushes the box against the top wall, a row without a target
    assert not step.info.extra["solvable"] and "can no longer be solved" in step.observation
    with pytest.raises(NoExpert):
        env.expert_step()
