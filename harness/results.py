"""The result schema (``result.json``, schema version 1), and reading and writing it.

A result is validated on every read; a file that does not parse or match the schema is
reported as corrupt with the reason, never as a traceback.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentbench.env import sha256_json
from agentbench.errors import CorruptFileError
from agentbench.fileio import atomic_write_text
from agentbench.method import Compute

SCHEMA_VERSION = 1


class _Doc(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


class HarnessInfo(_Doc):
    version: str
    """agentbench's version."""
    git_commit: str | None = None
    """Commit of the checkout the harness ran from (None outside git)."""
    git_dirty: bool | None = None
    """Whether that checkout had uncommitted changes to tracked files."""


class EnvironmentInfo(_Doc):
    python: str
    """Python version."""
    torch: str | None = None
    """torch version."""
    transformers: str | None = None
    """transformers version."""
    vllm: str | None = None
    """vLLM version (None when not installed)."""
    lm_eval: str | None = None
    """lm-eval version (None when not installed)."""
    datasets: str | None = None
    """datasets version (None when not installed)."""
    peft: str | None = None
    """peft version."""
    accelerate: str | None = None
    """accelerate version."""
    platform: str
    """OS and architecture."""
    device: str
    """cpu (threads) or the CUDA devices used."""


class MethodInfo(_Doc):
    name: str
    """Registered method name."""
    version: str
    """The method implementation's version."""
    config: dict[str, Any]
    """The fully resolved method configuration (defaults included)."""
    config_sha256: str
    """sha256 of ``config``."""
    distribution: str | None = None
    """The package that provides the method (agentbench, or a plugin)."""


class ModelInfo(_Doc):
    name: str
    """The initial model's name (registered name, folder or hub id)."""
    source: str
    """Where its weights come from."""
    revision_or_sha256: str
    """sha256 of the initial weights (or the hub revision)."""
    dtype: str
    """Precision used for evaluation."""
    backend: str
    """Generation backend: a registered backend name (agentbench list backends)."""
    chat_template_sha256: str
    """sha256 of the chat template used to render prompts."""
    checkpoint_path: str | None = None
    """The trained checkpoint that was evaluated (None when the method does not train)."""
    checkpoint_sha256: str | None = None
    """sha256 of the trained checkpoint's weights."""


class GenerationInfo(_Doc):
    temperature: float
    """0 for greedy decoding."""
    top_p: float
    """Nucleus sampling mass (1 = off)."""
    max_new_tokens: int
    """Tokens per model move."""
    seed: int
    """Base seed of sampling (per-call seeds derive from it)."""
    prompt_sha256: str
    """sha256 of the prompt configuration (format instructions, history window)."""
    prompt: dict[str, Any] = Field(default_factory=dict)
    """The prompt configuration itself."""


class ProtocolInfo(_Doc):
    name: str
    """A registered protocol name (agentbench list protocols)."""
    version: str
    """The protocol implementation's version."""
    budget: str
    """Budget preset name (or 'custom' when overridden)."""
    budget_config: dict[str, Any] = Field(default_factory=dict)
    """The budget's resolved values."""
    train_split: str
    """The split training data comes from."""
    eval_split: str
    """The split the headline success rate is measured on."""
    also_evaluated: list[str] = Field(default_factory=list)
    """Further splits evaluated (e.g. test under the ood protocol)."""
    seed: int
    """The run's seed (training data order, initialisations, bootstraps)."""


class Rate(_Doc):
    value: float
    """Mean success (a fraction in [0, 1])."""
    n: int
    """Episodes it is computed over."""
    ci95: tuple[float, float]
    """95% confidence interval."""
    ci_method: str
    """How the interval was computed, with its seed where it has one."""


class EpisodeCounts(_Doc):
    planned: int
    """Episodes the protocol called for (tasks x seeds)."""
    completed: int
    """Episodes that ran to an end (any termination but env_error)."""
    errored: int
    """Episodes abandoned because the environment raised an error."""


class Tokens(_Doc):
    prompt: int = 0
    """Prompt tokens over all model calls."""
    completion: int = 0
    """Generated tokens over all model calls."""


