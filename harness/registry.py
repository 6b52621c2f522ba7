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
        obj = self._load(key, ep)
        dist = ep.dist.name if ep.dist is not None else None
        return Resolved(obj=obj, name=key, variant=variant or None, distribution=dist)

    def _load(self, key: str, ep: EntryPoint) -> Any:
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not look like a bug of ours
            raise AgentbenchError(f"{self.kind} {key!r} failed to load from {ep.value}: {exc}") from exc
        problem = wrong_kind(self.kind, obj)
        if problem:
            raise AgentbenchError(f"{self.kind} {key!r} from {_dist_name(ep)} ({ep.value}) is not "
                                  f"{'an' if self.kind[0] in 'aeiou' else 'a'} {self.kind}: "
                                  f"{problem}")
        return obj

    def get(self, name: str) -> T:
        return self.resolve(name).obj

    def describe(self) -> list[tuple[str, str, Any]]:
        """(name, providing distribution, loaded object or the exception that stopped it)."""
        rows = []
        for name, ep in sorted(self._entry_points().items()):
            try:
                obj: Any = self._load(name, ep)
            except Exception as exc:
                obj = exc
            rows.append((name, ep.dist.name if ep.dist is not None else "?", obj))
        return rows


def _dist_name(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "?"


def _dist_key(ep: EntryPoint) -> tuple[str, str]:
    """A distribution found twice on sys.path (an editable checkout beside an installed copy of
    the same package) is one distribution, not a conflict."""
    return (_dist_name(ep).lower().replace("_", "-"), ep.value)


@cache
def _group(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        first = found.get(ep.name)
        if first is None:
            found[ep.name] = ep
        elif _dist_name(first).lower().replace("_", "-") != _dist_name(ep).lower().replace("_", "-"):
            raise AgentbenchError(
                f"{group}: {ep.name!r} is registered by two distributions, {_dist_name(first)} ({first.value}) "
                f"and {_dist_name(ep)} ({ep.value}); uninstall one of them")
        # the same distribution twice (a stale copy): the first on sys.path wins, consistently
    return found


KIND_CHECKS: dict[str, tuple[str, ...]] = {
    "env": ("reset", "step", "tasks"),
    "method": ("train",),
    "protocol": ("run",),
    "backend": (),
    "model": (),
}
"""Attributes a registered object of each kind must have."""


def wrong_kind(kind: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be a component of ``kind`` (None when it can)."""
    if kind in ("env", "method", "protocol"):
        if not isinstance(obj, type):
            return f"expected a class, got {type(obj).__name__}"
        missing = [a for a in KIND_CHECKS[kind] if not callable(getattr(obj, a, None))]
        if missing:
            return f"{obj.__name__} has no {', '.join(missing)}"
        config = getattr(obj, "Config", None)
        if not (isinstance(config, type) and hasattr(config, "model_fields")):
            return f"{obj.__name__} has no pydantic Config"
    elif not callable(obj):
        return f"expected a callable, got {type(obj).__name__}"
    return None


def refresh() -> None:
    """Forget cached entry points (after installing a plugin in the same process)."""
    _group.cache_clear()


envs: Registry[Any] = Registry("env")
methods: Registry[Any] = Registry("method")
protocols: Registry[Any] = Registry("protocol")
models: Registry[Any] = Registry("model")
backends: Registry[Any] = Registry("backend")
