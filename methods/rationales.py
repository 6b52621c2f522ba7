"""Rationales for self-reflection and STaR: the prompts that ask for them, and the quality
gates that drop bad ones (each drop is counted in the run's compute counters)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

LEAK_WORDS = ("expert", "ground truth", "ground-truth", "gold action", "gold standard", "demonstrat",
              "annotat", "label", "reference action", "the correct answer is given")


def reflection_prompt(instructions: str, observation: str, expert_action: str, expert_outcome: str,
                      alternative: str, alternative_outcome: str) -> list[dict[str, str]]:
    """Ask the model why ``expert_action`` beats ``alternative`` given both outcomes."""
    return [
        {"role": "system", "content": instructions},
        {"role": "user", "content": (
            f"Current observation:\n{observation}\n\n"
            f"If you take the action '{expert_action}', the result is:\n{expert_outcome}\n\n"
            f"If you take the action '{alternative}', the result is:\n{alternative_outcome}\n\n"
            f"In two or three sentences, explain why '{expert_action}' is the better action here than "
            f"'{alternative}'. Name the actions; do not repeat yourself."
        )},
    ]


def rationale_prompt(instructions: str, observation: str, action: str) -> list[dict[str, str]]:
    """STaR's rationalisation: explain why ``action`` is right in this state."""
    return [
        {"role": "system", "content": instructions},
        {"role": "user", "content": (
            f"Current observation:\n{observation}\n\n"
            f"The best action here is '{action}'. In one or two sentences, explain why '{action}' is the "
            f"best action in this situation."
        )},
    ]


@dataclass(frozen=True)
class GateVerdict:
    keep: bool
    reason: str | None = None
    """Why the rationale was dropped: leak, contradiction, repetition or degenerate."""


def _mentions(text: str, action: str) -> str:
    return r"(?<![\w])" + re.escape(action.lower()) + r"(?![\w])"


def leaks_label(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in LEAK_WORDS)


def contradicts(text: str, expert_action: str, alternatives: Sequence[str]) -> bool:
    """True when the rationale argues for an alternative, or against the expert action."""
    lowered = text.lower()
    good = r"(is|are|would be|seems|looks)\s+(the\s+)?(better|best|safer|right|correct|preferable|optimal)"
    bad = r"(is|would be|seems)\s+(a\s+)?(worse|wrong|mistake|dangerous|unsafe|bad|risky)"
    choose = r"(should|better to|choose|pick|prefer|go with)\s+(to\s+)?(move\s+|go\s+)?"
    for alt in alternatives:
        if alt.lower() == expert_action.lower():
            continue
        a = _mentions(lowered, alt)
        if re.search(a + r"[^.]{0,40}?" + good, lowered) or re.search(choose + a, lowered):
            return True
    e = _mentions(lowered, expert_action)
    return bool(re.search(e + r"[^.]{0,40}?" + bad, lowered))


def repeats_itself(text: str) -> bool:
    words = re.findall(r"\w+", text.lower())
    if any(len(set(words[i : i + 5])) == 1 for i in range(max(0, len(words) - 4))):
        return True
    sentences = [s.strip() for s in re.split(r"[.!?\n]+", text.lower()) if len(s.strip()) > 10]
    if len(sentences) != len(set(sentences)):
        return True
    trigrams = list(zip(words, words[1:], words[2:]))
    if len(trigrams) >= 12:
        most = Counter(trigrams).most_common(1)[0][1]
        return most >= 3 or len(set(trigrams)) / len(trigrams) < 0.7
    return False


def gate(text: str, expert_action: str, alternatives: Sequence[str]) -> GateVerdict:
    """Apply every quality gate, cheapest first."""
    if len(re.findall(r"\w+", text)) < 4:
        return GateVerdict(False, "degenerate")
    if leaks_label(text):
        return GateVerdict(False, "leak")
    if repeats_itself(text):
        return GateVerdict(False, "repetition")
    if contradicts(text, expert_action, alternatives):
        return GateVerdict(False, "contradiction")
    return GateVerdict(True)


def clean_rationale(text: str) -> str:
    """One paragraph, without a trailing action line the model may have added."""
    text = re.split(r"\n\s*action\s*:", text, flags=re.IGNORECASE)[0]
    text = re.sub(r"^\s*thought\s*:\s*", "", text, flags=re.IGNORECASE)
    return " ".join(text.split())
