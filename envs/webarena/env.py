"""The ``webarena-lite`` env: WebArena-Lite's 165 tasks in a real headless Chromium.

An episode opens a fresh browser context, logs in to the task's sites (when the task says
``require_login``), opens the start URL(s) (tabs joined by `` |AND| ``) and shows the page as
WebArena's accessibility-tree text. The agent acts in WebArena's grammar; the episode ends at
``stop [answer]`` or at one of the published limits (30 actions; 3 unparsable replies in a row;
the same action 5 times in a row, or the same ``type`` action 5 times in all), and is then scored
by the task's evaluators: success is ``score >= 1``.

Sites come from BrowserGym's variables (``WA_SHOPPING``, ``WA_SHOPPING_ADMIN``, ``WA_REDDIT``,
``WA_GITLAB``, ``WA_MAP``, ``WA_WIKIPEDIA``, ``WA_HOMEPAGE``); a task runs when all its sites are
set. The browser can reach only those sites: every other request is refused and logged.

Splits: ``test`` is the task file (default: the 165 shipped WebArena-Lite configs); ``train`` is
the tasks of the expert file (``--set expert_path=...``, format in
:mod:`agentbench.envs.webarena.expert`); there is no ``ood`` split.

Branching (Early Experience's ``iwm``/``sr``): the web has no snapshot, so a state is reached
again by *replaying* the expert prefix from the start URL (``supports_snapshot = False``). The
sites keep what earlier episodes did (orders, posts, carts), so every ``reset`` first calls the
user's reset hook: ``--set reset_url=...`` or BrowserGym's ``WA_FULL_RESET`` (an HTTP GET that
answers 200 once the sites are restored). ``reset_policy`` chooses when: ``every_episode``
(default, exact), ``changing_tasks`` (only before tasks checked by ``program_html``, the ones
that change a site; use it when a full reset takes minutes), or ``never``. Without a hook,
episodes run on whatever state the sites are in, and a warning says so once.

Parallel episodes (``rollout_batch``) share one browser process, one context each; the rollout
engine resets all episodes of a wave before any of them acts, so a reset never lands
mid-episode. Episodes of different site-changing tasks in one wave see each other's changes, as
they would on one shared deployment: use ``--set budget.rollout_batch=1`` for exact WebArena
conditions on such tasks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from agentbench.env import Availability, BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task
from agentbench.envs.webarena.actions import (
    GRAMMAR_HELP,
    ActionParseError,
    BrowserAction,
    extract_action,
    key_combination,
    parse_action,
)
from agentbench.envs.webarena.browser import HOST, RequestGuard, browser_availability
from agentbench.envs.webarena.evaluators import EvalContext, Evaluation, SiteFunctions, evaluate
from agentbench.envs.webarena.expert import ExpertTrajectory, load_expert_file
from agentbench.envs.webarena.judge import Judge, OpenAIJudge, shared_backend_judge
from agentbench.envs.webarena.login import load_accounts, log_in
from agentbench.envs.webarena.observation import PageTree, read_tree
from agentbench.envs.webarena.tasks import (
    RESET_VARIABLE,
    SITE_VARIABLES,
    SITES,
    TaskConfig,
    load_task_configs,
    runnable,
    site_urls,
    substitute,
    summarise_tasks,
)
from agentbench.errors import AgentbenchError, ConfigError, EnvServerError, EnvUnavailableError

logger = logging.getLogger(__name__)
_warned_no_reset = False
CLICKABLE_ROLES = frozenset({"link", "button", "checkbox", "radio", "tab", "menuitem", "option", "switch",
                             "combobox"})


class WebArenaConfig(EnvConfig):
    task_file: str | None = Field(None, description="JSON list of task configs (WebArena-Lite schema) for the test "
                                                    "split; default: the 165 shipped WebArena-Lite tasks")
    expert_path: str | None = Field(None, description="expert trajectories (JSONL); their tasks are the train split")
    max_steps: int = Field(30, ge=1, description="actions per episode (WebArena: 30); above 30, raise "
                                                 "limits.max_turns too")
    max_parse_failures: int = Field(3, ge=1, description="unparsable replies in a row that end an episode (3)")
    max_repeated_actions: int = Field(5, ge=1, description="repeats of one action that end an episode (5)")
    reset_url: str | None = Field(None, description=f"reset hook (HTTP GET, 200 when done); default ${RESET_VARIABLE}")
    reset_policy: Literal["every_episode", "changing_tasks", "never"] = Field(
        "every_episode", description="when the reset hook runs before an episode")
    judge: str = Field("policy", description="fuzzy_match judge model through agentbench.backends; 'policy': the "
                                            "run's --model (ignored when judge_url is set)")
    judge_url: str | None = Field(None, description="OpenAI-compatible endpoint (.../v1) for the fuzzy_match judge")
    judge_endpoint_model: str = Field("gpt-4-1106-preview", description="model name sent to judge_url")
    judge_api_key_env: str = Field("OPENAI_API_KEY", description="variable holding judge_url's API key, if any")
    judge_max_tokens: int = Field(64, ge=1, description="tokens a judge may write per verdict")
    accounts_file: str | None = Field(None, description="JSON {site: {username, password}} (default: WebArena's)")
    max_observation_chars: int = Field(8000, ge=200, description="the tree is cut at a line boundary beyond this")
    viewport_width: int = Field(1280, ge=200)
    viewport_height: int = Field(720, ge=200)
    action_timeout_s: float = Field(5.0, gt=0, description="how long an action may wait for its element")
    screenshots_dir: str | None = Field(None, description="save a PNG of the page after every step here")


class WebArenaLite(BaseEnv):
    name: ClassVar[str] = "webarena-lite"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("WebArena-Lite (165 tasks) in headless Chromium: accessibility-tree text, "
                                  "WebArena's actions, limits and evaluators")
    Config = WebArenaConfig
    default_max_turns: ClassVar[int] = 30
    # WebArena shows only the current page (with the previous action), never the history.
    default_history_turns: ClassVar[int | None] = 0
    supports_snapshot: ClassVar[bool] = False
    # Drives sites served elsewhere, so the shared local-env contract does not run it; its own
    # tests run the same checks against the fixture site.
    remote: ClassVar[bool] = True
    # Playwright's sync API is bound to the thread that started it; its own timeouts bound each step.
    step_time_limit_s: ClassVar[float | None] = None
    concurrent_steps: ClassVar[bool] = False  # Playwright's sync API is bound to one thread

    def __init__(self, config: WebArenaConfig | None = None):
        super().__init__(config)
        self.config: WebArenaConfig
        self._judge: Judge | None = None
        self._policy: tuple[str, str, Any] | None = None
        self._accounts = load_accounts(self.config.accounts_file)
        self._experts: dict[str, ExpertTrajectory] | None = None
        self._context = None
        self._page = None
        self._cdp: dict[Any, Any] = {}
        self._episode: _Episode | None = None

    # -- availability and tasks -----------------------------------------------------------
    @classmethod
    def availability(cls) -> Availability:
        browser = browser_availability()
        if not browser.runnable:
            return browser
        urls = site_urls()
        try:
            summary = summarise_tasks(load_task_configs(), urls).describe()
        except AgentbenchError as exc:
            summary = f"shipped tasks unavailable ({exc}); --set task_file=... still works"
        if not urls:
            return Availability(False, f"set {', '.join(SITE_VARIABLES)} to your WebArena sites' URLs "
                                       f"(BrowserGym's variables; {RESET_VARIABLE} for the reset hook); {summary}")
        return Availability(True, summary)

    @property
    def instructions(self) -> str:
        c = self.config
        return (
            "You are a web agent doing a task in a browser. Each observation shows the open tabs, the page "
            "as an accessibility tree ([id] role 'name' properties), the URL, the OBJECTIVE and your "
            "PREVIOUS ACTION.\n"
            "Actions ([id] is an element of the current page): click [id]; hover [id]; type [id] [text] [1] "
            "(1: press Enter after typing, 0: do not); press [key_comb]; scroll [down] or scroll [up]; "
            "new_tab; tab_focus [tab_index]; close_tab; goto [url]; go_back; go_forward; stop [answer] "
            "(finish with the answer, N/A if the task is impossible, stop [] if no answer is needed).\n"
            f"The episode ends after {c.max_steps} actions, {c.max_parse_failures} replies without a valid "
            f"action, or the same action {c.max_repeated_actions} times."
        )

    def tasks(self, split: Split) -> list[Task]:
        if split == "ood":
            return []
        urls = site_urls()
        if split == "test":
            configs = load_task_configs(self.config.task_file)
            ready = [c for c in configs if runnable(c, urls)]
            if configs and not ready:
                missing = summarise_tasks(configs, urls).missing_variables
                raise EnvUnavailableError(f"none of the {len(configs)} tasks can run: set {', '.join(missing)}")
            return [_task(c, "test") for c in ready]
        test_keys = {(c.intent, c.start_url) for c in load_task_configs(self.config.task_file)}
        trajectories = self._expert_trajectories()
        train = [t.task for t in trajectories.values()
                 if (t.task.intent, t.task.start_url) not in test_keys and runnable(t.task, urls)]
        return [_task(c, "train") for c in train]

    def _expert_trajectories(self) -> dict[str, ExpertTrajectory]:
        if self._experts is None:
            if not self.config.expert_path:
                raise ConfigError("webarena-lite has no expert of its own: pass --set expert_path=FILE "
                                  "(JSONL trajectories; format in agentbench.envs.webarena.expert)")
            self._experts = {str(t.task.task_id): t for t in load_expert_file(self.config.expert_path)}
        return self._experts

    # -- the judge --------------------------------------------------------------------------
    def bind_policy(self, model: str, backend: str, options: Any = None) -> None:
        """Called by the run session: the policy model doubles as the default fuzzy_match judge."""
        self._policy = (model, backend, options)

    def set_judge(self, judge: Judge | None) -> None:
        """Use this judge for fuzzy_match checks (overrides the configured one)."""
        self._judge = judge

    def judge(self) -> Judge | None:
        if self._judge is not None:
            return self._judge
        c = self.config
        if c.judge_url:
            self._judge = OpenAIJudge(c.judge_url, c.judge_endpoint_model, c.judge_api_key_env, c.judge_max_tokens)
        elif c.judge != "policy":
            backend, options = (self._policy[1], self._policy[2]) if self._policy else ("hf", None)
            self._judge = shared_backend_judge(c.judge, backend, options, c.judge_max_tokens)
        elif self._policy is not None:
            self._judge = shared_backend_judge(*self._policy, c.judge_max_tokens)
        return self._judge

    # -- episode ----------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        # Pages are deterministic given the site state; the seed has nothing to vary.
        config = TaskConfig.model_validate(task.spec["config"])
        urls = site_urls()
        missing = [SITES[s].variable for s in config.sites if s not in urls]
        if missing:
            raise EnvUnavailableError(f"task {task.id} needs {', '.join(missing)}")
        self._close_context()
        site_reset = self._reset_sites(config)
        guard = RequestGuard.for_urls(urls.values())
        c = self.config
        self._context = HOST.new_context(guard, (c.viewport_width, c.viewport_height), c.action_timeout_s * 1000)
        page = self._context.new_page()
        if config.geolocation:
            self._context.grant_permissions(["geolocation"])
            self._context.set_geolocation(config.geolocation)
        if config.require_login:
            for site in config.sites:
                log_in(site, page, urls[site], self._accounts, c.action_timeout_s * 1000)
        starts = [substitute(u, urls) for u in config.start_urls]
        for index, url in enumerate(starts):
            page.goto(url, wait_until="load")
            if index < len(starts) - 1:
                page = self._context.new_page()
        self._page = page
        self._episode = _Episode(task=task, seed=seed, config=config, urls=urls, guard=guard,
                                 site_reset=site_reset)
        return self._observe()

    def parse_action(self, response: str) -> str | None:
        # None when the reply has no action line at all (the harness counts it invalid); any
        # action text reaches step(), where one outside the grammar is WebArena's "none" action:
        # invalid, and counted towards the step and parse-failure limits.
        return extract_action(response)

    def admissible_actions(self) -> list[str] | None:
        """A sample of what can be done here (for refilling branching alternatives): a click on
        each link, button or other clickable element of the page, scrolling and going back.
        The grammar admits far more (any text typed into any field, any URL)."""
        ep = self._episode
        if ep is None or ep.tree is None:
            return None
        clicks = [f"click [{n.id}]" for n in ep.tree.nodes.values() if n.role in CLICKABLE_ROLES]
        return [*clicks, "scroll [down]", "scroll [up]", "go_back"]

    def step(self, action: str) -> Step:
        ep = self._require_episode()
        if ep.done:
            return Step("The episode is over.", 0.0, True, StepInfo(valid=False, progress=ep.score))
        ep.steps += 1
        try:
            parsed = parse_action(action)
        except ActionParseError as exc:
            ep.history.append("none")
            ep.parse_failures += 1
            feedback = f"Your reply had no valid action ({exc}). Reply with one action: {GRAMMAR_HELP}"
            return self._after(action, feedback, valid=False)
        ep.parse_failures = 0
        ep.history.append(str(parsed))
        ep.taken.append(action.strip())
        if parsed.kind == "stop":
            return self._finish(action, parsed.text, reason=None)
        error = self._execute(parsed)
        if error:
            ep.action_errors += 1
        return self._after(action, f"The previous action failed: {error}" if error else "", valid=True)

    def expert_step(self) -> ExpertStep:
        ep = self._require_episode()
        trajectory = self._expert_trajectories().get(ep.task.id) if self.config.expert_path else None
        if trajectory is None:
            raise NoExpert(f"no expert trajectory for task {ep.task.id}")
        index = len(ep.taken)
        if ep.taken != ep.expert_issued[:index]:
            raise NoExpert("the episode left the expert's trajectory")
        if index >= len(trajectory.steps):
            raise NoExpert("the expert trajectory has ended")
        step = trajectory.steps[index]
        action = step.action
        if step.element is not None:
            node = ep.tree.find(step.element.role, step.element.name, step.element.nth) if ep.tree else None
            if node is None:
                raise NoExpert(f"the expert's element {step.element.role} {step.element.name!r} is not on the page")
            action = re.sub(r"\[\d+\]", f"[{node.id}]", action, count=1)
        ep.expert_issued = [*ep.taken[:index], action]
        return ExpertStep(action, step.thought)

    def close(self) -> None:
        self._close_context()
        self._episode = None

    # -- internals ----------------------------------------------------------------------------
    def _require_episode(self) -> _Episode:
        if self._episode is None or self._page is None:
            raise RuntimeError("call reset(task) before step()")
        return self._episode

    def _close_context(self) -> None:
        if self._context is not None:
            with contextlib.suppress(Exception):  # the browser may already be gone at interpreter exit
                self._context.close()
        self._context, self._page, self._cdp = None, None, {}

    def _reset_sites(self, config: TaskConfig) -> str:
        global _warned_no_reset
        policy = self.config.reset_policy
        if policy == "never" or (policy == "changing_tasks" and not config.changes_site):
            return "skipped"
        url = self.config.reset_url or os.environ.get(RESET_VARIABLE, "").strip()
        if not url:
            if not _warned_no_reset:
                logger.warning("webarena-lite: no reset hook (set %s or reset_url); episodes and replays run on "
                               "whatever state earlier episodes left the sites in", RESET_VARIABLE)
                _warned_no_reset = True
            return "no hook"
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=600) as response:
                status = response.status
        except (urllib.error.URLError, OSError) as exc:
            raise EnvServerError(f"the sites' reset hook {url} failed: {exc}") from exc
        if status != 200:
            raise EnvServerError(f"the sites' reset hook {url} answered HTTP {status}")
        return f"done in {time.perf_counter() - started:.2f} s"

    def _cdp_for(self, page):
        if page not in self._cdp:
            self._cdp[page] = self._context.new_cdp_session(page)
        return self._cdp[page]

    def _observe(self, feedback: str = "", over: bool = False) -> str:
        ep = self._require_episode()
        page = self._page
        tabs = []
        for index, tab in enumerate(self._context.pages):
            try:
                title = tab.title()
            except Exception:
                title = ""
            tabs.append(f"Tab {index}{' (current)' if tab is page else ''}: {title}")
        try:
            ep.tree = read_tree(self._cdp_for(page), self.config.max_observation_chars)
        except Exception as exc:  # a page that is still navigating: one more try once it has loaded
            logger.debug("accessibility tree read failed (%s); retrying after load", exc)
            _settle(page)
            ep.tree = read_tree(self._cdp_for(page), self.config.max_observation_chars)
        lines = [
            "OBSERVATION:", " | ".join(tabs), "", ep.tree.text,
            f"URL: {page.url}",
            f"OBJECTIVE: {ep.config.intent}",
            f"PREVIOUS ACTION: {ep.previous_action or 'None'}",
        ]
        if feedback:
            lines.append(feedback)
        if over:
            lines.append("The episode is over.")
        return "\n".join(lines)

    def _element(self, element_id: int | None):
        ep = self._require_episode()
        node = ep.tree.nodes.get(element_id) if (ep.tree and element_id is not None) else None
        if node is None:
            raise _ActionError(f"there is no element [{element_id}] on the page")
        if node.backend_id is None:
            raise _ActionError(f"element [{element_id}] cannot be acted on")
        cdp = self._cdp_for(self._page)
        try:
            handle = cdp.send("DOM.resolveNode", {"backendNodeId": node.backend_id})["object"]["objectId"]
        except Exception as exc:
            raise _ActionError(f"element [{element_id}] is gone from the page") from exc
        ep.marks += 1
        mark = f"m{ep.marks}"
        # Mark the element (or a text node's parent) so Playwright's locator, with its waiting and
        # scrolling, can act on exactly the node the agent named; the mark is removed afterwards.
        cdp.send("Runtime.callFunctionOn", {
            "objectId": handle, "arguments": [{"value": mark}], "returnByValue": True,
            "functionDeclaration": "function(m){const e=this.nodeType===1?this:this.parentElement;"
                                   "if(e){e.setAttribute('data-agentbench-target',m)}}"})
        return self._page.locator(f'[data-agentbench-target="{mark}"]')

    def _execute(self, action: BrowserAction) -> str | None:
        """Run one action; returns an error message for a valid action that failed in the page."""
        context, page = self._context, self._page
        before = list(context.pages)
        timeout = self.config.action_timeout_s * 1000
        try:
            match action.kind:
                case "click":
                    self._element(action.element_id).click(timeout=timeout)
                case "hover":
                    self._element(action.element_id).hover(timeout=timeout)
                case "type":
                    target = self._element(action.element_id)
                    try:
                        target.fill(action.text, timeout=timeout)
                    except Exception:  # not a form field (contenteditable, say): click and type
                        target.click(timeout=timeout)
                        page.keyboard.type(action.text)
                    if action.press_enter:
                        target.press("Enter", timeout=timeout)
                case "press":
                    page.keyboard.press(key_combination(action.text))
                case "scroll":
                    sign = 1 if action.text == "down" else -1
                    page.evaluate(f"window.scrollBy(0, {sign} * window.innerHeight)")
                case "new_tab":
                    self._page = context.new_page()
                case "tab_focus":
                    pages = context.pages
                    if action.tab_index is None or not 0 <= action.tab_index < len(pages):
                        raise _ActionError(f"there is no tab {action.tab_index} (open tabs: 0 to {len(pages) - 1})")
                    self._page = pages[action.tab_index]
                    self._page.bring_to_front()
                case "close_tab":
                    page.close()
                    self._cdp.pop(page, None)
                    self._page = context.pages[-1] if context.pages else context.new_page()
                case "goto":
                    if not self._episode.guard.allows(action.text):
                        self._episode.guard.refuse(action.text, "goto")
                        raise _ActionError(f"{action.text} is not one of the task's sites")
                    page.goto(action.text, wait_until="load")
                case "go_back":
                    page.go_back(wait_until="load")
                case "go_forward":
                    page.go_forward(wait_until="load")
        except _ActionError as exc:
            return str(exc)
        except Exception as exc:  # Playwright: timeouts, detached elements, refused navigations
            return _first_line(exc)
        finally:
            self._unmark()
        opened = [p for p in context.pages if p not in before]
        if opened and action.kind != "new_tab":
            self._page = opened[-1]  # a link that opens a new tab moves the agent there
        _settle(self._page)
        return None

    def _unmark(self) -> None:
        page = self._page
        if page is None or page.is_closed():
            return
        with contextlib.suppress(Exception):  # the page navigated away: the mark went with it
            page.evaluate("() => document.querySelectorAll('[data-agentbench-target]')"
                          ".forEach(e => e.removeAttribute('data-agentbench-target'))")

    def _early_stop(self) -> str | None:
        """WebArena's early-stop rules, checked after each step."""
        ep, c = self._require_episode(), self.config
        if ep.steps >= c.max_steps:
            return f"Reach max steps {c.max_steps}"
        k = c.max_parse_failures
        if len(ep.history) >= k and all(a == "none" for a in ep.history[-k:]):
            return f"Failed to parse actions for {k} times"
        k = c.max_repeated_actions
        last = ep.history[-1] if ep.history else None
        if last is None:
            return None
        if last.startswith("type "):
            if sum(a == last for a in ep.history) >= k:
                return f"Same typing action for {k} times"
        elif len(ep.history) >= k and all(a == last for a in ep.history[-k:]):
            return f"Same action for {k} times"
        return None

    def _after(self, action: str, feedback: str, valid: bool) -> Step:
        ep = self._require_episode()
        ep.previous_action = action.strip()[:200]
        reason = self._early_stop()
        if reason is not None:
            return self._finish(action, f"Early stop: {reason}", reason=reason, valid=valid)
        observation = self._observe(feedback)
        self._screenshot()
        return Step(observation, 0.0, False, StepInfo(valid=valid))

    def _finish(self, action: str, answer: str, reason: str | None, valid: bool = True) -> Step:
        ep = self._require_episode()
        ep.previous_action = action.strip()[:200]
        # The final observation is the page the agent left, before evaluators open their own pages.
        observation = self._observe(over=True)
        self._screenshot()
        functions = SiteFunctions(ep.urls, self._accounts, ep.guard.allows)
        ctx = EvalContext(ep.config, answer, self._page, ep.urls, self.judge() if ep.config.needs_judge else None,
                          functions)
        result: Evaluation = evaluate(ctx)
        ep.done, ep.score = True, result.score
        extra = {
            "evaluation": result.as_dict(),
            "answer": answer,
            "early_stop": reason,
            "steps": ep.steps,
            "action_errors": ep.action_errors,
            "blocked_requests": ep.guard.refused[:50],
            "blocked_request_count": len(ep.guard.refused),
            "site_reset": ep.site_reset,
            "start_url": substitute(ep.config.start_url, ep.urls),
        }
        return Step(observation, result.score, True,
                    StepInfo(valid=valid, success=result.success, progress=result.score, extra=extra))

    def _screenshot(self) -> None:
        directory = self.config.screenshots_dir
        if not directory or self._episode is None:
            return
        ep = self._episode
        path = Path(directory) / f"{ep.task.split}-{ep.task.id}-s{ep.seed}-{ep.steps:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._page.screenshot(path=str(path))
        except Exception as exc:
            logger.debug("screenshot failed: %s", exc)


