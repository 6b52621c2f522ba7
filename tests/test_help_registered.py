"""Help and errors offer only what is registered (issue 18, case 18)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agentbench import registry
from agentbench.cli import app

runner = CliRunner()
MAYBE = {"backend": ["hf", "vllm", "openai"], "protocol": ["in-domain", "ood", "rl-compat", "scaling"]}


@pytest.mark.parametrize("command", [["--help"], ["run", "--help"], ["eval", "--help"], ["forgetting", "--help"]])
def test_help_names_nothing_unregistered(command):
    text = " ".join(runner.invoke(app, command, env={"COLUMNS": "300"}).output.split())
    for kind, names in MAYBE.items():
        reg = registry.backends if kind == "backend" else registry.protocols
        for name in names:
            if name not in reg.names():
                assert name not in text, f"{name} is offered but not registered"


def test_an_unknown_backend_lists_only_registered_ones():
    result = runner.invoke(app, ["run", "--method", "il", "--env", "frozenlake", "--backend", "nope"])
    assert result.exit_code == 2
    # the error suggests the closest registered names (several backends are registered now)
    assert any(f"'{b}'" in result.output for b in registry.backends.names())
    for name in MAYBE["backend"]:
        if name not in registry.backends.names():
            assert name not in result.output
