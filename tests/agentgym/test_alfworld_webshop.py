"""ALFWorld and WebShop cannot run here (no data, engine or server): they say exactly what to set,
``agentbench list envs`` shows them as not runnable, and running them fails in one line.

The data folders below are made-up stand-ins with ALFWorld's layout (the real data is a large
download); they test our reading of that layout, not ALFWorld's engine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from agentbench import cli
from agentbench.cli import app, run_app
from agentbench.env import make_config
from agentbench.envs.agentgym import AgentGymEnv, WebShop
from agentbench.envs.alfworld import ALFWorld, engine_problem
from agentbench.errors import ConfigError, EnvUnavailableError


def _trial(root: Path, split: str, task: str, trial: str, *, solvable=True, game=True, task_type="pick"):
    folder = root / "json_2.1.1" / split / task / trial
    folder.mkdir(parents=True)
    (folder / "traj_data.json").write_text(json.dumps({"task_type": task_type}))
    if game:
        (folder / "game.tw-pddl").write_text(json.dumps({"solvable": solvable, "pddl_problem": "(define)"}))


@pytest.fixture
def alfworld_data(tmp_path):
    root = tmp_path / "alfworld"
    _trial(root, "train", "pick_and_place_simple-Mug-None-Desk-1", "trial_1")
    _trial(root, "train", "pick_and_place_simple-Mug-None-Desk-1", "trial_2", solvable=False)
    _trial(root, "train", "pick_and_place_simple-Knife-None-Drawer-2", "trial_1", game=False)
    _trial(root, "train", "pick_and_place_simple-AppleSliced-None-Fridge-3", "trial_1")
    _trial(root, "train", "pick_and_place_movable_recep-Pen-Bowl-Desk-4", "trial_1")
    _trial(root, "valid_seen", "look_at_obj_in_light-CD-None-DeskLamp-5", "trial_1", task_type="look")
    _trial(root, "valid_unseen", "pick_two_obj_and_place-Pen-None-Box-6", "trial_1", task_type="two")
    return root


def test_alfworld_without_data_names_the_variable(monkeypatch):
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    available = ALFWorld.availability()
    assert not available.runnable
    assert "set ALFWORLD_DATA=" in available.detail and "--set data_dir=" in available.detail
    with pytest.raises(EnvUnavailableError, match="ALFWORLD_DATA"):
        ALFWorld().tasks("test")


def test_alfworld_data_missing_a_split_names_what_is_missing(alfworld_data, monkeypatch):
    for path in (alfworld_data / "json_2.1.1" / "valid_unseen").rglob("*"):
        if path.is_file():
            path.unlink()
    for path in sorted((alfworld_data / "json_2.1.1" / "valid_unseen").rglob("*"), reverse=True):
        path.rmdir()
    (alfworld_data / "json_2.1.1" / "valid_unseen").rmdir()
    monkeypatch.setenv("ALFWORLD_DATA", str(alfworld_data))
    detail = ALFWorld.availability().detail
    assert detail.startswith(f"ALFWORLD_DATA={alfworld_data} lacks json_2.1.1/valid_unseen")
    config = make_config(ALFWorld.Config, {"data_dir": str(alfworld_data)}, "env alfworld")
    assert ALFWorld.availability_for(config).detail.startswith(f"data_dir={alfworld_data} lacks json_2.1.1/valid_unseen")
    monkeypatch.setenv("ALFWORLD_DATA", str(alfworld_data / "nowhere"))
    assert "is not a folder" in ALFWorld.availability().detail


def test_alfworld_lists_games_like_alfworld(alfworld_data, monkeypatch):
    monkeypatch.setenv("ALFWORLD_DATA", str(alfworld_data))
    env = ALFWorld()
    # unsolvable, game-less, sliced and movable-receptacle trials are left out, as ALFWorld does
    assert [(t.id, t.spec["task_type"]) for t in env.tasks("train")] == [
        ("pick_and_place_simple-Mug-None-Desk-1/trial_1", "pick")]
    assert [t.id for t in env.tasks("test")] == ["look_at_obj_in_light-CD-None-DeskLamp-5/trial_1"]
    assert [t.split for t in env.tasks("ood")] == ["ood"]


@pytest.mark.skipif(engine_problem() is None, reason="the ALFWorld engine is installed here")
def test_alfworld_without_engine_says_how_to_install(alfworld_data, monkeypatch):
    monkeypatch.setenv("ALFWORLD_DATA", str(alfworld_data))
    available = ALFWorld.availability()
    assert not available.runnable and "pip install alfworld" in available.detail
    env = ALFWorld()
    with pytest.raises(EnvUnavailableError, match="pip install alfworld"):
        env.reset(env.tasks("test")[0])


def test_webshop_needs_a_url():
    available = WebShop.availability()
    assert not available.runnable and "--set url=http://HOST:PORT" in available.detail
    assert "AgentGym's WebShop server" in available.detail
    assert WebShop.availability_for(make_config(WebShop.Config, {"url": "http://h:1"}, "webshop")).runnable
    with pytest.raises(EnvUnavailableError, match="--set url="):
        WebShop()
    with pytest.raises(ConfigError, match="no variants"):
        make_config(WebShop.Config, {"variant": "alfworld"}, "env webshop")
    assert not AgentGymEnv.availability().runnable


def test_list_envs_shows_them_as_not_runnable(monkeypatch):
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    monkeypatch.setattr(cli, "console", Console(width=400))  # one table row per line
    result = CliRunner().invoke(app, ["list", "envs"])
    assert result.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 4}
    assert "no: needs ALFWorld's data: set ALFWORLD_DATA=" in rows["alfworld"]
    assert "no: runs only as AgentGym's WebShop server" in rows["webshop"]
    assert "no: needs a running server: --set url=http://HOST:PORT" in rows["agentgym"]


@pytest.mark.parametrize(("env", "sets", "words"), [
    ("alfworld", [], r"env alfworld cannot run here: needs ALFWorld's data: set ALFWORLD_DATA="),
    ("webshop", [], r"env webshop cannot run here: runs only as AgentGym's WebShop server.*--set url="),
    ("agentgym:webshop", [], r"env agentgym:webshop cannot run here: needs a running server: --set url="),
])
def test_running_them_fails_in_one_line(monkeypatch, env, sets, words):
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    result = CliRunner().invoke(run_app, ["--method", "none", "--env", env, "--model", "tiny", "--quiet", *sets],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.match(f"error: {words}", lines[0]), result.output


class _FakeGame:
    """Stands in for a TextWorld game (the engine does not install here): one room, the task is
    won by 'go to desk 1'. It tests our glue (banner, admissible actions, validity, expert plan,
    success), not ALFWorld."""

    def __init__(self, path, request_infos, wrappers):
        self.path, self.request_infos, self.wrappers, self.closed = path, request_infos, wrappers, False

    def _state(self, feedback, won=False, plan="go to desk 1"):
        return {"feedback": feedback, "won": won, "admissible_commands": ["go to desk 1", "look"],
                "extra.expert_plan": [plan]}

    def reset(self):
        return self._state("-= Welcome to TextWorld, ALFRED! =-\n\nYou are in a room.\n\nYour task is to: "
                           "go to the desk.", plan="look")

    def step(self, command):
        if command == "go to desk 1":
            return self._state("You arrive at desk 1.", won=True), 1, True
        return self._state("You are in a room." if command == "look" else "Nothing happens."), 0, False

    def close(self):
        self.closed = True


def test_alfworld_glue_with_a_stand_in_engine(alfworld_data, monkeypatch):
    import importlib.machinery
    import sys
    import types

    started = []

    def module(name, **attrs):
        mod = types.ModuleType(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)

    def start(path, request_infos, wrappers):
        started.append(_FakeGame(path, request_infos, wrappers))
        return started[-1]

    module("textworld", EnvInfos=lambda **kw: kw, start=start)
    for name in ("alfworld", "alfworld.agents", "alfworld.agents.environment"):
        module(name)
    module("alfworld.agents.environment.alfred_tw_env", AlfredDemangler=lambda shuffle: ("demangler", shuffle),
           AlfredInfos="infos", AlfredExpert=lambda expert_type: ("expert", expert_type),
           AlfredExpertType=types.SimpleNamespace(HANDCODED="handcoded"))
    monkeypatch.setenv("ALFWORLD_DATA", str(alfworld_data))
    assert ALFWorld.availability().runnable
    env = ALFWorld()
    task = env.tasks("test")[0]
    # the banner paragraph goes and the rest joins line by line, as AgentGym's ALFWorld server does
    assert env.reset(task) == ("You are in a room.\nYour task is to: go to the desk.\n"
                               "Admissible actions: go to desk 1, look")
    game = started[0]
    assert Path(game.path) == alfworld_data / "json_2.1.1" / "valid_seen" / task.id / "game.tw-pddl"
    assert game.request_infos["extras"] == ["gamefile", "expert_plan"]
    assert game.wrappers == [("demangler", False), "infos", ("expert", "handcoded")]
    assert env.expert_step().action == "look"
    assert env.step("dance").info.valid is False
    looked = env.step("look")
    assert looked.info.valid and not looked.done and env.expert_step().action == "go to desk 1"
    won = env.step("go to desk 1")
    assert (won.observation, won.reward, won.done, won.info.success) == ("You arrive at desk 1.", 1.0, True, True)
    assert env.step("look").info.valid is False  # the episode is over
    env.close()
    assert game.closed
