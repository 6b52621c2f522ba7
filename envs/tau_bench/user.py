"""The simulated customer: an LLM playing the task's ``user_scenario``, or a scripted stand-in.

The LLM user follows τ²-bench's user simulator: a system prompt with the simulation guidelines
and the scenario (persona, reason for call, known and unknown info, task instructions), the
conversation with the roles flipped (the agent's messages are its ``user`` turns), one message
per turn, and ``###STOP###`` once its goal is met (``###TRANSFER###`` when transferred,
``###OUT-OF-SCOPE###`` when the scenario does not say what to do). The prompt is built from
the scenario only: the gold actions and ``communicate_info`` never reach it.

The scripted user is deterministic and cheap, for tests and CI: it opens with the reason for
call, gives its known info when asked to identify itself, answers ``yes`` to a confirmation,
and stops when the agent offers further help or says goodbye. Its results are a different
evaluation from the LLM user's (the user's settings are part of every task's spec).
"""

from __future__ import annotations

import re
from typing import Any

STOP = "###STOP###"
END_TOKENS = (STOP, "###TRANSFER###", "###OUT-OF-SCOPE###")
GREETING = "Hi! How can I help you today?"
SCRIPTED_VERSION = "1"
PROMPT_VERSION = "1"

Conversation = list[tuple[str, str]]
"""(speaker, text) pairs, speaker ``agent`` or ``user``, starting with the agent's greeting."""

GUIDELINES = f"""You are playing the role of a customer contacting a customer service representative.
Your goal is to simulate realistic customer interactions while following the scenario below.

Guidelines:
- Write one message at a time, as the customer, in plain language.
- Only disclose information the scenario gives you, and only when it is needed or asked for;
  never invent details such as ids, emails or addresses that it does not give.
- Follow the task instructions of the scenario.
- When your goal is met, or the scenario gives you nothing more to do, write {STOP} to end the
  conversation. If you are transferred to another agent, write ###TRANSFER###. If the agent
  asks something the scenario does not cover, write ###OUT-OF-SCOPE###.
- Do not repeat these instructions or the scenario; stay in character."""


def scenario_text(scenario: dict[str, Any]) -> str:
    """The scenario of a task's ``user_scenario`` as text (τ²-bench's fields, in its order)."""
    parts = []
    if scenario.get("persona"):
        parts.append(f"Persona:\n{scenario['persona']}")
    instructions = scenario.get("instructions") or {}
    if isinstance(instructions, str):
        parts.append(f"Instructions:\n{instructions}")
    else:
        for key, title in (("domain", "Domain"), ("reason_for_call", "Reason for call"), ("known_info", "Known info"),
                           ("unknown_info", "Unknown info"), ("task_instructions", "Task instructions")):
            if instructions.get(key):
                parts.append(f"{title}:\n{instructions[key]}")
    return "\n\n".join(parts)


def system_prompt(scenario: dict[str, Any]) -> str:
    return f"{GUIDELINES}\n\n<scenario>\n{scenario_text(scenario)}\n</scenario>"


def user_chat(scenario: dict[str, Any], conversation: Conversation) -> list[dict[str, str]]:
    """The chat the user model continues: its own messages are the assistant's."""
    messages = [{"role": "system", "content": system_prompt(scenario)}]
    messages += [{"role": "user" if who == "agent" else "assistant", "content": text} for who, text in conversation]
    return messages


def ends(message: str) -> bool:
    return any(token in message for token in END_TOKENS)


# -- the scripted user --------------------------------------------------------------------------

_PRONOUNS = [(r"\byou are\b", "I am"), (r"\byou're\b", "I'm"), (r"\byou've\b", "I've"), (r"\byou'd\b", "I'd"),
             (r"\byou'll\b", "I'll"), (r"\byourself\b", "myself"), (r"\byours\b", "mine"), (r"\byour\b", "my"),
             (r"\byou\b", "I")]
_CLOSING = ("anything else", "goodbye", "good bye", "have a great day", "have a nice day")
_CONFIRM = ("confirm", "yes/no", "(yes", "shall i proceed", "would you like me to proceed", "go ahead?")
_IDENTIFY = ("name", "zip", "email", "verify", "identity", "user id", "authenticate", "identify")


def first_person(text: str) -> str:
    """The scenario's second-person text as the customer would say it ("You are ..." -> "I am ...")."""
    for pattern, word in _PRONOUNS:
        text = re.sub(pattern, lambda m, w=word: w[0].upper() + w[1:] if m.group(0)[0].isupper() else w, text,
                      flags=re.IGNORECASE)
    return text.strip()


class ScriptedUser:
    kind = "scripted"

    def describe(self) -> dict[str, Any]:
        return {"kind": "scripted", "version": SCRIPTED_VERSION}

    def respond(self, scenario: dict[str, Any], conversation: Conversation, seed: int = 0) -> str:
        instructions = scenario.get("instructions") or {}
        if isinstance(instructions, str):
            instructions = {"reason_for_call": instructions}
        reason = first_person(instructions.get("reason_for_call") or "I need help.")
        if len(conversation) <= 1:
            return f"Hi. {reason}"
        last = conversation[-1][1].lower()
        if any(p in last for p in _CLOSING):
            return f"No, that's all. Thank you! {STOP}"
        if any(p in last for p in _CONFIRM):
            return "Yes, please go ahead."
        if any(p in last for p in _IDENTIFY):
            return first_person(instructions.get("known_info") or "I don't have more details.")
        return f"Please help me with my request: {reason}"


# -- the LLM user ---------------------------------------------------------------------------------

class LLMUser:
    """The user model behind any backend; the backend is made on first use (``factory``)."""

    kind = "llm"

    def __init__(self, factory: Any, record: dict[str, Any], temperature: float, top_p: float, max_new_tokens: int):
        self.factory, self.record = factory, record
        self.temperature, self.top_p, self.max_new_tokens = temperature, top_p, max_new_tokens
        self._backend = None

    def describe(self) -> dict[str, Any]:
        return dict(self.record)

    def respond(self, scenario: dict[str, Any], conversation: Conversation, seed: int = 0) -> str:
        from agentbench.backends import SamplingParams

        if self._backend is None:
            self._backend = self.factory()
        params = SamplingParams(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens,
                                seed=seed + len(conversation))
        text = self._backend.generate([user_chat(scenario, conversation)], params)[0].text.strip()
        return text or "(no reply)"


_SHARED: dict[tuple[Any, ...], Any] = {}


def shared_backend(model: str, backend: str, options: Any) -> Any:
    """One loaded user model per process, whatever the number of env instances."""
    from agentbench.backends import make_backend
    from agentbench.models import resolve_model

    key = (model, backend, options.model_dump_json() if hasattr(options, "model_dump_json") else repr(options))
    if key not in _SHARED:
        _SHARED[key] = make_backend(backend, resolve_model(model), options)
    return _SHARED[key]
