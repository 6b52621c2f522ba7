"""A breadth-first Sokoban solver over (player, boxes) states: optimal in moves.

It models TextArena's rules (a move walks onto free floor or pushes the one box in front of the
player onto free floor; nothing else moves) and prunes boxes pushed onto *dead squares*, cells
from which no sequence of pushes can bring a box to any target. Rooms of TextArena's generator
(6x6 to 8x8, one to three boxes) solve in milliseconds; ``max_states`` bounds the search so an
unsolvable or huge room fails fast instead of hanging.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

Cell = tuple[int, int]
Boxes = tuple[Cell, ...]
"""Box positions, sorted, so that equal sets of boxes compare equal."""

# TextArena's action order; BFS expands moves in this order, so ties break the same way always.
MOVES: dict[str, Cell] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


@dataclass(frozen=True)
class Room:
    """The fixed part of a level: its size, walls and box targets."""

    height: int
    width: int
    walls: frozenset[Cell]
    targets: frozenset[Cell]
    dead: frozenset[Cell] = field(default=frozenset(), compare=False)

    @classmethod
    def build(cls, height: int, width: int, walls: Iterable[Cell], targets: Iterable[Cell]) -> Room:
        room = cls(height, width, frozenset(walls), frozenset(targets))
        object.__setattr__(room, "dead", room._dead_squares())
        return room

    def is_floor(self, cell: Cell) -> bool:
        r, c = cell
        return 0 <= r < self.height and 0 <= c < self.width and cell not in self.walls

    def _dead_squares(self) -> frozenset[Cell]:
        # A box can reach a target from cell X iff the reverse game (the player *pulls* the box)
        # can bring it from some target to X: the pull needs X and the cell beyond X free.
        alive: set[Cell] = set(self.targets)
        queue = deque(self.targets)
        while queue:
            box = queue.popleft()
            for dr, dc in MOVES.values():
                prev_box = (box[0] + dr, box[1] + dc)        # where the box was before the push
                pusher = (box[0] + 2 * dr, box[1] + 2 * dc)  # where the player stood to push it
                if prev_box not in alive and self.is_floor(prev_box) and self.is_floor(pusher):
                    alive.add(prev_box)
                    queue.append(prev_box)
        floor = {(r, c) for r in range(self.height) for c in range(self.width) if self.is_floor((r, c))}
        return frozenset(floor - alive)

    def solved(self, boxes: Boxes) -> bool:
        return all(b in self.targets for b in boxes)


def apply_move(room: Room, player: Cell, boxes: Boxes, move: str) -> tuple[Cell, Boxes] | None:
    """The state after ``move``, or None when the move is blocked (a wall, or a box that cannot move)."""
    dr, dc = MOVES[move]
    step = (player[0] + dr, player[1] + dc)
    if not room.is_floor(step):
        return None
    if step not in boxes:
        return step, boxes
    beyond = (step[0] + dr, step[1] + dc)
    if not room.is_floor(beyond) or beyond in boxes:
        return None
    return step, tuple(sorted(beyond if b == step else b for b in boxes))


@dataclass(frozen=True)
class Solution:
    moves: list[str] | None
    """The shortest move sequence, or None when none was found within the bound."""
    explored: int
    """States expanded."""
    exhausted: bool
    """True when the whole reachable space was searched (None then means unsolvable)."""


def solve(room: Room, player: Cell, boxes: Iterable[Cell], max_states: int = 200_000) -> Solution:
    """Shortest solution (in moves) from this state, by breadth-first search."""
    start = (player, tuple(sorted(boxes)))
    if room.solved(start[1]):
        return Solution([], 0, True)
    parent: dict[tuple[Cell, Boxes], tuple[tuple[Cell, Boxes], str] | None] = {start: None}
    queue = deque([start])
    explored = 0
    while queue:
        if explored >= max_states:
            return Solution(None, explored, False)
        state = queue.popleft()
        explored += 1
        for move in MOVES:
            nxt = apply_move(room, state[0], state[1], move)
            if nxt is None or nxt in parent:
                continue
            if nxt[1] != state[1] and any(b in room.dead for b in nxt[1]):
                continue  # the push put a box where it can never reach a target
            parent[nxt] = (state, move)
            if room.solved(nxt[1]):
                return Solution(_path(parent, nxt), explored, False)
            queue.append(nxt)
    return Solution(None, explored, True)


def _path(parent, state) -> list[str]:
    moves = []
    while parent[state] is not None:
        state, move = parent[state]
        moves.append(move)
    return moves[::-1]
