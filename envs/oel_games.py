"""OEL's exact games: TextArena's ``FrozenLake-v0-raw`` (3x3, 2 holes) and ``Sokoban-v0`` (6x6, 1 box).

The Online Experiential Learning paper (Ye, Dong et al.) plays these two TextArena 0.7.x games
with their own generators and seeds, at most 5 env steps per episode (invalid ones counted), and
scores pass rate on 128 held-out seeds ``468382021 + 78025 + 1000 * i``. These envs reproduce that:

- the game *is* TextArena's env, built by ``textarena.make(id, **settings)`` and reset with the
  task's seed; every move goes through its ``step``, so its rules hold as they are: an invalid move
  (unparsable, into the edge of the lake or a wall, a blocked push) is a strike that changes
  nothing, and the second invalid move in a row ends the game; a hole ends it;
- the reward is TextArena's final reward with anything below 1 counted as 0 (OEL's rule), so
  ``reward == 1`` is success; TextArena's own partial-credit reward is kept in ``info.extra``;
- the action is the last bracketed move in the reply (``[up] [down] [left] [right] [w] [a] [s]
  [d]``), passed to TextArena as ``[up]`` etc.; a reply without one is passed on as
  ``[no valid action]``, an invalid move that counts as a step and a strike, as in OEL;
- ``prompt="oel"`` (the default): the observation is TextArena's own game text, every message of
  the episode so far, assembled as OEL's rollout does (Frozen Lake: each message as ``[GAME] ...``
  or ``[Player] ...`` on its own line; Sokoban: the text of TextArena's ``LLMObservationWrapper``,
  new messages from their first ``[GAME]`` on, appended as they come), without TextArena's rules
  prompt, which goes into the instructions instead, after a short framing of ours (OEL's own
  framing sentences are not copied); ``prompt="textarena"``: TextArena's full text as its
  ``LLMObservationWrapper`` formats it, the rules prompt included, with the move format only as
  instructions;
- at most 5 moves (``default_max_turns``): the rollout counts every reply as a move;
- the expert is a breadth-first search over TextArena's rules (shortest safe path; fewest moves
  to the win TextArena counts), so ``il`` and ``iwm`` have demonstrations;
- snapshot/restore copy TextArena's env object.

Splits: ``test`` is OEL's 128 held-out seeds; ``train`` continues OEL's seed family past them
(``468382021 + 78025 + 1000 * i`` for i >= 128), never a held-out seed, and for Sokoban never a
held-out room either (Frozen Lake at 3x3 with 2 holes has only 19 solvable boards, which the 128
held-out seeds already cover, so only seeds can be kept apart there); ``ood`` plays the held-out
seeds under another TextArena setting (Frozen Lake: ``randomize_start_goal``, TextArena's
``-random`` variant; Sokoban: a 7x7 room with one box).
"""

from __future__ import annotations

import copy
import random
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, ClassVar, Literal

from pydantic import Field

from agentbench.env import Availability, BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task
from agentbench.extras import has_module, needs_extra, require_extra

OEL_SEED_BASE = 468382021 + 78025
HELD_OUT = 128
MAX_STEPS = 5


def oel_seed(i: int) -> int:
    """The i-th seed of OEL's seed family: i < 128 are its held-out evaluation seeds."""
    return OEL_SEED_BASE + 1000 * i


HELD_OUT_SEEDS: tuple[int, ...] = tuple(oel_seed(i) for i in range(HELD_OUT))
"""OEL's held-out seeds, the test split, in OEL's order."""

# OEL's action keys: the last of these in a reply is the move (exact, case-sensitive).
ACTION_KEYS = {"[up]": "up", "[down]": "down", "[left]": "left", "[right]": "right",
               "[w]": "up", "[a]": "left", "[s]": "down", "[d]": "right"}
NO_ACTION = "[no valid action]"
MOVES = ("up", "down", "left", "right")
DELTAS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}

Cell = tuple[int, int]


