"""ALFWorld (Shridhar et al., 2021): household tasks in TextWorld, as Early Experience and
AgentGym run it.

Games come from ALFWorld's data folder (``alfworld-download`` fetches it), named by
``--set data_dir=PATH`` or the ``ALFWORLD_DATA`` variable, which must hold
``json_2.1.1/{train,valid_seen,valid_unseen}/<task>/<trial>/{traj_data.json,game.tw-pddl}``.
Splits follow ALFWorld: ``train`` = train, ``test`` = valid_seen (in-distribution),
``ood`` = valid_unseen (unseen rooms). Like ALFWorld, games with movable receptacles or sliced
objects and games not marked solvable are left out.

The engine is the PyPI package ``alfworld`` (TextWorld's PDDL engine plus ALFWorld's name
demangling and handcoded expert), imported only when an episode starts. It does not install
here: its ``textworld[pddl]`` dependency builds ``fast-downward-textworld`` from source (cmake
and a C++ compiler) and pulls ``jericho`` and ``spacy``. Listing tasks needs only the data.
"""

from __future__ import annotations

import importlib.util
import json
import os
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from agentbench.env import Availability, BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task
from agentbench.errors import EnvUnavailableError

DATA_VARIABLE = "ALFWORLD_DATA"
GAMES_DIR = "json_2.1.1"
SPLIT_DIRS = {"train": "train", "test": "valid_seen", "ood": "valid_unseen"}
GAME_FILE, TRAJ_FILE = "game.tw-pddl", "traj_data.json"
ENGINE_HINT = ("pip install alfworld (ALFWorld's TextWorld engine; its textworld[pddl] dependency builds "
               "fast-downward-textworld, which needs cmake and a C++ compiler)")


class ALFWorldConfig(EnvConfig):
    data_dir: str = Field("", description=f"ALFWorld's data folder (holds {GAMES_DIR}/); empty: ${DATA_VARIABLE}")
    show_actions: bool = Field(True, description="list the admissible commands under each observation")


def _data_dir(config: ALFWorldConfig) -> tuple[str, str]:
    """(the folder, how the user named it) from the config or the environment."""
    if config.data_dir:
        return config.data_dir, "data_dir"
    return os.environ.get(DATA_VARIABLE, ""), DATA_VARIABLE


def data_problem(config: ALFWorldConfig) -> str | None:
    """What is wrong with the data folder, as one line naming the setting to fix; None if fine."""
    folder, named = _data_dir(config)
    if not folder:
        return (f"needs ALFWorld's data: set {DATA_VARIABLE}=/path/to/alfworld-data or --set data_dir=PATH "
                f"(fetch it with `alfworld-download`)")
    root = Path(folder).expanduser()
    if not root.is_dir():
        return f"{named}={folder} is not a folder (ALFWorld's data, from `alfworld-download`)"
    missing = [f"{GAMES_DIR}/{d}" for d in SPLIT_DIRS.values() if not (root / GAMES_DIR / d).is_dir()]
    if missing:
        return f"{named}={folder} lacks {', '.join(missing)} (rerun `alfworld-download`, or fix {named})"
    return None


def engine_problem() -> str | None:
    for module in ("alfworld", "textworld"):
        if importlib.util.find_spec(module) is None:
            return f"the ALFWorld engine is not installed: {ENGINE_HINT}"
    return None


@cache
def _games(split_root: str) -> tuple[Task, ...]:
    root = Path(split_root)
    split = next(s for s, d in SPLIT_DIRS.items() if root.name == d)
    tasks = []
    for traj_path in sorted(root.glob(f"*/*/{TRAJ_FILE}")):
        trial = traj_path.parent
        relative = trial.relative_to(root).as_posix()
        if "movable" in relative or "Sliced" in relative:
            continue  # ALFWorld does not support these either
        game_path = trial / GAME_FILE
        if not game_path.is_file():
            continue
        try:
            solvable = json.loads(game_path.read_text()).get("solvable", False)
            task_type = json.loads(traj_path.read_text()).get("task_type", "")
        except (OSError, ValueError) as exc:
            raise EnvUnavailableError(f"ALFWorld game {trial} is unreadable: {exc}") from exc
        if solvable:
            tasks.append(Task(relative, split, {"game": relative, "task_type": task_type}))
    return tuple(tasks)