class _ActionError(Exception):
    """A valid action that cannot be carried out on this page."""


class _Episode:
    """Per-episode state: the task, the limits' counters and the expert's progress."""

    def __init__(self, task: Task, seed: int, config: TaskConfig, urls: dict[str, str], guard: RequestGuard,
                 site_reset: str):
        self.task, self.seed, self.config, self.urls, self.guard = task, seed, config, urls, guard
        self.site_reset = site_reset
        self.steps = 0
        self.parse_failures = 0
        self.action_errors = 0
        self.history: list[str] = []
        """Canonical actions, 'none' for unparsable replies (for the repeat and parse limits)."""
        self.taken: list[str] = []
        """Valid actions as given (for the expert's replay check)."""
        self.expert_issued: list[str] = []
        self.previous_action = ""
        self.tree: PageTree | None = None
        self.marks = 0
        self.done = False
        self.score = 0.0


def _task(config: TaskConfig, split: str) -> Task:
    # The marks say what scoring the task needs beyond the browser: a judge, or site APIs
    # (an episode whose site lacks them ends as env_error, reported apart from the success rate).
    return Task(id=str(config.task_id), split=split,
                spec={"config": config.model_dump(mode="json"), "needs_judge": config.needs_judge,
                      "site_functions": config.site_functions})


def _settle(page) -> None:
    """Wait until the page has loaded (a click or Enter may have started a navigation)."""
    try:
        page.wait_for_load_state("load")
    except Exception as exc:
        logger.debug("page did not finish loading: %s", exc)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
