"""Data-parallel training under ``accelerate launch`` (or ``torchrun``): the same command, N processes.

The launcher sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the rendezvous address. Every rank
runs the whole run (same seed, same expert data, same step sequence); inside an optimizer step
each rank takes every N-th sample of the step's samples, and the gradients are summed across
ranks before clipping. The step's loss normaliser counts the whole step's loss tokens, so the
summed gradient is exactly the one a single process computes for the same global batch (up to
floating-point summation order). Only rank 0 writes the run folder (:func:`output_folder`).

Sharded (FSDP, ``accelerate launch --use_fsdp`` or ``harness/accelerate/fsdp.yaml``): the same
step, but each decoder layer's parameters, gradients and optimizer state live sharded over the
ranks (torch's ``fully_shard``, FSDP2): a layer's weights are gathered for its forward and
backward, its gradients reduce-scattered (summed, as the data-parallel path sums them).
Every rank runs the same number of micro-batches (a rank short of samples runs a zero-weighted
one), since each forward is a collective. The trained model comes back whole on every rank
(:func:`unshard`). FSDP trains the supervised methods; methods that sample from the weights they
train (grpo, spear, oel) are refused under it with one line: run them data-parallel.

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


def fsdp() -> bool:
    """Launched sharded (``accelerate launch --use_fsdp``) with more than one process."""
    return world_size() > 1 and os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")


def require_unsharded(what: str) -> None:
    """A one-line refusal for work that needs whole weights on every rank."""
    if fsdp():
        from agentbench.errors import ConfigError

        raise ConfigError(f"FSDP shards the weights that {what} samples from; launch it data-parallel: "
                          "accelerate launch --config_file harness/accelerate/ddp.yaml ...")


def init() -> bool:
    """Join the launcher's process group (once); False when running as one process."""
    if world_size() <= 1:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        gpu = torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true")
        if gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if gpu else "gloo")
    return True


def layer_classes(model: Any) -> set[str]:
    """The module classes FSDP shards one by one: accelerate's ``fsdp_transformer_layer_cls_to_wrap``
    when given, else the model's own ``_no_split_modules`` (its decoder layer)."""
    named = os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "")
    names = {n.strip() for n in named.split(",") if n.strip()} or set(getattr(model, "_no_split_modules", None) or ())
    if not names:
        from agentbench.errors import ConfigError

        raise ConfigError(f"FSDP: {type(model).__name__} names no decoder layer class; pass "
                          "--fsdp_transformer_layer_cls_to_wrap")
    return names


def shard_model(model: Any) -> Any:
    """``model`` sharded in place: each decoder layer, then the rest at the root. FSDP averages
    gradients over ranks; the trainer scales each rank's loss by the world size so that they sum,
    like :func:`sum_gradients` (a divide factor of 1 would need PREMUL_SUM, which gloo lacks)."""
    from torch.distributed.fsdp import fully_shard

    names = layer_classes(model)
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        from agentbench.errors import ConfigError

        raise ConfigError(f"FSDP: no module of class {', '.join(sorted(names))} in {type(model).__name__}")
    reshard = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() not in ("0", "false")
    for layer in layers:
        fully_shard(layer, reshard_after_forward=reshard)
    fully_shard(model, reshard_after_forward=reshard)
    return model


def unshard(model: Any) -> Any:
    """A plain (unsharded) copy of a sharded ``model`` with its full weights, in CPU memory, on
    every rank. Gathered one tensor at a time, so a GPU holds one whole tensor at most."""
    import torch
    from transformers import AutoModelForCausalLM

    state = {}
    for name, tensor in model.state_dict().items():
        whole = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
        state[name] = whole.detach().to("cpu", copy=True)
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(model.config, dtype=next(iter(state.values())).dtype)
    plain.load_state_dict(state, assign=True)
    if getattr(model, "generation_config", None) is not None:
        plain.generation_config = model.generation_config
    plain.tie_weights()
    return plain


def micro_batches(n_samples: int, micro_batch: int) -> int:
    """How many micro-batches every rank runs for a step of ``n_samples`` under FSDP (the largest
    share's count: all ranks must run as many forwards)."""
    largest = -(-n_samples // world_size())
    return -(-largest // micro_batch)


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
