"""The online-learning core's math, pinned on hand-computed cases: group advantages, the
clipped policy-gradient loss and its gradient, the KL estimators, the aggregation modes, the
reverse-KL distillation loss, the replay buffer, covariance clipping and the schedules."""

from __future__ import annotations

import math

import pytest
import torch

from agentbench.training.batch import TokenSample, collate
from agentbench.training.losses import (
    ClippedPGLoss,
    Normaliser,
    ReverseKLLoss,
    aggregate,
    covariance_keep_mask,
    kl_estimate,
)
from agentbench.training.rl import ReplayBuffer, cosine_decay, cosine_ramp, group_advantages


def test_group_advantages_mean_and_mean_std():
    rewards = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5]
    groups = [0, 0, 0, 0, 1, 1]
    mean = group_advantages(rewards, groups, "mean")
    assert mean.advantages[:4] == pytest.approx([0.5, -0.5, -0.5, 0.5])
    assert mean.advantages[4:] == [None, None]  # zero variance: skipped
    assert mean.skipped_groups == 1
    std = group_advantages(rewards, groups, "mean_std", eps=0.0)
    # population std of {1,0,0,1} is 0.5
    assert std.advantages[:4] == pytest.approx([1.0, -1.0, -1.0, 1.0])
    with pytest.raises(ValueError):
        group_advantages(rewards, groups, "median")


def test_group_of_one_is_skipped():
    assert group_advantages([1.0], [0]).advantages == [None]


def _batch(logp_old, adv, n_tokens=1):
    s = TokenSample([1] + [2] * n_tokens, [False] + [True] * n_tokens, advantage=adv,
                    old_logprobs=[0.0] + [logp_old] * n_tokens)
    return collate([s], pad_id=0)


def _logits_for(p_token2: float, vocab: int = 3) -> torch.Tensor:
    # logits whose softmax gives token 2 probability p (the rest spread evenly)
    rest = (1 - p_token2) / (vocab - 1)
    probs = torch.tensor([rest, rest, p_token2])
    return probs.log().view(1, 1, vocab).clone().requires_grad_(True)


def test_clipped_loss_values_and_gradient_sign():
    loss = ClippedPGLoss(clip_low=0.2, clip_high=0.2)
    # ratio = 0.5 / 0.25 = 2 > 1.2: with A > 0 the clipped term wins (no gradient)
    logits = _logits_for(0.5)
    per_token, m = loss(logits, _batch(math.log(0.25), adv=1.0))
    assert float(per_token[0, 0]) == pytest.approx(-1.2)
    assert float(m["clip_fraction"][0, 0]) == 1.0
    per_token.sum().backward()
    assert torch.allclose(logits.grad, torch.zeros_like(logits.grad), atol=1e-7)
    # ratio = 1: loss = -A; the gradient raises the sampled token's logit when A > 0
    logits = _logits_for(0.5)
    per_token, m = loss(logits, _batch(math.log(0.5), adv=2.0))
    assert float(per_token[0, 0]) == pytest.approx(-2.0)
    per_token.sum().backward()
    assert logits.grad[0, 0, 2] < 0  # descending the loss increases logit 2
    # and lowers it when A < 0
    logits = _logits_for(0.5)
    per_token, _ = loss(logits, _batch(math.log(0.5), adv=-1.0))
    per_token.sum().backward()
    assert logits.grad[0, 0, 2] > 0
    # ratio 0.5 < 0.8 with A < 0: clipped (pessimistic term is -0.8 * A = 0.8)
    logits = _logits_for(0.25)
    per_token, m = loss(logits, _batch(math.log(0.5), adv=-1.0))
    assert float(per_token[0, 0]) == pytest.approx(0.8)
    assert float(m["clip_fraction"][0, 0]) == 1.0


def test_kl_estimators_by_hand():
    logp = torch.tensor([math.log(0.5)])
    ref = torch.tensor([math.log(0.25)])
    assert float(kl_estimate(logp, ref, "k1")) == pytest.approx(math.log(2))
    # k3 = q/p - log(q/p) - 1 = 0.5 - log 0.5 - 1
    assert float(kl_estimate(logp, ref, "k3")) == pytest.approx(0.5 - math.log(0.5) - 1)
    assert float(kl_estimate(ref, ref, "k3")) == 0.0
    with pytest.raises(ValueError):
        kl_estimate(logp, ref, "k2")


