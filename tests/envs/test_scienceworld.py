"""ScienceWorld: observations and scoring, failure, garbage and the expert around it, one JVM
for many instances with deterministic worlds in any interleaving (and across processes, with a
clean stdout), replay, splits and config errors."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest

pytest.importorskip("scienceworld")

from agentbench.env import NoExpert, Task, replay
from agentbench.envs.scienceworld import ScienceWorld
from agentbench.envs.scienceworld.env import IN_DOMAIN_TYPES, OOD_TYPES, _official_variations
from agentbench.envs.scienceworld.simulator import JvmDied, discard_jvm, java_processes
from agentbench.errors import ConfigError

if not ScienceWorld.availability().runnable:
    pytest.skip(ScienceWorld.availability().detail, allow_module_level=True)

# Short gold paths (3 and 15 actions), so that the tests stay fast.
LIFESPAN = Task("t-lifespan", "test", {"task": "lifespan-longest-lived", "variation": 104})
THERMOMETER = Task("t-thermometer", "test", {"task": "use-thermometer", "variation": 435})


@pytest.fixture(scope="module")
def env():
    instance = ScienceWorld()
    yield instance
    instance.close()


def _expert_episode(env, task) -> list:
    """Observations, rewards, done flags and infos of the expert's episode."""
    out = [env.reset(task)]
    for _ in range(ScienceWorld.default_max_turns):
        step = env.step(env.expert_step().action)
        out.append((step.observation, step.reward, step.done, step.info.valid, step.info.success,
                    step.info.progress))
        if step.done:
            break
    return out


def test_observations_scores_and_success(env):
    first = env.reset(THERMOMETER)
    assert first == (
        "This room is called the art studio. In it, you see: \n\tthe agent\n\ta substance called air\n"
        "\ta large cupboard. The large cupboard door is closed. \n\ta table. On the table is: a glass cup "
        "(containing nothing).\n\ta wood cup (containing red paint)\n\ta wood cup (containing blue paint)\n"
        "\ta wood cup (containing yellow paint)\nYou also see:\n\tA door to the hallway (that is closed)\n"
        "In your inventory, you see:\n\tan orange\n\n"
        "Location: art studio\n"
        "Task: Your task is to measure the temperature of wood, which is located around the living room. "
        "First, focus on the thermometer. Next, focus on the wood. If the wood temperature is above -50.0 "
        "degrees celsius, place it in the blue box. If the wood temperature is below -50.0 degrees celsius, "
        "place it in the orange box. The boxes are located around the living room.")
    moved = env.step("open door to hallway")
    assert moved.info.valid and not moved.done
    assert moved.observation.splitlines()[0] == "The door is now open."
    assert moved.info.extra == {"score": 0}
    total, progress = 0.0, [0.0]
    step = env.step("go to hallway")
    assert "Location: hallway" in step.observation
    total += step.reward
    while not step.done:
        progress.append(step.info.progress)
        step = env.step(env.expert_step().action)
        total += step.reward
    assert step.info.success and step.info.progress == 1.0 and step.info.extra == {"score": 100}
    assert step.observation.endswith("You completed the task!")
    assert progress == sorted(progress) and 0 < progress[-1] < 1
    assert total == pytest.approx(1.0)  # rewards are score changes, in units of 100 points
    over = env.step("look around")
    assert over.done and not over.info.valid


def test_points_the_start_scores_are_no_reward_for_the_first_action(env):
    # ScienceWorld credits goals the start meets (here: being in the kitchen, where the answer
    # box is) on the next input, whatever it is.
    env.reset(Task("t-kitchen", "test", {"task": "find-non-living-thing", "variation": 245}))
    step = env.step("open door to")
    assert not step.info.valid and step.reward == 0.0
    assert step.info.progress == pytest.approx(1 / 12) and step.info.extra == {"score": 8}


def test_wrong_focus_fails_the_task(env):
    env.reset(LIFESPAN)
    step = env.step("focus on agent")
    assert step.done and step.info.valid and not step.info.success
    assert step.info.extra["score"] < 0 and step.reward < 0
    assert "The task has failed" in step.observation


