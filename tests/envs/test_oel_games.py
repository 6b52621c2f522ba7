"""OEL's exact games: the variants replay like TextArena's own envs, played the way OEL plays them.

The reference side of the replay test is written here from TextArena's API alone: ``textarena.make``
with OEL's settings, ``reset(num_players=1, seed=...)``, the last bracketed move of each reply
passed to ``step`` as ``[move]`` (``[no valid action]`` when there is none), at most 5 steps, a
final reward below 1 counted as 0, and the text assembled from ``get_observation`` as OEL's rollout
does. The variants must give the same boards, rewards, episode ends and text at every step.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import textarena as ta

from agentbench import conformance
from agentbench.env import Task
from agentbench.envs.oel_games import (
    HELD_OUT_SEEDS,
    FrozenLakeOEL,
    SokobanOEL,
    parse_last_bracketed,
    solve_textarena_sokoban,
)

GAMES = (FrozenLakeOEL, SokobanOEL)
KEYS = {"[up]": "up", "[down]": "down", "[left]": "left", "[right]": "right",
        "[w]": "up", "[a]": "left", "[s]": "down", "[d]": "right"}
REPLIES = ["[up]", "[down]", "[left]", "[right]", "[w]", "[a]", "[s]", "[d]", "I go [up], no: [down]",
           "Action: down", "[UP]", "<think>maybe [left]</think> so [right]", "", "[ down ]", "[right] [left]"]


@pytest.fixture(scope="module", params=GAMES, ids=lambda c: c.name)
def env(request):
    return request.param()


# -- the reference: TextArena's env, driven as OEL drives it ---------------------------------
def _reference_action(reply: str) -> str:
    text = reply.split("</think>")[-1]
    found = [(i, key) for key in KEYS for i in range(len(text)) if text.startswith(key, i)]
    return f"[{KEYS[max(found)[1]]}]" if found else "[no valid action]"


class Reference:
    def __init__(self, cls, spec):
        self.cls = cls
        self.game = ta.make(spec["env_id"], **spec["settings"])
        self.game.reset(num_players=1, seed=spec["seed"])
        self.chunks: list[str] = []
        self.text = ""
        self.rules = self.game.state.observations[0][0][1]
        self._read()

    def _read(self):
        _, observation = self.game.get_observation()
        if isinstance(observation, str):  # LLMObservationWrapper (Sokoban-v0)
            new = observation.split(self.chunks[-1])[-1] if self.chunks else observation
            self.chunks.append(new[new.find("[GAME]"):])
            self.text = "".join(self.chunks)
        else:  # the raw env's messages (FrozenLake-v0-raw)
            for sender, message, _ in observation:
                self.text += f"\n[{'GAME' if sender == ta.GAME_ID else 'Player'}] {message}"

    def step(self, reply: str):
        done, _ = self.game.step(action=_reference_action(reply))
        self._read()
        return done

    def board(self):
        return board_of(self.game)

    def observation(self) -> str:
        return self.text.split(self.rules, 1)[1].strip()

    def reward(self) -> float:
        rewards = self.game.close()[0] or {0: 0}
        return 1.0 if rewards[0] >= 1.0 else 0.0


def board_of(game):
    if hasattr(game, "room_state"):
        return game.room_state.tolist()
    return [list(row) for row in game.state.game_state["grid"]], tuple(game.state.game_state["player_pos"])


def _replay(env, task, replies):
    """Both sides through the same replies: the variant as the rollout drives it, at most 5 moves."""
    ref = Reference(type(env), task.spec)
    observation = env.reset(task)
    assert observation == ref.observation()
    assert board_of(env._game) == ref.board()
    for turn, reply in enumerate(replies[: type(env).default_max_turns]):
        step = env.step(env.parse_action(reply))
        done = ref.step(reply)
        assert (step.done, board_of(env._game), step.observation) == (done, ref.board(), ref.observation()), \
            f"{task.id} turn {turn} reply {reply!r}"
        if done:
            assert step.reward == ref.reward() and step.info.success == (ref.reward() == 1.0)
            return step
        assert step.reward == 0.0
    return None


def test_replays_match_textarena_on_random_replies(env):
    rng = random.Random(0)
    tasks = env.tasks("test") + env.tasks("train")[:40] + env.tasks("ood")[:24]
    ends = {"won": 0, "lost": 0, "cut": 0}
    for task in tasks:
        for _ in range(2):
            replies = [rng.choice(REPLIES[:8]) if rng.random() < 0.7 else rng.choice(REPLIES) for _ in range(5)]
            last = _replay(env, task, replies)
            ends["cut" if last is None else "won" if last.info.success else "lost"] += 1
    assert ends["lost"] and ends["cut"], ends  # the random replies reach every kind of end


def test_replays_match_textarena_on_the_solver(env):
    solved_in_five = 0
    for task in env.tasks("test") + env.tasks("ood")[:32]:
        env.reset(task)
        moves = []
        while True:  # the expert's whole solution, however long
            action = env.expert_step().action
            moves.append(action)
            if env.step(action).done:
                break
        last = _replay(env, task, moves)
        if len(moves) <= 5:
            assert last is not None and last.info.success and last.reward == 1.0
            solved_in_five += 1
    if env.name == "frozenlake-oel":
        assert solved_in_five == 128 + 32  # every 3x3 board with 2 holes is solved in 4 moves


def test_test_split_is_oels_held_out_seeds_and_train_never_holds_one(env):
    assert [t.spec["seed"] for t in env.tasks("test")] == [468382021 + 78025 + 1000 * i for i in range(128)]
    assert tuple(t.spec["seed"] for t in env.tasks("test")) == HELD_OUT_SEEDS
    train = env.tasks("train")
    assert len(train) == 1000 and len({t.spec["seed"] for t in train}) == 1000
    assert not {t.spec["seed"] for t in train} & set(HELD_OUT_SEEDS)
    assert not {t.spec["seed"] for t in env.tasks("ood")} & {t.spec["seed"] for t in train}
    assert {t.id for t in train}.isdisjoint({t.id for t in env.tasks("test")})
    if env.name == "sokoban-oel":  # rooms too: none of OEL's held-out rooms is a training room
        held_out = {tuple(t.spec["board"]) for t in env.tasks("test")}
        assert not held_out & {tuple(t.spec["board"]) for t in train}


def test_settings_are_oels(env):
    spec = env.tasks("test")[0].spec
    if env.name == "frozenlake-oel":
        assert spec["env_id"] == "FrozenLake-v0-raw" and spec["settings"]["size"] == 3
        assert spec["settings"]["num_holes"] == 2 and all(len(row) == 3 for row in spec["board"])
        assert all(sum(row.count("H") for row in t.spec["board"]) == 2 for t in env.tasks("test"))
    else:
        assert spec["env_id"] == "Sokoban-v0" and tuple(spec["settings"]["dim_room"]) == (6, 6)
        assert spec["settings"]["num_boxes"] == 1 and len(spec["board"]) == 6
    assert type(env).default_max_turns == 5 and env.config.prompt == "oel"


def test_textarena_rules_hold(env):
    # a task whose start is against the top edge (Frozen Lake: always) or a wall
    task = next(t for t in env.tasks("test") if env.reset(t) is not None and not env.step("[up]").info.valid)
    env.reset(task)
    first = env.step("[up]")  # a bump is an invalid move, a strike, not a no-op
    assert not first.done and "invalid move" in first.observation
    second = env.step("[no valid action]")
    assert second.done and not second.info.valid and second.reward == 0.0  # two strikes in a row
    assert "Invalid Move" in second.info.extra["reason"]
    env.reset(task)
    env.step("[up]")
    assert env.step(env.expert_step().action).info.valid  # a valid move clears the strike
    assert not env.step("garbage").done


def test_a_hole_ends_the_game_at_reward_zero():
    env = FrozenLakeOEL()
    task = next(t for t in env.tasks("test") if t.spec["board"][0][1] == "H")
    env.reset(task)
    step = env.step(env.parse_action("I step [right]"))
    assert step.done and not step.info.success and step.reward == 0.0
    assert 0 < step.info.extra["textarena_reward"] < 1  # TextArena's partial credit, counted as 0


@pytest.mark.parametrize(("reply", "action"), [
    ("[down]", "[down]"), ("go [w] then [d]", "[right]"), ("[s]", "[down]"), ("down", "[no valid action]"),
    ("[UP]", "[no valid action]"), ("<think>[up]</think>\nAction: [left]", "[left]"),
    ("<think>[up]</think>", "[no valid action]"), ("[left] or [right]? [left]", "[left]"),
])
def test_the_last_bracketed_move_is_played(reply, action):
    assert parse_last_bracketed(reply) == action == _reference_action(reply)


def test_snapshot_restore_carries_the_game_and_its_text(env):
    task = env.tasks("train")[0]
    env.reset(task)
    env.step("[no valid action]")
    snap = env.snapshot()
    first = env.step(env.expert_step().action)
    env.restore(snap)
    again = env.step(env.expert_step().action)
    assert first == again
    env.restore(snap)
    assert env.step("[no valid action]").done  # the strike was restored with the board
    assert conformance.branching_problems(env, task) == []
    assert conformance.is_deterministic(env, env.tasks("test")[3])


def test_reset_leaves_the_global_random_state_alone(env):
    state = random.getstate()
    env.reset(env.tasks("test")[5])
    assert random.getstate() == state


def test_sokoban_solver_pushes_an_unmarked_box_off_its_target_and_back():
    # TextArena's generator can leave a box on a target as a plain box (code 4): it only counts
    # once a push lands it there, so the shortest win pushes it off and on again.
    game = ta.make("Sokoban-v0-raw", dim_room=(6, 6), num_boxes=1)  # unwrapped: its attributes are set below
    game.reset(num_players=1, seed=HELD_OUT_SEEDS[0])
    fixed = np.array([[0] * 6, [0, 1, 1, 1, 1, 0], [0, 1, 2, 1, 1, 0], [0, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 0],
                      [0] * 6])
    state = fixed.copy()
    state[2, 2], state[2, 1] = 4, 5
    game.room_fixed, game.room_state, game.player_position = fixed, state, np.array([2, 1])
    moves = solve_textarena_sokoban(fixed, state)
    assert len(moves) == 6 and moves[0] == "right"  # push it off (1), walk round (4), push it back (1)
    for move in moves:
        done, _ = game.step(f"[{move}]")
    assert done and game.close()[0] == {0: 1}


def test_a_task_read_back_from_json_plays_the_same_game(env):
    task = env.tasks("test")[7]
    again = Task(task.id, task.split, json.loads(json.dumps(task.spec)))
    assert env.reset(again) == env.reset(task) and board_of(env._game) == board_of(Reference(type(env), task.spec).game)