def test_aggregation_modes_by_hand():
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    norm = Normaliser(tokens=4, sequences=2, norm=10.0)
    assert float(aggregate(per_token, mask, "token-mean", norm)) == pytest.approx(10 / 4)
    assert float(aggregate(per_token, mask, "seq-mean-token-mean", norm)) == pytest.approx((2.0 + 4.0) / 2)
    assert float(aggregate(per_token, mask, "seq-mean-token-sum-norm", norm)) == pytest.approx(10 / (2 * 10))
    with pytest.raises(ValueError):
        aggregate(per_token, mask, "sum", norm)


def test_micro_batches_add_up_to_the_whole_batch():
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    norm = Normaliser(tokens=4, sequences=2, norm=3.0)
    for mode in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"):
        whole = aggregate(per_token, mask, mode, norm)
        parts = aggregate(per_token[:1], mask[:1], mode, norm) + aggregate(per_token[1:], mask[1:], mode, norm)
        assert float(whole) == pytest.approx(float(parts))


def _distill_batch(teacher_logprobs: torch.Tensor, k: int):
    vocab = teacher_logprobs.shape[-1]
    top = teacher_logprobs.topk(k)
    s = TokenSample([1, 2], [False, True], teacher_ids=[[], top.indices.tolist()],
                    teacher_logprobs=[[], top.values.tolist()])
    return collate([s], pad_id=0), vocab


def test_reverse_kl_equals_direct_computation_and_is_zero_when_equal():
    torch.manual_seed(0)
    teacher = torch.log_softmax(torch.randn(5), dim=-1)
    student_logits = torch.randn(1, 1, 5)
    batch, _vocab = _distill_batch(teacher, k=5)
    per_token, _ = ReverseKLLoss()(student_logits, batch)
    p_s = torch.softmax(student_logits[0, 0], dim=-1)
    direct = float((p_s * (p_s.log() - teacher)).sum())
    assert float(per_token[0, 0]) == pytest.approx(direct, rel=1e-5)
    # top-k support: both renormalised over the teacher's k most likely ids
    batch, _ = _distill_batch(teacher, k=3)
    per_token, _ = ReverseKLLoss()(student_logits, batch)
    ids = teacher.topk(3).indices
    ps = torch.log_softmax(student_logits[0, 0, ids], dim=-1)
    pt = torch.log_softmax(teacher[ids], dim=-1)
    assert float(per_token[0, 0]) == pytest.approx(float((ps.exp() * (ps - pt)).sum()), rel=1e-5)
    # the student equal to the teacher: zero
    batch, _ = _distill_batch(teacher, k=5)
    per_token, _ = ReverseKLLoss()(teacher.view(1, 1, 5), batch)
    assert float(per_token[0, 0]) == pytest.approx(0.0, abs=1e-6)


def test_replay_buffer_recalibration_and_staleness():
    buf = ReplayBuffer(capacity=2, staleness=2, min_reward=1.0, window=4)
    sample = [TokenSample([1, 2], [False, True])]
    assert not buf.add(sample, reward=0.5, advantage=1.0, step=0)  # not a success
    assert not buf.add(sample, reward=1.0, advantage=0.0, step=0)  # no positive advantage
    assert buf.add(sample, reward=1.0, advantage=0.5, step=0)
    assert buf.add(sample, reward=2.0, advantage=0.5, step=1)
    assert buf.add(sample, reward=1.5, advantage=0.5, step=2)
    assert len(buf.entries) == 2  # capacity: the oldest left
    buf.observe([0.0, 1.0, 2.0, 3.0, 4.0])  # window 4 keeps 1, 2, 3, 4: median 2.5
    assert buf.baseline() == pytest.approx(2.5)
    chosen, negative = buf.draw(step=3, limit=8)
    assert chosen == [] and negative == 2  # 1.5 - 2.5 and 2.0 - 2.5 are negative: not replayed
    buf.recent.clear()
    buf.observe([1.0])
    chosen, _ = buf.draw(step=3, limit=8)
    assert [round(a, 6) for _, a in chosen] == [0.5, 1.0]  # newest first: 1.5 - 1, 2.0 - 1
    assert buf.expire(step=4) == 1  # collected at step 1, 3 steps old > staleness 2
    assert [e.step for e in buf.entries] == [2]