def test_garbage_is_invalid_and_changes_nothing_then_the_expert_goes_on(env):
    start = env.reset(THERMOMETER)
    first = env.expert_step().action
    for garbage in ("", "asdf qwerty", "x" * 3000, "open door to hallway\nlook around"):
        step = env.step(garbage)
        assert not step.info.valid and not step.done and step.reward == 0.0
        assert step.observation.startswith("No known action matches that input.")
        assert step.observation.splitlines()[-2:] == start.splitlines()[-2:]
    assert env.expert_step().action == first
    assert env.step(first).info.valid
    assert env.step("look around").info.valid  # a valid move off the gold path
    with pytest.raises(NoExpert):
        env.expert_step()


def test_unparsable_gold_actions_do_not_stall_the_expert(env):
    # Two of this variation's gold actions name a "block terminal" that does not parse here;
    # the gold path succeeds anyway, and the expert must move past them.
    task = Task("t-conductivity", "test", {"task": "test-conductivity", "variation": 827})
    env.reset(task)
    invalid, step = 0, None
    for _ in range(60):
        step = env.step(env.expert_step().action)
        invalid += not step.info.valid
        if step.done:
            break
    assert step.info.success and invalid == 2


def test_admissible_actions_are_the_valid_combinations(env):
    env.reset(LIFESPAN)
    actions = env.admissible_actions()
    assert {"look around", "open door", "focus on orange", "wait1"} <= set(actions)
    assert "reset task" not in actions  # it would restart the goal's progress, not act in the world


def test_listing_actions_is_repeatable_and_leaves_the_world_alone():
    # ScienceWorld draws random numbers while it lists valid actions: from the world's own
    # generator, the list would differ call by call and the world (bees, ...) change course.
    # Nor may a world made meanwhile (making one draws random numbers too).
    listed, untouched = ScienceWorld(), ScienceWorld()
    listed.reset(THERMOMETER)
    untouched.reset(THERMOMETER)
    first = listed._sim.valid_actions()
    assert listed._sim.valid_actions() == first
    newcomer = ScienceWorld()
    newcomer.reset(LIFESPAN)
    assert listed._sim._random.nextLong() == untouched._sim._random.nextLong()
    for env in (listed, untouched, newcomer):
        env.close()


def test_one_jvm_many_instances_deterministic_in_any_interleaving():
    alone = ScienceWorld()
    reference = _expert_episode(alone, THERMOMETER)
    envs = [ScienceWorld() for _ in range(12)]
    tasks = [Task(f"t{i}", "test", {"task": t, "variation": v}) for i, (t, v) in enumerate(
        [("grow-fruit", 97), ("find-animal", 267), ("chemistry-mix", 31), ("boil", 21)] * 3)]
    for other, task in zip(envs, tasks):
        other.reset(task)
    # The reference episode again, while the other worlds (bees, animals, heat) run in between.
    interleaved = [alone.reset(THERMOMETER)]
    for _ in range(ScienceWorld.default_max_turns):
        for other in envs:
            other.step("wait1")
        step = alone.step(alone.expert_step().action)
        interleaved.append((step.observation, step.reward, step.done, step.info.valid, step.info.success,
                            step.info.progress))
        if step.done:
            break
    assert interleaved == reference
    assert len(java_processes()) == 1
    for other in envs:
        other.close()
    alone.close()
    assert len(java_processes()) == 1  # closing worlds keeps the shared JVM


def test_worlds_spread_over_jvms_step_concurrently_with_the_same_episodes(monkeypatch):
    """AGENTBENCH_SCIENCEWORLD_JVMS=2: worlds go round robin to two JVMs, and threads stepping
    them at once (the rollout engine's env workers) give the episodes one JVM gives."""
    from concurrent.futures import ThreadPoolExecutor

    tasks = [Task(f"t{i}", "test", {"task": t, "variation": v}) for i, (t, v) in enumerate(
        [("boil", 21), ("grow-fruit", 97), ("find-animal", 267), ("chemistry-mix", 31)])]

    def episodes(jvms: int, workers: int) -> list:
        monkeypatch.setenv("AGENTBENCH_SCIENCEWORLD_JVMS", str(jvms))
        worlds = [ScienceWorld() for _ in tasks]
        first = [w.reset(t) for w, t in zip(worlds, tasks)]
        played = [[o] for o in first]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for action in ("look around", "wait1", "open door to kitchen", "inventory", "wait1"):
                for record, step in zip(played, pool.map(lambda w, a=action: w.step(a), worlds)):
                    record.append((step.observation, step.reward, step.done, step.info.valid))
        slots = {w._sim._slot for w in worlds}
        for w in worlds:
            w.close()
        return played, slots

    one, _ = episodes(1, 1)
    two, slots = episodes(2, 2)
    assert two == one
    assert slots == {0, 1}
    assert len(java_processes()) == 2  # the second JVM was started
    discard_jvm(1)
    assert len(java_processes()) == 1
    monkeypatch.setenv("AGENTBENCH_SCIENCEWORLD_JVMS", "0")
    with pytest.raises(ConfigError, match="AGENTBENCH_SCIENCEWORLD_JVMS must be a positive integer"):
        ScienceWorld()


