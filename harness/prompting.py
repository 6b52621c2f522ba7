"""How an episode becomes chat messages, and how an expert move becomes a response.

One ``PromptBuilder`` serves evaluation, expert data and every trainer, so that a model is
trained on exactly the prompts it is evaluated on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from agentbench.env import sha256_json

REACT_FORMAT = (
    "Reply in exactly this format:\n"
    "Thought: <one short sentence of reasoning>\n"
    "Action: <your action>"
)
THINK_LONGER = (
    "Before acting, think step by step: consider every possible action and its consequence, "
    "then pick the best one. Reply in exactly this format:\n"
    "Thought: <your step-by-step reasoning>\n"
    "Action: <your action>"
)


class PromptConfig(BaseModel):
    """The prompt format of an evaluation (recorded in results and hashed)."""

    model_config = ConfigDict(frozen=True)

    format_instructions: str = Field(REACT_FORMAT, description="how the agent must format replies")
    history_turns: int | None = Field(
        None, description="past (observation, response) pairs shown; None: the env's default"
    )

    def sha256(self) -> str:
        return sha256_json(self.model_dump())


@dataclass(frozen=True)
class Exchange:
    """One past turn as the model saw it: the observation and the model's full response."""

    observation: str
    response: str


Messages = list[dict[str, str]]


class PromptBuilder:
    def __init__(self, instructions: str, config: PromptConfig, default_history: int | None):
        self.instructions = instructions
        self.config = config
        self.history_turns = config.history_turns if config.history_turns is not None else default_history

    @property
    def system_prompt(self) -> str:
        return f"{self.instructions}\n\n{self.config.format_instructions}"

    def messages(self, history: Sequence[Exchange], observation: str) -> Messages:
        """The chat for the next move: system prompt, the visible past, the new observation."""
        shown = history if self.history_turns is None else history[len(history) - self.history_turns :]
        msgs: Messages = [{"role": "system", "content": self.system_prompt}]
        for past in shown:
            msgs.append({"role": "user", "content": past.observation})
            msgs.append({"role": "assistant", "content": past.response})
        msgs.append({"role": "user", "content": observation})
        return msgs


def react_response(action: str, thought: str = "") -> str:
    """The response an expert (or a rationale-augmented trainer) would have given."""
    return f"Thought: {thought}\nAction: {action}" if thought else f"Action: {action}"