def test_covariance_clipping_drops_only_outlier_tokens():
    logp = torch.tensor([[0.0, -1.0, -2.0, -3.0]])
    adv = torch.tensor([[2.0, 2.0, -2.0, -2.0]])
    mask = torch.ones(1, 4)
    # centred: logp - (-1.5) = [1.5, .5, -.5, -1.5]; adv - 0 = adv; cov = [3, 1, 1, 3]
    keep = covariance_keep_mask(logp, adv, mask, ratio=0.5, lower=2.0, upper=4.0,
                                generator=torch.Generator().manual_seed(0))
    assert keep.tolist() == [[0.0, 1.0, 1.0, 0.0]]  # both candidates (cov 3) fit the budget of 2
    keep = covariance_keep_mask(logp, adv, mask, ratio=0.25, lower=2.0, upper=4.0,
                                generator=torch.Generator().manual_seed(0))
    assert float(keep.sum()) == 3.0 and keep[0, 1] == 1 and keep[0, 2] == 1  # one of the two
    keep = covariance_keep_mask(logp, adv, mask, ratio=1.0, lower=5.0, upper=60.0)
    assert keep.tolist() == [[1.0, 1.0, 1.0, 1.0]]  # no candidate in bounds


def test_schedules():
    assert cosine_ramp(0, 10) == 0.0 and cosine_ramp(5, 10) == pytest.approx(0.5) and cosine_ramp(10, 10) == 1.0
    assert cosine_decay(0, 10) == 1.0 and cosine_decay(5, 10) == pytest.approx(0.5)
    assert cosine_decay(10, 10) == 0.0 and cosine_decay(50, 10) == 0.0
    assert cosine_ramp(3, 0) == 1.0 and cosine_decay(3, 0) == 0.0


def test_trainer_computes_the_loss_on_the_loss_columns_only_with_the_full_values(tiny_model):
    """The trainer projects to the vocabulary only the columns that hold loss tokens; every loss
    (policy gradient with KL and entropy, SFT, reverse KL) and its gradient must equal the one
    computed on the full logits. Loss tokens in the middle and at different places per row, so a
    window off by one column or cut per row the wrong way changes the numbers."""
    from agentbench.training.checkpoints import load_for_training
    from agentbench.training.losses import SFTLoss, aggregate, token_logprobs
    from agentbench.training.trainer import OptimConfig, PolicyTrainer

    model, tok = load_for_training(tiny_model)
    reference = PolicyTrainer.frozen_copy(model)
    trainer = PolicyTrainer(model, tok, OptimConfig(), learning_rate=1e-5, total_steps=1, seed=0, reference=reference)
    g = torch.Generator().manual_seed(0)

    def sample(prompt: int, completion: int, tail: int, advantage: float) -> TokenSample:
        ids = torch.randint(5, 1000, (prompt + completion + tail,), generator=g).tolist()
        top = [torch.randint(5, 1000, (3,), generator=g).tolist() for _ in range(completion)]
        lps = [torch.log_softmax(torch.randn(3, generator=g), dim=-1).tolist() for _ in range(completion)]
        pad = [[]] * prompt, [[]] * tail
        return TokenSample(ids, [False] * prompt + [True] * completion + [False] * tail, advantage=advantage,
                           old_logprobs=(-torch.rand(len(ids), generator=g)).tolist(),
                           teacher_ids=pad[0] + top + pad[1], teacher_logprobs=pad[0] + lps + pad[1])

    batch = collate([sample(20, 6, 4, 1.0), sample(12, 5, 0, -0.5), sample(25, 3, 9, 0.25)], tok.pad_token_id)
    assert batch.loss_window() == (11, 27)  # first loss target is token 12 (column 11); last is token 27
    norm = Normaliser(tokens=14, sequences=3, norm=8.0)
    for loss in (ClippedPGLoss(kl_coef=0.05, entropy_coef=0.01), SFTLoss(), ReverseKLLoss()):
        for mode in ("token-mean", "seq-mean-token-mean"):
            trainer.aggregation = mode
            model.zero_grad(set_to_none=True)
            fast, fast_metrics = trainer._loss(batch, loss, norm)
            fast.backward()
            fast_grads = [p.grad.clone() for p in model.parameters()]
            model.zero_grad(set_to_none=True)
            batch.ref_logprobs = token_logprobs(reference(input_ids=batch.input_ids).logits[:, :-1], batch.targets)
            per_token, metrics = loss(model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1],
                                      batch)
            batch.ref_logprobs = None
            full = aggregate(per_token, batch.mask, mode, norm)
            full.backward()
            assert float(fast.detach()) == pytest.approx(float(full.detach()), rel=1e-5, abs=1e-7)
            for a, p in zip(fast_grads, model.parameters()):
                assert torch.allclose(a, p.grad, rtol=1e-4, atol=1e-8)
            assert set(fast_metrics) == set(metrics)
            for key, value in metrics.items():  # metrics are summed over the loss tokens
                assert fast_metrics[key] == pytest.approx(float((value * batch.mask).sum()), rel=1e-5, abs=1e-6)
