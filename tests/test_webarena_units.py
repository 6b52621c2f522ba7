"""webarena-lite without a browser: task configs, grammar, observation text, evaluators, judges,
expert files, availability and the command line."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentbench.envs.webarena import actions, evaluators, observation, tasks
from agentbench.envs.webarena.expert import load_expert_file
from agentbench.envs.webarena.fixture_site import EXPERT_FILE, TASK_FILE
from agentbench.envs.webarena.judge import JudgeError, OpenAIJudge
from agentbench.errors import ConfigError, CorruptFileError

WA_VARIABLES = (*tasks.SITE_VARIABLES, tasks.RESET_VARIABLE)


@pytest.fixture
def no_sites(monkeypatch):
    for key in WA_VARIABLES:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def browser_present(monkeypatch):
    """These tests read the availability of the sites, not of the browser: the browser check
    (a Chromium binary on disk) passes even on a machine without Chromium."""
    import sys

    from agentbench.envs.webarena.browser import CHROMIUM_VARIABLE

    monkeypatch.setenv(CHROMIUM_VARIABLE, sys.executable)


# -- task configs ------------------------------------------------------------------------------

def test_all_165_shipped_configs_validate():
    configs = tasks.load_task_configs()
    assert len(configs) == 165 and len({c.task_id for c in configs}) == 165
    summary = tasks.summarise_tasks(configs, {})
    assert (summary.total, summary.runnable, summary.needs_judge, summary.site_functions) == (165, 0, 40, 14)
    everything = tasks.summarise_tasks(configs, {s: "http://x" for s in tasks.SITES})
    assert everything.runnable == 165 and everything.runnable_needs_judge == 40
    shopping = tasks.summarise_tasks(configs, {"shopping": "http://x"})
    assert shopping.runnable == 45 and "WA_GITLAB" in shopping.missing_variables
    assert {f for c in configs for f in c.site_functions} == {
        "reddit_get_post_url", "shopping_get_latest_order_url", "gitlab_get_project_memeber_role"}
    multi_tab = [c for c in configs if len(c.start_urls) > 1]
    assert len(multi_tab) == 1 and len(multi_tab[0].start_urls) == 3


def _config(**changes):
    base = json.loads(TASK_FILE.read_text())[0]
    base["eval"] = {**base["eval"], **changes.pop("eval", {})}
    return {**base, **changes}


@pytest.mark.parametrize(("change", "message"), [
    ({"eval": {"eval_types": []}}, "eval.eval_types"),
    ({"eval": {"eval_types": ["url_match"], "reference_url": ""}}, "url_match needs a reference_url"),
    ({"eval": {"eval_types": ["screenshot_match"]}}, "eval.eval_types"),
    ({"sites": ["myspace"]}, "sites"),
    ({"eval": {"eval_types": ["program_html"], "program_html": [
        {"url": "last", "locator": "window.alert(1)", "required_contents": {"must_include": ["x"]}}]}},
     "unknown locator kind"),
    ({"eval": {"eval_types": ["program_html"], "program_html": [
        {"url": "func:__import__('os').system('true')", "locator": "", "required_contents": {"exact_match": "x"}}]}},
     "plain call"),
    ({"eval": {"eval_types": ["program_html"], "program_html": [
        {"url": "last", "locator": "", "required_contents": {"exact_match": "x", "must_include": ["y"]}}]}},
     "exactly one"),
])
def test_malformed_configs_are_one_line_errors(tmp_path, change, message):
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([_config(**change)]))
    with pytest.raises(CorruptFileError, match=message) as info:
        tasks.load_task_configs(str(path))
    assert "task 1" in str(info.value) and "\n" not in str(info.value)


def test_task_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        tasks.load_task_configs(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        tasks.load_task_configs(str(bad))
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps([_config(), _config()]))
    with pytest.raises(CorruptFileError, match="occurs twice"):
        tasks.load_task_configs(str(twice))


def test_function_calls_are_parsed_not_evaluated():
    call = tasks.parse_function_call("func:reddit_get_post_url('__last_url__')")
    assert call == tasks.FunctionCall("reddit_get_post_url", ("__last_url__",))
    call = tasks.parse_function_call("func:gitlab_get_project_memeber_role(__page__, 'byteblaze')")
    assert call.args == (None, "byteblaze")
    for bad in ("func:open('x')", "func:reddit_get_post_url(x)", "func:reddit_get_post_url(url='a')", "func:1+"):
        with pytest.raises(ValueError):
            tasks.parse_function_call(bad)


def test_placeholders_and_site_variables():
    urls = tasks.site_urls({"WA_SHOPPING": "http://h:7770/", "WA_SHOPPING_ADMIN": "http://h:7780/admin",
                            "WA_MAP": " "})
    assert urls == {"shopping": "http://h:7770", "shopping_admin": "http://h:7780/admin"}
    text = tasks.substitute("__SHOPPING__/a |AND| __SHOPPING_ADMIN__/b |AND| __GITLAB__/c", urls)
    assert text == "http://h:7770/a |AND| http://h:7780/admin/b |AND| __GITLAB__/c"


# -- grammar -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "canonical"), [
    ("click [12]", "click [12]"),
    ("click[12]", "click [12]"),
    ("hover [3]", "hover [3]"),
    ("type [5] [yoga mat]", "type [5] [yoga mat] [1]"),
    ("type [5] [a [b] c] [0]", "type [5] [a [b] c] [0]"),
    ("press [Control+a]", "press [Control+a]"),
    ("scroll [down]", "scroll [down]"),
    ("scroll up", "scroll [up]"),
    ("new_tab", "new_tab"),
    ("tab_focus [2]", "tab_focus [2]"),
    ("close_tab", "close_tab"),
    ("goto [http://h/x?q=[1]]", "goto [http://h/x?q=[1]]"),
    ("go_back", "go_back"),
    ("go_forward", "go_forward"),
    ("stop [$29.99]", "stop [$29.99]"),
    ("stop", "stop []"),
    ("stop [N/A]", "stop [N/A]"),
])
def test_action_grammar(text, canonical):
    assert str(actions.parse_action(text)) == canonical


@pytest.mark.parametrize("text", ["", "jump [3]", "click [abc]", "click", "type [x] [y]", "tab_focus [a]",
                                  "scroll [left]", "goto []"])
def test_malformed_actions(text):
    with pytest.raises(actions.ActionParseError):
        actions.parse_action(text)


def test_type_action_fields():
    action = actions.parse_action("type [7] [hello world] [0]")
    assert (action.element_id, action.text, action.press_enter) == (7, "hello world", False)
    assert actions.parse_action("type [7] [hello]").press_enter


@pytest.mark.parametrize(("reply", "expected"), [
    ("Thought: search first.\nAction: type [3] [mug] [1]", "type [3] [mug] [1]"),
    ("Thought: x\nAction: `click [4]`", "click [4]"),
    ("Thought: x\nAction: ```stop [42]```", "stop [42]"),
    ("Let's think step-by-step. The price is shown. In summary, the next action I will perform is ```stop [$9]```",
     "stop [$9]"),
    ("Action: click [1]\nAction: click [2]", "click [2]"),
    ("I do not know what to do.", None),
    ("", None),
])
def test_action_extraction(reply, expected):
    assert actions.extract_action(reply) == expected


def test_key_names():
    assert actions.key_combination("ctrl+a") == "Control+a"
    assert actions.key_combination("Enter") == "Enter"
    assert actions.key_combination("cmd+shift+T") == "Meta+Shift+T"
    with pytest.raises(actions.ActionParseError):
        actions.key_combination("+")


# -- observation text --------------------------------------------------------------------------

def _node(node_id, role, name=None, children=(), props=(), ignored=False, backend=None):
    node = {"nodeId": str(node_id), "ignored": ignored, "role": {"value": role}, "childIds": [str(c) for c in children],
            "properties": [{"name": k, "value": {"value": v}} for k, v in props],
            "backendDOMNodeId": backend if backend is not None else node_id}
    if name is not None:
        node["name"] = {"value": name}
    return node


def test_tree_format_follows_webarena():
    nodes = [
        _node(1, "RootWebArea", "Shop", [2, 3], [("focused", True)]),
        _node(2, "none", None, [4, 5], ignored=True),
        _node(3, "generic", "", [6]),
        _node(4, "link", "Home", [7], [("focusable", True), ("url", "http://h/")]),
        _node(7, "StaticText", "Home", [8]),
        _node(8, "InlineTextBox", "Home"),
        _node(5, "textbox", "Search", [], [("required", False), ("editable", "plaintext")]),
        _node(6, "StaticText", "it's here", []),
        _node(9, "link", "listed twice"),
    ]
    nodes.append(dict(nodes[3]))  # CDP sometimes lists a node twice
    tree = observation.format_tree(nodes)
    assert tree.text.splitlines() == [
        "[1] RootWebArea 'Shop' focused: True",
        "\t[2] link 'Home'",
        "\t[4] textbox 'Search' required: False",
    ]  # [3], the StaticText repeating its link, is dropped; so is a text with a quote (WebArena's pattern)
    assert tree.nodes[2].backend_id == 4 and tree.find("textbox", "Search").id == 4
    assert tree.find("link", "Nope") is None


def test_tree_is_cut_at_a_line_boundary():
    nodes = [_node(1, "RootWebArea", "Long", list(range(2, 102)))]
    nodes += [_node(i, "link", f"link number {i}") for i in range(2, 102)]
    tree = observation.format_tree(nodes, max_chars=300)
    assert tree.text.endswith(observation.TRUNCATION_NOTE) and len(tree.text) < 360
    assert max(tree.nodes) == len(tree.text.splitlines()) - 1


# -- evaluators --------------------------------------------------------------------------------

def test_string_matching_semantics():
    assert evaluators.clean_answer(' "Hello" ') == "hello"
    assert evaluators.exact_match("$29.99", "'$29.99'") == 1.0
    assert evaluators.exact_match("Yes", "yes.") == 0.0
    assert evaluators.must_include("Hawk Yoga Mat", "the hawk yoga mat and more") == 1.0
    assert evaluators.must_include("2", "12 reviews", tokenize=True) == 0.0
    assert evaluators.must_include("2", "there are 2 reviews.", tokenize=True) == 1.0
    assert evaluators.must_include("2", "12 reviews", tokenize=False) == 1.0
    assert evaluators.must_include("0", "0.5", tokenize=True) == 0.0


@pytest.mark.parametrize(("page", "reference", "score"), [
    ("http://h/catalogsearch/result/?q=yoga", "http://h/catalogsearch/result/?q=yoga", 1.0),
    ("http://h/catalogsearch/result/?q=Yoga&p=2", "http://h/catalogsearch/result/?q=yoga |OR| "
                                                  "http://h/catalogsearch/result/?q=Yoga", 1.0),
    ("http://h/catalogsearch/result/?q=mug", "http://h/catalogsearch/result/?q=yoga", 0.0),
    ("http://h/catalogsearch/result/", "http://h/catalogsearch/result/?q=yoga", 0.0),
    ("http://h/a/b/c/", "http://h/a/b", 1.0),  # GOLD in PRED: the reference path is a substring
    ("http://h/a", "http://h/a/b", 0.0),
    ("http://h/x?sort=d&state=opened", "http://h/x?state=opened&sort=d", 1.0),
])
def test_url_match_gold_in_pred(page, reference, score):
    assert evaluators.url_matches(page, reference) == score


class _Judge:
    name = "fake"

    def __init__(self, reply):
        self.reply = reply

    def complete(self, messages):
        return self.reply


@pytest.mark.parametrize(("reply", "score"), [("Correct.", 1.0), ("The answer is incorrect", 0.0),
                                              ("partially correct", 0.0), ("I cannot tell", 0.0)])
def test_fuzzy_verdicts(reply, score):
    assert evaluators.fuzzy_match(_Judge(reply), "q", "ref", "ans").score == score


@pytest.mark.parametrize(("reply", "score"), [("same", 1.0), ("They are different", 0.0), ("?", 0.0)])
def test_unachievable_verdicts(reply, score):
    assert evaluators.unachievable_match(_Judge(reply), "q", "why", "ans").score == score


def test_fuzzy_match_without_a_judge_is_an_error():
    with pytest.raises(JudgeError, match="needs an LLM judge"):
        evaluators.fuzzy_match(None, "q", "r", "a")


def test_string_check_combines_and_records_the_judge():
    config = tasks.TaskConfig.model_validate(_config(eval={"reference_answers": {
        "must_include": ["sturdy"], "fuzzy_match": ["It is sturdy"]}}))
    functions = evaluators.SiteFunctions({}, {}, lambda url: False)
    ctx = evaluators.EvalContext(config, "It is very sturdy", None, {}, _Judge("correct"), functions)
    result = evaluators.evaluate(ctx)
    assert result.score == 1.0 and result.judge == "fake"
    assert result.as_dict()["judge_calls"][0]["reply"] == "correct"
    ctx = evaluators.EvalContext(config, "It is fragile", None, {}, _Judge("correct"), functions)
    assert evaluators.evaluate(ctx).score == 0.0


def test_site_helpers():
    functions = evaluators.SiteFunctions({"reddit": "http://r"}, {}, lambda url: url.startswith("http://r"))
    post = functions.reddit_get_post_url("http://r/f/books/1234/some-title/comment/9")
    assert post == "http://r/f/books/1234/"
    assert functions.reddit_get_post_url("http://r/user/x") == "http://r/user/x"
    with pytest.raises(evaluators.SiteFunctionUnavailable, match="WA_SHOPPING"):
        functions.shopping_get_latest_order_url()
    with pytest.raises(evaluators.SiteFunctionUnavailable, match="refused"):
        functions._http("http://elsewhere/rest")


class _ChatServer:
    """A loopback OpenAI-compatible endpoint (the real judge endpoint cannot run here)."""

    def __init__(self, reply: str):
        self.requests: list[dict] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                blob = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_openai_compatible_judge(monkeypatch):
    endpoint = _ChatServer("The student is correct.")
    monkeypatch.setenv("JUDGE_KEY", "k-123")
    judge = OpenAIJudge(endpoint.url, "judge-model", "JUDGE_KEY")
    call = evaluators.fuzzy_match(judge, "q?", "ref", "ans")
    assert call.score == 1.0 and judge.name == f"openai:judge-model@{endpoint.url}"
    sent = endpoint.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer k-123"
    assert sent["model"] == "judge-model" and sent["temperature"] == 0
    endpoint.server.shutdown()
    endpoint.server.server_close()
    with pytest.raises(JudgeError, match="failed"):
        OpenAIJudge(endpoint.url, "m", timeout_s=2).complete([{"role": "user", "content": "x"}])


def test_backend_judge_runs_a_real_model(tiny_model):
    from agentbench.backends import BackendOptions
    from agentbench.envs.webarena.judge import shared_backend_judge

    judge = shared_backend_judge("tiny", "hf", BackendOptions(), 4)
    assert judge is shared_backend_judge("tiny", "hf", BackendOptions(), 4)
    call = evaluators.fuzzy_match(judge, "q", "ref", "ans")
    assert judge.name == "hf:tiny" and isinstance(call.reply, str) and call.score in (0.0, 1.0)


# -- expert files ------------------------------------------------------------------------------

def test_fixture_expert_file_loads():
    trajectories = load_expert_file(str(EXPERT_FILE))
    assert len(trajectories) == 10
    assert all(t.steps[-1].action.startswith("stop") for t in trajectories)
    assert sum(s.element is not None for t in trajectories for s in t.steps) > 10


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "line 2: not JSON"),
    ('{"task": {}, "steps": []}', "line 2: task.task_id"),
    (None, "line 2: steps.0.action: Value error, not an action"),
    ("DUP", "task_id 101 repeats"),
])
def test_malformed_expert_files(tmp_path, line, message):
    first = EXPERT_FILE.read_text().splitlines()[0]
    if line is None:
        record = json.loads(first)
        record["task"]["task_id"] = 999
        record["steps"][0]["action"] = "jump [3]"
        line = json.dumps(record)
    elif line == "DUP":
        line = first
    path = tmp_path / "expert.jsonl"
    path.write_text(first + "\n" + line + "\n")
    with pytest.raises(CorruptFileError, match=message.replace("[", r"\[")):
        load_expert_file(str(path))


# -- the env without a browser -----------------------------------------------------------------

def test_splits(monkeypatch):
    from agentbench.envs.webarena import WebArenaConfig, WebArenaLite

    monkeypatch.setenv("WA_SHOPPING", "http://127.0.0.1:9")
    monkeypatch.delenv("WA_WIKIPEDIA", raising=False)
    env = WebArenaLite(WebArenaConfig(task_file=str(TASK_FILE), expert_path=str(EXPERT_FILE)))
    test_ids = [t.id for t in env.tasks("test")]
    assert test_ids == [str(i) for i in range(1, 12) if i != 10], "task 10 needs WA_WIKIPEDIA"
    assert [t.id for t in env.tasks("train")] == [str(i) for i in range(101, 111) if i != 108]
    assert env.tasks("ood") == []
    with pytest.raises(ConfigError, match="expert_path"):
        WebArenaLite(WebArenaConfig(task_file=str(TASK_FILE))).tasks("train")
    # a reply without an action line is the harness's invalid move; any action text goes to step()
    assert env.parse_action("no idea") is None
    assert env.parse_action("Thought: x\nAction: jump around") == "jump around"
    assert env.parse_action("Thought: x\nAction: click [3]") == "click [3]"


def test_train_tasks_that_are_test_tasks_are_left_out(tmp_path, monkeypatch):
    from agentbench.envs.webarena import WebArenaConfig, WebArenaLite

    monkeypatch.setenv("WA_SHOPPING", "http://127.0.0.1:9")
    record = json.loads(EXPERT_FILE.read_text().splitlines()[0])
    test_task = json.loads(TASK_FILE.read_text())[0]
    leak = {**record, "task": {**test_task, "task_id": 555}}
    path = tmp_path / "expert.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(leak) + "\n")
    env = WebArenaLite(WebArenaConfig(task_file=str(TASK_FILE), expert_path=str(path)))
    assert [t.id for t in env.tasks("train")] == ["101"]


def test_availability_names_the_variables(no_sites, browser_present, monkeypatch):
    from agentbench.envs.webarena import WebArenaLite

    available = WebArenaLite.availability()
    assert not available.runnable
    assert "WA_SHOPPING, WA_SHOPPING_ADMIN, WA_REDDIT, WA_GITLAB, WA_MAP, WA_WIKIPEDIA, WA_HOMEPAGE" in available.detail
    assert "165 tasks, 40 of them need an LLM judge (fuzzy_match) and 14 call func: site APIs" in available.detail
    monkeypatch.setenv("WA_SHOPPING", "http://127.0.0.1:9")
    available = WebArenaLite.availability()
    assert available.runnable, available.detail
    assert available.detail.startswith("45 of 165 tasks runnable with the sites set (10 need an LLM judge, "
                                       "3 call func: site APIs)")


def test_run_without_sites_is_a_one_line_error(no_sites, browser_present, tmp_path):
    from typer.testing import CliRunner

    from agentbench.cli import run_app

    result = CliRunner().invoke(run_app, ["--method", "il", "--env", "webarena-lite", "--budget", "smoke",
                                          "--set", f"expert_path={EXPERT_FILE}", "--out", str(tmp_path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: env webarena-lite cannot run here: set WA_SHOPPING")
    assert not any(tmp_path.iterdir()), "nothing may be written before the env is known to run"


def test_list_envs_reports_runnable_tasks(browser_present, monkeypatch):
    from typer.testing import CliRunner

    from agentbench.cli import app

    monkeypatch.setenv("WA_SHOPPING", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["list", "envs"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert "webarena-lite" in result.output and "45 of 165 tasks runnable" in " ".join(result.output.split())


def test_run_session_binds_the_policy_as_judge(tmp_path):
    from agentbench.session import RunSession
    from agentbench.spec import resolve_spec

    spec = resolve_spec(method="il", env="webarena-lite", protocol="in-domain", model="tiny", backend="hf",
                        budget="smoke", seed=0, sets=[f"expert_path={EXPERT_FILE}", "judge_max_tokens=16"])
    env = RunSession(spec, tmp_path).make_env()
    assert env.judge().name == "hf:tiny"
    assert spec.limits.max_turns == 30
    spec = resolve_spec(method="il", env="webarena-lite", protocol="in-domain", model="tiny", backend="hf",
                        budget="smoke", seed=0, sets=["judge_url=http://127.0.0.1:9/v1"])
    assert RunSession(spec, tmp_path).make_env().judge().name == "openai:gpt-4-1106-preview@http://127.0.0.1:9/v1"
