"""Chat examples with loss on chosen assistant messages only, tokenised through the chat template."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentbench.errors import AgentbenchError

IGNORE_INDEX = -100


@dataclass(frozen=True)
class ChatExample:
    """A conversation and which of its assistant messages carry loss (default: all of them)."""

    messages: tuple[dict[str, str], ...]
    train_on: tuple[int, ...] | None = None
    kind: str = "expert"
    """What the example teaches (expert, world_model, reflection, ...): recorded in the train log."""

    def trained_indices(self) -> tuple[int, ...]:
        if self.train_on is not None:
            return self.train_on
        return tuple(i for i, m in enumerate(self.messages) if m["role"] == "assistant")


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]

    @property
    def loss_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def tokenize_example(tokenizer, example: ChatExample, max_len: int) -> TokenizedExample | None:
    """Token ids with labels on the trained assistant replies (and their end-of-turn token).

    Spans are found by rendering growing prefixes of the chat, so any chat template whose
    rendering of a prefix is a prefix of the whole rendering works. Returns None when cutting
    to ``max_len`` leaves no trained token.
    """
    messages = list(example.messages)
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans: list[tuple[int, int]] = []
    for i in example.trained_indices():
        if messages[i]["role"] != "assistant":
            raise AgentbenchError(f"example trains on message {i}, which is not the assistant's")
        before = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        upto = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (upto.startswith(before) and text.startswith(upto)):
            raise AgentbenchError("the chat template does not render prefixes consistently")
        spans.append((len(before), len(upto.rstrip())))
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoding["input_ids"]
    labels = [IGNORE_INDEX] * len(ids)
    for j, (start, end) in enumerate(encoding["offset_mapping"]):
        if end > start and any(s <= start and end <= e for s, e in spans):
            labels[j] = ids[j]
    ids, labels = ids[:max_len], labels[:max_len]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return TokenizedExample(ids, labels)


def tokenize_all(tokenizer, examples: Sequence[ChatExample], max_len: int) -> tuple[list[TokenizedExample], int]:
    """Tokenised examples and how many were dropped for having no trained token left."""
    out = [tokenize_example(tokenizer, ex, max_len) for ex in examples]
    kept = [t for t in out if t is not None]
    return kept, len(out) - len(kept)
