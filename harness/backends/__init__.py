"""Policy backends: something that turns a batch of chats into a batch of completions.

``hf`` (transformers, CPU or GPU) ships here; ``vllm`` and OpenAI-compatible servers implement
the same small protocol, so the rollout engine never knows which one it drives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

Messages = list[dict[str, str]]


class SamplingParams(BaseModel):
    """Decoding settings of one generate call (recorded in results as ``generation``)."""

    model_config = ConfigDict(frozen=True)

    temperature: float = Field(0.0, ge=0.0, description="0 means greedy decoding")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(64, ge=1)
    seed: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]
    raw_text: str | None = None
    """The text exactly as decoded (``text`` may be stripped); IF-Eval scores this one."""


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
    """Generates one completion per chat. A chat whose last message is the assistant's is
    continued from that text (used to check an action given a rationale)."""

    name: str

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[Completion]: ...
    def prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]: ...
    def describe(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


def make_backend(name: str, model: Any, options: BackendOptions | None = None) -> Backend:
    from agentbench import registry

    return registry.backends.get(name)(model, options or BackendOptions())
