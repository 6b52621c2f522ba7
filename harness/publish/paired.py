"""Paired tests behind the leaderboard's marks: "does it beat imitation?" and "is the top really
ahead?".

Episodes are paired by (task, seed) as ``agentbench compare`` pairs them (``compare.pair_episodes``;
pairs with an env error left out), and tested by the same procedure: the exact McNemar test with
one seed per task, else the sign-flip test over tasks. Nothing here is random beyond the fixed
seed of that procedure, so a page is the same every time it is made.

The marks, per column (and per split of an rl-compat table):
  - best (bold): the highest success, ahead of the runner-up by the paired test at 5%;
  - tie group (``TIE``): otherwise the top and every row the test does not separate from it (a
    row without episodes to pair cannot be separated, so it joins the group). Nothing is marked
    when the column holds one result or all its results are equal.
  - ``vs il``: each row's paired difference from the ``il`` row in the same column (NEW = the row,
    BASE = il), in points, with the test's p-value; ``–`` where there is no il, no episodes, or
    the row is il.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from agentbench.compare import Pairs, pair_episodes
from agentbench.errors import CorruptFileError
from agentbench.evaluation import EpisodeLog, episodes_sha256
from agentbench.stats import McNemar
from agentbench.trajectory import EpisodeRecord

ALPHA = 0.05
SEED = 0
"""Seed of the sign-flip test (several seeds per task); exact up to 16 tasks, so rarely used."""
TIE = "†"
REFERENCE_METHOD = "il"


@dataclass(frozen=True)
class PairedDiff:
    delta: float
    """row - reference, a fraction."""
    p_value: float
    ci: tuple[float, float]
    """Two-sided 95% interval of delta."""
    n_pairs: int
    test: str


def paired_diff(base: list[EpisodeRecord], new: list[EpisodeRecord]) -> PairedDiff | None:
    """NEW - BASE on the episodes both hold; None when none pair."""
    pairs: Pairs = pair_episodes(base, new)
    if not pairs.triples:
        return None
    est = pairs.estimator(SEED)
    test = "exact McNemar" if isinstance(est, McNemar) else "sign-flip test over tasks"
    return PairedDiff(est.delta, est.p_value, (est.lower_bound(ALPHA / 2), est.upper_bound(ALPHA / 2)),
                      len(pairs.triples), test)


class EpisodeStore:
    """Episode files read once each; a missing, corrupt or mismatched file gives None (and one
    warning line), never an error: the page still shows the result, unmarked by paired tests."""

    def __init__(self, warnings: list[str]):
        self.warnings = warnings
        self._files: dict[Path, list[EpisodeRecord] | None] = {}

    def load(self, path: Path | None, recorded_sha256: str | None) -> list[EpisodeRecord] | None:
        if path is None:
            return None
        if path not in self._files:
            self._files[path] = self._read(path, recorded_sha256)
        return self._files[path]

    def _read(self, path: Path, recorded: str | None) -> list[EpisodeRecord] | None:
        if not path.exists():
            return None
        if recorded and episodes_sha256(path) != recorded:
            self.warnings.append(f"{path} does not match its result (sha256 differs from artifacts): "
                                 "left out of the paired tests")
            return None
        try:
            return EpisodeLog(path).load(repair=False)
        except CorruptFileError as exc:
            self.warnings.append(f"{exc}: left out of the paired tests")
            return None

    def of(self, path: Path | None, recorded: str | None, env: str, split: str) -> list[EpisodeRecord] | None:
        records = self.load(path, recorded)
        if records is None:
            return None
        mine = [r for r in records if r.env == env and r.split == split]
        return mine or None


@dataclass
class Entry:
    """One result in a group that the marks compare (a column's cell, an rl-compat row)."""

    key: str
    """Deterministic order among equal values (the row label)."""
    value: float
    episodes: list[EpisodeRecord] | None
    best: bool = False
    tie: bool = False


def mark(entries: list[Entry]) -> None:
    """Best or tie group (see the module docstring); sets ``best`` and ``tie``."""
    if len(entries) < 2 or all(math.isclose(e.value, entries[0].value, abs_tol=1e-12) for e in entries):
        return
    ranked = sorted(entries, key=lambda e: (-e.value, e.key))
    top, runner = ranked[0], ranked[1]

    def separated(other: Entry) -> bool:
        if math.isclose(other.value, top.value, abs_tol=1e-12) or top.episodes is None or other.episodes is None:
            return False
        diff = paired_diff(other.episodes, top.episodes)
        return diff is not None and diff.delta > 0 and diff.p_value < ALPHA

    if separated(runner):
        top.best = True
        return
    for entry in ranked:
        entry.tie = entry is top or not separated(entry)


def vs_reference(entry_episodes: list[EpisodeRecord] | None,
                 reference_episodes: list[EpisodeRecord] | None) -> PairedDiff | None:
    if entry_episodes is None or reference_episodes is None:
        return None
    return paired_diff(reference_episodes, entry_episodes)


def diff_text(diff: PairedDiff | None) -> str | None:
    """``+12.5 (p=0.031)``: points and the exact p-value; None when there is nothing to show."""
    if diff is None:
        return None
    from agentbench.publish.text import signed_points

    return f"{signed_points(diff.delta)} (p={diff.p_value:.3g})"


def run_episodes_path(root: Path | None) -> Path | None:
    return None if root is None else root / "episodes.jsonl"
