"""Early Experience (Zhang et al., 2025): learning from the agent's own alternative actions.

- ``iwm`` (implicit world modeling): one epoch of next-state prediction on the branching
  rollouts ``(s, a', s')`` (loss on ``s'`` only), then imitation, with the *total* optimizer
  steps equal to imitation learning's under the same budget.
- ``sr`` (self-reflection): the initial model explains why the expert action beats each
  alternative given both outcomes; (state -> rationale + expert action) examples that pass
  the quality gates are mixed with the expert data and trained for imitation's epoch count.
"""

from __future__ import annotations

import json
import math
import random
import time
from typing import ClassVar

from pydantic import Field

from agentbench.backends import SamplingParams
from agentbench.branching import Alternatives, Branch, BranchingData, branch_expert_states
from agentbench.method import TrainContext, TrainOutput
from agentbench.methods.imitation import ImitationConfig
from agentbench.methods.rationales import clean_rationale, gate, reflection_prompt
from agentbench.training.checkpoints import load_for_training, save_checkpoint
from agentbench.training.examples import ChatExample
from agentbench.training.sft import steps_for
from agentbench.training.stages import compute_from, imitation_steps, run_stage

WORLD_MODEL_TASK = (
    "You are modelling this environment. Given an observation and an action, write the observation "
    "the environment returns next, exactly as the environment would write it."
)


class BranchingConfig(ImitationConfig):
    k: int | None = Field(None, ge=1, description="alternative actions per expert state (None: the budget's)")
    temperature: float = Field(1.0, ge=0, description="sampling temperature of the alternatives")
    alternative_max_new_tokens: int | None = Field(None, ge=1, description="None: the budget's max_new_tokens")
    alternatives: Alternatives = Field(
        "generate", description="generate: the policy writes K responses, unparsable ones refilled with random "
                                "admissible actions (the paper's); policy: K distinct admissible actions drawn from "
                                "the policy's own scores of them, renormalised at the branching temperature")


def branching_k(ctx: TrainContext, config: BranchingConfig) -> int:
    return config.k or ctx.budget.branching_k


def collect_branches(ctx: TrainContext, config: BranchingConfig) -> BranchingData:
    """Branching rollouts from the initial policy, computed once per output folder and shared
    by every method that asks with the same settings (iwm and sr of one protocol)."""
    k = branching_k(ctx, config)
    max_new = config.alternative_max_new_tokens or ctx.budget.max_new_tokens
    key = {"expert": ctx.expert.sha256(), "model": ctx.base_model.weights_sha256(), "k": k,
           "temperature": config.temperature, "max_new_tokens": max_new, "seed": ctx.seed,
           "prompt": ctx.prompt_config.sha256(), "env": ctx.env_name,
           # 2: refills come from the branched state's own admissible actions (1 read them
           # wherever the env stood: the same list only where it does not depend on the state)
           "procedure": 2}
    if config.alternatives != "generate":  # the default's key (and its cached branches) stay as they were
        key["alternatives"] = config.alternatives
    if ctx.shared is None:
        return _branch(ctx, config, k, max_new)
    with ctx.shared.entry("branches", key) as entry:
        cached = ctx.shared.read_json(entry / "branches.json")
        if cached is not None:
            return _decode(cached, ctx)
        data = _branch(ctx, config, k, max_new)
        ctx.shared.write_json(entry / "branches.json", _encode(data))
        return data


def _branch(ctx: TrainContext, config: BranchingConfig, k: int, max_new: int) -> BranchingData:
    policy = ctx.open_policy()
    try:
        return branch_expert_states(
            ctx.expert, ctx.make_env, policy, ctx.prompts(), k=k, temperature=config.temperature,
            max_new_tokens=max_new, seed=ctx.seed, batch_size=ctx.budget.rollout_batch * 4,
            on_progress=lambda done, total: ctx.on_progress("branching", done, total),
            alternatives=config.alternatives,
        )
    finally:
        policy.close()


def _encode(data: BranchingData) -> dict:
    return {"env_steps": data.env_steps, "model_calls": data.model_calls, "counters": data.counters,
            "branches": [[b.state.task_id, b.state.index, b.action, b.response, b.next_observation, b.valid,
                          b.reward, b.done, b.refilled] for b in data.branches]}


