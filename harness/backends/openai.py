"""The ``openai`` backend: any OpenAI-compatible chat server (``vllm serve``, SGLang, llama.cpp's
server, a hosted API) behind the policy protocol.

``--set base_url=http://HOST:PORT/v1`` names the server. Requests go out concurrently, at most
``concurrency`` at a time, each with a timeout; connection errors, timeouts and the transient
HTTP statuses (408, 409, 425, 429, 5xx) are retried ``request_retries`` times with exponential backoff, and
then, or at once on a permanent error (a 400 or 404, say), the run stops with one line naming the
server and what it said.

The server owns the chat template: chats are sent as messages and rendered there. Its sha256 is
recorded when the server shows the template (llama.cpp's ``/props``), else ``unknown``. Prompt
token counts come from the server's ``/tokenize`` (vLLM, SGLang) or, where it has none, from a
local tokenizer (``--set tokenizer=PATH``, default ``--model``'s own folder). Against vLLM the
exact prompt and completion token ids come back (``return_token_ids``) and a chat ending with an
assistant message is continued (``continue_final_message``); log-probs come back from any server
that implements the API's ``logprobs``. Scoring given completions needs a model in process
(``hf`` or ``vllm``).
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agentbench.backends import (
    CONTINUE,
    LOGPROBS,
    TOKEN_IDS,
    BackendOptions,
    Completion,
    Messages,
    SamplingParams,
    ScoreRequest,
    TokenScores,
    require,
)
from agentbench.errors import AgentbenchError, ConfigError

TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
BACKOFF_S = 0.5
"""First retry waits about this long; each later one twice as long (capped at ``MAX_BACKOFF_S``)."""
MAX_BACKOFF_S = 20.0


class ServerError(AgentbenchError):
    """An OpenAI-compatible server that is down, too slow, or refused a request."""

    exit_code = 1


class _Permanent(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _server_message(response) -> str:
    """The server's own error text, on one line."""
    try:
        body = response.json()
        err = body.get("error", body) if isinstance(body, dict) else body
        text = err.get("message", err) if isinstance(err, dict) else err
    except ValueError:
        text = response.text
    return " ".join(str(text).split())[:300] or response.reason


