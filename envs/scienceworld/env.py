"""ScienceWorld (AgentGym's SciWorld): elementary-science tasks in a simulated house, in text.

The simulator is the PyPI package ``scienceworld`` (its bundled jar, on the machine's Java),
driven through :mod:`.simulator`: one JVM per process, shared by every env instance, each with
its own world. A task is a ScienceWorld task type and one of its variations. ``seed`` is unused:
a variation seeds the world's own randomness, so the same task and actions replay exactly.

Observations: at reset the room the agent starts in (ScienceWorld's first ``look around``) and
the inventory; after each action the game's reply. Every observation ends with the current room
and the task description, since the prompt keeps only the last turns. ``look_every_step``
appends the whole room description each turn (the DRRN-style state of the ScienceWorld paper).
The game's messages for unparsable input mark a move invalid; the game did not change then.

Score: ScienceWorld scores 0-100 (here /100). 100 is success; a negative score (e.g. focusing
on the wrong object) fails the task. Both end the episode. The reward of a step is the score
change, and the progress rate is the best score so far, clipped to [0, 1].

Expert: the gold action sequence ScienceWorld generates for a variation, played one action at a
time. It is made once per variation and process (on a separate world, up to seconds), and it
holds only along its own path: after any valid action that is not its next one there is no
expert (unparsable actions leave the world and the expert as they were).

Splits: ``train`` and ``test`` are ScienceWorld's official train and test variations of the
in-domain task types, taken round-robin over the types; ``ood`` is the official test variations
of held-out task types, each a harder or composed sibling of an in-domain one
(``find-animal``, ``lifespan-longest-lived-then-shortest-lived``,
``test-conductivity-of-unknown-substances``,
``power-component-renewable-vs-nonrenewable-energy``, ``chemistry-mix-paint-tertiary-color``,
``identify-life-stages-1``). The long-horizon types (boiling, melting, freezing, growing plants,
inclined planes, Mendelian genetics: gold paths of 40-740 actions) are left out by default;
``task_types`` / ``ood_task_types`` choose others (raise the turn limit to match).
"""

from __future__ import annotations

import random
import re
from functools import cache
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from agentbench.env import Availability, BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task
from agentbench.extras import needs_extra

try:
    from scienceworld.constants import TASKS
    from scienceworld.version import __version__ as SCIENCEWORLD_VERSION

    from agentbench.envs.scienceworld.simulator import JavaUnavailable, Simulator

    _MISSING: ImportError | None = None
except ImportError as exc:  # the env is listed anyway and says what to install
    _MISSING = exc
    TASKS, SCIENCEWORLD_VERSION = [], None

IN_DOMAIN_TYPES = (
    "find-living-thing", "find-non-living-thing", "find-plant",
    "lifespan-longest-lived", "lifespan-shortest-lived",
    "test-conductivity", "power-component",
    "use-thermometer", "measure-melting-point-known-substance",
    "chemistry-mix-paint-secondary-color", "identify-life-stages-2",
)
OOD_TYPES = (
    "find-animal", "lifespan-longest-lived-then-shortest-lived",
    "test-conductivity-of-unknown-substances", "power-component-renewable-vs-nonrenewable-energy",
    "chemistry-mix-paint-tertiary-color", "identify-life-stages-1",
)
SIMPLIFICATIONS = ("easy", "teleportAction", "selfWateringFlowerPots", "openContainers", "openDoors",
                   "noElectricalAction")
# Which official variations each split draws on.
_OFFICIAL_SET = {"train": "train", "test": "test", "ood": "test"}
# The game's replies to input it could not parse into an action (the world did not change).
_UNPARSED = ("No known action matches that input", "Unknown action", "ERROR:")
_NOT_ADMISSIBLE = frozenset({"reset task"})
_ROOM = re.compile(r"called the ([^.\n]+)\.")


