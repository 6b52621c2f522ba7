"""``agentbench sweep``: one run per (method, env, seed) cell, resumable, then the folder's leaderboard.

Each cell is one :func:`agentbench.api.run` in a process of its own (so a GPU's memory is freed
when the cell ends), identified by the hash of its resolved settings, the same hash its run id
ends with. A cell whose ``result.json`` exists and is complete is skipped; any other cell runs
with ``resume``, so episodes a killed sweep already wrote are kept and not played again.

Cells that share work are ordered to share it: the cells of one (env, seed) form a *chain* run
one after another, ``il`` first, in the one output folder whose shared cache holds the expert
data, branching rollouts and trained checkpoints they have in common; chains run side by side.

Launchers: ``local`` runs chains on ``--jobs`` worker threads, each cell a subprocess; ``ray``
submits each cell as a Ray task (that starts the same subprocess) to the cluster named by
``RAY_ADDRESS``, or a local one, with a chain's cells depending on each other. A Ray worker that
dies mid-cell is retried by Ray; the cell's subprocess dies with its worker (``PR_SET_PDEATHSIG``
on Linux) and the retry resumes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentbench.errors import AgentbenchError, UsageError

METHOD_ORDER = ("il",)
"""Methods whose work others reuse run first in their chain (``il``'s expert data and checkpoint)."""
LAUNCHERS = ("local", "ray")


@dataclass(frozen=True)
class Cell:
    """One run of the sweep: everything ``api.run`` needs, all of it part of the cell's identity."""

    method: str
    env: str
    seed: int
    protocol: str = "in-domain"
    model: str = "smollm2-135m"
    backend: str = "hf"
    budget: str = "smoke"
    sets: tuple[str, ...] = ()
    run_id: str = ""
    """Filled by :func:`plan`: the run folder's name, ending with the hash of the resolved settings."""
    sha256: str = ""

    @property
    def chain(self) -> tuple:
        """Cells with the same chain key share work (everything but the method)."""
        return (self.env, self.seed, self.protocol, self.model, self.backend, self.budget, self.sets)

    def label(self) -> str:
        return f"{self.method} / {self.env} / seed {self.seed}"


@dataclass
class CellOutcome:
    cell: Cell
    status: str
    """done (ran to a complete result), skipped (complete before), failed."""
    seconds: float = 0.0
    success: dict[str, float] = field(default_factory=dict)
    error: str = ""


def split_list(text: str | Sequence[Any], kind: str) -> list[str]:
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else [str(s) for s in text]
    items = [s for s in items if s]
    if not items:
        raise UsageError(f"--{kind} needs at least one value")
    return list(dict.fromkeys(items))


def plan(*, methods: Sequence[str], envs: Sequence[str], seeds: Sequence[int], protocol: str = "in-domain",
         model: str = "smollm2-135m", backend: str = "hf", budget: str = "smoke",
         sets: Sequence[str] = ()) -> list[list[Cell]]:
    """The sweep's chains, each a list of cells in run order. Every cell is resolved here, so a
    bad name or option fails before anything runs."""
    from agentbench.spec import resolve_spec

    chains: dict[tuple, list[Cell]] = {}
    for env in envs:
        for seed in seeds:
            for method in methods:
                spec = resolve_spec(method=method, env=env, protocol=protocol, model=model, backend=backend,
                                    budget=budget, seed=int(seed), sets=list(sets))
                cell = Cell(method=method, env=env, seed=int(seed), protocol=protocol, model=model,
                            backend=backend, budget=budget, sets=tuple(sets), run_id=spec.default_run_id(),
                            sha256=spec.sha256())
                chains.setdefault(cell.chain, []).append(cell)
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return [sorted(chain, key=lambda c: rank.get(c.method, len(rank))) for chain in chains.values()]


def complete_result(out: Path, cell: Cell):
    """The cell's validated result when it is complete, else None."""
    from agentbench.errors import CorruptFileError
    from agentbench.results import read_result

    path = out / cell.run_id / "result.json"
    if not path.exists():
        return None
    try:
        result = read_result(path)
    except CorruptFileError:
        return None
    return result if result.status == "complete" else None


def _success(result) -> dict[str, float]:
    return {f"{e.name}/{e.split}": e.success_rate.value for e in result.envs}


# -- one cell in a process of its own ----------------------------------------------------------
def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the cell's process is killed when the worker that started it dies (no orphan keeps
    writing a run folder that a retry is resuming)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def cell_command(cell: Cell, out: Path) -> list[str]:
    return [sys.executable, "-m", "agentbench.sweep", "cell", json.dumps(asdict(cell)), str(out)]


