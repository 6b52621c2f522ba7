"""The ``agentgym`` client against imitations of AgentGym's original servers' JSON shapes
(``fake_agentgym.py``: a fake of the remote schemas, since the real servers cannot run here)."""

from __future__ import annotations

import json

import pytest
from agentgym_helpers import thread_server
from fake_agentgym import FLAVOURS, make_fake

from agentbench.agentgym.originals import parse_index_ranges, read_answer
from agentbench.agentgym.server import BackgroundServer
from agentbench.env import NoExpert, make_config
from agentbench.envs.agentgym import AgentGymEnv, WebShop
from agentbench.errors import ConfigError, EnvServerError, EnvUnavailableError, RemoteEnvError
from agentbench.expert import collect_expert


@pytest.fixture
def fake(request):
    flavour, *flaky = request.param if isinstance(request.param, tuple) else (request.param,)
    app = make_fake(flavour, *flaky)
    with BackgroundServer(app) as url:
        yield flavour, url, app.state.calls


def client(flavour: str, url: str, **options) -> AgentGymEnv:
    params = {"variant": flavour, "url": url, "test_idx": "3:5", "train_idx": "0:2", "retries": 2, **options}
    return AgentGymEnv(make_config(AgentGymEnv.Config, params, "test"))


@pytest.mark.parametrize("fake", FLAVOURS, indirect=True)
def test_every_flavour_plays_an_episode(fake):
    flavour, url, calls = fake
    env = client(flavour, url)
    assert env.version == "agentgym" and not env.supports_snapshot
    tasks = env.tasks("test")
    assert [(t.id, t.spec) for t in tasks] == [(f"{flavour}_3", {"data_idx": 3}), (f"{flavour}_4", {"data_idx": 4})]
    first = env.reset(tasks[1])
    expected = {"sciworld": "Your task is to win.\nTask 4. A button says win.",
                "alfworld": "Task 4. A button says win.\nAVAILABLE ACTIONS: win,look"}
    assert first == expected.get(flavour, "Task 4. A button says win.")
    looked = env.step("look")
    assert looked.observation.startswith("You did look (step 1).")
    assert (looked.reward, looked.done, looked.info.success, looked.info.progress) == (0.0, False, False, 0.0)
    won = env.step("win")
    assert won.done and won.info.success and won.info.progress == 1.0
    assert won.reward == (100.0 if flavour == "sciworld" else 1.0)
    env.close()
    if flavour == "webshop":
        assert calls["observation"] == 1  # WebShop's reset answers [obs, null]: the client asked for it
        assert calls["close"] == 1


@pytest.mark.parametrize("fake", ["babyai", "sciworld"], indirect=True)
def test_partial_scores_are_progress_not_success(fake):
    flavour, url, _ = fake
    env = client(flavour, url)
    env.reset(env.tasks("train")[0])
    half = env.step("half")
    assert (half.info.progress, half.info.success, half.done) == (0.5, False, False)
    assert half.info.extra["score"] == (50.0 if flavour == "sciworld" else 0.5)
    both = env.step("half")
    assert both.info.success and both.done  # the full score is success, as AgentGym counts it


@pytest.mark.parametrize("fake", ["webshop"], indirect=True)
def test_webshop_alias_and_available_actions(fake):
    _, url, _ = fake
    env = WebShop(make_config(WebShop.Config, {"url": url, "test_idx": "0:3"}, "webshop"))
    assert env.name == "webshop" and "search[keywords]" in env.instructions
    env.reset(env.tasks("test")[2])
    assert env.admissible_actions() == ["search[<keywords>]", "click[item a]", "click[item b]"]
    with pytest.raises(RemoteEnvError, match="HTTP 500"):
        env.step("crash")


@pytest.mark.parametrize("fake", ["alfworld", "babyai"], indirect=True)
def test_errors_sent_as_http_200_bodies(fake):
    flavour, url, _ = fake
    env = client(flavour, url)
    env.reset(env.tasks("test")[0])
    with pytest.raises(RemoteEnvError, match="something broke in the simulator"):
        env.step("crash")
    assert env.step("win").info.success  # the episode could go on
    env._remote._session = 999  # as if the server had restarted and forgotten us
    with pytest.raises(EnvServerError, match=r"lost our session.*The id 999 is not valid"):
        env.step("look")


@pytest.mark.parametrize("fake", [("webshop", 2)], indirect=True)
def test_idempotent_reads_are_retried(fake):
    _, url, calls = fake
    env = client("webshop", url)
    assert env.reset(env.tasks("test")[0]).startswith("Task 3")
    assert calls["observation"] == 3  # two 503s, then the answer