def test_replay_reaches_the_same_state(env):
    actions = []
    env.reset(THERMOMETER)
    for _ in range(6):
        actions.append(env.expert_step().action)
        env.step(actions[-1])
    here = replay(env, THERMOMETER, 0, actions)
    expert_next = env.expert_step().action
    assert replay(env, THERMOMETER, 0, actions) == here
    assert env.expert_step().action == expert_next
    assert env.step(expert_next).info.valid


_CHILD = """
import hashlib, json, sys
from agentbench.env import Task
from agentbench.envs.scienceworld import ScienceWorld
env = ScienceWorld()
task = Task("t", "test", {"task": "chemistry-mix", "variation": 31})
seen = [env.reset(task)] + [env.step(action).observation for action in json.loads(sys.argv[1])]
sys.stderr.write("DIGEST " + hashlib.sha256(repr(seen).encode()).hexdigest())
"""


def test_worlds_are_the_same_across_processes_and_stdout_stays_clean(env):
    # Object order (and with it heat and matter flow) once differed between loads of a world.
    task = Task("t", "test", {"task": "chemistry-mix", "variation": 31})
    seen, actions = [env.reset(task)], []
    for _ in range(ScienceWorld.default_max_turns):
        actions.append(env.expert_step().action)
        step = env.step(actions[-1])
        seen.append(step.observation)
        if step.done:
            break
    assert step.info.success
    environ = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(actions)], capture_output=True, text=True,
                           env=environ, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout == ""
    assert child.stderr.rsplit("DIGEST ", 1)[1].strip() == hashlib.sha256(repr(seen).encode()).hexdigest()


def test_splits_are_official_variations_of_their_task_types(env):
    train, test, ood = (env.tasks(s) for s in ("train", "test", "ood"))
    assert len(train) == 1000 and len(test) == 200 and len(ood) == 200
    assert {t.spec["task"] for t in test} == set(IN_DOMAIN_TYPES)
    assert {t.spec["task"] for t in ood} == set(OOD_TYPES)
    for task in train[:50] + test[:50] + ood[:50]:
        official = "train" if task.split == "train" else "test"
        assert task.spec["variation"] in _official_variations(task.spec["task"])[official]
    assert [t.id for t in env.tasks("test")] == [t.id for t in ScienceWorld().tasks("test")]
    assert [t.spec["task"] for t in test[:3]] == list(IN_DOMAIN_TYPES[:3])  # round-robin over types
    assert ScienceWorld.from_params({"n_test": 5}).tasks("test") == test[:5]


@pytest.mark.parametrize("params, message", [
    ({"task_types": ["find-plnat"]}, "did you mean 'find-plant'"),
    ({"ood_task_types": ["find-plant"]}, "held out"),
    ({"simplifications": "easy,flying"}, "unknown simplification 'flying'"),
])
def test_bad_config_is_one_clear_error(params, message):
    with pytest.raises(ConfigError, match=message):
        ScienceWorld.from_params(params)


def test_unavailable_without_java(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    available = ScienceWorld.availability()
    assert not available.runnable and "Java" in available.detail


def test_a_dead_jvm_loses_the_episode_not_the_run():
    env = ScienceWorld()
    env.reset(LIFESPAN)
    (pid,) = java_processes()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(JvmDied, match="world is lost"):
        env.step("look around")  # the rollout counts this episode as an env error
    env.reset(LIFESPAN)  # a new JVM for the next episode
    assert env.step(env.expert_step().action).info.valid
    assert len(java_processes()) == 1 and java_processes() != [pid]
    env.close()
