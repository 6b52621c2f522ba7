"""Branching from expert states (Early Experience): K alternative actions per expert state,
sampled from the initial policy and executed from that same state.

Each state is reached once (by replaying the expert prefix); where the env can snapshot, the
alternatives all start from a restored snapshot, else each replays the prefix again.

Two ways to pick the alternatives (``alternatives``):

- ``generate`` (the paper's): the policy writes ``k`` free responses at the branching temperature;
  invalid or duplicate samples are refilled with random admissible actions where the env lists them;
- ``policy``: the policy's own distribution over the env's admissible actions. Every admissible
  action other than the expert's is scored with ``score`` as the response ``Action: <a>`` (the
  log-prob of the whole response given the state's prompt), the scores are renormalised over
  those actions at the branching temperature, ``p(a) ~ exp(log p(a) / T)``, and ``k`` distinct
  actions are drawn without replacement (T = 0: the ``k`` most likely). Nothing is refilled at
  random, so a world model learns the outcomes of the moves the policy itself would make.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agentbench.backends import SCORE, Backend, SamplingParams, ScoreRequest, require
from agentbench.env import Env, Step, Task, replay
from agentbench.expert import ExpertData, ExpertStepRecord
from agentbench.prompting import Messages, PromptBuilder, react_response

Alternatives = Literal["generate", "policy"]
ALTERNATIVES: tuple[str, ...] = ("generate", "policy")


@dataclass(frozen=True)
class Branch:
    """One alternative action from an expert state, and where it led."""

    state: ExpertStepRecord
    action: str
    response: str
    """The policy's full response (for refilled actions: a bare ReAct action line)."""
    next_observation: str
    valid: bool
    reward: float
    done: bool
    refilled: bool


@dataclass
class BranchingData:
    branches: list[Branch] = field(default_factory=list)
    env_steps: int = 0
    model_calls: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    def by_state(self) -> dict[tuple[str, int], list[Branch]]:
        grouped: dict[tuple[str, int], list[Branch]] = {}
        for b in self.branches:
            grouped.setdefault((b.state.task_id, b.state.index), []).append(b)
        return grouped


def _distinct_alternatives(env: Env, state: ExpertStepRecord, responses: list[str], k: int,
                           rng: random.Random, admissible_here: Callable[[], list[str] | None],
                           ) -> tuple[list[tuple[str, str, bool]], dict[str, int]]:
    """Up to ``k`` (action, response, refilled) alternatives, distinct and != the expert's; refills
    come from ``admissible_here()``, the state's own admissible actions (asked only when needed)."""
    counts = {"unparsable_samples": 0, "duplicate_samples": 0, "expert_samples": 0, "refilled": 0}
    chosen: list[tuple[str, str, bool]] = []
    seen = {state.action.strip().lower()}
    for response in responses:
        action = env.parse_action(response)
        if action is None:
            counts["unparsable_samples"] += 1
            continue
        key = action.strip().lower()
        if key == state.action.strip().lower():
            counts["expert_samples"] += 1
        elif key in seen:
            counts["duplicate_samples"] += 1
        else:
            seen.add(key)
            chosen.append((action, response, False))
    if len(chosen) >= k:
        return chosen[:k], counts
    admissible = [a for a in (admissible_here() or []) if a.strip().lower() not in seen]
    rng.shuffle(admissible)
    while len(chosen) < k and admissible:
        action = admissible.pop()
        chosen.append((action, react_response(action), True))
        counts["refilled"] += 1
    return chosen[:k], counts


