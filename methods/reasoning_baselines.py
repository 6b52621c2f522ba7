"""The Early Experience paper's reasoning baselines.

- ``long-cot``: the imitation model, prompted at test time to think step by step, with room to
  do so (more tokens per move). It evaluates the very checkpoint ``il`` trains.
- ``star``: STaR-style data. For each expert state the initial model rationalises the expert
  action; the rationale is kept only when the model, given its own rationale and no hint,
  predicts the expert's action. Kept examples are mixed with the expert data and trained for
  imitation's epoch count (as ``sr`` is).
"""

from __future__ import annotations

import time
from typing import ClassVar

from pydantic import Field

from agentbench.backends import SamplingParams
from agentbench.method import TrainContext, TrainOutput
from agentbench.methods.imitation import ImitationConfig
from agentbench.methods.rationales import clean_rationale, gate, rationale_prompt
from agentbench.prompting import THINK_LONGER
from agentbench.training.checkpoints import load_for_training, save_checkpoint
from agentbench.training.examples import ChatExample
from agentbench.training.sft import steps_for
from agentbench.training.stages import compute_from, imitation_steps, run_stage


class LongCoTConfig(ImitationConfig):
    think_tokens_factor: float = Field(4.0, ge=1, description="tokens per move at test time, times the budget's")


class LongCoT:
    name: ClassVar[str] = "long-cot"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "imitation model prompted to think step by step at test time"
    Config = LongCoTConfig

    def __init__(self, config: LongCoTConfig | None = None):
        self.config = config or LongCoTConfig()

    def train(self, ctx: TrainContext) -> TrainOutput:
        if ctx.depend_on is None:
            raise RuntimeError("long-cot needs a session that can train its imitation dependency")
        sft = ImitationConfig(**self.config.model_dump(exclude={"think_tokens_factor"}))
        imitation = ctx.depend_on("il", sft)
        prompt = ctx.prompt_config.model_copy(update={"format_instructions": THINK_LONGER})
        return TrainOutput(model=imitation.model, compute=imitation.compute, prompt=prompt,
                           max_new_tokens=round(ctx.budget.max_new_tokens * self.config.think_tokens_factor))


class STaRConfig(ImitationConfig):
    rationale_max_new_tokens: int = Field(64, ge=8)
    rationale_temperature: float = Field(0.0, ge=0, description="0: greedy rationales")


class STaR:
    name: ClassVar[str] = "star"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "STaR-style rationales for expert actions, kept when they lead to the expert action"
    Config = STaRConfig

    def __init__(self, config: STaRConfig | None = None):
        self.config = config or STaRConfig()

    def train(self, ctx: TrainContext) -> TrainOutput:
        started = time.perf_counter()
        cfg = self.config
        prompts = ctx.prompts()
        states = ctx.expert.steps
        policy = ctx.open_policy()
        counters = {"rationales_generated": 0, "rationales_kept": 0, "dropped_mismatch": 0}
        kept: list[ChatExample] = []
        chunk = ctx.budget.rollout_batch * 2
        try:
            for i in range(0, len(states), chunk):
                batch = states[i : i + chunk]
                params = SamplingParams(max_new_tokens=cfg.rationale_max_new_tokens,
                                        temperature=cfg.rationale_temperature, seed=ctx.seed + i)
                asks = [rationale_prompt(prompts.instructions, s.observation, s.action) for s in batch]
                rationales = [clean_rationale(c.text) for c in policy.generate(asks, params)]
                counters["rationales_generated"] += len(batch)
                # The model's own prediction, given its rationale but not the hint.
                checks = [prompts.messages(list(s.history), s.observation)
                          + [{"role": "assistant", "content": f"Thought: {r}\nAction:"}]
                          for s, r in zip(batch, rationales)]
                predictions = policy.generate(checks, SamplingParams(max_new_tokens=16, seed=ctx.seed + i))
                env = ctx.make_env()
                for s, r, p in zip(batch, rationales, predictions):
                    predicted = env.parse_action(f"Action: {p.text}")
                    verdict = gate(r, s.action, [])
                    if not verdict.keep:
                        counters[f"dropped_{verdict.reason}"] = counters.get(f"dropped_{verdict.reason}", 0) + 1
                    elif (predicted or "").strip().lower() != s.action.strip().lower():
                        counters["dropped_mismatch"] += 1
                    else:
                        counters["rationales_kept"] += 1
                        kept.append(ChatExample(tuple(prompts.messages(list(s.history), s.observation))
                                                + ({"role": "assistant", "content": f"Thought: {r}\nAction: {s.action}"},),
                                                kind="star"))
                env.close()
                ctx.on_progress("rationales", min(i + chunk, len(states)), len(states))
        finally:
            policy.close()
        data = ctx.expert.examples(prompts) + kept
        b = ctx.budget
        steps = steps_for(len(data), cfg.epochs or b.epochs, b.batch_size, b.grad_accum)
        model, tokenizer = load_for_training(ctx.base_model)
        model, stats = run_stage(ctx, model, tokenizer, data, steps, cfg, "star+imitation")
        ref = save_checkpoint(model, tokenizer, ctx.workdir / "checkpoint", ctx.base_model, self.name)
        counters["imitation_step_budget"] = imitation_steps(ctx, cfg.epochs)
        compute = compute_from([("star+imitation", stats)], ctx, started,
                               model_calls=2 * counters["rationales_generated"], counters=counters)
        return TrainOutput(model=ref, compute=compute)
