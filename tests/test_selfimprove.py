"""Self-improvement methods: AgentEvol's filter/merge and its restarts from the base model, OEL's
bounded experience, its consolidation loss and prompts, and branching from policy scores."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from agentbench.backends import Completion, TokenScores
from agentbench.branching import (
    branch_expert_states,
    policy_distribution,
    sample_without_replacement,
)
from agentbench.budgets import get_budget
from agentbench.envs.frozenlake import FrozenLake
from agentbench.expert import collect_expert
from agentbench.method import TrainContext, TrainOutput
from agentbench.methods import agentevol as ae
from agentbench.methods import oel
from agentbench.models import ModelRef
from agentbench.prompting import PromptBuilder, PromptConfig
from agentbench.results import Rate
from agentbench.rollout import RolloutLimits
from agentbench.training.batch import collate
from agentbench.training.losses import Normaliser, ReverseKLLoss, aggregate
from agentbench.trajectory import EpisodeRecord, Termination, TokenCount, Turn


def _record(task_id: str, reward: float, moves: list[str]) -> EpisodeRecord:
    turns = [Turn(observation=f"{task_id} obs {i}", response=f"Thought: go\nAction: {m}", action=m, valid=True,
                  reward=reward if i == len(moves) - 1 else 0.0) for i, m in enumerate(moves)]
    return EpisodeRecord(env="frozenlake", split="train", task_id=task_id, seed=0, success=reward >= 1,
                         reward=reward, progress=reward, turns=len(turns), invalid_actions=0,
                         termination=Termination.success if reward >= 1 else Termination.failure,
                         tokens=TokenCount(), trajectory_sha256="x", trajectory=turns)


def _prompts() -> PromptBuilder:
    env = FrozenLake()
    return PromptBuilder(env.instructions, PromptConfig(), FrozenLake.default_history_turns)


# -- AgentEvol -------------------------------------------------------------------------------

def test_agentevol_threshold_filter_keeps_only_episodes_above_the_bar_and_merges_expert_data():
    records = [_record("a", 1.0, ["up", "left"]), _record("b", 0.0, ["down"]), _record("c", 0.99, ["up"]),
               _record("d", 1.0, ["right"])]
    kept = ae.select_episodes(records, "threshold", 0.99)
    assert [(r.task_id, w) for r, w in kept] == [("a", 1.0), ("d", 1.0)]
    prompts = PromptBuilder("RULES", PromptConfig(history_turns=2), None)  # shows the episode's past turns
    expert = [ae.episode_examples(prompts, _record("e", 1.0, ["down"]), kind="expert")[0]]
    data = ae.merge(expert, kept, prompts)
    assert data[0] == (expert[0], 1.0)  # the original expert data is kept
    assert [w for _, w in data] == [1.0, 1.0, 1.0, 1.0]
    assert len(data) == 1 + 2 + 1  # expert + every turn of a + d
    # each turn is prompted as the model saw it: history of the episode's earlier turns
    second = data[2][0].messages
    assert second[-1]["content"] == "Thought: go\nAction: left"
    assert second[-2]["content"] == "a obs 1" and second[-3]["content"] == "Thought: go\nAction: up"


def test_agentevol_weighted_filter_weighs_turns_by_the_clipped_reward():
    records = [_record("a", 0.5, ["up", "left"]), _record("b", 0.0, ["down"]), _record("c", 2.0, ["up"])]
    kept = ae.select_episodes(records, "weighted", 0.99)
    assert [(r.task_id, w) for r, w in kept] == [("a", 0.5), ("c", 1.0)]
    data = ae.merge([], kept, _prompts())
    assert [w for _, w in data] == [0.5, 0.5, 1.0]


def test_weighted_sft_loss_is_sft_times_the_weight():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 7)
    from agentbench.training.batch import TokenSample

    samples = [TokenSample([1, 2, 3, 4], [False, True, True, True], advantage=0.5),
               TokenSample([5, 6, 1, 2], [False, False, True, True], advantage=1.0)]
    batch = collate(samples, 0)
    per_token, _ = ae.WeightedSFTLoss()(logits, batch)
    nll = -torch.log_softmax(logits, -1).gather(-1, batch.targets[..., None]).squeeze(-1)
    assert torch.allclose(per_token, nll * torch.tensor([[0.5], [1.0]]))


def _ctx(tmp_path: Path, model: ModelRef, expert, evaluate, depend_on) -> TrainContext:
    budget = get_budget("smoke", {"batch_size": 2, "forgetting": False, "train_tasks": 2})
    return TrainContext(env_name="frozenlake", make_env=FrozenLake, base_model=model, budget=budget, seed=0,
                        workdir=tmp_path, prompt_config=PromptConfig(), limits=RolloutLimits(max_turns=4),
                        train_tasks=expert.tasks, expert_loader=lambda: expert, depend_on=depend_on,
                        evaluate=evaluate, log_path=tmp_path / "train_log.jsonl")


def test_agentevol_learns_from_the_base_model_every_iteration_and_explores_with_the_last(tmp_path, tiny_model,
                                                                                         monkeypatch):
    expert = collect_expert(FrozenLake, FrozenLake().tasks("train")[:2], max_turns=20)
    il_ref = ModelRef("il", str(tmp_path / "il"), "il")
    loaded, explored_with, evaluated = [], [], []

    def fake_load(model):
        loaded.append(model)
        from agentbench.training.checkpoints import load_for_training

        return load_for_training(tiny_model)

    def fake_explore(ctx, model, tasks, k, temperature, seed, stage="explore"):
        explored_with.append(model.name)
        assert len(tasks) == 4 and k == 1  # the expert's 2 instructions and 2 more
        return [_record(tasks[0].id, 1.0, ["up"]), _record(tasks[3].id, 0.0, ["down"])], 2

    def fake_save(model, tokenizer, folder, base, method):
        return ModelRef(f"iteration-{folder.parent.name}", str(folder), "saved")

    monkeypatch.setattr(ae, "load_for_training", fake_load)
    monkeypatch.setattr(ae, "explore", fake_explore)
    monkeypatch.setattr(ae, "save_checkpoint", fake_save)
    rate = Rate(value=0.25, n=4, ci95=(0.0, 1.0), ci_method="test")

    def evaluate(model, split, name):
        evaluated.append((model.name, split, name))
        return type("R", (), {"success_rate": rate})()

    il_out = TrainOutput(model=il_ref, compute=ae.Compute(optimizer_steps=3))
    ctx = _ctx(tmp_path, tiny_model, expert, evaluate, lambda name, config: il_out)
    out = ae.AgentEvol(ae.AgentEvolConfig(iterations=3, iteration_epochs=0.2)).train(ctx)
    assert loaded == [tiny_model] * 3  # never the il model, never the previous iteration's
    assert explored_with == ["il", "iteration-iteration-1", "iteration-iteration-2"]
    assert [p.value for p in out.scaling] == [0, 1, 2, 3]
    assert all(p.axis == "iteration" and p.success_rate == rate for p in out.scaling)
    assert [n for _, _, n in evaluated] == ["iteration-0", "iteration-1", "iteration-2", "iteration-3"]
    assert out.model.name == "iteration-iteration-3"
    names = [s.name for s in out.compute.stages]
    assert names.count("iteration-2/learn") == 1 and names.count("iteration-3/explore") == 1
    assert out.compute.counters["iteration_1_kept_episodes"] == 1
    assert out.compute.counters["instructions_outside_expert_data"] == 2
    # the scaling points carry the compute spent up to them, growing
    steps = [p.train.optimizer_steps for p in out.scaling]
    assert steps[0] == 0 and steps == sorted(steps) and steps[-1] == out.compute.optimizer_steps


# -- OEL ---------------------------------------------------------------------------------------

def test_experience_stays_within_its_token_bound(tiny_model):
    from agentbench.backends.hf import load_tokenizer

    count, truncate = oel.tokenizer_bounds(load_tokenizer(tiny_model.path))
    exp = oel.Experience(40, count, truncate)
    rng = random.Random(0)
    words = ["move", "left", "right", "up", "down", "hole", "goal", "avoid", "edge", "box", "wall", "push"]
    for i in range(30):
        exp.add([f"- lesson {i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(3, 15)))])
        assert exp.tokens <= 40
    assert exp.dropped > 0 and exp.items[-1].startswith("- lesson 29")
    exp.add(["- " + " ".join(words * 10)])  # longer than the bound on its own: cut to it
    assert exp.tokens <= 40 and len(exp.items) == 1
    assert exp.add(list(exp.items)) == 0  # nothing is added twice


def test_extraction_items_and_prompt():
    assert oel.parse_items("Lessons:\n- avoid holes\n* go right first\n2. push boxes\nnoise") == [
        "- avoid holes", "- go right first", "- push boxes"]
    assert oel.parse_items("just text  here") == ["- just text here"]
    msgs = oel.extraction_messages(oel.EXTRACTION_PROMPT, "RULES", "- old", [_record("a", 1.0, ["up"])], 3000)
    text = msgs[0]["content"]
    assert "RULES" in text and "- old" in text and "a obs 0" in text
    assert "reward" not in text.lower()  # reward-free: the env's text only
    with pytest.raises(ValueError):
        oel.OELConfig(extraction_prompt="no fields")


def _toy_reverse_kl(student_logits: torch.Tensor, teacher_logp: torch.Tensor) -> torch.Tensor:
    """Direct KL(student || teacher) per position over the whole (toy) vocabulary."""
    s = torch.log_softmax(student_logits, -1)
    return (s.exp() * (s - teacher_logp)).sum(-1)


def test_consolidation_loss_is_the_reverse_kl_and_zero_when_student_and_teacher_agree():
    torch.manual_seed(0)
    vocab, prompt, reply = 6, [1, 2, 3], [4, 0, 5]
    teacher_logp = torch.log_softmax(torch.randn(len(reply), vocab), -1)
    top = teacher_logp.topk(vocab, -1)  # k = the vocabulary: the exact reverse KL
    scores = TokenScores([0.0] * len(reply), top.indices.tolist(), top.values.tolist())
    sample = oel.distillation_sample(prompt, reply, scores)
    batch = collate([sample], 0)
    seq = len(prompt) + len(reply)
    logits = torch.randn(1, seq - 1, vocab)
    per_token, _ = ReverseKLLoss()(logits, batch)
    # the reply's tokens are predicted from positions len(prompt)-1 .. seq-2
    rows = slice(len(prompt) - 1, seq - 1)
    expected = _toy_reverse_kl(logits[0, rows], teacher_logp)
    assert torch.allclose(per_token[0, rows], expected, atol=1e-5)
    assert float(per_token[0, : len(prompt) - 1].abs().sum()) == 0.0  # nothing on the prompt
    loss = aggregate(per_token, batch.mask, "token-mean", Normaliser(tokens=len(reply), sequences=1))
    assert torch.allclose(loss, expected.mean(), atol=1e-5)
    # the student equal to the teacher: zero
    same = torch.zeros(1, seq - 1, vocab)
    same[0, rows] = teacher_logp
    agree, _ = ReverseKLLoss()(same, batch)
    assert float(agree.abs().max()) < 1e-5


class _Recorder:
    """A fake policy that records what it is asked."""

    name = "fake"
    capabilities = frozenset({"score", "token_ids", "logprobs"})

    def __init__(self):
        self.generated: list = []
        self.encoded: list = []

    def generate(self, prompts, params):
        self.generated.extend(prompts)
        return [Completion("Action: up", 3, 2, "stop", (1, 2, 3), (7, 8), (-0.1, -0.2)) for _ in prompts]

    def encode(self, prompts):
        self.encoded.extend(prompts)
        return [[9, 9, 9, 9] for _ in prompts]

    def score(self, requests, top_k=0):
        return [TokenScores([-1.0] * len(r.completion_ids), [[7, 8]] * len(r.completion_ids),
                            [[-0.5, -1.0]] * len(r.completion_ids)) for r in requests]


def test_the_teacher_sees_the_experience_and_the_student_does_not():
    prompts = _prompts()
    states = oel.episode_states([_record("a", 0.0, ["up", "left"])])
    assert len(states) == 2 and states[1].history[0].observation == "a obs 0"
    student, teacher = _Recorder(), _Recorder()
    experience = "- EXPERIENCE: never step on H"
    from agentbench.backends import SamplingParams

    samples = oel.distillation_batch(student, teacher, prompts, states, experience, SamplingParams(), 4)
    assert len(student.generated) == len(teacher.encoded) == 2
    for chat in student.generated:
        assert all(experience not in m["content"] for m in chat)
        assert chat[0]["content"] == prompts.system_prompt
    for chat, plain in zip(teacher.encoded, student.generated):
        assert experience in chat[0]["content"] and chat[0]["content"].startswith(prompts.system_prompt)
        assert chat[1:] == plain[1:]  # the same prefix otherwise
    # the sample is the student's prompt and reply; the teacher's top-k sits on the reply tokens
    s = samples[0]
    assert s.input_ids == [1, 2, 3, 7, 8] and s.loss_mask == [False, False, False, True, True]
    assert s.teacher_ids == [[], [], [], [7, 8], [7, 8]]


# -- branching from the policy's scores ------------------------------------------------------

def test_policy_distribution_and_sampling_without_replacement():
    logps = [math.log(0.5), math.log(0.3), math.log(0.2)]
    assert policy_distribution(logps, 1.0) == pytest.approx([0.5, 0.3, 0.2])
    hot = policy_distribution(logps, 2.0)
    assert hot == pytest.approx([w / sum(math.sqrt(p) for p in (0.5, 0.3, 0.2))
                                 for w in (math.sqrt(0.5), math.sqrt(0.3), math.sqrt(0.2))])
    assert policy_distribution(logps, 0.0) == [1.0, 0.0, 0.0]
    rng = random.Random(0)
    firsts = Counter(sample_without_replacement(["a", "b", "c"], [0.5, 0.3, 0.2], 1, rng)[0] for _ in range(20000))
    assert firsts["a"] / 20000 == pytest.approx(0.5, abs=0.015)
    assert firsts["c"] / 20000 == pytest.approx(0.2, abs=0.015)
    pairs = [sample_without_replacement(["a", "b", "c"], [0.5, 0.3, 0.2], 2, rng) for _ in range(2000)]
    assert all(len(set(p)) == 2 for p in pairs)


class _ActionScorer:
    """A fake policy whose log-prob of the response ``Action: <a>`` is fixed per action: the
    chat is 'tokenised' as characters, so the scored completion decodes back to its text."""

    name = "fake"
    capabilities = frozenset({"score"})
    LOGP: ClassVar[dict[str, float]] = {"up": math.log(0.6), "down": math.log(0.25), "left": math.log(0.1), "right": math.log(0.05)}

    def encode(self, prompts):
        return [[ord(c) for c in "".join(m["content"] + "|" for m in chat)] for chat in prompts]

    def score(self, requests, top_k=0):
        out = []
        for r in requests:
            text = "".join(chr(i) for i in r.completion_ids).rstrip("|")
            action = text.removeprefix("Action: ")
            out.append(TokenScores([self.LOGP[action]] + [0.0] * (len(r.completion_ids) - 1)))
        return out


def test_policy_branching_samples_only_admissible_actions_with_the_policy_probabilities():
    env = FrozenLake()
    tasks = env.tasks("train")[:40]
    expert = collect_expert(FrozenLake, tasks, max_turns=20)
    prompts = PromptBuilder(env.instructions, PromptConfig(), FrozenLake.default_history_turns)
    data = branch_expert_states(expert, FrozenLake, _ActionScorer(), prompts, k=1, temperature=1.0,
                                max_new_tokens=8, seed=0, alternatives="policy")
    assert len(data.branches) == len(expert.steps)
    assert data.counters["scored_actions"] == 3 * len(expert.steps) and "refilled" not in data.counters
    hits: Counter = Counter()
    expected: Counter = Counter()
    for b in data.branches:
        assert b.action in FrozenLake().admissible_actions() and b.action != b.state.action
        assert not b.refilled and b.response == f"Action: {b.action}"
        others = [a for a in ("up", "down", "left", "right") if a != b.state.action]
        total = sum(math.exp(_ActionScorer.LOGP[a]) for a in others)
        for a in others:
            expected[a] += math.exp(_ActionScorer.LOGP[a]) / total
        hits[b.action] += 1
    n = len(data.branches)
    for a in ("up", "down", "left", "right"):  # empirical frequencies match the renormalised probabilities
        assert hits[a] / n == pytest.approx(expected[a] / n, abs=4 * math.sqrt(0.25 / n))
    # temperature 0: always the policy's most likely admissible alternative
    greedy = branch_expert_states(expert, FrozenLake, _ActionScorer(), prompts, k=2, temperature=0.0,
                                  max_new_tokens=8, seed=0, alternatives="policy")
    for b in greedy.branches[::2]:
        assert b.action == ("up" if b.state.action != "up" else "down")
