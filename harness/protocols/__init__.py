"""Protocols: fixed recipes of train and evaluate steps over a run session.

A protocol is a class with ``name``, ``version``, a pydantic ``Config`` and
``run(session) -> ProtocolOutput``; the session (``agentbench.session.RunSession``) offers
``expert()``, ``train(...)`` and ``evaluate(...)``, each resumable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from agentbench.method import Compute
from agentbench.models import ModelRef
from agentbench.prompting import PromptConfig
from agentbench.results import EnvResult, ScalingPoint

if TYPE_CHECKING:
    from agentbench.session import RunSession


class ProtocolConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass
class ProtocolOutput:
    train: Compute
    envs: list[EnvResult]
    model: ModelRef
    """The model that was evaluated (the method's checkpoint)."""
    prompt: PromptConfig
    scaling: list[ScalingPoint] = field(default_factory=list)
    max_new_tokens: int | None = None
    """Tokens per move used at evaluation when the method asked for more than the budget's."""
    base_model: ModelRef | None = None
    """The initial model ``model`` was trained from, when it is not the run's (scaling over models)."""
    rl_compat: list = field(default_factory=list)
    """``RLCompatStart`` entries of the rl-compat protocol."""


@runtime_checkable
class RunProtocol(Protocol):
    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    train_split: ClassVar[str]
    eval_splits: ClassVar[tuple[str, ...]]
    Config: ClassVar[type[ProtocolConfig]]

    def run(self, session: RunSession) -> ProtocolOutput: ...


class InDomain:
    """Train on ``train``, evaluate on ``test`` (the same task distribution)."""

    name: ClassVar[str] = "in-domain"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "train on the train split, evaluate on the test split"
    train_split: ClassVar[str] = "train"
    eval_splits: ClassVar[tuple[str, ...]] = ("test",)
    Config = ProtocolConfig

    def __init__(self, config: ProtocolConfig | None = None):
        self.config = config or ProtocolConfig()

    def run(self, session: RunSession) -> ProtocolOutput:
        trained = session.train(session.method)
        prompt = trained.prompt or session.prompt_config
        envs = [session.evaluate(trained.model, split, prompt, max_new_tokens=trained.max_new_tokens)
                for split in self.eval_splits]
        return ProtocolOutput(train=trained.compute, envs=envs, model=trained.model, prompt=prompt,
                              max_new_tokens=trained.max_new_tokens, scaling=list(trained.scaling))


class OutOfDomain(InDomain):
    """Train on ``train``, evaluate on ``ood`` (held-out task types, larger instances), and
    on ``test`` for reference."""

    name: ClassVar[str] = "ood"
    description: ClassVar[str] = "train on the train split, evaluate on the ood split (and test)"
    eval_splits: ClassVar[tuple[str, ...]] = ("ood", "test")


class EvaluateConfig(ProtocolConfig):
    splits: tuple[str, ...] = ("test",)


class EvaluateOnly(InDomain):
    """No training: evaluate a model on chosen splits (``agentbench eval``)."""

    name: ClassVar[str] = "eval"
    description: ClassVar[str] = "evaluate a model as it is on the chosen splits"
    Config = EvaluateConfig

    def __init__(self, config: EvaluateConfig | None = None):
        self.config = config or EvaluateConfig()
        self.eval_splits = self.config.splits  # type: ignore[misc]
