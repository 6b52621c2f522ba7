"""Helpers every supervised method shares: the learning rate a budget implies, imitation's step
count (the budget other methods are held to), one supervised stage, and compute accounting."""

from __future__ import annotations

import time
from pathlib import Path

from agentbench.method import Compute, StageCompute, TrainContext
from agentbench.training.examples import ChatExample
from agentbench.training.resume import TRAINER_DIR
from agentbench.training.sft import SFTStats, steps_for, train_sft
from agentbench.training.trainer import OptimConfig


def learning_rate(ctx: TrainContext, config: OptimConfig) -> float:
    return config.learning_rate or ctx.budget.learning_rate or ctx.base_model.learning_rate


def imitation_steps(ctx: TrainContext, epochs: float | None = None) -> int:
    """The optimizer steps imitation learning takes under the context's budget."""
    n = len(ctx.expert.steps)
    b = ctx.budget
    return steps_for(n, epochs or b.epochs, b.batch_size, b.grad_accum)


def resume_folder(ctx: TrainContext, stage: str) -> Path:
    """Where a stage's resume state lives (removed by the session once the training is saved)."""
    return ctx.workdir / TRAINER_DIR / stage


def run_stage(ctx: TrainContext, model, tokenizer, examples: list[ChatExample], steps: int,
              config: OptimConfig, stage: str):
    """One supervised stage with the budget's batch shape; reports progress as ``stage``."""
    b = ctx.budget
    return train_sft(
        model, tokenizer, examples, steps=steps, batch_size=b.batch_size, grad_accum=b.grad_accum,
        max_seq_len=b.max_seq_len, learning_rate=learning_rate(ctx, config), config=config,
        seed=ctx.seed, log_path=ctx.log_path, stage=stage,
        on_step=lambda done, total: ctx.on_progress(stage, done, total), resume_dir=resume_folder(ctx, stage),
    )


def stage_compute(name: str, stats: SFTStats) -> StageCompute:
    return StageCompute(name=name, examples=stats.examples, optimizer_steps=stats.optimizer_steps,
                        tokens=stats.tokens, loss_tokens=stats.loss_tokens, wall_time_s=stats.wall_time_s)


def compute_from(stages: list[tuple[str, SFTStats]], ctx: TrainContext, started: float, **extra) -> Compute:
    total = SFTStats()
    for _, stats in stages:
        total = total.add(stats)
    counters = {"dropped_examples": total.dropped, "expert_examples": len(ctx.expert.steps),
                "expert_failed_tasks": len(ctx.expert.failed_tasks), "expert_env_errors": len(ctx.expert.env_errors),
                **extra.pop("counters", {})}
    return Compute(
        examples=total.examples, optimizer_steps=total.optimizer_steps, tokens=total.tokens,
        loss_tokens=total.loss_tokens, wall_time_s=time.perf_counter() - started,
        env_steps=ctx.expert.env_steps + extra.pop("env_steps", 0), model_calls=extra.pop("model_calls", 0),
        stages=[stage_compute(name, stats) for name, stats in stages], counters=counters,
        expert_data_sha256=ctx.expert.sha256(),
        expert_trajectories=len({s.task_id for s in ctx.expert.steps}),
    )
