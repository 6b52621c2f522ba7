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
