"""``agentevol``: AgentGym's AgentEvol (Xi et al., 2024), self-evolution by exploring and learning.

Start from the imitation model (``il``, reused when it was trained under the same key), then
``M`` iterations of

- *explore*: the previous iteration's model (the ``il`` model first) plays ``K`` episodes per
  instruction at an exploration temperature, over train-split instructions that include ones
  outside the expert data (the expert's ``budget.train_tasks`` first, then more of the split);
- *learn*: supervised fine-tuning **from the base model** (not the last one) on the kept
  explored trajectories merged with the original expert data, every turn of a kept episode
  prompted as at evaluation. The filter is AgentGym's reward threshold (keep episodes whose
  reward is above ``threshold``, default 0.99) or reward-weighted (every episode with a positive
  reward, its turns' loss weighted by the reward clipped to [0, 1]; expert turns weigh 1).

Each iteration's model is evaluated like the protocol evaluates (``ctx.evaluate``); the success
rates, iteration 0 being the ``il`` model, go into ``scaling[]`` on the axis ``iteration`` with
the compute spent up to that point. Defaults by budget (``None`` fields), after AgentGym's
scripts for ``paper``:

========  ==========  ================  =============  =========================
budget    iterations  epochs/iteration  learning rate  explored instructions
========  ==========  ================  =============  =========================
smoke     2           the budget's (1)  the budget's   2 x train_tasks
small     3           the budget's (2)  the budget's   2 x train_tasks
paper     4           1                 1e-5           2 x train_tasks
========  ==========  ================  =============  =========================

K = 1 (AgentGym's headline table) and temperature 1.0 (1.2 on WebShop, as AgentGym's WebShop
script) everywhere unless set.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from agentbench.backends import SamplingParams
from agentbench.method import Compute, StageCompute, TrainContext, TrainOutput
from agentbench.methods.imitation import ImitationConfig
from agentbench.models import ModelRef
from agentbench.prompting import Exchange, PromptBuilder
from agentbench.results import ScalingPoint
from agentbench.rollout import EpisodeJob, RolloutEngine
from agentbench.training.batch import TokenSample
from agentbench.training.checkpoints import load_for_training, save_checkpoint
from agentbench.training.examples import IGNORE_INDEX, ChatExample, tokenize_example
from agentbench.training.losses import token_logprobs
from agentbench.training.sft import SFTStats, shuffled_stream, steps_for
from agentbench.training.stages import learning_rate
from agentbench.training.trainer import PolicyTrainer
from agentbench.trajectory import EpisodeRecord

Filter = Literal["threshold", "weighted"]

BUDGET_DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": {"iterations": 2},
    "small": {"iterations": 3},
    "paper": {"iterations": 4, "iteration_epochs": 1.0, "learning_rate": 1e-5},
}
"""AgentEvol's defaults per budget preset (any other budget: ``small``'s)."""


class AgentEvolConfig(ImitationConfig):
    iterations: int | None = Field(None, ge=1, description="M, explore+learn iterations (None: smoke 2, small 3, "
                                                           "paper 4)")
    samples_per_task: int = Field(1, ge=1, description="K, exploration episodes per instruction (AgentGym: 1)")
    explore_temperature: float | None = Field(None, ge=0, description="exploration temperature (None: 1.2 on webshop, "
                                                              "else 1.0)")
    filter: Filter = Field("threshold", description="threshold: keep episodes with reward > threshold "
                                                    "(AgentGym's); weighted: loss weighted by the reward")
    threshold: float = Field(0.99, description="the threshold filter's reward bar (AgentGym: 0.99)")
    explore_tasks: int | None = Field(None, ge=1, description="train-split instructions explored per iteration, "
                                                              "the expert's first (None: 2 x budget.train_tasks)")
    iteration_epochs: float | None = Field(None, gt=0, description="passes over each iteration's merged data "
                                                                   "(None: paper 1, else the budget's epochs)")
    evaluate_iterations: bool = Field(True, description="evaluate every iteration's model (the scaling curve)")


@dataclass(frozen=True)
class Settings:
    """The config with every budget-dependent default resolved (written to the train log)."""

    iterations: int
    samples_per_task: int
    temperature: float
    explore_tasks: int
    iteration_epochs: float
    learning_rate: float


def resolve(ctx: TrainContext, cfg: AgentEvolConfig) -> Settings:
    defaults = BUDGET_DEFAULTS.get(ctx.budget.name, BUDGET_DEFAULTS["small"])
    lr = cfg.learning_rate or defaults.get("learning_rate") or learning_rate(ctx, cfg)
    temperature = cfg.explore_temperature if cfg.explore_temperature is not None else (1.2 if "webshop" in ctx.env_name else 1.0)
    return Settings(
        iterations=cfg.iterations or defaults["iterations"], samples_per_task=cfg.samples_per_task,
        temperature=temperature, explore_tasks=cfg.explore_tasks or 2 * ctx.budget.train_tasks,
        iteration_epochs=cfg.iteration_epochs or defaults.get("iteration_epochs") or cfg.epochs or ctx.budget.epochs,
        learning_rate=lr)


# -- explore ------------------------------------------------------------------------------

def explore(ctx: TrainContext, model: ModelRef, tasks: Sequence, k: int, temperature: float,
            seed: int, stage: str = "explore") -> tuple[list[EpisodeRecord], int]:
    """``k`` episodes per task with ``model`` at ``temperature``; returns them and the model calls."""
    policy = ctx.open_policy(model)
    try:
        sampling = SamplingParams(temperature=temperature, max_new_tokens=ctx.budget.max_new_tokens, seed=seed)
        engine = RolloutEngine(policy, ctx.make_env, ctx.prompts(), sampling, ctx.limits,
                               wave_size=ctx.budget.rollout_batch, env_name=ctx.env_name)
        jobs = [EpisodeJob(task, ctx.seed) for task in tasks for _ in range(k)]
        done = [0]

        def advance(_record: EpisodeRecord) -> None:
            done[0] += 1
            ctx.on_progress(stage, done[0], len(jobs))

        records = engine.run(jobs, on_episode=advance)
        return records, engine.model_calls
    finally:
        policy.close()


def explore_tasks(ctx: TrainContext, count: int) -> list:
    """The first ``count`` train-split tasks: the expert's tasks first, then ones it never saw."""
    env = ctx.make_env()
    try:
        tasks = list(env.tasks("train"))
    finally:
        env.close()
    return tasks[:count]


