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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

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
    """How to run a model: where, in which precision, how many sequences at once; for ``openai``
    which server and how to talk to it; for ``vllm`` how to size the engine (``--set key=value``).

    Only ``device``, ``dtype`` and ``max_batch_size`` are always recorded (hashed into run ids);
    the server and engine options below are recorded only when they differ from their defaults,
    and where a server is and how it is called (``base_url``, ``api_key_env``, ``concurrency``,
    ``request_timeout_s``, ``request_retries``) never are: they do not change what is sampled, and a run resumed
    against a server restarted on another port keeps its run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    dtype: str = Field("auto", description="auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16")
    max_batch_size: int = Field(32, ge=1, description="sequences per forward pass")
    # -- openai: any OpenAI-compatible server ------------------------------------------------
    base_url: str | None = Field(None, description="openai: the server's API root, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai: environment variable holding the API key "
                                                           "(sent as a bearer token when set)")
    served_model: str | None = Field(None, description="openai: the model name the server knows (default: the "
                                                       "server's only model, else --model)")
    concurrency: int = Field(8, ge=1, description="openai: requests in flight at most")
    request_timeout_s: float = Field(120.0, gt=0, description="openai: seconds one request may take")
    request_retries: int = Field(3, ge=0, description="openai: retries of a request after a transient error")
    tokenizer: str | None = Field(None, description="openai: a local tokenizer (folder or hub id) for prompt "
                                                    "token counts; default: the server's /tokenize, else --model's")
    # -- vllm: the in-process engine -----------------------------------------------------------
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="vllm: share of GPU memory it may take")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs one model is split over")
    max_model_len: int | None = Field(None, ge=1, description="vllm: context length (default: the model's)")
    prefix_caching: bool = Field(True, description="vllm: reuse the KV cache of shared prompt prefixes")
    lora_adapter: str | None = Field(None, description="vllm: a PEFT LoRA adapter folder applied to every request")
    max_lora_rank: int = Field(16, ge=1, description="vllm: the largest LoRA rank the engine accepts")

    @model_serializer(mode="wrap")
    def _recorded(self, handler):
        data = handler(self)
        for key in _UNRECORDED:
            data.pop(key, None)
        for key in _RECORDED_IF_SET:
            if key in data and data[key] == type(self).model_fields[key].default:
                del data[key]
        return data

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


# Where a server is and how it is called: never part of a run's identity.
_UNRECORDED = ("base_url", "api_key_env", "concurrency", "request_timeout_s", "request_retries")
# Options that may change what is sampled: recorded, but only when set (older run ids stay valid).
_RECORDED_IF_SET = ("served_model", "tokenizer", "gpu_memory_utilization", "tensor_parallel_size",
                    "max_model_len", "prefix_caching", "lora_adapter", "max_lora_rank")


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