class Terminations(_Doc):
    success: int = 0
    """Episodes that solved the task."""
    failure: int = 0
    """The environment ended the episode without success."""
    turn_limit: int = 0
    """Episodes cut at the turn limit."""
    context_limit: int = 0
    """Episodes whose next prompt did not fit the context window."""
    invalid_action: int = 0
    """Episodes ended by consecutive invalid actions."""
    env_error: int = 0
    """Episodes abandoned because the environment raised an error."""


class EnvResult(_Doc):
    name: str
    """Registered env name (with variant)."""
    version: str
    """The env implementation's version."""
    split: str
    """The split evaluated (train, test or ood)."""
    config: dict[str, Any] = Field(default_factory=dict)
    """The env's resolved parameters."""
    task_set_sha256: str
    """sha256 over the ids and specs of the tasks evaluated, in order."""
    n_tasks: int
    """Tasks evaluated."""
    seeds: list[int]
    """Episode seeds run for every task."""
    max_turns: int
    """Turn limit per episode."""
    n_episodes: EpisodeCounts
    """Episode counts."""
    success_rate: Rate
    """The headline metric, with its interval."""
    progress_rate: float
    """Mean final progress rate."""
    invalid_action_rate: float
    """Invalid moves over all moves."""
    mean_turns: float
    """Mean model moves per episode."""
    tokens: Tokens
    """Tokens over all episodes."""
    terminations: Terminations
    """Why episodes ended, counted."""


class ForgettingScores(_Doc):
    prompt_level_strict: float
    """Fraction of prompts whose every instruction is followed (strict check)."""
    prompt_level_loose: float
    """The same with the loose check (lenient to formatting)."""
    inst_level_strict: float
    """Fraction of single instructions followed (strict check)."""
    inst_level_loose: float
    """The same with the loose check."""


class PairedTest(_Doc):
    name: str
    """The test (e.g. exact McNemar on per-prompt strict results)."""
    statistic: float | None = None
    """The test statistic, where the test has one."""
    p_value: float
    """Two-sided p-value."""
    details: dict[str, Any] = Field(default_factory=dict)
    """Discordant counts, intervals and settings of the test."""


class ForgettingResult(_Doc):
    benchmark: str
    """ifeval."""
    source: str
    """Where the prompts came from."""
    dataset_sha256: str
    """sha256 of the prompt file used."""
    n: int
    """Prompts evaluated."""
    before: ForgettingScores
    """Scores of the model before training."""
    after: ForgettingScores
    """Scores of the trained model."""
    delta: ForgettingScores
    """after - before."""
    test: PairedTest
    """Paired test of after against before."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Settings, tokenizer data used, bootstrap intervals, side-file path."""


FORGETTING_FILE = "forgetting.jsonl"
"""The forgetting check's side file in a run folder: one ``ForgettingPromptRecord`` per line."""


class IFEvalOutcome(_Doc):
    response: str
    """The model's full answer."""
    prompt_level_strict: bool
    """Every instruction of the prompt followed (strict check)."""
    prompt_level_loose: bool
    """Every instruction followed (loose check)."""
    inst_level_strict: list[bool]
    """Per instruction, in ``instruction_id_list`` order (strict check)."""
    inst_level_loose: list[bool]
    """Per instruction (loose check)."""


class ForgettingPromptRecord(_Doc):
    key: int | str
    """The IF-Eval prompt's key."""
    instruction_id_list: list[str]
    """The instructions the prompt asks to follow."""
    before: IFEvalOutcome
    """The initial model's answer and its verdicts."""
    after: IFEvalOutcome
    """The trained model's answer and its verdicts."""


class ScalingPoint(_Doc):
    axis: str
    """expert_fraction, branching_k, model or iterations."""
    value: float | str
    """The axis value of this point (a fraction, K, a model name, an iteration count)."""
    method: str
    """Method trained at this point."""
    env: str
    """Env evaluated."""
    split: str
    """Split evaluated."""
    success_rate: Rate
    """Success rate at this point."""
    train: Compute | None = None
    """Compute spent at this point."""


class RLCompatCell(_Doc):
    split: str
    """The split evaluated."""
    before: EnvResult
    """The start's checkpoint, before RL."""
    after: EnvResult
    """After the shared RL recipe."""


