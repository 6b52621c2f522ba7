"""A small OpenAI-compatible server for the tests: the real ``hf`` backend behind vLLM's API shape
(``/v1/models``, ``/v1/chat/completions`` with ``return_token_ids``, ``/tokenize``), on loopback,
in a thread. ``mode`` makes it misbehave: ``503`` (always busy), ``flaky`` (503 for the first
``fail_first`` completion requests), ``hang`` (never answers in time), ``400`` (refuses)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentbench.backends import SamplingParams


@dataclass
class FakeServer:
    backend: object = None
    """An HFBackend (None: only the misbehaving modes work)."""
    name: str = "fake-model"
    owned_by: str = "vllm"
    mode: str = "ok"
    fail_first: int = 0
    hang_s: float = 30.0
    chat_template: str | None = None
    """Shown at ``/props`` (as llama.cpp's server does) when set."""
    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    max_in_flight: int = 0
    _in_flight: int = 0

    # -- handlers ---------------------------------------------------------------------------
    async def models(self, request: Request):
        return JSONResponse({"object": "list", "data": [{"id": self.name, "object": "model",
                                                         "owned_by": self.owned_by, "max_model_len": 4096}]})

    async def props(self, request: Request):
        return JSONResponse({"chat_template": self.chat_template})

    async def tokenize(self, request: Request):
        body = await request.json()
        if "messages" in body:
            ids = self.backend.encode([body["messages"]])[0]
        else:
            ids = self.backend.tokenizer(body["prompt"], add_special_tokens=False)["input_ids"]
        return JSONResponse({"count": len(ids), "tokens": ids, "max_model_len": 4096})

    async def chat(self, request: Request):
        body = await request.json()
        self.requests.append(body)
        if self.mode == "503" or (self.mode == "flaky" and len(self.requests) <= self.fail_first):
            return JSONResponse({"error": {"message": "server busy, try later"}}, status_code=503)
        if self.mode == "400":
            return JSONResponse({"error": {"message": "max_tokens is too large"}}, status_code=400)
        if self.mode == "hang":
            await asyncio.sleep(self.hang_s)
        return JSONResponse(await asyncio.to_thread(self._complete, body))

    def _complete(self, body: dict) -> dict:
        with self.lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            time.sleep(0.01)  # lets concurrent requests overlap, so the bound is observable
            params = SamplingParams(temperature=body.get("temperature", 1.0), top_p=body.get("top_p", 1.0),
                                    max_new_tokens=body["max_tokens"], seed=body.get("seed", 0),
                                    n=body.get("n", 1), stop=tuple(body.get("stop") or ()),
                                    logprobs=bool(body.get("logprobs")))
            with self.lock:  # one model, one forward pass at a time
                completions = self.backend.generate([body["messages"]], params)
        finally:
            with self.lock:
                self._in_flight -= 1
        choices = []
        for i, c in enumerate(completions):
            choice = {"index": i, "message": {"role": "assistant", "content": c.text},
                      "finish_reason": c.finish_reason}
            if body.get("return_token_ids"):
                choice["token_ids"] = list(c.token_ids)
            if body.get("logprobs"):
                choice["logprobs"] = {"content": [{"token": str(t), "logprob": lp}
                                                  for t, lp in zip(c.token_ids, c.logprobs or ())]}
            choices.append(choice)
        answer = {"id": "chatcmpl-fake", "object": "chat.completion", "model": self.name, "choices": choices,
                  "usage": {"prompt_tokens": completions[0].prompt_tokens,
                            "completion_tokens": sum(c.completion_tokens for c in completions)}}
        if body.get("return_token_ids"):
            answer["prompt_token_ids"] = list(completions[0].prompt_ids)
        return answer

    # -- serving ----------------------------------------------------------------------------
    def app(self) -> Starlette:
        routes = [Route("/v1/models", self.models), Route("/v1/chat/completions", self.chat, methods=["POST"])]
        if self.owned_by == "vllm":
            routes.append(Route("/tokenize", self.tokenize, methods=["POST"]))
        if self.chat_template is not None:
            routes.append(Route("/props", self.props))
        return Starlette(routes=routes)

    def __enter__(self) -> FakeServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app(), log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port nobody listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
