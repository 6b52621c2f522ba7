"""The one registry: environments, methods, protocols, models and backends are found by name.

Everything, built-ins included, is registered through Python entry points, so a third-party
package adds an environment by declaring, in its own ``pyproject.toml``::

    [project.entry-points."agentbench.envs"]
    my-env = "my_package.my_module:MyEnv"

Names of the form ``prefix:rest`` (``agentgym:webshop``) resolve to the entry ``prefix`` and
hand ``rest`` to the component as its *variant*.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from agentbench.errors import AgentbenchError, UnknownNameError

T = TypeVar("T")

ENTRY_POINT_GROUPS = {
    "env": "agentbench.envs",
    "method": "agentbench.methods",
    "protocol": "agentbench.protocols",
    "model": "agentbench.models",
    "backend": "agentbench.backends",
}


@dataclass(frozen=True)
class Resolved(Generic[T]):
    """A registry hit: the loaded object, the registered name and the variant after ``:``."""

    obj: T
    name: str
    variant: str | None
    distribution: str | None

    @property
    def full_name(self) -> str:
        return f"{self.name}:{self.variant}" if self.variant else self.name


class Registry(Generic[T]):
    """Names of one kind of component, loaded lazily from one entry-point group."""

    def __init__(self, kind: str):
        self.kind = kind
        self.group = ENTRY_POINT_GROUPS[kind]

    def _entry_points(self) -> dict[str, EntryPoint]:
        return _group(self.group)

    def names(self) -> list[str]:
        return sorted(self._entry_points())

    def __contains__(self, name: str) -> bool:
        return name in self._entry_points() or name.split(":", 1)[0] in self._entry_points()

    def resolve(self, name: str) -> Resolved[T]:
        eps = self._entry_points()
        key, variant = (name, None) if name in eps else (name.split(":", 1) + [None])[:2]
        if key not in eps:
            raise UnknownNameError(self.kind, name, eps)
        ep = eps[key]
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not look like a bug of ours
            raise AgentbenchError(f"{self.kind} {key!r} failed to load from {ep.value}: {exc}") from exc
        dist = ep.dist.name if ep.dist is not None else None
        return Resolved(obj=obj, name=key, variant=variant or None, distribution=dist)

    def get(self, name: str) -> T:
        return self.resolve(name).obj

    def describe(self) -> list[tuple[str, str, Any]]:
        """(name, providing distribution, loaded object or the exception that stopped it)."""
        rows = []
        for name, ep in sorted(self._entry_points().items()):
            try:
                obj: Any = ep.load()
            except Exception as exc:
                obj = exc
            rows.append((name, ep.dist.name if ep.dist is not None else "?", obj))
        return rows


@cache
def _group(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        # First one wins, so an editable checkout shadows a stale installed copy consistently.
        found.setdefault(ep.name, ep)
    return found


def refresh() -> None:
    """Forget cached entry points (after installing a plugin in the same process)."""
    _group.cache_clear()


envs: Registry[Any] = Registry("env")
methods: Registry[Any] = Registry("method")
protocols: Registry[Any] = Registry("protocol")
models: Registry[Any] = Registry("model")
backends: Registry[Any] = Registry("backend")
