"""BFCL v3 multi-turn tool use (the Early Experience paper's BFCLv3 environment), in text.

An episode is one multi-turn entry of the Berkeley Function Calling Leaderboard. Its user turns
arrive one at a time; within a turn the agent calls functions of simulated APIs (a file system,
messaging, Twitter, tickets, trading, travel booking, vehicle control, math) and sees each
result, then ends the turn with ``respond <message>``; the next user turn follows. Everything
comes from the PyPI package ``bfcl-eval`` (installed ``--no-deps``): entries, ground truth,
function docs, the API classes, and the checker's ``state_checker``/``response_checker``.

Checks follow BFCL's ``multi_turn_checker``: when a turn ends, the ground truth's calls of that
turn run on a second set of instances; a turn with ground-truth calls passes when the agent made
at least one call in it, every public attribute of every instance equals the ground truth's
(state check) and each of the ground truth's results of the turn occurs among the agent's
results so far (response check). Turns without ground-truth calls (where the request cannot be
done: a missing function or parameter) are not checked, as in BFCL. Success is every turn
passing, checked at the end; progress is the fraction of turns passed. Feedback on the checks
is only given when the conversation is over. As in BFCL, more than 20 call steps in one turn end
the episode as failed.

Calls are parsed (``calls.py``) and dispatched (``apis.py``) without ``eval``: only the functions
available at the turn (the entry's APIs minus ``excluded_function`` and ``miss_func``'s held-out
functions until their turn) with literal arguments that bind to their signature. Anything else
is an invalid action: refused, explained in the observation, nothing run.

Splits: ``train``/``test`` divide the 200 ``base`` entries by a hash of their id (``n_test`` for
test); ``ood`` holds the ``miss_func``, ``miss_param`` and ``long_context`` entries, by default
only the variants of the test entries' scenarios (each category re-uses the base scenarios, so
the other variants are near copies of train entries). Entries whose ground truth breaks their own
function availability are left out (one: ``multi_turn_miss_func_49``).

The expert plays the ground truth: each expected call of the turn as one action (the calls the
agent already made this turn are skipped; a turn with more calls than the step limit allows has
runs of calls to one function batched into one action), then ``respond``. Observations hold the whole state
the agent needs (functions, earlier turns' requests and calls, this turn's calls and results), so
no history is shown; function docs are compact by default (``function_docs``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar, Literal

from pydantic import Field

from agentbench.env import Availability, BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task
from agentbench.envs.bfcl.apis import ApiSession, RefusedCall, canonical
from agentbench.envs.bfcl.calls import CallSyntaxError, parse_calls
from agentbench.envs.bfcl.data import (
    ADDED_FUNCTIONS_MESSAGE,
    OOD_CATEGORIES,
    Entry,
    bfcl_version,
    entry,
    function_docs,
    ood_entries,
    split_base,
)
from agentbench.envs.bfcl.view import DocStyle, clip, render_functions
from agentbench.errors import ConfigError, EnvUnavailableError
from agentbench.extras import needs_extra

INSTALL = "pip install --no-deps bfcl-eval==2026.3.23"
_RESPOND = re.compile(r"^respond\b\s*:?\s*(.*)$", re.IGNORECASE | re.DOTALL)
_DONE_MESSAGE = "I have completed your request."
_CANNOT_MESSAGE = "I cannot do this with the functions and information I have; please tell me what is missing."


class BFCLConfig(EnvConfig):
    n_test: int = Field(50, ge=1, le=150, description="base entries held out for the test split; the other base entries are train")
    ood_categories: tuple[Literal["miss_func", "miss_param", "long_context"], ...] = Field(
        OOD_CATEGORIES, min_length=1, description="BFCL categories that make up the ood split")
    ood_scenarios: Literal["test", "all"] = Field(
        "test", description="ood entries whose scenario is a test entry's ('test': none seen in training) or all of them")
    ood_per_category: int | None = Field(None, ge=1, description="at most this many entries per ood category (None: all chosen)")
    function_docs: DocStyle = Field(
        "signatures", description="how functions are listed: json (BFCL's full docs, ~3,000 tokens per API), brief "
        "(typed signature and a one-line description), signatures (names, parameters, defaults) or names")
    function_chars: int | None = Field(
        1000, ge=1, description="the function listing's budget in characters: an API class that would take it past "
        "this is listed by function names only (null: no budget; use null with json or brief docs)")
    max_result_chars: int = Field(200, ge=20, description="each call result is cut to this many characters in observations")
    results_shown: int = Field(2, ge=1, description="results shown for the last this many calls of the turn (older ones: the call only)")
    earlier_turns: int = Field(1, ge=0, description="earlier turns summarised (request and calls) in each observation")
    max_steps_per_turn: int = Field(20, ge=1, description="call actions allowed in one user turn; one more ends the episode as failed (BFCL's limit)")
    stop_at_failed_turn: bool = Field(False, description="end the episode at the first turn that fails its check (BFCL plays every turn)")


@dataclass
class _Episode:
    entry: Entry
    model: ApiSession
    truth: ApiSession
    turn: int = 0
    steps_in_turn: int = 0
    results: list[str] = field(default_factory=list)
    """Every result of the agent's calls so far (what BFCL's response check searches)."""
    this_turn: list[tuple[str, str]] = field(default_factory=list)
    """(call, result) of the current turn."""
    earlier: list[tuple[str, list[str]]] = field(default_factory=list)
    passed: list[bool] = field(default_factory=list)
    failure: str = ""
    done: bool = False

    @property
    def progress(self) -> float:
        return sum(self.passed) / len(self.entry.turns)


class BFCL(BaseEnv):
    name: ClassVar[str] = "bfcl"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "BFCL v3 multi-turn tool use (Early Experience); bfcl-eval's APIs and checker, ground-truth expert"
    Config = BFCLConfig
    # Expert episodes take at most 16 actions (17 over all 599 ood entries); the rest is room for a
    # model's extra calls and retries.
    default_max_turns: ClassVar[int] = 30
    default_history_turns: ClassVar[int | None] = 0
    supports_snapshot: ClassVar[bool] = True

    def __init__(self, config: BFCLConfig | None = None):
        available = self.availability()
        if not available.runnable:
            raise EnvUnavailableError(f"bfcl cannot run here: {available.detail}")
        super().__init__(config)
        self._ep: _Episode | None = None

    @classmethod
    def availability(cls) -> Availability:
        return _availability()

    @property
    def instructions(self) -> str:
        return (
            "You fulfil a user's requests by calling functions of simulated systems. The user speaks in "
            "several turns. Each reply holds one action:\n"
            "- function calls in Python syntax with literal arguments, e.g. cd(folder='docs') or "
            "[mkdir(dir_name='new'), ls(a=True)]; you then see their results;\n"
            "- respond <message>: ends your turn (if the request cannot be done, say what is missing).\n"
            "Call only the functions listed in the observation."
        )

    def tasks(self, split: Split) -> list[Task]:
        cfg = self.config
        return list(_tasks(split, cfg.n_test, tuple(cfg.ood_categories), cfg.ood_scenarios, cfg.ood_per_category))

    # -- episode ------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        # The entry is the task; BFCL's APIs seed their own randomness from it, so the seed is unused.
        try:
            found = entry(str(task.spec["entry"]))
        except KeyError:
            raise ConfigError(f"bfcl: no entry {task.spec.get('entry')!r} in bfcl-eval {bfcl_version()}") from None
        if found.sha256 != task.spec.get("sha256"):
            raise ConfigError(f"bfcl: entry {found.id} differs from the task's (installed bfcl-eval {bfcl_version()})")
        self._ep = _Episode(found, ApiSession(found), ApiSession(found))
        return self._observe("")

    def step(self, action: str) -> Step:
        ep = self._require()
        if ep.done:
            return Step("The conversation is over.", 0.0, True, StepInfo(valid=False, progress=ep.progress))
        respond = _RESPOND.match(action.strip())
        if respond:
            return self._end_turn(respond.group(1))
        try:
            prepared = ep.model.prepare(parse_calls(action), set(ep.entry.available(ep.turn)))
        except (CallSyntaxError, RefusedCall) as exc:
            feedback = (f"Invalid action: {clip(str(exc), 200)}. Nothing was run. Call one of the listed functions "
                        "with literal arguments, or end the turn with: respond <message>")
            return Step(self._observe(feedback), 0.0, False, StepInfo(valid=False, progress=ep.progress))
        results = ep.model.run(prepared)
        ep.results.extend(results)
        ep.this_turn.extend((p.text, r) for p, r in zip(prepared, results, strict=True))
        ep.steps_in_turn += 1
        if ep.steps_in_turn > self.config.max_steps_per_turn:
            ep.done = True
            ep.failure = f"turn {ep.turn + 1}: more than {self.config.max_steps_per_turn} call steps"
            return Step(f"Stopped: more than {self.config.max_steps_per_turn} call steps in one turn. "
                        f"{self._verdict()}", 0.0, True, StepInfo(progress=ep.progress, extra=self._extra()))
        return Step(self._observe(""), 0.0, False, StepInfo(progress=ep.progress))

    def expert_step(self) -> ExpertStep:
        ep = self._require()
        if ep.done:
            raise NoExpert("the conversation is over")
        expected = ep.entry.ground_truth[ep.turn]
        remaining = [c for text in expected for c in canonical(text, ep.entry)]
        for made, _ in ep.this_turn:
            if made in remaining:
                remaining.remove(made)
        if not remaining:
            return ExpertStep(f"respond {_DONE_MESSAGE if expected else _CANNOT_MESSAGE}")
        if len(remaining) + ep.steps_in_turn <= self.config.max_steps_per_turn:
            return ExpertStep(remaining[0])
        # Too many calls for one per step (a long_context turn has 34): batch a run of calls to
        # the same function, as BFCL's parallel calls do.
        name = remaining[0].split("(", 1)[0]
        run = 1
        while run < len(remaining) and remaining[run].split("(", 1)[0] == name:
            run += 1
        return ExpertStep(f"[{', '.join(remaining[:run])}]" if run > 1 else remaining[0])

    def admissible_actions(self) -> list[str] | None:
        return None  # calls with free-form arguments: no finite list

    def snapshot(self) -> _Episode:
        ep = self._require()
        return copy.deepcopy(ep, memo={id(ep.entry): ep.entry})

    def restore(self, snapshot: _Episode) -> None:
        self._ep = copy.deepcopy(snapshot, memo={id(snapshot.entry): snapshot.entry})

    # -- helpers --------------------------------------------------------------------------
    def _require(self) -> _Episode:
        if self._ep is None:
            raise RuntimeError("call reset(task) before step()")
        return self._ep

    def _end_turn(self, message: str) -> Step:
        ep = self._require()
        turn, expected = ep.turn, ep.entry.ground_truth[ep.turn]
        allowed = set(ep.entry.available(turn))
        truth_results = [r for text in expected for r in ep.truth.run_text(text, allowed)[1]]
        problem = _turn_problem(ep, expected, truth_results)
        ep.passed.append(problem is None)
        if problem is not None and not ep.failure:
            ep.failure = f"turn {turn + 1}: {problem}"
        ep.earlier.append((_user_message(ep.entry, turn), [c for c, _ in ep.this_turn]))
        ep.turn, ep.steps_in_turn, ep.this_turn = turn + 1, 0, []
        if ep.turn == len(ep.entry.turns) or (problem is not None and self.config.stop_at_failed_turn):
            ep.done = True
            success = ep.turn == len(ep.entry.turns) and all(ep.passed)
            return Step(f"The conversation is over. {self._verdict()}", 1.0 if success else 0.0, True,
                        StepInfo(success=success, progress=ep.progress, extra=self._extra()))
        return Step(self._observe(""), 0.0, False, StepInfo(progress=ep.progress))

    def _verdict(self) -> str:
        ep = self._require()
        passed = f"{sum(ep.passed)} of {len(ep.entry.turns)} turns passed BFCL's checks"
        return f"{passed}; first failure: {ep.failure}." if ep.failure else f"{passed}."

    def _extra(self) -> dict[str, Any]:
        ep = self._require()
        return {"turns": len(ep.entry.turns), "turns_passed": sum(ep.passed), "first_failure": ep.failure,
                "category": ep.entry.category}

    def _observe(self, feedback: str) -> str:
        ep, cfg = self._require(), self.config
        names = set(ep.entry.available(ep.turn))
        groups = [(c, [d for d in function_docs(c) if d["name"] in names]) for c in ep.entry.involved_classes]
        lines = [feedback] if feedback else []
        lines += ["Functions:", render_functions(groups, cfg.function_docs, cfg.function_chars)]
        shown = ep.earlier[max(0, len(ep.earlier) - cfg.earlier_turns):] if cfg.earlier_turns else []
        if shown:
            lines.append("Earlier turns:")
            first = len(ep.earlier) - len(shown) + 1
            lines += [f"{first + i}. User: {clip(msg, 150)} | Calls: {clip('; '.join(calls), 200) or 'none'}"
                      for i, (msg, calls) in enumerate(shown)]
        lines.append(f"Turn {ep.turn + 1} of {len(ep.entry.turns)}. User: {_user_message(ep.entry, ep.turn)}")
        if ep.this_turn:
            lines.append("Your calls this turn:")
            cut = len(ep.this_turn) - cfg.results_shown
            for i, (call, result) in enumerate(ep.this_turn):
                lines.append(f"> {call}" if i < cut else f"> {call}\n{clip(result, cfg.max_result_chars)}")
        return "\n".join(lines)


def _user_message(e: Entry, turn: int) -> str:
    if e.turns[turn]:
        return e.turns[turn]
    added = sorted(n for n, t in e.added_at.items() if t == turn)
    return f"{ADDED_FUNCTIONS_MESSAGE} (new: {', '.join(added)})" if added else "(no message)"


def _turn_problem(ep: _Episode, expected: tuple[str, ...], truth_results: list[str]) -> str | None:
    """Why the turn that just ended fails BFCL's checks, or None when it passes."""
    if not expected:
        return None  # BFCL does not check turns without ground-truth calls
    if not ep.this_turn:
        return "no function call in a turn that needs some"
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import response_checker, state_checker

    state = state_checker(ep.model.instances, ep.truth.instances)
    if not state["valid"]:
        return f"state differs from the ground truth's ({', '.join(sorted(state['details']['differences']))})"
    response = response_checker(ep.results, truth_results, ep.turn)
    if not response["valid"]:
        return f"{len(response['details']['missing_items'])} expected result(s) missing"
    return None


