"""The client side of AgentGym's original env servers (WebShop, ALFWorld, BabyAI, SciWorld, ...).

Their servers agree on the endpoints but not on the JSON, so every answer is read tolerantly:

- ``/create`` answers an int (WebShop) or ``{"id": n}`` (the others);
- the session id travels as ``id`` (most) or ``env_idx`` (WebShop): both are sent;
- the task index is ``data_idx`` (BabyAI, SciWorld, TextCraft), ``game`` (ALFWorld, maze) or
  ``session_id`` (WebShop): all are sent, and pydantic bodies ignore the rest;
- the observation is ``observation`` or ``state`` (WebShop), or comes from ``GET /observation``
  after a reset that answers without one, or as a list (WebShop's ``[obs, null]``); SciWorld's
  ``task_description`` is put in front of the first observation, as AgentGym's client does;
- the end is ``done``, or ``terminated``/``truncated``; the score is ``score`` (cumulative:
  BabyAI, SciWorld) or the rewards summed; success is reaching the env's full score (1, or
  100 for SciWorld), AgentGym's own success test;
- errors come back as HTTP 200 bodies ``{"error": "..."}``.

Tasks are ``data_idx`` ranges per split (``--set test_idx=0:200``), named
``<env>_<data_idx>`` like AgentGym's item ids; there is no expert unless the user supplies
AgentGym-format trajectories (``--set expert_trajectories=FILE``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from agentbench.agentgym.remote import RemoteMeta
from agentbench.agentgym.transport import Reply, Transport
from agentbench.agentgym.wire import Path
from agentbench.env import ExpertStep, NoExpert, Step, StepInfo, Task, parse_react_action
from agentbench.errors import ConfigError, EnvServerError, RemoteEnvError


@dataclass(frozen=True)
class KnownEnv:
    """What we know of one of AgentGym's env servers (instructions in our own words)."""

    instructions: str
    full_score: float = 1.0
    show_actions: bool = False
    """Whether AgentGym's client lists the available actions under each observation."""


GENERIC_INSTRUCTIONS = (
    "Interact with the environment to complete the task described in the observations. "
    "Each turn, give exactly one action."
)

KNOWN_ENVS: dict[str, KnownEnv] = {
    "webshop": KnownEnv(
        "You are shopping in an online store for the product an instruction describes. Each observation "
        "is the current web page; its clickable elements are separated by [SEP]. Actions: search[keywords] "
        "when the page has a search bar, or click[element] for one of the page's clickable elements. Buy "
        "the product that best matches the instruction, with the requested options, within the price limit."
    ),
    "alfworld": KnownEnv(
        "You are in a household and must complete the task stated in the first observation. Each turn, "
        "give one text command chosen from the available actions listed under the observation, such as "
        "'go to countertop 1', 'take mug 1 from countertop 1', 'open fridge 1', 'heat mug 1 with "
        "microwave 1' or 'put mug 1 in/on coffeemachine 1'. 'Nothing happens.' means the command had no "
        "effect.",
        show_actions=True,
    ),
    "babyai": KnownEnv(
        "You are an agent in a grid world of rooms with doors, keys, balls and boxes, and must reach the "
        "stated goal. Actions: turn left, turn right, move forward, go to <object> <n>, pick up <object> "
        "<n>, go through <door> <n>, toggle and go through <door> <n>, toggle."
    ),
    "sciworld": KnownEnv(
        "You are in a simulated world of science experiments and must complete the described task. Use "
        "text commands such as: look around, look at OBJ, look in OBJ, go to LOC, open/close OBJ, pick up "
        "OBJ, put down OBJ, move OBJ to OBJ, pour OBJ into OBJ, mix OBJ, activate/deactivate OBJ, use OBJ "
        "[on OBJ], connect OBJ to OBJ, focus on OBJ, wait, wait1, read OBJ, inventory, task.",
        full_score=100.0,
    ),
    "textcraft": KnownEnv(
        "You craft a target Minecraft item using the crafting commands listed in the first observation. "
        "Actions: 'get N item' to fetch an ingredient, 'craft N target using N ingredient, N ingredient' "
        "following a listed recipe, and 'inventory'. Always give quantities."
    ),
}

_LOST_SESSION = re.compile(r"\bid\b.*\b(not valid|invalid|not found|deleted)\b", re.IGNORECASE)


def parse_index_ranges(text: str) -> list[int]:
    """``"0:100,200:210,7"`` -> the indices (STOP excluded), in order, without repeats."""
    indices: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = re.fullmatch(r"(\d+)\s*(?::\s*(\d+))?", part)
        if match is None:
            raise ValueError(f"{part!r} is not START:STOP or an index")
        start = int(match.group(1))
        stop = int(match.group(2)) if match.group(2) is not None else start + 1
        if stop <= start:
            raise ValueError(f"empty range {part!r}")
        indices.extend(range(start, stop))
    return list(dict.fromkeys(indices))