class OELGameConfig(EnvConfig):
    n_train: int = Field(1000, ge=1, le=20000, description="tasks in the train split (OEL's seeds past the held-out ones)")
    n_test: int = Field(HELD_OUT, ge=1, le=HELD_OUT, description="tasks in the test split: OEL's held-out seeds, in order")
    n_ood: int = Field(HELD_OUT, ge=1, le=HELD_OUT, description="tasks in the ood split (held-out seeds, other settings)")
    prompt: Literal["oel", "textarena"] = Field(
        "oel", description="oel: OEL's text (game messages so far, rules as instructions); "
                           "textarena: TextArena's LLMObservationWrapper text, rules included")


@contextmanager
def _own_random_state() -> Iterator[None]:
    """TextArena seeds Python's global ``random`` on reset; keep that from leaking out."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


def make_textarena_game(spec: dict[str, Any]) -> Any:
    """TextArena's env for a task spec, made and reset exactly as OEL does (``ta.make``, then
    ``reset(num_players=1, seed=...)``)."""
    ta = require_extra("textarena", extra="oel", what=f"env {spec['env_id']}")

    with _own_random_state():
        game = ta.make(spec["env_id"], **spec["settings"])
        game.reset(num_players=1, seed=spec["seed"])
    return game


def parse_last_bracketed(response: str) -> str:
    """OEL's action: the last of its bracketed move keys in the reply (after ``</think>`` when the
    reply has one), as TextArena's ``[up]`` etc.; ``[no valid action]`` when there is none."""
    text = response.rsplit("</think>", 1)[-1]
    best, move = -1, None
    for key, name in ACTION_KEYS.items():
        at = text.rfind(key)
        if at > best:
            best, move = at, name
    return f"[{move}]" if move is not None else NO_ACTION