@cache
def _availability() -> Availability:
    try:
        from agentbench.envs.bfcl.apis import api_class
        from agentbench.envs.bfcl.data import DOC_FILES, entries

        entries("base")
        for class_name in DOC_FILES:
            api_class(class_name)
    except ImportError as exc:
        if exc.name == "mpmath":
            return Availability(False, needs_extra("bfcl", "mpmath"))
        return Availability(False, f"{INSTALL} ({type(exc).__name__}: {clip(str(exc), 80)})")
    except Exception as exc:  # missing package, data file or one of its light dependencies
        return Availability(False, f"{INSTALL} ({type(exc).__name__}: {clip(str(exc), 80)})")
    return Availability(True)


@cache
def _tasks(split: str, n_test: int, ood_categories: tuple[str, ...], ood_scenarios: str,
           ood_per_category: int | None) -> tuple[Task, ...]:
    train, test = split_base(n_test)
    if split == "ood":
        scenarios = {e.index for e in test} if ood_scenarios == "test" else None
        chosen = ood_entries(ood_categories, scenarios, ood_per_category)
    else:
        chosen = train if split == "train" else test
    return tuple(Task(e.id.removeprefix("multi_turn_"), split,
                      {"entry": e.id, "category": e.category, "turns": len(e.turns),
                       "classes": list(e.involved_classes), "sha256": e.sha256})
                 for e in chosen)
