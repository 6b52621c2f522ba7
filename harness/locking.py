"""Exclusive, process-held locks on folders a run writes in.

A run folder is locked by the process that works in it (``fcntl.flock`` on ``.lock`` inside
the folder, which records the holder's pid); a second process is refused with
``error: RUN is in use (pid N)``. Entries of an output folder's shared cache are locked the
same way, but a second process waits for them (it will reuse what the first one builds).

The kernel drops a lock when its holder exits, however it exits (``kill -9`` included), so a
stale ``.lock`` file never blocks anyone. Locks are held until :func:`release` or the end of
the process; taking one the process already holds is a no-op.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from agentbench.errors import UsageError

LOCK_FILE = ".lock"

_held: dict[Path, int] = {}


class FolderInUseError(UsageError):
    """Another live process works in the folder."""


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 64).decode(errors="replace").strip() or "?"
    except OSError:
        return "?"


def _open(folder: Path) -> int:
    from agentbench.fileio import write_error

    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise write_error(folder / LOCK_FILE, exc) from exc


def _record_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode())


def acquire(folder: Path, *, wait: bool = False, label: str | None = None) -> None:
    """Lock ``folder`` for this process. ``wait=False``: refuse (exit 2) when another process
    holds it; ``wait=True``: say so once on stderr and wait for it."""
    key = folder.resolve()
    if key in _held:
        return
    fd = _open(folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(fd)
        if not wait:
            os.close(fd)
            raise FolderInUseError(f"{label or folder} is in use (pid {pid})") from None
        print(f"waiting for pid {pid}, which works in {label or folder}", file=sys.stderr, flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    _record_pid(fd)
    _held[key] = fd


def release(folder: Path) -> None:
    fd = _held.pop(folder.resolve(), None)
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def holds(folder: Path) -> bool:
    return folder.resolve() in _held


def release_all() -> None:
    for folder in list(_held):
        release(folder)
