"""Token samples: what a trainer consumes, one sequence each, with per-token training data.

Every per-token list is aligned to ``input_ids`` (entry ``t`` belongs to token ``t``); entries
at positions outside ``loss_mask`` are ignored. A sample made from a sampled completion keeps
exactly the sampled token ids, so the loss sees the tokens the policy drew (no re-tokenisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch


@dataclass
class TokenSample:
    input_ids: list[int]
    loss_mask: list[bool]
    advantage: float = 0.0
    """Broadcast to every loss token (policy-gradient losses)."""
    old_logprobs: list[float] | None = None
    """log p of each token under the policy that sampled it (policy-gradient ratio)."""
    teacher_ids: list[list[int]] | None = None
    """Per token, the teacher's top-k token ids (distillation); empty lists off the loss mask."""
    teacher_logprobs: list[list[float]] | None = None
    kind: str = "policy"
    """What the sample teaches (expert, world_model, policy, replay, ...): for logs and accounting."""
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_completion(cls, prompt_ids: Sequence[int], completion_ids: Sequence[int], *,
                        advantage: float = 0.0, old_logprobs: Sequence[float] | None = None,
                        kind: str = "policy", **meta) -> TokenSample:
        """Loss on the completion's tokens only; ``old_logprobs`` are the completion's."""
        p, c = list(prompt_ids), list(completion_ids)
        old = [0.0] * len(p) + list(old_logprobs) if old_logprobs is not None else None
        return cls(p + c, [False] * len(p) + [True] * len(c), advantage, old, kind=kind, meta=meta)

    @property
    def loss_tokens(self) -> int:
        return sum(self.loss_mask)

    def truncated(self, max_len: int) -> TokenSample:
        if len(self.input_ids) <= max_len:
            return self
        cut = slice(0, max_len)
        return TokenSample(
            self.input_ids[cut], self.loss_mask[cut], self.advantage,
            self.old_logprobs[cut] if self.old_logprobs is not None else None,
            self.teacher_ids[cut] if self.teacher_ids is not None else None,
            self.teacher_logprobs[cut] if self.teacher_logprobs is not None else None, self.kind, self.meta)


@dataclass
class TokenBatch:
    """Right-padded tensors of a micro-batch, shifted for next-token prediction: column ``t``
    holds token ``t + 1`` of each sequence and what belongs to it."""

    input_ids: torch.Tensor  # (B, T) the full sequences, fed forward
    attention_mask: torch.Tensor  # (B, T)
    targets: torch.Tensor  # (B, T-1) the predicted tokens
    mask: torch.Tensor  # (B, T-1) float, 1 where a loss token
    advantages: torch.Tensor  # (B,)
    old_logprobs: torch.Tensor | None  # (B, T-1)
    teacher_ids: torch.Tensor | None  # (B, T-1, K)
    teacher_logprobs: torch.Tensor | None  # (B, T-1, K); -inf pads
    samples: list[TokenSample]
    ref_logprobs: torch.Tensor | None = None  # (B, T-1) filled by the trainer when a loss needs it

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())

    def loss_window(self) -> tuple[int, int] | None:
        """The columns ``[lo, hi)`` that hold every loss token of the micro-batch (None: none do)."""
        cols = torch.nonzero(self.mask.sum(dim=0) > 0).squeeze(1)
        if len(cols) == 0:
            return None
        return int(cols[0]), int(cols[-1]) + 1

    def narrowed(self, lo: int, hi: int) -> TokenBatch:
        """The same micro-batch with its per-position tensors cut to columns ``[lo, hi)``; the
        inputs stay whole (they are fed forward), so a loss over the cut sees the same values."""

        def cut(t):
            return t[:, lo:hi] if t is not None else None

        return replace(self, targets=cut(self.targets), mask=cut(self.mask), old_logprobs=cut(self.old_logprobs),
                       teacher_ids=cut(self.teacher_ids), teacher_logprobs=cut(self.teacher_logprobs),
                       ref_logprobs=cut(self.ref_logprobs))

    def to(self, device: torch.device) -> TokenBatch:
        def move(t):
            return t.to(device) if t is not None else None

        return TokenBatch(move(self.input_ids), move(self.attention_mask), move(self.targets), move(self.mask),
                          move(self.advantages), move(self.old_logprobs), move(self.teacher_ids),
                          move(self.teacher_logprobs), self.samples, move(self.ref_logprobs))


def collate(samples: Sequence[TokenSample], pad_id: int) -> TokenBatch:
    width = max(len(s.input_ids) for s in samples)
    n = len(samples)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.float32)
    old = torch.zeros((n, width)) if all(s.old_logprobs is not None for s in samples) else None
    k = max((len(row) for s in samples if s.teacher_ids for row in s.teacher_ids), default=0)
    t_ids = torch.zeros((n, width, k), dtype=torch.long) if k else None
    t_lp = torch.full((n, width, k), float("-inf")) if k else None
    for i, s in enumerate(samples):
        m = len(s.input_ids)
        ids[i, :m] = torch.tensor(s.input_ids)
        attn[i, :m] = 1
        mask[i, :m] = torch.tensor(s.loss_mask, dtype=torch.float32)
        if old is not None:
            old[i, :m] = torch.tensor(s.old_logprobs)
        if k and s.teacher_ids is not None:
            for t, (row_ids, row_lp) in enumerate(zip(s.teacher_ids, s.teacher_logprobs)):
                if row_ids:
                    t_ids[i, t, : len(row_ids)] = torch.tensor(row_ids)
                    t_lp[i, t, : len(row_lp)] = torch.tensor(row_lp)
    return TokenBatch(
        input_ids=ids, attention_mask=attn, targets=ids[:, 1:], mask=mask[:, 1:],
        advantages=torch.tensor([s.advantage for s in samples], dtype=torch.float32),
        old_logprobs=old[:, 1:] if old is not None else None,
        teacher_ids=t_ids[:, 1:] if t_ids is not None else None,
        teacher_logprobs=t_lp[:, 1:] if t_lp is not None else None, samples=list(samples))
