"""tau-bench: safe dispatch, τ²-bench's reward, snapshots, the user simulator's prompt, a CI eval."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest

from agentbench.env import task_set_sha256
from agentbench.envs.tau_bench import TauBench
from agentbench.envs.tau_bench.env import CLOSING_MESSAGE, gold_replay
from agentbench.envs.tau_bench.tools import call_text
from agentbench.envs.tau_bench.user import STOP, LLMUser, system_prompt, user_chat

pytestmark = pytest.mark.skipif(not TauBench.availability().runnable, reason="tau2 data wheels not installed")


@pytest.fixture
def env():
    with TauBench.from_params({"user": "scripted"}) as e:
        yield e


def _task(env, domain_id: str):
    split = "ood" if domain_id.startswith("airline") else None
    tasks = env.tasks(split) if split else [*env.tasks("train"), *env.tasks("test")]
    return next(t for t in tasks if t.id == domain_id)


def _play_expert(env, task, replace=None):
    """The expert's episode; ``replace(action) -> action`` may alter the expert's actions."""
    env.reset(task)
    for _ in range(80):
        action = env.expert_step().action
        step = env.step(replace(action) if replace else action)
        if step.done:
            return step
    raise AssertionError("the expert did not finish")


EVIL = [
    "__import__('os').system('touch /tmp/tau_pwned')",
    "eval('1+1')",
    "exec('x=1')",
    "open('/etc/passwd')",
    "get_user_details.__globals__",
    "get_user_details(user_id=__import__('os').getcwd())",
    "get_user_details(user_id='a' + 'b')",
    "get_user_details(**{'user_id': 'x'})",
    "ls()",  # a BFCL tool, not a retail one
    "book_reservation(user_id='x')",  # an airline tool in a retail episode
    "_need(db, 'users', 'x', 'User')",
    "get_user_details(user_id=1)",  # wrong argument type
    "get_user_details(nonexistent='x')",
    "get_user_details(user_id='a'); get_order_details(order_id='b')",  # one call per action
]


@pytest.mark.parametrize("action", EVIL)
def test_dispatch_refuses_anything_outside_the_domain_tools(env, action, monkeypatch):
    task = env.tasks("test")[0]
    env.reset(task)
    before = env.snapshot().db.sha256()

    def forbidden(*_a, **_k):
        raise AssertionError("model text was evaluated")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    step = env.step(action)
    assert not step.info.valid and not step.done
    assert step.observation.startswith("Invalid action")
    assert env.snapshot().db.sha256() == before
    assert not Path("/tmp/tau_pwned").exists()


def test_calculate_does_arithmetic_without_eval(env, monkeypatch):
    env.reset(env.tasks("test")[0])
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: (_ for _ in ()).throw(AssertionError("eval")))
    assert env.step("calculate(expression='(2 + 3) * 4 / 8')").observation.endswith("returned: 2.5")
    assert "Error" in env.step("calculate(expression='2 ** 1000')").observation


def test_gold_actions_reach_reward_one(env):
    for task_id in ("retail-0", "retail-5", "airline-0"):
        step = _play_expert(env, _task(env, task_id))
        assert step.reward == 1.0 and step.info.success
        assert step.info.extra["db_match"] and step.info.extra["communicate_match"]


def test_a_wrong_database_change_scores_zero(env):
    task = _task(env, "retail-0")

    def extra_write(action):
        if action.startswith("respond Is there anything else"):
            return "modify_user_address(user_id='yusuf_rossi_9620', address1='1 Main St', address2='', city='X', state='CA', country='USA', zip='00000')"
        return action

    env.reset(task)
    for _ in range(80):
        action = env.expert_step().action
        step = env.step(extra_write(action))
        if action != extra_write(action):
            break
    step = env.step(f"respond {CLOSING_MESSAGE}")
    assert step.done and step.reward == 0.0
    assert step.info.extra["db_match"] is False and step.info.extra["communicate_match"] is True


def test_missing_information_scores_zero(env):
    task = next(t for t in env.tasks("train") if _communicates(t))
    step = _play_expert(env, task, lambda a: f"respond {CLOSING_MESSAGE}" if a.startswith("respond Here is") else a)
    assert step.reward == 0.0
    assert step.info.extra["db_match"] is True and step.info.extra["missing_info"]


def _communicates(task) -> bool:
    from agentbench.envs.tau_bench.data import load_domain

    raw = load_domain(task.spec["domain"]).tasks[task.spec["task_id"]]
    return bool(raw["evaluation_criteria"]["communicate_info"])


def test_snapshot_restore_round_trips_the_database(env):
    task = _task(env, "retail-0")
    env.reset(task)
    for _ in range(4):
        env.step(env.expert_step().action)
    snap = env.snapshot()
    before = snap.db.sha256()
    step = env.step("cancel_pending_order(order_id='#W4776164', reason='no longer needed')")
    assert "Error" in step.observation or env.snapshot().db.sha256() != before
    env.step("modify_user_address(user_id='yusuf_rossi_9620', address1='a', address2='', city='c', state='s', country='USA', zip='1')")
    assert env.snapshot().db.sha256() != before
    env.restore(snap)
    assert env.snapshot().db.sha256() == before
    # the published database itself is never changed
    assert gold_replay("retail", "0")[0] == gold_replay("retail", "0")[0]


def test_user_prompt_has_the_scenario_and_never_the_gold(env):
    from agentbench.envs.tau_bench.data import load_domain

    for domain in ("retail", "airline"):
        for raw in load_domain(domain).tasks.values():
            prompt = system_prompt(raw["user_scenario"])
            instructions = raw["user_scenario"]["instructions"]
            assert instructions["reason_for_call"] in prompt and instructions["known_info"] in prompt
            assert STOP in prompt
            for action in raw["evaluation_criteria"]["actions"] or []:
                assert action["name"] not in prompt
                assert call_text(action["name"], action["arguments"]) not in prompt


class _FakeBackend:
    def __init__(self, replies):
        self.replies, self.seen = list(replies), []

    def generate(self, chats, params):
        from agentbench.backends import Completion

        self.seen.extend(chats)
        return [Completion(self.replies.pop(0), 10, 5, "stop") for _ in chats]


def test_llm_user_sees_the_scenario_and_ends_with_the_stop_token():
    env = TauBench.from_params({"user": "llm", "user_model": "some-model"})
    fake = _FakeBackend(["Hi, I need to exchange a keyboard.", f"Thanks, bye! {STOP}"])
    env._user = LLMUser(lambda: fake, env.user_record(), 0.0, 1.0, 64)
    task = _task(env, "retail-0")
    first = env.reset(task)
    assert "Customer: Hi, I need to exchange a keyboard." in first
    step = env.step("respond Could I have your name and zip code?")
    assert step.done and step.info.extra["ended_by"] == "user_stop"
    system = fake.seen[0][0]["content"]
    assert "Yusuf Rossi" in system and "exchange_delivered_order_items" not in json.dumps(fake.seen)
    # the agent's messages are the user model's "user" turns
    assert fake.seen[1][-1] == {"role": "user", "content": "Could I have your name and zip code?"}
    assert user_chat({"instructions": "x"}, [("agent", "hello")])[1]["role"] == "user"


def test_user_settings_separate_the_evaluations():
    scripted = TauBench.from_params({"user": "scripted"}).tasks("test")
    llm = TauBench.from_params({"user": "llm"}).tasks("test")
    hotter = TauBench.from_params({"user": "llm", "user_temperature": 0.7}).tasks("test")
    assert len({task_set_sha256(scripted), task_set_sha256(llm), task_set_sha256(hotter)}) == 3
    assert scripted[0].spec["data"]["sha256"]["db.json"]
    assert len(scripted) == 40 and len(TauBench.from_params({"user": "scripted"}).tasks("train")) == 74
    assert len(TauBench.from_params({"user": "scripted"}).tasks("ood")) == 50


def test_every_gold_replay_reaches_reward_one(env):
    from agentbench import conformance

    for split in ("train", "test", "ood"):
        found = conformance.expert_rate(env, split, 500)
        assert found.failed == [], split


def test_eval_runs_with_the_scripted_user_and_tiny_model(tmp_path, tiny_model):
    from typer.testing import CliRunner

    from agentbench.cli import app

    result = CliRunner().invoke(app, ["eval", "--env", "tau-bench", "--set", "user=scripted", "--model", "tiny",
                                      "--set", "budget.eval_tasks=2", "--set", "max_turns=3", "--quiet",
                                      "--set", "budget.forgetting=false", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    result_file = next(tmp_path.glob("*/result.json"))
    env_result = json.loads(result_file.read_text())["envs"][0]
    assert env_result["name"] == "tau-bench" and env_result["n_episodes"]["completed"] == 2


def test_compact_first_observation(env):
    compact = TauBench.from_params({"user": "scripted", "policy": False, "tool_docs": "signatures"})
    task = compact.tasks("test")[0]
    short, full = compact.reset(task), env.reset(task)
    assert "Policy:" in full and "Policy:" not in short and len(short) < len(full) / 4
    assert "get_order_details(order_id)" in short
