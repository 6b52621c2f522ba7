"""A real ``agentbench serve-env`` process killed mid-episode and mid-run: one clear error,
nothing lost, and ``--resume`` after a restart ends with the episodes of an uninterrupted run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from agentgym_helpers import ServerProcess
from typer.testing import CliRunner

from agentbench.cli import run_app
from agentbench.envs.agentgym import AgentGymEnv
from agentbench.errors import EnvServerError
from agentbench.evaluation import EpisodeLog


def test_server_killed_mid_episode():
    server = ServerProcess("frozenlake")
    try:
        env = AgentGymEnv(AgentGymEnv.Config(variant="frozenlake", url=server.url, retries=1))
        env.reset(env.tasks("test")[0])
        env.step(env.expert_step().action)
        server.kill()
        with pytest.raises(EnvServerError) as caught:
            env.step("down")
        message = str(caught.value)
        assert message == (f"env server {server.url} is unreachable (connection refused) during POST /step: "
                           f"is it running?")
        with pytest.raises(EnvServerError, match=r"during GET /agentbench/expert_step \(2 tries\)"):
            env.expert_step()
        env.close()  # closing against a dead server is quiet
    finally:
        server.stop()


def _run(url: str, out: Path, *extra: str):
    args = ["--method", "none", "--env", "agentgym:frozenlake", "--model", "tiny", "--set", f"url={url}",
            "--set", "eval_tasks=4", "--set", "rollout_batch=2", "--set", "budget.max_new_tokens=8",
            "--set", "max_consecutive_invalid=2", "--set", "retries=1",
            "--out", str(out), "--run-id", "remote", "--quiet", *extra]
    return CliRunner().invoke(run_app, args)


def _episodes(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "remote" / "episodes.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_run_killed_with_its_server_resumes_to_the_same_episodes(tmp_path, monkeypatch):
    server = ServerProcess("frozenlake")
    try:
        whole = _run(server.url, tmp_path / "whole")
        assert whole.exit_code == 0, whole.output
        expected = _episodes(tmp_path / "whole")
        assert len(expected) == 4

        # Kill the server the moment the first episode is on disk: the next wave (and perhaps the
        # other episode of this one) still needs it.
        append = EpisodeLog.append

        def append_then_crash(self, record):
            append(self, record)
            server.kill()

        monkeypatch.setattr(EpisodeLog, "append", append_then_crash)
        broken = _run(server.url, tmp_path / "broken")
        monkeypatch.setattr(EpisodeLog, "append", append)
        assert broken.exit_code == 1
        error_lines = [line for line in broken.output.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1 and re.fullmatch(
            rf"error: env server {server.url} is unreachable \(connection refused\) during "
            rf"POST /(step|reset( \(2 tries\))?): is it running\?", error_lines[0]), broken.output
        kept = _episodes(tmp_path / "broken")
        assert 1 <= len(kept) < 4 and kept == expected[: len(kept)]  # what was finished is kept
        assert not (tmp_path / "broken" / "remote" / "result.json").exists()

        server = ServerProcess("frozenlake", port=server.port)  # the same address, a fresh process
        resumed = _run(server.url, tmp_path / "broken", "--resume")
        assert resumed.exit_code == 0, resumed.output
        assert _episodes(tmp_path / "broken") == expected
        result = json.loads((tmp_path / "broken" / "remote" / "result.json").read_text())
        assert result["status"] == "complete" and result["envs"][0]["n_episodes"]["completed"] == 4
    finally:
        server.stop()