def _decode(raw: dict, ctx: TrainContext) -> BranchingData:
    states = {(s.task_id, s.index): s for s in ctx.expert.steps}
    branches = [Branch(states[(t, i)], a, r, o, v, rw, d, f) for t, i, a, r, o, v, rw, d, f in raw["branches"]]
    return BranchingData(branches, raw["env_steps"], raw["model_calls"], raw["counters"])


# -- implicit world modeling -------------------------------------------------------------

class IWMConfig(BranchingConfig):
    world_model_max_fraction: float = Field(
        0.5, gt=0, lt=1,
        description="cap on the world-model stage's share of imitation's step budget; the rollouts are "
                    "subsampled (seeded) so that the stage stays one epoch",
    )
    summarize_observations: bool = Field(
        False, description="predict a model-written summary of the next observation instead of the full "
                           "text (the paper does so for long web pages)")
    summary_max_words: int = Field(60, ge=5)


def world_model_example(instructions: str, branch: Branch, target: str) -> ChatExample:
    return ChatExample((
        {"role": "system", "content": f"{instructions}\n\n{WORLD_MODEL_TASK}"},
        {"role": "user", "content": f"Observation:\n{branch.state.observation}\n\nAction: {branch.action}"},
        {"role": "assistant", "content": target},
    ), kind="world_model")


def summarise_observations(ctx: TrainContext, texts: list[str], max_words: int) -> list[str]:
    policy = ctx.open_policy()
    try:
        prompts = [[{"role": "user", "content": f"Summarise this observation in at most {max_words} words, "
                                                 f"keeping every fact an agent would need:\n\n{t}"}] for t in texts]
        params = SamplingParams(max_new_tokens=int(max_words * 1.6) + 8, seed=ctx.seed)
        return [c.text for c in policy.generate(prompts, params)]
    finally:
        policy.close()


class ImplicitWorldModeling:
    name: ClassVar[str] = "iwm"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Early Experience: next-state prediction on branching rollouts, then imitation"
    Config = IWMConfig

    def __init__(self, config: IWMConfig | None = None):
        self.config = config or IWMConfig()

    def train(self, ctx: TrainContext) -> TrainOutput:
        started = time.perf_counter()
        cfg = self.config
        total = imitation_steps(ctx, cfg.epochs)
        branches = collect_branches(ctx, cfg)
        instructions = ctx.prompts().instructions
        targets = [b.next_observation for b in branches.branches]
        if cfg.summarize_observations:
            targets = summarise_observations(ctx, targets, cfg.summary_max_words)
        wm = [world_model_example(instructions, b, t) for b, t in zip(branches.branches, targets)]
        b = ctx.budget
        per_step = b.batch_size * b.grad_accum
        epoch_steps = steps_for(len(wm), 1, b.batch_size, b.grad_accum) if wm else 0
        wm_steps = min(epoch_steps, math.floor(total * cfg.world_model_max_fraction))
        if wm_steps < epoch_steps:  # keep it one epoch over a seeded subsample
            wm = random.Random(ctx.seed).sample(wm, min(len(wm), wm_steps * per_step))
        model, tokenizer = load_for_training(ctx.base_model)
        stages = []
        if wm_steps > 0:
            model, stats = run_stage(ctx, model, tokenizer, wm, wm_steps, cfg, "world_model")
            stages.append(("world_model", stats))
        expert = ctx.expert.examples(ctx.prompts())
        model, stats = run_stage(ctx, model, tokenizer, expert, total - wm_steps, cfg, "imitation")
        stages.append(("imitation", stats))
        ref = save_checkpoint(model, tokenizer, ctx.workdir / "checkpoint", ctx.base_model, self.name)
        counters = {**branches.counters, "world_model_examples": len(wm), "world_model_epoch_steps": epoch_steps,
                    "imitation_step_budget": total, "branching_env_steps": branches.env_steps,
                    "branching_model_calls": branches.model_calls}
        compute = compute_from(stages, ctx, started, env_steps=branches.env_steps,
                               model_calls=branches.model_calls, counters=counters)
        return TrainOutput(model=ref, compute=compute)


# -- self-reflection ---------------------------------------------------------------------

