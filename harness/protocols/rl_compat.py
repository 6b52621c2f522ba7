"""The RL-compatibility protocol (Early Experience, section on RL): does a method's checkpoint
make a better start for RL than imitation does?

Each start (``none``, the initial model, and every listed method, trained as it would be under
in-domain and shared with the folder's other runs) is evaluated, then trained by the *same* RL
recipe (``grpo`` by default: same steps, hyper-parameters, seeds and tasks) and evaluated again.
One result holds, per start, success before and after RL on each split, and both trainings'
compute. ``agentbench-run --method il,iwm --protocol rl-compat`` lists the methods; ``none`` is
always added.

Each start's work (its training, before-RL evaluation, RL and after-RL evaluation) is an entry of
the output folder's shared cache, keyed by everything that determines it. A process takes the
starts no other process holds and then waits for the others, so the same command started twice
into one output folder (the second with its own ``--run-id``) splits the starts between two
processes, and both write the same result. The run folder keeps copies of each start's small
files under ``starts/<start>/`` (episodes, the RL curve, keys); checkpoints stay in the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from agentbench import registry
from agentbench.errors import ConfigError
from agentbench.fileio import atomic_copy, atomic_write_text
from agentbench.locking import LOCK_FILE
from agentbench.method import Compute
from agentbench.protocols import ProtocolConfig, ProtocolOutput
from agentbench.results import RLCompatCell, RLCompatStart

if TYPE_CHECKING:
    from agentbench.session import RunSession

START_ENTRY = "rlstart"
"""Shared-cache kind of one start's work (before/, rl/, after/ and ``start.json``)."""
START_FILE = "start.json"


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
        keys = {start: self.start_key(session, start) for start in starts}
        done: dict[str, RLCompatStart] = {}
        # Each start's work is a shared-cache entry: take the ones no other process works on
        # first, then wait for the rest (another process running the same command into the same
        # output folder, with its own --run-id, has them). Past a start held elsewhere, take the
        # rest from the end of the list: the other process is working forward from the front.
        pending, backward = list(starts), False
        while pending:
            start = pending.pop(-1 if backward else 0)
            entry = session.shared.try_folder(START_ENTRY, keys[start])
            if entry is None:
                backward = True
            else:
                done[start] = self._start(session, rl, start, entry)
        for start in starts:
            if start not in done:
                done[start] = self._start(session, rl, start, session.shared.folder(START_ENTRY, keys[start]))
        entries = [done[start] for start in starts]
        for start in starts:
            self._copy_files(session.shared.path(START_ENTRY, keys[start]), session.run_dir / "starts" / start)
        entry = session.shared.path(START_ENTRY, keys[headline])
        for name in ("episodes.jsonl", "evaluation_key.json"):  # the headline's after-RL episodes are the run's
            atomic_copy(entry / "after" / name, session.run_dir / name)
        from agentbench.session import TRAIN_OUTPUT, load_train_output

        tuned = load_train_output(entry / "rl" / TRAIN_OUTPUT)
        after = [cell.after for cell in done[headline].cells]
        return ProtocolOutput(train=tuned.compute, envs=after, model=tuned.model, prompt=session.prompt_config,
                              rl_compat=entries)

    def start_key(self, session: RunSession, start: str) -> dict[str, Any]:
        """Everything that determines one start's before/RL/after work, computable before any of it
        runs: the start's own training key (or the initial model's weights), the recipe's key and
        the evaluation settings."""
        spec = session.spec
        if start == "none":
            origin: dict[str, Any] = {"model": session.base_model.weights_sha256()}
        else:
            method_cls = registry.methods.get(start)
            method = method_cls(method_cls.Config())
            expert = session.expert() if getattr(method, "uses_expert", True) else None
            origin = session.training_key(start, method.config, expert, session.base_model, spec.budget)
        rl = session.method
        recipe = session.training_key(rl.name, rl.config, None, session.base_model, spec.budget)
        recipe.pop("model")
        return {"protocol": self.name, "version": self.version, "start": start, "origin": origin, "recipe": recipe,
                "splits": list(self.config.splits), "backend": spec.backend,
                "env_config": spec.env_config.model_dump(mode="json"),
                "generation": spec.sampling.model_dump(mode="json"), "limits": spec.limits.model_dump(mode="json")}

    def _start(self, session: RunSession, rl: Any, start: str, entry: Path) -> RLCompatStart:
        """One start's before/RL/after work in its entry (held by this process), or what an earlier
        process recorded there; the entry is released when this returns."""
        try:
            marker = entry / START_FILE
            if marker.exists():
                return RLCompatStart.model_validate_json(marker.read_text())
            if start == "none":
                start_model, start_compute = session.base_model, Compute()
            else:
                trained = session.dependency(start, None, session.expert(), session.base_model, session.spec.budget,
                                             label=f"start {start}")
                start_model, start_compute = trained.model, trained.compute
            before = [session.evaluate(start_model, split, session.prompt_config, workdir=entry / "before",
                                       label=f"{start}: eval {split} before RL") for split in self.config.splits]
            tuned = session.train(rl, workdir=entry / "rl", model=start_model, label=f"{start}: {rl.name}")
            after = [session.evaluate(tuned.model, split, session.prompt_config, workdir=entry / "after",
                                      label=f"{start}: eval {split} after RL") for split in self.config.splits]
            record = RLCompatStart(
                start=start, folder=f"starts/{start}",
                checkpoint_sha256=start_model.weights_sha256() if start != "none" else None,
                start_train=start_compute, rl_train=tuned.compute,
                cells=[RLCompatCell(split=b.split, before=b, after=a) for b, a in zip(before, after)])
            atomic_write_text(marker, record.model_dump_json(indent=2))
            return record
        finally:
            session.shared.release(entry)

    @staticmethod
    def _copy_files(entry: Path, folder: Path) -> None:
        """The start's small files (episodes, curves, keys; not checkpoints) into the run folder;
        ``train_output.json`` rewritten so that its checkpoint path still points into the cache."""
        from agentbench.session import TRAIN_OUTPUT, load_train_output, save_train_output

        for part in ("before", "rl", "after"):
            for path in sorted((entry / part).glob("*")):
                if path.name == TRAIN_OUTPUT:
                    save_train_output(folder / part / path.name, load_train_output(path))
                elif path.is_file() and path.name != LOCK_FILE:
                    atomic_copy(path, folder / part / path.name)
