"""The method API: a trainer that turns an initial model and an env's training data into a
checkpoint, under a budget, and reports what it cost.

A method is a class with a pydantic ``Config`` (its ``--set`` parameters) and ``train``::

    class MyMethod:
        name = "my-method"; version = "1"; description = "..."
        Config = MyConfig
        def __init__(self, config: MyConfig): ...
        def train(self, ctx: TrainContext) -> TrainOutput: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agentbench.artifacts import SharedCache
from agentbench.backends import Backend, BackendOptions, make_backend
from agentbench.budgets import Budget
from agentbench.env import Env, Task
from agentbench.expert import ExpertData
from agentbench.models import ModelRef
from agentbench.prompting import PromptBuilder, PromptConfig
from agentbench.rollout import RolloutLimits


class MethodConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StageCompute(BaseModel):
    """Compute of one training stage (e.g. IWM's world-model stage, then imitation)."""

    name: str
    examples: int = Field(0, description="training sequences consumed, repeats included")
    optimizer_steps: int = 0
    tokens: int = Field(0, description="non-padding tokens fed forward in training")
    loss_tokens: int = Field(0, description="tokens that carried loss")
    wall_time_s: float = 0.0


class RLStep(BaseModel):
    """One step of an online-RL method (``train_log.jsonl`` and ``train.rl_steps``)."""

    step: int
    mean_reward: float = Field(description="mean episode reward of the step's rollouts (shaping included)")
    success: float = Field(description="fraction of the step's rollouts that succeeded")
    invalid_action_rate: float = Field(description="invalid moves / moves")
    episode_length: float = Field(description="mean moves per episode")
    entropy: float | None = Field(None, description="mean per-token entropy of the policy on its own tokens")
    kl: float | None = Field(None, description="mean per-token KL to the reference (when one is kept)")
    clip_fraction: float | None = Field(None, description="fraction of loss tokens whose ratio was clipped")
    episodes: int = Field(0, description="episodes rolled out this step")
    skipped_groups: int = Field(0, description="groups with zero reward variance (no gradient), skipped")
    dropped_env_errors: int = Field(0, description="episodes that ended in an env error, dropped")
    trained_sequences: int = Field(0, description="turn sequences in the update")
    rollout_s: float = Field(0.0, description="wall time of the step's rollouts")
    update_s: float = Field(0.0, description="wall time of the step's optimizer update")
    extra: dict[str, float] = Field(default_factory=dict, description="method-specific metrics (replay, ...)")


class Compute(BaseModel):
    """What a method spent (``result.json``'s ``train``)."""

    examples: int = Field(0, description="training sequences consumed, repeats included")
    optimizer_steps: int = Field(0, description="optimizer updates, all stages together")
    tokens: int = Field(0, description="non-padding tokens fed forward in training")
    loss_tokens: int = Field(0, description="tokens that carried loss")
    wall_time_s: float = Field(0.0, description="wall time of the whole train phase, data collection included")
    env_steps: int = Field(0, description="environment steps spent collecting data (expert, branching, exploration)")
    model_calls: int = Field(0, description="sequences generated to collect data (branching, rationales)")
    stages: list[StageCompute] = Field(default_factory=list, description="per-stage breakdown")
    counters: dict[str, int] = Field(default_factory=dict,
                                     description="method-specific counts (quality gates, dropped examples)")
    expert_data_sha256: str | None = Field(None, description="hash of the expert steps trained on")
    expert_trajectories: int = Field(0, description="expert trajectories available to the method")
    rl_steps: list[RLStep] = Field(default_factory=list, description="per-step curve of an online-RL method")
    settings: dict[str, Any] = Field(default_factory=dict,
                                     description="the method's settings as resolved under the budget (online RL)")


@dataclass
class TrainOutput:
    model: ModelRef
    compute: Compute
    prompt: PromptConfig | None = None
    """The evaluation prompt the method prescribes (long-cot's think-longer prompt); None: default."""
    max_new_tokens: int | None = None
    """Tokens per move the method needs at evaluation (long-cot thinks longer); None: the budget's."""
    scaling: list[Any] = field(default_factory=list)
    """``ScalingPoint``s a method measured itself (AgentEvol's and OEL's per-iteration success)."""


@dataclass
class TrainContext:
    """Everything a method may use. Shared pieces (expert data, tasks) are the same for every
    method of a protocol, which is what makes their results comparable."""

    env_name: str
    make_env: Callable[[], Env]
    base_model: ModelRef
    budget: Budget
    seed: int
    workdir: Path
    prompt_config: PromptConfig
    limits: RolloutLimits
    train_tasks: list[Task]
    expert_loader: Callable[[], ExpertData]
    backend_name: str = "hf"
    backend_options: BackendOptions = field(default_factory=BackendOptions)
    on_progress: Callable[[str, int, int], None] = lambda stage, done, total: None
    log_path: Path | None = None
    shared: SharedCache | None = None
    """Content-addressed cache shared by the runs of one output folder (branching data, ...)."""
    depend_on: Callable[[str, BaseModel | None], TrainOutput] | None = None
    """Train another method under this same context (or reuse its identical earlier training):
    ``long-cot`` evaluates the checkpoint of ``il``."""
    evaluate: Callable[..., Any] | None = None
    """``evaluate(model, split, name)`` -> ``EnvResult``: evaluate an intermediate model the way the
    protocol evaluates (same tasks, seeds, prompt, greedy decoding), resumable, in a sub-folder
    ``name`` of the workdir (per-iteration curves of AgentEvol and OEL)."""

    @cached_property
    def expert(self) -> ExpertData:
        """The expert trajectories of the train tasks, collected on first use."""
        return self.expert_loader()

    def prompts(self, config: PromptConfig | None = None) -> PromptBuilder:
        env = self.make_env()
        try:
            return PromptBuilder(env.instructions, config or self.prompt_config, env.default_history_turns)
        finally:
            env.close()

    def open_policy(self, model: ModelRef | None = None) -> Backend:
        return make_backend(self.backend_name, model or self.base_model, self.backend_options)


@runtime_checkable
class Method(Protocol):
    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[MethodConfig]]

    def train(self, ctx: TrainContext) -> TrainOutput: ...


def describe_config(config: BaseModel) -> dict[str, Any]:
    return config.model_dump(mode="json")
