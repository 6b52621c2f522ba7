"""The LLM judge of ``fuzzy_match`` checks, pluggable.

A judge is anything with a ``name`` and ``complete(messages) -> str``; the grading prompts and
the reading of verdicts live in :mod:`agentbench.envs.webarena.evaluators`, so every judge is
asked the same questions. Two ship here:

- :class:`BackendJudge`: a model through ``agentbench.backends`` (default: the run's policy
  model, ``--model``), loaded once per process and shared by every env instance;
- :class:`OpenAIJudge`: any OpenAI-compatible chat-completions endpoint (``--set
  judge_url=http://host:port/v1``), as the published WebArena-Lite setting uses with GPT-4.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any, Protocol, runtime_checkable

from agentbench.errors import AgentbenchError

Messages = list[dict[str, str]]


class JudgeError(AgentbenchError):
    """The judge could not be reached or loaded; the episode cannot be scored."""


@runtime_checkable
class Judge(Protocol):
    name: str

    def complete(self, messages: Messages) -> str: ...


class BackendJudge:
    """A model served by one of agentbench's backends, greedy decoding."""

    def __init__(self, model: str, backend: str = "hf", options: Any = None, max_new_tokens: int = 64):
        self.model_name, self.backend_name = model, backend
        self.options, self.max_new_tokens = options, max_new_tokens
        self.name = f"{backend}:{model}"
        self._backend = None

    def complete(self, messages: Messages) -> str:
        from agentbench.backends import SamplingParams, make_backend
        from agentbench.models import resolve_model

        if self._backend is None:
            try:
                self._backend = make_backend(self.backend_name, resolve_model(self.model_name), self.options)
            except AgentbenchError as exc:
                raise JudgeError(f"cannot load judge model {self.model_name!r}: {exc}") from exc
        params = SamplingParams(temperature=0.0, max_new_tokens=self.max_new_tokens, seed=0)
        return self._backend.generate([messages], params)[0].text


class OpenAIJudge:
    """An OpenAI-compatible ``/chat/completions`` endpoint; the API key, if any, from an env variable."""

    def __init__(self, url: str, model: str, api_key_variable: str = "OPENAI_API_KEY",
                 max_tokens: int = 768, timeout_s: float = 120.0):
        self.url = url.rstrip("/")
        self.model, self.api_key_variable = model, api_key_variable
        self.max_tokens, self.timeout_s = max_tokens, timeout_s
        self.name = f"openai:{model}@{self.url}"

    def complete(self, messages: Messages) -> str:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0, "top_p": 1.0,
                           "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_variable)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(f"{self.url}/chat/completions", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read())
            return str(payload["choices"][0]["message"]["content"] or "")
        except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise JudgeError(f"judge endpoint {self.url} failed: {exc}") from exc


_SHARED: dict[tuple[Any, ...], BackendJudge] = {}


def shared_backend_judge(model: str, backend: str, options: Any, max_new_tokens: int) -> BackendJudge:
    """One loaded judge model per process, whatever the number of env instances."""
    key = (model, backend, options.model_dump_json() if hasattr(options, "model_dump_json") else repr(options),
           max_new_tokens)
    if key not in _SHARED:
        _SHARED[key] = BackendJudge(model, backend, options, max_new_tokens)
    return _SHARED[key]
