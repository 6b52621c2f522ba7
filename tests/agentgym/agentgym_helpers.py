"""Servers for the AgentGym-protocol tests: in a thread of the test process, or as a real
``agentbench serve-env`` subprocess (for the tests that kill it)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from agentbench import registry
from agentbench.agentgym.server import BackgroundServer
from agentbench.agentgym.service import EnvService, ServedEnv


def local_env_names() -> list[str]:
    """Every registered env that runs in-process (remote clients excluded), as the conformance
    suite picks them; unavailable ones are skipped by the tests themselves."""
    names = []
    for name, _dist, cls in registry.envs.describe():
        if isinstance(cls, Exception) or not hasattr(cls, "availability") or getattr(cls, "remote", False):
            continue
        names.append(name)
    return names


def skip_unavailable(name: str):
    cls = registry.envs.get(name)
    available = cls.availability()
    if not available.runnable:
        pytest.skip(f"{name} cannot run here: {available.detail}")
    return cls


@contextmanager
def thread_server(name: str, sets: tuple[str, ...] = (), **limits) -> Iterator[str]:
    service = EnvService(ServedEnv.from_registry(name, sets), **limits)
    with BackgroundServer(service) as url:
        yield url


class ServerProcess:
    """``agentbench serve-env`` in a subprocess; ``kill()`` is SIGKILL, as a crash would be."""

    def __init__(self, name: str, port: int = 0, extra: tuple[str, ...] = ()):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentbench", "serve-env", name, "--port", str(port), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if found is None:
            self.proc.kill()
            rest = self.proc.stdout.read() if self.proc.stdout else ""
            raise RuntimeError(f"serve-env did not start: {line}{rest}")
        self.port = int(found.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:  # the socket listens already; wait until uvicorn answers
            try:
                requests.get(self.url + "/", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("serve-env did not answer") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc.stdout:
            self.proc.stdout.close()
