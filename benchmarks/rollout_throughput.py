"""Rollout engine throughput, as ratios measured in one run (these machines are noisy).

1. engine / raw: generated tokens per second of the rollout engine over raw batched
   ``generate`` on exactly the same work: every batched call the engine made (same prompts,
   same batch composition, same seeds) is replayed straight into the backend and timed. The
   two are interleaved (engine, replay, engine, replay, ...) so that a noisy neighbour hits
   both alike; the ratio is of the summed times.
2. batched / sequential: episodes per second of batched rollouts over one-episode-at-a-time.

    python benchmarks/rollout_throughput.py [--model smollm2-135m] [--episodes 16] [--env frozenlake]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class RecordingBackend:
    """Passes calls through to a backend and remembers each batched generate call."""

    def __init__(self, inner):
        self.inner, self.name, self.calls = inner, inner.name, []

    def generate(self, prompts, params):
        self.calls.append((list(prompts), params))
        return self.inner.generate(prompts, params)

    def prompt_tokens(self, prompts):
        return self.inner.prompt_tokens(prompts)

    def describe(self):
        return self.inner.describe()

    def close(self):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--env", default="frozenlake")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2, help="engine/replay pairs, interleaved")
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
    # warm-up at full batch width (first calls allocate)
    backend.generate([prompts.messages([], env.reset(t)) for t in tasks], sampling)

    def rollout(wave_size: int, recorder: RecordingBackend | None = None) -> tuple[float, int, int]:
        engine = RolloutEngine(recorder or backend, env_cls, prompts, sampling, limits, wave_size=wave_size)
        t0 = time.perf_counter()
        records = engine.run(jobs)
        return time.perf_counter() - t0, sum(r.tokens.completion for r in records), len(records)

    engine_s = raw_s = 0.0
    engine_tokens = raw_tokens = episodes = 0
    for _ in range(args.repeats):
        recorder = RecordingBackend(backend)
        seconds, tokens, n = rollout(len(jobs), recorder)
        engine_s, engine_tokens, episodes = engine_s + seconds, engine_tokens + tokens, episodes + n
        t0 = time.perf_counter()
        for call_prompts, params in recorder.calls:
            raw_tokens += sum(c.completion_tokens for c in backend.generate(call_prompts, params))
        raw_s += time.perf_counter() - t0
    sequential_s, _, sequential_n = rollout(1)
    engine_tps, raw_tps = engine_tokens / engine_s, raw_tokens / raw_s
    batched_eps, sequential_eps = episodes / engine_s, sequential_n / sequential_s
    print(f"model {args.model}, env {args.env}, {len(jobs)} episodes, max {args.max_turns} turns, "
          f"{args.max_new_tokens} new tokens per move, {torch.get_num_threads()} thread(s), "
          f"{args.repeats} interleaved repeats")
    print(f"raw batched generate (same calls): {raw_tps:8.1f} tokens/s ({raw_tokens} tokens)")
    print(f"rollout engine:                    {engine_tps:8.1f} tokens/s ({engine_tokens} tokens)")
    print(f"engine / raw throughput ratio:     {engine_tps / raw_tps:.3f}")
    print(f"batched rollouts:                  {batched_eps:8.3f} episodes/s")
    print(f"one-at-a-time:                     {sequential_eps:8.3f} episodes/s ({sequential_s:.1f} s)")
    print(f"batched / sequential episodes ratio: {batched_eps / sequential_eps:.2f}")


if __name__ == "__main__":
    main()
