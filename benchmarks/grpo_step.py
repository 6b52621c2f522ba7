"""One GRPO step on the ``hf`` backend, and one policy update against TRL's ``GRPOTrainer``,
as ratios measured in one run (these machines are noisy).

1. A GRPO step built from the real pieces (``methods/grpo.py``'s loop): rollouts of G episodes
   per task on Frozen Lake through ``RolloutEngine(keep_tokens=True)`` with a policy that shares
   the trainer's module (``HFBackend.sharing``), ``group_advantages``, ``turn_samples``, one
   ``PolicyTrainer.step`` with ``ClippedPGLoss``. Printed: the step's wall time split into
   rollout, advantages/samples and update, and the weight-sync cost as % of a step, both ways:
   in-process sharing (nothing to do: the policy *is* the trainer's module) and the explicit path,
   ``HFBackend.update_weights(state_dict)`` into a separate inference copy.
2. One policy update on the same batch (the first step's samples: same model, tokens, group
   size, micro-batch, clip 0.2, beta, token-mean over the step's loss tokens, full fine-tuning,
   AdamW, grad clip 1.0) by ``PolicyTrainer.step`` and by TRL's ``GRPOTrainer``, interleaved
   (ours, TRL, ...; the order rotates each repeat; ``--trl-micro-batch-padding`` adds TRL fed
   micro-batches padded to their own widths, its best case). TRL is
   driven as its own training loop drives it: its ``_generate_and_score_completions`` is
   replaced by one returning the prepared step batch (prompt_ids/prompt_mask left-padded,
   completion_ids/completion_mask right-padded, advantages, old_per_token_logps, and under
   beta > 0 the reference log-probs computed as TRL computes them, inside the timed region),
   then ``training_step`` per micro-batch (TRL's own shuffle, split and ``_compute_loss``),
   ``_clip_grad_norm``, ``optimizer.step``, ``lr_scheduler.step``, ``zero_grad``. TRL's
   ``loss_type="dapo"`` normalises by the step's loss tokens, which is our ``token-mean``
   exactly (``bnpo`` is a per-micro-batch token mean); the first update's gradient norms are
   printed side by side as the check that both compute the same update.

    OMP_NUM_THREADS=1 python benchmarks/grpo_step.py [--model smollm2-135m] [--steps 2] [--repeats 2]

Needs TRL: pip install 'agentbench[bench]'.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import os
import random
import shutil
import sys
import tempfile
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def pad(rows, value, side, dtype):
    import torch

    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=dtype)
    for i, r in enumerate(rows):
        if r:
            if side == "left":
                out[i, width - len(r) :] = torch.tensor(r, dtype=dtype)
            else:
                out[i, : len(r)] = torch.tensor(r, dtype=dtype)
    return out


def trl_batch(trainer, samples, pad_id: int) -> dict:
    """What TRL's ``_generate_and_score_completions`` returns for these samples: prompts
    left-padded and completions right-padded across the whole batch, the loss-token count,
    and (beta > 0) the reference model's log-probs, computed as TRL does."""
    import torch

    prompts, completions, old = [], [], []
    for s in samples:
        cut = s.loss_mask.index(True)
        prompts.append(s.input_ids[:cut])
        completions.append(s.input_ids[cut:])
        old.append(s.old_logprobs[cut:])
    prompt_ids = pad(prompts, pad_id, "left", torch.long)
    completion_ids = pad(completions, pad_id, "right", torch.long)
    out = {
        "prompt_ids": prompt_ids,
        "prompt_mask": pad([[1] * len(p) for p in prompts], 0, "left", torch.long),
        "completion_ids": completion_ids,
        "completion_mask": pad([[1] * len(c) for c in completions], 0, "right", torch.long),
        "advantages": torch.tensor([s.advantage for s in samples], dtype=torch.float32),
        "old_per_token_logps": pad(old, 0.0, "right", torch.float32),
    }
    out["num_items_in_batch"] = out["completion_mask"].sum()
    if trainer.beta != 0.0:
        with torch.no_grad():
            out["ref_per_token_logps"], _, _ = trainer._get_per_token_logps_and_entropies(
                trainer.ref_model, torch.cat([prompt_ids, completion_ids], dim=1),
                torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1), completion_ids.size(1),
                batch_size=trainer.args.per_device_train_batch_size)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--tasks", type=int, default=1, help="tasks per GRPO step")
    parser.add_argument("--group-size", type=int, default=4, help="episodes per task, G")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--micro-batch", type=int, default=4, help="sequences per forward/backward pass")
    parser.add_argument("--beta", type=float, default=0.0, help="KL coefficient (k3), both trainers")
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--steps", type=int, default=2, help="GRPO steps timed (part 1)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved update repeats (part 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trl-micro-batch-padding", action="store_true",
                        help="also time TRL fed micro-batches padded to their own widths (its best case)")
    args = parser.parse_args()
    if importlib.util.find_spec("trl") is None:
        sys.exit("benchmarks/grpo_step.py compares against TRL, which is not installed: pip install 'agentbench[bench]'")

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from agentbench import registry
    from agentbench.backends import BackendOptions, SamplingParams
    from agentbench.backends.hf import HFBackend
    from agentbench.models import resolve_model
    from agentbench.prompting import PromptBuilder, PromptConfig
    from agentbench.rollout import EpisodeJob, RolloutEngine, RolloutLimits
    from agentbench.training.checkpoints import load_for_training
    from agentbench.training.losses import ClippedPGLoss
    from agentbench.training.rl import group_advantages, is_env_error, shaped_reward, turn_samples
    from agentbench.training.trainer import OptimConfig, PolicyTrainer

    ref = resolve_model(args.model)
    env_cls = registry.envs.get("frozenlake")
    env = env_cls()
    tasks = env.tasks("train")
    prompts = PromptBuilder(env.instructions, PromptConfig(), env_cls.default_history_turns)
    limits = RolloutLimits(max_turns=args.max_turns)
    optim = OptimConfig(lr_scheduler="constant", warmup_fraction=0.0, max_grad_norm=1.0)
    loss = ClippedPGLoss(clip_low=0.2, clip_high=0.2, kl_coef=args.beta, kl_estimator="k3", entropy_coef=0.0)
    max_seq_len = 1 << 20  # no truncation: TRL gets exactly the same prompt/completion split

    def make_trainer(model, tokenizer):
        reference = PolicyTrainer.frozen_copy(model) if args.beta > 0 else None
        return PolicyTrainer(model, tokenizer, optim, learning_rate=args.learning_rate, total_steps=1000,
                             seed=args.seed, micro_batch=args.micro_batch, aggregation="token-mean",
                             norm=float(args.max_new_tokens), reference=reference)

    # -- 1. GRPO steps ----------------------------------------------------------------------
    model, tokenizer = load_for_training(ref)
    trainer = make_trainer(model, tokenizer)
    policy = HFBackend.sharing(trainer.model, tokenizer, ref)
    inference = HFBackend(ref, BackendOptions())  # a separate copy: the explicit weight-update path
    rng = random.Random(args.seed)
    policy.generate([prompts.messages([], env.reset(t)) for t in tasks[: args.tasks * args.group_size]],
                    SamplingParams(max_new_tokens=4))  # warm-up
    times = {k: 0.0 for k in ("rollout", "samples", "update", "sync_shared", "sync_explicit")}
    first_batch, synthetic, skipped, n_samples, loss_tokens = None, 0, 0, 0, 0
    for step in range(args.steps):
        picked = rng.sample(tasks, args.tasks)
        jobs = [EpisodeJob(t, 1000 * step + g) for g, t in enumerate(picked) for _ in range(args.group_size)]
        sampling = SamplingParams(temperature=1.0, max_new_tokens=args.max_new_tokens, seed=args.seed + step)
        engine = RolloutEngine(policy, env_cls, prompts, sampling, limits, wave_size=len(jobs), env_name="frozenlake",
                               keep_tokens=True)
        t0 = time.perf_counter()
        records = engine.run(jobs)
        t1 = time.perf_counter()
        group_of = {key: g for g, key in enumerate(dict.fromkeys((j.task.id, j.seed) for j in jobs))}
        kept = [r for r in records if not is_env_error(r)]
        stats = group_advantages([shaped_reward(r, 0.1) for r in kept],
                                 [group_of[(r.task_id, r.seed)] for r in kept], "mean_std")
        advantages = stats.advantages
        skipped += stats.skipped_groups
        if all(a is None for a in advantages):
            # Every group had equal rewards (a random model fails alike): the update would be
            # skipped. Its cost does not depend on the advantages' values, so time it with ±1.
            advantages, synthetic = [1.0 if i % 2 else -1.0 for i in range(len(kept))], synthetic + 1
        samples = [s for r, a in zip(kept, advantages) if a is not None for s in turn_samples(r, a, max_seq_len)]
        t2 = time.perf_counter()
        metrics = trainer.step(samples, loss)
        t3 = time.perf_counter()
        assert policy.model is trainer.model  # in-process sharing: the sync is this (no copy, no load)
        t4 = time.perf_counter()
        inference.update_weights(trainer.model.state_dict())
        t5 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            times[key] += dt
        n_samples += len(samples)
        loss_tokens += metrics.loss_tokens
        first_batch = first_batch or samples
    for name, p in inference.model.state_dict().items():  # the explicit path did deliver the weights
        assert torch.equal(p, trainer.model.state_dict()[name]), name
    step_s = times["rollout"] + times["samples"] + times["update"]
    per = {k: v / args.steps for k, v in times.items()}
    print(f"model {args.model}, frozenlake, {args.tasks} tasks x G={args.group_size}, max {args.max_turns} turns, "
          f"{args.max_new_tokens} new tokens per move, micro-batch {args.micro_batch}, beta {args.beta}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"-- GRPO step (mean of {args.steps}; {n_samples / args.steps:.1f} turn samples, "
          f"{loss_tokens / args.steps:.0f} loss tokens per step; {skipped} zero-variance groups"
          + (f"; {synthetic} step(s) timed with synthetic ±1 advantages" if synthetic else "") + ")")
    print(f"step wall time:                  {step_s / args.steps:8.3f} s")
    print(f"  rollout:                       {per['rollout']:8.3f} s  {100 * times['rollout'] / step_s:5.1f} %")
    print(f"  advantages + samples:          {per['samples']:8.3f} s  {100 * times['samples'] / step_s:5.1f} %")
    print(f"  update (PolicyTrainer.step):   {per['update']:8.3f} s  {100 * times['update'] / step_s:5.1f} %")
    print(f"weight sync, shared module:      {per['sync_shared']:8.6f} s  "
          f"{100 * times['sync_shared'] / step_s:.4f} % of a step")
    print(f"weight sync, update_weights(sd): {per['sync_explicit']:8.3f} s  "
          f"{100 * times['sync_explicit'] / step_s:.2f} % of a step")
    # free part 1 (the engine holds the shared policy, hence the trainer and its optimizer state)
    del trainer, policy, inference, model, engine, records, kept, metrics
    gc.collect()

    # -- 2. one update: ours vs TRL ---------------------------------------------------------
    import trl
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    batch = first_batch[: len(first_batch) - len(first_batch) % args.micro_batch] or first_batch
    accum = max(1, len(batch) // args.micro_batch)
    ours = make_trainer(*load_for_training(ref))
    trl_model, _ = load_for_training(ref)
    group = next(g for g in range(args.group_size, 1, -1) if (args.micro_batch * accum) % g == 0)
    workdir = tempfile.mkdtemp(prefix="grpo-bench-")
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
    config = GRPOConfig(
        output_dir=workdir, loss_type="dapo", epsilon=0.2, epsilon_high=0.2, beta=args.beta, temperature=1.0,
        learning_rate=args.learning_rate, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=1.0, optim="adamw_torch", per_device_train_batch_size=args.micro_batch,
        gradient_accumulation_steps=accum, steps_per_generation=accum, num_generations=group, num_iterations=1,
        max_completion_length=args.max_new_tokens, gradient_checkpointing=False, bf16=False, use_cpu=True,
        report_to="none", save_strategy="no", logging_strategy="no", max_steps=1000, seed=args.seed,
        entropy_coef=0.0)
    theirs = GRPOTrainer(model=trl_model, reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                         args=config, train_dataset=Dataset.from_dict({"prompt": ["x"] * group}),
                         processing_class=tokenizer)
    theirs.create_optimizer_and_scheduler(num_training_steps=1000)
    theirs.model.train()
    pad_id = tokenizer.pad_token_id
    whole = theirs._prepare_inputs  # TRL's own: generate (ours: the prepared batch), shuffle, split, buffer

    def trl_step(per_micro_batch: bool) -> float:
        if per_micro_batch:  # TRL's best case: each micro-batch padded only to its own widths
            chunks = iter([batch[i : i + args.micro_batch] for i in range(0, len(batch), args.micro_batch)])
            theirs._prepare_inputs = lambda _: trl_batch(theirs, next(chunks), pad_id)
        else:
            theirs._prepare_inputs = whole
            theirs._generate_and_score_completions = lambda _: trl_batch(theirs, batch, pad_id)
        theirs.current_gradient_accumulation_steps = accum
        for i in range(accum):
            theirs.accelerator.gradient_state._set_sync_gradients(i == accum - 1)
            theirs.training_step(theirs.model, {}, None)
        grad_norm = float(theirs._clip_grad_norm(theirs.model))
        theirs.optimizer.step()
        theirs.lr_scheduler.step()
        theirs.model.zero_grad()
        return grad_norm

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out

    # first update from the same weights: the check that both compute the same update (untimed warm-up)
    ours_norm = ours.step(batch, loss).grad_norm
    trl_norm = trl_step(False)
    runs = {"ours": (lambda: ours.step(batch, loss)), "trl": (lambda: trl_step(False))}
    if args.trl_micro_batch_padding:
        trl_step(True)
        runs["trl_mb"] = lambda: trl_step(True)
    spent = dict.fromkeys(runs, 0.0)
    order = list(runs)
    for r in range(args.repeats):
        k = r % len(order)
        for name in order[k:] + order[:k]:
            spent[name] += timed(runs[name])[0]
    lengths = [len(s.input_ids) for s in batch]
    print(f"-- one update on the same batch: {len(batch)} sequences ({sum(s.loss_tokens for s in batch)} loss "
          f"tokens, lengths {min(lengths)}-{max(lengths)}), micro-batch {args.micro_batch} x {accum} accumulation, "
          f"full fine-tuning, AdamW, clip 0.2, beta {args.beta}, {args.repeats} interleaved repeats; "
          f"TRL {trl.__version__} loss_type='dapo' (= our token-mean)")
    print(f"first update's grad norm:        ours {ours_norm:.6g}, TRL {trl_norm:.6g} "
          f"(rel. diff {abs(ours_norm - trl_norm) / max(abs(trl_norm), 1e-12):.1e})")
    print(f"PolicyTrainer.step:              {spent['ours'] / args.repeats:8.3f} s")
    print(f"TRL GRPOTrainer update:          {spent['trl'] / args.repeats:8.3f} s  (its padding: across the step)")
    if "trl_mb" in spent:
        print(f"TRL, per-micro-batch padding:    {spent['trl_mb'] / args.repeats:8.3f} s")
    print(f"ours / TRL time ratio:           {spent['ours'] / spent['trl']:.3f}")
    if "trl_mb" in spent:
        print(f"ours / TRL (micro-batch pad):    {spent['ours'] / spent['trl_mb']:.3f}")
    shutil.rmtree(workdir, ignore_errors=True)
    assert math.isfinite(ours_norm) and math.isfinite(trl_norm)


if __name__ == "__main__":
    main()
