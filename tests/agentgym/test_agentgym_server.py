"""``serve-env``'s HTTP API as AgentGym's clients call it, its agentbench extras, and its errors:
unknown ids, bad bodies, a full session table, an env that raises."""

from __future__ import annotations

from typing import ClassVar

import pytest
import requests

from agentbench.agentgym.server import BackgroundServer
from agentbench.agentgym.service import EnvService, ServedEnv
from agentbench.env import BaseEnv, EnvConfig, Step, StepInfo, Task
from agentbench.envs.agentgym import AgentGymEnv
from agentbench.envs.frozenlake import FrozenLake, FrozenLakeConfig
from agentbench.errors import ConfigError, EnvServerError, RemoteEnvError

SMALL = FrozenLakeConfig(n_train=20, n_test=10, n_ood=5)


class Fragile(BaseEnv):
    """A test env (not registered) whose step raises on 'explode'; it cannot snapshot."""

    name: ClassVar[str] = "fragile"
    Config = EnvConfig

    @property
    def instructions(self) -> str:
        return "Say anything; 'explode' breaks the env."

    def tasks(self, split):
        return [Task(f"{split}-{i}", split, {"i": i}) for i in range(3)]

    def reset(self, task, seed=0):
        self.count = 0
        return f"start {task.id}"

    def step(self, action):
        if action == "explode":
            raise ValueError("kaboom\nwith a second line")
        self.count += 1
        return Step(f"heard {action!r} ({self.count})", 0.0, False, StepInfo())


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def lake():
    service = EnvService(ServedEnv(FrozenLake, SMALL, "frozenlake"), max_sessions=8)
    with BackgroundServer(service) as url:
        yield url


def post(url, path, body=None, raw=None):
    reply = requests.post(url + path, json=body, data=raw, timeout=10)
    return reply.status_code, reply.json()


def get(url, path, **params):
    reply = requests.get(url + path, params=params, timeout=10)
    return reply.status_code, reply.json()


def test_agentgym_client_calls(lake):
    """The calls AgentGym's BabyAI/SciWorld/TextCraft clients make, and the shapes they read."""
    local = FrozenLake(SMALL)
    status, info = get(lake, "/agentbench/info")
    assert status == 200 and info["env"]["name"] == "frozenlake"
    offset = info["splits"]["test"]["data_idx_offset"]
    assert offset == 20 and info["splits"]["ood"]["data_idx_offset"] == 30

    status, created = post(lake, "/create")
    assert status == 200 and isinstance(created["id"], int)
    sid = created["id"]
    status, reset = post(lake, "/reset", {"id": sid, "data_idx": offset + 2})
    task = local.tasks("test")[2]
    assert status == 200 and reset["observation"] == local.reset(task) and reset["task_id"] == task.id
    assert reset["available_actions"] == local.admissible_actions()

    move = local.expert_step().action
    status, step = post(lake, "/step", {"id": sid, "action": move})
    expected = local.step(move)
    assert status == 200
    assert (step["observation"], step["state"], step["reward"], step["done"]) == (
        expected.observation, expected.observation, expected.reward, expected.done)
    assert step["info"]["valid"] is True and step["score"] == expected.reward
    assert get(lake, "/observation", id=sid) == (200, expected.observation)
    assert get(lake, "/available_actions", id=sid) == (200, ["left", "down", "right", "up"])
    status, detail = get(lake, "/detail", id=sid)
    assert detail["turns"] == 1 and detail["task_id"] == task.id
    assert sid in get(lake, "/list_envs")[1]
    assert post(lake, "/close", {"id": sid}) == (200, {"closed": True})
    assert post(lake, "/close", {"id": sid}) == (200, {"closed": False})


def test_webshop_and_alfworld_field_names(lake):
    """WebShop's clients send env_idx and session_id; ALFWorld's send game (and world_type)."""
    local = FrozenLake(SMALL)
    sid = post(lake, "/create")[1]["id"]
    status, reset = post(lake, "/reset", {"env_idx": sid, "session_id": 0})
    assert status == 200 and reset["observation"] == local.reset(local.tasks("train")[0])
    status, reset = post(lake, "/reset", {"id": sid, "game": 21, "world_type": "Text"})
    assert status == 200 and reset["task_id"] == local.tasks("test")[1].id
    status, step = post(lake, "/step", {"env_idx": sid, "action": "up"})
    assert status == 200 and "observation" in step
    assert get(lake, "/observation", env_idx=sid)[0] == 200
    assert post(lake, "/close", {"env_idx": sid}) == (200, {"closed": True})


