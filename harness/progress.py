"""Rich progress bars for long work (expert collection, training, evaluation)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter:
    """Named bars, created on first use; safe to call when disabled (quiet mode)."""

    def __init__(self, console: Console | None = None, enabled: bool = True):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress: Progress | None = None
        self._bars: dict[str, int] = {}

    def __enter__(self) -> Reporter:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._bars.clear()

    def update(self, name: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        if name not in self._bars:
            self._bars[name] = self._progress.add_task(name, total=total)
        self._progress.update(self._bars[name], completed=done, total=total)

    def advance(self, name: str, total: int) -> None:
        if self._progress is None:
            return
        if name not in self._bars:
            self._bars[name] = self._progress.add_task(name, total=total)
        self._progress.advance(self._bars[name])

    def note(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)
