"""The HTTP face of an :class:`~agentbench.agentgym.service.EnvService` (Starlette on uvicorn).

Request bodies follow AgentGym's field names (``id``, ``action``, ``data_idx``) and also accept
the aliases some of its servers use (``env_idx`` for the id; ``game``, ``session_id``, ``idx``
for the task index); unknown fields are ignored, as AgentGym's pydantic bodies do. Every error
is a JSON ``{"error", "code"}`` body (see :mod:`.wire`); an env that raises never takes the
server down.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agentbench.agentgym.service import EnvService
from agentbench.agentgym.wire import ErrorCode, Path, ServiceError, dumps
from agentbench.errors import EnvServerError

# -- request bodies -------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SessionBody(_Body):
    id: int = Field(validation_alias=AliasChoices("id", "env_idx"), description="the session id /create gave")


class ResetBody(SessionBody):
    data_idx: int | None = Field(None, validation_alias=AliasChoices("data_idx", "game", "session_id", "idx"),
                                 description="AgentGym's task index (splits concatenated: train, test, ood)")
    split: str | None = Field(None, description="with task_id: the task's split")
    task_id: str | None = Field(None, description="with split: the task's id")
    task_sha256: str | None = Field(None, description="optional check that client and server mean the same task")
    seed: int = Field(0, description="episode seed")


class StepBody(SessionBody):
    action: str = Field(description="the action text")


class RestoreBody(SessionBody):
    snapshot: str = Field(description="a token from /agentbench/snapshot")


class ParseBody(_Body):
    id: int | None = Field(None, validation_alias=AliasChoices("id", "env_idx"))
    response: str = Field(description="the model's full reply")


# -- plumbing -------------------------------------------------------------------------------


def _json(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type="application/json")


def _bad(message: str) -> ServiceError:
    return ServiceError(ErrorCode.bad_request, message)


MAX_BODY_BYTES = 1 << 20
"""Request bodies above this are refused (413): an action is text a model wrote, not megabytes."""
MAX_REPLY_BYTES = 4 << 20
"""Replies (observations) above this are refused (413) rather than sent."""
MAX_NESTING = 32
"""JSON nested deeper than this is refused (400) before it is parsed."""


def _too_large(what: str, size: int, limit: int) -> ServiceError:
    return ServiceError(ErrorCode.too_large, f"{what} is {size} bytes, over the server's limit of {limit}")


def _nesting(raw: bytes) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(f"the body of {request.method} {request.url.path}", int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(f"the body of {request.method} {request.url.path}", size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse(request: Request, model: type[BaseModel]) -> Any:
    raw = await _read_body(request, request.app.state.max_body)
    if _nesting(raw) > MAX_NESTING:
        raise _bad(f"the body of {request.method} {request.url.path} nests deeper than {MAX_NESTING} levels")
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as exc:
        raise _bad(f"the body of {request.method} {request.url.path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _bad(f"the body of {request.method} {request.url.path} must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise _bad(f"{request.method} {request.url.path}: {where}: {first['msg']}") from exc


def _query_id(request: Request) -> int:
    raw = request.query_params.get("id", request.query_params.get("env_idx"))
    if raw is None:
        raise _bad(f"GET {request.url.path} needs ?id=<session id>")
    try:
        return int(raw)
    except ValueError as exc:
        raise _bad(f"GET {request.url.path}: id must be an integer, got {raw!r}") from exc


Handler = Callable[[Request], Awaitable[Any]]

TOKEN_HEADER = "authorization"


def _token_ok(request: Request, token: str) -> bool:
    import hmac

    given = request.headers.get(TOKEN_HEADER, "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), token.encode())


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            token = request.app.state.token
            if token is not None and not _token_ok(request, token):
                raise ServiceError(ErrorCode.unauthorized, "a missing or wrong token: this server needs "
                                   "--set token=... (or AGENTBENCH_ENV_TOKEN) on the client")
            body = dumps(await handler(request))
            limit = request.app.state.max_reply
            if len(body) > limit:
                raise _too_large(f"the reply to {request.method} {request.url.path}", len(body), limit)
            return Response(body, media_type="application/json")
        except ServiceError as exc:
            return _json(exc.body(), exc.status)
        except Exception as exc:  # a bug of ours: still a JSON answer, and the server stays up
            error = ServiceError(ErrorCode.env_error, f"internal server error: {type(exc).__name__}: {exc}")
            return _json(error.body(), error.status)

    return endpoint


def make_app(service: EnvService, token: str | None = None, max_body: int = MAX_BODY_BYTES,
             max_reply: int = MAX_REPLY_BYTES) -> Starlette:
    """The ASGI app serving ``service``; it closes every session when the server stops. With
    ``token``, every request must carry ``Authorization: Bearer TOKEN`` (else 401)."""

    def run(fn, *args, **kwargs):
        return run_in_threadpool(fn, *args, **kwargs)

    async def hello(request: Request) -> str:
        return f"agentbench env server: {service.served.full_name} (AgentGym protocol)"

    async def create(request: Request) -> dict[str, int]:
        return {"id": await run(service.create)}

    async def reset(request: Request) -> dict[str, Any]:
        body: ResetBody = await _parse(request, ResetBody)
        return await run(service.reset, body.id, split=body.split, task_id=body.task_id,
                         task_sha256=body.task_sha256, data_idx=body.data_idx, seed=body.seed)

    async def step(request: Request) -> dict[str, Any]:
        body: StepBody = await _parse(request, StepBody)
        return await run(service.step, body.id, body.action)

    async def close(request: Request) -> dict[str, bool]:
        body: SessionBody = await _parse(request, SessionBody)
        return {"closed": await run(service.close, body.id)}

    async def observation(request: Request) -> str:
        return await run(service.observation, _query_id(request))

    async def available_actions(request: Request) -> list[str] | None:
        return await run(service.available_actions, _query_id(request))

    async def detail(request: Request) -> dict[str, Any]:
        return await run(service.detail, _query_id(request))

    async def list_envs(request: Request) -> list[int]:
        return service.live_sessions()

    async def info(request: Request) -> dict[str, Any]:
        return await run(service.info)

    async def tasks(request: Request) -> dict[str, Any]:
        split = request.query_params.get("split")
        if split is None:
            raise _bad("GET /agentbench/tasks needs ?split=train|test|ood")
        return await run(service.tasks, split)

    async def expert_step(request: Request) -> dict[str, str]:
        return await run(service.expert_step, _query_id(request))

    async def snapshot(request: Request) -> dict[str, str]:
        body: SessionBody = await _parse(request, SessionBody)
        return await run(service.snapshot, body.id)

    async def restore(request: Request) -> dict[str, Any]:
        body: RestoreBody = await _parse(request, RestoreBody)
        return await run(service.restore, body.id, body.snapshot)

    async def parse_action(request: Request) -> dict[str, str | None]:
        body: ParseBody = await _parse(request, ParseBody)
        return await run(service.parse_action, body.response, body.id)

    routes = [
        Route(Path.root, _endpoint(hello), methods=["GET"]),
        Route(Path.create, _endpoint(create), methods=["POST"]),
        Route(Path.reset, _endpoint(reset), methods=["POST"]),
        Route(Path.step, _endpoint(step), methods=["POST"]),
        Route(Path.close, _endpoint(close), methods=["POST"]),
        Route(Path.observation, _endpoint(observation), methods=["GET"]),
        Route(Path.available_actions, _endpoint(available_actions), methods=["GET"]),
        Route(Path.detail, _endpoint(detail), methods=["GET"]),
        Route(Path.list_envs, _endpoint(list_envs), methods=["GET"]),
        Route(Path.info, _endpoint(info), methods=["GET"]),
        Route(Path.tasks, _endpoint(tasks), methods=["GET"]),
        Route(Path.expert_step, _endpoint(expert_step), methods=["GET"]),
        Route(Path.snapshot, _endpoint(snapshot), methods=["POST"]),
        Route(Path.restore, _endpoint(restore), methods=["POST"]),
        Route(Path.parse_action, _endpoint(parse_action), methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        message = (f"no endpoint {request.method} {request.url.path}" if status in (404, 405)
                   else f"{request.method} {request.url.path}: {getattr(exc, 'detail', exc)}")
        code = ErrorCode.not_found if status in (404, 405) else ErrorCode.bad_request
        return _json({"error": message, "code": code.value}, status)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        await run_in_threadpool(service.shutdown)

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    app.state.token = token or None
    app.state.max_body = max_body
    app.state.max_reply = max_reply
    return app


# -- running it -----------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port); clients that connect early wait in the backlog."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        raise EnvServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _uvicorn_server(app: Starlette, log_level: str):
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=log_level in ("debug", "trace"),
                            lifespan="on", loop="asyncio", http="h11")
    return uvicorn.Server(config)


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(service: EnvService, host: str, port: int, log_level: str = "warning",
          on_ready: Callable[[str], None] | None = None, token: str | None = None) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM), then close every session."""
    sock = bind(host, port)
    if on_ready is not None:
        on_ready(url_of(sock))
    _uvicorn_server(make_app(service, token=token), log_level).run(sockets=[sock])


class BackgroundServer:
    """A server (of an env service, or any ASGI app) on a thread of this process, for tests and
    notebooks: ``with BackgroundServer(service) as url: ...``."""

    def __init__(self, target: EnvService | Starlette, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning", token: str | None = None):
        app = make_app(target, token=token) if isinstance(target, EnvService) else target
        self._sock = bind(host, port)
        self.url = url_of(self._sock)
        self._server = _uvicorn_server(app, log_level)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"env-server {self.url}", daemon=True)

    def start(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise EnvServerError(f"the env server at {self.url} did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
