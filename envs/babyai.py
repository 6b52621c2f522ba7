"""BabyAI (AgentGym's grid-world instruction following), in text.

Levels come from the PyPI package ``minigrid``, which registers the BabyAI levels; a task is a
level type and the seed that generates it. The observation describes the agent's egocentric
view in words (objects with their offsets in steps, what lies straight ahead, what the agent
carries) and the mission; actions are MiniGrid's primitive moves in words. The expert is
minigrid's ``BabyAIBot``, kept in step with every action actually taken (the bot's advising
mode), so it can act from any state a model leads it into.

Splits: ``train`` and ``test`` draw seeds of the same level types (a test layout never occurs
in train: duplicates are dropped); ``ood`` is held-out level types that need skills combined
differently (putting objects next to each other, unlocking doors). KeyInBox is left out: the
bot cannot solve it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
from functools import cache
from typing import Any, ClassVar

from pydantic import Field, field_validator

from agentbench.env import Availability, BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task
from agentbench.extras import needs_extra

try:
    import gymnasium
    import minigrid  # noqa: F401  (importing it registers the BabyAI levels with gymnasium)
    from minigrid.utils.baby_ai_bot import BabyAIBot

    from agentbench.envs import babyai_text as text

    _MISSING: ImportError | None = None
except ImportError as exc:  # the env is listed anyway and says what to install
    _MISSING = exc

IN_DOMAIN_LEVELS = (
    "GoToRedBallGrey", "GoToRedBall", "GoToObj", "GoToLocal", "GoToDoor",
    "PickupDist", "PickupLoc", "OpenDoor", "OpenDoorLoc",
)
OOD_LEVELS = ("ActionObjDoor", "PutNextLocal", "UnlockLocal")
UNSOLVABLE_BY_EXPERT = ("KeyInBox", "PutNextS5N2Carrying", "PutNextS6N3Carrying", "PutNextS7N4Carrying")
SEED_OFFSETS = {"train": 0, "test": 1_000_000, "ood": 2_000_000}
# A bot that wanders this many times its starting plan is treated as lost (progress only).
PROGRESS_HORIZON = 4


def _known_level(name: str) -> str:
    if f"BabyAI-{name}-v0" not in gymnasium.registry:
        raise ValueError(f"unknown BabyAI level {name!r} (write it without 'BabyAI-' and '-v0')")
    if name in UNSOLVABLE_BY_EXPERT:
        raise ValueError(f"BabyAI level {name!r} is not solvable by the expert bot")
    return name


class BabyAIConfig(EnvConfig):
    n_train: int = Field(1000, ge=1, description="tasks in the train split")
    n_test: int = Field(200, ge=1, description="tasks in the test split")
    n_ood: int = Field(200, ge=1, description="tasks in the ood split")
    levels: tuple[str, ...] = Field(IN_DOMAIN_LEVELS, min_length=1,
                                    description="level types of train and test (names without 'BabyAI-', '-v0')")
    ood_levels: tuple[str, ...] = Field(OOD_LEVELS, min_length=1, description="held-out level types of ood")

    @field_validator("levels", "ood_levels")
    @classmethod
    def _levels_exist(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if _MISSING is None:
            for name in names:
                _known_level(name)
        return names


class BabyAI(BaseEnv):
    name: ClassVar[str] = "babyai"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "BabyAI grid-world instructions (AgentGym); minigrid levels, text view, BabyAIBot expert"
    Config = BabyAIConfig
    # The expert needs at most 22 moves on the 1000 train tasks, 15 on test, and at most 24 on
    # 199 of the 200 ood tasks; a weak model's failed episodes cost every turn of the limit.
    default_max_turns: ClassVar[int] = 24
    # The view is partial: the last turn shows what was in sight a move ago (prompts stay short).
    default_history_turns: ClassVar[int | None] = 1
    supports_snapshot: ClassVar[bool] = True

    def __init__(self, config: BabyAIConfig | None = None):
        if _MISSING is not None:
            from agentbench.errors import EnvUnavailableError

            raise EnvUnavailableError(f"babyai needs the minigrid package: {_MISSING}")
        super().__init__(config)
        self._levels: dict[str, Any] = {}
        self._game: Any = None
        self._bot: Any = None
        self._suggested: Any = None
        self._done = False
        self._progress = 0.0
        self._start_cost = 1

    @classmethod
    def availability(cls) -> Availability:
        if _MISSING is not None:
            return Availability(False, needs_extra("babyai", _MISSING.name or "minigrid"))
        return Availability(True)

    @property
    def instructions(self) -> str:
        return (
            "You are an agent in a grid world of rooms with doors, keys, balls and boxes. You see only "
            "the cells in front of you and to your sides; walls block your view. Complete the mission.\n"
            "To go to an object, stand so that the object is right in front of you.\n"
            "Actions: turn left, turn right, move forward, pick up (the object in front of you), "
            "drop (what you carry, in front of you), toggle (open or close the door in front of you; "
            "a locked door opens only if you carry the key of its colour)."
        )

    def tasks(self, split: Split) -> list[Task]:
        cfg = self.config
        if split == "ood":
            return list(_tasks("ood", cfg.ood_levels, cfg.n_ood, None))
        if split == "train":
            return list(_tasks("train", cfg.levels, cfg.n_train, None))
        return list(_tasks("test", cfg.levels, cfg.n_test, (cfg.levels, cfg.n_train)))

    # -- episode ------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        # The level seed is the task; MiniGrid's dynamics are deterministic, so ``seed`` is unused.
        level = task.spec["level"]
        if level not in self._levels:
            self._levels[level] = _make_level(level)
        self._game = self._levels[level]
        _generate(self._game, task.spec["level_seed"])
        self._bot = None
        self._follow(None)
        self._done = False
        self._progress = 0.0
        self._start_cost = 1
        self._start_cost = max(1, self._expert_cost() or 1)
        return text.describe(self._game, "You are at the start.")

    def step(self, action: str) -> Step:
        game = self._require_game()
        if self._done:
            return Step("The episode is over.", 0.0, True, StepInfo(valid=False, progress=self._progress))
        move = text.parse_action(action)
        if move is None:
            feedback = f"Invalid action {action[:80]!r}. Valid actions are: {', '.join(text.ACTIONS)}."
            return Step(text.describe(game, feedback), 0.0, False, StepInfo(valid=False, progress=self._progress))
        before = text.before_step(game)
        _, reward, terminated, truncated, _ = game.step(move)
        feedback = text.feedback_text(game, move, before)
        success = bool(terminated and reward > 0)
        if success:
            self._done, self._progress = True, 1.0
            return Step(f"{feedback} You completed the mission!", 1.0, True, StepInfo(success=True, progress=1.0))
        if terminated or truncated:
            self._done = True
            why = "That does not fulfil the mission" if terminated else "You ran out of time"
            return Step(f"{feedback} {why}: the episode is over.", 0.0, True, StepInfo(progress=self._progress))
        self._follow(move)
        cost = self._expert_cost()
        if cost is not None:
            self._progress = max(self._progress, 1.0 - min(1.0, cost / self._start_cost))
        return Step(text.describe(game, feedback), 0.0, False, StepInfo(progress=self._progress))

    def expert_step(self) -> ExpertStep:
        self._require_game()
        if self._bot is None or self._suggested not in text.ACTION_NAMES:
            raise NoExpert("the BabyAI bot has no plan from this state")
        return ExpertStep(text.ACTION_NAMES[self._suggested], self._thought())

    def admissible_actions(self) -> list[str]:
        return list(text.ACTIONS)

    def snapshot(self) -> dict[str, Any]:
        self._require_game()
        # One deepcopy keeps the bot pointing at the copied game, not the live one.
        game, bot = copy.deepcopy((self._game, self._bot))
        return {"game": game, "bot": bot, "suggested": self._suggested, "done": self._done,
                "progress": self._progress, "start_cost": self._start_cost}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self._game, self._bot = copy.deepcopy((snapshot["game"], snapshot["bot"]))
        self._suggested = snapshot["suggested"]
        self._done = snapshot["done"]
        self._progress = snapshot["progress"]
        self._start_cost = snapshot["start_cost"]

    def close(self) -> None:
        for game in self._levels.values():
            game.close()
        self._levels.clear()

    # -- helpers --------------------------------------------------------------------------
    def _require_game(self) -> Any:
        if self._game is None:
            raise RuntimeError("call reset(task) before step()")
        return self._game

    def _follow(self, move: Any) -> None:
        """Tell the bot which action was actually taken, so its next suggestion fits the state.
        A bot that cannot follow (its plan broke), or none yet, is replaced by a fresh one
        planning from here; if that fails too, there is no expert from this state."""
        if self._bot is not None:
            try:
                self._suggested = self._bot.replan(move)
                return
            except Exception:  # the bot asserts when a state breaks its plan
                pass
        try:
            self._bot = BabyAIBot(self._game)
            self._suggested = self._bot.replan()
        except Exception:
            self._bot, self._suggested = None, None

    def _expert_cost(self) -> int | None:
        """Moves the bot still needs from here (played out on a copy); None if it gets lost."""
        if self._bot is None:
            return None
        game, bot = copy.deepcopy((self._game, self._bot))
        action = self._suggested
        limit = PROGRESS_HORIZON * self._start_cost if self._start_cost > 1 else game.max_steps
        try:
            for moves in range(1, limit + 1):
                _, reward, terminated, truncated, _ = game.step(action)
                if terminated or truncated:
                    return moves if reward > 0 else None
                action = bot.replan()
        except Exception:
            return None
        return None

    def _thought(self) -> str:
        subgoal = self._bot.stack[-1] if self._bot.stack else None
        kind = type(subgoal).__name__
        if kind == "GoNextToSubgoal":
            datum = subgoal.datum
            if subgoal.reason == "Explore":
                return "I explore to find what the mission needs."
            if hasattr(datum, "obj_set"):  # an object description from the mission
                name = " ".join(p for p in (datum.color, datum.type or "object") if p)
                return f"I head for the {name}."
            if hasattr(datum, "type"):  # a particular object
                return f"I head for the {text.object_name(datum)}."
            return "I move into position."
        return {
            "PickupSubgoal": "I pick up the object in front of me.",
            "DropSubgoal": "I put down what I carry.",
            "OpenSubgoal": "I open the door in front of me.",
            "CloseSubgoal": "I close the door in front of me.",
            "ExploreSubgoal": "I explore to find what the mission needs.",
        }.get(kind, "")


def _make_level(level: str) -> Any:
    return gymnasium.make(f"BabyAI-{level}-v0").unwrapped


def _generate(game: Any, level_seed: int) -> None:
    """Generate a level. Its rejection sampling prints to stdout, which is ours: keep it quiet."""
    with contextlib.redirect_stdout(io.StringIO()):
        game.reset(seed=level_seed)


def layout_fingerprint(game: Any) -> str:
    """What makes two generated levels the same task: grid, agent pose and mission."""
    digest = hashlib.sha256(game.grid.encode().tobytes())
    digest.update(f"{tuple(int(x) for x in game.agent_pos)}|{int(game.agent_dir)}|{game.mission}".encode())
    return digest.hexdigest()


@cache
def _fingerprints(split: str, levels: tuple[str, ...], count: int) -> frozenset[str]:
    games = {level: _make_level(level) for level in levels}
    found = set()
    for task in _tasks(split, levels, count, None):
        game = games[task.spec["level"]]
        _generate(game, task.spec["level_seed"])
        found.add(layout_fingerprint(game))
    return frozenset(found)


@cache
def _tasks(split: str, levels: tuple[str, ...], count: int,
           exclude: tuple[tuple[str, ...], int] | None) -> tuple[Task, ...]:
    """``count`` tasks cycling through ``levels``. Train may repeat a layout; the other splits
    skip a layout they already hold and, with ``exclude`` = (train levels, n_train), any layout
    of that train split."""
    dedupe = split != "train"
    games = {level: _make_level(level) for level in levels} if dedupe else {}
    seen = set(_fingerprints("train", *exclude)) if exclude else set()
    tasks: list[Task] = []
    seed = SEED_OFFSETS[split]
    while len(tasks) < count:
        level = levels[len(tasks) % len(levels)]
        if dedupe:
            game = games[level]
            _generate(game, seed)
            fingerprint = layout_fingerprint(game)
            if fingerprint in seen:
                seed += 1
                continue
            seen.add(fingerprint)
        spec = {"level": level, "level_seed": seed}
        tasks.append(Task(id=f"{split}-{len(tasks):04d}", split=split, spec=spec))
        seed += 1
    return tuple(tasks)
