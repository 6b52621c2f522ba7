"""Supervised fine-tuning on chat examples, through the one token-level trainer
(:class:`~agentbench.training.trainer.PolicyTrainer` with :class:`SFTLoss`): loss on the chosen
assistant replies, exact accounting of examples and tokens, and a JSONL train log."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from agentbench.training.batch import TokenSample
from agentbench.training.examples import IGNORE_INDEX, ChatExample, tokenize_example
from agentbench.training.losses import SFTLoss
from agentbench.training.resume import Resume, data_hash, rewind_log
from agentbench.training.trainer import OptimConfig, PolicyTrainer

SFTConfig = OptimConfig
"""The optimiser settings of a supervised method (kept under its historical name)."""


@dataclass
class SFTStats:
    examples: int = 0
    """Training sequences consumed (with repeats across epochs)."""
    optimizer_steps: int = 0
    tokens: int = 0
    """Non-padding tokens fed forward."""
    loss_tokens: int = 0
    wall_time_s: float = 0.0
    dropped: int = 0
    """Examples with no trainable token left after truncation."""
    final_loss: float | None = None

    def add(self, other: SFTStats) -> SFTStats:
        return SFTStats(
            self.examples + other.examples, self.optimizer_steps + other.optimizer_steps,
            self.tokens + other.tokens, self.loss_tokens + other.loss_tokens,
            self.wall_time_s + other.wall_time_s, self.dropped + other.dropped,
            other.final_loss if other.final_loss is not None else self.final_loss,
        )


def steps_for(n_examples: int, epochs: float, batch_size: int, grad_accum: int, world_size: int = 1) -> int:
    """Optimizer steps of ``epochs`` passes over ``n_examples`` (at least one)."""
    per_step = batch_size * grad_accum * world_size
    return max(1, math.ceil(n_examples * epochs / per_step))


def shuffled_stream(n: int, seed: int) -> Iterator[int]:
    """Indices 0..n-1 in a fresh seeded permutation per epoch, forever."""
    epoch = 0
    while True:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        yield from torch.randperm(n, generator=generator).tolist()
        epoch += 1


def to_samples(tokenizer: Any, examples: Sequence[ChatExample], max_seq_len: int) -> tuple[list[TokenSample], int]:
    """Token samples with loss on the trained replies, and how many examples were cut away."""
    samples: list[TokenSample] = []
    for ex in examples:
        t = tokenize_example(tokenizer, ex, max_seq_len)
        if t is not None:
            samples.append(TokenSample(t.input_ids, [label != IGNORE_INDEX for label in t.labels], kind=ex.kind))
    return samples, len(examples) - len(samples)


def train_sft(
    model: Any,
    tokenizer: Any,
    examples: Sequence[ChatExample],
    *,
    steps: int,
    batch_size: int,
    grad_accum: int,
    max_seq_len: int,
    learning_rate: float,
    config: OptimConfig,
    seed: int,
    log_path: Path | None = None,
    stage: str = "sft",
    on_step: Callable[[int, int], None] | None = None,
    resume_dir: Path | None = None,
) -> tuple[Any, SFTStats]:
    """Train ``model`` for exactly ``steps`` optimizer steps; returns the (merged) model and stats.
    With ``resume_dir``, a stage killed part-way continues from its last save (``resume.py``) and a
    finished one is restored without training."""
    samples, dropped = to_samples(tokenizer, examples, max_seq_len)
    if not samples:
        raise ValueError(f"stage {stage}: no trainable examples (all {dropped} were cut away)")
    trainer = PolicyTrainer(model, tokenizer, config, learning_rate=learning_rate, total_steps=steps, seed=seed,
                            micro_batch=batch_size, aggregation="token-mean")
    per_step = batch_size * grad_accum
    resume = Resume(resume_dir, {"stage": stage, "steps": steps, "per_step": per_step, "seed": seed,
                                 "data": data_hash(samples)})
    loop = resume.load(trainer)
    stats = SFTStats(**loop["stats"]) if loop is not None else SFTStats(dropped=dropped)
    first = loop["step"] + 1 if loop is not None else 1
    rewind_log(log_path, stage, first - 1)
    order = shuffled_stream(len(samples), seed)
    for _ in range((first - 1) * per_step):
        next(order)
    loss = SFTLoss()
    started = time.perf_counter() - stats.wall_time_s
    for step in range(first, steps + 1):
        batch = [samples[next(order)] for _ in range(per_step)]
        m = trainer.step(batch, loss)
        stats.examples += m.sequences
        stats.tokens += m.tokens
        stats.loss_tokens += m.loss_tokens
        stats.final_loss = m.loss
        if log_path is not None:
            with open(log_path, "a") as fh:
                fh.write(json.dumps({"stage": stage, "step": step, "loss": m.loss, "grad_norm": m.grad_norm,
                                     "learning_rate": m.learning_rate}) + "\n")
        stats.optimizer_steps = step
        stats.wall_time_s = time.perf_counter() - started
        if step == steps:  # a finished stage's weights: a later stage may be the one killed
            resume.save(trainer, {"step": step, "stats": asdict(stats)}, weights_only=True)
        elif resume.due():
            resume.save(trainer, {"step": step, "stats": asdict(stats)})
        if on_step is not None:
            on_step(step, steps)
    stats.optimizer_steps = steps
    stats.wall_time_s = time.perf_counter() - started
    return trainer.merged(), stats