def session_id_of(payload: Any) -> int | None:
    if isinstance(payload, bool):
        return None
    if isinstance(payload, int):
        return payload
    if isinstance(payload, dict):
        for key in ("id", "env_idx", "env_id"):
            if isinstance(payload.get(key), int) and not isinstance(payload.get(key), bool):
                return payload[key]
    return None


@dataclass
class ReadStep:
    """A step (or reset) answer in one shape, whatever the server sent."""

    observation: str | None
    reward: float = 0.0
    done: bool = False
    score: float | None = None
    available_actions: list[str] | None = None


def read_answer(payload: Any) -> ReadStep:
    """Step or reset answers of AgentGym's servers in any of their shapes (errors excluded)."""
    if isinstance(payload, str):
        return ReadStep(payload)
    if isinstance(payload, (list, tuple)):  # gym style: [obs, reward, done, (truncated,) info] or [obs, info]
        observation = payload[0] if payload and isinstance(payload[0], str) else None
        numbers = [v for v in payload[1:] if isinstance(v, (int, float)) and not isinstance(v, bool)]
        flags = [v for v in payload[1:] if isinstance(v, bool)]
        return ReadStep(observation, float(numbers[0]) if numbers else 0.0, any(flags))
    if not isinstance(payload, dict):
        return ReadStep(None)
    observation = payload.get("observation", payload.get("state"))
    if isinstance(observation, str) and isinstance(payload.get("task_description"), str):
        observation = f"{payload['task_description']}\n{observation}"
    score = payload.get("score")
    actions = payload.get("available_actions")
    return ReadStep(
        observation if isinstance(observation, str) else None,
        float(payload.get("reward") or 0.0),
        bool(payload.get("done") or payload.get("terminated") or payload.get("truncated")),
        float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
        [str(a) for a in actions] if isinstance(actions, list) else None,
    )


def error_of(payload: Any) -> str | None:
    if isinstance(payload, dict) and "error" in payload and "observation" not in payload and "state" not in payload:
        return " ".join(str(payload["error"]).split()) or "unspecified error"
    return None