def wait_for_server(url: str, *, proc: Any = None, log: Path | None = None, timeout_s: float = 600) -> None:
    """Block until the OpenAI-compatible server at ``url`` (its API root, ``.../v1``) lists its
    models; :class:`ServerError` when ``proc`` (the server's ``subprocess.Popen``) exits first or
    ``timeout_s`` passes, with the tail of ``log`` (the server's output) when given."""
    import requests

    def tail() -> str:
        return f": {log.read_text(errors='replace')[-2000:]}" if log is not None and log.exists() else ""

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"the server for {url} exited with {proc.returncode}{tail()}")
        try:
            if requests.get(f"{url.rstrip('/')}/models", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(2)
    raise ServerError(f"no server answered at {url} within {timeout_s:g} s{tail()}")


class HTTPClient:
    """Bounded, retried JSON requests to one server (thread-safe: one requests session per thread)."""

    def __init__(self, root: str, *, api_key: str | None, timeout_s: float, retries: int, concurrency: int):
        self.root = root.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.concurrency = concurrency
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._local = threading.local()
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="openai-backend")

    def _session(self):
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def request(self, method: str, path: str, body: Any = None, *, retries: int | None = None) -> Any:
        """The decoded JSON answer; :class:`ServerError` after the retries or on a permanent error."""
        import requests

        url = f"{self.root}{path}"
        tries = (self.retries if retries is None else retries) + 1
        last = ""
        for attempt in range(tries):
            if attempt:
                time.sleep(min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (attempt - 1)) * (1 + random.random() / 4))
            try:
                response = self._session().request(method, url, json=body, headers=self.headers,
                                                   timeout=(min(10.0, self.timeout_s), self.timeout_s))
            except requests.Timeout:
                last = f"no answer within {self.timeout_s:g} s"
                continue
            except requests.ConnectionError as exc:
                last = f"cannot connect ({type(exc).__name__})"
                continue
            if response.status_code in TRANSIENT_STATUS:
                last = f"HTTP {response.status_code}: {_server_message(response)}"
                continue
            if response.status_code >= 400:
                raise _Permanent(response.status_code, f"{method} {url} answered HTTP {response.status_code}: "
                                                       f"{_server_message(response)}")
            try:
                return response.json()
            except ValueError:
                last = f"an answer that is not JSON ({response.text[:80]!r})"
        raise ServerError(f"openai backend: {method} {url} failed {tries} time(s), last: {last}; is the server "
                          f"up at {self.root}? (--set request_timeout_s=..., request_retries=...)")

    def call(self, method: str, path: str, body: Any = None, **kw) -> Any:
        try:
            return self.request(method, path, body, **kw)
        except _Permanent as exc:
            raise ServerError(f"openai backend: {exc}") from None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class OpenAIBackend:
    """Any OpenAI-compatible chat server (vLLM, SGLang, llama.cpp, hosted APIs), concurrently."""

    name = "openai"
    # What every compatible server gives; a vLLM server adds token ids and continuation (per instance).
    capabilities = frozenset({LOGPROBS})

    def __init__(self, model: Any, options: BackendOptions):
        if not options.base_url:
            raise ConfigError("backend openai needs the server: --set base_url=http://HOST:PORT/v1")
        self.model_ref = model
        self.options = options
        api_key = os.environ.get(options.api_key_env) or None
        self.client = HTTPClient(options.base_url, api_key=api_key, timeout_s=options.request_timeout_s,
                                 retries=options.request_retries, concurrency=options.concurrency)
        # The server's root (without /v1) holds vLLM's /tokenize and llama.cpp's /props.
        self.server_root = options.base_url.rstrip("/").removesuffix("/v1")
        self.extra_client = HTTPClient(self.server_root, api_key=api_key, timeout_s=options.request_timeout_s,
                                       retries=options.request_retries, concurrency=1)
        models = self.client.call("GET", "/models").get("data", [])
        served = [m.get("id") for m in models]
        self.owned_by = str(models[0].get("owned_by", "")) if models else ""
        self.served_model = options.served_model or (served[0] if len(served) == 1 else model.name)
        if served and self.served_model not in served:
            raise ConfigError(f"server {options.base_url} does not serve {self.served_model!r} (it serves: "
                              f"{', '.join(served)}); --set served_model=NAME")
        self.max_model_len = next((m.get("max_model_len") for m in models if m.get("id") == self.served_model), None)
        self.is_vllm = self.owned_by == "vllm"
        caps = {LOGPROBS}
        if self.is_vllm:
            caps |= {TOKEN_IDS, CONTINUE}
        self.capabilities = frozenset(caps)
        self._tokenizer: Any = None
        self._server_tokenize = self._probe_tokenize()
        self.chat_template_sha256 = self._probe_template()

    # -- what the server can tell -------------------------------------------------------------
    def _probe_tokenize(self) -> bool:
        if self.options.tokenizer:
            return False
        try:
            self.extra_client.request("POST", "/tokenize", {"model": self.served_model, "prompt": "probe"},
                                      retries=0)
            return True
        except (_Permanent, ServerError):
            return False

    def _probe_template(self) -> str:
        try:
            props = self.extra_client.request("GET", "/props", retries=0)
        except (_Permanent, ServerError):
            return "unknown (owned by the server)"
        template = props.get("chat_template") if isinstance(props, dict) else None
        return hashlib.sha256(template.encode()).hexdigest() if template else "unknown (owned by the server)"

    def tokenizer(self):
        if self._tokenizer is None:
            from agentbench.backends.hf import load_tokenizer

            path = self.options.tokenizer or self.model_ref.path
            try:
                self._tokenizer = load_tokenizer(path)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"openai backend: the server has no /tokenize and no tokenizer loads from "
                                  f"{path} ({type(exc).__name__}); --set tokenizer=PATH") from None
        return self._tokenizer

    # -- the policy protocol ------------------------------------------------------------------
    def encode(self, prompts: Sequence[Messages]) -> list[list[int]]:
        if self._server_tokenize:
            return list(self.client.pool.map(self._tokenize_one, prompts))
        from agentbench.backends.hf import render

        tok = self.tokenizer()
        return list(tok(render(tok, prompts), add_special_tokens=False)["input_ids"])

    def _tokenize_one(self, chat: Messages) -> list[int]:
        cont = chat[-1]["role"] == "assistant"
        body = {"model": self.served_model, "messages": list(chat), "add_generation_prompt": not cont,
                "continue_final_message": cont, "add_special_tokens": False}
        return list(self.extra_client.call("POST", "/tokenize", body)["tokens"])

    def prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]:
        return [len(ids) for ids in self.encode(prompts)]

    def request_body(self, chat: Messages, params: SamplingParams, seed: int) -> dict[str, Any]:
        """The chat-completions request for one chat (``n`` samples)."""
        body: dict[str, Any] = {
            "model": self.served_model, "messages": list(chat), "max_tokens": params.max_new_tokens,
            "temperature": params.temperature, "n": params.n, "seed": seed,
        }
        if params.temperature > 0:
            body["top_p"] = params.top_p
        if params.stop:
            body["stop"] = list(params.stop)
        if params.logprobs:
            body["logprobs"] = True
        if self.is_vllm:
            body["return_token_ids"] = True
            if params.logprobs:
                body["top_logprobs"] = 0
            if chat[-1]["role"] == "assistant":
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
        elif chat[-1]["role"] == "assistant":
            require(self, CONTINUE, "continuing an assistant message")
        return body

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[Completion]:
        # One seed per chat, derived from the call's: a chat's samples do not depend on its batch-mates.
        bodies = [self.request_body(chat, params, params.seed + i) for i, chat in enumerate(prompts)]
        answers = list(self.client.pool.map(lambda b: self.client.call("POST", "/chat/completions", b), bodies))
        out: list[Completion] = []
        for body, answer in zip(bodies, answers):
            out.extend(self.parse(answer, body, params))
        return out

    def parse(self, answer: Mapping[str, Any], body: Mapping[str, Any], params: SamplingParams) -> list[Completion]:
        """The ``n`` completions of one chat-completions answer, in the order of their index."""
        choices = sorted(answer.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != params.n:
            raise ServerError(f"openai backend: {self.options.base_url} returned {len(choices)} choice(s) for "
                              f"n={params.n}")
        usage = answer.get("usage") or {}
        prompt_ids = tuple(answer.get("prompt_token_ids") or ())
        prompt_n = int(usage.get("prompt_tokens") or len(prompt_ids))
        out = []
        for choice in choices:
            text = (choice.get("message") or {}).get("content") or ""
            token_ids = tuple(choice.get("token_ids") or ())
            logprobs = None
            if params.logprobs:
                content = (choice.get("logprobs") or {}).get("content") or []
                logprobs = tuple(float(t["logprob"]) for t in content)
            n_completion = len(token_ids) or (len(logprobs) if logprobs else 0)
            if not n_completion and params.n == 1:
                n_completion = int(usage.get("completion_tokens") or 0)
            reason = "length" if choice.get("finish_reason") == "length" else "stop"
            if params.stop:  # servers strip a stop string; some keep text after it in rare cases
                for s in params.stop:
                    if s in text:
                        text = text[: text.index(s)]
            out.append(Completion(text=text.strip(), prompt_tokens=prompt_n, completion_tokens=n_completion,
                                  finish_reason=reason, prompt_ids=prompt_ids, token_ids=token_ids,
                                  logprobs=logprobs))
        return out

    def score(self, requests: Sequence[ScoreRequest], top_k: int = 0) -> list[TokenScores]:
        from agentbench.backends import SCORE

        require(self, SCORE, "scoring given completions")
        raise AssertionError("unreachable")

    def update_weights(self, weights: Path | Mapping[str, Any]) -> None:
        from agentbench.backends import WEIGHT_UPDATE

        require(self, WEIGHT_UPDATE, "on-policy training (new weights for the sampler)")

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "dtype": f"server ({self.owned_by or 'unknown'})",
                "base_url": self.options.base_url, "served_model": self.served_model,
                "chat_template_sha256": self.chat_template_sha256}

    def close(self) -> None:
        self.client.close()
        self.extra_client.close()