class ALFWorld(BaseEnv):
    name: ClassVar[str] = "alfworld"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "ALFWorld household tasks (TextWorld engine; needs its data and package)"
    Config = ALFWorldConfig
    default_max_turns: ClassVar[int] = 50  # ALFWorld's own episode limit
    conformance_sample: ClassVar[int] = 5

    def __init__(self, config: ALFWorldConfig | None = None):
        super().__init__(config)
        self._game: Any = None
        self._state: Any = None
        self._task: Task | None = None
        self._done = False

    # -- availability ---------------------------------------------------------------------
    @classmethod
    def availability(cls) -> Availability:
        return cls.availability_for(cls.Config())

    @classmethod
    def availability_for(cls, config: EnvConfig) -> Availability:
        assert isinstance(config, ALFWorldConfig)
        problem = data_problem(config) or engine_problem()
        return Availability(problem is None, problem or "")

    def _root(self) -> Path:
        problem = data_problem(self.config)
        if problem is not None:
            raise EnvUnavailableError(f"env alfworld {problem}")
        return Path(_data_dir(self.config)[0]).expanduser() / GAMES_DIR

    # -- the env API ----------------------------------------------------------------------
    @property
    def instructions(self) -> str:
        return (
            "You are in a household and must complete the task stated in the first observation. Each turn, "
            "give one text command, such as 'go to countertop 1', 'open fridge 1', 'take mug 1 from "
            "countertop 1', 'put mug 1 in/on coffeemachine 1', 'heat mug 1 with microwave 1', 'clean mug 1 "
            "with sinkbasin 1', 'cool mug 1 with fridge 1', 'use desklamp 1', 'look' or 'inventory'. "
            "'Nothing happens.' means the command had no effect."
        )

    def tasks(self, split: Split) -> list[Task]:
        return list(_games(str((self._root() / SPLIT_DIRS[split]).resolve())))

    def reset(self, task: Task, seed: int = 0) -> str:
        # Games are deterministic: the seed changes nothing.
        root = self._root()
        problem = engine_problem()
        if problem is not None:
            raise EnvUnavailableError(f"env alfworld: {problem}")
        self.close()
        self._game = _start_game(str(root / SPLIT_DIRS[task.split] / task.spec["game"] / GAME_FILE), root.parent)
        self._state = self._game.reset()
        self._task, self._done = task, False
        # The first paragraph is TextWorld's banner; AgentGym drops it too.
        intro = "\n".join(str(self._state["feedback"]).split("\n\n")[1:]).strip()
        return self._shown(intro)

    def step(self, action: str) -> Step:
        if self._game is None:
            raise RuntimeError("call reset(task) before step()")
        if self._done:
            return Step("The episode is over.", 0.0, True, StepInfo(valid=False))
        command = " ".join(action.strip().split())
        valid = command in self._admissible()
        self._state, _score, _done = self._game.step(command)
        won = bool(self._state["won"])
        self._done = won or bool(_done)
        return Step(self._shown(str(self._state["feedback"]).strip()), float(won), self._done,
                    StepInfo(valid=valid, success=won, progress=1.0 if won else 0.0))

    def expert_step(self) -> ExpertStep:
        plan = self._state["extra.expert_plan"] if self._state is not None else None
        if not plan:
            raise NoExpert("ALFWorld's handcoded expert has no plan here")
        return ExpertStep(str(plan[0]))

    def admissible_actions(self) -> list[str] | None:
        return self._admissible() if self._state is not None else None

    def _admissible(self) -> list[str]:
        return [str(c) for c in self._state["admissible_commands"]]

    def _shown(self, observation: str) -> str:
        if not self.config.show_actions or self._done:
            return observation
        return f"{observation}\nAdmissible actions: {', '.join(self._admissible())}"

    def close(self) -> None:
        if self._game is not None:
            self._game.close()
            self._game, self._state = None, None


def _start_game(game_file: str, data_dir: Path) -> Any:
    """One ALFWorld game in TextWorld, with ALFWorld's object names and handcoded expert."""
    # alfworld creates $ALFWORLD_DATA when imported: point it at the user's folder first.
    os.environ.setdefault(DATA_VARIABLE, str(data_dir))
    import textworld
    from alfworld.agents.environment.alfred_tw_env import (
        AlfredDemangler,
        AlfredExpert,
        AlfredExpertType,
        AlfredInfos,
    )

    request = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile", "expert_plan"])
    wrappers = [AlfredDemangler(shuffle=False), AlfredInfos, AlfredExpert(expert_type=AlfredExpertType.HANDCODED)]
    return textworld.start(game_file, request_infos=request, wrappers=wrappers)