class OriginalRemote:
    def __init__(self, transport: Transport, variant: str | None, *, splits: dict[str, list[int]],
                 instructions: str = "", full_score: float | None = None, show_actions: bool | None = None,
                 trajectories: dict[str, list[ExpertStep]] | None = None, trajectories_source: str = ""):
        self.transport = transport
        self.variant = variant or "agentgym"
        known = KNOWN_ENVS.get(self.variant, KnownEnv(GENERIC_INSTRUCTIONS))
        self.meta = RemoteMeta(name=self.variant, version="agentgym", instructions=instructions or known.instructions,
                               default_max_turns=None, default_history_turns=None, supports_snapshot=False)
        self.full_score = full_score or known.full_score
        self.show_actions = known.show_actions if show_actions is None else show_actions
        self._splits = splits
        self._trajectories = trajectories
        self._trajectories_source = trajectories_source
        self._session: int | None = None
        self._task: Task | None = None
        self._taken: list[str] = []
        self._score = 0.0
        self._actions: list[str] | None = None
        self._webshop_actions: bool | None = None  # whether GET /available_actions works

    # -- plumbing -------------------------------------------------------------------------
    def _ids(self) -> dict[str, int]:
        return {"id": self._session_id(), "env_idx": self._session_id()}

    def _answer(self, where: str, reply: Reply) -> Any:
        """The payload of a usable answer; errors raised as the run must see them."""
        if reply.status != 200:
            if reply.status >= 500 and reply.status not in (502, 503, 504):
                raise RemoteEnvError(f"AgentGym server {self.transport.base_url} failed {where} "
                                     f"(HTTP {reply.status}): {reply.error_message or str(reply.payload)[:200]}")
            raise self.transport.fail(where, reply)
        error = error_of(reply.payload)
        if error is not None:
            if _LOST_SESSION.search(error):
                raise EnvServerError(f"AgentGym server {self.transport.base_url} lost our session during "
                                     f"{where} (did it restart?): {error}")
            raise RemoteEnvError(f"AgentGym server {self.transport.base_url} refused {where}: {error}")
        return reply.payload

    def _session_id(self) -> int:
        if self._session is None:
            reply = self.transport.post(Path.create, {}, idempotent=False)
            payload = reply.payload
            if reply.status != 200 or error_of(payload) is not None:
                detail = error_of(payload) or reply.error_message or f"HTTP {reply.status}"
                raise EnvServerError(f"AgentGym server {self.transport.base_url} could not create an env: {detail}")
            session = session_id_of(payload)
            if session is None:
                raise EnvServerError(f"AgentGym server {self.transport.base_url} answered POST /create with "
                                     f"{str(payload)[:100]!r}, not an env id")
            self._session = session
        return self._session

    def _current_observation(self) -> str:
        payload = self._answer(f"GET {Path.observation}",
                               self.transport.get(Path.observation, {"id": self._session, "env_idx": self._session}))
        observation = read_answer(payload).observation
        if observation is None:
            raise RemoteEnvError(f"AgentGym server {self.transport.base_url} gave no observation")
        return observation

    def _shown(self, observation: str) -> str:
        if self.show_actions and self._actions:
            return f"{observation}\nAVAILABLE ACTIONS: {','.join(self._actions)}"
        return observation

    # -- the env API ----------------------------------------------------------------------
    def tasks(self, split: str) -> list[Task]:
        indices = self._splits.get(split) or []
        if not indices:
            raise ConfigError(f"{self.variant} at {self.transport.base_url}: AgentGym servers do not list their "
                              f"tasks; give split {split!r} a data_idx range: --set {split}_idx=START:STOP")
        return [Task(f"{self.variant}_{i}", split, {"data_idx": i}) for i in indices]

    def reset(self, task: Task, seed: int) -> str:
        data_idx = task.spec.get("data_idx")
        if not isinstance(data_idx, int):
            raise RemoteEnvError(f"task {task.id} has no data_idx: AgentGym servers address tasks by index")
        body = {**self._ids(), "data_idx": data_idx, "game": data_idx, "session_id": data_idx,
                "world_type": "Text"}
        payload = self._answer(f"POST {Path.reset}", self.transport.post(Path.reset, body, idempotent=True))
        answer = read_answer(payload)
        self._task, self._taken, self._score = task, [], 0.0
        self._actions = answer.available_actions
        # WebShop answers [obs, null]; AgentGym's client then reads /observation, and so do we.
        fetch = answer.observation is None or isinstance(payload, (list, tuple))
        observation = self._current_observation() if fetch else answer.observation
        return self._shown(observation)

    def step(self, action: str) -> Step:
        if self._task is None:
            raise RemoteEnvError("call reset(task) before step()")
        reply = self.transport.post(Path.step, {**self._ids(), "action": action}, idempotent=False)
        answer = read_answer(self._answer(f"POST {Path.step}", reply))
        self._taken.append(action)
        self._score = answer.score if answer.score is not None else self._score + answer.reward
        self._actions = answer.available_actions
        observation = answer.observation if answer.observation is not None else self._current_observation()
        success = self._score >= self.full_score - 1e-9
        progress = min(1.0, max(0.0, self._score / self.full_score))
        return Step(self._shown(observation), answer.reward, answer.done or success,
                    StepInfo(success=success, progress=progress, extra={"score": self._score}))

    def expert_step(self) -> ExpertStep:
        if self._trajectories is None:
            raise NoExpert(f"AgentGym's {self.variant} server has no expert: pass --set expert_trajectories=FILE "
                           f"(trajectories in AgentGym's JSON format) to use recorded ones")
        if self._task is None:
            raise NoExpert("no episode yet")
        moves = self._trajectories.get(self._task.id)
        if not moves:
            raise NoExpert(f"{self._trajectories_source} has no trajectory for {self._task.id}")
        done = len(self._taken)
        if self._taken != [m.action for m in moves[:done]]:
            raise NoExpert(f"the episode of {self._task.id} has left its recorded expert trajectory")
        if done >= len(moves):
            raise NoExpert(f"the recorded trajectory of {self._task.id} has no move {done + 1}")
        return moves[done]

    def snapshot(self) -> Any:
        raise NotImplementedError(f"AgentGym's {self.variant} server cannot snapshot; branch by replay")

    def restore(self, snapshot: Any) -> None:
        raise NotImplementedError(f"AgentGym's {self.variant} server cannot restore; branch by replay")

    def admissible_actions(self) -> list[str] | None:
        if self._actions is not None:
            return list(self._actions)
        if self._task is None or self._webshop_actions is False:
            return None
        reply = self.transport.get(Path.available_actions, {"id": self._session, "env_idx": self._session})
        payload = reply.payload
        if reply.status != 200 or error_of(payload) is not None:
            self._webshop_actions = False
            return None
        if isinstance(payload, list):
            return [str(a) for a in payload]
        if isinstance(payload, dict) and isinstance(payload.get("clickables"), list):  # WebShop's page
            self._webshop_actions = True
            search = ["search[<keywords>]"] if payload.get("has_search_bar") else []
            return search + [f"click[{c}]" for c in payload["clickables"] if c != "search"]
        self._webshop_actions = False
        return None

    def parse_action(self, response: str) -> str | None:
        return parse_react_action(response)

    def close(self) -> None:
        if self._session is None:
            return
        ids, self._session = {"id": self._session, "env_idx": self._session}, None
        # Servers without /close (BabyAI, SciWorld) answer 404: nothing to free then; nor on a dead one.
        with contextlib.suppress(EnvServerError):
            self.transport.request("POST", Path.close, body=ids, idempotent=False)
