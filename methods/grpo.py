"""``grpo``: multi-turn group-relative policy optimisation.

Each step draws tasks from the train split, rolls out a group of G episodes per task (every
member reset with the same task and env seed) with the policy that is being trained (the
``hf`` policy shares the trainer's module: no copy, no disk), scores each episode with the
env's reward less an invalid-action penalty, turns rewards into group-relative advantages
broadcast to every sampled token of the episode's moves, and takes one clipped policy-gradient
step (optional KL to the frozen start model, entropy bonus). Groups with zero reward variance
and episodes that end in an env error carry no gradient and are counted.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from typing import Any, ClassVar, Literal

from pydantic import Field

from agentbench.backends import SamplingParams
from agentbench.backends.hf import HFBackend
from agentbench.method import Compute, RLStep, StageCompute, TrainContext, TrainOutput
from agentbench.rollout import EpisodeJob, RolloutEngine
from agentbench.training.batch import TokenSample
from agentbench.training.checkpoints import load_for_training, save_checkpoint
from agentbench.training.losses import AGGREGATIONS, ClippedPGLoss
from agentbench.training.resume import Resume, rewind_log
from agentbench.training.rl import group_advantages, is_env_error, shaped_reward, turn_samples
from agentbench.training.stages import resume_folder
from agentbench.training.trainer import OptimConfig, PolicyTrainer

# Per budget: (steps, tasks per step, group size, learning rate). ``paper`` follows verl-agent's
# ALFWorld/WebShop scripts (16 envs x group 8, lr 1e-6); smoke and small fit a 2-core CPU: small
# (128 episodes per run) is sized so that an rl-compat run from none, il and iwm fits a few CPU
# hours there (the committed smoke run's steps of 8 episodes took 2-8 minutes each).
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"steps": 4, "tasks_per_step": 2, "group_size": 4, "learning_rate": 2e-5},
    "small": {"steps": 8, "tasks_per_step": 4, "group_size": 4, "learning_rate": 2e-5},
    "paper": {"steps": 150, "tasks_per_step": 16, "group_size": 8, "learning_rate": 1e-6},
}


class GRPOConfig(OptimConfig):
    steps: int | None = Field(None, ge=1, description="RL steps (None: the budget's)")
    tasks_per_step: int | None = Field(None, ge=1, description="tasks per step (None: the budget's)")
    group_size: int | None = Field(None, ge=2, description="episodes per task, G (None: the budget's)")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of training rollouts")
    top_p: float = Field(1.0, gt=0, le=1)
    normalise: Literal["mean", "mean_std"] = Field("mean_std", description="group advantage normalisation")
    invalid_penalty: float = Field(0.1, ge=0, description="subtracted from the reward per invalid move")
    clip_low: float = Field(0.2, ge=0)
    clip_high: float = Field(0.2, ge=0)
    kl_coef: float = Field(0.01, ge=0, description="KL-to-reference loss coefficient (0: no reference kept)")
    kl_estimator: Literal["k1", "k3"] = "k3"
    entropy_coef: float = Field(0.001, ge=0)
    aggregation: str = Field("token-mean", description=", ".join(AGGREGATIONS))
    warmup_fraction: float = Field(0.0, ge=0, lt=1)
    lr_scheduler: str = Field("constant_with_warmup", description="any transformers scheduler name")


class GRPO:
    name: ClassVar[str] = "grpo"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "multi-turn GRPO: group-relative advantages, clipped policy gradient, KL to the start"
    uses_expert: ClassVar[bool] = False
    Config = GRPOConfig

    def __init__(self, config: GRPOConfig | None = None):
        self.config = config or GRPOConfig()

    # -- settings ------------------------------------------------------------------------
    def settings(self, ctx: TrainContext) -> dict[str, Any]:
        """The config with the budget's defaults filled in (recorded in the compute record)."""
        preset = PRESETS.get(ctx.budget.name, PRESETS["smoke"])
        cfg = self.config.model_dump(mode="json")
        resolved = {k: (cfg.get(k) if cfg.get(k) is not None else v) for k, v in preset.items()}
        resolved["learning_rate"] = cfg["learning_rate"] or ctx.budget.learning_rate or preset["learning_rate"]
        return {**cfg, **resolved, "max_seq_len": ctx.budget.max_seq_len}

    def loss(self, s: dict[str, Any], seed: int) -> ClippedPGLoss:
        return ClippedPGLoss(clip_low=s["clip_low"], clip_high=s["clip_high"], kl_coef=s["kl_coef"],
                             kl_estimator=s["kl_estimator"], entropy_coef=s["entropy_coef"],
                             temperature=s["temperature"])

    # -- hooks SPEAR overrides -------------------------------------------------------------
    def reward_of(self, record, step: int, s: dict[str, Any]) -> float:
        return shaped_reward(record, s["invalid_penalty"])

    def extra_samples(self, step: int, records, rewards, advantages, s) -> tuple[list[TokenSample], dict]:
        return [], {}

    # -- the loop ----------------------------------------------------------------------------
    def train(self, ctx: TrainContext) -> TrainOutput:
        started = time.perf_counter()
        s = self.settings(ctx)
        model, tokenizer = load_for_training(ctx.base_model)
        reference = PolicyTrainer.frozen_copy(model) if s["kl_coef"] > 0 else None
        b = ctx.budget
        trainer = PolicyTrainer(model, tokenizer, self.config, learning_rate=s["learning_rate"],
                                total_steps=s["steps"], seed=ctx.seed, micro_batch=b.batch_size,
                                aggregation=s["aggregation"], norm=float(b.max_new_tokens), reference=reference)
        policy = HFBackend.sharing(trainer.model, tokenizer, ctx.base_model)
        prompts = ctx.prompts()
        tasks = list(ctx.train_tasks)
        by_id = {task.id: task for task in tasks}
        rng = random.Random(ctx.seed)
        order: list = []
        loss = self.loss(s, ctx.seed)
        curve: list[RLStep] = []
        totals = {"examples": 0, "tokens": 0, "loss_tokens": 0, "optimizer_steps": 0, "env_steps": 0, "model_calls": 0,
                  "skipped_groups": 0, "dropped_env_errors": 0, "episodes": 0}
        update_time = 0.0
        # A killed run continues from its last saved step, with the numbers it would have had.
        resume = Resume(resume_folder(ctx, "rl"), {"method": self.name, "settings": s, "seed": ctx.seed,
                                                          "tasks": list(by_id)})
        loop = resume.load(trainer)
        if loop is not None:
            rng.setstate(loop["rng"])
            order = [by_id[i] for i in loop["order"]]
            curve = [RLStep.model_validate(p) for p in loop["curve"]]
            totals, update_time = loop["totals"], loop["update_time"]
            started -= loop["elapsed"]
            self.restore(loop["method"], loss)
        rewind_log(ctx.log_path, "rl", len(curve))
        for step in range(len(curve), s["steps"]):
            ctx.on_progress("rl", step, s["steps"])
            picked = []
            for _ in range(s["tasks_per_step"]):
                if not order:
                    order = rng.sample(tasks, len(tasks))
                picked.append(order.pop())
            jobs = [EpisodeJob(task, _env_seed(ctx.seed, step, g))
                    for g, task in enumerate(picked) for _ in range(s["group_size"])]
            sampling = SamplingParams(temperature=s["temperature"], top_p=s["top_p"],
                                      max_new_tokens=b.max_new_tokens, seed=_env_seed(ctx.seed, step, -1))
            engine = RolloutEngine(policy, ctx.make_env, prompts, sampling, ctx.limits, wave_size=len(jobs),
                                   env_name=ctx.env_name, keep_tokens=True)
            t0 = time.perf_counter()
            records = engine.run(jobs)
            rollout_s = time.perf_counter() - t0
            # A group is the episodes of one (task, env seed): every member was reset alike.
            group_of = {key: g for g, key in enumerate(dict.fromkeys((j.task.id, j.seed) for j in jobs))}
            kept = [i for i, r in enumerate(records) if not is_env_error(r)]
            dropped = len(records) - len(kept)
            rewards = [self.reward_of(records[i], step, s) for i in kept]
            stats = group_advantages(rewards, [group_of[(records[i].task_id, records[i].seed)] for i in kept],
                                     s["normalise"])
            samples: list[TokenSample] = []
            for i, adv in zip(kept, stats.advantages):
                if adv is not None:
                    samples += turn_samples(records[i], adv, b.max_seq_len)
            extra, extra_metrics = self.extra_samples(step, [records[i] for i in kept], rewards, stats.advantages, s)
            samples += extra
            metrics: dict[str, float] = {}
            update_s = 0.0
            if any(x.loss_tokens for x in samples):
                m = trainer.step(samples, loss)
                update_s = m.seconds
                metrics = m.extra
                totals["examples"] += m.sequences
                totals["tokens"] += m.tokens
                totals["loss_tokens"] += m.loss_tokens
                totals["optimizer_steps"] += 1
            update_time += update_s
            moves = sum(r.turns for r in records)
            totals["env_steps"] += moves
            totals["model_calls"] += moves
            totals["skipped_groups"] += stats.skipped_groups
            totals["dropped_env_errors"] += dropped
            totals["episodes"] += len(records)
            point = RLStep(
                step=step + 1, mean_reward=sum(rewards) / max(len(rewards), 1),
                success=sum(r.success for r in records) / max(len(records), 1),
                invalid_action_rate=sum(r.invalid_actions for r in records) / max(moves, 1),
                episode_length=moves / max(len(records), 1), entropy=metrics.get("entropy"),
                kl=metrics.get("kl"), clip_fraction=metrics.get("clip_fraction"), episodes=len(records),
                skipped_groups=stats.skipped_groups, dropped_env_errors=dropped,
                trained_sequences=len(samples), rollout_s=rollout_s, update_s=update_s,
                extra={**extra_metrics, **{k: v for k, v in metrics.items()
                                           if k not in ("entropy", "kl", "clip_fraction")}})
            curve.append(point)
            if ctx.log_path is not None:
                with open(ctx.log_path, "a") as fh:
                    fh.write(json.dumps({"stage": "rl", **point.model_dump(mode="json")}) + "\n")
            if step + 1 < s["steps"] and resume.due():
                resume.save(trainer, {"rng": rng.getstate(), "order": [task.id for task in order],
                                      "curve": [p.model_dump(mode="json") for p in curve], "totals": totals,
                                      "update_time": update_time, "elapsed": time.perf_counter() - started,
                                      "method": self.resume_state(loss)})
        ctx.on_progress("rl", s["steps"], s["steps"])
        model = trainer.merged()
        ref = save_checkpoint(model, tokenizer, ctx.workdir / "checkpoint", ctx.base_model, self.name)
        wall = time.perf_counter() - started
        stage = StageCompute(name="rl", examples=totals["examples"], optimizer_steps=totals["optimizer_steps"],
                             tokens=totals["tokens"], loss_tokens=totals["loss_tokens"], wall_time_s=update_time)
        compute = Compute(
            examples=totals["examples"], optimizer_steps=totals["optimizer_steps"], tokens=totals["tokens"],
            loss_tokens=totals["loss_tokens"], wall_time_s=wall, env_steps=totals["env_steps"],
            model_calls=totals["model_calls"], stages=[stage],
            counters={"episodes": totals["episodes"], "skipped_groups": totals["skipped_groups"],
                      "dropped_env_errors": totals["dropped_env_errors"], **self.counters()},
            rl_steps=curve, settings=s)
        return TrainOutput(model=ref, compute=compute)

    def counters(self) -> dict[str, int]:
        return {}

    def resume_state(self, loss: ClippedPGLoss) -> dict[str, Any]:
        """The method's own state a resumed run needs (SPEAR: its replay buffer)."""
        return {}

    def restore(self, state: dict[str, Any], loss: ClippedPGLoss) -> None:
        """Take back :meth:`resume_state`'s output."""


def _env_seed(seed: int, step: int, group: int) -> int:
    digest = hashlib.sha256(f"grpo:{seed}:{step}:{group}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31)