class ScienceWorldConfig(EnvConfig):
    n_train: int = Field(1000, ge=1, description="tasks in the train split (round-robin over task_types)")
    n_test: int = Field(200, ge=1, description="tasks in the test split (round-robin over task_types)")
    n_ood: int = Field(200, ge=1, description="tasks in the ood split (round-robin over ood_task_types)")
    task_types: tuple[str, ...] = Field(IN_DOMAIN_TYPES, min_length=1,
                                        description="ScienceWorld task types of train and test")
    ood_task_types: tuple[str, ...] = Field(OOD_TYPES, min_length=1,
                                            description="held-out ScienceWorld task types of ood")
    simplifications: str = Field("", description="ScienceWorld simplifications, comma-separated "
                                 "(e.g. 'easy', or 'teleportAction,openDoors'); none by default")
    look_every_step: bool = Field(False, description="append the current room's full description to "
                                  "every observation (longer prompts); off: only its name")

    @field_validator("task_types", "ood_task_types")
    @classmethod
    def _types_exist(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        known = {t["task_name"] for t in TASKS}
        for name in names:
            if known and name not in known:
                from agentbench.errors import closest

                hint = closest(name, known)
                raise ValueError(f"unknown ScienceWorld task type {name!r}"
                                 + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""))
        if len(set(names)) != len(names):
            raise ValueError("a task type is listed twice")
        return names

    @field_validator("simplifications")
    @classmethod
    def _simplifications_exist(cls, value: str) -> str:
        for item in filter(None, value.split(",")):
            if item not in SIMPLIFICATIONS:
                raise ValueError(f"unknown simplification {item!r} (known: {', '.join(SIMPLIFICATIONS)})")
        return value

    @model_validator(mode="after")
    def _ood_is_held_out(self) -> ScienceWorldConfig:
        shared = set(self.task_types) & set(self.ood_task_types)
        if shared:
            raise ValueError(f"ood task types must be held out of task_types: {', '.join(sorted(shared))}")
        return self


class ScienceWorld(BaseEnv):
    name: ClassVar[str] = "scienceworld"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "ScienceWorld science tasks (AgentGym SciWorld); scienceworld simulator, gold-path expert"
    Config = ScienceWorldConfig
    # The gold paths of the default splits (benchmarks/scienceworld_expert.py --all): at most 48
    # actions on test, 40 on ood, 44 on train but for 20 of its 1000 tasks (2%, all
    # measure-melting-point-known-substance: 71-73 actions), which expert collection then drops.
    default_max_turns: ClassVar[int] = 50
    # The room is only described after "look around" or moving; the last two turns keep it.
    default_history_turns: ClassVar[int | None] = 2
    supports_snapshot: ClassVar[bool] = False  # no snapshots in ScienceWorld: branch by replay
    # Expert episodes cost a gold-path generation each (up to a second): sample fewer.
    conformance_sample: ClassVar[int] = 8

    def __init__(self, config: ScienceWorldConfig | None = None):
        if _MISSING is not None:
            from agentbench.errors import EnvUnavailableError

            raise EnvUnavailableError(f"scienceworld needs the scienceworld package: {_MISSING}")
        super().__init__(config)
        self._sim = Simulator()
        self._task: Task | None = None
        self._description = ""
        self._trace: list[tuple[str, bool]] = []
        self._score = 0.0
        self._progress = 0.0
        self._done = False
        self._admissible: list[str] | None = None

    @classmethod
    def availability(cls) -> Availability:
        import shutil

        if _MISSING is not None:
            return Availability(False, needs_extra("scienceworld", _MISSING.name or "scienceworld"))
        if shutil.which("java") is None:
            return Availability(False, "needs Java 8+ on the PATH (apt-get install default-jre-headless)")
        return Availability(True)

    @property
    def instructions(self) -> str:
        return (
            "You are an agent in ScienceWorld, a simulated house (kitchen, workshop, greenhouse, outside, "
            "...) where you carry out elementary-science tasks. Complete the task you are given.\n"
            "Actions (OBJ is something you can see or hold):\n"
            "look around, look at OBJ, look in OBJ, inventory, go to ROOM (through an open door), "
            "open OBJ, close OBJ, pick up OBJ, put down OBJ, move OBJ to OBJ, pour OBJ in OBJ, "
            "dunk OBJ in OBJ, mix OBJ, activate OBJ, deactivate OBJ, use OBJ on OBJ, "
            "connect OBJ to OBJ, disconnect OBJ, eat OBJ, flush OBJ, read OBJ, "
            "focus on OBJ (marks the object the task is about; focusing on a wrong one fails the task), "
            "wait (10 time steps), wait1 (one time step).\n"
            "If the game asks which of several objects you mean, answer with its number."
        )

    def tasks(self, split: Split) -> list[Task]:
        cfg = self.config
        if split == "ood":
            return list(_tasks("ood", cfg.ood_task_types, cfg.n_ood))
        return list(_tasks(split, cfg.task_types, cfg.n_train if split == "train" else cfg.n_test))

    # -- episode ------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        spec = task.spec
        try:
            self._sim.load(spec["task"], int(spec["variation"]), self.config.simplifications)
        except JavaUnavailable as exc:
            from agentbench.errors import EnvUnavailableError

            raise EnvUnavailableError(str(exc)) from exc
        self._task = task
        self._trace, self._score, self._progress, self._done = [], 0.0, 0.0, False
        self._admissible = None
        self._description = self._sim.task_description().strip()
        # ScienceWorld starts an episode with "look around" (as its gold paths assume).
        reply, _, _, look = self._sim.step("look around")
        # Goals the start already meets (e.g. being in the right room) score now, not on the
        # first action; they count towards progress, as in ScienceWorld's own score.
        self._score = self._sim.settle_score()
        self._progress = min(1.0, max(0.0, self._score))
        return self._shown(f"{reply.strip()}\n{self._sim.inventory().strip()}", look)

    def step(self, action: str) -> Step:
        if self._task is None:
            raise RuntimeError("call reset(task) before step()")
        if self._done:
            return Step("The episode is over.", 0.0, True, StepInfo(valid=False, progress=self._progress))
        command = action.strip()
        reply, score, completed, look = self._sim.step(command)
        self._admissible = None
        valid = not reply.startswith(_UNPARSED)
        self._trace.append((command, valid))
        reward, self._score = score - self._score, score
        self._progress = max(self._progress, min(1.0, max(0.0, score)))
        extra = {"score": round(100 * score)}
        success = completed and score >= 1.0
        if success or completed or score < 0:
            self._done = True
            verdict = "You completed the task!" if success else "The task has failed: the episode is over."
            return Step(f"{reply.strip()}\n\n{verdict}", reward, True,
                        StepInfo(valid=valid, success=success, progress=self._progress, extra=extra))
        return Step(self._shown(reply.strip(), look), reward, False,
                    StepInfo(valid=valid, progress=self._progress, extra=extra))

    def expert_step(self) -> ExpertStep:
        if self._task is None:
            raise RuntimeError("call reset(task) before expert_step()")
        spec = self._task.spec
        gold = _gold_path(spec["task"], int(spec["variation"]), self.config.simplifications)
        # Follow the gold path through the actions taken. Some gold actions do not parse in
        # their own world (and change nothing; the path still succeeds): they count as taken.
        # Other unparsable actions are skipped; any other valid action leaves the path.
        position = 0
        for command, valid in self._trace:
            if position < len(gold) and command == gold[position]:
                position += 1
            elif valid:
                raise NoExpert("the episode left ScienceWorld's gold path")
        if position >= len(gold) or self._done:
            raise NoExpert("ScienceWorld's gold path has no further action")
        return ExpertStep(gold[position])

    def admissible_actions(self) -> list[str] | None:
        """ScienceWorld's valid action-object combinations here (listed on request: slow), less
        ``reset task``, which restarts the goal's progress rather than acting in the world."""
        if self._task is None:
            return None
        if self._done:
            return []
        if self._admissible is None:
            self._admissible = [a for a in self._sim.valid_actions() if a not in _NOT_ADMISSIBLE]
        return list(self._admissible)

    def close(self) -> None:
        self._sim.close()
        self._task = None

    # -- helpers --------------------------------------------------------------------------
    def _shown(self, reply: str, look: str) -> str:
        look = look.strip()
        found = _ROOM.search(look)
        footer = f"Location: {found.group(1) if found else 'unknown'}\nTask: {self._description}"
        parts = [reply, look, footer] if self.config.look_every_step else [reply, footer]
        return "\n\n".join(parts)


