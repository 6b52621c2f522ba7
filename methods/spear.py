"""``spear``: GRPO with self-imitation and progressive exploration (SPEAR, Li et al. 2025),
written from the paper: each part can be switched off for ablations.

- *Intrinsic reward*: early on, each episode earns ``intrinsic_coef`` x its fraction of valid
  moves (skill-level exploration: using the env's tools/actions at all), decayed to 0 with a
  cosine over ``intrinsic_steps``.
- *Self-imitation*: successful trajectories (reward >= ``replay_min_reward``, positive advantage)
  enter a replay buffer (``replay_capacity``) with the step they were collected at; entries older
  than ``replay_staleness`` steps expire. Each step replays up to ``replay_batch`` of them with
  their advantage *recalibrated* against the current policy (reward less the median of the last
  ``baseline_window`` rollout rewards; only non-negative ones kept), through the same clipped
  loss with their sampling-time log-probs as the old policy; their advantages are scaled by the
  self-imitation coefficient, ramped in from 0 to ``sil_coef`` with a cosine over ``sil_ramp_steps``.
- *Covariance clipping*: tokens whose centred log-prob x advantage product falls in
  ``(cov_lower, cov_upper)`` are candidates; a random ``cov_clip_ratio`` of the loss tokens among
  them get no policy-gradient term (against entropy collapse / over-confidence).

``paper`` defaults follow SPEAR's public settings (clip 0.2/0.28, no KL, no std normalisation,
seq-mean-token-sum-norm, buffer 2048, ramp 200 steps, median baseline over 10,240 rewards).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from agentbench.method import TrainContext
from agentbench.methods.grpo import GRPO, GRPOConfig
from agentbench.training.batch import TokenSample
from agentbench.training.losses import ClippedPGLoss
from agentbench.training.rl import (
    ReplayBuffer,
    cosine_decay,
    cosine_ramp,
    is_env_error,
    shaped_reward,
    turn_samples,
)


class SPEARConfig(GRPOConfig):
    clip_high: float = Field(0.28, ge=0)
    kl_coef: float = Field(0.0, ge=0, description="SPEAR keeps no KL term")
    normalise: Literal["mean", "mean_std"] = Field("mean", description="no std normalisation")
    aggregation: str = Field("seq-mean-token-sum-norm")
    self_imitation: bool = Field(True, description="replay successful trajectories (off: ablation)")
    replay_capacity: int = Field(2048, ge=1)
    replay_staleness: int = Field(5, ge=0, description="steps a replayed trajectory may lag the policy")
    replay_min_reward: float = Field(1.0, description="reward a trajectory needs to enter the buffer")
    replay_batch: int | None = Field(None, ge=1, description="trajectories replayed per step (None: tasks_per_step)")
    baseline_window: int = Field(10240, ge=1, description="recent rewards whose median recalibrates advantages")
    sil_coef: float = Field(1.0, ge=0)
    sil_ramp_steps: int | None = Field(None, ge=0, description="cosine ramp of sil_coef (None: half the steps)")
    intrinsic_coef: float = Field(0.1, ge=0, description="intrinsic reward for valid moves at step 0 (0: off)")
    intrinsic_steps: int | None = Field(None, ge=0, description="cosine decay to 0 (None: half the steps)")
    cov_clip_ratio: float = Field(0.02, ge=0, le=1, description="fraction of loss tokens covariance-clipped (0: off)")
    cov_lower: float = Field(2.0)
    cov_upper: float = Field(60.0)


class SPEAR(GRPO):
    name: ClassVar[str] = "spear"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("GRPO + self-imitation from a replay buffer with recalibrated advantages, "
                                  "intrinsic exploration reward, covariance clipping")
    Config = SPEARConfig

    def __init__(self, config: SPEARConfig | None = None):
        super().__init__(config or SPEARConfig())
        self.buffer: ReplayBuffer | None = None
        self._counts = {"replay_added": 0, "replay_used": 0, "replay_negative": 0}

    def settings(self, ctx: TrainContext) -> dict[str, Any]:
        s = super().settings(ctx)
        half = max(1, s["steps"] // 2)
        s["sil_ramp_steps"] = s["sil_ramp_steps"] if s["sil_ramp_steps"] is not None else half
        s["intrinsic_steps"] = s["intrinsic_steps"] if s["intrinsic_steps"] is not None else half
        s["replay_batch"] = s["replay_batch"] or s["tasks_per_step"]
        self.buffer = ReplayBuffer(capacity=s["replay_capacity"], staleness=s["replay_staleness"],
                                   min_reward=s["replay_min_reward"], window=s["baseline_window"])
        return s

    def loss(self, s: dict[str, Any], seed: int) -> ClippedPGLoss:
        loss = super().loss(s, seed)
        loss.cov_clip_ratio = s["cov_clip_ratio"]
        loss.cov_lower, loss.cov_upper = s["cov_lower"], s["cov_upper"]
        loss.generator = torch.Generator().manual_seed(seed)
        return loss

    def reward_of(self, record, step: int, s: dict[str, Any]) -> float:
        reward = shaped_reward(record, s["invalid_penalty"])
        if s["intrinsic_coef"] > 0 and record.turns:
            valid = (record.turns - record.invalid_actions) / record.turns
            reward += s["intrinsic_coef"] * cosine_decay(step, s["intrinsic_steps"]) * valid
        return reward

    def extra_samples(self, step, records, rewards, advantages, s) -> tuple[list[TokenSample], dict]:
        buffer = self.buffer
        # The baseline tracks the env's outcome reward of the current policy (no shaping).
        buffer.observe([r.reward for r in records if not is_env_error(r)])
        metrics: dict[str, float] = {"replay_size": float(len(buffer.entries)), "replay_baseline": buffer.baseline()}
        if not s["self_imitation"]:
            return [], metrics
        coef = s["sil_coef"] * cosine_ramp(step, s["sil_ramp_steps"])
        chosen, negative = buffer.draw(step, s["replay_batch"]) if coef > 0 else ([], 0)
        out: list[TokenSample] = []
        for entry, advantage in chosen:
            for sample in entry.samples:
                out.append(TokenSample(sample.input_ids, sample.loss_mask, advantage * coef, sample.old_logprobs,
                                       kind="replay"))
        self._counts["replay_used"] += len(chosen)
        self._counts["replay_negative"] += negative
        # Admit this step's successes after drawing, so a trajectory is not replayed in its own step.
        for record, adv in zip(records, advantages):
            if adv is not None and buffer.add(turn_samples(record, 0.0, s["max_seq_len"]), record.reward, adv, step):
                self._counts["replay_added"] += 1
        metrics.update({"sil_coef": coef, "replayed": float(len(chosen))})
        return out, metrics

    def counters(self) -> dict[str, int]:
        return dict(self._counts)

    def resume_state(self, loss: ClippedPGLoss) -> dict[str, Any]:
        return {"buffer": self.buffer, "counts": dict(self._counts),
                "generator": loss.generator.get_state() if loss.generator is not None else None}

    def restore(self, state: dict[str, Any], loss: ClippedPGLoss) -> None:
        self.buffer = state["buffer"]
        self._counts = dict(state["counts"])
        if state["generator"] is not None:
            loss.generator.set_state(state["generator"])
