"""Hardening of run folders (issue 18, cases 1-9): locks, refused resumes, torn lines, resumed
metadata, moved folders, early validation and write errors. Each test is one reproduction."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentbench import locking
from agentbench.cli import app
from agentbench.errors import CorruptFileError
from agentbench.evaluation import EpisodeLog
from agentbench.models import file_sha256
from agentbench.results import read_result

runner = CliRunner()
TINY = ["--model", "tiny", "--quiet", "--set", "budget.train_tasks=2", "--set", "budget.eval_tasks=2",
        "--set", "budget.rollout_batch=2", "--set", "budget.forgetting=false"]


def _run(out: Path, *extra: str, method: str = "il", run_id: str = "R"):
    return runner.invoke(app, ["run", "--method", method, "--env", "frozenlake", "--out", str(out),
                               "--run-id", run_id, *TINY, *extra])


def _ok(result) -> None:
    assert result.exit_code == 0, result.output


def _holder(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock until killed."""
    code = ("import sys, time; from pathlib import Path; from agentbench import locking; "
            f"locking.acquire(Path({str(folder)!r})); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


# -- 1: two writers, one folder ----------------------------------------------------------
def test_a_run_folder_in_use_is_refused_with_the_holders_pid(tmp_path, tiny_model):
    proc = _holder(tmp_path / "R")
    try:
        result = _run(tmp_path, "--resume")
        assert result.exit_code == 2, result.output
        assert f"is in use (pid {proc.pid})" in result.output
        assert not (tmp_path / "R" / "episodes.jsonl").exists()
    finally:
        proc.kill()
        proc.wait()
    _ok(_run(tmp_path, "--resume"))  # the kernel dropped the dead holder's lock


def test_a_shared_cache_entry_in_use_is_waited_for(tmp_path):
    from agentbench.artifacts import SharedCache

    cache = SharedCache(tmp_path / "shared")
    entry = tmp_path / "shared" / f"expert-{__import__('agentbench.env', fromlist=['x']).sha256_json({'k': 1})[:16]}"
    proc = _holder(entry)
    started = time.monotonic()
    subprocess.run(["sleep", "0"])  # the holder releases after we start waiting
    killer = subprocess.Popen(["sh", "-c", f"sleep 1; kill {proc.pid}"])
    try:
        assert cache.folder("expert", {"k": 1}) == entry
        assert time.monotonic() - started >= 0.9
        assert locking.holds(entry)
    finally:
        killer.wait()
        proc.wait()
        locking.release(entry)


def test_readers_refuse_duplicate_episodes(tmp_path, tiny_model):
    _ok(_run(tmp_path))
    episodes = tmp_path / "R" / "episodes.jsonl"
    episodes.write_text(episodes.read_text() * 2)
    with pytest.raises(CorruptFileError, match="repeats the episode of line 1"):
        EpisodeLog(episodes).load(repair=False)
    shutil.copytree(tmp_path / "R", tmp_path / "R2")
    result = json.loads((tmp_path / "R2" / "result.json").read_text())  # as two writers would leave it
    result["artifacts"]["episodes_jsonl_sha256"] = file_sha256(tmp_path / "R2" / "episodes.jsonl")
    (tmp_path / "R2" / "result.json").write_text(json.dumps(result))
    (tmp_path / "R" / "result.json").unlink()
    resumed = _run(tmp_path, "--resume")
    assert resumed.exit_code == 2 and "repeats the episode" in resumed.output
    compared = runner.invoke(app, ["compare", str(tmp_path / "R2"), str(tmp_path / "R2")])
    assert compared.exit_code != 0 and "repeats the episode" in compared.output


# -- 2, 3: run.json missing or not an object ----------------------------------------------
def test_a_folder_without_run_json_does_not_resume(tmp_path, tiny_model):
    _ok(_run(tmp_path))
    (tmp_path / "R" / "run.json").unlink()
    result = _run(tmp_path, "--resume", method="none")
    assert result.exit_code == 2
    assert "no run.json" in result.output
    assert not (tmp_path / "R" / "run.json").exists()


@pytest.mark.parametrize("content", ["null", "[]", '{"spec": "x"}', "{not json"])
def test_run_json_that_is_not_an_object_is_corrupt(tmp_path, tiny_model, content):
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "run.json").write_text(content)
    result = _run(tmp_path, "--resume")
    assert result.exit_code == 2
    assert "run.json is corrupt" in result.output
    assert "Traceback" not in result.output


# -- 4: a torn multi-byte character ----------------------------------------------------------
def test_a_torn_multibyte_last_line_is_cut(tmp_path):
    log = EpisodeLog(tmp_path / "episodes.jsonl")
    log.path.write_bytes('{"env": "x", "note": "caf\u00e9'.encode()[:-1])  # cut inside é
    assert log.load() == []
    assert log.path.read_bytes() == b""