class RLCompatStart(_Doc):
    start: str
    """``none`` (the initial model) or the method whose checkpoint RL starts from."""
    folder: str
    """Where its files are, relative to the run folder (``starts/<start>``: before/, rl/, after/)."""
    checkpoint_sha256: str | None = None
    """Weights RL started from (None: the initial model)."""
    start_train: Compute
    """Compute of training the start (zero for ``none``)."""
    rl_train: Compute
    """Compute of the RL recipe from this start, with its per-step curve (``rl_steps``)."""
    cells: list[RLCompatCell]
    """Success before and after RL, per split."""


SCALING_PROTOCOL = "scaling"
"""The protocol whose points are runs of their own (``agentbench.protocols``' ``scaling``)."""


class RunResult(_Doc):
    schema_version: int = SCHEMA_VERSION
    """Version of this schema."""
    run_id: str
    """Name of the run folder."""
    created_at: str
    """UTC time the result was written (ISO 8601)."""
    status: Literal["complete", "partial", "error"]
    """complete; partial (interrupted, some episodes missing); error (a failure stopped the run)."""
    error: str | None = None
    """What stopped the run, when status is error."""
    harness: HarnessInfo
    """The harness that produced the result."""
    command: list[str]
    """argv as given."""
    environment: EnvironmentInfo
    """Versions of the software stack and the device."""
    method: MethodInfo
    """The method and its resolved configuration."""
    model: ModelInfo
    """The initial model and the evaluated checkpoint."""
    generation: GenerationInfo
    """Decoding settings and the prompt format."""
    protocol: ProtocolInfo
    """The protocol, budget and splits."""
    train: Compute
    """Compute accounting of the training phase."""
    envs: list[EnvResult]
    """One entry per (env, split) evaluated."""
    forgetting: ForgettingResult | None = None
    """Instruction-following before and after training (None when not run)."""
    scaling: list[ScalingPoint] = Field(default_factory=list)
    """Points of a scaling protocol (empty otherwise)."""
    rl_compat: list[RLCompatStart] = Field(default_factory=list)
    """RL-compatibility protocol: per start, success before and after the same RL recipe and
    both trainings' compute (empty otherwise). ``envs`` then holds the headline start's
    after-RL results (the first listed method's)."""
    artifacts: dict[str, str] = Field(default_factory=dict)
    """Side files and their sha256 (episodes_jsonl_sha256, ...)."""
    comparability: dict[str, Any] = Field(default_factory=dict)
    """What must match for two results to be compared (hashed into comparability_key)."""
    comparability_key: str
    """sha256 of ``comparability``."""

    @property
    def evaluated_itself(self) -> bool:
        """Whether the run's top-level ``envs`` were evaluated in its own folder (``episodes.jsonl``):
        every run but the scaling protocol's, whose points are runs of their own. A method's own
        per-iteration curve (AgentEvol, OEL) sits in ``scaling`` beside its final evaluation."""
        return not (self.scaling and self.protocol.name == SCALING_PROTOCOL)


def comparability_of(protocol: ProtocolInfo, generation: GenerationInfo, envs: list[EnvResult]) -> dict[str, Any]:
    """What defines the evaluation (not the model or method, which a comparison varies)."""
    return {
        "protocol": protocol.name,
        "generation": {"temperature": generation.temperature, "top_p": generation.top_p,
                       "max_new_tokens": generation.max_new_tokens, "prompt_sha256": generation.prompt_sha256},
        "envs": sorted(
            ({"name": e.name, "version": e.version, "split": e.split, "task_set_sha256": e.task_set_sha256,
              "seeds": e.seeds, "max_turns": e.max_turns} for e in envs),
            key=lambda d: (d["name"], d["split"]),
        ),
    }


def comparability_key(comparability: dict[str, Any]) -> str:
    return sha256_json(comparability)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_result(result: RunResult, path: Path) -> None:
    atomic_write_text(path, result.model_dump_json(indent=2) + "\n")


def read_result(path: Path) -> RunResult:
    """Load and validate a result file; raises CorruptFileError with the reason."""
    try:
        raw = Path(path).read_text()
    except OSError as exc:
        raise CorruptFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path} is corrupt: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise CorruptFileError(f"{path} is corrupt: expected a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CorruptFileError(f"{path}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
    try:
        return RunResult.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CorruptFileError(
            f"{path} is corrupt: {where}: {first['msg']} ({exc.error_count()} schema error(s))"
        ) from exc
