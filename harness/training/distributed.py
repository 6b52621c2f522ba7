"""Data-parallel training under ``accelerate launch`` (or ``torchrun``): the same command, N processes.

The launcher sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the rendezvous address. Every rank
runs the whole run (same seed, same expert data, same step sequence); inside an optimizer step
each rank takes every N-th sample of the step's samples, and the gradients are summed across
ranks before clipping. The step's loss normaliser counts the whole step's loss tokens, so the
summed gradient is exactly the one a single process computes for the same global batch (up to
floating-point summation order). Only rank 0 writes the run folder (:func:`output_folder`).

Backend: NCCL on GPUs (each rank on ``cuda:LOCAL_RANK``), gloo on CPUs (``accelerate launch --cpu``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init() -> bool:
    """Join the launcher's process group (once); False when running as one process."""
    if world_size() <= 1:
        return False
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true"):
        from agentbench.errors import ConfigError

        raise ConfigError("FSDP (sharded parameters) is not supported by the trainer yet; launch data-parallel "
                          "instead: accelerate launch --config_file harness/accelerate/ddp.yaml ...")
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        gpu = torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true")
        if gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if gpu else "gloo")
    return True


def shard(items: Sequence[T]) -> list[T]:
    """This rank's share of a step's samples (every N-th, so shares differ by one at most)."""
    return list(items[rank() :: world_size()]) if world_size() > 1 else list(items)


def sum_gradients(params: Iterable[Any]) -> None:
    """Sum every parameter's gradient across ranks (a rank without samples contributes zeros)."""
    if world_size() <= 1:
        return
    import torch
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)




def broadcast_parameters(module: Any) -> None:
    """Rank 0's initial weights on every rank (they match already when seeds do; this makes sure)."""
    if world_size() <= 1:
        return
    import torch.distributed as dist

    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def output_folder(out: Path) -> Path:
    """Where this rank writes its run folders: ``out`` on rank 0, a scratch folder elsewhere (the
    other ranks run the same run to take their share of each step, but do not write results)."""
    if is_main():
        return out
    import atexit
    import shutil

    scratch = Path(tempfile.mkdtemp(prefix=f"agentbench-rank{rank()}-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return scratch


def sum_metrics(total: float, tokens: int, sums: dict[str, float]) -> tuple[float, int, dict[str, float]]:
    """A step's loss, token count and metric sums added up across ranks."""
    if world_size() <= 1:
        return total, tokens, sums
    import torch.distributed as dist

    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, (total, tokens, sums))
    merged: dict[str, float] = {}
    for _, _, s in parts:
        for k, v in s.items():
            merged[k] = merged.get(k, 0.0) + v
    return sum(p[0] for p in parts), sum(p[1] for p in parts), merged
