"""BFCL env: the expert's success rate per split and the prompt lengths it produces.

Plays the ground-truth expert on every task of each split (or ``--per-split`` of them) and
prints, per split, the success rate, mean and longest episode (actions), and the prompt length
in tokens (system prompt + observation, through the model's chat template) of every expert
state, for each ``function_docs`` style: what must fit ``RolloutLimits.max_prompt_tokens``
(4096) and the budgets' ``max_seq_len`` (768 for smoke).

    python benchmarks/bfcl_expert_and_prompts.py [--per-split 0] [--model tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    from transformers import AutoTokenizer

    from agentbench.env import SPLITS
    from agentbench.envs.bfcl import BFCL
    from agentbench.models import resolve_model
    from agentbench.prompting import PromptBuilder, PromptConfig, react_response

    parser = argparse.ArgumentParser()
    parser.add_argument("--per-split", type=int, default=0, help="tasks per split (0: all)")
    parser.add_argument("--model", default="tiny", help="whose tokenizer and chat template count the tokens")
    parser.add_argument("--styles", default="signatures,brief,json")
    parser.add_argument("--ood-scenarios", default="test", choices=["test", "all"])
    parser.add_argument("--config", default="{}", help="more env options as JSON, e.g. '{\"earlier_turns\": 1}'")
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(args.model).path)
    for style in args.styles.split(","):
        env = BFCL(BFCL.Config(function_docs=style, ood_scenarios=args.ood_scenarios, **json.loads(args.config)))
        prompts = PromptBuilder(env.instructions, PromptConfig(), BFCL.default_history_turns)
        for split in SPLITS:
            tasks = env.tasks(split)
            tasks = tasks[: args.per_split] if args.per_split else tasks
            start, solved, lengths, tokens = time.perf_counter(), 0, [], []
            for task in tasks:
                observation, steps = env.reset(task), 0
                for _ in range(4 * BFCL.default_max_turns):
                    move = env.expert_step()
                    chat = prompts.messages([], observation) + [
                        {"role": "assistant", "content": react_response(move.action, move.thought)}]
                    tokens.append(len(tokenizer(tokenizer.apply_chat_template(chat, tokenize=False),
                                                add_special_tokens=False)["input_ids"]))
                    step = env.step(move.action)
                    steps += 1
                    observation = step.observation
                    if step.done:
                        solved += step.info.success
                        break
                lengths.append(steps)
            wall = time.perf_counter() - start
            over = {limit: sum(t > limit for t in tokens) / len(tokens) for limit in (768, 1024, 4096)}
            print(f"{style:10s} {split:5s} expert {solved}/{len(tasks)} = {solved / len(tasks):.3f}  "
                  f"actions mean {statistics.mean(lengths):.1f} max {max(lengths)}  "
                  f"tokens (prompt+expert reply) median {statistics.median(tokens):.0f} max {max(tokens)}  "
                  f"share >768 {over[768]:.2f} >1024 {over[1024]:.2f} >4096 {over[4096]:.2f}  ({wall:.1f}s)")


if __name__ == "__main__":
    main()
