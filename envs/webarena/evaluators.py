"""WebArena-Lite's evaluators, with the published semantics (our code).

A task's score is the product of its checks, one per ``eval_types`` entry; success is
``score >= 1``.

- ``string_match`` on the final answer (the text of ``stop [answer]``, cleaned: stripped, one
  pair of enclosing quotes removed, lower-cased): ``exact_match`` (equal), ``must_include``
  (each phrase is a substring; when the list holds one single-character phrase it must be a
  whole token, so that "0" is not found in "10"), ``fuzzy_match`` (an LLM judge says
  "correct" for each reference; the reference ``"N/A"`` is an unachievable task: the answer
  "N/A" passes, otherwise the judge compares the agent's reason with ``string_note``).
- ``url_match``: the final page's URL against ``reference_url`` alternatives (`` |OR| ``),
  rule "GOLD in PRED": some reference's host+path is a substring of the page's host+path, and
  for every query key of the references, one of their values occurs among the page's values.
- ``program_html``: per target, open ``url`` (``last``: stay on the agent's final page; a
  ``func:`` helper computes the URL), select content with ``locator`` (empty: the page HTML;
  ``document.``/``[...document.``: a JavaScript expression run in the page; ``lambda:``: a
  JavaScript function; ``func:``: a site helper) and compare with ``required_contents``
  (``exact_match``, ``must_include`` with `` |OR| `` alternatives, or ``fuzzy_match`` by the
  judge). A locator that yields nothing scores 0.

Deviations, all deliberate: NLTK's ``word_tokenize`` is replaced by a regex tokenizer (they agree
on the single-character references it is used for); after opening a target URL we wait for the
page's load event instead of a fixed 3 s sleep; ``func:`` expressions are parsed, never
``eval``-ed. Locators run in the page, in the browser sandbox of a context that can reach only the
allowlisted sites.
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentbench.envs.webarena.judge import Judge, JudgeError, Messages
from agentbench.envs.webarena.tasks import (
    FunctionCall,
    ProgramHtmlTarget,
    TaskConfig,
    parse_function_call,
    substitute,
)
from agentbench.errors import AgentbenchError

OR = " |OR| "


class SiteFunctionUnavailable(AgentbenchError):
    """A ``func:`` helper needs a site API that this deployment does not offer."""


# -- strings ----------------------------------------------------------------------------------

def clean_answer(answer: str) -> str:
    answer = answer.strip()
    if len(answer) >= 2 and answer[0] == answer[-1] and answer[0] in "'\"":
        answer = answer[1:-1]
    return answer.lower()


_TOKEN = re.compile(r"\w+(?:[.,']\w+)*|[^\w\s]")


def word_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def exact_match(reference: str, prediction: str) -> float:
    return float(clean_answer(prediction) == clean_answer(reference))


def must_include(reference: str, prediction: str, tokenize: bool = False) -> float:
    ref, pred = clean_answer(reference), clean_answer(prediction)
    if tokenize and len(ref) == 1 and len(word_tokens(ref)) == 1:
        return float(ref in word_tokens(pred))
    return float(ref in pred)


# -- the judge's questions --------------------------------------------------------------------

@dataclass
class JudgeCall:
    kind: str
    reference: str
    reply: str
    score: float


def _ask(judge: Judge | None, messages: Messages) -> str:
    if judge is None:
        raise JudgeError("this task needs an LLM judge (fuzzy_match) and none is configured: "
                         "set judge_url=... or judge=<model>")
    return judge.complete(messages)


def fuzzy_match(judge: Judge | None, question: str, reference: str, answer: str) -> JudgeCall:
    prompt = (
        "Grade a student's answer to a question by comparing it with the reference answer. The "
        "wording may differ; what counts is whether the student's answer means the same thing.\n"
        f"question: {question}\n"
        f"reference answer: {reference}\n"
        "The string 'N/A' anywhere here stands for 'not achievable'.\n"
        f"student answer: {answer}\n"
        "End with your verdict: correct, incorrect or partially correct."
    )
    reply = _ask(judge, [{"role": "system", "content": "You are a careful grader."},
                         {"role": "user", "content": prompt}])
    verdict = reply.lower()
    # Published reading: any "incorrect" or "partially correct" fails; otherwise "correct" passes.
    score = 0.0 if ("partially correct" in verdict or "incorrect" in verdict) else float("correct" in verdict)
    return JudgeCall("fuzzy_match", reference, reply, score)


def unachievable_match(judge: Judge | None, question: str, reason: str, answer: str) -> JudgeCall:
    prompt = (
        f"task: {question}\n"
        f"actual reason the task cannot be done: {reason}\n"
        f"reason reported by the person who tried: {answer}\n"
        "The task cannot be done, for the actual reason given. Someone tried it, failed, and "
        "reported a reason. Decide whether the reported reason agrees with the actual one, even "
        "implicitly. Answer 'same' if it does and 'different' if it does not."
    )
    reply = _ask(judge, [{"role": "system", "content": "You are a careful grader."},
                         {"role": "user", "content": prompt}])
    verdict = reply.lower()
    score = 0.0 if "different" in verdict else float("same" in verdict)
    return JudgeCall("unachievable_match", reason, reply, score)


# -- the checks -------------------------------------------------------------------------------

@dataclass
class Check:
    kind: str
    score: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluation:
    score: float
    checks: list[Check]
    judge: str | None
    judge_calls: list[JudgeCall]

    @property
    def success(self) -> bool:
        return self.score >= 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score, "success": self.success,
            "checks": [{"kind": c.kind, "score": c.score, **c.detail} for c in self.checks],
            "judge": self.judge,
            "judge_calls": [vars(call) for call in self.judge_calls],
        }


@dataclass
class EvalContext:
    config: TaskConfig
    answer: str
    page: Any
    """The agent's active Playwright page at the end of the episode."""
    urls: Mapping[str, str]
    judge: Judge | None
    functions: SiteFunctions
    calls: list[JudgeCall] = field(default_factory=list)