# -- 5: a resume with nothing left records the same metadata -----------------------------------
def test_resumed_result_carries_the_uninterrupted_metadata(tmp_path, tiny_model):
    _ok(_run(tmp_path))
    first = json.loads((tmp_path / "R" / "result.json").read_text())
    (tmp_path / "R" / "result.json").unlink()
    _ok(_run(tmp_path, "--resume"))
    second = json.loads((tmp_path / "R" / "result.json").read_text())
    times = {"created_at", "command"}  # when, and the argv as given (--resume)
    for key in sorted(set(first) | set(second)):
        if key not in times:
            assert first.get(key) == second.get(key), key
    assert second["model"]["dtype"] == "float32"


# -- 6: a moved run folder resumes ------------------------------------------------------------
def test_a_moved_output_folder_resumes_with_its_checkpoint(tmp_path, tiny_model):
    _ok(_run(tmp_path / "a"))
    recorded = json.loads((tmp_path / "a" / "R" / "train_output.json").read_text())["model"]["path"]
    assert not Path(recorded).is_absolute()
    shutil.move(tmp_path / "a", tmp_path / "b")
    for name in ("result.json", "episodes.jsonl"):
        (tmp_path / "b" / "R" / name).unlink()
    _ok(_run(tmp_path / "b", "--resume"))
    result = read_result(tmp_path / "b" / "R" / "result.json")
    assert Path(result.model.checkpoint_path).resolve().is_relative_to((tmp_path / "b").resolve())


# -- 7, 8: validated before any work ---------------------------------------------------------
def _broken_model(tmp_path: Path, tiny_model, what: str) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model.path, folder)
    if what == "config":
        (folder / "config.json").write_text("{ nope")
    else:
        (folder / "agentbench_model.json").write_text("[")
    return folder


@pytest.mark.parametrize("model", ["nosuchorg/nosuchmodel", "config", "meta"])
def test_a_model_that_cannot_load_fails_before_any_work(tmp_path, tiny_model, model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    name = model if "/" in model else str(_broken_model(tmp_path, tiny_model, model))
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", "--method", "il", "--env", "frozenlake", "--out", str(out), "--quiet",
                                 "--model", name, "--set", "budget.forgetting=false"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and len(result.output.strip().splitlines()) <= 3
    assert not out.exists()


@pytest.mark.parametrize("args", [["--set", "dtype=float7"], ["--set", "device=tpu9"], ["--seed", "-1"],
                                  ["--seed", "99999999999999999999999"], ["--seed", str(2**32)]])
def test_bad_dtype_device_and_seed_are_refused_when_parsed(tmp_path, args):
    result = runner.invoke(app, ["run", "--method", "il", "--env", "frozenlake", "--model", "tiny",
                                 "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_the_largest_seed_is_accepted_by_the_parser():
    from agentbench.cli import SEED_MAX

    assert SEED_MAX == 2**32 - 1


# -- 9: write errors ------------------------------------------------------------------------
@pytest.mark.parametrize("out", ["/dev/full", "FILE", "/proc/agentbench-out"])
def test_an_unwritable_out_is_one_line(tmp_path, tiny_model, out):
    if out == "FILE":
        out = str(tmp_path / "afile")
        Path(out).write_text("x")
    result = _run(Path(out))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: cannot write "), result.output
    assert "Traceback" not in result.output


def test_compare_json_and_publish_out_to_unwritable_paths(tmp_path, tiny_model):
    _ok(_run(tmp_path))
    run = str(tmp_path / "R")
    compared = runner.invoke(app, ["compare", run, run, "--json", "/dev/full"])
    assert compared.exit_code == 1 and "error: cannot write /dev/full: No space left on device" in compared.output
    compared = runner.invoke(app, ["compare", run, run, "--json", "/proc/nope/c.json"])
    assert compared.exit_code == 1 and "error: cannot write /proc/nope" in compared.output
    published = runner.invoke(app, ["publish", str(tmp_path), "--out", "/dev/full"])
    assert published.exit_code == 1 and "error: cannot write /dev/full" in published.output
    published = runner.invoke(app, ["publish", str(tmp_path), "--format", "html", "--out", str(tmp_path / "R" / "result.json" / "x.html")])
    assert published.exit_code == 1 and "error: cannot write" in published.output


def test_a_full_disk_mid_run_says_the_episodes_are_saved(tmp_path, tiny_model, monkeypatch):
    import errno
    import os

    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name == "episodes.jsonl":
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = _run(tmp_path)
    assert result.exit_code == 1, result.output
    line = " ".join(result.output.split())
    assert "error: cannot write" in line and "No space left on device" in line
    assert "finished episodes are saved" in line and "--resume" in line
    monkeypatch.setattr(os, "fsync", real_fsync)
    _ok(_run(tmp_path, "--resume"))
