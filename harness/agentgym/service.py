"""Sessions around env instances: what an env server does, without the HTTP.

One :class:`EnvService` serves one env (class and config). Each client session owns its own
env instance; a session's requests run one at a time (a lock per session), different
sessions run concurrently. The number of live sessions is bounded: when every slot is taken,
``create`` first evicts the session idle the longest if it has been idle past
``idle_timeout_s`` (a client that died without closing), and otherwise refuses clearly.

Task indices: AgentGym addresses tasks by one integer ``data_idx``. Here ``data_idx`` runs over
the splits concatenated in the order train, test, ood (``/agentbench/info`` gives each split's
offset); agentbench clients address tasks by split and id instead.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from agentbench.agentgym.wire import PROTOCOL_VERSION, SERVER_KIND, ErrorCode, ServiceError
from agentbench.env import SPLITS, BaseEnv, EnvConfig, NoExpert, Task, sha256_json, task_set_sha256
from agentbench.errors import ConfigError


def task_digest(task: Task) -> str:
    """What a client sends with a task id so that the server can check it means the same task."""
    return sha256_json({"id": task.id, "split": task.split, "spec": task.spec})


@dataclass(frozen=True)
class ServedEnv:
    """The env a server runs: its class, its config and the name it was asked for."""

    cls: Any
    config: EnvConfig
    full_name: str
    distribution: str | None = None

    @classmethod
    def from_registry(cls, name: str, sets: Sequence[str] = ()) -> ServedEnv:
        """Resolve ``name`` (``prefix:variant`` allowed) and its ``--set key=value`` options."""
        from agentbench import registry
        from agentbench.env import make_config
        from agentbench.spec import parse_sets

        resolved = registry.envs.resolve(name)
        params = parse_sets(list(sets), {"env": resolved.obj.Config})["env"]
        if resolved.variant is not None:
            params.setdefault("variant", resolved.variant)
        config = make_config(resolved.obj.Config, params, f"env {name}")
        availability_for = getattr(resolved.obj, "availability_for", None)
        available = availability_for(config) if availability_for else resolved.obj.availability()
        if not available.runnable:
            from agentbench.errors import EnvUnavailableError

            raise EnvUnavailableError(f"env {resolved.full_name} cannot run here: {available.detail}")
        return cls(resolved.obj, config, resolved.full_name, resolved.distribution)


@dataclass
class _Snapshot:
    env_state: Any
    task: Task
    data_idx: int | None
    seed: int
    observation: str
    score: float
    done: bool
    turns: int


@dataclass
class _Session:
    id: int
    env: Any
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_use: int = 0
    task: Task | None = None
    data_idx: int | None = None
    seed: int = 0
    observation: str = ""
    score: float = 0.0
    done: bool = False
    turns: int = 0
    snapshots: OrderedDict[str, _Snapshot] = field(default_factory=OrderedDict)

    def require_episode(self) -> Task:
        if self.task is None:
            raise ServiceError(ErrorCode.not_reset, f"session {self.id} has no episode: call /reset first")
        return self.task


def _env_failure(what: str, exc: BaseException) -> ServiceError:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return ServiceError(ErrorCode.env_error, f"the env raised during {what}: {type(exc).__name__}: {text}")


class EnvService:
    def __init__(self, served: ServedEnv, max_sessions: int = 64, idle_timeout_s: float = 600.0,
                 max_snapshots: int = 1024, clock: Callable[[], float] = time.monotonic):
        if max_sessions < 1:
            raise ConfigError("--max-sessions must be at least 1")
        self.served = served
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self.max_snapshots = max_snapshots
        self.instance = uuid.uuid4().hex
        """Changes whenever a server starts, so that clients can tell a restart."""
        self._clock = clock
        self._ids = itertools.count()
        self._snapshot_ids = itertools.count()
        self._table_lock = threading.Lock()
        self._sessions: dict[int, _Session | None] = {}  # None: being created
        self._catalog_lock = threading.Lock()
        self._catalog = served.cls(served.config)
        self._tasks: dict[str, list[Task]] = {}
        self._by_id: dict[tuple[str, str], tuple[int, Task]] = {}  # (split, id) -> (index in split, task)
        self._task_errors: dict[str, str] = {}
        self._summary: dict[str, Any] | None = None

    # -- the env as a whole ---------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        import agentbench

        cls = self.served.cls
        with self._catalog_lock:
            instructions = self._catalog.instructions
        with self._table_lock:
            live = sum(1 for s in self._sessions.values() if s is not None)
        return {
            "server": SERVER_KIND,
            "protocol_version": PROTOCOL_VERSION,
            "agentbench_version": agentbench.__version__,
            "instance": self.instance,
            "env": {
                "name": cls.name,
                "full_name": self.served.full_name,
                "version": cls.version,
                "description": getattr(cls, "description", ""),
                "distribution": self.served.distribution,
                "config": self.served.config.model_dump(mode="json"),
                "default_max_turns": cls.default_max_turns,
                "default_history_turns": getattr(cls, "default_history_turns", None),
                "supports_snapshot": bool(getattr(cls, "supports_snapshot", False)),
                "local_action_parsing": getattr(cls, "parse_action", None) is BaseEnv.parse_action,
                "instructions": instructions,
            },
            "splits": self._splits_summary(),
            "sessions": {"live": live, "max": self.max_sessions, "idle_timeout_s": self.idle_timeout_s},
        }

    def _splits_summary(self) -> dict[str, Any]:
        """Sizes, data_idx offsets and hashes of the splits (task lists never change: computed once)."""
        if self._summary is None:
            summary: dict[str, Any] = {}
            offset = 0
            for split in SPLITS:
                tasks = self._split(split, strict=False)
                if split in self._task_errors:
                    summary[split] = {"n_tasks": 0, "data_idx_offset": offset, "error": self._task_errors[split]}
                    continue
                summary[split] = {"n_tasks": len(tasks), "data_idx_offset": offset,
                                  "task_set_sha256": task_set_sha256(tasks)}
                offset += len(tasks)
            self._summary = summary
        return self._summary

    def tasks(self, split: str) -> dict[str, Any]:
        tasks = self._split(split, strict=True)
        offset = self._offset(split)
        return {
            "split": split,
            "task_set_sha256": task_set_sha256(tasks),
            "tasks": [{"id": t.id, "split": t.split, "spec": t.spec, "data_idx": offset + i}
                      for i, t in enumerate(tasks)],
        }

    def _split(self, split: str, strict: bool) -> list[Task]:
        if split not in SPLITS:
            raise ServiceError(ErrorCode.unknown_task, f"unknown split {split!r} (splits: {', '.join(SPLITS)})")
        with self._catalog_lock:
            if split not in self._tasks and split not in self._task_errors:
                try:
                    tasks = list(self._catalog.tasks(split))
                except Exception as exc:  # an env without this split still serves the others
                    self._task_errors[split] = f"{type(exc).__name__}: {exc}"
                else:
                    self._tasks[split] = tasks
                    self._by_id.update({(split, t.id): (i, t) for i, t in enumerate(tasks)})
            if split in self._task_errors:
                if strict:
                    raise ServiceError(ErrorCode.unknown_task,
                                       f"the env could not list split {split!r}: {self._task_errors[split]}")
                return []
            return self._tasks[split]

    def _offset(self, split: str) -> int:
        return sum(len(self._split(s, strict=False)) for s in SPLITS[: SPLITS.index(split)])

    def _task_at(self, data_idx: int) -> Task:
        start = 0
        for split in SPLITS:
            tasks = self._split(split, strict=False)
            if start <= data_idx < start + len(tasks):
                return tasks[data_idx - start]
            start += len(tasks)
        raise ServiceError(ErrorCode.unknown_task, f"data_idx {data_idx} is out of range 0..{start - 1}")

    def _task(self, split: str, task_id: str, digest: str | None) -> tuple[int, Task]:
        """The task and its data_idx."""
        self._split(split, strict=True)
        found = self._by_id.get((split, task_id))
        if found is None:
            raise ServiceError(ErrorCode.unknown_task, f"split {split!r} has no task {task_id!r}")
        index, task = found
        if digest is not None and digest != task_digest(task):
            raise ServiceError(ErrorCode.task_mismatch,
                               f"task {split}/{task_id} differs from the client's (another env config?)")
        return self._offset(split) + index, task

    # -- sessions -------------------------------------------------------------------------
    def create(self) -> int:
        evicted: list[_Session] = []
        with self._table_lock:
            if len(self._sessions) >= self.max_sessions:
                evicted = self._evict_idle()
                if len(self._sessions) >= self.max_sessions:
                    raise ServiceError(
                        ErrorCode.too_many_sessions,
                        f"all {self.max_sessions} sessions are live and none has been idle for "
                        f"{self.idle_timeout_s:g} s: close sessions, or restart the server with a larger "
                        f"--max-sessions",
                    )
            session_id = next(self._ids)
            self._sessions[session_id] = None  # holds the slot while the env is built
        for old in evicted:
            _close_quietly(old.env)
        try:
            env = self.served.cls(self.served.config)
        except Exception as exc:
            with self._table_lock:
                del self._sessions[session_id]
            raise _env_failure("create", exc) from exc
        with self._table_lock:
            self._sessions[session_id] = _Session(session_id, env, self._clock())
        return session_id

    def _evict_idle(self) -> list[_Session]:
        cutoff = self._clock() - self.idle_timeout_s
        idle = sorted((s for s in self._sessions.values() if s is not None and not s.in_use and s.last_used <= cutoff),
                      key=lambda s: s.last_used)
        if not idle:
            return []
        del self._sessions[idle[0].id]
        return [idle[0]]

    @contextmanager
    def _use(self, session_id: int) -> Iterator[_Session]:
        with self._table_lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise ServiceError(ErrorCode.unknown_session,
                                   f"no live session {session_id} (closed, evicted after idling, or the "
                                   f"server restarted)")
            session.in_use += 1
        try:
            with session.lock:
                session.last_used = self._clock()
                yield session
                session.last_used = self._clock()
        finally:
            with self._table_lock:
                session.in_use -= 1

    def close(self, session_id: int) -> bool:
        with self._table_lock:
            session = self._sessions.get(session_id)
            if session is None:
                return False
            del self._sessions[session_id]
        with session.lock:
            _close_quietly(session.env)
        return True

    def live_sessions(self) -> list[int]:
        with self._table_lock:
            return sorted(k for k, s in self._sessions.items() if s is not None)

    def shutdown(self) -> None:
        with self._table_lock:
            sessions = [s for s in self._sessions.values() if s is not None]
            self._sessions.clear()
        for session in sessions:
            _close_quietly(session.env)
        _close_quietly(self._catalog)

    # -- episodes -------------------------------------------------------------------------
    def reset(self, session_id: int, *, split: str | None = None, task_id: str | None = None,
              task_sha256: str | None = None, data_idx: int | None = None, seed: int = 0) -> dict[str, Any]:
        if task_id is not None:
            data_idx, task = self._task(split or "test", task_id, task_sha256)
        elif data_idx is not None:
            task = self._task_at(data_idx)
        else:
            raise ServiceError(ErrorCode.bad_request, "reset needs data_idx, or split and task_id")
        with self._use(session_id) as session:
            session.task = None
            try:
                observation = session.env.reset(task, seed=seed)
            except Exception as exc:
                raise _env_failure(f"reset of {task.split}/{task.id}", exc) from exc
            session.task, session.data_idx, session.seed = task, data_idx, seed
            session.observation, session.score, session.done, session.turns = observation, 0.0, False, 0
            reply = {"id": session_id, "observation": observation, "state": observation, "reward": 0.0,
                     "score": 0.0, "done": False, "split": task.split, "task_id": task.id,
                     "data_idx": data_idx, "seed": seed}
            return self._with_actions(session, reply)

    def step(self, session_id: int, action: str) -> dict[str, Any]:
        with self._use(session_id) as session:
            session.require_episode()
            try:
                step = session.env.step(action)
            except Exception as exc:
                raise _env_failure("step", exc) from exc
            session.observation = step.observation
            session.score += step.reward
            session.done = step.done
            session.turns += 1
            info = step.info
            reply = {
                "observation": step.observation, "state": step.observation, "reward": step.reward,
                "score": session.score, "done": step.done,
                "info": {"valid": info.valid, "success": info.success, "progress": info.progress,
                         "extra": info.extra},
            }
            return self._with_actions(session, reply)

    def _with_actions(self, session: _Session, reply: dict[str, Any]) -> dict[str, Any]:
        try:
            actions = session.env.admissible_actions()
        except Exception:  # the list is a convenience; the step itself succeeded
            actions = None
        if actions is not None:
            reply["available_actions"] = list(actions)
        return reply

    def observation(self, session_id: int) -> str:
        with self._use(session_id) as session:
            session.require_episode()
            return session.observation

    def available_actions(self, session_id: int) -> list[str] | None:
        with self._use(session_id) as session:
            session.require_episode()
            try:
                actions = session.env.admissible_actions()
            except Exception as exc:
                raise _env_failure("admissible_actions", exc) from exc
            return None if actions is None else list(actions)

    def detail(self, session_id: int) -> dict[str, Any]:
        with self._use(session_id) as session:
            task = session.task
            return {"id": session_id, "split": task.split if task else None, "task_id": task.id if task else None,
                    "data_idx": session.data_idx, "seed": session.seed, "observation": session.observation,
                    "score": session.score, "reward": session.score, "done": session.done,
                    "turns": session.turns, "snapshots": len(session.snapshots)}

    def expert_step(self, session_id: int) -> dict[str, str]:
        with self._use(session_id) as session:
            session.require_episode()
            try:
                move = session.env.expert_step()
            except NoExpert as exc:
                raise ServiceError(ErrorCode.no_expert, str(exc) or f"{self.served.full_name} has no expert") from exc
            except Exception as exc:
                raise _env_failure("expert_step", exc) from exc
            return {"action": move.action, "thought": move.thought}

    def snapshot(self, session_id: int) -> dict[str, str]:
        with self._use(session_id) as session:
            task = session.require_episode()
            try:
                state = session.env.snapshot()
            except NotImplementedError as exc:
                raise ServiceError(ErrorCode.unsupported, str(exc) or "this env cannot snapshot") from exc
            except Exception as exc:
                raise _env_failure("snapshot", exc) from exc
            token = f"{session_id}.{next(self._snapshot_ids)}"
            session.snapshots[token] = _Snapshot(state, task, session.data_idx, session.seed, session.observation,
                                                 session.score, session.done, session.turns)
            while len(session.snapshots) > self.max_snapshots:
                session.snapshots.popitem(last=False)
            return {"snapshot": token}

    def restore(self, session_id: int, token: str) -> dict[str, Any]:
        with self._use(session_id) as session:
            snap = session.snapshots.get(token)
            if snap is None:
                raise ServiceError(ErrorCode.unknown_snapshot,
                                   f"session {session_id} holds no snapshot {token!r} (each session keeps its "
                                   f"last {self.max_snapshots})")
            try:
                session.env.restore(snap.env_state)
            except NotImplementedError as exc:
                raise ServiceError(ErrorCode.unsupported, str(exc) or "this env cannot restore") from exc
            except Exception as exc:
                raise _env_failure("restore", exc) from exc
            session.snapshots.move_to_end(token)
            session.task, session.data_idx, session.seed = snap.task, snap.data_idx, snap.seed
            session.observation, session.score, session.done, session.turns = (
                snap.observation, snap.score, snap.done, snap.turns)
            return {"restored": True, "observation": snap.observation}

    def parse_action(self, response: str, session_id: int | None = None) -> dict[str, str | None]:
        if session_id is None:
            with self._catalog_lock:
                return {"action": self._parse(self._catalog, response)}
        with self._use(session_id) as session:
            return {"action": self._parse(session.env, response)}

    @staticmethod
    def _parse(env: Any, response: str) -> str | None:
        try:
            return env.parse_action(response)
        except Exception as exc:
            raise _env_failure("parse_action", exc) from exc


def _close_quietly(env: Any) -> None:
    with contextlib.suppress(Exception):  # a failing close must not take other sessions down
        env.close()
