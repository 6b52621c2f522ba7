"""Where a result came from: package versions, the harness's git state, the device."""

from __future__ import annotations

import contextlib
import contextvars
import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

import agentbench

TRACKED_PACKAGES = {
    "torch": "torch", "transformers": "transformers", "vllm": "vllm", "lm_eval": "lm_eval",
    "datasets": "datasets", "peft": "peft", "accelerate": "accelerate",
}


def package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        return f"cuda x{torch.cuda.device_count()} ({', '.join(sorted(names))})"
    return f"cpu ({torch.get_num_threads()} threads)"


def environment_info() -> dict[str, str | None]:
    info: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in TRACKED_PACKAGES.items():
        info[key] = package_version(dist)
    info["platform"] = platform.platform()
    info["device"] = device_description()
    return info


@cache
def harness_info() -> dict[str, object]:
    """Version, and the git commit and dirtiness of the checkout the harness runs from."""
    root = Path(agentbench.__file__).resolve().parent.parent
    commit, dirty = None, None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip() or None
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return {"version": agentbench.__version__, "git_commit": commit, "git_dirty": dirty}


_COMMAND: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("agentbench_command", default=None)


def command_line() -> list[str]:
    """The command a result records: the process's own, or the equivalent command line that
    :func:`recording_command` set (a caller of the Python API that stands for a CLI command, as
    the regression gate does for the commands ``gate.json`` declares)."""
    given = _COMMAND.get()
    return list(given) if given is not None else [Path(sys.argv[0]).name, *sys.argv[1:]]


@contextlib.contextmanager
def recording_command(argv: Sequence[str] | None) -> Iterator[None]:
    """Within the block, results record ``argv`` as their command (None: the process's)."""
    token = _COMMAND.set(list(argv) if argv is not None else None)
    try:
        yield
    finally:
        _COMMAND.reset(token)