def env_steps_of(records: Sequence[EpisodeRecord]) -> int:
    return sum(1 for r in records for t in r.trajectory if t.action is not None)


# -- filter and merge ---------------------------------------------------------------------

def select_episodes(records: Sequence[EpisodeRecord], mode: Filter, threshold: float) -> list[tuple[EpisodeRecord, float]]:
    """The explored episodes that are learned from, each with its loss weight.

    ``threshold``: reward > ``threshold``, weight 1 (AgentGym's 0/1 filter); ``weighted``: every
    episode with a positive reward, weight = the reward clipped to [0, 1]."""
    if mode == "threshold":
        return [(r, 1.0) for r in records if r.reward > threshold]
    if mode == "weighted":
        return [(r, min(r.reward, 1.0)) for r in records if r.reward > 0]
    raise ValueError(f"unknown filter {mode!r}; threshold or weighted")


def episode_examples(prompts: PromptBuilder, record: EpisodeRecord, kind: str = "explored") -> list[ChatExample]:
    """One example per turn, prompted exactly as the model saw it during the episode."""
    history: list[Exchange] = []
    out: list[ChatExample] = []
    for turn in record.trajectory:
        messages = tuple(prompts.messages(history, turn.observation))
        out.append(ChatExample(messages + ({"role": "assistant", "content": turn.response},), kind=kind))
        history.append(Exchange(turn.observation, turn.response))
    return out


def merge(expert: Sequence[ChatExample], selected: Sequence[tuple[EpisodeRecord, float]],
          prompts: PromptBuilder) -> list[tuple[ChatExample, float]]:
    """The learn step's data: every expert example (weight 1), then the kept episodes' turns."""
    data = [(ex, 1.0) for ex in expert]
    for record, weight in selected:
        data.extend((ex, weight) for ex in episode_examples(prompts, record))
    return data


