"""The result schema (``result.json``, schema version 1), and reading and writing it.

A result is validated on every read; a file that does not parse or match the schema is
reported as corrupt with the reason, never as a traceback.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentbench.env import sha256_json
from agentbench.errors import CorruptFileError
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
    transformers: str | None = None
    vllm: str | None = None
    lm_eval: str | None = None
    datasets: str | None = None
    peft: str | None = None
    accelerate: str | None = None
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
    """Generation backend: hf, vllm or openai."""
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
    """in-domain, ood, rl-compat or scaling."""
    version: str
    budget: str
    """Budget preset name (or 'custom' when overridden)."""
    budget_config: dict[str, Any] = Field(default_factory=dict)
    """The budget's resolved values."""
    train_split: str
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
    completed: int
    """Episodes that ran to an end (any termination but env_error)."""
    errored: int
    """Episodes abandoned because the environment raised an error."""


class Tokens(_Doc):
    prompt: int = 0
    completion: int = 0


class Terminations(_Doc):
    success: int = 0
    failure: int = 0
    """The environment ended the episode without success."""
    turn_limit: int = 0
    context_limit: int = 0
    invalid_action: int = 0
    env_error: int = 0


class EnvResult(_Doc):
    name: str
    """Registered env name (with variant)."""
    version: str
    """The env implementation's version."""
    split: str
    config: dict[str, Any] = Field(default_factory=dict)
    """The env's resolved parameters."""
    task_set_sha256: str
    """sha256 over the ids and specs of the tasks evaluated, in order."""
    n_tasks: int
    seeds: list[int]
    """Episode seeds run for every task."""
    max_turns: int
    n_episodes: EpisodeCounts
    success_rate: Rate
    progress_rate: float
    """Mean final progress rate."""
    invalid_action_rate: float
    """Invalid moves over all moves."""
    mean_turns: float
    tokens: Tokens
    """Tokens over all episodes."""
    terminations: Terminations


class ForgettingScores(_Doc):
    prompt_level_strict: float
    prompt_level_loose: float
    inst_level_strict: float
    inst_level_loose: float


class PairedTest(_Doc):
    name: str
    """The test (e.g. exact McNemar on per-prompt strict results)."""
    statistic: float | None = None
    p_value: float
    details: dict[str, Any] = Field(default_factory=dict)


class ForgettingResult(_Doc):
    benchmark: str
    """ifeval."""
    source: str
    """Where the prompts came from."""
    dataset_sha256: str
    n: int
    """Prompts evaluated."""
    before: ForgettingScores
    after: ForgettingScores
    delta: ForgettingScores
    """after - before."""
    test: PairedTest
    extra: dict[str, Any] = Field(default_factory=dict)
    """Settings, tokenizer data used, bootstrap intervals, side-file path."""


class ScalingPoint(_Doc):
    axis: str
    """expert_fraction, branching_k, model or iterations."""
    value: float | str
    method: str
    env: str
    split: str
    success_rate: Rate
    train: Compute | None = None


class RunResult(_Doc):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    created_at: str
    """UTC time the result was written (ISO 8601)."""
    status: Literal["complete", "partial", "error"]
    """complete; partial (interrupted, some episodes missing); error (a failure stopped the run)."""
    error: str | None = None
    """What stopped the run, when status is error."""
    harness: HarnessInfo
    command: list[str]
    """argv as given."""
    environment: EnvironmentInfo
    method: MethodInfo
    model: ModelInfo
    generation: GenerationInfo
    protocol: ProtocolInfo
    train: Compute
    """Compute accounting of the training phase."""
    envs: list[EnvResult]
    forgetting: ForgettingResult | None = None
    scaling: list[ScalingPoint] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(default_factory=dict)
    """Side files and their sha256 (episodes_jsonl_sha256, ...)."""
    comparability: dict[str, Any] = Field(default_factory=dict)
    """What must match for two results to be compared (hashed into comparability_key)."""
    comparability_key: str


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


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
