"""``agentbench sweep``: the plan (cells, their hashes, shared work first), a 2x2x2 tiny grid with
the local launcher killed mid-cell and resumed, and the same grid on a real local Ray cluster
with a worker killed mid-cell and retried; no episode is lost or played twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agentbench.errors import UnknownNameError
from agentbench.sweep import plan

TINY = ["budget.train_tasks=2", "budget.eval_tasks=3", "budget.forgetting=false", "budget.epochs=1",
        "budget.max_new_tokens=8", "budget.branching_k=1", "budget.rollout_batch=1"]
EVAL_TASKS = 3


def test_plan_orders_shared_work_first_and_names_cells_by_their_settings():
    chains = plan(methods=["iwm", "il"], envs=["frozenlake", "sokoban"], seeds=[0, 1], model="tiny", sets=TINY)
    assert len(chains) == 4
    assert all([c.method for c in chain] == ["il", "iwm"] for chain in chains)  # il's expert data first
    cells = [c for chain in chains for c in chain]
    assert len({c.run_id for c in cells}) == 8
    assert all(c.run_id.endswith(c.sha256[:8]) for c in cells)
    other = plan(methods=["il"], envs=["frozenlake"], seeds=[0], model="tiny", sets=[*TINY, "budget.epochs=2"])
    assert other[0][0].sha256 not in {c.sha256 for c in cells}
    with pytest.raises(UnknownNameError, match="did you mean"):
        plan(methods=["iwn"], envs=["frozenlake"], seeds=[0], model="tiny")


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _mid_cell(out: Path) -> Path | None:
    """A run folder with some but not all of its episodes written."""
    for f in out.glob("*/episodes.jsonl"):
        if 1 <= len(_lines(f)) < EVAL_TASKS and not (f.parent / "result.json").exists():
            return f.parent
    return None


def _check_grid(out: Path, n_cells: int) -> None:
    results = list(out.glob("*/result.json"))
    assert len(results) == n_cells
    for r in results:
        assert json.loads(r.read_text())["status"] == "complete"
        keys = [(e["env"], e["split"], e["task_id"], e["seed"]) for e in _lines(r.parent / "episodes.jsonl")]
        assert len(keys) == len(set(keys)) == EVAL_TASKS, r.parent.name  # none lost, none twice
    assert (out / "leaderboard.md").exists()


def _sweep_cmd(out: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "agentbench", "sweep", "--method", "il,iwm", "--env", "frozenlake,sokoban",
           "--seed", "0,1", "--model", "tiny", "--out", str(out), "--jobs", "2", *extra]
    for s in TINY:
        cmd += ["--set", s]
    return cmd


@pytest.mark.slow
def test_local_sweep_resumes_after_kill(tmp_path):
    out = tmp_path / "grid"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(_sweep_cmd(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    killed_in = None
    deadline = time.monotonic() + 300
    while first.poll() is None and time.monotonic() < deadline:
        done = list(out.glob("*/result.json"))
        killed_in = _mid_cell(out) if done else None
        if killed_in is not None:
            os.killpg(first.pid, signal.SIGKILL)  # the sweep and its cells' processes
            break
        time.sleep(0.02)
    first.wait()
    assert killed_in is not None, "the sweep ended before it could be killed mid-cell"
    complete_before = {p.parent.name for p in out.glob("*/result.json")}
    second = subprocess.run(_sweep_cmd(out), env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert second.stderr.count("skipped ") == len(complete_before)
    _check_grid(out, 8)
    # a third call finds everything complete and only republishes
    third = subprocess.run(_sweep_cmd(out), env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and third.stderr.count("skipped ") == 8


@pytest.mark.slow
@pytest.mark.timeout(1500)  # 8 tiny cells and a Ray cluster: ~1 min alone, >10 min on 2 busy cores
def test_ray_sweep_retries_a_killed_worker(tmp_path):
    ray = pytest.importorskip("ray")
    from agentbench.sweep import sweep

    out = tmp_path / "grid"
    killed: dict[str, object] = {}
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set():
            run = _mid_cell(out) if out.exists() else None
            pid_file = out / "sweep-logs" / f"{run.name}.worker" if run else None
            if pid_file is not None and pid_file.exists():
                pid = int(pid_file.read_text())
                os.kill(pid, signal.SIGKILL)  # the Ray worker running the cell, mid-cell
                killed.update(run=run, pid=pid)
                return
            time.sleep(0.02)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    try:
        report = sweep(methods=["none", "il"], envs=["frozenlake", "sokoban"], seeds=[0, 1], model="tiny",
                       sets=TINY, out=out, launcher="ray", retries=2)
    finally:
        stop.set()
        ray.shutdown()
    assert killed, "no cell was caught mid-way to kill its worker"
    assert [o.status for o in report.outcomes] == ["done"] * 8, [o.error for o in report.outcomes]
    _check_grid(out, 8)
    log = (out / "sweep-logs" / f"{killed['run'].name}.log").read_text()
    assert log.count("=== ") == 2  # started, killed with its worker, retried by Ray
