"""Command-line behaviour: one-line errors with the closest names, exit codes, result checks."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agentbench.cli import app, run_app

runner = CliRunner()


def _run(*args: str, application=app):
    return runner.invoke(application, list(args))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--method", "il", "--env", "frozenlak"], "did you mean 'frozenlake'"),
        (["run", "--method", "ill", "--env", "frozenlake"], "unknown method 'ill'; did you mean 'il'"),
        (["run", "--method", "il", "--env", "frozenlake", "--model", "smollm3"], "unknown model 'smollm3'"),
        (["run", "--method", "il", "--env", "frozenlake", "--budget", "smok"], "did you mean 'smoke'"),
        (["run", "--method", "il", "--env", "frozenlake", "--set", "learning_rat=1"], "did you mean 'learning_rate'"),
        (["run", "--method", "il", "--env", "frozenlake", "--set", "oops"], "--set expects key=value"),
        (["run", "--method", "il", "--env", "frozenlake", "--set", "epochs=2"], "ambiguous"),
        (["run", "--method", "il", "--env", "frozenlake", "--set", "budget.epochs=-1"], "greater than 0"),
        (["run", "--method", "il", "--env", "frozenlake", "--protocol", "in-domian"], "did you mean 'in-domain'"),
        (["eval", "--env", "frozenlake", "--split", "tset"], "did you mean 'test'"),
        (["list", "env"], "did you mean 'envs'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle):
    result = _run(*args)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.strip().splitlines() if line.strip()]) <= 3


def test_agentbench_run_entry_point_suggests_names():
    result = _run("--method", "il", "--env", "frozenlak", application=run_app)
    assert result.exit_code == 2
    assert "did you mean 'frozenlake'" in result.output


def test_unknown_cli_option_is_a_usage_error():
    result = _run("run", "--method", "il", "--env", "frozenlake", "--sed", "1")
    assert result.exit_code == 2
    assert "--seed" in result.output  # click suggests the closest option


def test_list_shows_builtins():
    result = _run("list")
    assert result.exit_code == 0
    for name in ("frozenlake", "il", "none", "in-domain", "smollm2-135m", "tiny", "hf"):
        assert name in result.output


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"schema_version": 1, "run_id": "x"}), "is corrupt"),
        (json.dumps({"schema_version": 99}), "not supported"),
    ],
)
def test_corrupt_result_is_reported_not_a_traceback(tmp_path, content, needle):
    path = tmp_path / "result.json"
    path.write_text(content)
    result = _run("show", str(path))
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output


def test_missing_result_is_reported(tmp_path):
    result = _run("show", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_check_env_reports_the_contract():
    result = runner.invoke(app, ["check-env", "frozenlake", "--sample", "5", "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "5/5" in result.output and "contract kept" in result.output


def test_check_env_fails_an_env_that_breaks_the_contract(monkeypatch):
    from agentbench.env import ExpertStep
    from agentbench.envs.frozenlake import FrozenLake

    monkeypatch.setattr(FrozenLake, "expert_step", lambda self: ExpertStep("up"))  # walks into the edge
    result = runner.invoke(app, ["check-env", "frozenlake", "--sample", "5", "--split", "test"])
    assert result.exit_code == 1
    assert "fails:" in result.output and "0/5" in result.output