class _TextArenaGame(BaseEnv):
    """One TextArena single-player game under OEL's settings; subclasses name the game."""

    Config = OELGameConfig
    default_max_turns: ClassVar[int] = MAX_STEPS
    # The observation carries the episode's game messages itself, so no chat history is shown.
    default_history_turns: ClassVar[int | None] = 0
    supports_snapshot: ClassVar[bool] = True

    env_id: ClassVar[str]
    settings: ClassVar[dict[str, dict[str, Any]]]
    """TextArena keyword settings per split (``test`` and ``train``: OEL's)."""
    llm_wrapped: ClassVar[bool]
    """True when ``env_id`` comes with TextArena's LLMObservationWrapper (its observation is a string)."""
    distinct_boards: ClassVar[bool]
    """True when train skips seeds whose starting board is a held-out one."""

    def __init__(self, config: OELGameConfig | None = None):
        super().__init__(config)
        self._game: Any = None
        self._task: Task | None = None
        self._messages: list[tuple[int, str]] = []
        """Every message of the episode as (sender, text), TextArena's rules prompt first."""
        self._oel_text = ""
        self._wrapper_seen = 0
        self._done = False
        self._progress = 0.0

    @classmethod
    def availability(cls) -> Availability:
        if not has_module("textarena"):
            return Availability(False, needs_extra("oel", "textarena"))
        return Availability(True)

    # -- prompt --------------------------------------------------------------------------
    @property
    def instructions(self) -> str:
        move = ("Each turn, choose one move and write it in square brackets: [up], [down], [left] or [right] "
                "(or [w], [a], [s], [d]). The last bracketed move in your reply is the one played.")
        if self.config.prompt == "textarena":
            return f"You are playing {self.game_title}, a TextArena game.\n{move}"
        return (f"You are playing {self.game_title}, a TextArena game, on a grid. The game's rules, as it "
                f"states them:\n{_rules_text(type(self))}\n\nEach turn you see every game message so far. "
                f"Win in as few moves as possible. {move}")

    game_title: ClassVar[str] = ""

    # -- tasks -----------------------------------------------------------------------------
    def tasks(self, split: Split) -> list[Task]:
        count = {"train": self.config.n_train, "test": self.config.n_test, "ood": self.config.n_ood}[split]
        if split == "train":
            return list(_train_tasks(type(self), count))
        return list(_held_out_tasks(type(self), split))[:count]

    @classmethod
    def task_for(cls, split: str, seed: int) -> Task:
        """The task of one seed (id and spec as in the splits)."""
        spec = {"env_id": cls.env_id, "settings": dict(cls.settings[split]), "seed": seed}
        spec["board"] = cls.initial_board(make_textarena_game(spec))
        return Task(f"{split}-{seed}", split, spec)

    @classmethod
    def initial_board(cls, game: Any) -> list[str]:  # pragma: no cover - every game overrides it
        raise NotImplementedError

    # -- episode ---------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        # The game is the task's TextArena seed; the episode seed has nothing left to decide.
        self._task = task
        self._game = make_textarena_game(task.spec)
        self._messages, self._oel_text, self._wrapper_seen = [], "", 0
        self._done, self._progress = False, 0.0
        self._collect()
        return self._observation()

    def step(self, action: str) -> Step:
        game = self._require_game()
        if self._done:
            return Step("The game is over.", 0.0, True, StepInfo(valid=False, progress=self._progress))
        state = game.state
        strikes = state.error_count
        done, _ = game.step(action=action)
        invalid = state.error_count > strikes or bool(done and state.game_info[0].get("invalid_move"))
        self._collect()
        extra: dict[str, Any] = {"textarena_turn": state.turn}
        reward = 0.0
        success = False
        if done:
            self._done = True
            ta_reward = float(state.rewards[0]) if state.rewards else 0.0
            success = ta_reward >= 1.0
            reward = 1.0 if success else 0.0  # OEL: a reward below 1 counts as 0
            extra.update(textarena_reward=ta_reward, reason=state.game_info[0].get("reason", ""))
        self._progress = 1.0 if success else max(self._progress, self._partial_credit())
        return Step(self._observation(), reward, done,
                    StepInfo(valid=not invalid, success=success, progress=self._progress, extra=extra))

    def admissible_actions(self) -> list[str]:
        return [f"[{m}]" for m in MOVES]

    def parse_action(self, response: str) -> str | None:
        return parse_last_bracketed(response)

    def expert_step(self) -> ExpertStep:
        if self._done:
            raise NoExpert("the game is over")
        path = self._solve()
        if not path:
            raise NoExpert("no way to win from this state")
        return ExpertStep(f"[{path[0]}]", f"The shortest win takes {len(path)} more move{'s' * (len(path) != 1)}; "
                                          f"it starts {path[0]}.")

    def snapshot(self) -> dict[str, Any]:
        self._require_game()
        return copy.deepcopy({"game": self._game, "messages": self._messages, "oel_text": self._oel_text,
                              "wrapper_seen": self._wrapper_seen, "done": self._done, "progress": self._progress})

    def restore(self, snapshot: dict[str, Any]) -> None:
        snap = copy.deepcopy(snapshot)
        self._game, self._messages, self._oel_text = snap["game"], snap["messages"], snap["oel_text"]
        self._wrapper_seen, self._done, self._progress = snap["wrapper_seen"], snap["done"], snap["progress"]

    # -- text ------------------------------------------------------------------------------
    def _collect(self) -> None:
        """Take TextArena's new messages (its ``get_observation``) into both texts."""
        ta = require_extra("textarena", extra="oel", what=f"env {self.name}")

        game = self._require_game()
        fresh = [(sender, message) for sender, message, _ in game.state.observations[0]]
        self._messages += fresh
        _, observation = game.get_observation()
        if self.llm_wrapped:
            # LLMObservationWrapper returns the whole text so far; OEL keeps the new part from its
            # first [GAME] on and appends it as it is.
            new = observation[self._wrapper_seen:]
            self._wrapper_seen = len(observation)
            at = new.find("[GAME]")
            self._oel_text += new[at:] if at >= 0 else new[-1:]
        else:
            for sender, message, _ in observation:
                name = "GAME" if sender == ta.GAME_ID else game.state.role_mapping.get(sender, f"Player {sender}")
                self._oel_text += f"\n[{name}] {message}"

    def _observation(self) -> str:
        if self.config.prompt == "textarena":
            return "".join(f"\n[{_sender_name(s)}] {m}" for s, m in self._messages).strip()
        rules = self._messages[0][1] if self._messages else ""
        text = self._oel_text
        # TextArena's rules prompt is the first message; OEL replaces it (here: moved to the instructions).
        at = text.find(rules) if rules else -1
        if at >= 0:
            text = text[at + len(rules):]
        return text.strip()

    def _require_game(self) -> Any:
        if self._game is None:
            raise RuntimeError("call reset(task) before step()")
        return self._game

    def _partial_credit(self) -> float:
        return float(self._require_game()._get_percentage_completion())

    def _solve(self) -> list[str]:  # pragma: no cover - every game overrides it
        raise NotImplementedError


