"""ScienceWorld's gold-path expert on sampled tasks of each split: success rate, actions to the
end, and time per episode (not a test: gold paths take up to seconds each to make).

    python benchmarks/scienceworld_expert.py [--per-split 20] [--splits train,test,ood] [--limit 160]

``--limit`` is the step cap while measuring (above the env's turn limit, so that the printed
lengths show whether the limit fits); ``--all`` plays every task of the splits.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter, defaultdict


def main() -> None:
    from agentbench.env import NoExpert
    from agentbench.envs.scienceworld import ScienceWorld

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-split", type=int, default=20)
    parser.add_argument("--splits", default="train,test,ood")
    parser.add_argument("--limit", type=int, default=160)
    parser.add_argument("--all", action="store_true", help="every task of the splits, not a sample")
    args = parser.parse_args()

    env = ScienceWorld()
    turn_limit = ScienceWorld.default_max_turns
    for split in args.splits.split(","):
        tasks = list(env.tasks(split))
        sample = tasks if args.all else random.Random(0).sample(tasks, min(args.per_split, len(tasks)))
        solved, lengths, failures, by_type = 0, [], [], defaultdict(list)
        start = time.perf_counter()
        for task in sample:
            env.reset(task)
            success, turns, why = False, 0, "limit"
            try:
                for turns in range(1, args.limit + 1):  # noqa: B007 (turns is read after the loop)
                    step = env.step(env.expert_step().action)
                    if step.done:
                        success, why = step.info.success, f"score {step.info.extra['score']}"
                        break
            except NoExpert as exc:
                why = str(exc)
            solved += success
            lengths.append(turns)
            by_type[task.spec["task"]].append(turns)
            if not success:
                failures.append(f"{task.id} ({why})")
        elapsed = time.perf_counter() - start
        over = sum(n > turn_limit for n in lengths)
        print(f"{split}: expert solved {solved}/{len(sample)} ({solved / len(sample):.0%}); actions "
              f"min {min(lengths)} median {sorted(lengths)[len(lengths) // 2]} max {max(lengths)}; "
              f"{over} over the turn limit {turn_limit}; {elapsed / len(sample):.2f} s per episode")
        for task_type, ns in sorted(by_type.items()):
            print(f"    {task_type}: {len(ns)} tasks, actions {min(ns)}-{max(ns)}")
        if failures:
            print("    failed: " + "; ".join(failures))
        print(f"    length histogram: {sorted(Counter(lengths).items())}")
    env.close()


if __name__ == "__main__":
    main()