def string_check(ctx: EvalContext) -> Check:
    answers = ctx.config.eval.reference_answers
    assert answers is not None  # the schema guarantees it for string_match
    pred = clean_answer(ctx.answer)
    score = 1.0
    if answers.exact_match is not None:
        score *= exact_match(answers.exact_match, pred)
    if answers.must_include is not None:
        for phrase in answers.must_include:
            score *= must_include(phrase, pred, tokenize=len(answers.must_include) == 1)
    if answers.fuzzy_match is not None:
        question = ctx.config.intent
        if answers.fuzzy_match == "N/A":
            score *= exact_match("N/A", pred)
            if score != 1:
                call = unachievable_match(ctx.judge, question, ctx.config.eval.string_note or "", pred)
                ctx.calls.append(call)
                score = call.score
        else:
            for reference in answers.fuzzy_match:
                call = fuzzy_match(ctx.judge, question, reference, pred)
                ctx.calls.append(call)
                score *= call.score
    return Check("string_match", score, {"answer": ctx.answer})


def _split_url(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urllib.parse.urlparse(url)
    return parts.netloc + parts.path, urllib.parse.parse_qs(parts.query)


def url_matches(page_url: str, reference_url: str) -> float:
    """The "GOLD in PRED" rule over `` |OR| `` alternatives."""
    pred_base, pred_query = _split_url(page_url.rstrip("/"))
    ref_bases: list[str] = []
    ref_queries: dict[str, set[str]] = collections.defaultdict(set)
    for ref in reference_url.split(OR):
        base, query = _split_url(ref.strip().rstrip("/"))
        ref_bases.append(base)
        for key, values in query.items():
            ref_queries[key].update(values)
    base_score = float(any(base in pred_base for base in ref_bases))
    query_score = 1.0
    for key, values in ref_queries.items():
        query_score *= float(any(v in pred_query.get(key, []) for v in values))
    return base_score * query_score


def url_check(ctx: EvalContext) -> Check:
    reference = substitute(ctx.config.eval.reference_url, ctx.urls)
    page_url = ctx.page.url
    return Check("url_match", url_matches(page_url, reference), {"page_url": page_url, "reference_url": reference})


def _select(ctx: EvalContext, target: ProgramHtmlTarget) -> str | None:
    page = ctx.page
    locator = target.locator.strip()
    if not locator:
        return page.content()
    if locator.startswith(("document.", "[...document.")):
        for statement in target.prep_actions:
            with contextlib.suppress(Exception):  # published: a failing preparation is ignored
                page.evaluate(f"() => {statement}")
        try:
            return str(_js_text(page.evaluate(f"() => {locator}"))) or ""
        except Exception:
            return ""
    if locator.startswith("lambda:"):
        try:
            value = page.evaluate(locator.removeprefix("lambda:"))
        except Exception:
            return None
        return str(_js_text(value)) if value else None
    return ctx.functions.call(parse_function_call(locator), page)


def _js_text(value: Any) -> Any:
    """JavaScript values as the published evaluator's Python ``str()`` saw them."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return value


def html_check(ctx: EvalContext) -> Check:
    score = 1.0
    seen: list[dict[str, Any]] = []
    for target in ctx.config.eval.program_html:
        page = ctx.page
        if target.url.startswith("func:"):
            url = ctx.functions.call(parse_function_call(target.url), page)
        else:
            url = substitute(target.url, ctx.urls)
        if url != "last":
            _open(page, url)
        selected = _select(ctx, target)
        record = {"url": url if url != "last" else page.url, "locator": target.locator,
                  "selected": None if selected is None else selected[:500]}
        seen.append(record)
        if selected is None:
            score = 0.0
            break
        required = target.required_contents
        if required.exact_match is not None:
            score *= exact_match(required.exact_match, selected)
        elif required.must_include is not None:
            for content in required.must_include:
                score *= float(any(must_include(alt, selected) for alt in content.split(OR)))
        elif required.fuzzy_match is not None:
            call = fuzzy_match(ctx.judge, ctx.config.intent, ", ".join(required.fuzzy_match), selected)
            ctx.calls.append(call)
            score *= call.score
    return Check("program_html", score, {"targets": seen})


def _open(page: Any, url: str) -> None:
    with contextlib.suppress(Exception):  # a refused or broken page is judged by what it shows
        page.goto(url, wait_until="load")


CHECKS: dict[str, Callable[[EvalContext], Check]] = {
    "string_match": string_check,
    "url_match": url_check,
    "program_html": html_check,
}


def evaluate(ctx: EvalContext) -> Evaluation:
    checks = [CHECKS[kind](ctx) for kind in ctx.config.eval.eval_types]
    score = 1.0
    for check in checks:
        score *= check.score
    judge_name = ctx.judge.name if (ctx.calls and ctx.judge is not None) else None
    return Evaluation(score, checks, judge_name, ctx.calls)


# -- func: site helpers -------------------------------------------------------------------------

@dataclass
class SiteFunctions:
    """WebArena's site helpers, called by ``func:`` expressions; HTTP goes only to configured sites."""

    urls: Mapping[str, str]
    accounts: Mapping[str, Mapping[str, str]]
    allows: Callable[[str], bool]
    timeout_s: float = 30.0

    def call(self, call: FunctionCall, page: Any) -> str:
        # '__last_url__' is the page's URL when the target is checked (published semantics).
        args = [page if a is None else substitute(a.replace("__last_url__", page.url), self.urls)
                for a in call.args]
        try:
            return _HELPERS[call.name](self, *args)
        except SiteFunctionUnavailable as exc:
            raise SiteFunctionUnavailable(f"func:{call.name} cannot run on this deployment: {exc}") from exc

    # HTTP to a site's API, refusing anything outside the allowlist
    def _http(self, url: str, *, body: Any = None, token: str | None = None) -> Any:
        if not self.allows(url):
            raise SiteFunctionUnavailable(f"refused site-API request to {url}: not a configured site")
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SiteFunctionUnavailable(f"site API {url} failed: {exc}") from exc

    def _shopping(self, name: str) -> str:
        if "shopping" not in self.urls:
            raise SiteFunctionUnavailable(f"func:{name} needs the shopping site (set WA_SHOPPING)")
        return self.urls["shopping"]

    def _admin_token(self, base: str) -> str:
        account = self.accounts.get("shopping_site_admin", {})
        token = self._http(f"{base}/rest/default/V1/integration/admin/token",
                           body={"username": account.get("username"), "password": account.get("password")})
        if not isinstance(token, str):
            raise SiteFunctionUnavailable(f"the shopping site's admin token endpoint answered {token!r}")
        return token

    def shopping_get_latest_order_url(self) -> str:
        base = self._shopping("shopping_get_latest_order_url")
        query = urllib.parse.urlencode({"searchCriteria[sortOrders][0][field]": "created_at",
                                        "searchCriteria[sortOrders][0][direction]": "DESC",
                                        "searchCriteria[pageSize]": "1"})
        orders = self._http(f"{base}/rest/V1/orders?{query}", token=self._admin_token(base))
        try:
            order_id = int(orders["items"][0]["increment_id"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SiteFunctionUnavailable(f"the shopping site's orders API answered {str(orders)[:200]!r}") from exc
        return f"{base}/sales/order/view/order_id/{order_id}/"

    def _reviews(self, sku: str, name: str) -> list[dict[str, Any]]:
        base = self._shopping(name)
        reviews = self._http(f"{base}/rest/V1/products/{urllib.parse.quote(sku)}/reviews",
                             token=self._admin_token(base))
        if not isinstance(reviews, list):
            raise SiteFunctionUnavailable(f"the shopping site's reviews API answered {str(reviews)[:200]!r}")
        return reviews

    def shopping_get_sku_latest_review_author(self, sku: str) -> str:
        reviews = self._reviews(sku, "shopping_get_sku_latest_review_author")
        return str(reviews[-1]["nickname"]) if reviews else ""

    def shopping_get_sku_latest_review_rating(self, sku: str) -> str:
        reviews = self._reviews(sku, "shopping_get_sku_latest_review_rating")
        return str(reviews[-1]["ratings"][0]["percent"]) if reviews else ""

    def reddit_get_post_url(self, url: str) -> str:
        """``scheme://host/f/<forum>/<post id>/`` of a post or comment URL; other URLs unchanged."""
        parts = urllib.parse.urlparse(url)
        path = parts.path.split("/")
        if len(path) < 4 or path[1] != "f":
            return url
        return f"{parts.scheme}://{parts.netloc}/f/{path[2]}/{path[3]}/"

    def gitlab_get_project_memeber_role(self, page: Any, account_name: str) -> str:
        """The role shown for ``@account_name`` on a GitLab project-members page ('' if absent)."""
        script = """(name) => {
            const accounts = [...document.querySelectorAll("td[data-label='Account'] span.gl-avatar-labeled-sublabel")];
            const index = accounts.findIndex(e => e.outerText === '@' + name);
            const roles = document.querySelectorAll("td.col-max-role span");
            return index >= 0 && roles[index] ? roles[index].outerText : "";
        }"""
        try:
            return str(page.evaluate(script, account_name))
        except Exception:
            return ""


_HELPERS: dict[str, Callable[..., str]] = {
    name: getattr(SiteFunctions, name)
    for name in ("shopping_get_latest_order_url", "shopping_get_sku_latest_review_author",
                 "shopping_get_sku_latest_review_rating", "reddit_get_post_url", "gitlab_get_project_memeber_role")
}
