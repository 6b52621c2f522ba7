"""``agentgym:<name>``: an env that lives behind an AgentGym-compatible HTTP server.

``--env agentgym:frozenlake --set url=http://host:8765`` drives a server started with
``agentbench serve-env frozenlake --port 8765``: tasks, instructions, turn defaults, expert,
snapshots and admissible actions come from the server, so runs match the in-process env.
``--env agentgym:webshop --set url=...`` drives one of AgentGym's own servers: tasks are
``data_idx`` ranges per split (``--set test_idx=0:200``), and the expert comes only from
trajectories the user gives (``--set expert_trajectories=FILE``).

``webshop`` is the same client with the variant fixed: WebShop exists here only as AgentGym's
server (its product data and search engine are not installable here).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from agentbench.agentgym.originals import OriginalRemote, parse_index_ranges
from agentbench.agentgym.ours import AgentbenchRemote, is_ours
from agentbench.agentgym.remote import Remote
from agentbench.agentgym.transport import Transport
from agentbench.agentgym.wire import Path
from agentbench.env import SPLITS, Availability, BaseEnv, EnvConfig, ExpertStep, Split, Step, Task
from agentbench.errors import EnvServerError, EnvUnavailableError


class AgentGymClientConfig(EnvConfig):
    variant: str | None = Field(None, description="the served env's name: the part after 'agentgym:'")
    url: str = Field("", description="base URL of the AgentGym-compatible server, e.g. http://host:36001")
    server_kind: Literal["auto", "agentbench", "agentgym"] = Field(
        "auto", description="agentbench (our serve-env), agentgym (AgentGym's own servers) or auto-detect")
    timeout_s: float = Field(60.0, gt=0, description="seconds to wait for each answer of the server")
    retries: int = Field(3, ge=0, description="retries of idempotent calls (reads, reset, close) that fail")
    token: str = Field("", exclude=True, repr=False,
                       description="shared token of a server started with --token (default: $AGENTBENCH_ENV_TOKEN); "
                                   "never recorded in run files")
    train_idx: str = Field("", description="AgentGym servers: data_idx range(s) of the train split, e.g. 0:500")
    test_idx: str = Field("", description="AgentGym servers: data_idx range(s) of the test split, e.g. 0:200")
    ood_idx: str = Field("", description="AgentGym servers: data_idx range(s) of the ood split")
    task_instructions: str = Field("", description="AgentGym servers: the task instructions of the prompt "
                                                   "(default: our summary for known envs)")
    full_score: float | None = Field(None, gt=0, description="AgentGym servers: the score that means success "
                                                             "(default 1; 100 for sciworld)")
    show_actions: bool | None = Field(None, description="AgentGym servers: list available actions under "
                                                        "observations (default: as AgentGym's client does)")
    expert_trajectories: str = Field("", description="AgentGym servers: AgentGym-format trajectories "
                                                     "(JSON) that serve as the expert")

    @field_validator("train_idx", "test_idx", "ood_idx")
    @classmethod
    def _ranges(cls, value: str) -> str:
        parse_index_ranges(value)  # raises ValueError with the offending part
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> AgentGymClientConfig:
        seen: dict[int, str] = {}
        for split in SPLITS:
            for index in parse_index_ranges(getattr(self, f"{split}_idx")):
                if index in seen:
                    raise ValueError(f"data_idx {index} is in both {seen[index]}_idx and {split}_idx")
                seen[index] = split
        return self

    def split_indices(self) -> dict[str, list[int]]:
        return {split: parse_index_ranges(getattr(self, f"{split}_idx")) for split in SPLITS}


SERVE_HINT = "start one with `agentbench serve-env NAME --port PORT`, or run AgentGym's"


def connect(config: AgentGymClientConfig) -> Remote:
    """Open the right client for the server at ``config.url`` (no env session yet)."""
    transport = Transport(config.url, timeout_s=config.timeout_s, retries=config.retries,
                          token=config.token or None)
    try:
        kind = config.server_kind
        if kind in ("auto", "agentbench"):
            reply = transport.get(Path.info)
            if is_ours(reply):
                return AgentbenchRemote(transport, reply.payload, config.variant)
            if kind == "agentbench":
                raise EnvServerError(f"{config.url} is not an agentbench env server (GET {Path.info} answered "
                                     f"HTTP {reply.status})")
        else:
            transport.get(Path.root)  # fail now, with a clear message, if nothing listens there
        trajectories = None
        if config.expert_trajectories:
            from agentbench.agentgym.trajectories import load_trajectories

            trajectories = load_trajectories(config.expert_trajectories)
        return OriginalRemote(transport, config.variant, splits=config.split_indices(),
                              instructions=config.task_instructions, full_score=config.full_score,
                              show_actions=config.show_actions, trajectories=trajectories,
                              trajectories_source=config.expert_trajectories)
    except BaseException:
        transport.close()
        raise


class AgentGymEnv(BaseEnv):
    name: ClassVar[str] = "agentgym"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "any env behind an AgentGym-compatible HTTP server (agentgym:NAME, --set url=)"
    Config = AgentGymClientConfig
    remote: ClassVar[bool] = True
    """Served elsewhere: the local conformance suite does not run it (tests/agentgym does)."""

    def __init__(self, config: AgentGymClientConfig | None = None):
        super().__init__(config)
        config = self.config
        if not config.url:
            raise EnvUnavailableError(f"env {self._label(config)} {self._missing_url(config)}")
        self._remote = connect(config)
        meta = self._remote.meta
        # Instance attributes shadow the class defaults with the served env's own.
        self.version = meta.version  # type: ignore[misc]
        self.default_max_turns = meta.default_max_turns or type(self).default_max_turns  # type: ignore[misc]
        self.default_history_turns = meta.default_history_turns  # type: ignore[misc]
        self.supports_snapshot = meta.supports_snapshot  # type: ignore[misc]

    # -- availability ---------------------------------------------------------------------
    @classmethod
    def _label(cls, config: AgentGymClientConfig) -> str:
        return f"agentgym:{config.variant}" if cls is AgentGymEnv and config.variant else cls.name

    @classmethod
    def _missing_url(cls, config: AgentGymClientConfig) -> str:
        return f"needs a running server: --set url=http://HOST:PORT ({SERVE_HINT})"

    @classmethod
    def availability(cls) -> Availability:
        return cls.availability_for(cls.Config())

    @classmethod
    def availability_for(cls, config: EnvConfig) -> Availability:
        assert isinstance(config, AgentGymClientConfig)
        if not config.url:
            return Availability(False, cls._missing_url(config))
        return Availability(True)

    @classmethod
    def max_turns_for(cls, config: EnvConfig) -> int:
        assert isinstance(config, AgentGymClientConfig)
        if not config.url:
            return cls.default_max_turns
        remote = connect(config)
        try:
            return remote.meta.default_max_turns or cls.default_max_turns
        finally:
            remote.close()

    # -- the env API ----------------------------------------------------------------------
    @property
    def instructions(self) -> str:
        return self._remote.meta.instructions

    def tasks(self, split: Split) -> list[Task]:
        return list(self._remote.tasks(split))

    def reset(self, task: Task, seed: int = 0) -> str:
        return self._remote.reset(task, seed)

    def step(self, action: str) -> Step:
        return self._remote.step(action)

    def expert_step(self) -> ExpertStep:
        return self._remote.expert_step()

    def snapshot(self) -> Any:
        return self._remote.snapshot()

    def restore(self, snapshot: Any) -> None:
        self._remote.restore(snapshot)

    def admissible_actions(self) -> list[str] | None:
        return self._remote.admissible_actions()

    def parse_action(self, response: str) -> str | None:
        return self._remote.parse_action(response)

    def close(self) -> None:
        remote = getattr(self, "_remote", None)
        if remote is not None:
            remote.close()


class WebShopConfig(AgentGymClientConfig):
    variant: str | None = Field("webshop", description="fixed: webshop")
    server_kind: Literal["auto", "agentbench", "agentgym"] = Field(
        "agentgym", description="WebShop runs as AgentGym's own server")

    @field_validator("variant")
    @classmethod
    def _only_webshop(cls, value: str | None) -> str:
        if value not in (None, "webshop"):
            raise ValueError("the webshop env has no variants; use agentgym:NAME for other servers")
        return "webshop"


class WebShop(AgentGymEnv):
    """WebShop (Yao et al., 2022) through AgentGym's WebShop server."""

    name: ClassVar[str] = "webshop"
    description: ClassVar[str] = "WebShop web shopping, via AgentGym's WebShop server (--set url=)"
    Config = WebShopConfig

    @classmethod
    def _missing_url(cls, config: AgentGymClientConfig) -> str:
        return ("runs only as AgentGym's WebShop server (agentenv-webshop, with its product data), which is "
                "not installed here: start it and pass --set url=http://HOST:PORT and --set test_idx=START:STOP")
