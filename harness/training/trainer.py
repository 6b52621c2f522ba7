"""The one token-level trainer: a model, its optimizer and schedule, and ``step`` with any loss.

``PolicyTrainer.step(samples, loss)`` is one optimizer update over ``samples`` (split into
micro-batches whose losses add up to the step's loss, normalised once for the whole step),
with gradient clipping, the learning-rate schedule, and per-step metrics. Full fine-tuning or
LoRA (merged when saved). The trainer's module can be shared with an ``hf`` policy
(:meth:`HFBackend.sharing`): rollouts then sample from the weights just updated, with no copy.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from agentbench.training import distributed
from agentbench.training.batch import TokenBatch, TokenSample, collate
from agentbench.training.losses import Loss, Normaliser, aggregate, token_logprobs


class OptimConfig(BaseModel):
    """Optimiser settings shared by every trainer (``--set key=value``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float | None = Field(None, gt=0, description="None: the budget's, else the model's default")
    lora: bool = Field(False, description="train LoRA adapters (merged into the saved checkpoint)")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    warmup_fraction: float = Field(0.05, ge=0, lt=1)
    lr_scheduler: str = Field("cosine", description="any transformers scheduler name")
    gradient_checkpointing: bool = Field(False)
    max_grad_norm: float = Field(1.0, gt=0, description="gradients are clipped to this global norm")


@dataclass
class StepMetrics:
    loss: float
    grad_norm: float
    learning_rate: float
    tokens: int
    """Non-padding tokens fed forward."""
    loss_tokens: int
    sequences: int
    seconds: float
    extra: dict[str, float]

    def as_dict(self) -> dict[str, float]:
        return {"loss": self.loss, "grad_norm": self.grad_norm, "learning_rate": self.learning_rate,
                "tokens": self.tokens, "loss_tokens": self.loss_tokens, "sequences": self.sequences,
                "update_s": self.seconds, **self.extra}


class PolicyTrainer:
    def __init__(self, model: Any, tokenizer: Any, config: OptimConfig, *, learning_rate: float,
                 total_steps: int, seed: int, micro_batch: int = 8, aggregation: str = "token-mean",
                 norm: float = 1.0, reference: Any = None):
        from transformers import get_scheduler

        torch.manual_seed(seed)
        if config.lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                     target_modules="all-linear", task_type="CAUSAL_LM"))
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        self.sharded = False
        if distributed.init():  # under accelerate launch / torchrun: data-parallel, see distributed.py
            distributed.broadcast_parameters(model)
            if distributed.fsdp():
                if config.lora:
                    from agentbench.errors import ConfigError

                    raise ConfigError("FSDP with LoRA is not supported: train LoRA data-parallel (ddp.yaml)")
                model = distributed.shard_model(model)
                self.sharded = True
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.micro_batch = micro_batch
        self.aggregation = aggregation
        self.norm = norm
        self.device = next(model.parameters()).device
        self.reference = reference
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=config.weight_decay)
        self.scheduler = get_scheduler(config.lr_scheduler, self.optimizer,
                                       num_warmup_steps=int(config.warmup_fraction * total_steps),
                                       num_training_steps=total_steps)
        self.steps_done = 0
        self.model.train()

    @staticmethod
    def frozen_copy(model: Any) -> Any:
        """A frozen copy of ``model`` (the KL reference)."""
        ref = copy.deepcopy(model)
        ref.eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        return ref

    def _logits(self, model: Any, batch: TokenBatch, window: tuple[int, int] | None = None) -> torch.Tensor:
        """Next-token logits aligned with ``batch.targets``; with ``window`` only its columns
        ``[lo, hi)``: the vocabulary projection (and every softmax over it) then skips the
        prompt positions, which carry no loss."""
        if window is None:
            return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
        lo, hi = window
        if _keeps_logits(model):
            keep = torch.arange(lo, hi, device=batch.input_ids.device)
            return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=keep).logits
        return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, lo:hi]

    @torch.no_grad()
    def logprobs(self, samples: Sequence[TokenSample], temperature: float = 1.0,
                 model: Any = None) -> list[list[float]]:
        """Per-token log-probs of each sample under ``model`` (default: the trained one), aligned
        to ``input_ids`` (0.0 at position 0)."""
        model = model or self.model
        was = model.training
        model.eval()
        out: list[list[float]] = []
        try:
            for i in range(0, len(samples), self.micro_batch):
                batch = collate(samples[i : i + self.micro_batch], self.tokenizer.pad_token_id).to(self.device)
                lp = token_logprobs(self._logits(model, batch), batch.targets, temperature)
                for row, s in zip(lp.tolist(), batch.samples):
                    out.append([0.0] + row[: len(s.input_ids) - 1])
        finally:
            model.train(was)
        return out

    def _loss(self, batch: TokenBatch, loss: Loss, normaliser: Normaliser) -> tuple[torch.Tensor, dict[str, float]]:
        """One micro-batch's share of the step's loss (aggregated), and its metrics summed over
        its loss tokens. Computed over the columns that hold loss tokens only (the rest
        contribute nothing)."""
        window = batch.loss_window() or (0, batch.mask.shape[1])
        batch = batch.narrowed(*window)
        if loss.needs_reference:
            with torch.no_grad():
                batch.ref_logprobs = token_logprobs(self._logits(self.reference, batch, window), batch.targets,
                                                    getattr(loss, "temperature", 1.0))
        per_token, metrics = loss(self._logits(self.model, batch, window), batch)
        sums = {key: float((t * batch.mask).sum()) for key, t in metrics.items()}
        return aggregate(per_token, batch.mask, self.aggregation, normaliser), sums

    def step(self, samples: Sequence[TokenSample], loss: Loss) -> StepMetrics:
        """One optimizer update over ``samples`` with ``loss``."""
        started = time.perf_counter()
        samples = [s for s in samples if s.loss_tokens > 0]
        if not samples:
            raise ValueError("an optimizer step needs at least one sample with a loss token")
        normaliser = Normaliser(tokens=sum(s.loss_tokens for s in samples), sequences=len(samples),
                                norm=self.norm)
        self.optimizer.zero_grad(set_to_none=True)
        total, tokens = 0.0, 0
        sums: dict[str, float] = {}
        mine = distributed.shard(samples)  # all of them in one process; every N-th of N ranks
        scale = distributed.world_size() if self.sharded else 1  # FSDP averages over ranks; the step sums
        for i in range(0, len(mine), self.micro_batch):
            batch = collate(mine[i : i + self.micro_batch], self.tokenizer.pad_token_id).to(self.device)
            tokens += int(batch.attention_mask.sum())
            value, metrics = self._loss(batch, loss, normaliser)
            (value * scale).backward()
            total += float(value.detach())
            for key, amount in metrics.items():
                sums[key] = sums.get(key, 0.0) + amount
        if self.sharded:  # every forward is a collective: a rank short of samples runs zero-weighted ones
            idle = distributed.micro_batches(len(samples), self.micro_batch) - math.ceil(len(mine) / self.micro_batch)
            batch = collate(samples[:1], self.tokenizer.pad_token_id).to(self.device)
            for _ in range(idle):
                (self._loss(batch, loss, normaliser)[0] * 0.0).backward()
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.sharded:  # (FSDP reduce-scatters, summing, in backward)
            distributed.sum_gradients(params)  # ranks' shares add up to the whole step's gradient
        total, tokens, sums = distributed.sum_metrics(total, tokens, sums)
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps_done += 1
        extra = {k: v / max(normaliser.tokens, 1) for k, v in sums.items()}
        return StepMetrics(loss=total, grad_norm=grad_norm, learning_rate=lr, tokens=tokens,
                           loss_tokens=normaliser.tokens, sequences=len(samples),
                           seconds=time.perf_counter() - started, extra=extra)

    def state_dict(self, weights_only: bool = False) -> dict[str, Any]:
        """What a resumed training needs to continue exactly (one process: see ``resume.py``);
        ``weights_only``: the weights of a finished stage, which no step will follow."""
        # the trained parameters only: LoRA's adapters, not the frozen base they sit on
        weights = {name: p.detach() for name, p in self.model.named_parameters() if p.requires_grad}
        if weights_only:
            return {"model": weights, "steps_done": self.steps_done}
        return {"model": weights, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "steps_done": self.steps_done,
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output, in place (a policy sharing the module sees it)."""
        trained = {name for name, p in self.model.named_parameters() if p.requires_grad}
        if set(state["model"]) != trained:
            raise ValueError("the saved training state holds other parameters than this model trains")
        self.model.load_state_dict(state["model"], strict=False)
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
        self.steps_done = state["steps_done"]

    def merged(self) -> Any:
        """The trained model as a plain transformers model (LoRA adapters merged; under FSDP, an
        unsharded copy with the full weights, on every rank)."""
        if self.sharded:
            return distributed.unshard(self.model)
        if self.config.lora:
            return self.model.merge_and_unload()
        return self.model


def _keeps_logits(model: Any) -> bool:
    """Whether ``model``'s forward takes ``logits_to_keep`` as positions (transformers' causal
    LMs do; a PEFT wrapper passes it on to the model it wraps)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _forward_takes_logits_to_keep(type(base))


@functools.cache
def _forward_takes_logits_to_keep(cls: type) -> bool:
    return "logits_to_keep" in inspect.signature(cls.forward).parameters