# -- learn --------------------------------------------------------------------------------

@dataclass
class WeightedSFTLoss:
    """Negative log-likelihood of the loss tokens, times each sequence's weight (its ``advantage``):
    reward-weighted regression; with every weight 1 it is plain SFT."""

    name: ClassVar[str] = "weighted-sft"
    needs_reference: bool = False

    def __call__(self, logits, batch):
        nll = -token_logprobs(logits, batch.targets)
        return nll * batch.advantages[:, None], {}


def weighted_samples(tokenizer, data: Sequence[tuple[ChatExample, float]], max_len: int) -> tuple[list[TokenSample], int]:
    samples: list[TokenSample] = []
    for ex, weight in data:
        t = tokenize_example(tokenizer, ex, max_len)
        if t is not None:
            samples.append(TokenSample(t.input_ids, [label != IGNORE_INDEX for label in t.labels],
                                       advantage=weight, kind=ex.kind))
    return samples, len(data) - len(samples)


def train_weighted(ctx: TrainContext, model, tokenizer, data: Sequence[tuple[ChatExample, float]], *, steps: int,
                   lr: float, config: ImitationConfig, stage: str):
    """``steps`` optimizer steps of weighted SFT with the budget's batch shape."""
    b = ctx.budget
    samples, dropped = weighted_samples(tokenizer, data, b.max_seq_len)
    if not samples:
        raise ValueError(f"stage {stage}: no trainable examples (all {dropped} were cut away)")
    trainer = PolicyTrainer(model, tokenizer, config, learning_rate=lr, total_steps=steps, seed=ctx.seed,
                            micro_batch=b.batch_size, aggregation="token-mean")
    order = shuffled_stream(len(samples), ctx.seed)
    loss = WeightedSFTLoss()
    stats = SFTStats(dropped=dropped)
    started = time.perf_counter()
    for step in range(1, steps + 1):
        m = trainer.step([samples[next(order)] for _ in range(b.batch_size * b.grad_accum)], loss)
        stats.examples += m.sequences
        stats.tokens += m.tokens
        stats.loss_tokens += m.loss_tokens
        stats.final_loss = m.loss
        log(ctx, {"stage": stage, "step": step, "loss": m.loss, "grad_norm": m.grad_norm,
                  "learning_rate": m.learning_rate})
        ctx.on_progress(stage, step, steps)
    stats.optimizer_steps = steps
    stats.wall_time_s = time.perf_counter() - started
    return trainer.merged(), stats


def log(ctx: TrainContext, line: dict[str, Any]) -> None:
    if ctx.log_path is not None:
        with open(ctx.log_path, "a") as fh:
            fh.write(json.dumps(line) + "\n")


def stage_of(name: str, stats: SFTStats) -> StageCompute:
    return StageCompute(name=name, examples=stats.examples, optimizer_steps=stats.optimizer_steps,
                        tokens=stats.tokens, loss_tokens=stats.loss_tokens, wall_time_s=stats.wall_time_s)


def total_compute(stages: Sequence[StageCompute], *, started: float, env_steps: int, model_calls: int,
                  counters: dict[str, int], **extra) -> Compute:
    return Compute(examples=sum(s.examples for s in stages), optimizer_steps=sum(s.optimizer_steps for s in stages),
                   tokens=sum(s.tokens for s in stages), loss_tokens=sum(s.loss_tokens for s in stages),
                   wall_time_s=time.perf_counter() - started, env_steps=env_steps, model_calls=model_calls,
                   stages=list(stages), counters=dict(counters), **extra)


def point(ctx: TrainContext, method: str, value: int, model: ModelRef, name: str, compute: Compute) -> ScalingPoint:
    result = ctx.evaluate(model, "test", name)
    return ScalingPoint(axis="iteration", value=value, method=method, env=ctx.env_name, split="test",
                        success_rate=result.success_rate, train=compute)


