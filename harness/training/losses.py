"""Losses of the one token-level trainer, as plug-ins.

A loss gets the model's logits over a :class:`TokenBatch` and returns a per-token loss
``(B, T-1)`` plus metrics; the trainer aggregates the per-token loss over the loss mask in the
selected mode (:func:`aggregate`) and steps the optimizer. Three ship here:

- :class:`SFTLoss`: negative log-likelihood of the loss tokens (imitation, world modelling, ...);
- :class:`ClippedPGLoss`: the PPO/GRPO clipped policy-gradient loss with low/high clip, an
  optional KL penalty to a frozen reference (``k1`` or the low-variance ``k3`` estimator), an
  entropy bonus, and optional covariance-based clipping (SPEAR);
- :class:`ReverseKLLoss`: reverse KL of the student against a teacher's top-k distribution
  (OEL's on-policy context distillation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol, runtime_checkable

import torch

from agentbench.training.batch import TokenBatch

Aggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
AGGREGATIONS: tuple[str, ...] = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")


@dataclass(frozen=True)
class Normaliser:
    """What a micro-batch's loss is divided by, fixed for the whole optimizer step so that
    micro-batching does not change the gradient: the step's loss tokens and sequences."""

    tokens: int
    sequences: int
    norm: float = 1.0
    """The constant of ``seq-mean-token-sum-norm`` (a fixed horizon, e.g. max response tokens)."""


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str, normaliser: Normaliser) -> torch.Tensor:
    """Reduce a ``(B, T)`` per-token loss over ``mask`` to this micro-batch's share of the step loss.

    - ``token-mean``: sum over every loss token of the step / the step's loss tokens;
    - ``seq-mean-token-mean``: each sequence's mean over its tokens, averaged over sequences;
    - ``seq-mean-token-sum-norm``: each sequence's token sum / ``norm``, averaged over sequences.
    """
    masked = per_token * mask
    if mode == "token-mean":
        return masked.sum() / max(normaliser.tokens, 1)
    if mode == "seq-mean-token-mean":
        per_seq = masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return per_seq.sum() / max(normaliser.sequences, 1)
    if mode == "seq-mean-token-sum-norm":
        return masked.sum() / (max(normaliser.sequences, 1) * normaliser.norm)
    raise ValueError(f"unknown aggregation {mode!r}; one of {', '.join(AGGREGATIONS)}")


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log p(target) per position, ``logits`` already aligned with ``targets``."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def entropy_of(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from samples of the policy.

    ``k1``: log p - log q (unbiased, high variance); ``k3``: (q/p) - log(q/p) - 1 (unbiased,
    low variance, never negative; verl's ``low_var_kl`` before its clamp)."""
    if estimator == "k1":
        return logp - ref_logp
    if estimator == "k3":
        log_ratio = ref_logp - logp
        return torch.exp(log_ratio) - log_ratio - 1
    raise ValueError(f"unknown KL estimator {estimator!r}; k1 or k3")


@runtime_checkable
class Loss(Protocol):
    name: ClassVar[str]
    needs_reference: bool

    def __call__(self, logits: torch.Tensor, batch: TokenBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``logits``: (B, T-1, V) aligned with ``batch.targets``. Returns the per-token loss
        and per-token metric tensors (averaged over loss tokens by the trainer)."""
        ...


@dataclass
class SFTLoss:
    name: ClassVar[str] = "sft"
    needs_reference: bool = False

    def __call__(self, logits, batch):
        nll = -token_logprobs(logits, batch.targets)
        return nll, {}


@dataclass
class ClippedPGLoss:
    """``-min(r A, clip(r, 1 - clip_low, 1 + clip_high) A) + kl_coef * KL - entropy_coef * H``
    per token, ``r = exp(log p - log p_old)``. Covariance clipping (``cov_clip_ratio`` > 0): among
    the tokens whose centred log-prob x advantage product lies in ``(cov_lower, cov_upper)``, a
    random ``cov_clip_ratio`` of all loss tokens get no policy-gradient term."""

    name: ClassVar[str] = "clipped-pg"
    clip_low: float = 0.2
    clip_high: float = 0.2
    kl_coef: float = 0.0
    kl_estimator: str = "k3"
    entropy_coef: float = 0.0
    temperature: float = 1.0
    cov_clip_ratio: float = 0.0
    cov_lower: float = 1.0
    cov_upper: float = 5.0
    generator: torch.Generator | None = field(default=None, repr=False)

    @property
    def needs_reference(self) -> bool:
        return self.kl_coef > 0

    def __call__(self, logits, batch):
        logp = token_logprobs(logits, batch.targets, self.temperature)
        old = batch.old_logprobs if batch.old_logprobs is not None else logp.detach()
        adv = batch.advantages[:, None].expand_as(logp)
        ratio = torch.exp(logp - old)
        unclipped = ratio * adv
        clipped = torch.clamp(ratio, 1 - self.clip_low, 1 + self.clip_high) * adv
        pg = -torch.minimum(unclipped, clipped)
        metrics = {"clip_fraction": (clipped < unclipped).float(), "ratio": ratio.detach(),
                   "logprob": logp.detach()}
        if self.cov_clip_ratio > 0:
            keep = covariance_keep_mask(logp.detach(), adv, batch.mask, self.cov_clip_ratio, self.cov_lower,
                                        self.cov_upper, self.generator)
            metrics["cov_clipped"] = 1.0 - keep
            pg = pg * keep
        loss = pg
        ent = entropy_of(logits, self.temperature)
        metrics["entropy"] = ent.detach()
        if self.entropy_coef:
            loss = loss - self.entropy_coef * ent
        if batch.ref_logprobs is not None:
            kl = kl_estimate(logp, batch.ref_logprobs, self.kl_estimator)
            metrics["kl"] = kl.detach()
            if self.kl_coef:
                loss = loss + self.kl_coef * kl
        return loss, metrics


def covariance_keep_mask(logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, ratio: float,
                         lower: float, upper: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """1 for tokens that keep their gradient, 0 for the covariance-clipped ones.

    Per loss token the covariance term is ``(log p - mean log p) * (A - mean A)``, means over the
    batch's loss tokens; of the tokens with a term strictly inside ``(lower, upper)``, at most
    ``ceil(ratio * loss tokens)`` are drawn at random and lose their gradient."""
    on = mask > 0
    keep = torch.ones_like(logp)
    n = int(on.sum())
    if n == 0:
        return keep
    lp, ad = logp[on], adv[on]
    cov = (lp - lp.mean()) * (ad - ad.mean())
    candidates = torch.nonzero((cov > lower) & (cov < upper)).squeeze(1)
    budget = min(len(candidates), math.ceil(ratio * n))
    if budget == 0:
        return keep
    chosen = candidates[torch.randperm(len(candidates), generator=generator)[:budget]]
    flat = torch.ones(n, device=logp.device)
    flat[chosen] = 0.0
    keep[on] = flat
    return keep


@dataclass
class ReverseKLLoss:
    """Reverse KL of the student against the teacher, per token, over the teacher's top-k
    support: both distributions renormalised on those ids, then
    ``sum_v p_s(v) (log p_s(v) - log p_t(v))``. With k = the vocabulary it is the exact reverse
    KL. Minimising it is mode-seeking: the student concentrates where the teacher is sure."""

    name: ClassVar[str] = "reverse-kl"
    needs_reference: bool = False
    temperature: float = 1.0

    def __call__(self, logits, batch):
        if batch.teacher_ids is None:
            raise ValueError("reverse-kl needs the teacher's top-k (TokenSample.teacher_ids)")
        student = torch.log_softmax(logits.float() / self.temperature, dim=-1)
        s = student.gather(-1, batch.teacher_ids)  # (B, T, K)
        t = batch.teacher_logprobs
        valid = torch.isfinite(t)
        s = torch.where(valid, s, torch.full_like(s, float("-inf")))
        s_norm = s - torch.logsumexp(s, dim=-1, keepdim=True)
        t_norm = t - torch.logsumexp(t, dim=-1, keepdim=True)
        p_s = torch.where(valid, s_norm.exp(), torch.zeros_like(s_norm))
        diff = torch.where(valid, s_norm - t_norm, torch.zeros_like(s_norm))
        kl = (p_s * diff).sum(dim=-1)
        kl = torch.nan_to_num(kl) * batch.mask  # rows off the loss mask have no support
        return kl, {"reverse_kl": kl.detach()}
