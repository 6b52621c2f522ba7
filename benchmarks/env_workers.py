"""Concurrent env steps: episodes per second of the rollout engine with 1 and with N env workers
(``--set limits.env_workers=N``), as a ratio measured in one run.

The two settings are interleaved (1, N, 1, N, ...) so that a noisy neighbour hits both alike; the
ratio is of the summed times. Same tasks, seeds and turns in both: the episodes must come out
identical, and the script checks that they do.

ScienceWorld's worlds are spread over ``AGENTBENCH_SCIENCEWORLD_JVMS`` JVMs (one JVM serialises
its worlds' calls); the script sets it to ``--workers`` unless it is set, in both settings alike.

By default the policy is a fixed reply (``--reply``, ScienceWorld's always-valid ``look around``)
so that the measurement is of the env: with a model on a CPU, generation dominates every wave
and hides the env's share (pass ``--model tiny`` or ``smollm2-135m`` to measure that too).

    python benchmarks/env_workers.py [--env scienceworld] [--episodes 8] [--max-turns 8] [--workers 4]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class FixedReply:
    """A stand-in policy that answers every prompt with the same action (no model: the benchmark
    then times the env steps and the engine around them)."""

    name = "fixed-reply"

    def __init__(self, action: str):
        self.text = f"Action: {action}"

    def generate(self, prompts, params):
        from agentbench.backends import Completion

        return [Completion(text=self.text, prompt_tokens=0, completion_tokens=1, finish_reason="stop")
                for _ in prompts for _ in range(params.n)]

    def prompt_tokens(self, prompts):
        return [0 for _ in prompts]

    def describe(self):
        return {"backend": self.name, "reply": self.text}

    def close(self):
        pass


class Kept:
    """An env started once and lent to every rollout (its ``close`` is deferred to the end), so
    that the timing holds the episodes' resets and steps, not the envs' start-up (a JVM each for
    ScienceWorld), which the engine does one env at a time whatever the worker count."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    def close(self):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="scienceworld")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per wave (one wave)")
    parser.add_argument("--max-turns", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="env workers of the concurrent setting")
    parser.add_argument("--repeats", type=int, default=2, help="(1 worker, N workers) pairs, interleaved")
    parser.add_argument("--model", default=None, help="a model instead of the fixed reply (hf backend)")
    parser.add_argument("--reply", default="look around", help="the fixed reply's action")
    args = parser.parse_args()
    os.environ.setdefault("AGENTBENCH_SCIENCEWORLD_JVMS", str(args.workers))

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from agentbench import registry
    from agentbench.backends import BackendOptions, SamplingParams, make_backend
    from agentbench.models import resolve_model
    from agentbench.prompting import PromptBuilder, PromptConfig
    from agentbench.rollout import EpisodeJob, RolloutEngine, RolloutLimits

    env_cls = registry.envs.get(args.env)
    started = [env_cls() for _ in range(args.episodes)]
    env = started[0]
    tasks = env.tasks("test")[: args.episodes]
    prompts = PromptBuilder(env.instructions, PromptConfig(), env_cls.default_history_turns)
    backend = (make_backend("hf", resolve_model(args.model), BackendOptions(max_batch_size=args.episodes))
               if args.model else FixedReply(args.reply))
    sampling = SamplingParams(max_new_tokens=24)
    jobs = [EpisodeJob(t, 0) for t in tasks]

    def rollout(workers: int) -> tuple[float, list]:
        limits = RolloutLimits(max_turns=args.max_turns, env_workers=workers)
        lent = iter(started)
        engine = RolloutEngine(backend, lambda: Kept(next(lent)), prompts, sampling, limits, wave_size=len(jobs),
                               env_name=env_cls.name)
        t0 = time.perf_counter()
        records = engine.run(jobs)
        return time.perf_counter() - t0, records

    def signature(records) -> list:
        return sorted((r.task_id, r.trajectory_sha256, r.termination.value) for r in records)

    rollout(1)  # warm-up: the first env start pays for class loading and caches
    times = {1: 0.0, args.workers: 0.0}
    episodes = {1: 0, args.workers: 0}
    seen = {}
    for _ in range(args.repeats):
        for workers in (1, args.workers):
            seconds, records = rollout(workers)
            times[workers] += seconds
            episodes[workers] += len(records)
            seen.setdefault(workers, signature(records))
    identical = seen[1] == seen[args.workers]
    ends = sorted({t for _, _, t in seen[1]})
    one, many = episodes[1] / times[1], episodes[args.workers] / times[args.workers]
    jvms = f", {os.environ['AGENTBENCH_SCIENCEWORLD_JVMS']} JVM(s)" if args.env == "scienceworld" else ""
    print(f"env {args.env}{jvms}, {len(jobs)} episodes per wave, max {args.max_turns} turns, "
          f"policy {backend.describe()}, {os.cpu_count()} CPU(s), {args.repeats} interleaved repeats")
    print(f"1 env worker:            {one:8.3f} episodes/s ({times[1]:.1f} s)")
    print(f"{args.workers} env workers:           {many:8.3f} episodes/s ({times[args.workers]:.1f} s)")
    print(f"{args.workers} workers / 1 worker ratio:  {many / one:.2f}")
    print(f"episodes identical across the settings: {identical}; endings: {', '.join(ends)}")
    for e in started:
        e.close()
    if "env_error" in ends:
        raise SystemExit("episodes ended in env errors: the measurement is void")
    if not identical:
        raise SystemExit("the settings played different episodes: the measurement is void")


if __name__ == "__main__":
    main()
