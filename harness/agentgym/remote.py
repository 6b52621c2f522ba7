"""What the ``agentgym`` env needs from a server, whichever kind it is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agentbench.env import ExpertStep, Step, Task


@dataclass(frozen=True)
class RemoteMeta:
    """The served env's description, as the client env exposes it."""

    name: str
    version: str
    instructions: str
    default_max_turns: int | None
    """None: the server does not say (AgentGym's originals)."""
    default_history_turns: int | None
    supports_snapshot: bool


class Remote(Protocol):
    """One client session with an env server (the session itself is opened on first reset)."""

    meta: RemoteMeta

    def tasks(self, split: str) -> Sequence[Task]: ...
    def reset(self, task: Task, seed: int) -> str: ...
    def step(self, action: str) -> Step: ...
    def expert_step(self) -> ExpertStep: ...
    def snapshot(self) -> Any: ...
    def restore(self, snapshot: Any) -> None: ...
    def admissible_actions(self) -> list[str] | None: ...
    def parse_action(self, response: str) -> str | None: ...
    def close(self) -> None: ...
