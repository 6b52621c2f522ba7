"""The RL-compatibility protocol (Early Experience, section on RL): does a method's checkpoint
make a better start for RL than imitation does?

Each start (``none``, the initial model, and every listed method, trained as it would be under
in-domain and shared with the folder's other runs) is evaluated, then trained by the *same* RL
recipe (``grpo`` by default: same steps, hyper-parameters, seeds and tasks) and evaluated again.
One result holds, per start, success before and after RL on each split, and both trainings'
compute. ``agentbench-run --method il,iwm --protocol rl-compat`` lists the methods; ``none`` is
always added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from agentbench import registry
from agentbench.errors import ConfigError
from agentbench.method import Compute
from agentbench.protocols import ProtocolConfig, ProtocolOutput
from agentbench.results import RLCompatCell, RLCompatStart

if TYPE_CHECKING:
    from agentbench.session import RunSession


class RLCompatConfig(ProtocolConfig):
    starts: list[str] = Field(default_factory=lambda: ["il"],
                              description="methods whose checkpoints RL starts from (none is always added)")
    rl_method: str = Field("grpo", description="the shared RL recipe (a registered online method: grpo, spear)")
    splits: tuple[str, ...] = Field(("test",), description="splits evaluated before and after RL")


class RLCompat:
    name: ClassVar[str] = "rl-compat"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "RL (grpo) from each method's checkpoint and from the initial model, before/after"
    train_split: ClassVar[str] = "train"
    eval_splits: ClassVar[tuple[str, ...]] = ("test",)
    Config = RLCompatConfig
    methods_are_starts: ClassVar[bool] = True
    """``--method il,iwm`` names the starts; the run's method is the RL recipe."""
    recipe_method: ClassVar[str] = "grpo"

    def __init__(self, config: RLCompatConfig | None = None):
        self.config = config or RLCompatConfig()

    def starts(self) -> list[str]:
        names = ["none", *[s for s in self.config.starts if s != "none"]]
        for name in names:
            if name not in registry.methods:
                registry.methods.resolve(name)  # one-line unknown-name error with suggestions
        return names

    def run(self, session: RunSession) -> ProtocolOutput:
        spec = session.spec
        if spec.method.name != self.config.rl_method:
            raise ConfigError(f"rl-compat runs the RL recipe {self.config.rl_method!r} but the run's method is "
                              f"{spec.method.name!r}")
        rl = session.method  # the recipe, with the run's --set method options
        starts = self.starts()
        headline = starts[1] if len(starts) > 1 else starts[0]
        entries: list[RLCompatStart] = []
        headline_out = None
        for start in starts:
            folder = session.run_dir / "starts" / start
            if start == "none":
                start_model, start_compute = session.base_model, Compute()
            else:
                trained = session.dependency(start, None, session.expert(), session.base_model, spec.budget,
                                             label=f"start {start}")
                start_model, start_compute = trained.model, trained.compute
            before = [session.evaluate(start_model, split, session.prompt_config, workdir=folder / "before",
                                       label=f"{start}: eval {split} before RL") for split in self.config.splits]
            tuned = session.train(rl, workdir=folder / "rl", model=start_model, label=f"{start}: {rl.name}")
            after_dir = session.run_dir if start == headline else folder / "after"
            after = [session.evaluate(tuned.model, split, session.prompt_config, workdir=after_dir,
                                      label=f"{start}: eval {split} after RL") for split in self.config.splits]
            entries.append(RLCompatStart(
                start=start, folder=f"starts/{start}",
                checkpoint_sha256=start_model.weights_sha256() if start != "none" else None,
                start_train=start_compute, rl_train=tuned.compute,
                cells=[RLCompatCell(split=b.split, before=b, after=a) for b, a in zip(before, after)]))
            if start == headline:
                headline_out = (tuned, after)
        tuned, after = headline_out
        return ProtocolOutput(train=tuned.compute, envs=after, model=tuned.model, prompt=session.prompt_config,
                              rl_compat=entries)