def _sender_name(sender: int) -> str:
    return "GAME" if sender == -1 else "Player"


@cache
def _rules_text(cls: type[_TextArenaGame]) -> str:
    """TextArena's own rules prompt for the game (its first message), indentation tidied."""
    game = make_textarena_game({"env_id": cls.env_id, "settings": cls.settings["test"], "seed": HELD_OUT_SEEDS[0]})
    prompt = game.state.observations[0][0][1]
    return "\n".join(line.strip() for line in prompt.strip().splitlines())


@cache
def _held_out_tasks(cls: type[_TextArenaGame], split: str) -> tuple[Task, ...]:
    return tuple(cls.task_for(split, seed) for seed in HELD_OUT_SEEDS)


@cache
def _train_tasks(cls: type[_TextArenaGame], count: int) -> tuple[Task, ...]:
    held_out = {tuple(t.spec["board"]) for t in _held_out_tasks(cls, "test")}
    tasks: list[Task] = []
    i = HELD_OUT
    while len(tasks) < count:
        task = cls.task_for("train", oel_seed(i))
        if cls.distinct_boards and tuple(task.spec["board"]) in held_out:
            i += 1
            continue
        tasks.append(task)
        i += 1
    return tuple(tasks)


class FrozenLakeOEL(_TextArenaGame):
    name: ClassVar[str] = "frozenlake-oel"
    version: ClassVar[str] = "ta0.7-1"
    description: ClassVar[str] = ("OEL's Frozen Lake: TextArena FrozenLake-v0-raw, 3x3 with 2 holes, 5 steps, "
                                  "its 128 held-out seeds; BFS expert")
    game_title: ClassVar[str] = "Frozen Lake"
    env_id: ClassVar[str] = "FrozenLake-v0-raw"
    settings: ClassVar[dict[str, dict[str, Any]]] = {
        "train": {"size": 3, "num_holes": 2, "randomize_start_goal": False},
        "test": {"size": 3, "num_holes": 2, "randomize_start_goal": False},
        "ood": {"size": 3, "num_holes": 2, "randomize_start_goal": True},
    }
    llm_wrapped: ClassVar[bool] = False
    distinct_boards: ClassVar[bool] = False
    """3x3 with 2 holes has 19 solvable boards, all among the held-out seeds: only seeds stay apart."""

    @classmethod
    def initial_board(cls, game: Any) -> list[str]:
        return board_rows(game)

    def _solve(self) -> list[str]:
        game = self._require_game()
        grid = game.state.game_state["grid"]
        start, goal = tuple(game.state.game_state["player_pos"]), tuple(game.state.game_state["goal_pos"])
        size = len(grid)
        previous: dict[Cell, tuple[Cell, str] | None] = {start: None}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            if cell == goal:
                break
            for move in ("down", "right", "up", "left"):
                dr, dc = DELTAS[move]
                nxt = (cell[0] + dr, cell[1] + dc)
                if 0 <= nxt[0] < size and 0 <= nxt[1] < size and nxt not in previous and grid[nxt[0]][nxt[1]] != "H":
                    previous[nxt] = (cell, move)
                    queue.append(nxt)
        if goal not in previous or goal == start:
            return []
        moves, cell = [], goal
        while previous[cell] is not None:
            cell, move = previous[cell]  # type: ignore[misc]
            moves.append(move)
        return moves[::-1]


