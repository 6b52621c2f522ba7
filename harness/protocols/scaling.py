"""The scaling protocol: one full run (train + evaluate) per point of an axis, gathered into
``scaling[]`` of one result.

Axes (the Early Experience paper's ablations):
- ``expert_fraction``: 1/8, 1/4, 1/2, 1 of the expert trajectories;
- ``branching_k``: K = 1, 2, 4, 8 alternatives per expert state (methods with a ``k`` option);
- ``model``: any list of models (``--set values='["tiny","smollm2-135m"]'``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from agentbench.errors import ConfigError
from agentbench.models import resolve_model
from agentbench.protocols import ProtocolConfig, ProtocolOutput
from agentbench.results import SCALING_PROTOCOL, ScalingPoint

if TYPE_CHECKING:
    from agentbench.session import RunSession

Axis = Literal["expert_fraction", "branching_k", "model"]
DEFAULT_VALUES: dict[str, list[float | int | str]] = {
    "expert_fraction": [0.125, 0.25, 0.5, 1.0],
    "branching_k": [1, 2, 4, 8],
    "model": [],
}


class ScalingConfig(ProtocolConfig):
    axis: Axis = Field("expert_fraction", description="what varies between points")
    values: list[float | int | str] | None = Field(None, description="the axis values (None: the paper's)")
    split: Literal["test", "ood"] = Field("test", description="split every point is evaluated on")


class Scaling:
    name: ClassVar[str] = SCALING_PROTOCOL
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "a full run per point of expert-data fraction, branching factor K or model"
    train_split: ClassVar[str] = "train"
    eval_splits: ClassVar[tuple[str, ...]] = ("test",)
    Config = ScalingConfig

    def __init__(self, config: ScalingConfig | None = None):
        self.config = config or ScalingConfig()

    def values(self) -> list[float | int | str]:
        values = self.config.values if self.config.values is not None else DEFAULT_VALUES[self.config.axis]
        if not values:
            raise ConfigError(f"the {self.config.axis} axis needs --set values=[...]")
        return values

    def run(self, session: RunSession) -> ProtocolOutput:
        axis = self.config.axis
        method_cls = session.spec.method.obj
        if axis == "branching_k" and "k" not in method_cls.Config.model_fields:
            raise ConfigError(f"method {method_cls.name!r} has no branching factor k: the branching_k axis "
                              "needs a method that branches (iwm, sr)")
        points: list[ScalingPoint] = []
        last = None
        for value in self.values():
            label = f"{axis}={value}"
            workdir = session.run_dir / "points" / re.sub(r"[^\w.=+-]+", "_", label)
            method, expert, model = session.method, None, None
            if axis == "expert_fraction":
                expert = session.expert().fraction(float(value))
            elif axis == "branching_k":
                method = method_cls(session.spec.method_config.model_copy(update={"k": int(value)}))
            else:
                model = resolve_model(str(value))
            trained = session.train(method, workdir=workdir, expert=expert, model=model, label=label)
            prompt = trained.prompt or session.prompt_config
            result = session.evaluate(trained.model, self.config.split, prompt, workdir=workdir,
                                      label=f"eval {label}", max_new_tokens=trained.max_new_tokens)
            points.append(ScalingPoint(axis=axis, value=value, method=method_cls.name, env=result.name,
                                       split=result.split, success_rate=result.success_rate,
                                       train=trained.compute))
            last = (trained, result, prompt, model)
        trained, result, prompt, model = last
        # The forgetting check (session.check_forgetting) runs on this last point only.
        return ProtocolOutput(train=trained.compute, envs=[result], model=trained.model, prompt=prompt,
                              scaling=points, max_new_tokens=trained.max_new_tokens, base_model=model)
