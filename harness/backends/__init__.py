"""Policy backends: the token-level policy interface every model call goes through.

A backend turns chats into completions that carry the prompt's and the completion's token ids
and, when asked, the sampling policy's per-token log-probabilities; it can draw ``n`` samples
per chat, stop on strings, *score* given completions (per-token log-probs under the model, with
an optional top-k of the distribution: a teacher's or a reference model's view) and take new
weights. ``hf`` (transformers, in process) ships here; other backends implement the same small
protocol, so the rollout engine and the trainers never know which one they drive.

Not every backend can do everything (a hosted API cannot score, say): a backend lists what it
supports in ``capabilities`` and :func:`require` turns a missing one into a one-line error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentbench.errors import ConfigError

Messages = list[dict[str, str]]

# What a backend can do beyond plain generation (``Backend.capabilities``).
TOKEN_IDS = "token_ids"
"""Completions carry the exact prompt and completion token ids."""
LOGPROBS = "logprobs"
"""Completions carry the sampling policy's per-token log-probs when asked."""
SCORE = "score"
"""``score`` returns per-token log-probs (and top-k) of given completions."""
CONTINUE = "continue_final_message"
"""A chat whose last message is the assistant's is continued from that text."""
WEIGHT_UPDATE = "weight_update"
"""``update_weights`` takes new weights (a folder or a state dict) without a restart."""


class SamplingParams(BaseModel):
    """Decoding settings of one generate call (recorded in results as ``generation``)."""

    model_config = ConfigDict(frozen=True)

    temperature: float = Field(0.0, ge=0.0, description="0 means greedy decoding")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(64, ge=1)
    seed: int = 0
    n: int = Field(1, ge=1, description="samples per chat; completions come back grouped, chat by chat")
    stop: tuple[str, ...] = Field((), description="strings that end a completion (kept out of its text)")
    logprobs: bool = Field(False, description="return the sampling policy's log-prob of every completion token")


@dataclass(frozen=True)
class Completion:
    """One sampled completion. ``token_ids`` are exactly the sampled tokens, the end-of-turn
    token included when the model stopped on it, so a trainer can score what was sampled."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]
    prompt_ids: tuple[int, ...] = ()
    token_ids: tuple[int, ...] = ()
    logprobs: tuple[float, ...] | None = None
    """log p(token) under the sampling distribution (logits divided by the temperature)."""
    raw_text: str | None = None
    """The text exactly as decoded (``text`` may be stripped); IF-Eval scores this one."""


@dataclass(frozen=True)
class ScoreRequest:
    """A completion to score: its prompt's token ids and its own."""

    prompt_ids: Sequence[int]
    completion_ids: Sequence[int]


@dataclass(frozen=True)
class TokenScores:
    """Per-token log-probs of a scored completion, and optionally the top-k of the model's
    distribution at each completion position (ids and log-probs, most likely first)."""

    logprobs: list[float]
    top_ids: list[list[int]] | None = None
    top_logprobs: list[list[float]] | None = None


DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


class BackendOptions(BaseModel):
    """How to run a model: where, in which precision, how many sequences at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    dtype: str = Field("auto", description="auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16")
    max_batch_size: int = Field(32, ge=1, description="sequences per forward pass")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
            raise ValueError(f"unknown device {value!r}; use one of {', '.join(DEVICES)}")
        return value

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        if value not in DTYPES:
            raise ValueError(f"unknown dtype {value!r}; use one of {', '.join(DTYPES)}")
        return value


@runtime_checkable
class Backend(Protocol):
    """The policy protocol. ``generate`` returns ``len(prompts) * params.n`` completions, the
    ``n`` samples of each chat together. A chat whose last message is the assistant's is
    continued from that text where the backend has ``continue_final_message``."""

    name: str
    capabilities: frozenset[str]

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[Completion]: ...
    def prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]: ...
    def encode(self, prompts: Sequence[Messages]) -> list[list[int]]: ...
    def score(self, requests: Sequence[ScoreRequest], top_k: int = 0) -> list[TokenScores]: ...
    def update_weights(self, weights: Path | Mapping[str, Any]) -> None: ...
    def describe(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


def require(backend: Backend, capability: str, who: str) -> None:
    """A one-line error when ``backend`` lacks ``capability``, naming the backends that have it."""
    if capability in getattr(backend, "capabilities", frozenset()):
        return
    from agentbench import registry

    able = [n for n in registry.backends.names()
            if capability in getattr(registry.backends.get(n), "capabilities", frozenset())]
    raise ConfigError(f"{who} needs {capability.replace('_', ' ')}, which backend {backend.name!r} cannot give; "
                      f"use one of: {', '.join(able) or 'none registered'}")


def make_backend(name: str, model: Any, options: BackendOptions | None = None) -> Backend:
    from agentbench import registry

    return registry.backends.get(name)(model, options or BackendOptions())
