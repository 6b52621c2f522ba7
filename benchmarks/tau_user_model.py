"""How well a model plays τ²-bench's customer: the gold expert (the task's gold actions, then a
closing question) talks to the LLM user on train tasks, and the script reports how many
conversations the customer ends (``###STOP###``), after how many turns, with what reward, and
how long a customer message takes. A user model that never ends a conversation makes every
episode's reward 0 (τ²-bench scores only conversations that ended), whatever the agent does.

    python benchmarks/tau_user_model.py [--user-model smollm2-135m] [--tasks 3] [--max-turns 40]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user-model", default="smollm2-135m")
    parser.add_argument("--user-max-new-tokens", type=int, default=96)
    parser.add_argument("--tasks", type=int, default=3, help="train tasks, in split order")
    parser.add_argument("--max-turns", type=int, default=40, help="agent moves per conversation (the env's limit)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from agentbench.envs.tau_bench import TauBench
    from agentbench.envs.tau_bench.env import TauBenchConfig

    env = TauBench(TauBenchConfig(user="llm", user_model=args.user_model,
                                  user_max_new_tokens=args.user_max_new_tokens))
    ended = rewarded = 0
    customer_s, customer_msgs = 0.0, 0
    for task in env.tasks("train")[: args.tasks]:
        t0 = time.perf_counter()
        env.reset(task)
        customer_s += time.perf_counter() - t0
        customer_msgs += 1
        turns, done, reward, last = 0, False, 0.0, ""
        while turns < args.max_turns and not done:
            action = env.expert_step().action
            t0 = time.perf_counter()
            step = env.step(action)
            if action.startswith("respond"):
                customer_s += time.perf_counter() - t0
                customer_msgs += 1
                last = step.observation
            turns, done, reward = turns + 1, step.done, step.reward
        ended += done
        rewarded += reward >= 1.0
        print(f"task {task.id}: {'ended' if done else 'not ended'} after {turns} moves, reward {reward:g}; "
              f"last customer message: {last[:160]!r}", flush=True)
    env.close()
    n = min(args.tasks, len(env.tasks("train")))
    print(f"user model {args.user_model} ({args.user_max_new_tokens} new tokens), {n} gold-expert conversations "
          f"of at most {args.max_turns} moves, {torch.get_num_threads()} thread(s)")
    print(f"conversations the customer ended: {ended}/{n}; reward 1: {rewarded}/{n}")
    print(f"customer messages: {customer_msgs}, {customer_s / max(customer_msgs, 1):.1f} s each")


if __name__ == "__main__":
    main()