def board_rows(game: Any) -> list[str]:
    """A Frozen Lake board as rows: ``P`` the player, ``H`` holes, ``G`` the goal, ``.`` ice."""
    grid = game.state.game_state["grid"]
    pr, pc = game.state.game_state["player_pos"]
    return ["".join("P" if (r, c) == (pr, pc) else (ch if ch != " " else ".") for c, ch in enumerate(row))
            for r, row in enumerate(grid)]


class SokobanOEL(_TextArenaGame):
    name: ClassVar[str] = "sokoban-oel"
    version: ClassVar[str] = "ta0.7-1"
    description: ClassVar[str] = ("OEL's Sokoban: TextArena Sokoban-v0, a 6x6 room with 1 box, 5 steps, "
                                  "its 128 held-out seeds; BFS expert")
    game_title: ClassVar[str] = "Sokoban"
    env_id: ClassVar[str] = "Sokoban-v0"
    settings: ClassVar[dict[str, dict[str, Any]]] = {
        "train": {"dim_room": [6, 6], "num_boxes": 1},
        "test": {"dim_room": [6, 6], "num_boxes": 1},
        "ood": {"dim_room": [7, 7], "num_boxes": 1},
    }
    llm_wrapped: ClassVar[bool] = True
    distinct_boards: ClassVar[bool] = True

    @classmethod
    def initial_board(cls, game: Any) -> list[str]:
        return game.create_board_str(game.room_state).splitlines()

    def _solve(self) -> list[str]:
        game = self._require_game()
        return solve_textarena_sokoban(game.room_fixed, game.room_state)


# TextArena's Sokoban cell codes.
_WALL, _TARGET, _BOX_ON_TARGET, _BOX, _PLAYER = 0, 2, 3, 4, 5
SOKOBAN_MAX_STATES = 100_000


def solve_textarena_sokoban(room_fixed: Any, room_state: Any, max_states: int = SOKOBAN_MAX_STATES) -> list[str]:
    """The fewest moves to TextArena's win, by breadth-first search; [] when there is none.

    TextArena wins after a valid move that leaves every box *marked* on a target (cell code 3); a
    box is marked when a push lands it on a target, and its generator leaves a box that starts on
    a target unmarked (code 4), so such a box must be pushed off and on again.
    """
    height, width = room_fixed.shape
    walls = {(r, c) for r in range(height) for c in range(width) if int(room_fixed[r, c]) == _WALL}
    targets = {(r, c) for r in range(height) for c in range(width) if int(room_fixed[r, c]) == _TARGET}
    player = next((r, c) for r in range(height) for c in range(width) if int(room_state[r, c]) == _PLAYER)
    boxes = tuple(sorted(((r, c), int(room_state[r, c]) == _BOX_ON_TARGET) for r in range(height)
                         for c in range(width) if int(room_state[r, c]) in (_BOX, _BOX_ON_TARGET)))

    def free(cell: Cell) -> bool:
        return 0 <= cell[0] < height and 0 <= cell[1] < width and cell not in walls

    start = (player, boxes)
    previous: dict[Any, tuple[Any, str] | None] = {start: None}
    queue = deque([start])
    while queue and len(previous) <= max_states:
        state = queue.popleft()
        at, held = state
        where = {b: marked for b, marked in held}
        for move in MOVES:
            dr, dc = DELTAS[move]
            step = (at[0] + dr, at[1] + dc)
            if not free(step):
                continue
            if step in where:
                beyond = (step[0] + dr, step[1] + dc)
                if not free(beyond) or beyond in where:
                    continue
                moved = dict(where)
                del moved[step]
                moved[beyond] = beyond in targets
                nxt = (step, tuple(sorted(moved.items())))
            else:
                nxt = (step, held)
            if nxt in previous:
                continue
            previous[nxt] = (state, move)
            if all(marked for _, marked in nxt[1]):
                moves, cur = [], nxt
                while previous[cur] is not None:
                    cur, m = previous[cur]  # type: ignore[misc]
                    moves.append(m)
                return moves[::-1]
            queue.append(nxt)
    return []
