"""Budget presets: how much data, how many optimizer steps and how many evaluation episodes.

Every method in a protocol runs under the same budget, which is what makes them comparable:
imitation's optimizer-step count is fixed by ``train_tasks``, ``epochs`` and the batch size,
and the Early Experience methods are held to it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agentbench.errors import UnknownNameError


class Budget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="preset name (smoke, small, paper) or 'custom'")
    train_tasks: int = Field(ge=1, description="expert trajectories collected from the train split")
    eval_tasks: int | None = Field(ge=1, description="tasks evaluated per split (None: the whole split)")
    eval_seeds: int = Field(1, ge=1, description="episodes per evaluated task, with seeds 0..n-1")
    epochs: float = Field(gt=0, description="passes over the imitation data")
    batch_size: int = Field(ge=1, description="sequences per optimizer step, per device")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps")
    learning_rate: float | None = Field(None, gt=0, description="None: the model's default")
    max_seq_len: int = Field(1024, ge=64, description="training sequences are cut to this length")
    max_new_tokens: int = Field(64, ge=1, description="tokens per model move at evaluation")
    rollout_batch: int = Field(16, ge=1, description="episodes run together, one batched model call per turn")
    branching_k: int = Field(4, ge=1, description="alternative actions per expert state (iwm, sr)")
    forgetting: bool = Field(True, description="run the IF-Eval forgetting check after training")
    forgetting_prompts: int | None = Field(None, ge=1, description="IF-Eval prompts used (None: all)")
    forgetting_max_new_tokens: int = Field(
        1280, ge=16, description="tokens per IF-Eval answer (lm-eval's default 1280; less on CPU budgets)")


PRESETS: dict[str, Budget] = {
    # Minutes on a 2-core CPU with the embedded 135M model.
    "smoke": Budget(name="smoke", train_tasks=16, eval_tasks=24, epochs=1, batch_size=4, max_seq_len=768,
                    max_new_tokens=40, rollout_batch=12, branching_k=2, forgetting_prompts=50,
                    forgetting_max_new_tokens=256),
    # Tens of minutes per method on a 2-core CPU with the embedded model; enough to see large effects.
    "small": Budget(name="small", train_tasks=48, eval_tasks=64, epochs=2, batch_size=8, max_seq_len=1024,
                    max_new_tokens=48, rollout_batch=32, branching_k=2, forgetting_prompts=None,
                    forgetting_max_new_tokens=256),
    # The papers' scale (GPU): thousands of expert steps, 3 epochs, whole test sets.
    "paper": Budget(name="paper", train_tasks=1000, eval_tasks=None, eval_seeds=1, epochs=3, batch_size=16,
                    grad_accum=2, max_seq_len=4096, max_new_tokens=512, rollout_batch=64, branching_k=8),
}


def get_budget(name: str, overrides: dict | None = None) -> Budget:
    if name not in PRESETS:
        raise UnknownNameError("budget", name, PRESETS)
    budget = PRESETS[name]
    if overrides:
        from agentbench.env import make_config

        budget = make_config(Budget, {**budget.model_dump(), **overrides}, "budget")
    return budget
