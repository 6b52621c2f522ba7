"""Rollout engine throughput, as ratios measured in one run (these machines are noisy).

1. engine / raw: generated tokens per second of the rollout engine over the raw batched
   ``generate`` throughput of the same model on the same first-turn prompts and batch size.
2. batched / sequential: episodes per second of batched rollouts over one-episode-at-a-time.

    python benchmarks/rollout_throughput.py [--model smollm2-135m] [--episodes 16] [--env frozenlake]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--env", default="frozenlake")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--max-turns", type=int, default=6)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from agentbench import registry
    from agentbench.backends import BackendOptions, SamplingParams, make_backend
    from agentbench.models import resolve_model
    from agentbench.prompting import PromptBuilder, PromptConfig
    from agentbench.rollout import EpisodeJob, RolloutEngine, RolloutLimits

    env_cls = registry.envs.get(args.env)
    env = env_cls()
    tasks = env.tasks("test")[: args.episodes]
    prompts = PromptBuilder(env.instructions, PromptConfig(), env_cls.default_history_turns)
    backend = make_backend("hf", resolve_model(args.model), BackendOptions(max_batch_size=args.episodes))
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens)
    limits = RolloutLimits(max_turns=args.max_turns)
    jobs = [EpisodeJob(t, 0) for t in tasks]

    # warm-up (first calls allocate)
    backend.generate([prompts.messages([], env.reset(tasks[0]))], sampling)

    first_turn = [prompts.messages([], env.reset(t)) for t in tasks]
    started = time.perf_counter()
    raw = backend.generate(first_turn, sampling)
    raw_s = time.perf_counter() - started
    raw_tps = sum(c.completion_tokens for c in raw) / raw_s

    def rollout(wave_size: int) -> tuple[float, int, float]:
        engine = RolloutEngine(backend, env_cls, prompts, sampling, limits, wave_size=wave_size)
        t0 = time.perf_counter()
        records = engine.run(jobs)
        elapsed = time.perf_counter() - t0
        return elapsed, sum(r.tokens.completion for r in records), len(records) / elapsed

    batched_s, batched_tokens, batched_eps = rollout(len(jobs))
    sequential_s, _, sequential_eps = rollout(1)
    engine_tps = batched_tokens / batched_s
    print(f"model {args.model}, env {args.env}, {len(jobs)} episodes, max {args.max_turns} turns, "
          f"{args.max_new_tokens} new tokens per move, {torch.get_num_threads()} thread(s)")
    print(f"raw batched generate: {raw_tps:8.1f} tokens/s")
    print(f"rollout engine:       {engine_tps:8.1f} tokens/s")
    print(f"engine / raw throughput ratio:        {engine_tps / raw_tps:.2f}")
    print(f"batched rollouts:     {batched_eps:8.3f} episodes/s ({batched_s:.1f} s)")
    print(f"one-at-a-time:        {sequential_eps:8.3f} episodes/s ({sequential_s:.1f} s)")
    print(f"batched / sequential episodes ratio:  {batched_eps / sequential_eps:.2f}")


if __name__ == "__main__":
    main()