class AgentEvol:
    name: ClassVar[str] = "agentevol"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("AgentGym's AgentEvol: from il, M x (explore K episodes per instruction, "
                                  "SFT from the base on kept episodes + expert data)")
    Config = AgentEvolConfig

    def __init__(self, config: AgentEvolConfig | None = None):
        self.config = config or AgentEvolConfig()

    def train(self, ctx: TrainContext) -> TrainOutput:
        if ctx.depend_on is None:
            raise RuntimeError("agentevol needs a session that can train its imitation dependency")
        started = time.perf_counter()
        cfg = self.config
        s = resolve(ctx, cfg)
        log(ctx, {"stage": "settings", **s.__dict__, "filter": cfg.filter, "threshold": cfg.threshold})
        il = ctx.depend_on("il", ImitationConfig(**cfg.model_dump(include=set(ImitationConfig.model_fields))))
        prompts = ctx.prompts()
        expert = ctx.expert.examples(prompts)
        tasks = explore_tasks(ctx, s.explore_tasks)
        extra = {"expert_data_sha256": ctx.expert.sha256(),
                 "expert_trajectories": len({st.task_id for st in ctx.expert.steps})}
        stages = [st.model_copy(update={"name": f"il/{st.name}"}) for st in il.compute.stages]
        env_steps, model_calls = il.compute.env_steps, il.compute.model_calls
        counters: dict[str, int] = {"iterations": s.iterations, "samples_per_task": s.samples_per_task,
                                    "explored_instructions": len(tasks),
                                    "instructions_outside_expert_data": len(
                                        {t.id for t in tasks} - {st.task_id for st in ctx.expert.steps}),
                                    "expert_examples": len(expert)}
        points: list[ScalingPoint] = []

        def so_far() -> Compute:
            return total_compute(stages, started=started, env_steps=env_steps, model_calls=model_calls,
                                 counters=counters, **extra)

        if cfg.evaluate_iterations:
            points.append(point(ctx, self.name, 0, il.model, "iteration-0", so_far()))
        policy = il.model
        for m in range(1, s.iterations + 1):
            explore_started = time.perf_counter()
            records, calls = explore(ctx, policy, tasks, s.samples_per_task, s.temperature,
                                     seed=ctx.seed * 1000 + m, stage=f"iteration {m}: explore")
            env_steps += env_steps_of(records)
            model_calls += calls
            selected = select_episodes(records, cfg.filter, cfg.threshold)
            data = merge(expert, selected, prompts)
            counters.update({f"iteration_{m}_explored": len(records),
                             f"iteration_{m}_explored_successes": sum(r.success for r in records),
                             f"iteration_{m}_kept_episodes": len(selected),
                             f"iteration_{m}_kept_turns": len(data) - len(expert)})
            stages.append(StageCompute(name=f"iteration-{m}/explore",
                                       wall_time_s=time.perf_counter() - explore_started))
            steps = steps_for(len(data), s.iteration_epochs, ctx.budget.batch_size, ctx.budget.grad_accum)
            model, tokenizer = load_for_training(ctx.base_model)  # from the base, every iteration
            model, stats = train_weighted(ctx, model, tokenizer, data, steps=steps, lr=s.learning_rate, config=cfg,
                                          stage=f"iteration {m}: learn")
            stages.append(stage_of(f"iteration-{m}/learn", stats))
            counters["dropped_examples"] = counters.get("dropped_examples", 0) + stats.dropped
            ref = save_checkpoint(model, tokenizer, ctx.workdir / f"iteration-{m}" / "checkpoint", ctx.base_model,
                                  self.name)
            del model
            log(ctx, {"stage": f"iteration {m}", "explored": len(records), "kept": len(selected),
                      "explore_success": sum(r.success for r in records) / max(len(records), 1),
                      "examples": len(data), "steps": steps})
            if cfg.evaluate_iterations:
                points.append(point(ctx, self.name, m, ref, f"iteration-{m}", so_far()))
            if m > 1:  # the previous iteration's model has explored and been evaluated: not needed again
                shutil.rmtree(ctx.workdir / f"iteration-{m - 1}" / "checkpoint", ignore_errors=True)
            policy = ref
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        return TrainOutput(model=policy, compute=so_far(), scaling=points)
