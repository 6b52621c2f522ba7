"""Finding and loading the result files under a folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agentbench.errors import AgentbenchError, CorruptFileError, UsageError
from agentbench.results import RunResult, read_result

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class LoadedResult:
    path: str
    """Where the file lies, relative to the folder published."""
    result: RunResult
    root: Path | None = None
    """The run folder (its episodes files lie there); None for results held only in memory."""


@dataclass
class Collection:
    results: list[LoadedResult]
    skipped: list[str] = field(default_factory=list)
    """One line per file left out (corrupt, or a run that ended in an error), with the reason."""


def collect(folder: Path, strict: bool = False) -> Collection:
    """Every ``result.json`` under ``folder`` (recursively), validated. A corrupt file is skipped
    and reported in ``skipped`` (with ``strict``: the command fails on it, exit 2)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    files = sorted(folder.rglob(RESULT_FILE))
    if not files:
        raise UsageError(f"no {RESULT_FILE} under {folder}")
    loaded, skipped = [], []
    for file in files:
        try:
            result = read_result(file)
        except CorruptFileError as exc:
            if strict:
                raise
            skipped.append(f"skipped {exc}")
            continue
        if result.status == "error":
            skipped.append(f"skipped {file}: the run ended in an error ({result.error or 'no reason recorded'})")
            continue
        loaded.append(LoadedResult(file.relative_to(folder).as_posix(), result, file.parent))
    if not loaded:
        raise NoResultsError(f"no valid {RESULT_FILE} under {folder} ({len(skipped)} skipped: {skipped[0]})")
    return Collection(loaded, skipped)


class NoResultsError(AgentbenchError):
    """Every result file under the folder was corrupt or failed."""

    exit_code = 2