@pytest.mark.parametrize("fake", [("babyai", 0, 1)], indirect=True)
def test_steps_are_never_retried(fake):
    _, url, calls = fake
    env = client("babyai", url)
    env.reset(env.tasks("test")[0])
    with pytest.raises(EnvServerError, match="answered POST /step with HTTP 503: upstream busy"):
        env.step("look")
    assert calls["step"] == 1


@pytest.mark.parametrize("fake", ["babyai"], indirect=True)
def test_timeouts(fake):
    _, url, calls = fake
    env = client("babyai", url, timeout_s=0.3)
    env.reset(env.tasks("test")[0])
    with pytest.raises(EnvServerError, match=r"did not answer POST /step within 0.3 s$"):
        env.step("slow")
    assert calls["step"] == 1


@pytest.mark.parametrize("fake", ["alfworld"], indirect=True)
def test_expert_from_agentgym_trajectories(fake, tmp_path):
    _, url, _ = fake
    env = client("alfworld", url)
    env.reset(env.tasks("train")[0])
    with pytest.raises(NoExpert, match="expert_trajectories=FILE"):
        env.expert_step()
    conversation = [
        {"from": "human", "loss": None, "value": "Interact with a household..."},
        {"from": "gpt", "loss": False, "value": "OK. I'll follow your instructions."},
        {"from": "human", "loss": None, "value": "Task 0."},
        {"from": "gpt", "loss": True, "value": "Thought:\nLook first.\n\nAction:\nlook"},
        {"from": "human", "loss": None, "value": "You did look."},
        {"from": "gpt", "loss": True, "value": "Thought:\nNow press it.\n\nAction:\nwin"},
    ]
    path = tmp_path / "alfworld_train.json"
    path.write_text(json.dumps([{"item_id": "alfworld_0", "conversations": conversation},
                                {"item_id": "alfworld_1", "conversations": conversation[:4]}]))
    env = client("alfworld", url, expert_trajectories=str(path))
    data = collect_expert(lambda: client("alfworld", url, expert_trajectories=str(path)), env.tasks("train"), 10)
    assert [s.action for s in data.steps] == ["look", "win"] and data.steps[1].thought == "Now press it."
    assert data.failed_tasks == ["alfworld_1"]  # its trajectory stops before success
    env.reset(env.tasks("train")[0])
    env.step("win")  # off the recorded path
    with pytest.raises(NoExpert, match="left its recorded expert trajectory"):
        env.expert_step()


@pytest.mark.parametrize("fake", ["babyai"], indirect=True)
def test_splits_need_ranges(fake):
    _, url, _ = fake
    env = client("babyai", url)
    with pytest.raises(ConfigError, match="--set ood_idx=START:STOP"):
        env.tasks("ood")
    with pytest.raises(ConfigError, match="data_idx 3 is in both train_idx and test_idx"):
        make_config(AgentGymEnv.Config, {"url": url, "train_idx": "0:4", "test_idx": "3:5"}, "env agentgym")
    with pytest.raises(ConfigError, match=r"test_idx.*'a:b' is not START:STOP"):
        make_config(AgentGymEnv.Config, {"url": url, "test_idx": "a:b"}, "env agentgym")


def test_read_answer_shapes():
    assert read_answer(["obs", None]).observation == "obs"
    gym = read_answer(["obs", 0.5, True, False, {}])
    assert (gym.observation, gym.reward, gym.done) == ("obs", 0.5, True)
    assert read_answer({"state": "s", "reward": None, "truncated": True}).done
    assert read_answer({"observation": "o", "score": 40}).score == 40.0
    assert parse_index_ranges("0:3, 7,2:4") == [0, 1, 2, 7, 3]


def test_unreachable_server_is_one_clear_line():
    with thread_server("frozenlake") as url:
        pass  # the server is gone again: its port refuses connections
    with pytest.raises(EnvServerError) as caught:
        AgentGymEnv(AgentGymEnv.Config(variant="frozenlake", url=url, retries=1))
    message = str(caught.value)
    assert url in message and "unreachable (connection refused)" in message and "is it running?" in message
    assert "\n" not in message
    with pytest.raises(EnvUnavailableError, match="--set url=http://HOST:PORT"):
        AgentGymEnv(AgentGymEnv.Config(variant="frozenlake"))
    with pytest.raises(ConfigError, match="url must look like http://HOST:PORT"):
        AgentGymEnv(AgentGymEnv.Config(variant="frozenlake", url="localhost:8000"))
