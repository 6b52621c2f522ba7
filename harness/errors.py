"""Errors a user can act on. Each carries the process exit code the CLI returns for it.

The CLI prints ``error: <message>`` on one line and exits with ``exit_code``; a traceback is
only shown for bugs (anything that is not an :class:`AgentbenchError`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AgentbenchError(Exception):
    """Base class: a clear, one-line problem with the user's input or setup."""

    exit_code: int = 1


class UsageError(AgentbenchError):
    """Bad command-line input: unknown names, malformed values."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A name that is not registered; the message lists the closest registered names."""

    def __init__(self, kind: str, name: str, choices: Iterable[str]):
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        close = difflib.get_close_matches(name, self.choices, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        known = f" (registered: {', '.join(self.choices)})" if not close and self.choices else ""
        super().__init__(f"unknown {kind} {name!r}{hint}{known}")


class ConfigError(UsageError):
    """A malformed or inconsistent configuration value."""


class CorruptFileError(AgentbenchError):
    """A file on disk that does not parse or does not match its schema."""

    exit_code = 2


class EnvUnavailableError(AgentbenchError):
    """An environment that cannot run here: missing data, package or server."""

    exit_code = 2


class EnvServerError(AgentbenchError):
    """A remote environment server that is down or answered garbage."""

    exit_code = 1


class RemoteEnvError(AgentbenchError):
    """A remote env server is up but its env failed this request (the episode is counted as an
    env error; the run goes on)."""

    exit_code = 1


class NotComparableError(AgentbenchError):
    """Two results whose comparability keys differ."""

    exit_code = 3


def closest(name: str, choices: Iterable[str]) -> list[str]:
    """The registered names closest to ``name`` (at most three)."""
    return difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
