"""BFCL v3 multi-turn: splits, the eval-free call parser and dispatcher, BFCL's checks, the expert,
snapshots, and agreement with bfcl-eval's own multi_turn_checker."""

from __future__ import annotations

import random

import pytest

from agentbench import registry
from agentbench.envs.bfcl import BFCL

pytestmark = pytest.mark.skipif(not BFCL.availability().runnable, reason=BFCL.availability().detail)


@pytest.fixture(scope="module")
def env():
    instance = BFCL()
    yield instance
    instance.close()


def _task(env, split, task_id):
    return next(t for t in env.tasks(split) if t.id == task_id)


def _play_expert(env, task, limit=80):
    env.reset(task)
    for _ in range(limit):
        step = env.step(env.expert_step().action)
        if step.done:
            return step
    raise AssertionError(f"{task.id}: the expert did not finish")


def test_registered_and_splits_are_deterministic(env):
    assert registry.envs.get("bfcl") is BFCL
    train, test, ood = env.tasks("train"), env.tasks("test"), env.tasks("ood")
    assert (len(train), len(test), len(ood)) == (150, 50, 150)
    assert [t.id for t in BFCL().tasks("test")] == [t.id for t in test]
    assert {t.spec["category"] for t in train + test} == {"base"}
    assert {t.spec["category"] for t in ood} == {"miss_func", "miss_param", "long_context"}
    # ood holds only the variants of the test entries' scenarios: none was seen in training
    index = {t.spec["entry"].rsplit("_", 1)[1] for t in test}
    assert {t.spec["entry"].rsplit("_", 1)[1] for t in ood} <= index
    assert not {t.spec["entry"].rsplit("_", 1)[1] for t in train} & index
    everything = BFCL(BFCL.Config(ood_scenarios="all")).tasks("ood")
    # the one entry whose ground truth calls a function before it is added is left out
    assert len(everything) == 599 and "miss_func_49" not in {t.id for t in everything}


@pytest.mark.parametrize("split", ["test", "ood"])
def test_expert_solves_sampled_tasks(env, split):
    tasks = env.tasks(split)
    sample = random.Random(1).sample(list(tasks), 6)
    if split == "ood":  # and one entry of each category for sure
        sample += [next(t for t in tasks if t.spec["category"] == c) for c in ("miss_func", "miss_param", "long_context")]
    for task in sample:
        final = _play_expert(env, task)
        assert final.info.success and final.reward == 1.0 and final.info.progress == 1.0, (task.id, final.observation)
        assert final.info.extra["turns_passed"] == task.spec["turns"]


def test_long_context_turn_is_batched_within_the_step_limit():
    wide = BFCL(BFCL.Config(ood_scenarios="all"))
    task = _task(wide, "ood", "long_context_46")  # one turn of 34 calls: cd, 31 rm, cd .., rmdir
    wide.reset(task)
    assert wide.expert_step().action == "cd(folder='Drafts')"
    wide.step("cd(folder='Drafts')")
    batched = wide.expert_step().action
    assert batched.startswith("[rm(file_name=") and batched.count("rm(") == 31
    assert wide.step(batched).info.valid
    assert wide.expert_step().action == "cd(folder='..')"
    assert _play_expert(wide, task).info.success


INJECTIONS = [
    "__import__('os').system('ls')",
    "os.system('echo hacked')",
    "cd(folder=__import__('os').getcwd())",
    "cd(folder=open('/etc/passwd').read())",
    "ls.__globals__",
    "ls().__class__",
    "ls(a=True).keys()",
    "(lambda: ls())()",
    "cd(folder=(lambda: 'x')())",
    "__builtins__['eval']('1')",
    "__class__()",
    "_load_scenario({})",
    "eval(\"ls()\")",
    "exec('import os')",
    "getattr(ls, '__globals__')",
    "import os",
    "x = ls()",
    "cd(folder='a' + 'b')",
    "cd(folder=f'{1}')",
    "cd(*['documents'])",
    "cd(**{'folder': 'documents'})",
    "[ls() for _ in range(3)]",
    "GorillaFileSystem.cd(folder='documents')",
    '[{"name": "__import__", "arguments": {"name": "os"}}]',
    '{"name": "eval", "arguments": {"source": "1"}}',
    "cp(source='final_report.pdf', destination='archive')",  # excluded_function of this entry
    "sort(file_name='final_report.pdf')",                   # miss_func: added at turn 4
]


