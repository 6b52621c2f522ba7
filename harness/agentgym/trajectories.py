"""Expert trajectories in AgentGym's format (AgentTraj), for servers that have no expert.

A file is a JSON list (or JSON lines) of ``{"item_id": "<env>_<data_idx>", "conversations":
[{"from": "human"|"gpt", "value": ...}, ...]}``. Each ``gpt`` message with an ``Action:`` line
is one expert move; its ``Thought:`` text, when there is one, is kept as the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from agentbench.env import ExpertStep, parse_react_action
from agentbench.errors import CorruptFileError

_THOUGHT = re.compile(r"thought\s*:\s*(.*?)\s*(?:\n\s*\**\s*action\s*\**\s*:|$)", re.IGNORECASE | re.DOTALL)


def expert_moves(conversation: list[dict]) -> list[ExpertStep]:
    moves = []
    for message in conversation:
        if message.get("from") not in ("gpt", "assistant"):
            continue
        text = str(message.get("value", ""))
        action = parse_react_action(text)
        if action is None:  # the "OK." that opens AgentGym conversations, or a thought-only turn
            continue
        found = _THOUGHT.search(text)
        moves.append(ExpertStep(action, " ".join(found.group(1).split()) if found else ""))
    return moves


def load_trajectories(path: str | Path) -> dict[str, list[ExpertStep]]:
    """item_id -> the expert's moves, in order."""
    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except OSError as exc:
        raise CorruptFileError(f"cannot read expert trajectories {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except ValueError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise CorruptFileError(f"{path} is neither JSON nor JSON lines: {exc}") from exc
    out: dict[str, list[ExpertStep]] = {}
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict) or "item_id" not in item or not isinstance(item.get("conversations"), list):
            raise CorruptFileError(f"{path}: item {number} lacks item_id or a conversations list "
                                   f"(AgentGym's trajectory format)")
        out[str(item["item_id"])] = expert_moves(item["conversations"])
    return out
