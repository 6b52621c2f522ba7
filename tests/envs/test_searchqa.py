"""searchqa adapter on made data in FlashRAG's JSONL schema (the adapter is checked only on such data)."""

from __future__ import annotations

import json

import pytest

from agentbench import conformance
from agentbench.envs.searchqa import SearchQA, exact_match

pytest.importorskip("bm25s")

CORPUS = [
    {"id": "0", "contents": "Paris\nParis is the capital and largest city of France."},
    {"id": "1", "contents": "Berlin\nBerlin is the capital of Germany."},
    {"id": "2", "contents": "Mount Everest\nMount Everest is Earth's highest mountain above sea level."},
    {"id": "3", "contents": "The Nile\nThe Nile is a major river in northeastern Africa."},
]
QUESTIONS = {
    "nq/train.jsonl": [{"id": "train_0", "question": "what is the capital of germany", "golden_answers": ["Berlin"]}],
    "nq/test.jsonl": [{"id": "test_0", "question": "what is the capital of france", "golden_answers": ["Paris"]},
                      {"id": "test_1", "question": "what is the highest mountain", "golden_answers": ["Mount Everest", "Everest"]}],
    "hotpotqa/dev.jsonl": [{"id": "dev_0", "question": "which river is in africa", "golden_answers": ["the Nile"],
                            "metadata": {"type": "bridge"}}],
}


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in CORPUS))
    for name, rows in QUESTIONS.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in rows))
    return tmp_path


def test_not_runnable_without_data():
    available = SearchQA.availability()
    assert not available.runnable and "data_dir" in available.detail


def test_search_answer_and_exact_match(data_dir):
    env = SearchQA.from_params({"data_dir": str(data_dir)})
    assert [len(env.tasks(s)) for s in ("train", "test", "ood")] == [1, 2, 1]
    task = env.tasks("test")[0]
    env.reset(task)
    step = env.step("search[capital of France]")
    assert step.observation.startswith("Doc 1: Paris") and not step.done
    assert not env.step("lookup[x]").info.valid
    step = env.step("answer[the paris.]")
    assert step.done and step.reward == 1.0 and step.info.extra["exact_match"]
    env.reset(task)
    assert env.step("answer[Lyon]").reward == 0.0
    assert exact_match("everest", ["Mount Everest", "Everest"])


def test_contract(data_dir):
    env = SearchQA.from_params({"data_dir": str(data_dir)})
    for split in ("train", "test", "ood"):
        assert conformance.expert_rate(env, split, 5).rate == 1.0
    task = env.tasks("test")[0]
    assert conformance.is_deterministic(env, task)
    assert conformance.branching_problems(env, task) == []
    assert all(conformance.garbage_problem(env, task, g) is None for g in conformance.GARBAGE_ACTIONS)