@pytest.mark.parametrize("attack", INJECTIONS)
def test_injections_and_disallowed_calls_are_refused(env, attack):
    task = _task(env, "ood", "miss_func_0")  # base_0's scenario: excludes cp, adds sort at turn 4
    start = env.reset(task)
    before = env.snapshot()
    step = env.step(attack)
    assert not step.info.valid and not step.done
    assert step.observation.startswith("Invalid action:") and "Nothing was run" in step.observation
    after = env.snapshot()
    assert after.results == before.results == [] and after.this_turn == []
    for name, instance in after.model.instances.items():
        assert vars(instance).keys() == vars(before.model.instances[name]).keys()
        assert {k: v for k, v in vars(instance).items() if k != "_current_dir"} == \
               {k: v for k, v in vars(before.model.instances[name]).items() if k != "_current_dir"}
    # the episode goes on as if nothing happened
    assert step.observation.split("\n", 1)[1] == start
    assert env.step(env.expert_step().action).info.valid


def test_costly_math_is_refused_not_run():
    env = BFCL()
    task = next(t for t in env.tasks("train") if "MathAPI" in t.spec["classes"])
    env.reset(task)
    for attack in ["power(base=7, exponent=10**12)", "power(base=7, exponent=1000000000000)",
                   "square_root(number=2, precision=100000000)", "logarithm(value=5, base=2, precision=99999999)"]:
        assert not env.step(attack).info.valid, attack
    fine = env.step("power(base=2, exponent=10)")
    assert fine.info.valid and '{"result": 1024}' in fine.observation


def test_call_forms_results_and_errors(env):
    task = _task(env, "test", "base_0")
    env.reset(task)
    # positional arguments bind to the signature; several calls per action; BFCL's result strings
    step = env.step("cd('document'); mkdir(dir_name='temp')")
    assert step.info.valid
    assert env.snapshot().this_turn == [("cd(folder='document')", '{"current_working_directory": "document"}'),
                                        ("mkdir(dir_name='temp')", "None")]
    step = env.step('[{"name": "mv", "arguments": {"source": "final_report.pdf", "destination": "temp"}}]')
    assert step.info.valid and "mv(source='final_report.pdf', destination='temp')" in step.observation
    # an API's own error is a result (as in BFCL), not an invalid action
    step = env.step("cd(folder='nowhere')")
    assert step.info.valid and "No such file or directory" in step.observation
    # arguments that do not bind are refused before anything runs
    for bad in ["cd()", "cd(folder='a', extra=1)", "cd('a', 'b')"]:
        assert not env.step(bad).info.valid


def test_turn_checks_follow_bfcl(env):
    task = _task(env, "test", "base_0")  # turn 1: cd document, mkdir temp, mv final_report.pdf temp
    # a missing call: the state differs from the ground truth's, the turn fails, the episode goes on
    # (and, the file never moved, so do the later turns' state checks)
    env.reset(task)
    env.step("cd(folder='document')")
    env.step("mkdir(dir_name='temp')")
    after = env.step("respond done")
    assert after.info.valid and not after.done and after.info.progress == 0.0
    assert "Turn 2 of 4" in after.observation and "mkdir(dir_name='temp')" in after.observation
    while not (final := env.step(env.expert_step().action)).done:
        pass
    assert not final.info.success and final.reward == 0.0 and final.info.progress == 0.0
    assert "turn 1: state differs from the ground truth's (root)" in final.info.extra["first_failure"]
    # a read-only call with a wrong argument fails that turn's response check only
    env.reset(task)
    for _ in range(4):
        env.step(env.expert_step().action)
    env.step(env.expert_step().action)  # cd temp
    env.step("grep(file_name='final_report.pdf', pattern='no such words')")
    env.step("respond done")
    while not (final := env.step(env.expert_step().action)).done:
        pass
    assert not final.info.success and final.info.progress == pytest.approx(3 / 4)
    assert final.info.extra["first_failure"] == "turn 2: 1 expected result(s) missing"
    # a turn that needs calls but gets none fails too
    env.reset(task)
    assert env.step("respond I will not").info.progress == 0.0
    # extra harmless calls do not matter (pwd changes no public state)
    env.reset(task)
    env.step("pwd()")
    while not (final := env.step(env.expert_step().action)).done:
        pass
    assert final.info.success
    # stop_at_failed_turn ends the episode at the first failing turn
    strict = BFCL(BFCL.Config(stop_at_failed_turn=True))
    strict.reset(task)
    assert strict.step("respond no").done


def test_miss_param_turn_is_answered_without_calls(env):
    task = next(t for t in env.tasks("ood") if t.spec["category"] == "miss_param")
    env.reset(task)
    while True:
        move = env.expert_step().action
        if move.startswith("respond I cannot"):
            break
        env.step(move)
    assert env.step(move).info.valid