def branch_expert_states(
    expert: ExpertData,
    make_env: Callable[[], Env],
    policy: Backend,
    prompts: PromptBuilder,
    *,
    k: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    batch_size: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
    alternatives: Alternatives = "generate",
) -> BranchingData:
    """Sample ``k`` alternatives per expert state from ``policy`` and execute each one."""
    if alternatives == "policy":
        return _branch_from_policy_scores(expert, make_env, policy, prompts, k=k, temperature=temperature,
                                          seed=seed, batch_size=batch_size, on_progress=on_progress)
    if alternatives != "generate":
        raise ValueError(f"unknown alternatives mode {alternatives!r}; one of {', '.join(ALTERNATIVES)}")
    data = BranchingData()
    states = expert.steps
    sampling = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    env = make_env()
    rng = random.Random(seed)
    counters: dict[str, int] = {}
    try:
        for start in range(0, len(states), batch_size):
            chunk = states[start : start + batch_size]
            requests = [prompts.messages(list(s.history), s.observation) for s in chunk for _ in range(k)]
            completions = policy.generate(requests, sampling.model_copy(update={"seed": seed + start}))
            data.model_calls += len(completions)
            for i, state in enumerate(chunk):
                responses = [c.text for c in completions[i * k : (i + 1) * k]]
                alternatives, counts = _distinct_alternatives(
                    env, state, responses, k, rng, lambda state=state: _admissible_at(env, expert, state, data))
                for key, value in counts.items():
                    counters[key] = counters.get(key, 0) + value
                data.branches.extend(_execute(env, expert, state, alternatives, data))
            if on_progress is not None:
                on_progress(min(start + batch_size, len(states)), len(states))
    finally:
        env.close()
    counters["states"] = len(states)
    counters["branches"] = len(data.branches)
    data.counters = counters
    return data


def branch_from_state(env: Env, task: Task, state: ExpertStepRecord, actions: list[str]) -> tuple[list[Step], int]:
    """Execute each action from ``state`` (reached by replaying its prefix); leaves ``env`` in
    ``state`` afterwards. Returns the steps and the env steps spent."""
    spent = len(state.prefix)
    replay(env, task, state.seed, state.prefix)
    # read off the instance: a remote env reports whether its server's env can snapshot
    snapshot = env.snapshot() if getattr(env, "supports_snapshot", False) else None
    steps = []
    for i, action in enumerate(actions):
        if i > 0:
            if snapshot is not None:
                env.restore(snapshot)
            else:
                replay(env, task, state.seed, state.prefix)
                spent += len(state.prefix)
        steps.append(env.step(action))
        spent += 1
    if snapshot is not None:
        env.restore(snapshot)
    else:
        replay(env, task, state.seed, state.prefix)
        spent += len(state.prefix)
    return steps, spent


def _admissible_at(env: Env, expert: ExpertData, state: ExpertStepRecord, data: BranchingData) -> list[str] | None:
    """The admissible actions of ``state`` itself: the env replayed to it first (it may stand in
    another state, or in none yet, and what is admissible can depend on where it stands)."""
    replay(env, expert.task(state.task_id), state.seed, state.prefix)
    data.env_steps += len(state.prefix)
    return env.admissible_actions()


def _execute(env: Env, expert: ExpertData, state: ExpertStepRecord,
             alternatives: list[tuple[str, str, bool]], data: BranchingData) -> list[Branch]:
    steps, spent = branch_from_state(env, expert.task(state.task_id), state, [a for a, _, _ in alternatives])
    data.env_steps += spent
    return [Branch(state, action, response, step.observation, step.info.valid, step.reward, step.done, refilled)
            for (action, response, refilled), step in zip(alternatives, steps)]


# -- alternatives sampled from the policy's distribution over admissible actions -----------

def completion_request(policy: Backend, messages: Messages, response: str) -> ScoreRequest:
    """``response`` as the assistant's reply to ``messages``, in the policy's own tokens: the
    prompt as generation sees it, the response as the chat template continues it."""
    prompt_ids, full = policy.encode([messages, [*messages, {"role": "assistant", "content": response}]])
    shared = 0
    while shared < min(len(prompt_ids), len(full)) and prompt_ids[shared] == full[shared]:
        shared += 1
    return ScoreRequest(full[:shared], full[shared:])


