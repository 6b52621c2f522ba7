"""Writing files so that a crash never leaves a half-written one behind, and write failures
(a read-only folder, a full disk, a file where a folder should be) that read as one line."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from agentbench.errors import AgentbenchError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class WriteError(AgentbenchError):
    """A file or folder that cannot be written: ``cannot write PATH: <reason>``."""

    exit_code = 1

    def __init__(self, message: str, disk_full: bool = False):
        super().__init__(message)
        self.disk_full = disk_full


def write_error(path: Path | str, exc: OSError) -> WriteError:
    """The one-line error for a failed write of ``path``."""
    target = exc.filename if isinstance(exc.filename, str) and exc.filename else path
    reason = exc.strerror or str(exc)
    return WriteError(f"cannot write {target}: {reason}", disk_full=exc.errno in DISK_FULL)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    if path.exists() and not path.is_file() and not path.is_dir():
        write_text(path, text)  # a device (/dev/stdout): never replace it with a regular file
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from other users
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_copy(source: Path, target: Path) -> None:
    """Copy a text file (episodes, keys, logs) with :func:`atomic_write_text`."""
    atomic_write_text(target, source.read_text())


def write_text(path: Path, text: str) -> None:
    """Write ``path`` in place (a device such as /dev/stdout, or where atomicity is not needed)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
            fh.flush()
    except OSError as exc:
        raise write_error(path, exc) from exc


def write_bytes(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise write_error(path, exc) from exc
