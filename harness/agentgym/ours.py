"""The client side of agentbench's own env servers: the AgentGym core plus the extras.

Everything the in-process env offers comes over the wire unchanged: task lists (same ids and
specs, hence the same task-set hash), instructions, turn defaults, expert, snapshots,
admissible actions and action parsing (done locally when the env uses the standard ReAct
parser, remotely otherwise), so that an episode through the server equals the in-process one.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any

from agentbench.agentgym.remote import RemoteMeta
from agentbench.agentgym.service import task_digest
from agentbench.agentgym.transport import Reply, Transport
from agentbench.agentgym.wire import SERVER_KIND, ErrorCode, Path
from agentbench.env import ExpertStep, NoExpert, Step, StepInfo, Task, parse_react_action
from agentbench.errors import ConfigError, EnvServerError, RemoteEnvError

_tasks_cache: dict[tuple[str, str, str], list[Task]] = {}
_tasks_lock = threading.Lock()


def is_ours(reply: Reply) -> bool:
    return reply.status == 200 and isinstance(reply.payload, dict) and reply.payload.get("server") == SERVER_KIND


@dataclass(frozen=True)
class RemoteSnapshot:
    """A handle on a snapshot the server keeps for one session."""

    session: int
    token: str


_UNKNOWN = object()


class AgentbenchRemote:
    def __init__(self, transport: Transport, info: dict[str, Any], variant: str | None):
        self.transport = transport
        self.info = info
        env = info["env"]
        if variant is not None and variant not in (env["full_name"], env["name"]):
            raise ConfigError(f"the server at {transport.base_url} serves {env['full_name']!r}, not {variant!r}: "
                              f"use --env agentgym:{env['full_name']}")
        self.meta = RemoteMeta(name=env["full_name"], version=str(env["version"]), instructions=env["instructions"],
                               default_max_turns=env["default_max_turns"],
                               default_history_turns=env["default_history_turns"],
                               supports_snapshot=bool(env["supports_snapshot"]))
        self._local_parsing = bool(env.get("local_action_parsing"))
        self._session: int | None = None
        self._actions: Any = _UNKNOWN

    # -- answers --------------------------------------------------------------------------
    def _check(self, where: str, reply: Reply) -> Any:
        if reply.status == 200:
            return reply.payload
        code, message = reply.error_code, reply.error_message or ""
        if code == ErrorCode.unknown_session.value:
            raise EnvServerError(f"env server {self.transport.base_url} lost our session during {where} "
                                 f"(did it restart?): {message}")
        if code in (ErrorCode.env_error.value, ErrorCode.not_reset.value):
            raise RemoteEnvError(f"env server {self.transport.base_url}: {message}")
        if code == ErrorCode.no_expert.value:
            raise NoExpert(message)
        if code == ErrorCode.unsupported.value:
            raise NotImplementedError(message)
        raise self.transport.fail(where, reply)

    def _session_id(self) -> int:
        if self._session is None:
            payload = self._check("POST /create", self.transport.post(Path.create, {}, idempotent=False))
            self._session = int(payload["id"])
        return self._session

    # -- the env API ----------------------------------------------------------------------
    def tasks(self, split: str) -> list[Task]:
        key = (self.transport.base_url, self.info["instance"], split)
        with _tasks_lock:
            if key not in _tasks_cache:
                reply = self.transport.get(Path.tasks, {"split": split})
                if reply.error_code == ErrorCode.unknown_task.value:
                    raise ConfigError(f"{self.meta.name} at {self.transport.base_url}: {reply.error_message}")
                payload = self._check(f"GET {Path.tasks}", reply)
                _tasks_cache[key] = [Task(t["id"], t["split"], t["spec"]) for t in payload["tasks"]]
            return list(_tasks_cache[key])

    def reset(self, task: Task, seed: int) -> str:
        body = {"id": self._session_id(), "split": task.split, "task_id": task.id, "task_sha256": task_digest(task),
                "seed": seed}
        reply = self.transport.post(Path.reset, body, idempotent=True)
        if reply.error_code in (ErrorCode.unknown_task.value, ErrorCode.task_mismatch.value):
            raise EnvServerError(f"env server {self.transport.base_url}: {reply.error_message}")
        payload = self._check(f"POST {Path.reset}", reply)
        self._actions = payload.get("available_actions")
        return payload["observation"]

    def step(self, action: str) -> Step:
        if self._session is None:
            raise RemoteEnvError("call reset(task) before step()")
        payload = self._check(f"POST {Path.step}",
                              self.transport.post(Path.step, {"id": self._session, "action": action},
                                                  idempotent=False))
        info = payload.get("info") or {}
        self._actions = payload.get("available_actions")
        return Step(payload["observation"], payload["reward"], payload["done"],
                    StepInfo(valid=info.get("valid", True), success=info.get("success", False),
                             progress=info.get("progress", 0.0), extra=info.get("extra") or {}))

    def expert_step(self) -> ExpertStep:
        if self._session is None:
            raise RemoteEnvError("call reset(task) before expert_step()")
        payload = self._check(f"GET {Path.expert_step}", self.transport.get(Path.expert_step, {"id": self._session}))
        return ExpertStep(payload["action"], payload.get("thought", ""))

    def snapshot(self) -> RemoteSnapshot:
        if self._session is None:
            raise RemoteEnvError("call reset(task) before snapshot()")
        payload = self._check(f"POST {Path.snapshot}",
                              self.transport.post(Path.snapshot, {"id": self._session}, idempotent=False))
        return RemoteSnapshot(self._session, payload["snapshot"])

    def restore(self, snapshot: Any) -> None:
        if not isinstance(snapshot, RemoteSnapshot):
            raise TypeError(f"not a snapshot of a remote env: {snapshot!r}")
        self._check(f"POST {Path.restore}",
                    self.transport.post(Path.restore, {"id": self._session_id(), "snapshot": snapshot.token},
                                        idempotent=True))
        self._actions = _UNKNOWN

    def admissible_actions(self) -> list[str] | None:
        if self._session is None:
            return None
        if self._actions is _UNKNOWN:
            self._actions = self._check(f"GET {Path.available_actions}",
                                        self.transport.get(Path.available_actions, {"id": self._session}))
        return None if self._actions is None else list(self._actions)

    def parse_action(self, response: str) -> str | None:
        if self._local_parsing:
            return parse_react_action(response)
        body: dict[str, Any] = {"response": response}
        if self._session is not None:
            body["id"] = self._session
        payload = self._check(f"POST {Path.parse_action}",
                              self.transport.post(Path.parse_action, body, idempotent=True))
        return payload["action"]

    def close(self) -> None:
        if self._session is None:
            return
        session, self._session = self._session, None
        with contextlib.suppress(EnvServerError):  # one quick try: a dead server has nothing left to free
            self.transport.request("POST", Path.close, body={"id": session}, idempotent=False)
