"""Branching from expert states (Early Experience): K alternative actions per expert state,
sampled from the initial policy and executed from that same state.

Each state is reached once (by replaying the expert prefix); where the env can snapshot, the
alternatives all start from a restored snapshot, else each replays the prefix again. Invalid
or duplicate samples are refilled from the env's admissible actions where it lists them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from agentbench.backends import Backend, SamplingParams
from agentbench.env import Env, Step, Task, replay
from agentbench.expert import ExpertData, ExpertStepRecord
from agentbench.prompting import PromptBuilder, react_response


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
                           rng: random.Random) -> tuple[list[tuple[str, str, bool]], dict[str, int]]:
    """Up to ``k`` (action, response, refilled) alternatives, distinct and != the expert's."""
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
    admissible = [a for a in (env.admissible_actions() or []) if a.strip().lower() not in seen]
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
) -> BranchingData:
    """Sample ``k`` alternatives per expert state from ``policy`` and execute each one."""
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
                alternatives, counts = _distinct_alternatives(env, state, responses, k, rng)
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


def _execute(env: Env, expert: ExpertData, state: ExpertStepRecord,
             alternatives: list[tuple[str, str, bool]], data: BranchingData) -> list[Branch]:
    steps, spent = branch_from_state(env, expert.task(state.task_id), state, [a for a, _, _ in alternatives])
    data.env_steps += spent
    return [Branch(state, action, response, step.observation, step.info.valid, step.reward, step.done, refilled)
            for (action, response, refilled), step in zip(alternatives, steps)]
