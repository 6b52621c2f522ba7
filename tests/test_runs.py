"""End-to-end runs with the tiny model: reproducibility, resume after a kill, learning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentbench.cli import app
from agentbench.results import read_result

runner = CliRunner()
# The forgetting check has tests of its own (test_forgetting_runs.py).
FAST = ["--model", "tiny", "--quiet", "--set", "budget.train_tasks=4", "--set", "budget.eval_tasks=8",
        "--set", "budget.rollout_batch=4", "--set", "budget.forgetting=false"]


def _run(out: Path, *extra: str) -> Path:
    result = runner.invoke(app, ["run", "--method", "il", "--env", "frozenlake", "--out", str(out), *FAST, *extra])
    assert result.exit_code == 0, result.output
    return next(out.glob("*/result.json"))


def test_same_command_twice_gives_the_same_numbers(tmp_path, tiny_model):
    first = _run(tmp_path / "a", "--seed", "0")
    second = _run(tmp_path / "b", "--seed", "0")
    a, b = read_result(first), read_result(second)
    assert a.run_id == b.run_id
    assert (first.parent / "episodes.jsonl").read_text() == (second.parent / "episodes.jsonl").read_text()
    assert a.envs[0].success_rate == b.envs[0].success_rate
    assert a.model.checkpoint_sha256 == b.model.checkpoint_sha256  # training is bitwise reproducible
    assert a.comparability_key == b.comparability_key
    assert a.train.optimizer_steps == b.train.optimizer_steps > 0
    assert a.artifacts["episodes_jsonl_sha256"] == b.artifacts["episodes_jsonl_sha256"]


def test_result_records_provenance(tmp_path, tiny_model):
    result = read_result(_run(tmp_path))
    assert result.status == "complete"
    assert result.harness.version
    assert result.environment.torch and result.environment.transformers
    assert len(result.model.revision_or_sha256) == 64
    assert len(result.model.chat_template_sha256) == 64
    assert len(result.envs[0].task_set_sha256) == 64
    assert result.method.config["lora"] is False
    assert result.protocol.budget == "custom"  # overridden presets are never reported as the preset
    env = result.envs[0]
    assert env.n_episodes.planned == env.n_episodes.completed == 8
    assert sum(env.terminations.model_dump().values()) == 8
    lo, hi = env.success_rate.ci95
    assert 0 <= lo <= env.success_rate.value <= hi <= 1


def test_existing_run_folder_needs_resume_or_overwrite(tmp_path, tiny_model):
    _run(tmp_path)
    again = runner.invoke(app, ["run", "--method", "il", "--env", "frozenlake", "--out", str(tmp_path), *FAST])
    assert again.exit_code == 2
    assert "--resume" in again.output


def _eval_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "agentbench", "eval", "--env", "frozenlake", "--model", "tiny", "--quiet",
            "--out", str(out), "--set", "budget.eval_tasks=24", "--set", "budget.rollout_batch=4", *extra]


def test_killed_run_resumes_to_the_same_episodes(tmp_path, tiny_model):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    subprocess.run(_eval_cmd(reference), check=True, env=env, capture_output=True, timeout=600)
    expected = next(reference.glob("*/episodes.jsonl")).read_text()

    crashed = tmp_path / "crashed"
    proc = subprocess.Popen(_eval_cmd(crashed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    episodes: Path | None = None
    while time.time() < deadline:
        episodes = next(crashed.glob("*/episodes.jsonl"), None)
        if episodes is not None and episodes.read_text().count("\n") >= 6:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert episodes is not None
    partial = episodes.read_text().count("\n")
    assert 6 <= partial < 24, "the kill must land half-way"

    subprocess.run(_eval_cmd(crashed, "--resume"), check=True, env=env, capture_output=True, timeout=600)
    resumed = episodes.read_text()
    assert resumed == expected
    keys = [(r["task_id"], r["seed"]) for r in map(json.loads, resumed.splitlines())]
    assert len(keys) == len(set(keys)) == 24  # no duplicates, no gaps


@pytest.mark.slow
def test_imitation_learning_learns(tmp_path, tiny_model):
    common = ["--model", "tiny", "--quiet", "--set", "budget.eval_tasks=24", "--set", "budget.train_tasks=32"]
    before = runner.invoke(app, ["eval", "--env", "frozenlake", "--out", str(tmp_path / "before"), *common])
    assert before.exit_code == 0, before.output
    after = runner.invoke(app, ["run", "--method", "il", "--env", "frozenlake", "--out", str(tmp_path / "after"),
                                *common, "--set", "budget.epochs=2", "--set", "budget.batch_size=8",
                                # 64 steps at a raised rate: the format is learnt and progress is ~30%
                                "--set", "budget.learning_rate=0.003",
                                "--set", "budget.forgetting=false"])
    assert after.exit_code == 0, after.output
    untrained = read_result(next((tmp_path / "before").glob("*/result.json"))).envs[0]
    trained = read_result(next((tmp_path / "after").glob("*/result.json"))).envs[0]
    assert untrained.invalid_action_rate > 0.9  # a random model cannot even speak the action format
    assert trained.invalid_action_rate < 0.2
    assert trained.progress_rate > untrained.progress_rate + 0.2
