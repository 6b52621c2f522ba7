"""A time limit on env steps, so that no single action can stall an evaluation.

:class:`~agentbench.env.BaseEnv` runs every ``step`` of its subclasses through
:func:`call_with_limit` (``step_time_limit_s``, default 60 s; ``AGENTBENCH_STEP_TIME_LIMIT_S``
overrides it, 0 turns it off). A step that runs longer raises :class:`StepTimeout`; the rollout
engine counts any exception of a step as an ``env_error`` episode, so the evaluation goes on.

The step runs on a worker thread and the caller stops waiting for it. Python cannot kill a
thread: a step stuck in Python code or waiting on I/O keeps running in the background, and the
env answers :class:`StepTimeout` to every later call until that step returns. A step stuck
in one C call that holds the GIL cannot be preempted in-process at all, which is why envs
still refuse the actions they know to be costly (BFCL's precision guards) before running them.
Envs bound to the thread that created them (a Playwright browser) set
``step_time_limit_s = None`` and bound their own waits.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

ENV_VAR = "AGENTBENCH_STEP_TIME_LIMIT_S"


class StepTimeout(RuntimeError):
    """An env step ran past its time limit (or the env is still busy with one that did)."""


def limit_for(default: float | None) -> float | None:
    raw = os.environ.get(ENV_VAR)
    if raw is not None:
        try:
            value = float(raw)
        except ValueError:
            return default
        return value if value > 0 else None
    return default


def call_with_limit(owner: Any, fn: Callable[[], Any], seconds: float | None, what: str) -> Any:
    """``fn()`` on a worker thread, waiting at most ``seconds`` (None: call it directly)."""
    busy: threading.Thread | None = getattr(owner, "_agentbench_busy", None)
    if busy is not None:
        if busy.is_alive():
            raise StepTimeout(f"{what}: the env is still busy with a step that ran past its time limit")
        owner._agentbench_busy = None
    if seconds is None:
        return fn()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=work, name=f"agentbench {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        owner._agentbench_busy = worker
        raise StepTimeout(f"{what} ran past its time limit of {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def limited_step(step: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an env class's ``step`` with its ``step_time_limit_s``."""
    if getattr(step, "_agentbench_limited", False):
        return step

    @functools.wraps(step)
    def wrapper(self, action: str, *args: Any, **kwargs: Any) -> Any:
        seconds = limit_for(getattr(type(self), "step_time_limit_s", None))
        return call_with_limit(self, lambda: step(self, action, *args, **kwargs), seconds,
                               f"{getattr(self, 'name', type(self).__name__)} step")

    wrapper._agentbench_limited = True  # type: ignore[attr-defined]
    return wrapper
