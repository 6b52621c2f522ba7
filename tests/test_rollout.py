"""The rollout engine, driven by a scripted policy (a test double of a backend: the real HF
backend is exercised in test_backend_hf.py and the end-to-end runs)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from agentbench.backends import Completion, SamplingParams
from agentbench.envs.frozenlake import FrozenLake
from agentbench.errors import EnvServerError
from agentbench.prompting import PromptBuilder, PromptConfig
from agentbench.rollout import EpisodeJob, RolloutEngine, RolloutLimits
from agentbench.trajectory import Termination


class ScriptedPolicy:
    """Answers every prompt with ``reply(prompt_messages)``; counts batch sizes."""

    name = "scripted"

    def __init__(self, reply, prompt_len: int = 10):
        self.reply = reply
        self.prompt_len = prompt_len
        self.batches: list[int] = []

    def generate(self, prompts: Sequence, params: SamplingParams) -> list[Completion]:
        self.batches.append(len(prompts))
        return [Completion(self.reply(p), self.prompt_len, 5, "stop") for p in prompts]

    def prompt_tokens(self, prompts):
        return [self.prompt_len * len(p) for p in prompts]

    def describe(self):
        return {}

    def close(self):
        pass


def _engine(policy, limits=RolloutLimits(max_turns=20), wave=4, make_env=FrozenLake):
    env = FrozenLake()
    prompts = PromptBuilder(env.instructions, PromptConfig(), FrozenLake.default_history_turns)
    return RolloutEngine(policy, make_env, prompts, SamplingParams(max_new_tokens=8), limits, wave_size=wave)


def _jobs(n: int) -> list[EpisodeJob]:
    return [EpisodeJob(t, 0) for t in FrozenLake().tasks("test")[:n]]


def test_expert_policy_succeeds_and_batches_all_live_episodes():
    oracle = FrozenLake()

    def reply(messages):  # replay the expert from the observation's task: map text -> move
        return "Action: " + _expert_for(messages[-1]["content"], oracle)

    policy = ScriptedPolicy(reply)
    records = _engine(policy, wave=4).run(_jobs(8))
    assert len(records) == 8
    assert all(r.success and r.termination is Termination.success for r in records)
    assert policy.batches[0] == 4 and max(policy.batches) == 4


def _expert_for(observation: str, oracle: FrozenLake) -> str:
    for task in oracle.tasks("test")[:8]:
        grid = "\n".join(" ".join(row) for row in task.spec["desc"])
        if _grid_without_player(observation) == _safe_tiles_blank(grid):
            return _step_expert(oracle, task, observation)
    raise AssertionError("unknown map")


def _grid_without_player(observation: str) -> str:
    lines = observation.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Map ("))
    return _safe_tiles_blank("\n".join(lines[start + 1 :]))


def _safe_tiles_blank(grid: str) -> str:
    """Holes and the goal identify a map; the player may stand on any safe tile."""
    return grid.replace("P", ".").replace("S", ".").replace("F", ".")


def _step_expert(oracle: FrozenLake, task, observation: str) -> str:
    oracle.reset(task)
    row_col = observation.split("You are at row ")[1].split(".")[0]
    row, col = (int(x.split()[-1]) - 1 for x in row_col.split(","))
    oracle._game.s = row * len(task.spec["desc"][0]) + col
    return oracle.expert_step().action


def test_garbage_is_counted_fed_back_and_ends_the_episode():
    policy = ScriptedPolicy(lambda m: "I refuse to answer in format")
    records = _engine(policy, RolloutLimits(max_turns=20, max_consecutive_invalid=3)).run(_jobs(2))
    for r in records:
        assert r.termination is Termination.invalid_action
        assert r.turns == r.invalid_actions == 3
        assert "no parsable action" in r.trajectory[1].observation


def test_illegal_action_is_invalid_but_the_episode_goes_on():
    replies = iter(["Action: fly", "Action: fly"] + ["Action: right"] * 100)
    policy = ScriptedPolicy(lambda m: next(replies))
    (record,) = _engine(policy, RolloutLimits(max_turns=4), wave=1).run(_jobs(1))
    assert record.invalid_actions == 2
    assert record.trajectory[2].valid
    assert "Invalid action 'fly'" in record.trajectory[1].observation


def test_turn_and_context_limits():
    policy = ScriptedPolicy(lambda m: "Action: up")  # bumps into the top edge forever
    (record,) = _engine(policy, RolloutLimits(max_turns=5), wave=1).run(_jobs(1))
    assert record.termination is Termination.turn_limit and record.turns == 5
    long_prompts = ScriptedPolicy(lambda m: "Action: up", prompt_len=10_000)
    (record,) = _engine(long_prompts, RolloutLimits(max_turns=5, max_prompt_tokens=4096), wave=1).run(_jobs(1))
    assert record.termination is Termination.context_limit and record.turns == 0


class _Exploding(FrozenLake):
    def step(self, action):
        raise RuntimeError("simulator crashed")


class _ServerDown(FrozenLake):
    def step(self, action):
        raise EnvServerError("env server at http://127.0.0.1:1 is down")


def test_env_errors_are_counted_but_a_dead_server_stops_the_run():
    policy = ScriptedPolicy(lambda m: "Action: down")
    records = _engine(policy, make_env=_Exploding).run(_jobs(3))
    assert [r.termination for r in records] == [Termination.env_error] * 3
    assert "simulator crashed" in records[0].error
    with pytest.raises(EnvServerError):
        _engine(policy, make_env=_ServerDown).run(_jobs(3))


def test_waves_skip_finished_work():
    policy = ScriptedPolicy(lambda m: "Action: up")
    engine = _engine(policy, RolloutLimits(max_turns=2), wave=2)
    jobs = _jobs(6)
    records = engine.run(jobs, skip={j.key for j in jobs[:2]} | {jobs[2].key})
    # the first wave is done and skipped; the half-done second wave reruns whole
    assert [r.task_id for r in records] == [j.task.id for j in jobs[2:]]


def test_env_workers_step_a_wave_concurrently_and_change_nothing():
    """limits.env_workers > 1 steps the live episodes of a wave in threads: the same episodes."""
    import random

    moves = ["left", "right", "up", "down"]

    def reply(messages):  # a reply fixed by the prompt, whatever the order of calls
        return "Action: " + random.Random(str(messages)).choice(moves)

    one = _engine(ScriptedPolicy(reply), RolloutLimits(max_turns=6)).run(_jobs(8))
    four = _engine(ScriptedPolicy(reply), RolloutLimits(max_turns=6, env_workers=4)).run(_jobs(8))
    assert [r.trajectory_sha256 for r in one] == [r.trajectory_sha256 for r in four]
    assert len({r.trajectory_sha256 for r in one}) > 1


def test_an_env_bound_to_one_thread_refuses_env_workers():
    """webarena-lite (Playwright's sync API) and tau-bench (customers sharing one model) declare
    concurrent_steps = False: env_workers > 1 is refused when the run is resolved, and by the
    engine for a library caller, before any step."""
    from agentbench.errors import ConfigError
    from agentbench.spec import resolve_spec

    for env in ("webarena-lite", "tau-bench"):
        with pytest.raises(ConfigError, match=f"env {env}'s steps cannot run concurrently"):
            resolve_spec(method="none", env=env, protocol="in-domain", model="tiny", backend="hf",
                         budget="smoke", seed=0, sets=["limits.env_workers=2"])

    class ThreadBound(FrozenLake):
        concurrent_steps = False

        def step(self, action):  # pragma: no cover - must not be reached
            raise AssertionError("stepped")

    engine = _engine(ScriptedPolicy(lambda m: "Action: left"), RolloutLimits(env_workers=2), make_env=ThreadBound)
    with pytest.raises(ConfigError, match="steps cannot run concurrently"):
        engine.run(_jobs(2))
