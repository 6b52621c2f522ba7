"""Frozen Lake (the Online Experiential Learning paper's first environment), in text.

Dynamics come from gymnasium's ``FrozenLakeEnv`` (deterministic, not slippery); maps come from
``generate_random_map`` seeded per task, so every task is reproducible from its spec. The
observation spells out the map, the agent's position, the goal's offset and the four
neighbouring tiles; the expert walks a breadth-first shortest safe path.

Splits: ``train`` and ``test`` are 4x4 to 6x6 maps (test maps never occur in train); ``ood``
is 7x7 and 8x8 maps with denser holes.
"""

from __future__ import annotations

from collections import deque
from functools import cache
from typing import Any, ClassVar

from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv, generate_random_map
from pydantic import Field

from agentbench.env import BaseEnv, EnvConfig, ExpertStep, Split, Step, StepInfo, Task

# gymnasium's action ids
MOVES = {"left": 0, "down": 1, "right": 2, "up": 3}
DELTAS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
# The expert breaks ties in this order, so its choices are a function of the state alone.
EXPERT_ORDER = ("down", "right", "up", "left")
TILE_NAMES = {"S": "the start (safe)", "F": "frozen ice (safe)", "H": "a hole", "G": "the goal"}

SPLIT_SHAPES: dict[str, tuple[tuple[int, ...], float, int]] = {
    # split: (map sizes, probability a tile is frozen, seed offset)
    "train": ((4, 5, 6), 0.8, 0),
    "test": ((4, 5, 6), 0.8, 1_000_000),
    "ood": ((7, 8), 0.7, 2_000_000),
}


class FrozenLakeConfig(EnvConfig):
    n_train: int = Field(2000, ge=1, description="tasks in the train split")
    n_test: int = Field(500, ge=1, description="tasks in the test split")
    n_ood: int = Field(500, ge=1, description="tasks in the ood split")


