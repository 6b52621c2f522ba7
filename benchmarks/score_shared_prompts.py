"""Scoring completions that share a prompt: the prompt once plus a KV-cache continuation, against
every (prompt, completion) as one whole sequence, as a ratio measured in one run.

The workload is Early Experience's ``alternatives=policy`` branching: every admissible action
but the expert's, scored as the policy's reply at each expert state of Frozen Lake's train
tasks (3 actions per state). Prints the wall time of both paths, their ratio and the largest
difference between their log-probs.

    python benchmarks/score_shared_prompts.py [--model smollm2-135m] [--tasks 4] [--batch 12]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", type=int, default=4, help="train tasks whose expert states are scored")
    parser.add_argument("--batch", type=int, default=12, help="sequences per forward pass (max_batch_size)")
    args = parser.parse_args()

    import tempfile
    from pathlib import Path

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from agentbench.backends import BackendOptions, make_backend
    from agentbench.branching import completion_request, react_response
    from agentbench.env import replay
    from agentbench.session import RunSession
    from agentbench.spec import resolve_spec

    spec = resolve_spec(method="none", env="frozenlake", protocol="in-domain", model=args.model, backend="hf",
                        budget="smoke", seed=0, sets=[f"budget.train_tasks={args.tasks}"])
    with tempfile.TemporaryDirectory() as tmp:
        session = RunSession(spec, Path(tmp) / "run")
        expert = session.expert()
        prompts = session.prompt_builder(spec.prompt)
    policy = make_backend("hf", spec.model(), BackendOptions(max_batch_size=args.batch))
    env = spec.env.obj(spec.env_config)
    requests = []
    for state in expert.steps:  # the requests alternatives=policy builds (agentbench.branching.score_actions)
        replay(env, expert.task(state.task_id), state.seed, state.prefix)
        messages = prompts.messages(list(state.history), state.observation)
        for action in env.admissible_actions() or []:
            if action.strip().lower() != state.action.strip().lower():
                requests.append(completion_request(policy, messages, react_response(action)))
    env.close()
    states = len(expert.steps)
    tokens = sum(len(r.prompt_ids) + len(r.completion_ids) for r in requests)
    print(f"{states} expert states, {len(requests)} scored actions, {tokens} tokens as whole sequences")

    started = time.perf_counter()
    shared = policy.score(requests)
    shared_s = time.perf_counter() - started
    started = time.perf_counter()
    whole = [s for i in range(0, len(requests), args.batch) for s in policy._score_whole(requests[i : i + args.batch], 0)]
    whole_s = time.perf_counter() - started
    diff = max(abs(a - b) for s, w in zip(shared, whole) for a, b in zip(s.logprobs, w.logprobs))
    print(f"whole sequences: {whole_s:.1f} s; shared prompts: {shared_s:.1f} s; "
          f"speed-up {whole_s / shared_s:.2f}x; max |log-prob difference| {diff:.2e}")
    policy.close()


if __name__ == "__main__":
    main()
