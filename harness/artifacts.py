"""A content-addressed cache of expensive, deterministic artifacts shared between runs of one
output folder: expert data, branching rollouts, imitation checkpoints.

Keys hash everything that determines an artifact (env and version, tasks, model weights,
settings, seed), so reuse never changes a result, only skips recomputing it. A process holds an
entry (``agentbench.locking``) while it builds it and lets go once the entry is complete
(:meth:`SharedCache.entry`), so a second process waits only for the work it needs, never for the
first one's whole run. This is how the methods of one protocol share their expert data and
branching rollouts, how ``long-cot`` evaluates the very checkpoint ``il`` trained, and how two
processes of one rl-compat command split its starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentbench.env import sha256_json
from agentbench.fileio import atomic_write_text
from agentbench.locking import FolderInUseError, acquire, release


class SharedCache:
    def __init__(self, root: Path):
        self.root = root

    def path(self, kind: str, key: dict[str, Any]) -> Path:
        """Where the entry of ``key`` lives (no lock taken)."""
        return self.root / f"{kind}-{sha256_json(key)[:16]}"

    def folder(self, kind: str, key: dict[str, Any]) -> Path:
        """The entry's folder, locked by this process until :meth:`release` (or its end): a
        second process that needs the entry waits for it, then reuses what this one built (never
        both writing it)."""
        path = self.path(kind, key)
        acquire(path, wait=True)
        return self._keyed(path, key)

    def try_folder(self, kind: str, key: dict[str, Any]) -> Path | None:
        """:meth:`folder`, or None at once when another process holds the entry."""
        path = self.path(kind, key)
        try:
            acquire(path)
        except FolderInUseError:
            return None
        return self._keyed(path, key)

    @staticmethod
    def _keyed(path: Path, key: dict[str, Any]) -> Path:
        if not (path / "key.json").exists():
            atomic_write_text(path / "key.json", json.dumps(key, indent=2, sort_keys=True, default=str))
        return path

    @staticmethod
    def release(path: Path) -> None:
        """Let other processes at an entry this process has completed (or given up on)."""
        release(path)

    @contextmanager
    def entry(self, kind: str, key: dict[str, Any]) -> Iterator[Path]:
        """The entry's folder, held while the block builds or reads it, released after."""
        path = self.folder(kind, key)
        try:
            yield path
        finally:
            self.release(path)

    @staticmethod
    def read_json(path: Path) -> Any | None:
        """A JSON file of an entry the caller holds, or None when missing or torn (recompute)."""
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:
            return None

    @staticmethod
    def write_json(path: Path, value: Any) -> None:
        atomic_write_text(path, json.dumps(value))
