"""Unit tests of the small core pieces: parsing, prompts, config routing, statistics, logs."""

from __future__ import annotations

import json

import pytest

from agentbench.budgets import Budget
from agentbench.env import Task, parse_react_action, task_set_sha256
from agentbench.errors import ConfigError, CorruptFileError, UnknownNameError
from agentbench.evaluation import EpisodeLog
from agentbench.prompting import Exchange, PromptBuilder, PromptConfig
from agentbench.results import RunResult
from agentbench.spec import parse_sets
from agentbench.stats import cluster_bootstrap_interval, wilson_interval
from agentbench.trajectory import EpisodeRecord, Termination, TokenCount


@pytest.mark.parametrize(
    ("response", "action"),
    [
        ("Thought: go\nAction: down", "down"),
        ("Action: left\nThought: no wait\nAction: right", "right"),
        ("action:   `up`.", "up"),
        ("**Action**: click [12]", "click [12]"),
        ("I will go down", None),
        ("Action:", None),
        ("", None),
    ],
)
def test_parse_react_action(response, action):
    assert parse_react_action(response) == action


def test_task_set_hash_covers_ids_specs_and_order():
    a, b = Task("1", "test", {"x": 1}), Task("2", "test", {"x": 2})
    assert task_set_sha256([a, b]) != task_set_sha256([b, a])
    assert task_set_sha256([a]) != task_set_sha256([Task("1", "test", {"x": 9})])
    assert task_set_sha256([a, b]) == task_set_sha256([Task("1", "test", {"x": 1}), Task("2", "test", {"x": 2})])


def test_prompt_history_window():
    history = [Exchange(f"obs{i}", f"Action: a{i}") for i in range(5)]
    full = PromptBuilder("rules", PromptConfig(), None).messages(history, "now")
    assert [m["role"] for m in full] == ["system"] + ["user", "assistant"] * 5 + ["user"]
    two = PromptBuilder("rules", PromptConfig(), 2).messages(history, "now")
    assert [m["content"] for m in two[1:]] == ["obs3", "Action: a3", "obs4", "Action: a4", "now"]
    none = PromptBuilder("rules", PromptConfig(history_turns=0), 2).messages(history, "now")
    assert len(none) == 2 and none[0]["content"].startswith("rules")


def test_set_routing_and_errors():
    from pydantic import BaseModel

    class A(BaseModel):
        lr: float = 1.0
        k: int = 1

    class B(BaseModel):
        k: int = 2
        name: str = ""

    routed = parse_sets(["lr=0.5", "a.k=3", "name=x y", "b.k=[1]"], {"a": A, "b": B})
    assert routed == {"a": {"lr": 0.5, "k": 3}, "b": {"name": "x y", "k": [1]}}
    with pytest.raises(ConfigError, match="ambiguous"):
        parse_sets(["k=1"], {"a": A, "b": B})
    with pytest.raises(UnknownNameError, match="did you mean 'lr'"):
        parse_sets(["lrr=1"], {"a": A, "b": B})
    with pytest.raises(UnknownNameError, match="section"):
        parse_sets(["c.k=1"], {"a": A, "b": B})


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 24)
    assert lo == pytest.approx(0, abs=1e-12) and 0.13 < hi < 0.15
    lo, hi = wilson_interval(12, 24)
    assert lo == pytest.approx(1 - hi) and 0.31 < lo < 0.32
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_contains_the_rate_exactly_at_the_ends():
    for n in (1, 7, 24, 64, 1000):
        for k in range(n + 1):
            lo, hi = wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert wilson_interval(0, 24)[0] == 0.0 and wilson_interval(24, 24)[1] == 1.0


def test_bootstrap_is_seeded_and_clusters_by_task():
    outcomes = [(f"t{i}", float((i * 7) % 3 == 0)) for i in range(30) for _ in range(3)]
    assert cluster_bootstrap_interval(outcomes, seed=1) == cluster_bootstrap_interval(outcomes, seed=1)
    lo, hi = cluster_bootstrap_interval(outcomes, seed=1)
    mean = sum(v for _, v in outcomes) / len(outcomes)
    assert lo < mean < hi


def _record(task: str) -> EpisodeRecord:
    return EpisodeRecord(env="e", split="test", task_id=task, seed=0, success=False, reward=0, progress=0,
                         turns=0, invalid_actions=0, termination=Termination.failure, tokens=TokenCount(),
                         trajectory_sha256="x", trajectory=[])


def test_episode_log_cuts_a_torn_last_line(tmp_path):
    log = EpisodeLog(tmp_path / "episodes.jsonl")
    log.append(_record("a"))
    log.append(_record("b"))
    with open(log.path, "a") as fh:
        fh.write('{"env": "e", "spl')  # a crash mid-write
    assert [r.task_id for r in log.load()] == ["a", "b"]
    log.append(_record("c"))
    assert [r.task_id for r in log.load()] == ["a", "b", "c"]


def test_episode_log_reports_corruption_in_the_middle(tmp_path):
    log = EpisodeLog(tmp_path / "episodes.jsonl")
    log.path.write_text(_record("a").model_dump_json() + "\n{bad}\n" + _record("b").model_dump_json() + "\n")
    with pytest.raises(CorruptFileError, match="line 2"):
        log.load()


def test_every_result_field_is_documented():
    """The schema is the contract: each field of every result model carries a docstring."""
    seen: set[type] = set()

    def walk(model) -> None:
        if model in seen or not hasattr(model, "model_fields"):
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            if model.__module__ == "agentbench.results":
                assert field.description, f"{model.__name__}.{name} has no docstring"
            for arg in getattr(field.annotation, "__args__", ()) or (field.annotation,):
                walk(arg)

    walk(RunResult)
    assert len(seen) > 10


def test_budget_presets_are_ordered_by_cost():
    from agentbench.budgets import PRESETS

    smoke, small, paper = PRESETS["smoke"], PRESETS["small"], PRESETS["paper"]
    assert smoke.train_tasks < small.train_tasks < paper.train_tasks
    assert isinstance(smoke, Budget) and paper.eval_tasks is None
    json.dumps(paper.model_dump())