def test_step_limit_per_turn_ends_the_episode():
    env = BFCL(BFCL.Config(max_steps_per_turn=3))
    env.reset(_task(env, "test", "base_0"))
    for _ in range(3):
        assert not env.step("pwd()").done
    final = env.step("pwd()")
    assert final.done and not final.info.success and "more than 3 call steps" in final.info.extra["first_failure"]


def test_snapshot_restore_round_trip(env):
    task = _task(env, "test", "base_0")
    env.reset(task)
    env.step(env.expert_step().action)
    snap = env.snapshot()
    branch = env.step("mkdir(dir_name='elsewhere')").observation
    env.restore(snap)
    expert = env.step(env.expert_step().action).observation
    env.restore(snap)
    assert env.step("mkdir(dir_name='elsewhere')").observation == branch
    env.restore(snap)  # a snapshot can be restored again, and restoring does not alias it
    assert env.step(env.expert_step().action).observation == expert
    while not (final := env.step(env.expert_step().action)).done:
        pass
    assert final.info.success
    env.restore(snap)
    assert env.snapshot().this_turn == snap.this_turn and len(snap.this_turn) == 1


def test_episodes_do_not_leak_into_module_state():
    # TravelAPI merges module-level dicts into its state in long-context mode; a booking must
    # not change the next episode's start state.
    from bfcl_eval.eval_checker.multi_turn_eval.func_source_code import long_context

    from agentbench.envs.bfcl.apis import ApiSession
    from agentbench.envs.bfcl.data import entry

    wide = BFCL(BFCL.Config(ood_scenarios="all"))
    task = next(t for t in wide.tasks("ood") if t.spec["category"] == "long_context" and "TravelAPI" in t.spec["classes"])
    session = ApiSession(entry(task.spec["entry"]))
    cards = session.instances["TravelAPI"].credit_card_list
    assert all(cards[k] is not v for k, v in long_context.CREDIT_CARD_EXTENSION.items() if k in cards)
    first = [wide.reset(task)]
    _play_expert(wide, task)
    assert wide.reset(task) == first[0] and wide.snapshot().model.instances["TravelAPI"].credit_card_list == cards


def test_agrees_with_bfcl_multi_turn_checker(env):
    """Our verdict equals bfcl-eval's multi_turn_checker on the same calls. (The official checker
    runs call strings with eval: it is only given the fixed ground-truth-derived strings below.)"""
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    from agentbench.envs.bfcl.data import entry

    task = _task(env, "test", "base_0")
    raw = entry(task.spec["entry"])
    truth = [list(turn) for turn in raw.ground_truth]
    variants = {
        "expert": truth,
        "missing call": [truth[0][:-1], *truth[1:]],
        "extra pwd": [["pwd()", *truth[0]], *truth[1:]],
        "wrong argument": [truth[0], [truth[1][0], "grep(file_name='final_report.pdf', pattern='no such words')"], *truth[2:]],
    }
    verdicts = {}
    for n, (name, turns) in enumerate(variants.items()):
        env.reset(task)
        for calls in turns:
            for call in calls:
                assert env.step(call).info.valid
            final = env.step("respond ok")
        entry_dict = {"id": raw.id, "initial_config": raw.initial_config, "involved_classes": list(raw.involved_classes)}
        official = multi_turn_checker([[[c] for c in calls] for calls in turns], truth, entry_dict,
                                      "multi_turn_base", f"agreement_{n}")
        assert final.done and final.info.success == official["valid"], (name, official.get("error_type"))
        verdicts[name] = final.info.success
    assert verdicts == {"expert": True, "missing call": False, "extra pwd": True, "wrong argument": False}


def test_unavailable_without_bfcl_eval_names_the_install(monkeypatch):
    from agentbench.envs.bfcl import data
    from agentbench.envs.bfcl import env as env_module

    def missing(category):
        raise ModuleNotFoundError("No module named 'bfcl_eval'")

    monkeypatch.setattr(data, "entries", missing)
    available = env_module._availability.__wrapped__()
    assert not available.runnable
    assert available.detail.startswith("pip install --no-deps bfcl-eval==") and "\n" not in available.detail


def test_a_task_from_other_data_is_refused(env):
    from agentbench.env import Task
    from agentbench.errors import ConfigError

    task = env.tasks("test")[0]
    with pytest.raises(ConfigError, match="differs"):
        env.reset(Task(task.id, "test", {**task.spec, "sha256": "0" * 64}))
    with pytest.raises(ConfigError, match="no entry"):
        env.reset(Task("x", "test", {**task.spec, "entry": "multi_turn_base_999"}))
