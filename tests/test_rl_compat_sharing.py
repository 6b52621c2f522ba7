"""rl-compat's starts are shared work: a start another process holds is done last and reused,
and the same command run twice at once into one output folder splits the starts and writes the
same result twice (tiny model)."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agentbench import api
from agentbench.protocols.rl_compat import START_ENTRY, START_FILE, RLCompat

SETS = ["budget.eval_tasks=2", "budget.forgetting=false", "limits.max_turns=8", "steps=2", "tasks_per_step=2",
        "group_size=2", "budget.train_tasks=2", "budget.epochs=1"]


def _entries(out: Path) -> dict[str, Path]:
    """Start name -> its shared entry, for ``--method il --protocol rl-compat`` into ``out``."""
    from agentbench.session import RunSession
    from agentbench.spec import resolve_spec

    spec = resolve_spec(method="grpo", env="frozenlake", protocol="rl-compat", model="tiny", backend="hf",
                        budget="smoke", seed=0, sets=[*SETS, "protocol.starts=[\"il\"]"])
    session = RunSession(spec, out / "probe")
    protocol = RLCompat(spec.protocol_config)
    return {s: session.shared.path(START_ENTRY, protocol.start_key(session, s)) for s in protocol.starts()}


def _holder(folder: Path, until: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock until the file ``until`` appears."""
    code = ("import time; from pathlib import Path; from agentbench import locking; "
            f"locking.acquire(Path({str(folder)!r})); print('held', flush=True)\n"
            f"while not Path({str(until)!r}).exists(): time.sleep(0.1)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.slow
def test_a_start_another_process_holds_is_done_last(tmp_path, tiny_model):
    entries = _entries(tmp_path)
    go = tmp_path / "go"
    holder = _holder(entries["none"], go)
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.extend(
        api.run(method="il", env="frozenlake", protocol="rl-compat", model="tiny", out=tmp_path, sets=SETS,
                run_id="R")))
    try:
        worker.start()
        deadline = time.monotonic() + 900
        while not (entries["il"] / START_FILE).exists():  # il is done while none is still held elsewhere
            assert worker.is_alive() and time.monotonic() < deadline
            time.sleep(0.5)
        assert not (entries["none"] / START_FILE).exists()
    finally:
        go.touch()
        holder.wait()
        worker.join()
    [run] = outcome
    assert [s.start for s in run.result.rl_compat] == ["none", "il"]  # the result keeps the starts' order
    assert (entries["none"] / START_FILE).exists()
    folder = run.path.parent
    for start in ("none", "il"):
        assert (folder / "starts" / start / "rl" / "train_log.jsonl").exists()
        assert (folder / "starts" / start / "after" / "episodes.jsonl").exists()
    assert not (folder / "starts" / "il" / "rl" / "checkpoint").exists()  # checkpoints stay in the cache
    from agentbench.session import load_train_output

    copied = load_train_output(folder / "starts" / "il" / "rl" / "train_output.json")
    assert (Path(copied.model.path) / "config.json").exists()
    assert Path(copied.model.path).is_relative_to(entries["il"])
    # the run's own episodes are the headline start's after RL
    assert (folder / "episodes.jsonl").read_text() == (folder / "starts" / "il" / "after" / "episodes.jsonl").read_text()


def _run_in_child(out: str, run_id: str) -> None:
    api.run(method="il", env="frozenlake", protocol="rl-compat", model="tiny", out=out, sets=SETS, run_id=run_id)


@pytest.mark.slow
def test_the_same_command_twice_at_once_splits_the_starts(tmp_path, tiny_model):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_run_in_child, args=(str(tmp_path), run_id)) for run_id in ("A", "B")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=1500)
        assert p.exitcode == 0
    results = [json.loads((tmp_path / run_id / "result.json").read_text()) for run_id in ("A", "B")]
    assert results[0]["rl_compat"] == results[1]["rl_compat"]
    assert results[0]["artifacts"] == results[1]["artifacts"]
    # one entry per start, each RL trained once: both processes computed the same keys
    assert len(list((tmp_path / "shared").glob(f"{START_ENTRY}-*"))) == 2
    assert len(list((tmp_path / "shared").glob(f"{START_ENTRY}-*/rl/train_output.json"))) == 2
