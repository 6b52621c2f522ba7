"""The environment API: a tiny, stable, text-in/text-out interface in the spirit of gymnasium.

An environment is a class with a pydantic ``Config`` and these methods::

    env = MyEnv(MyEnv.Config(**params))
    tasks = env.tasks("train")              # the task list of a split: train, test or ood
    observation = env.reset(task, seed=0)   # start an episode
    step = env.step("move left")            # -> Step(observation, reward, done, info)
    env.expert_step()                       # the expert's next action from here (if any)
    snap = env.snapshot(); env.restore(snap)  # where the env can, for branching

Illegal or unparsable actions never raise: ``step`` returns ``info.valid = False`` with an
observation that tells the agent what went wrong, and the episode goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from agentbench.errors import ConfigError

Split = Literal["train", "test", "ood"]
SPLITS: tuple[Split, ...] = ("train", "test", "ood")


@dataclass(frozen=True)
class Task:
    """One task of a split. ``spec`` is JSON-serialisable and all the env needs to build it."""

    id: str
    split: str
    spec: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class StepInfo:
    """What a step tells besides the observation. Typed so that metrics have fixed names."""

    valid: bool = True
    """False when the action was unparsable or illegal here (the env then did not change)."""
    success: bool = False
    """True once the task is solved (set on the final step)."""
    progress: float = 0.0
    """Fraction of the task done so far, in [0, 1] (AgentBoard-style progress rate)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Env-specific details, stored with the trajectory."""


class Step(NamedTuple):
    observation: str
    reward: float
    done: bool
    info: StepInfo


@dataclass(frozen=True)
class ExpertStep:
    """The expert's move: the action and, where the env has one, a short reason for it."""

    action: str
    thought: str = ""


@dataclass(frozen=True)
class Availability:
    """Whether an env can run on this machine, and if not, what the user must provide."""

    runnable: bool
    detail: str = ""


class NoExpert(Exception):
    """The env has no expert for this state (or at all)."""


class EnvConfig(BaseModel):
    """Base for env parameters settable with ``--set key=value``. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@runtime_checkable
class Env(Protocol):
    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[EnvConfig]]
    default_max_turns: ClassVar[int]
    default_history_turns: ClassVar[int | None]

    @property
    def instructions(self) -> str: ...
    def tasks(self, split: Split) -> Sequence[Task]: ...
    def reset(self, task: Task, seed: int = 0) -> str: ...
    def step(self, action: str) -> Step: ...
    def expert_step(self) -> ExpertStep: ...
    def snapshot(self) -> Any: ...
    def restore(self, snapshot: Any) -> None: ...
    def admissible_actions(self) -> list[str] | None: ...
    def parse_action(self, response: str) -> str | None: ...
    def close(self) -> None: ...


_ACTION_LINE = re.compile(r"^\s*\**\s*action\s*\**\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def parse_react_action(response: str) -> str | None:
    """The action of a ReAct response: the text after the last ``Action:`` line, cleaned.

    Returns None when there is no such line (the rollout counts that as an invalid action).
    """
    matches = _ACTION_LINE.findall(response)
    if not matches:
        return None
    action = matches[-1].strip()
    # Models wrap actions in quotes, backticks or bold, and end sentences with a full stop.
    while action and (action[0] + action[-1] in ("``", '""', "''", "**") or action[-1] == "."):
        action = action[:-1].strip() if action[-1] == "." else action[1:-1].strip()
    return action or None


class BaseEnv:
    """Defaults shared by most envs: ReAct parsing, replay instead of snapshots, no extras."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    description: ClassVar[str] = ""
    Config: ClassVar[type[EnvConfig]] = EnvConfig
    default_max_turns: ClassVar[int] = 20
    default_history_turns: ClassVar[int | None] = None
    supports_snapshot: ClassVar[bool] = False
    step_time_limit_s: ClassVar[float | None] = 60.0
    """Seconds a step may take before it is abandoned (an env-error episode); None: no limit
    (envs bound to their creating thread). ``AGENTBENCH_STEP_TIME_LIMIT_S`` overrides it."""
    concurrent_steps: ClassVar[bool] = True
    """Whether steps of different instances may run at once in threads (``limits.env_workers``).
    False for envs bound to their creating thread (a Playwright browser) or whose instances share
    something that is not safe to call concurrently (a model): such an env refuses env_workers > 1."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            from agentbench.timelimit import limited_step

            cls.step = limited_step(cls.__dict__["step"])

    def __init__(self, config: EnvConfig | None = None):
        self.config = config if config is not None else self.Config()

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)

    @classmethod
    def availability_for(cls, config: EnvConfig) -> Availability:
        """Whether the env can run with ``config`` (e.g. a data folder or server URL it names);
        ``availability()`` answers for the defaults, as ``agentbench list`` shows."""
        return cls.availability()

    @classmethod
    def max_turns_for(cls, config: EnvConfig) -> int:
        """The default turn limit under ``config`` (a remote env asks its server)."""
        return cls.default_max_turns

    @classmethod
    def from_params(cls, params: dict[str, Any] | None = None) -> BaseEnv:
        return cls(make_config(cls.Config, params or {}, f"env {cls.name}"))

    @property
    def instructions(self) -> str:  # pragma: no cover - every env overrides it
        raise NotImplementedError

    def expert_step(self) -> ExpertStep:
        raise NoExpert(f"{self.name} has no expert")

    def snapshot(self) -> Any:
        raise NotImplementedError(f"{self.name} cannot snapshot; branch by replay")

    def restore(self, snapshot: Any) -> None:
        raise NotImplementedError(f"{self.name} cannot restore; branch by replay")

    def admissible_actions(self) -> list[str] | None:
        return None

    def parse_action(self, response: str) -> str | None:
        return parse_react_action(response)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AdapterEnv(BaseEnv):
    """An env whose runnability depends on its config (a data folder the user brings):
    ``availability()`` answers for the defaults, and an env built under a config it cannot run
    with is refused at construction with one line saying what is missing. Subclasses implement
    ``availability_for``."""

    def __init__(self, config: EnvConfig | None = None):
        super().__init__(config)
        available = self.availability_for(self.config)
        if not available.runnable:
            from agentbench.errors import EnvUnavailableError

            raise EnvUnavailableError(f"{self.name} cannot run here: {available.detail}")

    @classmethod
    def availability(cls) -> Availability:
        return cls.availability_for(cls.Config())


def make_config(config_cls: type[BaseModel], params: dict[str, Any], owner: str) -> Any:
    """Build a component's config, turning pydantic's errors into one readable line."""
    from pydantic import ValidationError

    from agentbench.errors import UnknownNameError

    known = set(config_cls.model_fields)
    for key in params:
        if key not in known:
            raise UnknownNameError(f"option of {owner}", key, known)
    try:
        return config_cls(**params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{owner}: {where}: {first['msg']}") from exc


def task_set_sha256(tasks: Sequence[Task]) -> str:
    """A hash of exactly which tasks (ids and specs, in order) an evaluation used."""
    payload = [{"id": t.id, "split": t.split, "spec": t.spec} for t in tasks]
    return sha256_json(payload)


def sha256_json(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def replay(env: Env, task: Task, seed: int, actions: Sequence[str]) -> str:
    """Bring ``env`` to the state after ``actions`` from the start of ``task``; returns the
    last observation. The fallback for branching in envs that cannot snapshot."""
    observation = env.reset(task, seed=seed)
    for action in actions:
        observation = env.step(action).observation
    return observation