@cache
def _oracle() -> Any:
    """The world gold paths and the variation lists are made in (one per process)."""
    return Simulator()


@cache
def _official_variations(task_type: str) -> dict[str, list[int]]:
    return _oracle().variations(task_type)


@cache
def _gold_path(task_type: str, variation: int, simplifications: str) -> tuple[str, ...]:
    oracle = _oracle()
    oracle.load(task_type, variation, simplifications, gold_path=True)
    return tuple(a.strip() for a in oracle.gold_actions())


@cache
def _tasks(split: str, task_types: tuple[str, ...], count: int) -> tuple[Task, ...]:
    """Up to ``count`` tasks, round-robin over ``task_types``, each type's official variations
    of the split in a fixed shuffled order (so that a short list spans each type's range)."""
    queues = []
    for task_type in task_types:
        variations = list(_official_variations(task_type)[_OFFICIAL_SET[split]])
        random.Random(f"{task_type}|{split}").shuffle(variations)
        queues.append((task_type, variations))
    chosen: list[tuple[str, int]] = []
    depth = 0
    while len(chosen) < count and any(depth < len(v) for _, v in queues):
        for task_type, variations in queues:
            if depth < len(variations) and len(chosen) < count:
                chosen.append((task_type, variations[depth]))
        depth += 1
    return tuple(Task(id=f"{split}-{task_type}-{variation}", split=split,
                      spec={"task": task_type, "variation": variation}) for task_type, variation in chosen)
