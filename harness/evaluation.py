"""Evaluation: run a model on a split's tasks, append episodes as they end, summarise them."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from agentbench.env import Task, task_set_sha256
from agentbench.errors import CorruptFileError
from agentbench.fileio import atomic_write_text, write_error
from agentbench.results import EnvResult, EpisodeCounts, Rate, Terminations, Tokens
from agentbench.rollout import EpisodeJob, RolloutEngine
from agentbench.stats import cluster_bootstrap_interval, wilson_interval
from agentbench.trajectory import EpisodeRecord, Termination


class EpisodeLog:
    """``episodes.jsonl``: one JSON line per finished episode, flushed as it ends."""

    def __init__(self, path: Path):
        self.path = path

    def load(self, repair: bool = True) -> list[EpisodeRecord]:
        """Finished episodes. A torn last line (a crash mid-write, no newline) is cut off the
        file (left in place, and ignored, with ``repair=False``: readers that must not write);
        any other unreadable line means the file is corrupt."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        # Cut at the last newline before decoding: a crash can tear a multi-byte character.
        cut = data.rfind(b"\n") + 1
        complete, torn = data[:cut], data[cut:]
        try:
            text = complete.decode()
        except UnicodeDecodeError as exc:
            raise CorruptFileError(f"{self.path} is corrupt: not UTF-8 at byte {exc.start}") from exc
        records: list[EpisodeRecord] = []
        seen: dict[tuple, int] = {}
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                record = EpisodeRecord.model_validate_json(line)
            except ValidationError as exc:
                raise CorruptFileError(
                    f"{self.path} is corrupt at line {number}: {exc.errors()[0]['msg']}"
                ) from exc
            if record.key in seen:
                raise CorruptFileError(
                    f"{self.path} is corrupt: line {number} repeats the episode of line {seen[record.key]} "
                    f"({'/'.join(map(str, record.key))}); were two processes writing it?")
            seen[record.key] = number
            records.append(record)
        if torn and repair:
            try:
                with open(self.path, "r+b") as fh:
                    fh.truncate(cut)
            except OSError as exc:
                raise write_error(self.path, exc) from exc
        return records

    def append(self, record: EpisodeRecord) -> None:
        try:
            with open(self.path, "a") as fh:
                fh.write(record.model_dump_json() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise write_error(self.path, exc) from exc

    def rewrite(self, records: Sequence[EpisodeRecord]) -> None:
        atomic_write_text(self.path, "".join(r.model_dump_json() + "\n" for r in records))


def make_jobs(tasks: Sequence[Task], seeds: Sequence[int]) -> list[EpisodeJob]:
    return [EpisodeJob(task, seed) for task in tasks for seed in seeds]


def run_split(
    engine: RolloutEngine,
    jobs: Sequence[EpisodeJob],
    log: EpisodeLog,
    env_name: str,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
) -> list[EpisodeRecord]:
    """Run the jobs not yet in ``log``; returns all of this split's records, old and new.

    Waves left half-done by a crash are dropped from the log and rerun whole, so that the
    resumed run's batches (and hence its numbers) match an uninterrupted run's.
    """
    existing = log.load()
    split = jobs[0].task.split if jobs else None
    mine = {r.key: r for r in existing if r.env == env_name and r.split == split}
    complete_waves = [w for w in engine.waves(jobs) if all((env_name, *j.key) in mine for j in w)]
    keep = {(env_name, *j.key) for w in complete_waves for j in w}
    stale = [r for r in existing if r.env == env_name and r.split == split and r.key not in keep]
    if stale:
        log.rewrite([r for r in existing if r not in stale])
    done_records = [mine[k] for k in keep]

    def record(rec: EpisodeRecord) -> None:
        log.append(rec)
        if on_episode is not None:
            on_episode(rec)

    new = engine.run(jobs, skip={(j.key) for w in complete_waves for j in w}, on_episode=record)
    by_key = {r.key: r for r in [*done_records, *new]}
    return [by_key[(env_name, *j.key)] for j in jobs if (env_name, *j.key) in by_key]


def summarise(
    *, name: str, version: str, split: str, config: dict, tasks: Sequence[Task], seeds: Sequence[int],
    max_turns: int, records: Sequence[EpisodeRecord], planned: int, bootstrap_seed: int,
) -> EnvResult:
    scored = [r for r in records if r.termination is not Termination.env_error]
    errored = len(records) - len(scored)
    successes = sum(r.success for r in scored)
    n = len(scored)
    if len(seeds) > 1 and n:
        ci = cluster_bootstrap_interval([(r.task_id, float(r.success)) for r in scored], seed=bootstrap_seed)
        method = f"percentile bootstrap over tasks (2000 resamples, seed {bootstrap_seed})"
    else:
        ci = wilson_interval(successes, n)
        method = "wilson score (one episode per task)"
    moves = sum(r.turns for r in scored)
    counts = Counter(r.termination.value for r in records)
    return EnvResult(
        name=name, version=version, split=split, config=config, task_set_sha256=task_set_sha256(tasks),
        n_tasks=len(tasks), seeds=list(seeds), max_turns=max_turns,
        n_episodes=EpisodeCounts(planned=planned, completed=n, errored=errored),
        success_rate=Rate(value=successes / n if n else 0.0, n=n, ci95=ci, ci_method=method),
        progress_rate=sum(r.progress for r in scored) / n if n else 0.0,
        invalid_action_rate=sum(r.invalid_actions for r in scored) / moves if moves else 0.0,
        mean_turns=moves / n if n else 0.0,
        tokens=Tokens(prompt=sum(r.tokens.prompt for r in records),
                      completion=sum(r.tokens.completion for r in records)),
        terminations=Terminations(**counts),
    )


def episodes_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""