class FrozenLake(BaseEnv):
    name: ClassVar[str] = "frozenlake"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Frozen Lake grid navigation (OEL); gymnasium dynamics, BFS expert"
    Config = FrozenLakeConfig
    default_max_turns: ClassVar[int] = 20
    # The observation is the whole state, so no history is needed (and prompts stay short).
    default_history_turns: ClassVar[int | None] = 0
    supports_snapshot: ClassVar[bool] = True

    def __init__(self, config: FrozenLakeConfig | None = None):
        super().__init__(config)
        self._game: FrozenLakeEnv | None = None
        self._task: Task | None = None
        self._done = False
        self._progress = 0.0
        self._start_distance = 1

    @property
    def instructions(self) -> str:
        return (
            "You are playing Frozen Lake. You walk on a grid of frozen ice from the start S to the "
            "goal G. Holes H must be avoided: stepping into one ends the game in failure. "
            "Moving off the edge of the map leaves you where you are.\n"
            "Each turn, choose one move: up, down, left or right."
        )

    def tasks(self, split: Split) -> list[Task]:
        count = {"train": self.config.n_train, "test": self.config.n_test, "ood": self.config.n_ood}[split]
        return list(_tasks(split, count))

    # -- episode ------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        # The map is the task; the seed only matters for slippery variants (not used here).
        self._task = task
        self._game = FrozenLakeEnv(desc=task.spec["desc"], is_slippery=False)
        self._game.reset(seed=seed)
        self._done = False
        self._start_distance = max(1, self._distance_to_goal())
        self._progress = 0.0
        return self._describe("You are at the start.")

    def step(self, action: str) -> Step:
        game = self._require_game()
        move = _normalise(action)
        if self._done:
            return Step("The game is over.", 0.0, True, StepInfo(valid=False, progress=self._progress))
        if move is None:
            feedback = f"Invalid action {action!r}. Valid actions are: up, down, left, right."
            return Step(self._describe(feedback), 0.0, False, StepInfo(valid=False, progress=self._progress))
        before = game.s
        game.step(MOVES[move])
        row, col = self._position()
        tile = self._tile(row, col)
        if tile == "G":
            self._done = True
            self._progress = 1.0
            return Step(f"You moved {move} and reached the goal. You win!", 1.0, True,
                        StepInfo(success=True, progress=1.0))
        if tile == "H":
            self._done = True
            return Step(f"You moved {move} and fell into a hole. Game over.", 0.0, True,
                        StepInfo(progress=self._progress))
        distance = self._distance_to_goal()
        self._progress = max(self._progress, 1.0 - distance / self._start_distance)
        feedback = f"You tried to move {move} but hit the edge and did not move." if game.s == before else f"You moved {move}."
        return Step(self._describe(feedback), 0.0, False, StepInfo(progress=self._progress))

    def expert_step(self) -> ExpertStep:
        path = self._shortest_path()
        move = path[0]
        down, right = self._goal_offset()
        return ExpertStep(move, f"The goal is {_offset_text(down, right)}; the shortest safe path starts {move}.")

    def admissible_actions(self) -> list[str]:
        return list(MOVES)

    def snapshot(self) -> dict[str, Any]:
        game = self._require_game()
        return {"s": int(game.s), "done": self._done, "progress": self._progress}

    def restore(self, snapshot: dict[str, Any]) -> None:
        game = self._require_game()
        game.s = snapshot["s"]
        self._done = snapshot["done"]
        self._progress = snapshot["progress"]

    # -- helpers --------------------------------------------------------------------------
    def _require_game(self) -> FrozenLakeEnv:
        if self._game is None:
            raise RuntimeError("call reset(task) before step()")
        return self._game

    @property
    def _desc(self) -> list[str]:
        assert self._task is not None
        return self._task.spec["desc"]

    def _position(self) -> tuple[int, int]:
        game = self._require_game()
        return divmod(int(game.s), len(self._desc[0]))

    def _tile(self, row: int, col: int) -> str | None:
        desc = self._desc
        if 0 <= row < len(desc) and 0 <= col < len(desc[0]):
            return desc[row][col]
        return None

    def _goal(self) -> tuple[int, int]:
        for r, line in enumerate(self._desc):
            if "G" in line:
                return r, line.index("G")
        raise ValueError("map without a goal")

    def _goal_offset(self) -> tuple[int, int]:
        (r, c), (gr, gc) = self._position(), self._goal()
        return gr - r, gc - c

    def _shortest_path(self) -> list[str]:
        start, goal = self._position(), self._goal()
        previous: dict[tuple[int, int], tuple[tuple[int, int], str] | None] = {start: None}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            if cell == goal:
                break
            for move in EXPERT_ORDER:
                dr, dc = DELTAS[move]
                nxt = (cell[0] + dr, cell[1] + dc)
                if nxt not in previous and self._tile(*nxt) in ("S", "F", "G"):
                    previous[nxt] = (cell, move)
                    queue.append(nxt)
        if goal not in previous:
            return []
        moves, cell = [], goal
        while previous[cell] is not None:
            cell, move = previous[cell]  # type: ignore[misc]
            moves.append(move)
        return moves[::-1]

    def _distance_to_goal(self) -> int:
        return len(self._shortest_path())

    def _describe(self, feedback: str) -> str:
        row, col = self._position()
        down, right = self._goal_offset()
        around = ", ".join(
            f"{move} is {TILE_NAMES.get(self._tile(row + dr, col + dc) or '', 'the edge of the map')}"
            for move, (dr, dc) in DELTAS.items()
        )
        grid = "\n".join(
            " ".join("P" if (r, c) == (row, col) else ch for c, ch in enumerate(line))
            for r, line in enumerate(self._desc)
        )
        return (
            f"{feedback}\n"
            f"You are at row {row + 1}, column {col + 1}. The goal is {_offset_text(down, right)}.\n"
            f"Around you: {around}.\n"
            f"Map (P = you, S = start, F = frozen, H = hole, G = goal):\n{grid}"
        )


def _normalise(action: str) -> str | None:
    words = action.strip().lower().replace("move", " ").replace("go", " ").split()
    return words[0] if len(words) == 1 and words[0] in MOVES else None


def _offset_text(down: int, right: int) -> str:
    parts = []
    if down:
        parts.append(f"{abs(down)} row{'s' if abs(down) != 1 else ''} {'down' if down > 0 else 'up'}")
    if right:
        parts.append(f"{abs(right)} column{'s' if abs(right) != 1 else ''} {'right' if right > 0 else 'left'}")
    return " and ".join(parts) + " from you" if parts else "here"


@cache
def _tasks(split: str, count: int) -> tuple[Task, ...]:
    sizes, frozen_p, offset = SPLIT_SHAPES[split]
    # Test and OOD maps must never appear in train: generate train's maps to exclude them.
    excluded = {tuple(t.spec["desc"]) for t in _tasks("train", 2000)} if split != "train" else set()
    tasks: list[Task] = []
    map_seed = offset
    while len(tasks) < count:
        size = sizes[map_seed % len(sizes)]
        desc = generate_random_map(size=size, p=frozen_p, seed=map_seed)
        if tuple(desc) not in excluded:
            excluded.add(tuple(desc))
            spec = {"size": size, "frozen_p": frozen_p, "map_seed": map_seed, "desc": desc}
            tasks.append(Task(id=f"{split}-{len(tasks):04d}", split=split, spec=spec))
        map_seed += 1
    return tuple(tasks)
