"""Every env step has a time limit (issue 18, case 14), and BFCL refuses the costly calls it
can recognise before running them."""

from __future__ import annotations

import time
from typing import ClassVar

import pytest

from agentbench.env import BaseEnv, Step, StepInfo, Task
from agentbench.timelimit import StepTimeout


class Slow(BaseEnv):
    name: ClassVar[str] = "slow"
    step_time_limit_s: ClassVar[float | None] = 0.3

    @property
    def instructions(self) -> str:
        return ""

    def tasks(self, split):
        return [Task("t", split)]

    def reset(self, task, seed=0):
        return "start"

    def step(self, action):
        if action == "hang":
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:  # Python code: the limit abandons it
                pass
        if action == "boom":
            raise ValueError("boom")
        return Step("ok", 0.0, False, StepInfo())


def test_a_step_past_its_limit_raises_and_the_env_says_it_is_busy():
    env = Slow()
    assert env.step("fine").observation == "ok"
    started = time.monotonic()
    with pytest.raises(StepTimeout, match=r"time limit of 0\.3 s"):
        env.step("hang")
    assert time.monotonic() - started < 0.9
    with pytest.raises(StepTimeout, match="still busy"):
        env.step("fine")
    time.sleep(1.0)
    assert env.step("fine").observation == "ok"  # the abandoned step returned
    with pytest.raises(ValueError, match="boom"):
        env.step("boom")  # the step's own errors pass through unchanged


def test_the_limit_can_be_changed_or_turned_off(monkeypatch):
    monkeypatch.setenv("AGENTBENCH_STEP_TIME_LIMIT_S", "0")
    started = time.monotonic()
    assert Slow().step("hang").observation == "ok"
    assert time.monotonic() - started >= 1.0


def test_expert_collection_counts_a_timed_out_step_and_goes_on_with_a_fresh_env():
    """A step past its limit during expert collection (tau-bench's LLM customer on a loaded CPU
    did this) fails that task only: listed in env_errors, and the next task gets a fresh env."""
    from agentbench.env import ExpertStep
    from agentbench.expert import collect_expert

    class Scripted(Slow):
        def tasks(self, split):
            return [Task(name, split) for name in ("a", "hangs", "c")]

        def reset(self, task, seed=0):
            self.task = task
            return "start"

        def expert_step(self):
            return ExpertStep("hang" if self.task.id == "hangs" else "win")

        def step(self, action):
            if action == "win":
                return Step("won", 1.0, True, StepInfo(success=True))
            return super().step(action)

    made = []

    def make_env():
        made.append(Scripted())
        return made[-1]

    data = collect_expert(make_env, Scripted().tasks("train"), max_turns=3)
    assert [t.id for t in data.tasks] == ["a", "c"] and data.failed_tasks == ["hangs"]
    assert len(data.env_errors) == 1 and data.env_errors[0].startswith("hangs: StepTimeout: ")
    assert len(made) == 2  # the busy env was left behind
    assert {s.task_id for s in data.steps} == {"a", "c"}


def test_a_timed_out_step_is_an_env_error_episode_and_counted(tiny_model):
    from agentbench.backends import BackendOptions, SamplingParams, make_backend
    from agentbench.prompting import PromptBuilder, PromptConfig
    from agentbench.rollout import EpisodeJob, RolloutEngine, RolloutLimits
    from agentbench.trajectory import Termination

    class Hangs(Slow):
        def parse_action(self, response):
            return "hang"

    backend = make_backend("hf", tiny_model, BackendOptions())
    try:
        engine = RolloutEngine(backend, Hangs, PromptBuilder("", PromptConfig(), None),
                               SamplingParams(max_new_tokens=2), RolloutLimits(max_turns=2), wave_size=2,
                               env_name="slow")
        records = engine.run([EpisodeJob(Task("t", "test"), 0)])
    finally:
        backend.close()
    assert [r.termination for r in records] == [Termination.env_error]


@pytest.fixture
def bfcl_math():
    from agentbench.envs.bfcl import apis

    return apis


@pytest.mark.parametrize("name, arguments", [
    ("logarithm", {"value": 5, "base": 2, "precision": 1e7}),
    ("logarithm", {"value": 5, "base": 2, "precision": 10**7}),
    ("square_root", {"number": 2, "precision": float("inf")}),
    ("round_number", {"number": 5, "decimal_places": -1000000000000000000}),
    ("round_number", {"number": 5, "decimal_places": 10**9}),
    ("power", {"base": 10, "exponent": 10**9}),
])
def test_bfcl_refuses_costly_arguments(bfcl_math, name, arguments):
    assert bfcl_math._too_costly(name, arguments)


@pytest.mark.parametrize("name, arguments", [
    ("logarithm", {"value": 5, "base": 2, "precision": 10}),
    ("round_number", {"number": 5.123, "decimal_places": 2}),
    ("round_number", {"number": 512, "decimal_places": -2}),
    ("power", {"base": 2.0, "exponent": 0.5}),
])
def test_bfcl_runs_ordinary_arguments(bfcl_math, name, arguments):
    assert bfcl_math._too_costly(name, arguments) is None
