"""The ood and scaling protocols end to end, with the tiny model on Frozen Lake."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agentbench.cli import app
from agentbench.results import read_result

runner = CliRunner()
TINY = ["--env", "frozenlake", "--model", "tiny", "--quiet", "--set", "budget.eval_tasks=2",
        "--set", "budget.rollout_batch=2", "--set", "budget.max_new_tokens=8",
        "--set", "budget.forgetting=false"]


def _only_result(out):
    (path,) = out.glob("*/result.json")
    return read_result(path)


def test_ood_protocol_evaluates_test_and_ood(tmp_path, tiny_model):
    result = runner.invoke(app, ["run", "--method", "il", "--protocol", "ood", "--out", str(tmp_path), *TINY,
                                 "--set", "budget.train_tasks=2"])
    assert result.exit_code == 0, result.output
    run = _only_result(tmp_path)
    assert run.protocol.name == "ood"
    assert {e.split for e in run.envs} == {"test", "ood"}
    by_split = {e.split: e for e in run.envs}
    assert by_split["test"].task_set_sha256 != by_split["ood"].task_set_sha256


def _scaling_points(out, method: str, axis: str, train_tasks: int):
    result = runner.invoke(app, ["run", "--method", method, "--protocol", "scaling", "--set", f"axis={axis}",
                                 "--out", str(out), *TINY, "--set", f"budget.train_tasks={train_tasks}"])
    assert result.exit_code == 0, result.output
    points = _only_result(out).scaling
    assert {p.axis for p in points} == {axis} and {p.split for p in points} == {"test"}
    return points


@pytest.mark.slow
def test_scaling_over_expert_fraction_gives_four_points_on_growing_data(tmp_path, tiny_model):
    points = _scaling_points(tmp_path, "il", "expert_fraction", train_tasks=8)
    assert [p.value for p in points] == [0.125, 0.25, 0.5, 1.0]
    assert [p.train.expert_trajectories for p in points] == [1, 2, 4, 8]
    steps = [p.train.optimizer_steps for p in points]
    assert steps == sorted(steps) and steps[0] < steps[-1]  # imitation's steps follow the data


@pytest.mark.slow
def test_scaling_over_branching_k_gives_four_points_with_more_branches(tmp_path, tiny_model):
    points = _scaling_points(tmp_path, "iwm", "branching_k", train_tasks=2)
    assert [p.value for p in points] == [1, 2, 4, 8]
    branches = [p.train.counters["branches"] for p in points]
    assert branches == sorted(branches) and branches[0] < branches[-1]
    # the world-model stage grows with K, but IWM stays on imitation's total step budget
    assert len({p.train.optimizer_steps for p in points}) == 1


def test_branching_k_axis_refuses_a_method_without_k(tmp_path, tiny_model):
    result = runner.invoke(app, ["run", "--method", "il", "--protocol", "scaling", "--set", "axis=branching_k",
                                 "--out", str(tmp_path), *TINY])
    assert result.exit_code == 2
    assert "has no branching factor k" in result.output
