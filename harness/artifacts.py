"""A content-addressed cache of expensive, deterministic artifacts shared between runs of one
output folder: expert data, branching rollouts, imitation checkpoints.

Keys hash everything that determines an artifact (env and version, tasks, model weights,
settings, seed), so reuse never changes a result, only skips recomputing it. A process holds
the entries it touched (``agentbench.locking``) until it ends. This is how the
methods of one protocol share their expert data and branching rollouts, and how ``long-cot``
evaluates the very checkpoint ``il`` trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentbench.env import sha256_json
from agentbench.fileio import atomic_write_text
from agentbench.locking import acquire


class SharedCache:
    def __init__(self, root: Path):
        self.root = root

    def folder(self, kind: str, key: dict[str, Any]) -> Path:
        path = self.root / f"{kind}-{sha256_json(key)[:16]}"
        # Held by this process from now on: a second process that needs the entry waits for
        # it, then reuses what this one built (never both writing it).
        acquire(path, wait=True)
        if not (path / "key.json").exists():
            atomic_write_text(path / "key.json", json.dumps(key, indent=2, sort_keys=True, default=str))
        return path

    def read_json(self, kind: str, key: dict[str, Any], name: str) -> Any | None:
        path = self.folder(kind, key) / name
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:
            return None  # a torn write: recompute

    def write_json(self, kind: str, key: dict[str, Any], name: str, value: Any) -> Path:
        path = self.folder(kind, key) / name
        atomic_write_text(path, json.dumps(value))
        return path
