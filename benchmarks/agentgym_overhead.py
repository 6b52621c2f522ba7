"""What serving an env over AgentGym's HTTP protocol costs, as ratios measured in one run.

Plays the same expert episodes in-process and through ``agentbench serve-env`` (a server on a
thread of this process, real HTTP over loopback) and prints env steps per second of both and
their ratio. Each remote step is one ``POST /step``; the expert's move adds one ``GET``.

    python benchmarks/agentgym_overhead.py [--env frozenlake] [--episodes 50]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def play(env, tasks, limit: int) -> int:
    steps = 0
    for task in tasks:
        env.reset(task, seed=0)
        for _ in range(limit):
            steps += 1
            if env.step(env.expert_step().action).done:
                break
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="frozenlake")
    parser.add_argument("--episodes", type=int, default=50)
    args = parser.parse_args()

    from agentbench import registry
    from agentbench.agentgym.server import BackgroundServer
    from agentbench.agentgym.service import EnvService, ServedEnv
    from agentbench.envs.agentgym import AgentGymEnv

    local = registry.envs.get(args.env)()
    tasks = list(local.tasks("test"))[: args.episodes]
    limit = 2 * type(local).default_max_turns
    with BackgroundServer(EnvService(ServedEnv.from_registry(args.env))) as url:
        remote = AgentGymEnv(AgentGymEnv.Config(variant=args.env, url=url))
        play(remote, tasks[:2], limit)  # warm up both sides
        play(local, tasks[:2], limit)
        started = time.perf_counter()
        local_steps = play(local, tasks, limit)
        local_rate = local_steps / (time.perf_counter() - started)
        started = time.perf_counter()
        remote_steps = play(remote, tasks, limit)
        remote_rate = remote_steps / (time.perf_counter() - started)
        remote.close()
    assert local_steps == remote_steps
    print(f"{args.env}: {local_steps} expert steps over {len(tasks)} episodes")
    print(f"in-process {local_rate:,.0f} steps/s; over HTTP {remote_rate:,.0f} steps/s; "
          f"in-process / HTTP = {local_rate / remote_rate:.1f}x")


if __name__ == "__main__":
    main()
