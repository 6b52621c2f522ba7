"""Expert trajectories for WebArena(-Lite): the JSONL format and its loader.

The Early Experience paper trained on leaderboard trajectories that are not shipped anywhere,
so the expert data of ``webarena-lite`` is the user's, given with ``--set expert_path=FILE``.
The tasks of that file form the env's ``train`` split (tasks that also occur in the test split,
same intent and start URL, are left out), and ``expert_step`` replays each trajectory.

One JSON object per line::

    {"task": {<a task config in the WebArena-Lite schema: task_id, sites, start_url, ...>},
     "steps": [
        {"action": "type [5] [yoga mat] [1]",
         "thought": "I search the catalogue for the product.",
         "element": {"role": "searchbox", "name": "Search"}},
        {"action": "click [14]", "element": {"role": "link", "name": "Hawk Yoga Mat"}},
        {"action": "stop [$29.99]", "thought": "The product page shows the price."}
     ],
     "source": "where the trajectory came from (optional)"}

- ``action``: one action of WebArena's grammar (see ``agentbench.envs.webarena.actions``).
- ``thought``: optional; becomes the ReAct ``Thought:`` of the imitation target.
- ``element``: optional ``{"role", "name", "nth"}``. Element ids differ between page loads and
  deployments, so a step that names its element is resolved against the live page when it is
  replayed: the ``[id]`` of the action is replaced by the id of the ``nth`` (default 0) node with
  that role and name in the current observation. Without ``element``, the id is used as written.
- The last step should be ``stop [...]``; a trajectory whose replay does not succeed is left
  out of the expert data (and listed) by the harness.

``task_id`` must be unique within the file. Blank lines are ignored; any other malformed line is
an error naming the line.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentbench.envs.webarena.actions import ActionParseError, parse_action
from agentbench.envs.webarena.tasks import TaskConfig
from agentbench.errors import ConfigError, CorruptFileError


class ElementRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str = Field(min_length=1, description="accessibility role, as in the observation")
    name: str = Field(description="accessible name, as in the observation")
    nth: int = Field(0, ge=0, description="which of several matching nodes (document order)")


class ExpertAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str = Field(min_length=1)
    thought: str = ""
    element: ElementRef | None = None

    @field_validator("action")
    @classmethod
    def _grammar(cls, value: str) -> str:
        try:
            parse_action(value)
        except ActionParseError as exc:
            raise ValueError(f"not an action of the grammar: {exc}") from exc
        return value


class ExpertTrajectory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: TaskConfig
    steps: list[ExpertAction] = Field(min_length=1)
    source: str = ""


def load_expert_file(path: str) -> list[ExpertTrajectory]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"expert file {path} does not exist")
    trajectories: list[ExpertTrajectory] = []
    seen: set[int] = set()
    for number, line in enumerate(file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            trajectory = ExpertTrajectory.model_validate(json.loads(line))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                first = exc.errors()[0]
                reason = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
            else:
                reason = f"not JSON ({exc})"
            raise CorruptFileError(f"expert file {path}, line {number}: {reason}") from exc
        if trajectory.task.task_id in seen:
            raise CorruptFileError(f"expert file {path}, line {number}: task_id {trajectory.task.task_id} repeats")
        seen.add(trajectory.task.task_id)
        trajectories.append(trajectory)
    if not trajectories:
        raise CorruptFileError(f"expert file {path} holds no trajectory")
    return trajectories
