"""A tiny training run for the data-parallel test (tests/test_distributed.py): four optimizer steps
of the tiny model on fixed random token samples, with the PolicyTrainer. Run as one process or
under ``accelerate launch --num_processes 2`` (data-parallel, or sharded with ``--use_fsdp``); rank 0 writes the per-step losses, gradient
norms and a checksum of the final weights to the JSON file named on the command line."""

from __future__ import annotations

import json
import random
import sys

import torch
from transformers import AutoModelForCausalLM

from agentbench.backends.hf import load_tokenizer
from agentbench.models import tiny
from agentbench.training import distributed
from agentbench.training.batch import TokenSample
from agentbench.training.losses import SFTLoss
from agentbench.training.trainer import OptimConfig, PolicyTrainer

STEPS, GLOBAL_BATCH, MICRO_BATCH = 4, 5, 2  # shares of 3 and 2: rank 1 runs a zero-weighted micro-batch under FSDP


def main(out: str) -> None:
    torch.set_num_threads(1)
    ref = tiny()
    model = AutoModelForCausalLM.from_pretrained(ref.path, dtype=torch.float32)
    tokenizer = load_tokenizer(ref.path)
    rng = random.Random(0)
    batch = []
    for _ in range(GLOBAL_BATCH):
        n = rng.randint(12, 40)
        ids = [rng.randrange(100, 5000) for _ in range(n)]
        cut = rng.randint(4, n - 4)
        batch.append(TokenSample(ids, [False] * cut + [True] * (n - cut)))
    steps = [batch] * STEPS  # the same batch each step, so the loss must fall
    trainer = PolicyTrainer(model, tokenizer, OptimConfig(), learning_rate=2e-3, total_steps=STEPS, seed=0,
                            micro_batch=MICRO_BATCH)
    metrics = [trainer.step(batch, SFTLoss()) for batch in steps]
    checksum = float(sum(p.detach().double().abs().sum() for p in trainer.merged().parameters()))
    if distributed.is_main():
        with open(out, "w") as fh:
            json.dump({"world_size": distributed.world_size(), "sharded": trainer.sharded, "loss": [m.loss for m in metrics],
                       "grad_norm": [m.grad_norm for m in metrics], "tokens": [m.tokens for m in metrics],
                       "checksum": checksum}, fh)


if __name__ == "__main__":
    main(sys.argv[1])
