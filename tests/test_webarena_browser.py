"""webarena-lite in the real browser, against the loopback fixture site (One Stop Market).

One Chromium serves the whole module (the env's process-wide browser); one env instance plays
every episode, as the rollout engine's pooled envs do. A scripted policy reads the observation
text as a model would (``[id] role 'name'`` lines) and solves every fixture task; a wrong policy
scores 0 on each.
"""

from __future__ import annotations

import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentbench.env import replay
from agentbench.envs.webarena.browser import browser_availability

pytestmark = pytest.mark.skipif(not browser_availability().runnable, reason=browser_availability().detail)


class _Outside:
    """A loopback server that is *not* one of the task's sites: it must never be reached."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"outside")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class KeywordJudge:
    """A scripted stand-in for the LLM judge: 'correct' when the answer holds the keyword."""

    name = "scripted:keyword"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def complete(self, messages):
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        answer = re.search(r"(?:student answer|reason reported by the person who tried): (.*)", prompt).group(1)
        if "actual reason" in prompt:
            return "same" if "phone" in answer.lower() else "different"
        return "correct" if "sturdy" in answer.lower() else "incorrect"


@pytest.fixture(scope="module")
def outside():
    server = _Outside()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def site(outside):
    from agentbench.envs.webarena.fixture_site import FixtureSite

    fixture = FixtureSite(partner_image=f"{outside.url}/banner.png").start()
    with pytest.MonkeyPatch.context() as mp:
        for key in ("WA_SHOPPING_ADMIN", "WA_REDDIT", "WA_GITLAB", "WA_MAP", "WA_HOMEPAGE"):
            mp.delenv(key, raising=False)
        for key, value in fixture.environment().items():
            mp.setenv(key, value)
        yield fixture
    fixture.stop()


@pytest.fixture(scope="module")
def env(site):
    from agentbench.envs.webarena import WebArenaConfig, WebArenaLite
    from agentbench.envs.webarena.fixture_site import EXPERT_FILE, TASK_FILE

    instance = WebArenaLite(WebArenaConfig(task_file=str(TASK_FILE), expert_path=str(EXPERT_FILE)))
    judge = KeywordJudge()
    instance.set_judge(judge)
    instance.test_judge = judge
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def tasks(env):
    return {t.id: t for t in env.tasks("test")}


def element(observation: str, role: str, name: str) -> int:
    match = re.search(rf"\[(\d+)\] {re.escape(role)} {re.escape(repr(name))}", observation)
    assert match, f"no {role} {name!r} in:\n{observation}"
    return int(match.group(1))


# A script step: a literal action, or (verb, role, name, rest) resolved against the observation.
def _search(text: str):
    return ("type", "searchbox", "Search", f"[{text}] [1]")


def _open(name: str):
    return ("click", "link", name, "")


def _fill(label: str, text: str):
    return ("type", "textbox", label, f"[{text}] [0]")


SOLUTIONS: dict[str, list] = {
    "1": [_search("hawk yoga mat"), _open("Hawk Yoga Mat"), "stop [$29.99]"],
    "2": [_search("candle"), "stop [Tall Pink Taper Candles, White Starfish Wall Candle Sconces]"],
    "3": [_search("tall pink"), _open("Tall Pink Taper Candles"), "stop [2]"],
    "4": [_search("mug"), _open("Ocean Blue Ceramic Mug"), "stop [It is sturdy and heavy]"],
    "5": [_search("yoga"), "stop []"],
    "6": [_search("yoga block"), _open("Yoga Block Set"), ("click", "button", "Add to Cart", ""), "stop []"],
    "7": [_search("mug"), _open("Ocean Blue Ceramic Mug"), ("click", "button", "Add to Cart", ""), _open("My Cart"),
          _open("Proceed to Checkout"), ("click", "button", "Place Order", ""), "stop []"],
    "8": [_search("trail"), _open("Trail Running Shoes"), _fill("Nickname", "Emma"), _fill("Summary", "Great grip"),
          _fill("Review", "Light and fast."), ("click", "button", "Submit Review", ""), "stop []"],
    "9": ["tab_focus [0]", "stop [Tall Pink Taper Candles]"],
    "10": ["tab_focus [0]", _open("Candle"), "stop [paraffin wax]"],
    "11": ["stop [N/A]"],
}
WRONG: dict[str, list] = {
    "1": [_search("hawk yoga mat"), _open("Hawk Yoga Mat"), "stop [$15.00]"],
    "2": [_search("candle"), "stop [Tall Pink Taper Candles]"],
    "3": ["stop [12]"],  # "2" must be a whole token: not found in "12"
    "4": ["stop [It is fragile]"],
    "5": [_search("mug"), "stop []"],
    "6": [_search("hawk"), _open("Hawk Yoga Mat"), ("click", "button", "Add to Cart", ""), "stop []"],
    "7": [_search("mug"), _open("Ocean Blue Ceramic Mug"), ("click", "button", "Add to Cart", ""), "stop []"],
    "8": [_search("trail"), _open("Trail Running Shoes"), _fill("Nickname", "Bob"), _fill("Summary", "Great grip"),
          _fill("Review", "Light."), ("click", "button", "Submit Review", ""), "stop []"],
    "9": ["stop [White Starfish Wall Candle Sconces]"],
    "10": ["stop [beeswax]"],
    "11": ["stop [It costs $5]"],
}


def play(env, task, script):
    observation = env.reset(task)
    step = None
    for item in script:
        if isinstance(item, tuple):
            verb, role, name, rest = item
            action = f"{verb} [{element(observation, role, name)}] {rest}".strip()
        else:
            action = item
        step = env.step(action)
        assert step.info.valid, step.observation
        observation = step.observation
        if step.done:
            break
    assert step is not None and step.done, f"script for task {task.id} did not end the episode"
    return step


@pytest.mark.parametrize("task_id", sorted(SOLUTIONS, key=int))
def test_scripted_policy_solves_each_task(env, tasks, task_id):
    step = play(env, tasks[task_id], SOLUTIONS[task_id])
    evaluation = step.info.extra["evaluation"]
    assert evaluation["score"] == 1.0 and step.info.success and step.reward == 1.0, evaluation
    kinds = [c["kind"] for c in evaluation["checks"]]
    assert kinds == tasks[task_id].spec["config"]["eval"]["eval_types"]
    if task_id == "4":  # the judge that scored is recorded with its verdict
        assert evaluation["judge"] == "scripted:keyword"
        assert evaluation["judge_calls"][0]["reply"] == "correct"
    else:
        assert evaluation["judge"] is None


@pytest.mark.parametrize("task_id", sorted(WRONG, key=int))
def test_wrong_policy_scores_zero(env, tasks, task_id):
    step = play(env, tasks[task_id], WRONG[task_id])
    assert step.info.extra["evaluation"]["score"] == 0.0 and not step.info.success and step.reward == 0.0
    if task_id == "11":  # not "N/A": the judge compares the reported reason with the true one
        assert step.info.extra["evaluation"]["judge_calls"][0]["kind"] == "unachievable_match"


def test_every_evaluator_kind_is_exercised(tasks):
    kinds, answers, locators, urls = set(), set(), set(), set()
    for task in tasks.values():
        ev = task.spec["config"]["eval"]
        kinds.update(ev["eval_types"])
        answers.update(k for k, v in (ev["reference_answers"] or {}).items() if v is not None)
        for target in ev["program_html"]:
            locators.add("[..." if target["locator"].startswith("[...") else target["locator"].split(".")[0])
            urls.add("func" if target["url"].startswith("func:") else "last" if target["url"] == "last" else "url")
    assert kinds == {"string_match", "url_match", "program_html"}
    assert answers == {"exact_match", "must_include", "fuzzy_match"}
    assert urls == {"func", "last", "url"} and {"document", "[..."} <= locators
    assert any(" |AND| " in t.spec["config"]["start_url"] for t in tasks.values())


def test_observation_format_and_tabs(env, tasks):
    observation = env.reset(tasks["9"])
    lines = observation.splitlines()
    assert lines[0] == "OBSERVATION:"
    assert lines[1] == "Tab 0: Tall Pink Taper Candles | Tab 1 (current): White Starfish Wall Candle Sconces"
    assert re.fullmatch(r"\[1\] RootWebArea 'White Starfish Wall Candle Sconces' focused: True", lines[3])
    assert re.search(r"^\t+\[\d+\] button 'Add to Cart'$", observation, re.MULTILINE)
    assert "URL: http://127.0.0.1" in observation and "PREVIOUS ACTION: None" in observation
    assert "OBJECTIVE: Which of the two products" in observation
    step = env.step("tab_focus [0]")
    assert "Tab 0 (current): Tall Pink Taper Candles | Tab 1: White" in step.observation
    assert "PREVIOUS ACTION: tab_focus [0]" in step.observation


def test_parse_failure_limit(env, tasks):
    env.reset(tasks["1"])
    for garbage in ("", "Action: Action:", "💥" * 50, "x" * 5000):  # survived: invalid, the episode goes on
        step = env.step(garbage)
        assert not step.info.valid and not step.done and "no valid action" in step.observation
        assert env.step("scroll [down]").info.valid
    for n in range(1, 4):
        step = env.step("I think I should look around")
        assert not step.info.valid
        assert step.done == (n == 3)
    assert step.info.extra["early_stop"] == "Failed to parse actions for 3 times"
    assert step.info.extra["evaluation"]["score"] == 0.0


def test_repeated_action_limit(env, tasks):
    env.reset(tasks["1"])
    for n in range(1, 6):
        step = env.step("scroll [down]")
        assert step.info.valid and step.done == (n == 5)
    assert step.info.extra["early_stop"] == "Same action for 5 times"


def test_repeated_typing_counts_over_the_whole_episode(env, tasks):
    observation = env.reset(tasks["1"])
    box = element(observation, "searchbox", "Search")
    for n in range(1, 6):
        step = env.step(f"type [{box}] [zzz] [0]")
        assert not step.done or n == 5
        if n < 5:
            assert not env.step("scroll [down]").done
    assert step.done and step.info.extra["early_stop"] == "Same typing action for 5 times"


def test_step_limit_still_scores_the_final_state(env, tasks):
    observation = env.reset(tasks["5"])
    step = env.step(f"type [{element(observation, 'searchbox', 'Search')}] [yoga] [1]")
    for n in range(2, 31):
        step = env.step("scroll [down]" if n % 2 else "scroll [up]")
        assert step.done == (n == 30)
    extra = step.info.extra
    assert extra["early_stop"] == "Reach max steps 30" and extra["steps"] == 30
    assert extra["evaluation"]["score"] == 1.0, "WebArena evaluates the state reached at an early stop"


def test_admissible_actions_sample_the_page(env, tasks):
    observation = env.reset(tasks["1"])
    admissible = env.admissible_actions()
    assert f"click [{element(observation, 'link', 'Hawk Yoga Mat')}]" in admissible
    assert f"click [{element(observation, 'button', 'Search')}]" in admissible
    assert admissible[-3:] == ["scroll [down]", "scroll [up]", "go_back"]


def test_a_site_without_the_helper_api_cannot_score(env, tmp_path):
    """func: helpers call site APIs; the fixture lacks the reviews API, so the task is unscorable."""
    import json

    from agentbench.envs.webarena import WebArenaConfig, WebArenaLite
    from agentbench.envs.webarena.evaluators import SiteFunctionUnavailable
    from agentbench.envs.webarena.fixture_site import TASK_FILE

    config = json.loads(TASK_FILE.read_text())[5]
    config["eval"]["program_html"] = [{"url": "last", "locator": "func:shopping_get_sku_latest_review_author('HYM-01')",
                                       "required_contents": {"exact_match": "Emma"}}]
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([config]))
    other = WebArenaLite(WebArenaConfig(task_file=str(path), screenshots_dir=str(tmp_path / "shots")))
    try:
        (task,) = other.tasks("test")
        assert task.spec["site_functions"] == ["shopping_get_sku_latest_review_author"]
        other.reset(task)
        assert not other.step("scroll [down]").done
        with pytest.raises(SiteFunctionUnavailable, match="reviews"):
            other.step("stop []")
    finally:
        other.close()
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == ["test-6-s0-01.png", "test-6-s0-02.png"]


def test_invalid_element_is_a_failed_but_valid_move(env, tasks):
    env.reset(tasks["1"])
    step = env.step("click [9999]")
    assert step.info.valid and not step.done
    assert "The previous action failed: there is no element [9999]" in step.observation


def test_requests_outside_the_allowlist_are_refused(env, tasks, site, outside, caplog):
    caplog.set_level(logging.DEBUG, logger="agentbench.envs.webarena.browser")
    env.reset(tasks["1"])
    step = env.step(f"goto [{outside.url}/secret]")
    assert "is not one of the task's sites" in step.observation
    step = env.step(f"goto [{site.url}/promotions/]")  # embeds an image from the outside host
    assert "Promotions" in step.observation
    step = env.step("stop [x]")
    assert outside.hits == [], "the outside server must never be reached"
    blocked = step.info.extra["blocked_requests"]
    assert f"{outside.url}/secret" in blocked and f"{outside.url}/banner.png" in blocked
    refusals = [(r.levelno, r.getMessage()) for r in caplog.records if "refused" in r.getMessage()]
    assert refusals[0][0] == logging.WARNING and "/secret" in refusals[0][1]  # loud once per origin
    assert any("banner.png" in message for _, message in refusals[1:])


def test_reset_hook_restores_the_site_and_replay_is_exact(env, tasks, site):
    task = tasks["6"]
    observation = env.reset(task)
    prefix = [f"type [{element(observation, 'searchbox', 'Search')}] [yoga block] [1]"]
    observation = env.step(prefix[0]).observation
    prefix.append(f"click [{element(observation, 'link', 'Yoga Block Set')}]")
    observation = env.step(prefix[1]).observation
    prefix.append(f"click [{element(observation, 'button', 'Add to Cart')}]")
    after = env.step(prefix[2]).observation
    assert site.data.snapshot()["cart"] == [("yoga-block-set", 1)]
    resets = site.data.resets
    # Branching by replay: the reset hook restores the site, the same prefix reaches the same page.
    assert replay(env, task, 0, prefix) == after
    assert replay(env, task, 0, prefix) == after
    assert site.data.resets == resets + 2
    assert site.data.snapshot()["cart"] == [("yoga-block-set", 1)], "replay added the product once, not thrice"
    env.reset(task)
    assert site.data.snapshot()["cart"] == []


def test_expert_replays_its_trajectories(env):
    from agentbench.expert import collect_expert

    train = {t.id: t for t in env.tasks("train")}
    assert len(train) == 10
    # a search, a click, a form, another tab and a login: element references resolve on the live page
    sample = [train[i] for i in ("102", "105", "110")]
    data = collect_expert(lambda: env_like(env), sample, 30)
    assert data.failed_tasks == []
    assert [s.action.split(" ")[0] for s in data.steps] == ["type", "stop", "tab_focus", "stop", "click", "stop"]
    assert data.steps[0].thought == "I search for mug."


def env_like(env):
    """A second env instance with the same settings (the harness's make_env)."""
    from agentbench.envs.webarena import WebArenaLite

    return WebArenaLite(env.config)


def test_expert_stops_when_the_agent_leaves_its_path(env):
    from agentbench.env import NoExpert

    task = next(t for t in env.tasks("train") if t.id == "101")
    env.reset(task)
    env.step(env.expert_step().action)
    env.step("scroll [down]")
    with pytest.raises(NoExpert):
        env.expert_step()
    env.reset(next(iter(env.tasks("test"))))
    with pytest.raises(NoExpert):
        env.expert_step()


@pytest.mark.slow
def test_every_fixture_expert_trajectory_succeeds(env):
    from agentbench.expert import collect_expert

    tasks = env.tasks("train")
    data = collect_expert(lambda: env_like(env), tasks, 30)
    assert data.failed_tasks == [] and len({s.task_id for s in data.steps}) == len(tasks)


class ScriptedBackend:
    """A policy backend that answers from a script, reading element ids off the prompt as a model would."""

    name = "scripted"

    def __init__(self, scripts):
        self.scripts = scripts  # objective -> list of script items

    def prompt_tokens(self, prompts):
        return [sum(len(m["content"]) for m in p) // 4 for p in prompts]

    def generate(self, prompts, params):
        from agentbench.backends import Completion

        out = []
        for messages in prompts:
            observation = messages[-1]["content"]
            objective = re.search(r"^OBJECTIVE: (.*)$", observation, re.MULTILINE).group(1)
            done = len(re.findall(r"^PREVIOUS ACTION: (?!None)", observation, re.MULTILINE))
            turn = len([m for m in messages if m["role"] == "assistant"]) + done
            item = self.scripts[objective][turn] if turn < len(self.scripts[objective]) else "no idea"
            if isinstance(item, tuple):
                verb, role, name, rest = item
                item = f"{verb} [{element(observation, role, name)}] {rest}".strip()
            text = f"Thought: scripted.\nAction: {item}" if item != "no idea" else "I am lost."
            out.append(Completion(text, 10, 5, "stop"))
        return out

    def describe(self):
        return {"backend": self.name}

    def close(self):
        pass


def test_rollout_engine_records_the_evaluation(env, tasks):
    """The harness's engine drives the env: the evaluation lands in EpisodeRecord.extra."""
    from agentbench.backends import SamplingParams
    from agentbench.prompting import PromptBuilder, PromptConfig
    from agentbench.rollout import EpisodeJob, RolloutEngine, RolloutLimits

    solve, lost = tasks["5"], tasks["1"]
    backend = ScriptedBackend({solve.spec["config"]["intent"]: SOLUTIONS["5"], lost.spec["config"]["intent"]: []})
    engine = RolloutEngine(backend, lambda: env_like(env), PromptBuilder(env.instructions, PromptConfig(), 0),
                           SamplingParams(max_new_tokens=8), RolloutLimits(max_turns=30), wave_size=2,
                           env_name="webarena-lite")
    records = {r.task_id: r for r in engine.run([EpisodeJob(solve, 0), EpisodeJob(lost, 0)])}
    solved = records["5"]
    assert solved.success and solved.termination.value == "success" and solved.turns == 2
    assert solved.extra["evaluation"]["checks"][0]["kind"] == "url_match" and solved.extra["site_reset"]
    lost_record = records["1"]  # replies without an action line: the harness's invalid-move limit
    assert lost_record.termination.value == "invalid_action" and lost_record.invalid_actions == 3


def test_a_backslash_url_is_refused_by_the_precheck_and_in_the_browser(env, tasks, site, outside):
    """``http://OUTSIDE\\@SITE/``: urllib sees the site's host, Chromium goes to OUTSIDE."""
    tricky = f"{outside.url}\\@{site.url.removeprefix('http://')}/"
    env.reset(tasks["1"])
    step = env.step(f"goto [{tricky}]")
    assert "is not one of the task's sites" in step.observation
    # The browser-level guard, with the pre-check out of the way: Chromium parses the URL itself.
    guard = env._episode.guard
    before = len(guard.refused)
    with pytest.raises(Exception, match="ERR_BLOCKED_BY_CLIENT"):
        env._page.goto(tricky, wait_until="load")
    assert outside.hits == [], "the outside server must never be reached"
    assert any(url.startswith(outside.url) for url in guard.refused[before:])
