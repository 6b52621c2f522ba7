"""Sokoban (the Online Experiential Learning paper's second environment), in text.

The rules are TextArena's ``Sokoban-v0`` (``textarena.envs.Sokoban.env.SokobanEnv``): each move
calls its wall check and push, so a move into a wall, or a push against a wall or a second box,
is an invalid move that leaves the board as it was. Its turn counting and two-strikes rule for
invalid moves are not used: the harness's rollout limits decide when an episode ends.

Levels come from TextArena's generator (see ``levels.py``); train and test are 6x6 rooms with one
box (test rooms never occur in train), ood is 7x7 rooms with two boxes. The observation is the
whole board plus the coordinates of the player, boxes and targets, so no history is needed. The
expert follows a breadth-first shortest solution (``solver.py``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import Field

from agentbench.env import Availability, BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task
from agentbench.envs.sokoban.levels import (
    BOX,
    BOX_ON_TARGET,
    FLOOR,
    PLAYER,
    TARGET,
    WALL,
    Level,
    stored_levels,
)
from agentbench.envs.sokoban.solver import MOVES, Boxes, Cell, Room, apply_move, solve
from agentbench.errors import ConfigError
from agentbench.extras import has_module, needs_extra, require_extra

# TextArena accepts these aliases too.
ALIASES = {"w": "up", "a": "left", "s": "down", "d": "right", "north": "up", "south": "down",
           "west": "left", "east": "right"}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SYMBOLS = {WALL: "#", FLOOR: "_", TARGET: "O", BOX_ON_TARGET: "√", BOX: "X"}
EXPERT_MAX_STATES = 200_000


class SokobanConfig(EnvConfig):
    n_train: int = Field(1000, ge=1, le=1000, description="tasks in the train split (at most the 1000 stored)")
    n_test: int = Field(250, ge=1, le=250, description="tasks in the test split (at most the 250 stored)")
    n_ood: int = Field(250, ge=1, le=250, description="tasks in the ood split (at most the 250 stored)")


class Sokoban(BaseEnv):
    name: ClassVar[str] = "sokoban"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Sokoban box pushing (OEL); TextArena Sokoban-v0 rules and rooms, BFS expert"
    Config = SokobanConfig
    default_max_turns: ClassVar[int] = 24
    # The observation is the whole board, so no history is needed (and prompts stay short).
    default_history_turns: ClassVar[int | None] = 0
    supports_snapshot: ClassVar[bool] = True

    def __init__(self, config: SokobanConfig | None = None):
        super().__init__(config)
        self._game: Any = None
        self._room: Room | None = None
        self._done = False
        self._progress = 0.0
        self._start_moves = 1
        self._plan: dict[tuple[Cell, Boxes], tuple[str, int]] = {}

    @classmethod
    def availability(cls) -> Availability:
        if not has_module("textarena"):
            return Availability(False, needs_extra("sokoban", "textarena"))
        return Availability(True)

    @property
    def instructions(self) -> str:
        return (
            "You are playing Sokoban. Push every box (X) onto a target (O). You (P) move one square "
            "at a time; walking into a box pushes it one square, if the square behind it is free. "
            "Boxes cannot be pulled, and a box pushed into a corner is stuck for good. "
            "# is a wall, _ is floor, √ is a box on a target, + is you standing on a target.\n"
            "Each turn, choose one move: up, down, left or right."
        )

    def tasks(self, split: Split) -> list[Task]:
        count = {"train": self.config.n_train, "test": self.config.n_test, "ood": self.config.n_ood}[split]
        stored = stored_levels()["splits"][split]
        if count > len(stored):
            raise ConfigError(f"sokoban has {len(stored)} {split} levels; asked for {count}")
        return [Task(f"{split}-{i:04d}", split, level) for i, level in enumerate(stored[:count])]

    # -- episode ------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        # The room is the task; Sokoban has no randomness once the room is fixed.
        import numpy as np

        SokobanEnv = require_extra("textarena.envs.Sokoban.env", extra="sokoban", what="env sokoban",
                                   package="textarena").SokobanEnv

        level = Level.from_spec(task.spec)
        self._room = level.room()
        game = SokobanEnv(dim_room=(self._room.height, self._room.width), num_boxes=len(level.boxes))
        fixed = np.array([[{"#": WALL, "_": FLOOR, "O": TARGET}[ch] for ch in row] for row in level.rows])
        state = fixed.copy()
        for box in level.boxes:
            state[box] = BOX_ON_TARGET if fixed[box] == TARGET else BOX
        state[level.player] = PLAYER
        game.room_fixed, game.room_state = fixed, state
        game.player_position = np.array(level.player)
        self._game = game
        self._done = False
        self._progress = 0.0
        self._plan = {}
        remaining = self._remaining_moves()
        self._start_moves = max(1, remaining or 1)
        return self._describe("The puzzle begins.")

    def step(self, action: str) -> Step:
        game = self._require_game()
        if self._done:
            return Step("The game is over.", 0.0, True, StepInfo(valid=False, progress=self._progress))
        move = _normalise(action)
        if move is None:
            feedback = f"Invalid action {_clip(action)!r}. Valid actions are: up, down, left, right."
            return Step(self._describe(feedback), 0.0, False, StepInfo(valid=False, progress=self._progress))
        boxes_before = self._boxes()
        if game._would_collide_with_wall(move) or not game._push(move)[0]:
            feedback = f"You cannot move {move}: a wall or a box that cannot move is in the way."
            return Step(self._describe(feedback), 0.0, False, StepInfo(valid=False, progress=self._progress))
        pushed = self._boxes() != boxes_before
        on_targets, solved = game._check_if_all_boxes_on_target()
        if solved:
            self._done, self._progress = True, 1.0
            return Step(f"You moved {move} and pushed the last box onto its target. Puzzle solved!", 1.0, True,
                        StepInfo(success=True, progress=1.0, extra={"boxes_on_targets": int(on_targets)}))
        remaining = self._remaining_moves()
        if remaining is not None:
            self._progress = max(self._progress, 1.0 - remaining / self._start_moves)
        feedback = f"You moved {move}" + (" and pushed a box." if pushed else ".")
        if remaining is None:
            feedback += " A box is now stuck: the puzzle can no longer be solved."
        return Step(self._describe(feedback), 0.0, False,
                    StepInfo(progress=self._progress,
                             extra={"boxes_on_targets": int(on_targets), "solvable": remaining is not None}))

    def expert_step(self) -> ExpertStep:
        if self._done:
            raise NoExpert("the game is over")
        hit = self._plan_here()
        if hit is None:
            raise NoExpert("no solution from this state: a box is stuck")
        move, remaining = hit
        return ExpertStep(move, f"The shortest solution takes {remaining} more move{'s' * (remaining != 1)}; "
                                f"it starts {move}.")

    def admissible_actions(self) -> list[str]:
        return list(MOVES)

    def snapshot(self) -> dict[str, Any]:
        game = self._require_game()
        return {"room_state": game.room_state.copy(), "player": game.player_position.copy(),
                "done": self._done, "progress": self._progress}

    def restore(self, snapshot: dict[str, Any]) -> None:
        game = self._require_game()
        game.room_state = snapshot["room_state"].copy()
        game.player_position = snapshot["player"].copy()
        self._done = snapshot["done"]
        self._progress = snapshot["progress"]

    # -- helpers --------------------------------------------------------------------------
    def _require_game(self) -> Any:
        if self._game is None:
            raise RuntimeError("call reset(task) before step()")
        return self._game

    def _player(self) -> Cell:
        r, c = self._require_game().player_position
        return int(r), int(c)

    def _boxes(self) -> Boxes:
        state = self._require_game().room_state
        return tuple(sorted((int(r), int(c)) for r, c in zip(*((state == BOX) | (state == BOX_ON_TARGET)).nonzero(), strict=True)))

    def _plan_here(self) -> tuple[str, int] | None:
        """The next move and the moves left on a shortest solution from here (cached along it)."""
        assert self._room is not None
        key = (self._player(), self._boxes())
        if key not in self._plan:
            found = solve(self._room, key[0], key[1], EXPERT_MAX_STATES).moves
            if not found:
                return None
            player, boxes = key
            for i, move in enumerate(found):
                self._plan[(player, boxes)] = (move, len(found) - i)
                player, boxes = apply_move(self._room, player, boxes, move)  # type: ignore[misc]
        return self._plan[key]

    def _remaining_moves(self) -> int | None:
        hit = self._plan_here()
        return None if hit is None else hit[1]

    def _describe(self, feedback: str) -> str:
        game = self._require_game()
        assert self._room is not None
        player = self._player()
        boxes = self._boxes()
        rows = []
        for r, line in enumerate(game.room_state):
            cells = []
            for c, code in enumerate(line):
                if (r, c) == player:
                    cells.append("+" if (r, c) in self._room.targets else "P")
                else:
                    cells.append(SYMBOLS[int(code)])
            rows.append(" ".join(cells))
        on = sum(b in self._room.targets for b in boxes)
        text = (
            f"{feedback}\n"
            + "\n".join(rows)
            + f"\nYou are at {_cell(player)}. Boxes: {', '.join(_cell(b) for b in boxes)}. "
            f"Targets: {', '.join(_cell(t) for t in sorted(self._room.targets))}. "
            f"Boxes on targets: {on} of {len(boxes)}."
        )
        return ANSI.sub("", text)


def _cell(cell: Cell) -> str:
    return f"row {cell[0] + 1} column {cell[1] + 1}"


def _normalise(action: str) -> str | None:
    text = ANSI.sub("", action).strip().lower().strip("[]().").strip()
    words = text.replace("move", " ").replace("push", " ").replace("go", " ").split()
    if len(words) != 1:
        return None
    word = words[0].strip("[]")
    word = ALIASES.get(word, word)
    return word if word in MOVES else None


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