class SRConfig(BranchingConfig):
    reflections_per_state: int | None = Field(
        None, ge=1, description="alternatives reflected on per expert state (None: all K)")
    rationale_max_new_tokens: int = Field(96, ge=8)
    rationale_temperature: float = Field(0.0, ge=0, description="0: greedy rationales")


def reflection_examples(ctx: TrainContext, cfg: SRConfig, branches: BranchingData) -> tuple[list[ChatExample], dict]:
    prompts = ctx.prompts()
    instructions = prompts.instructions
    per_state = cfg.reflections_per_state or branching_k(ctx, cfg)
    outcome = {(s.task_id, s.index): s.next_observation for s in ctx.expert.steps}
    options = {state: [b.action for b in group] for state, group in branches.by_state().items()}
    chosen: list[Branch] = []
    for group in branches.by_state().values():
        chosen.extend([b for b in group if b.next_observation != outcome[(b.state.task_id, b.state.index)]]
                      [:per_state])
    requests = [reflection_prompt(instructions, b.state.observation, b.state.action,
                                  outcome[(b.state.task_id, b.state.index)], b.action, b.next_observation)
                for b in chosen]
    policy = ctx.open_policy()
    try:
        texts = []
        step = ctx.budget.rollout_batch * 2
        params = SamplingParams(max_new_tokens=cfg.rationale_max_new_tokens, temperature=cfg.rationale_temperature,
                                seed=ctx.seed)
        for i in range(0, len(requests), step):
            texts += [c.text for c in policy.generate(requests[i : i + step], params)]
            ctx.on_progress("reflections", min(i + step, len(requests)), len(requests))
    finally:
        policy.close()
    counters = {"reflections_generated": len(texts), "reflections_kept": 0}
    examples = []
    for branch, raw in zip(chosen, texts):
        rationale = clean_rationale(raw)
        verdict = gate(rationale, branch.state.action, options[(branch.state.task_id, branch.state.index)])
        if not verdict.keep:
            counters[f"dropped_{verdict.reason}"] = counters.get(f"dropped_{verdict.reason}", 0) + 1
            continue
        counters["reflections_kept"] += 1
        s = branch.state
        messages = tuple(prompts.messages(list(s.history), s.observation))
        examples.append(ChatExample(messages + ({"role": "assistant",
                                                 "content": f"Thought: {rationale}\nAction: {s.action}"},),
                                    kind="reflection"))
    if ctx.log_path is not None:
        with open(ctx.log_path.with_name("reflections.jsonl"), "w") as fh:
            for branch, raw in zip(chosen, texts):
                fh.write(json.dumps({"task_id": branch.state.task_id, "index": branch.state.index,
                                     "expert_action": branch.state.action, "alternative": branch.action,
                                     "rationale": clean_rationale(raw)}) + "\n")
    return examples, counters


class SelfReflection:
    name: ClassVar[str] = "sr"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Early Experience: train on gated self-reflections mixed with the expert data"
    Config = SRConfig

    def __init__(self, config: SRConfig | None = None):
        self.config = config or SRConfig()

    def train(self, ctx: TrainContext) -> TrainOutput:
        started = time.perf_counter()
        cfg = self.config
        branches = collect_branches(ctx, cfg)
        reflections, counters = reflection_examples(ctx, cfg, branches)
        data = ctx.expert.examples(ctx.prompts()) + reflections
        b = ctx.budget
        steps = steps_for(len(data), cfg.epochs or b.epochs, b.batch_size, b.grad_accum)
        model, tokenizer = load_for_training(ctx.base_model)
        model, stats = run_stage(ctx, model, tokenizer, data, steps, cfg, "reflection+imitation")
        ref = save_checkpoint(model, tokenizer, ctx.workdir / "checkpoint", ctx.base_model, self.name)
        counters["imitation_step_budget"] = imitation_steps(ctx, cfg.epochs)
        counters["branching_env_steps"] = branches.env_steps
        counters["branching_model_calls"] = branches.model_calls
        compute = compute_from([("reflection+imitation", stats)], ctx, started, env_steps=branches.env_steps,
                               model_calls=branches.model_calls + counters["reflections_generated"],
                               counters=counters)
        return TrainOutput(model=ref, compute=compute)
