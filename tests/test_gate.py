"""The committed regression baselines and the gate's bookkeeping (the reruns themselves are
``make regression``, a CI step of their own)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agentbench import registry
from agentbench.compare import compare
from agentbench.gate import GateError, check_baseline, load_spec, without_out

BASELINES = Path(__file__).parent.parent / "leaderboards" / "baselines"
SPEC = load_spec(BASELINES)


def test_without_out_drops_only_where_a_run_goes():
    argv = ["run", "--env", "maze", "--out", "/tmp/x", "--run-id", "maze", "--set", "a=1", "--out=/y"]
    assert without_out(argv) == ["run", "--env", "maze", "--set", "a=1"]


@pytest.mark.parametrize("name", list(SPEC.runs))
def test_every_declared_run_has_a_current_small_baseline(name):
    argv = SPEC.argv(name)
    assert argv[argv.index("--env") + 1] in registry.envs
    path = check_baseline(SPEC, BASELINES, name)  # exists, and made by the declared command
    assert sorted(p.name for p in path.parent.iterdir()) == ["episodes.jsonl", "result.json"]
    assert sum(p.stat().st_size for p in path.parent.iterdir()) < 1_000_000
    same = compare(path, path)  # validates the result, its episodes' sha256 and comparability key
    assert same.verdict.value == "pass"


def test_a_baseline_made_by_another_command_is_refused(tmp_path):
    name = next(iter(SPEC.runs))
    shutil.copytree(BASELINES / name, tmp_path / name)
    changed = SPEC.model_copy(update={"common": [*SPEC.common, "--set", "budget.eval_tasks=7"]})
    with pytest.raises(GateError, match="another command"):
        check_baseline(changed, tmp_path, name)
    with pytest.raises(GateError, match="no baseline"):
        check_baseline(SPEC, tmp_path / "empty", name)


@pytest.mark.parametrize("name", list(SPEC.runs))
def test_every_declared_command_is_an_api_call(name):
    from agentbench.gate import api_call

    function, kwargs = api_call(name, SPEC.argv(name))
    argv = SPEC.argv(name)
    assert function == {"run": "run", "eval": "evaluate"}[argv[0]]
    assert kwargs["env"] == argv[argv.index("--env") + 1]
    assert kwargs["sets"] == [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert kwargs["seed"] == int(argv[argv.index("--seed") + 1])


def test_an_option_the_api_cannot_take_is_refused_before_any_run():
    from agentbench.gate import api_call

    assert api_call("x", ["run", "--env=maze", "--method", "il", "--seed", "3", "-q"]) == (
        "run", {"sets": [], "env": "maze", "method": "il", "seed": 3})
    assert api_call("x", ["eval", "--env", "maze", "--split", "test", "--split", "ood"])[1]["splits"] == ["test", "ood"]
    with pytest.raises(GateError, match="option '--resume' of run is not one the gate can pass"):
        api_call("x", ["run", "--env", "maze", "--resume"])
    with pytest.raises(GateError, match="starts with run or eval"):
        api_call("x", ["publish", "runs"])
    with pytest.raises(GateError, match="needs a value"):
        api_call("x", ["run", "--env"])


@pytest.mark.slow
def test_the_gate_reruns_a_baseline_bitwise_through_the_api(tmp_path):
    """`gate check` on one env: the declared command, run as an api call in a process of its own,
    reproduces the committed baseline's episodes byte for byte and records the declared command."""
    from typer.testing import CliRunner

    from agentbench.gate import app
    from agentbench.results import read_result

    done = CliRunner().invoke(app, ["check", "--only", "frozenlake", "--baselines", str(BASELINES),
                                    "--keep", str(tmp_path), "--require-identical"])
    assert done.exit_code == 0, done.output
    assert "regression gate passed: frozenlake" in done.output
    rerun = read_result(tmp_path / "frozenlake" / "result.json")
    assert without_out(rerun.command[1:]) == SPEC.argv("frozenlake") and rerun.command[0] == "agentbench"