@pytest.mark.parametrize(("path", "body", "raw", "code", "words"), [
    ("/step", {"id": 12345, "action": "up"}, None, "unknown_session", "no live session 12345"),
    ("/step", None, b"{not json", "bad_request", "not JSON"),
    ("/step", None, b"[1, 2]", "bad_request", "JSON object"),
    ("/step", {"id": 0}, None, "bad_request", "action"),
    ("/step", {"id": 0, "action": 5}, None, "bad_request", "action"),
    ("/reset", {"id": 0}, None, "bad_request", "data_idx"),
    ("/reset", {"id": 0, "data_idx": 10_000}, None, "unknown_task", "out of range"),
    ("/reset", {"id": 0, "split": "test", "task_id": "nope"}, None, "unknown_task", "nope"),
    ("/agentbench/restore", {"id": 0, "snapshot": "0.999"}, None, "unknown_snapshot", "0.999"),
])
def test_bad_requests_get_json_errors(lake, path, body, raw, code, words):
    sid = post(lake, "/create")[1]["id"]
    if isinstance(body, dict) and body.get("id") == 0:
        body["id"] = sid
    reply = requests.post(lake + path, json=body, data=raw, timeout=10)
    assert reply.status_code in (400, 404)
    assert reply.json()["code"] == code and words in reply.json()["error"]
    post(lake, "/close", {"id": sid})


def test_other_errors(lake):
    assert requests.get(lake + "/nowhere", timeout=10).json() == {"error": "no endpoint GET /nowhere",
                                                                  "code": "not_found"}
    assert requests.get(lake + "/observation", timeout=10).json()["code"] == "bad_request"
    assert requests.get(lake + "/observation?id=abc", timeout=10).json()["code"] == "bad_request"
    sid = post(lake, "/create")[1]["id"]
    status, body = post(lake, "/step", {"id": sid, "action": "up"})
    assert status == 409 and body["code"] == "not_reset"
    status, body = get(lake, "/agentbench/tasks", split="nonsense")
    assert status == 404 and "nonsense" in body["error"]
    post(lake, "/close", {"id": sid})


def test_garbage_actions_do_not_hurt(lake):
    sid = post(lake, "/create")[1]["id"]
    post(lake, "/reset", {"id": sid, "data_idx": 20})
    for garbage in ["", "💥" * 50, "x" * 5000, "\x00\n\t", '{"json": "inside"}']:
        status, step = post(lake, "/step", {"id": sid, "action": garbage})
        assert status == 200 and step["info"]["valid"] is False and step["done"] is False
    post(lake, "/close", {"id": sid})


def test_session_limit_and_idle_eviction():
    clock = FakeClock()
    service = EnvService(ServedEnv(FrozenLake, SMALL, "frozenlake"), max_sessions=2, idle_timeout_s=60,
                         clock=clock)
    with BackgroundServer(service) as url:
        first, second = post(url, "/create")[1]["id"], post(url, "/create")[1]["id"]
        status, body = post(url, "/create")
        assert status == 503 and body["code"] == "too_many_sessions" and "--max-sessions" in body["error"]
        post(url, "/close", {"id": second})
        second = post(url, "/create")[1]["id"]
        post(url, "/reset", {"id": second, "data_idx": 0})  # second is used now; first idles
        clock.now += 61
        post(url, "/reset", {"id": second, "data_idx": 0})
        status, third = post(url, "/create")
        assert status == 200  # the idle one made room
        assert post(url, "/step", {"id": first, "action": "up"})[1]["code"] == "unknown_session"
        assert post(url, "/step", {"id": second, "action": "up"})[0] == 200
        assert sorted(get(url, "/list_envs")[1]) == sorted([second, third["id"]])

        # the client env says so in one line
        client = AgentGymEnv(AgentGymEnv.Config(variant="frozenlake", url=url))
        with pytest.raises(EnvServerError, match="--max-sessions") as caught:
            client.reset(client.tasks("test")[0])
        assert "\n" not in str(caught.value)


def test_an_env_that_raises_does_not_take_the_server_down():
    service = EnvService(ServedEnv(Fragile, EnvConfig(), "fragile"))
    with BackgroundServer(service) as url:
        sid = post(url, "/create")[1]["id"]
        post(url, "/reset", {"id": sid, "data_idx": 0})
        status, body = post(url, "/step", {"id": sid, "action": "explode"})
        assert status == 500 and body["code"] == "env_error"
        assert body["error"] == "the env raised during step: ValueError: kaboom with a second line"
        status, body = post(url, "/step", {"id": sid, "action": "hello"})
        assert status == 200 and body["observation"] == "heard 'hello' (1)"  # the session goes on
        status, body = post(url, "/agentbench/snapshot", {"id": sid})
        assert status == 501 and body["code"] == "unsupported"
        status, body = get(url, "/agentbench/expert_step", id=sid)
        assert status == 409 and body["code"] == "no_expert"

        client = AgentGymEnv(AgentGymEnv.Config(url=url))
        assert client.supports_snapshot is False and client.instructions == Fragile().instructions
        client.reset(client.tasks("ood")[1])
        with pytest.raises(RemoteEnvError, match="kaboom"):
            client.step("explode")
        assert client.step("again").observation == "heard 'again' (1)"
        client.close()


def test_client_refuses_a_server_of_another_env(lake):
    with pytest.raises(ConfigError, match=r"serves 'frozenlake', not 'sokoban'.*agentgym:frozenlake"):
        AgentGymEnv(AgentGymEnv.Config(variant="sokoban", url=lake))
