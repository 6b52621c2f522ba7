"""The registry refuses two distributions that register one name, and objects of the wrong
kind (issue 18, case 16)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _dist(site: Path, name: str, entries: str) -> None:
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entries)


def _agentbench(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "agentbench", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_one_name_from_two_distributions_is_one_line_naming_both(tmp_path):
    _dist(tmp_path, "lake-plugin", "[agentbench.envs]\nfrozenlake = lake_plugin:Lake\n")
    done = _agentbench(tmp_path, "run", "--method", "il", "--env", "frozenlake", "--model", "tiny")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: agentbench.envs: 'frozenlake' is registered by two")
    assert "agentbench" in lines[0] and "lake-plugin" in lines[0]


def test_an_object_of_the_wrong_kind_is_refused(tmp_path):
    _dist(tmp_path, "odd-plugin", "[agentbench.envs]\nnot-an-env = json:dumps\n"
                                  "[agentbench.methods]\nnot-a-method = json:JSONDecoder\n")
    done = _agentbench(tmp_path, "run", "--method", "il", "--env", "not-an-env", "--model", "tiny")
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: env 'not-an-env' from odd-plugin (json:dumps) is not an env: "
                                   "expected a class, got function")
    done = _agentbench(tmp_path, "run", "--method", "not-a-method", "--env", "frozenlake", "--model", "tiny")
    assert "is not a method: JSONDecoder has no train" in done.stderr
    listed = _agentbench(tmp_path, "list", "envs")
    assert listed.returncode == 0 and "is not an env" in " ".join(listed.stdout.split())


def test_no_env_or_protocol_option_is_shadowed_by_a_harness_section():
    """An env's or protocol's option is written bare (``--set retries=5``); a harness-wide
    section (backend, limits, prompt, generation, forgetting) that declared the same name would
    make every such command ambiguous. Harness sections name their options apart."""
    from agentbench import registry
    from agentbench.backends import BackendOptions, SamplingParams
    from agentbench.forgetting.config import ForgettingConfig
    from agentbench.prompting import PromptConfig
    from agentbench.rollout import RolloutLimits

    harness = {name: set(cls.model_fields) for name, cls in {
        "backend": BackendOptions, "generation": SamplingParams, "prompt": PromptConfig,
        "limits": RolloutLimits, "forgetting": ForgettingConfig}.items()}
    clashes = []
    for kind in (registry.envs, registry.protocols):
        for name in kind.names():
            for key in kind.get(name).Config.model_fields:
                clashes += [f"{name}.{key} vs {section}.{key}" for section, keys in harness.items() if key in keys]
    assert not clashes, clashes
