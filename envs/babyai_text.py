"""BabyAI in words: what the agent sees, what its last action did, and which words are actions.

The agent's view is MiniGrid's egocentric 7x7 window (walls block sight). Visible objects are
listed with their offset from the agent, counted in steps forward and to the side; the cell
straight ahead is spelled out, because whether ``move forward`` works depends on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from minigrid.core.actions import Actions

# The text action -> MiniGrid's action. ``done`` is left out: BabyAI levels never use it.
ACTIONS: dict[str, Actions] = {
    "turn left": Actions.left,
    "turn right": Actions.right,
    "move forward": Actions.forward,
    "pick up": Actions.pickup,
    "drop": Actions.drop,
    "toggle": Actions.toggle,
}
ACTION_NAMES: dict[Actions, str] = {code: text for text, code in ACTIONS.items()}
# A few phrasings a model is likely to use for the same actions.
SYNONYMS: dict[str, str] = {
    "left": "turn left",
    "right": "turn right",
    "forward": "move forward",
    "go forward": "move forward",
    "move ahead": "move forward",
    "pickup": "pick up",
    "pick": "pick up",
    "drop it": "drop",
    "put down": "drop",
    "open": "toggle",
    "open door": "toggle",
    "open the door": "toggle",
}
# Things that are not worth listing: they are everywhere, or they are nothing.
_SCENERY = {"wall", "empty", "floor", "unseen"}


def parse_action(text: str) -> Actions | None:
    """The MiniGrid action a text names, or None if it names none."""
    words = re.sub(r"[^a-z ]+", " ", text.lower()).split()
    phrase = " ".join(words)
    phrase = SYNONYMS.get(phrase, phrase)
    return ACTIONS.get(phrase)


def object_name(obj: Any) -> str:
    """'the red ball', 'the locked yellow door' (articles are added by the caller's sentence)."""
    if obj.type == "door":
        state = "open" if obj.is_open else ("locked" if obj.is_locked else "closed")
        return f"{state} {obj.color} door"
    return f"{obj.color} {obj.type}"


def with_article(name: str) -> str:
    return ("an " if name[0] in "aeiou" else "a ") + name


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def offset_text(forward: int, right: int) -> str:
    """Where a cell lies relative to the agent: '2 steps forward and 1 step to the left'."""
    if forward == 1 and right == 0:
        return "right in front of you"
    parts = []
    if forward:
        parts.append(f"{_steps(forward)} forward")
    if right:
        parts.append(f"{_steps(abs(right))} to the {'right' if right > 0 else 'left'}")
    return " and ".join(parts)


@dataclass(frozen=True)
class SeenObject:
    name: str
    forward: int
    right: int


def visible_objects(game: Any) -> list[SeenObject]:
    """Objects in the agent's view, nearest first (ties: ahead before aside, left before right)."""
    grid, vis_mask = game.gen_obs_grid()
    size = game.agent_view_size
    centre, row = size // 2, size - 1
    seen = []
    for i in range(size):
        for j in range(size):
            if (i, j) == (centre, row) or not vis_mask[i, j]:
                continue  # the agent's own cell holds what it carries
            cell = grid.get(i, j)
            if cell is None or cell.type in _SCENERY:
                continue
            seen.append(SeenObject(object_name(cell), row - j, i - centre))
    seen.sort(key=lambda o: (o.forward + abs(o.right), -o.forward, o.right, o.name))
    return seen


def ahead_text(game: Any) -> str:
    """What lies straight ahead: free steps, then the first thing in the way."""
    grid, vis_mask = game.gen_obs_grid()
    size = game.agent_view_size
    centre, row = size // 2, size - 1
    free = 0
    for j in range(row - 1, -1, -1):
        if not vis_mask[centre, j]:
            break
        cell = grid.get(centre, j)
        if cell is None or cell.type in ("empty", "floor") or (cell.type == "door" and cell.is_open):
            free += 1
            continue
        blocker = "a wall" if cell.type == "wall" else with_article(object_name(cell))
        if free == 0:
            return f"Right in front of you is {blocker}."
        return f"Ahead of you: {_steps(free)} of free floor, then {blocker}."
    return f"Ahead of you: at least {_steps(free)} of free floor."


def carrying_text(game: Any) -> str:
    carried = game.carrying
    return f"You are carrying {with_article(object_name(carried))}." if carried else "You are carrying nothing."


def describe(game: Any, feedback: str) -> str:
    """The observation: the last action's outcome, the mission, the view and the hands."""
    seen = visible_objects(game)
    if seen:
        listed = "; ".join(f"{with_article(o.name)} {offset_text(o.forward, o.right)}" for o in seen)
        view = f"You see {listed}."
    else:
        view = "You see no objects."
    return "\n".join([feedback, f"Mission: {game.mission}.", view, ahead_text(game), carrying_text(game)])


@dataclass(frozen=True)
class Before:
    """What the step's feedback is judged against: the state just before the action."""

    pos: tuple[int, int]
    carrying: Any
    front: Any
    front_state: str | None


def before_step(game: Any) -> Before:
    front = game.grid.get(*game.front_pos)
    state = object_name(front) if front is not None else None
    return Before(tuple(int(x) for x in game.agent_pos), game.carrying, front, state)


def feedback_text(game: Any, action: Actions, before: Before) -> str:
    """One sentence saying what the action did (or why it did nothing)."""
    front = before.front
    if action == Actions.left:
        return "You turned left."
    if action == Actions.right:
        return "You turned right."
    if action == Actions.forward:
        if tuple(int(x) for x in game.agent_pos) != before.pos:
            return "You moved forward."
        blocker = "a wall" if front.type == "wall" else f"the {object_name(front)}"
        return f"You could not move forward: {blocker} is in the way."
    if action == Actions.pickup:
        if game.carrying is not None and before.carrying is None:
            return f"You picked up the {object_name(game.carrying)}."
        if front is None:
            return "There is nothing in front of you to pick up."
        if before.carrying is not None and front.can_pickup():
            return f"You cannot pick up the {object_name(front)}: you are already carrying something."
        return f"You cannot pick up {'a wall' if front.type == 'wall' else 'the ' + object_name(front)}."
    if action == Actions.drop:
        if before.carrying is None:
            return "You are not carrying anything to drop."
        if game.carrying is None:
            return f"You dropped the {object_name(before.carrying)} in front of you."
        return "You cannot drop it here: the cell in front of you is not free."
    # toggle
    if front is None:
        return "There is nothing in front of you to toggle."
    if front.type == "door":
        if front.is_open and before.front_state == f"locked {front.color} door":
            return f"You unlocked and opened the {front.color} door."
        if front.is_open and before.front_state != f"open {front.color} door":
            return f"You opened the {front.color} door."
        if not front.is_open and before.front_state == f"open {front.color} door":
            return f"You closed the {front.color} door."
        return f"The {front.color} door is locked: you need to carry the {front.color} key to open it."
    if front.type == "box":
        inside = game.grid.get(*game.front_pos)
        found = f"it held {with_article(object_name(inside))}" if inside is not None else "it was empty"
        return f"You opened the {front.color} box; {found}."
    return f"Nothing happens when you toggle {'a wall' if front.type == 'wall' else 'the ' + object_name(front)}."
