"""A domain database as the shared, read-only published records plus this episode's changes.

The published databases are large (retail 2.8 MB, airline 7 MB of JSON), so an episode never
copies them: a record is copied into the episode's overlay the first time a tool writes it.
Snapshots copy only the overlay, and the database's hash is taken over the records that differ
from the published ones (two databases on the same base are equal exactly when these are), so
comparing with the gold replay's database costs little.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from agentbench.env import sha256_json


class Database:
    def __init__(self, base: dict[str, dict[str, Any]], overlay: dict[str, dict[str, Any]] | None = None):
        self.base = base
        self.overlay: dict[str, dict[str, Any]] = overlay if overlay is not None else {}

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        """The record (read it, never change it), or None."""
        changed = self.overlay.get(collection, {})
        if key in changed:
            return changed[key]
        return self.base[collection].get(key)

    def has(self, collection: str, key: str) -> bool:
        return key in self.overlay.get(collection, {}) or key in self.base[collection]

    def write(self, collection: str, key: str) -> dict[str, Any]:
        """The record, copied into this episode's changes, to be modified in place."""
        changed = self.overlay.setdefault(collection, {})
        if key not in changed:
            changed[key] = copy.deepcopy(self.base[collection][key])
        return changed[key]

    def insert(self, collection: str, key: str, record: dict[str, Any]) -> None:
        self.overlay.setdefault(collection, {})[key] = record

    def values(self, collection: str) -> Iterator[dict[str, Any]]:
        changed = self.overlay.get(collection, {})
        for key, record in self.base[collection].items():
            yield changed.get(key, record)
        for key, record in changed.items():
            if key not in self.base[collection]:
                yield record

    def diff(self) -> dict[str, dict[str, Any]]:
        """The records that differ from the published database."""
        out: dict[str, dict[str, Any]] = {}
        for collection, changed in self.overlay.items():
            base = self.base[collection]
            differing = {k: v for k, v in changed.items() if base.get(k) != v}
            if differing:
                out[collection] = differing
        return out

    def sha256(self) -> str:
        return sha256_json(self.diff())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.overlay)

    def restore(self, overlay: dict[str, dict[str, Any]]) -> None:
        self.overlay = copy.deepcopy(overlay)
