"""A plugin from another installed package appears in `agentbench list` and runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).parent / "fixtures" / "plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(PLUGIN)], check=True, capture_output=True)
    assert list(site.glob("agentbench_counter-*.dist-info"))
    return site


def _agentbench(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "agentbench", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_plugin_is_listed_with_its_distribution(plugin_site, tmp_path):
    done = _agentbench(plugin_site, "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "counter" in done.stdout and "repeat-expert" in done.stdout
    assert "agentbench-counter" in done.stdout


def test_plugin_env_and_method_run(plugin_site, tmp_path, tiny_model):
    done = _agentbench(plugin_site, "run", "--method", "repeat-expert", "--env", "counter", "--model", "tiny",
                       "--set", "budget.eval_tasks=4", "--set", "budget.train_tasks=3", "--out", str(tmp_path),
                       "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(next(tmp_path.glob("*/result.json")).read_text())
    assert result["method"]["name"] == "repeat-expert"
    assert result["method"]["distribution"] == "agentbench-counter"
    assert result["envs"][0]["name"] == "counter"
    assert result["envs"][0]["n_episodes"]["planned"] == 4
    assert result["train"]["examples"] > 0  # the method really received the plugin env's expert data
