"""``none``: evaluate the model as it is (the untrained reference row)."""

from __future__ import annotations

from typing import ClassVar

from agentbench.method import Compute, MethodConfig, TrainContext, TrainOutput


class NoTraining:
    name: ClassVar[str] = "none"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "no training: evaluate the initial model"
    uses_expert: ClassVar[bool] = False
    Config = MethodConfig

    def __init__(self, config: MethodConfig | None = None):
        self.config = config or MethodConfig()

    def train(self, ctx: TrainContext) -> TrainOutput:
        return TrainOutput(model=ctx.base_model, compute=Compute())
