"""Maze (AgentGym's MAZE, from LMRL-Gym), in text.

Mazes are perfect mazes (exactly one path between any two cells) carved by a randomised
depth-first search seeded per task; start and goal are drawn from the same seed, at a shortest
distance within the split's range. As in LMRL-Gym's maze, the agent does not see the map: each
observation gives its position, the goal's position and which of its four moves are blocked by a
wall (``show_map=True`` adds the map, a fully observed variant). Moving into a wall is an invalid
move that leaves the agent where it is. The expert walks the breadth-first shortest path.

Splits: ``train`` and ``test`` are 4x4 and 5x5 mazes (a test maze, with its start and goal, never
occurs in train); ``ood`` is 7x7 and 8x8 mazes with longer paths.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from pydantic import Field

from agentbench.env import BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task

Cell = tuple[int, int]
DELTAS: dict[str, Cell] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
# The expert breaks ties in this order, so its choices are a function of the state alone.
EXPERT_ORDER = ("up", "down", "left", "right")
WALL, OPEN = "#", "."


@dataclass(frozen=True)
class SplitShape:
    sizes: tuple[int, ...]
    """Mazes are size x size cells."""
    min_path: int
    max_path: int
    """Shortest start-to-goal distance, in moves, inclusive."""
    seed_offset: int


SPLIT_SHAPES: dict[str, SplitShape] = {
    "train": SplitShape((4, 5), 4, 14, 0),
    "test": SplitShape((4, 5), 4, 14, 1_000_000),
    "ood": SplitShape((7, 8), 12, 26, 2_000_000),
}


class MazeConfig(EnvConfig):
    n_train: int = Field(2000, ge=1, description="tasks in the train split")
    n_test: int = Field(500, ge=1, description="tasks in the test split")
    n_ood: int = Field(500, ge=1, description="tasks in the ood split")
    show_map: bool = Field(False, description="add the maze's map to each observation (fully observed)")


class Maze(BaseEnv):
    name: ClassVar[str] = "maze"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Maze navigation from position and wall feedback (AgentGym/LMRL-Gym MAZE); BFS expert"
    Config = MazeConfig
    default_max_turns: ClassVar[int] = 30
    # The map is hidden: the last few moves are the agent's only memory of where it has been.
    default_history_turns: ClassVar[int | None] = 3
    supports_snapshot: ClassVar[bool] = True

    def __init__(self, config: MazeConfig | None = None):
        super().__init__(config)
        self._grid: tuple[str, ...] = ()
        self._position: Cell | None = None
        self._goal: Cell = (0, 0)
        self._done = False
        self._progress = 0.0
        self._start_distance = 1

    @property
    def instructions(self) -> str:
        return (
            "You are in a maze of square cells and must reach the goal. You cannot see the maze; each "
            "turn you are told your position, the goal's position and which moves a wall blocks. "
            "Rows count down from 1 at the top, columns right from 1 at the left. Dead ends mean you "
            "sometimes have to walk away from the goal.\n"
            "Each turn, choose one move: up, down, left or right."
        )

    def tasks(self, split: Split) -> list[Task]:
        count = {"train": self.config.n_train, "test": self.config.n_test, "ood": self.config.n_ood}[split]
        return list(_tasks(split, count, self.config.n_train))

    # -- episode ------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        # The maze, start and goal are the task; moves are deterministic, so the seed is unused.
        self._grid = tuple(task.spec["rows"])
        self._position = _cell(task.spec["start"])
        self._goal = _cell(task.spec["goal"])
        self._done = False
        self._progress = 0.0
        self._start_distance = max(1, len(self._path()))
        return self._describe("You enter the maze.")

    def step(self, action: str) -> Step:
        position = self._require_position()
        if self._done:
            return Step("The game is over.", 0.0, True, StepInfo(valid=False, progress=self._progress))
        move = _normalise(action)
        if move is None:
            clipped = action if len(action) <= 40 else action[:40] + "..."
            feedback = f"Invalid action {clipped!r}. Valid actions are: up, down, left, right."
            return Step(self._describe(feedback), 0.0, False, StepInfo(valid=False, progress=self._progress))
        if not _open(self._grid, position, move):
            return Step(self._describe(f"You cannot move {move}: there is a wall."), 0.0, False,
                        StepInfo(valid=False, progress=self._progress))
        dr, dc = DELTAS[move]
        self._position = (position[0] + dr, position[1] + dc)
        if self._position == self._goal:
            self._done, self._progress = True, 1.0
            return Step(f"You moved {move} and reached the goal. You win!", 1.0, True,
                        StepInfo(success=True, progress=1.0))
        self._progress = max(self._progress, 1.0 - len(self._path()) / self._start_distance)
        return Step(self._describe(f"You moved {move}."), 0.0, False, StepInfo(progress=self._progress))

    def expert_step(self) -> ExpertStep:
        if self._done:
            raise NoExpert("the game is over")
        path = self._path()
        return ExpertStep(path[0], f"The shortest path to the goal is {len(path)} move{'s' * (len(path) != 1)}; "
                                   f"it starts {path[0]}.")

    def admissible_actions(self) -> list[str]:
        return list(DELTAS)

    def snapshot(self) -> dict[str, Any]:
        return {"position": self._require_position(), "done": self._done, "progress": self._progress}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self._require_position()
        self._position = snapshot["position"]
        self._done = snapshot["done"]
        self._progress = snapshot["progress"]

    # -- helpers --------------------------------------------------------------------------
    def _require_position(self) -> Cell:
        if self._position is None:
            raise RuntimeError("call reset(task) before step()")
        return self._position

    def _path(self) -> list[str]:
        return shortest_path(self._grid, self._require_position(), self._goal)

    def _describe(self, feedback: str) -> str:
        row, col = self._require_position()
        blocked = [m for m in DELTAS if not _open(self._grid, (row, col), m)]
        free = [m for m in DELTAS if m not in blocked]
        text = (
            f"{feedback}\nYou are at row {row + 1}, column {col + 1}. "
            f"The goal is at row {self._goal[0] + 1}, column {self._goal[1] + 1} "
            f"({_offset_text(self._goal[0] - row, self._goal[1] - col)}).\n"
            f"Walls block: {', '.join(blocked) or 'nothing'}. Open moves: {', '.join(free) or 'none'}."
        )
        if self.config.show_map:
            text += f"\nMap (# wall, P you, G goal):\n{render(self._grid, (row, col), self._goal)}"
        return text


# -- maze generation and search (pure functions of the grid) ---------------------------------
def generate_maze(size: int, rng: random.Random) -> tuple[str, ...]:
    """A perfect maze of size x size cells as a (2*size+1)-square grid of ``#`` and ``.``.

    Cell (r, c) is grid square (2r+1, 2c+1); the square between two neighbouring cells is open
    when there is a passage between them.
    """
    n = 2 * size + 1
    grid = [[WALL] * n for _ in range(n)]
    start = (rng.randrange(size), rng.randrange(size))
    stack, seen = [start], {start}
    grid[2 * start[0] + 1][2 * start[1] + 1] = OPEN
    while stack:  # iterative randomised depth-first search (recursive backtracker)
        r, c = stack[-1]
        nexts = [(r + dr, c + dc) for dr, dc in DELTAS.values()
                 if 0 <= r + dr < size and 0 <= c + dc < size and (r + dr, c + dc) not in seen]
        if not nexts:
            stack.pop()
            continue
        nr, nc = rng.choice(nexts)
        grid[r + nr + 1][c + nc + 1] = OPEN  # the wall square between the two cells
        grid[2 * nr + 1][2 * nc + 1] = OPEN
        seen.add((nr, nc))
        stack.append((nr, nc))
    return tuple("".join(line) for line in grid)


def _open(grid: tuple[str, ...], cell: Cell, move: str) -> bool:
    dr, dc = DELTAS[move]
    r, c = 2 * cell[0] + 1 + dr, 2 * cell[1] + 1 + dc
    return 0 <= r < len(grid) and 0 <= c < len(grid[0]) and grid[r][c] == OPEN


def distances(grid: tuple[str, ...], source: Cell) -> dict[Cell, int]:
    """Moves from ``source`` to every reachable cell."""
    dist = {source: 0}
    queue = deque([source])
    while queue:
        cell = queue.popleft()
        for move in EXPERT_ORDER:
            if _open(grid, cell, move):
                nxt = (cell[0] + DELTAS[move][0], cell[1] + DELTAS[move][1])
                if nxt not in dist:
                    dist[nxt] = dist[cell] + 1
                    queue.append(nxt)
    return dist


def shortest_path(grid: tuple[str, ...], start: Cell, goal: Cell) -> list[str]:
    """The moves of a shortest path (breadth-first; ties broken in ``EXPERT_ORDER``); [] if none."""
    to_goal = distances(grid, goal)
    if start not in to_goal:
        return []
    moves, cell = [], start
    while cell != goal:
        for move in EXPERT_ORDER:
            nxt = (cell[0] + DELTAS[move][0], cell[1] + DELTAS[move][1])
            if _open(grid, cell, move) and to_goal.get(nxt) == to_goal[cell] - 1:
                moves.append(move)
                cell = nxt
                break
    return moves


def render(grid: tuple[str, ...], position: Cell, goal: Cell) -> str:
    marks = {(2 * position[0] + 1, 2 * position[1] + 1): "P", (2 * goal[0] + 1, 2 * goal[1] + 1): "G"}
    return "\n".join("".join(marks.get((r, c), ch) for c, ch in enumerate(line)) for r, line in enumerate(grid))


def _cell(value: Any) -> Cell:
    return int(value[0]), int(value[1])


def _normalise(action: str) -> str | None:
    words = action.strip().lower().replace("move", " ").replace("go", " ").strip("[]().").split()
    return words[0] if len(words) == 1 and words[0] in DELTAS else None


def _offset_text(down: int, right: int) -> str:
    parts = []
    if down:
        parts.append(f"{abs(down)} row{'s' if abs(down) != 1 else ''} {'down' if down > 0 else 'up'}")
    if right:
        parts.append(f"{abs(right)} column{'s' if abs(right) != 1 else ''} {'right' if right > 0 else 'left'}")
    return " and ".join(parts) + " from you" if parts else "here"


def make_task_spec(shape: SplitShape, maze_seed: int) -> dict[str, Any] | None:
    """The task for ``maze_seed``, or None when its start-goal distance is out of the split's range."""
    rng = random.Random(maze_seed)
    size = shape.sizes[maze_seed % len(shape.sizes)]
    rows = generate_maze(size, rng)
    start = (rng.randrange(size), rng.randrange(size))
    dist = distances(rows, start)
    candidates = sorted(cell for cell, d in dist.items() if shape.min_path <= d <= shape.max_path)
    if not candidates:
        return None
    goal = rng.choice(candidates)
    return {"size": size, "maze_seed": maze_seed, "rows": list(rows), "start": list(start), "goal": list(goal),
            "optimal_moves": dist[goal]}


@cache
def _tasks(split: str, count: int, n_train: int) -> tuple[Task, ...]:
    shape = SPLIT_SHAPES[split]
    # A test or ood maze (with its start and goal) must never appear in train.
    excluded = {_key(t.spec) for t in _tasks("train", n_train, n_train)} if split != "train" else set()
    tasks: list[Task] = []
    maze_seed = shape.seed_offset
    while len(tasks) < count:
        spec = make_task_spec(shape, maze_seed)
        if spec is not None and _key(spec) not in excluded:
            excluded.add(_key(spec))
            tasks.append(Task(id=f"{split}-{len(tasks):04d}", split=split, spec=spec))
        maze_seed += 1
    return tuple(tasks)


def _key(spec: dict[str, Any]) -> tuple:
    return (tuple(spec["rows"]), tuple(spec["start"]), tuple(spec["goal"]))
