"""The online-learning core end to end on the tiny model: the tokens the loss sees are the
tokens sampled, a policy-gradient step moves probability toward positive advantages, grpo
and spear write valid results with per-step curves, rl-compat holds every start, and a
different training or evaluation into an existing folder is refused."""

from __future__ import annotations

import pytest
import torch

from agentbench import api
from agentbench.backends import SamplingParams
from agentbench.backends.hf import HFBackend
from agentbench.errors import UsageError
from agentbench.models import tiny
from agentbench.training.batch import TokenSample, collate
from agentbench.training.checkpoints import load_for_training
from agentbench.training.losses import ClippedPGLoss
from agentbench.training.trainer import OptimConfig, PolicyTrainer

CHATS = [[{"role": "user", "content": "Move on the lake."}], [{"role": "user", "content": "Where now?"}]]
FAST = ["budget.eval_tasks=2", "budget.forgetting=false", "limits.max_turns=2", "steps=2", "tasks_per_step=2",
        "group_size=2"]


@pytest.fixture(scope="module")
def trainer():
    torch.manual_seed(0)
    model, tokenizer = load_for_training(tiny())
    return PolicyTrainer(model, tokenizer, OptimConfig(warmup_fraction=0.0, lr_scheduler="constant"),
                         learning_rate=1e-3, total_steps=10, seed=0, micro_batch=4)


def test_the_tokens_the_loss_sees_are_the_tokens_sampled(trainer):
    policy = HFBackend.sharing(trainer.model, trainer.tokenizer, tiny())
    completions = policy.generate(CHATS, SamplingParams(temperature=1.0, max_new_tokens=8, n=2, logprobs=True,
                                                        seed=3))
    samples = [TokenSample.from_completion(c.prompt_ids, c.token_ids, old_logprobs=c.logprobs) for c in completions]
    batch = collate(samples, trainer.tokenizer.pad_token_id)
    for row, c in enumerate(completions):
        seen = batch.targets[row][batch.mask[row] > 0].tolist()
        assert seen == list(c.token_ids)  # exactly the sampled ids, no re-tokenisation
        assert c.prompt_ids == tuple(policy.encode([CHATS[row // 2]])[0])
    # the trainer scores them as the sampler did
    rescored = trainer.logprobs(samples)
    for s, c in zip(samples, completions):
        lp = [x for x, m in zip(rescored[samples.index(s)], s.loss_mask) if m]
        assert lp == pytest.approx(list(c.logprobs), abs=1e-4)


def test_a_policy_gradient_step_moves_probability_toward_positive_advantages(trainer):
    policy = HFBackend.sharing(trainer.model, trainer.tokenizer, tiny())
    good, bad = policy.generate(CHATS[:1], SamplingParams(temperature=1.0, max_new_tokens=6, n=2, logprobs=True,
                                                          seed=5))
    samples = [TokenSample.from_completion(good.prompt_ids, good.token_ids, advantage=1.0, old_logprobs=good.logprobs),
               TokenSample.from_completion(bad.prompt_ids, bad.token_ids, advantage=-1.0, old_logprobs=bad.logprobs)]
    before = [sum(lp) for lp in trainer.logprobs(samples)]
    metrics = trainer.step(samples, ClippedPGLoss())
    after = [sum(lp) for lp in trainer.logprobs(samples)]
    assert after[0] > before[0] and after[1] < before[1]
    assert metrics.loss_tokens == len(good.token_ids) + len(bad.token_ids)
    assert "entropy" in metrics.extra and "clip_fraction" in metrics.extra


@pytest.mark.slow
@pytest.mark.parametrize("method", ["grpo", "spear"])
def test_online_methods_write_results_with_curves(tmp_path, tiny_model, method):
    [outcome] = api.run(method=method, env="frozenlake", model="tiny", out=tmp_path, sets=FAST)
    train = outcome.result.train
    assert [s.step for s in train.rl_steps] == [1, 2]
    assert all(s.episodes == 4 for s in train.rl_steps)
    assert train.settings["group_size"] == 2 and train.settings["steps"] == 2
    assert train.counters["episodes"] == 8
    log = (outcome.path.parent / "train_log.jsonl").read_text().splitlines()
    assert len(log) == 2


@pytest.mark.slow
def test_rl_compat_holds_every_start_in_one_result(tmp_path, tiny_model):
    outcomes = api.run(method="il", env="frozenlake", protocol="rl-compat", model="tiny", out=tmp_path,
                       sets=[*FAST, "limits.max_turns=8", "budget.train_tasks=2", "budget.epochs=1"])
    assert len(outcomes) == 1
    result = outcomes[0].result
    assert result.method.name == "grpo"
    assert [s.start for s in result.rl_compat] == ["none", "il"]
    none, il = result.rl_compat
    assert none.start_train.optimizer_steps == 0 and il.start_train.optimizer_steps >= 1
    assert all(len(s.rl_train.rl_steps) == 2 for s in result.rl_compat)
    assert il.cells[0].split == "test" and il.cells[0].after == result.envs[0]
    assert (outcomes[0].path.parent / "starts" / "none" / "after" / "episodes.jsonl").exists()


def test_another_evaluation_into_the_same_folder_is_refused(tmp_path, tiny_model):
    from agentbench.session import check_identity

    check_identity(tmp_path / "evaluation_key.json", {"model": "a", "prompt": "p"}, "x holds another evaluation")
    check_identity(tmp_path / "evaluation_key.json", {"model": "a", "prompt": "p"}, "x holds another evaluation")
    with pytest.raises(UsageError, match=r"x holds another evaluation \(model differ\)"):
        check_identity(tmp_path / "evaluation_key.json", {"model": "b", "prompt": "p"}, "x holds another evaluation")


@pytest.mark.slow
def test_a_second_evaluation_of_another_model_into_one_folder_is_refused(tmp_path, tiny_model):
    from agentbench.session import RunSession
    from agentbench.spec import resolve_spec

    spec = resolve_spec(method="none", env="frozenlake", protocol="in-domain", model="tiny", backend="hf",
                        budget="smoke", seed=0, sets=["budget.eval_tasks=1", "limits.max_turns=1"])
    session = RunSession(spec, tmp_path / "run")
    (tmp_path / "run").mkdir()
    first = session.evaluate(session.base_model, "test", spec.prompt)
    again = session.evaluate(session.base_model, "test", spec.prompt)  # same evaluation: reused
    assert again == first
    with pytest.raises(UsageError, match="another evaluation"):
        session.evaluate(session.base_model, "test", spec.prompt.model_copy(update={"history_turns": 1}))
