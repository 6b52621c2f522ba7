"""Hardening of ``serve-env`` and the AgentGym client (issue 18, cases 10-13)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests
from typer.testing import CliRunner

from agentbench.agentgym.server import MAX_BODY_BYTES, BackgroundServer, is_loopback
from agentbench.agentgym.service import EnvService, ServedEnv
from agentbench.agentgym.transport import Transport
from agentbench.cli import app
from agentbench.envs.frozenlake import FrozenLake, FrozenLakeConfig
from agentbench.errors import EnvServerError

runner = CliRunner()


def _service() -> EnvService:
    return EnvService(ServedEnv(FrozenLake, FrozenLakeConfig(), "frozenlake"), max_sessions=4)


# -- 10: options validated ------------------------------------------------------------------
@pytest.mark.parametrize("args", [["--port", "99999"], ["--port", "-1"], ["--log-level", "loud"],
                                  ["--idle-timeout", "-5"], ["--idle-timeout", "0"], ["--max-sessions", "0"]])
def test_bad_serve_env_options_are_refused(args):
    result = runner.invoke(app, ["serve-env", "frozenlake", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


# -- 11: body and reply caps, malformed nesting ----------------------------------------------
@pytest.fixture(scope="module")
def lake():
    with BackgroundServer(_service()) as url:
        yield url


def test_a_huge_action_is_413_and_not_kept(lake):
    sid = requests.post(f"{lake}/create", json={}).json()["id"]
    requests.post(f"{lake}/reset", json={"id": sid, "data_idx": 0})
    reply = requests.post(f"{lake}/step", json={"id": sid, "action": "x" * (10 * MAX_BODY_BYTES)})
    assert reply.status_code == 413
    assert reply.json()["code"] == "too_large"
    assert len(reply.content) < 1000
    assert requests.post(f"{lake}/step", json={"id": sid, "action": "left"}).status_code == 200


def test_deep_nesting_is_400_not_500(lake):
    for raw in (b"[" * (MAX_BODY_BYTES - 10), b'{"id": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
        reply = requests.post(f"{lake}/step", data=raw, headers={"content-type": "application/json"})
        assert reply.status_code == 400, reply.text[:200]
        assert reply.json()["code"] == "bad_request"
    quoted = requests.post(f"{lake}/parse_action".replace("/parse_action", "/agentbench/parse_action"),
                           json={"response": "Action: " + "[" * 100})  # brackets in strings are text
    assert quoted.status_code == 200


def test_a_huge_observation_is_413(lake):
    from agentbench.agentgym.server import make_app

    with BackgroundServer(make_app(_service(), max_reply=10)) as url:
        reply = requests.post(f"{url}/create", json={})
        assert reply.status_code == 200  # {"id": 0} fits
        sid = reply.json()["id"]
        reply = requests.post(f"{url}/reset", json={"id": sid, "data_idx": 0})
        assert reply.status_code == 413 and reply.json()["code"] == "too_large"


# -- 12: a silent server: warnings on every retry, a short first contact ----------------------
def test_a_frozen_server_is_reported_quickly_with_warnings():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections (in the backlog), never answers: a stopped server
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    warnings: list[str] = []
    transport = Transport(url, timeout_s=60, retries=2, backoff_s=0.01, first_timeout_s=0.3, warn=warnings.append)
    started = time.monotonic()
    with pytest.raises(EnvServerError, match=r"did not answer GET /agentbench/info within 0.3 s \(3 tries\)"):
        transport.get("/agentbench/info")
    assert time.monotonic() - started < 5
    assert len(warnings) == 2 and all("try" in w and "no answer" in w for w in warnings)
    listener.close()


# -- 13: non-loopback binds warn; an optional token --------------------------------------------
def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_a_non_loopback_bind_prints_a_warning(monkeypatch):
    import agentbench.agentgym.server as server

    monkeypatch.setattr(server, "serve", lambda *a, **k: None)
    result = runner.invoke(app, ["serve-env", "frozenlake", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert "warning: listening on 0.0.0.0" in " ".join(result.output.split())
    assert "no authentication" in result.output
    quiet = runner.invoke(app, ["serve-env", "frozenlake", "--port", "0"])
    assert "warning" not in quiet.output


def test_a_token_is_checked_on_every_request(monkeypatch):
    from agentbench.envs.agentgym import AgentGymEnv

    with BackgroundServer(_service(), token="s3cret") as url:
        assert requests.get(f"{url}/agentbench/info").status_code == 401
        assert requests.post(f"{url}/create", json={}, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert requests.get(f"{url}/agentbench/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        env = AgentGymEnv.from_params({"variant": "frozenlake", "url": url, "token": "s3cret"})
        assert "token" not in env.config.model_dump()  # never recorded
        env.reset(env.tasks("test")[0])
        env.close()
        monkeypatch.setenv("AGENTBENCH_ENV_TOKEN", "s3cret")
        env = AgentGymEnv.from_params({"variant": "frozenlake", "url": url})
        assert env.tasks("test")
        env.close()
        monkeypatch.delenv("AGENTBENCH_ENV_TOKEN")
        with pytest.raises(Exception, match="token"):
            AgentGymEnv.from_params({"variant": "frozenlake", "url": url}).tasks("test")


def test_concurrent_requests_still_served(lake):
    errors = []

    def hit():
        try:
            assert requests.get(f"{lake}/agentbench/info").status_code == 200
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
