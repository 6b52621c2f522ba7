"""``il``: imitation learning, supervised fine-tuning on expert steps with loss on the agent's
replies only. Its optimizer-step count is the budget the Early Experience methods must match."""

from __future__ import annotations

import time
from typing import ClassVar

from pydantic import Field

from agentbench.method import TrainContext, TrainOutput
from agentbench.training.checkpoints import load_for_training, save_checkpoint
from agentbench.training.stages import compute_from, imitation_steps, run_stage
from agentbench.training.trainer import OptimConfig


class ImitationConfig(OptimConfig):
    epochs: float | None = Field(None, gt=0, description="passes over the expert data (None: the budget's)")


class ImitationLearning:
    name: ClassVar[str] = "il"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "imitation learning: SFT on expert steps, loss on the agent's replies"
    Config = ImitationConfig

    def __init__(self, config: ImitationConfig | None = None):
        self.config = config or ImitationConfig()

    def train(self, ctx: TrainContext) -> TrainOutput:
        started = time.perf_counter()
        examples = ctx.expert.examples(ctx.prompts())
        model, tokenizer = load_for_training(ctx.base_model)
        model, stats = run_stage(ctx, model, tokenizer, examples, imitation_steps(ctx, self.config.epochs),
                                 self.config, "imitation")
        ref = save_checkpoint(model, tokenizer, ctx.workdir / "checkpoint", ctx.base_model, self.name)
        return TrainOutput(model=ref, compute=compute_from([("imitation", stats)], ctx, started))
