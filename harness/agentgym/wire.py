"""What travels over the wire: endpoint paths, error codes and JSON encoding.

Errors are JSON bodies ``{"error": "<one line>", "code": "<ErrorCode>"}`` with a matching HTTP
status, so that a client can tell a dead session from a bad request from an env that raised.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import Any

PROTOCOL_VERSION = 1
SERVER_KIND = "agentbench"
"""The ``server`` field of ``GET /agentbench/info``: how a client recognises one of ours."""


class Path:
    # AgentGym's core endpoints (the same paths and field names as its env servers)
    root = "/"
    create = "/create"
    reset = "/reset"
    step = "/step"
    close = "/close"
    observation = "/observation"
    available_actions = "/available_actions"
    detail = "/detail"
    list_envs = "/list_envs"
    # agentbench extras
    info = "/agentbench/info"
    tasks = "/agentbench/tasks"
    expert_step = "/agentbench/expert_step"
    snapshot = "/agentbench/snapshot"
    restore = "/agentbench/restore"
    parse_action = "/agentbench/parse_action"


class ErrorCode(str, Enum):
    bad_request = "bad_request"
    """The body or query did not parse or lacked a field (HTTP 400)."""
    unknown_session = "unknown_session"
    """No live session has this id: never created, closed, evicted or the server restarted (404)."""
    unknown_task = "unknown_task"
    """The split, task id or data_idx names no task of this server (404)."""
    unknown_snapshot = "unknown_snapshot"
    """The snapshot token is not (or no longer) held for this session (404)."""
    not_found = "not_found"
    """No such endpoint (404)."""
    not_reset = "not_reset"
    """The session has no episode yet: call /reset first (409)."""
    task_mismatch = "task_mismatch"
    """The client's task spec differs from the server's task of that id (409)."""
    no_expert = "no_expert"
    """The env has no expert for this state (409)."""
    unsupported = "unsupported"
    """The env cannot do this (snapshots) (501)."""
    env_error = "env_error"
    """The env raised while handling the request; the server itself is fine (500)."""
    too_many_sessions = "too_many_sessions"
    """Every session slot is taken by a recently used session (503)."""
    too_large = "too_large"
    """The request body or the reply is over the server's size limit (413)."""
    unauthorized = "unauthorized"
    """The server was started with --token and the request carried no or another token (401)."""


STATUS = {
    ErrorCode.bad_request: 400,
    ErrorCode.unknown_session: 404,
    ErrorCode.unknown_task: 404,
    ErrorCode.unknown_snapshot: 404,
    ErrorCode.not_found: 404,
    ErrorCode.not_reset: 409,
    ErrorCode.task_mismatch: 409,
    ErrorCode.no_expert: 409,
    ErrorCode.unsupported: 501,
    ErrorCode.env_error: 500,
    ErrorCode.too_many_sessions: 503,
    ErrorCode.too_large: 413,
    ErrorCode.unauthorized: 401,
}


class ServiceError(Exception):
    """A request the service refuses; becomes an HTTP error with a JSON body."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def body(self) -> dict[str, str]:
        return {"error": self.message, "code": self.code.value}


def _fallback(obj: Any) -> Any:
    """JSON for what envs put in ``info.extra``: numpy scalars and arrays, sets, the rest as text."""
    if hasattr(obj, "item") and callable(obj.item):
        try:
            return obj.item()
        except (TypeError, ValueError):
            pass
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def dumps(obj: Any) -> bytes:
    # Python's float repr round-trips exactly, so rewards arrive bit-identical; NaN/inf are
    # written the way Python's json reads them back.
    return json.dumps(obj, default=_fallback, allow_nan=True).encode()


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
