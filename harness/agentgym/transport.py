"""HTTP to an env server: timeouts, retries of idempotent calls, one-line errors.

A call that cannot reach the server, times out or gets a gateway error (502/503/504) is
retried with backoff when it is idempotent (reads, reset, restore, close, parsing); calls that
change state in a way a repeat would change again (create, step, snapshot) are never
retried. Whatever still fails becomes :class:`~agentbench.errors.EnvServerError`, whose
message names the server, the call and what went wrong, on one line.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from agentbench.errors import EnvServerError

GATEWAY_STATUSES = (502, 503, 504)
FIRST_CONTACT_TIMEOUT_S = 10.0
"""How long the first request waits for an answer (later ones wait ``timeout_s``)."""
TOKEN_ENV = "AGENTBENCH_ENV_TOKEN"
"""The environment variable with the shared token of a server started with ``--token``."""


def _stderr_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Reply:
    status: int
    payload: Any
    """The decoded JSON body, or the text when the body is not JSON."""
    is_json: bool

    @property
    def error_code(self) -> str | None:
        return self.payload.get("code") if isinstance(self.payload, dict) else None

    @property
    def error_message(self) -> str | None:
        if isinstance(self.payload, dict) and "error" in self.payload:
            return str(self.payload["error"])
        if isinstance(self.payload, dict) and "detail" in self.payload:  # FastAPI's own errors
            return str(self.payload["detail"])
        return None


def _short_reason(exc: BaseException) -> str:
    """``[Errno 111] Connection refused`` out of urllib3's nested messages."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found[-1].strip().lower()
    for marker in ("RemoteDisconnected", "Connection reset", "Connection aborted", "BadStatusLine"):
        if marker in text:
            return "the connection was dropped"
    return type(exc).__name__


class Transport:
    def __init__(self, base_url: str, timeout_s: float = 60.0, retries: int = 3, backoff_s: float = 0.25,
                 token: str | None = None, first_timeout_s: float = FIRST_CONTACT_TIMEOUT_S,
                 warn: Callable[[str], None] | None = None):
        url = base_url.strip()
        if not re.match(r"^https?://[^/\s]+", url):
            from agentbench.errors import ConfigError

            raise ConfigError(f"url must look like http://HOST:PORT, got {base_url!r}")
        self.base_url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.first_timeout_s = min(first_timeout_s, timeout_s)
        self._contacted = False
        self._warn = warn or _stderr_warning
        self._http = requests.Session()
        token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        if token:
            self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: dict[str, Any] | None = None, *, idempotent: bool = True) -> Reply:
        return self.request("GET", path, params=params, idempotent=idempotent)

    def post(self, path: str, body: dict[str, Any] | None = None, *, idempotent: bool) -> Reply:
        return self.request("POST", path, body=body if body is not None else {}, idempotent=idempotent)

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None, idempotent: bool) -> Reply:
        attempts = 1 + (self.retries if idempotent else 0)
        where = f"{method} {path}"
        for attempt in range(attempts):
            last = attempt == attempts - 1
            # Until the server has answered once, wait less: a server that never answers (stopped,
            # wrong port behind a proxy) should be reported in seconds, not minutes.
            timeout = self.timeout_s if self._contacted else self.first_timeout_s
            try:
                response = self._http.request(method, self.base_url + path, params=params, json=body,
                                              timeout=timeout)
            except requests.Timeout as exc:
                if last:
                    raise EnvServerError(f"env server {self.base_url} did not answer {where} within "
                                         f"{timeout:g} s{self._tries(attempts)}") from exc
                problem = f"no answer within {timeout:g} s"
            except requests.RequestException as exc:
                if last:
                    raise EnvServerError(f"env server {self.base_url} is unreachable ({_short_reason(exc)}) "
                                         f"during {where}{self._tries(attempts)}: is it running?") from exc
                problem = _short_reason(exc)
            else:
                self._contacted = True
                reply = _decode(response)
                if reply.status == 401:  # a server started with --token: no retry helps
                    raise EnvServerError(f"env server {self.base_url} refused {where}: "
                                         f"{reply.error_message or 'unauthorized'}")
                gateway = reply.status in GATEWAY_STATUSES and reply.error_code != "too_many_sessions"
                if not gateway or last:
                    return reply
                problem = f"HTTP {reply.status}"
            pause = self.backoff_s * 2**attempt
            self._warn(f"env server {self.base_url}: {where} failed ({problem}); try {attempt + 2} of {attempts} "
                       f"in {pause:g} s")
            time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _tries(attempts: int) -> str:
        return f" ({attempts} tries)" if attempts > 1 else ""

    def fail(self, where: str, reply: Reply) -> EnvServerError:
        """The error for an answer the caller cannot use."""
        detail = reply.error_message or (str(reply.payload)[:200] if reply.payload not in ("", None) else "")
        detail = " ".join(detail.split())
        return EnvServerError(f"env server {self.base_url} answered {where} with HTTP {reply.status}"
                              + (f": {detail}" if detail else ""))


def _decode(response: requests.Response) -> Reply:
    try:
        return Reply(response.status_code, response.json(), True)
    except (ValueError, json.JSONDecodeError):
        return Reply(response.status_code, response.text, False)
