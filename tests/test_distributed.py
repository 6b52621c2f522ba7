"""Data-parallel and sharded (FSDP) training: the same tiny training as two CPU processes under ``accelerate launch``
(gloo) and as one process with the same global batch gives the same losses, gradient norms and
final weights, up to floating-point summation order.

accelerate 1.16's ``--cpu --num_processes 2`` starts a single process unless an MPI hostfile is
given, so the test launches with ``--multi_gpu --num_processes 2``: on a machine without GPUs that
is torchrun with two CPU processes, and the trainer joins them with gloo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("ddp_train.py")
RTOL = 1e-4
"""Relative tolerance on each step's loss and gradient norm and on the final weights' checksum:
the ranks' gradients are summed in another order than one process's micro-batches."""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FSDP = ["--use_fsdp", "--fsdp_version", "2", "--fsdp_transformer_layer_cls_to_wrap", "LlamaDecoderLayer",
        "--fsdp_reshard_after_forward", "true", "--fsdp_state_dict_type", "FULL_STATE_DICT"]
"""The sharded launch (``harness/accelerate/fsdp.yaml``'s settings as flags)."""


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_two_process_training_matches_one_process(tmp_path, sharding):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    single, double = tmp_path / "one.json", tmp_path / "two.json"
    subprocess.run([sys.executable, str(SCRIPT), str(single)], check=True, env=env, timeout=300)
    # `accelerate launch ...`, through this interpreter (a venv's console script may be elsewhere)
    launch = [sys.executable, "-m", "accelerate.commands.launch", *(FSDP if sharding == "fsdp" else ["--multi_gpu"]),
              "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_port()), str(SCRIPT), str(double)]
    done = subprocess.run(launch, env=env, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    one, two = json.loads(single.read_text()), json.loads(double.read_text())
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert not one["sharded"] and two["sharded"] == (sharding == "fsdp")
    assert two["tokens"] == one["tokens"]  # every sample seen once across the ranks
    assert two["loss"] == pytest.approx(one["loss"], rel=RTOL)
    assert two["grad_norm"] == pytest.approx(one["grad_norm"], rel=RTOL)
    assert two["checksum"] == pytest.approx(one["checksum"], rel=RTOL)
    assert one["loss"][-1] < one["loss"][0]  # and it trains


def test_only_rank_zero_writes_and_fsdp_refuses_online_methods(tmp_path, monkeypatch):
    from agentbench.errors import ConfigError
    from agentbench.training import distributed

    assert distributed.output_folder(tmp_path) == tmp_path and not distributed.init()
    assert distributed.shard([1, 2, 3]) == [1, 2, 3]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert distributed.output_folder(tmp_path) != tmp_path
    assert distributed.shard([1, 2, 3, 4, 5]) == [2, 4]
    assert not distributed.fsdp()
    distributed.require_unsharded("grpo")  # data-parallel: nothing to refuse
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert distributed.fsdp()
    with pytest.raises(ConfigError, match="FSDP shards the weights that grpo samples from; launch it data-parallel"):
        distributed.require_unsharded("grpo")
    assert distributed.micro_batches(5, 2) == 2  # shares of 3 and 2: both ranks run two micro-batches
    assert distributed.micro_batches(1, 4) == 1  # rank 1 has nothing, and still runs one


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_agentbench_run_under_accelerate_launch(tmp_path, sharding):
    """The same `agentbench run` command as two processes, data-parallel or sharded: the same
    training log as one process, one run folder (rank 0's), nothing left behind by rank 1, and
    (FSDP) a saved checkpoint gathered whole that evaluates like the one process's."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    run = ["-m", "agentbench", "run", "--method", "il", "--env", "frozenlake", "--model", "tiny", "-q",
           "--set", "budget.train_tasks=2", "--set", "budget.eval_tasks=2", "--set", "budget.forgetting=false",
           "--set", "budget.epochs=1"]
    subprocess.run([sys.executable, *run, "--out", str(tmp_path / "one")], check=True, env=env, timeout=300,
                   capture_output=True)
    launch = [sys.executable, "-m", "accelerate.commands.launch", *(FSDP if sharding == "fsdp" else ["--multi_gpu"]),
              "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_port()), *run, "--out", str(tmp_path / "two")]
    done = subprocess.run(launch, env=env, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("result: ") == 1  # rank 1 ran in a scratch folder, quietly
    [one] = (tmp_path / "one").glob("*/train_log.jsonl")
    [two] = (tmp_path / "two").glob("*/train_log.jsonl")
    assert one.parent.name == two.parent.name  # the same run id: the same run
    a, b = ([json.loads(x) for x in f.read_text().splitlines()] for f in (one, two))
    assert [s["loss"] for s in b] == pytest.approx([s["loss"] for s in a], rel=RTOL)
    # the evaluated checkpoint: whole weights (gathered under FSDP), equal to one process's up to RTOL
    ckpt_one, ckpt_two = (sorted((tmp_path / d).glob("**/model.safetensors")) for d in ("one", "two"))
    assert len(ckpt_one) == len(ckpt_two) == 1
    from safetensors.torch import load_file

    w1, w2 = load_file(ckpt_one[0]), load_file(ckpt_two[0])
    assert w1.keys() == w2.keys()
    total = sum(float(w1[k].double().abs().sum()) for k in w1)
    assert sum(float((w1[k].double() - w2[k].double()).abs().sum()) for k in w1) <= RTOL * total