def policy_distribution(scores: Sequence[float], temperature: float) -> list[float]:
    """Probabilities ``~ exp(score / T)`` renormalised over the given actions; T = 0: all mass
    on the best (ties share it)."""
    if not scores:
        return []
    if temperature <= 0:
        best = max(scores)
        top = [s == best for s in scores]
        return [t / sum(top) for t in top]
    scaled = [s / temperature for s in scores]
    peak = max(scaled)
    weights = [math.exp(v - peak) for v in scaled]
    total = sum(weights)
    return [w / total for w in weights]


def sample_without_replacement(actions: Sequence[str], probs: Sequence[float], k: int,
                               rng: random.Random) -> list[str]:
    """``k`` distinct actions, each draw from ``probs`` renormalised over what is left."""
    left = list(zip(actions, probs))
    chosen: list[str] = []
    while left and len(chosen) < k:
        total = sum(p for _, p in left)
        if total <= 0:  # only zero-probability actions left (T = 0): keep the given order
            index = 0
        else:
            x, index = rng.random() * total, len(left) - 1
            for i, (_, p) in enumerate(left):
                x -= p
                if x < 0:
                    index = i
                    break
        chosen.append(left.pop(index)[0])
    return chosen


def score_actions(policy: Backend, messages: list[Messages], actions: list[list[str]]) -> list[list[float]]:
    """Log-prob of the response ``Action: <a>`` for every action of every state, one batched call."""
    requests = [completion_request(policy, m, react_response(a)) for m, acts in zip(messages, actions)
                for a in acts]
    scored = policy.score(requests) if requests else []
    out: list[list[float]] = []
    at = 0
    for acts in actions:
        out.append([sum(s.logprobs) for s in scored[at : at + len(acts)]])
        at += len(acts)
    return out


def _branch_from_policy_scores(expert: ExpertData, make_env: Callable[[], Env], policy: Backend,
                               prompts: PromptBuilder, *, k: int, temperature: float, seed: int, batch_size: int,
                               on_progress: Callable[[int, int], None] | None) -> BranchingData:
    require(policy, SCORE, "branching with alternatives=policy")
    data = BranchingData()
    states = expert.steps
    env = make_env()
    rng = random.Random(seed)
    counters = {"policy_sampled": 0, "scored_actions": 0, "states_without_admissible_actions": 0,
                "admissible_env_steps": 0}
    try:
        for start in range(0, len(states), batch_size):
            chunk = states[start : start + batch_size]
            options: list[list[str]] = []
            for state in chunk:  # the admissible actions of the state itself, read after replaying to it
                replay(env, expert.task(state.task_id), state.seed, state.prefix)
                counters["admissible_env_steps"] += len(state.prefix)
                data.env_steps += len(state.prefix)
                listed = env.admissible_actions()
                if listed is None:
                    raise ValueError(f"alternatives=policy needs an env that lists its admissible actions; "
                                     f"{type(env).__name__} does not")
                expert_key = state.action.strip().lower()
                options.append(list(dict.fromkeys(a for a in listed if a.strip().lower() != expert_key)))
            messages = [prompts.messages(list(s.history), s.observation) for s in chunk]
            scores = score_actions(policy, messages, options)
            data.model_calls += sum(len(o) for o in options)
            counters["scored_actions"] += sum(len(o) for o in options)
            for state, acts, logps in zip(chunk, options, scores):
                if not acts:
                    counters["states_without_admissible_actions"] += 1
                    continue
                if temperature <= 0:  # the k most likely
                    picked = [a for _, a in sorted(zip(logps, acts), key=lambda x: -x[0])][:k]
                else:
                    picked = sample_without_replacement(acts, policy_distribution(logps, temperature), k, rng)
                counters["policy_sampled"] += len(picked)
                data.branches.extend(_execute(env, expert, state, [(a, react_response(a), False) for a in picked],
                                              data))
            if on_progress is not None:
                on_progress(min(start + batch_size, len(states)), len(states))
    finally:
        env.close()
    counters["states"] = len(states)
    counters["branches"] = len(data.branches)
    data.counters = counters
    return data
