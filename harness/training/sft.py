"""Supervised fine-tuning on chat examples through transformers' Trainer (full or LoRA).

The Trainer gives us accelerate's device placement and multi-GPU data parallelism for free
(``accelerate launch agentbench-run ...``); we add exact step budgets, per-token accounting
and a JSONL train log.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from agentbench.training.examples import IGNORE_INDEX, ChatExample, tokenize_all


class SFTConfig(BaseModel):
    """Optimiser settings shared by every supervised trainer (``--set key=value``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float | None = Field(None, gt=0, description="None: the budget's, else the model's default")
    lora: bool = Field(False, description="train LoRA adapters (merged into the saved checkpoint)")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    warmup_fraction: float = Field(0.05, ge=0, lt=1)
    lr_scheduler: str = Field("cosine", description="any transformers scheduler name")
    gradient_checkpointing: bool = Field(False)


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


class _Collator:
    """Right-pads a batch and counts what passes through, so the accounting is exact."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id
        self.examples = self.tokens = self.loss_tokens = 0

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[row, :n] = torch.tensor(b["input_ids"])
            labels[row, :n] = torch.tensor(b["labels"])
            mask[row, :n] = 1
        self.examples += len(batch)
        self.tokens += int(mask.sum())
        self.loss_tokens += int((labels != IGNORE_INDEX).sum())
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


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
    config: SFTConfig,
    seed: int,
    output_dir: Path,
    log_path: Path | None = None,
    stage: str = "sft",
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[Any, SFTStats]:
    """Train ``model`` for exactly ``steps`` optimizer steps; returns the (merged) model and stats."""
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments
    from transformers.utils import logging as hf_logging

    tokenized, dropped = tokenize_all(tokenizer, examples, max_seq_len)
    if not tokenized:
        raise ValueError(f"stage {stage}: no trainable examples (all {dropped} were cut away)")
    dataset = [{"input_ids": t.input_ids, "labels": t.labels} for t in tokenized]

    if config.lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()

    collator = _Collator(tokenizer.pad_token_id)
    losses: list[float] = []

    class _Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
                if log_path is not None:
                    with open(log_path, "a") as fh:
                        fh.write(json.dumps({"stage": stage, "step": state.global_step, **logs}) + "\n")

        def on_step_end(self, args, state, control, **kw):
            if on_step is not None:
                on_step(state.global_step, steps)

    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=int(config.warmup_fraction * steps),
        weight_decay=config.weight_decay,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        disable_tqdm=True,
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                          callbacks=[_Log()])
        trainer.remove_callback(PrinterCallback)  # our own log and progress bars replace it
        started = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - started
    finally:
        hf_logging.set_verbosity(verbosity)
    model = trainer.model
    if config.lora:
        model = model.merge_and_unload()
    stats = SFTStats(examples=collator.examples, optimizer_steps=trainer.state.global_step,
                     tokens=collator.tokens, loss_tokens=collator.loss_tokens, wall_time_s=elapsed,
                     dropped=dropped, final_loss=losses[-1] if losses else None)
    return model, stats
