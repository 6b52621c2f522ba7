"""Sokoban levels: generated once by TextArena's ``Sokoban-v0`` generator, stored in ``levels.json``.

Generating a room takes TextArena 5 ms (6x6, one box) to 60 ms (7x7, two boxes) plus a 4 s
import, too slow to redo in every process, so the levels ship with the package and are
regenerated (bit for bit, from their seeds) by::

    python -m agentbench.envs.sokoban.levels

Each level is TextArena's ``SokobanEnv(dim_room, num_boxes).reset(seed=...)`` room, then checked
by the breadth-first solver: rooms with no solution within ``MAX_STATES``, or whose shortest
solution is shorter than ``min_moves`` (TextArena often leaves a box one push from its target)
or longer than ``max_moves`` (it must fit the turn limit), are skipped, so the split is a
deterministic function of the seeds. TextArena rewrites a box that starts on a target as a plain
box (code 4 instead of 3); the stored level marks it as on its target, which is what its rules
mean (see ``levels_from_textarena``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from agentbench.envs.sokoban.solver import Cell, Room, solve

LEVELS_FILE = "levels.json"
MAX_STATES = 200_000

# TextArena's cell codes.
WALL, FLOOR, TARGET, BOX_ON_TARGET, BOX, PLAYER = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class SplitShape:
    height: int
    width: int
    boxes: int
    count: int
    first_seed: int
    min_moves: int
    max_moves: int


SHAPES: dict[str, SplitShape] = {
    # train and test: TextArena's 6x6 room with one box; ood: larger rooms with two boxes.
    "train": SplitShape(6, 6, 1, 1000, 0, 3, 20),
    "test": SplitShape(6, 6, 1, 250, 1_000_000, 3, 20),
    "ood": SplitShape(7, 7, 2, 250, 2_000_000, 3, 20),
}


@dataclass(frozen=True)
class Level:
    """A level as stored: the fixed room as text (``#`` wall, ``_`` floor, ``O`` target) and
    where the player and the boxes start."""

    rows: tuple[str, ...]
    player: Cell
    boxes: tuple[Cell, ...]

    def room(self) -> Room:
        walls = [(r, c) for r, row in enumerate(self.rows) for c, ch in enumerate(row) if ch == "#"]
        targets = [(r, c) for r, row in enumerate(self.rows) for c, ch in enumerate(row) if ch == "O"]
        return Room.build(len(self.rows), len(self.rows[0]), walls, targets)

    def key(self) -> tuple:
        return (self.rows, self.player, self.boxes)

    def to_spec(self) -> dict[str, Any]:
        return {"rows": list(self.rows), "player": list(self.player), "boxes": [list(b) for b in self.boxes]}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Level:
        return cls(tuple(spec["rows"]), tuple(spec["player"]), tuple(sorted(tuple(b) for b in spec["boxes"])))


def levels_from_textarena(room_fixed, room_state) -> Level:
    """A TextArena room (numpy arrays of cell codes) as a ``Level``."""
    chars = {WALL: "#", FLOOR: "_", TARGET: "O"}
    rows = tuple("".join(chars[int(v)] for v in line) for line in room_fixed)
    boxes, player = [], None
    for r, line in enumerate(room_state):
        for c, v in enumerate(line):
            if int(v) in (BOX, BOX_ON_TARGET):
                boxes.append((r, c))
            elif int(v) == PLAYER:
                player = (r, c)
    assert player is not None, "TextArena room without a player"
    return Level(rows, player, tuple(sorted(boxes)))


def generate_level(shape: SplitShape, seed: int) -> tuple[Level, int] | None:
    """TextArena's room for ``seed`` and its optimal solution length, or None when it is skipped."""
    from textarena.envs.Sokoban.env import SokobanEnv  # slow import (nltk, scipy): only when generating

    game = SokobanEnv(dim_room=(shape.height, shape.width), num_boxes=shape.boxes)
    try:
        game.reset(num_players=1, seed=seed)
    except (RuntimeError, RuntimeWarning):
        return None
    level = levels_from_textarena(game.room_fixed, game.room_state)
    solution = solve(level.room(), level.player, level.boxes, MAX_STATES)
    if solution.moves is None or not shape.min_moves <= len(solution.moves) <= shape.max_moves:
        return None
    return level, len(solution.moves)


def generate_split(split: str, excluded: set[tuple]) -> list[dict[str, Any]]:
    shape = SHAPES[split]
    out: list[dict[str, Any]] = []
    seed = shape.first_seed
    while len(out) < shape.count:
        made = generate_level(shape, seed)
        if made is not None and made[0].key() not in excluded:
            level, moves = made
            excluded.add(level.key())
            out.append({"seed": seed, "height": shape.height, "width": shape.width, "num_boxes": shape.boxes,
                        "optimal_moves": moves, **level.to_spec()})
        seed += 1
    return out


def generate_all() -> dict[str, Any]:
    import textarena

    excluded: set[tuple] = set()  # test and ood rooms never repeat a train room
    splits = {split: generate_split(split, excluded) for split in ("train", "test", "ood")}
    return {"generator": f"textarena {textarena.__version__} SokobanEnv(dim_room, num_boxes).reset(seed)",
            "shapes": {k: vars(v) for k, v in SHAPES.items()}, "splits": splits}


@cache
def stored_levels() -> dict[str, Any]:
    text = resources.files("agentbench.envs.sokoban").joinpath(LEVELS_FILE).read_text()
    return json.loads(text)


def main() -> None:
    path = Path(__file__).with_name(LEVELS_FILE)
    data = generate_all()
    # One level per line: small diffs when the generator changes.
    lines = [f'{{"generator": {json.dumps(data["generator"])},', f'"shapes": {json.dumps(data["shapes"])},',
             '"splits": {']
    for i, (split, levels) in enumerate(data["splits"].items()):
        lines.append(f'{json.dumps(split)}: [')
        lines += [json.dumps(level) + ("," if j < len(levels) - 1 else "") for j, level in enumerate(levels)]
        lines.append("]" + ("," if i < len(data["splits"]) - 1 else ""))
    lines.append("}}")
    path.write_text("\n".join(lines) + "\n")
    counts = {k: len(v) for k, v in data["splits"].items()}
    print(f"wrote {path}: {counts}")


if __name__ == "__main__":
    main()