def run_cell_process(cell_json: dict[str, Any], out: str, log_dir: str, *_after: Any) -> dict[str, Any]:
    """Run one cell in a subprocess and wait for it (what a local worker thread and a Ray task do).
    ``_after``: results of the cells this one waits for (Ray passes them to order a chain)."""
    cell = Cell(**{**cell_json, "sets": tuple(cell_json.get("sets", ()))})
    out_p = Path(out)
    log = Path(log_dir) / f"{cell.run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    (Path(log_dir) / f"{cell.run_id}.worker").write_text(str(os.getpid()))
    started = time.perf_counter()
    with open(log, "a") as fh:
        fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: {cell.label()}\n")
        fh.flush()
        code = subprocess.call(cell_command(cell, out_p), stdout=fh, stderr=subprocess.STDOUT,
                               preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    seconds = time.perf_counter() - started
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        return {"status": "failed", "seconds": seconds, "error": f"exit {code}: {tail[0][:300]} (log: {log})"}
    return {"status": "done", "seconds": seconds}


def _cell_main(cell_json: str, out: str) -> int:
    """``python -m agentbench.sweep cell JSON OUT``: the cell's process."""
    from agentbench import api
    from agentbench.cli import _configure_threads

    _configure_threads()
    data = json.loads(cell_json)
    try:
        api.run(method=data["method"], env=data["env"], protocol=data["protocol"], model=data["model"],
                backend=data["backend"], budget=data["budget"], seed=data["seed"], out=out,
                sets=list(data["sets"]), resume=True, run_id=data["run_id"])
    except AgentbenchError as exc:
        print(f"error: {exc}", flush=True)
        return exc.exit_code
    print(f"complete: {Path(out) / data['run_id'] / 'result.json'}", flush=True)
    return 0


# -- launchers ---------------------------------------------------------------------------------
Progress = Callable[[CellOutcome], None]


def _finish(out: Path, cell: Cell, answer: dict[str, Any]) -> CellOutcome:
    outcome = CellOutcome(cell, answer["status"], answer.get("seconds", 0.0), error=answer.get("error", ""))
    if outcome.status == "done":
        result = complete_result(out, cell)
        if result is None:
            outcome.status, outcome.error = "failed", "the cell's process ended without a complete result"
        else:
            outcome.success = _success(result)
    return outcome


def run_local(chains: list[list[Cell]], out: Path, log_dir: Path, jobs: int, on_done: Progress) -> list[CellOutcome]:
    def chain_worker(chain: list[Cell]) -> list[CellOutcome]:
        done = []
        for cell in chain:
            outcome = _finish(out, cell, run_cell_process(asdict(cell), str(out), str(log_dir)))
            on_done(outcome)
            done.append(outcome)
        return done

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sweep") as pool:
        return [o for chain in pool.map(chain_worker, chains) for o in chain]


def run_ray(chains: list[list[Cell]], out: Path, log_dir: Path, *, retries: int, gpus_per_cell: float,
            cpus_per_cell: float, on_done: Progress) -> list[CellOutcome]:
    try:
        import ray
    except ImportError:
        raise UsageError("--launcher ray needs Ray: pip install 'agentbench[ray]'") from None
    if not ray.is_initialized():
        # RAY_ADDRESS names a running cluster; without it ray.init starts a local one.
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}})
    task = ray.remote(run_cell_process).options(num_cpus=cpus_per_cell, num_gpus=gpus_per_cell,
                                                max_retries=retries, retry_exceptions=False)
    refs: dict[Any, Cell] = {}
    for chain in chains:
        previous = None
        for cell in chain:
            after = (previous,) if previous is not None else ()
            previous = task.remote(asdict(cell), str(out.resolve()), str(log_dir.resolve()), *after)
            refs[previous] = cell
    outcomes: list[CellOutcome] = []
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        cell = refs[ready[0]]
        try:
            answer = ray.get(ready[0])
        except Exception as exc:  # a task that failed beyond its retries (ray.exceptions.*)
            answer = {"status": "failed", "error": " ".join(str(exc).split())[:300]}
        outcome = _finish(out, cell, answer)
        on_done(outcome)
        outcomes.append(outcome)
    return outcomes


@dataclass
class SweepReport:
    outcomes: list[CellOutcome]
    leaderboard: Path | None
    messages: list[str]

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def sweep(*, methods: Sequence[str], envs: Sequence[str], seeds: Sequence[int], out: Path | str,
          protocol: str = "in-domain", model: str = "smollm2-135m", backend: str = "hf", budget: str = "smoke",
          sets: Sequence[str] = (), launcher: str = "local", jobs: int = 1, retries: int = 2,
          gpus_per_cell: float = 0.0, cpus_per_cell: float = 1.0, publish_format: str | None = "md",
          on_done: Progress | None = None) -> SweepReport:
    """Run every cell that has no complete result yet, then publish the folder's leaderboard."""
    if launcher not in LAUNCHERS:
        from agentbench.errors import UnknownNameError

        raise UnknownNameError("launcher", launcher, LAUNCHERS)
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    out = Path(out)
    chains = plan(methods=methods, envs=envs, seeds=seeds, protocol=protocol, model=model, backend=backend,
                  budget=budget, sets=sets)
    out.mkdir(parents=True, exist_ok=True)
    log_dir = out / "sweep-logs"
    report = on_done or (lambda o: None)
    outcomes: list[CellOutcome] = []
    todo: list[list[Cell]] = []
    for chain in chains:
        left = []
        for cell in chain:
            result = complete_result(out, cell)
            if result is not None:
                outcome = CellOutcome(cell, "skipped", success=_success(result))
                report(outcome)
                outcomes.append(outcome)
            else:
                left.append(cell)
        if left:
            todo.append(left)
    manifest = {"cells": [asdict(c) for chain in chains for c in chain], "launcher": launcher}
    (out / "sweep.json").write_text(json.dumps(manifest, indent=2))
    if todo:
        if launcher == "local":
            outcomes += run_local(todo, out, log_dir, jobs, report)
        else:
            outcomes += run_ray(todo, out, log_dir, retries=retries, gpus_per_cell=gpus_per_cell,
                                cpus_per_cell=cpus_per_cell, on_done=report)
    leaderboard, messages = None, []
    if publish_format:
        from agentbench.publish import publish

        published = publish(out, publish_format)
        leaderboard, messages = published.document, list(published.messages)
    order = {c.run_id: i for i, c in enumerate(c for chain in chains for c in chain)}
    outcomes.sort(key=lambda o: order[o.cell.run_id])
    return SweepReport(outcomes, leaderboard, messages)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "cell":
        sys.exit(_cell_main(sys.argv[2], sys.argv[3]))
    print("usage: python -m agentbench.sweep cell CELL_JSON OUT (use `agentbench sweep`)", file=sys.stderr)
    sys.exit(2)
