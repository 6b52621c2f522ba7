"""Trajectories: what happened in an episode, turn by turn, as stored in ``episodes.jsonl``."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from agentbench.env import sha256_json


class Termination(str, Enum):
    """Why an episode ended."""

    success = "success"
    """The task was solved."""
    failure = "failure"
    """The environment ended the episode without success (e.g. fell into a hole)."""
    turn_limit = "turn_limit"
    """The agent used all its turns."""
    context_limit = "context_limit"
    """The next prompt would not fit the model's context window."""
    invalid_action = "invalid_action"
    """Too many consecutive unparsable or illegal actions."""
    env_error = "env_error"
    """The environment raised an error; the episode was abandoned and counted."""


class TurnTokens(BaseModel):
    """The exact tokens of one move, kept in memory for training (never written to
    ``episodes.jsonl``): the prompt's ids, the sampled ids and their sampling log-probs."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float] | None = None


class Turn(BaseModel):
    """One model move. Loss, when trained on, falls on ``response`` only."""

    observation: str = Field(description="the observation shown to the model before this move")
    response: str = Field(description="the model's full response")
    action: str | None = Field(description="the parsed action; None when the response had none")
    valid: bool = Field(description="False when the action was unparsable or illegal")
    reward: float = 0.0
    done: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens: TurnTokens | None = Field(None, exclude=True, description="token ids, when the rollout kept them")


class TokenCount(BaseModel):
    prompt: int = 0
    completion: int = 0


class EpisodeRecord(BaseModel):
    """One line of ``episodes.jsonl``."""

    env: str
    split: str
    task_id: str
    seed: int
    success: bool
    reward: float = Field(description="sum of rewards over the episode")
    progress: float = Field(description="progress rate at the end, in [0, 1]")
    turns: int
    invalid_actions: int
    termination: Termination
    tokens: TokenCount
    trajectory_sha256: str
    trajectory: list[Turn]
    final_observation: str = ""
    error: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.env, self.split, self.task_id, self.seed)


def trajectory_sha256(turns: list[Turn]) -> str:
    return sha256_json([t.model_dump(mode="json") for t in turns])
