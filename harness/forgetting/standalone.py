"""``agentbench forgetting --model X [--base Y]``: the check alone, outside a training run.

It writes ``<out>/forgetting__<model>__vs__<base>__<budget>__<hash>/forgetting.json`` (a
``ForgettingResult``) and ``forgetting.jsonl`` beside it, and shares the answer cache of the
output folder with training runs, so checking a run's checkpoint into that run's ``--out``
generates nothing twice.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from agentbench import locking, registry
from agentbench.artifacts import SharedCache
from agentbench.backends import BackendOptions
from agentbench.budgets import Budget, get_budget
from agentbench.env import make_config, sha256_json
from agentbench.errors import CorruptFileError, UnknownNameError, UsageError
from agentbench.fileio import WriteError, atomic_write_text
from agentbench.forgetting.check import ForgettingCheck, Progress
from agentbench.forgetting.config import ForgettingConfig
from agentbench.models import ModelRef, check_loadable, resolve_model
from agentbench.provenance import command_line, environment_info, harness_info
from agentbench.results import ForgettingResult

RESULT_FILE = "forgetting.json"


def recorded_base(trained: ModelRef) -> ModelRef:
    """The initial model a checkpoint records in its ``agentbench_model.json``."""
    meta = Path(trained.path) / "agentbench_model.json"
    if not meta.is_file():
        raise UsageError(f"model {trained.name!r} records no base model (no {meta.name} in {trained.path}); "
                         "pass --base")
    try:
        data = json.loads(meta.read_text())
        name, path = data.get("base_model"), data.get("base_path")
    except (OSError, ValueError, AttributeError) as exc:
        raise CorruptFileError(f"{meta} is corrupt ({exc}); pass --base") from exc
    if name in registry.models.names():
        return resolve_model(name)
    if path and Path(path).is_dir() and (Path(path) / "config.json").exists():
        found = resolve_model(path)
        return ModelRef(name or found.name, found.path, found.source, found.learning_rate)
    raise UsageError(f"the base model {name!r} that {meta} records is unknown here; pass --base")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", Path(text).name or text)


def run_standalone(*, model: str, base: str | None, budget: str, backend: str, seed: int, out: Path,
                   sets: list[str], progress: Progress | None = None) -> tuple[ForgettingResult, Path]:
    from agentbench.spec import parse_sets

    if backend not in registry.backends.names():
        raise UnknownNameError("backend", backend, registry.backends.names())
    routed = parse_sets(sets, {"budget": Budget, "forgetting": ForgettingConfig, "backend": BackendOptions})
    routed["budget"].pop("name", None)
    budget_cfg = get_budget(budget, routed["budget"])
    config = make_config(ForgettingConfig, routed["forgetting"], "forgetting")
    options = make_config(BackendOptions, routed["backend"], "backend")
    trained = resolve_model(model)
    initial = resolve_model(base) if base else recorded_base(trained)
    check_loadable(trained)
    check_loadable(initial)
    key = {"model": trained.weights_sha256(), "base": initial.weights_sha256(),
           "budget": budget_cfg.model_dump(mode="json"), "config": config.model_dump(mode="json"),
           "backend": backend, "backend_options": options.model_dump(mode="json"), "seed": seed}
    name = "custom" if routed["budget"] else budget_cfg.name
    folder = out / f"forgetting__{_slug(trained.name)}__vs__{_slug(initial.name)}__{name}__s{seed}__{sha256_json(key)[:8]}"
    if out.exists() and not out.is_dir():
        raise WriteError(f"cannot write {out}: not a folder")
    locking.acquire(folder, label=str(folder))  # creates it; refuses a second process
    check = ForgettingCheck(config=config, budget=budget_cfg, backend=backend, backend_options=options,
                            shared=SharedCache(out / "shared"), seed=seed, progress=progress)
    try:
        result = check.run(initial, trained, folder, scope={"command": "agentbench forgetting"})
    finally:
        locking.release_all()
    result.extra.update(budget=budget_cfg.model_dump(mode="json"), command=command_line(),
                        environment=environment_info(), harness=harness_info())
    path = folder / RESULT_FILE
    atomic_write_text(path, result.model_dump_json(indent=2) + "\n")
    return result, path
