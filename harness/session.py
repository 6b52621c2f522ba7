"""A run session: one run folder, the shared pieces of a protocol, resumable steps, and the
final ``result.json``."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentbench import locking, registry
from agentbench.artifacts import SharedCache
from agentbench.backends import make_backend
from agentbench.budgets import Budget
from agentbench.env import Env, Task, sha256_json, task_set_sha256
from agentbench.errors import CorruptFileError, UsageError
from agentbench.evaluation import EpisodeLog, episodes_sha256, make_jobs, run_split, summarise
from agentbench.expert import ExpertData, collect_expert, load_expert
from agentbench.fileio import WriteError, atomic_write_text
from agentbench.method import Compute, TrainContext, TrainOutput
from agentbench.models import ModelRef, file_sha256
from agentbench.progress import Reporter
from agentbench.prompting import PromptBuilder, PromptConfig
from agentbench.provenance import command_line, environment_info, harness_info
from agentbench.results import (
    FORGETTING_FILE,
    EnvironmentInfo,
    EnvResult,
    ForgettingResult,
    GenerationInfo,
    HarnessInfo,
    MethodInfo,
    ModelInfo,
    ProtocolInfo,
    RunResult,
    comparability_key,
    comparability_of,
    now_iso,
    write_result,
)
from agentbench.rollout import RolloutEngine
from agentbench.spec import RunSpec
from agentbench.training.resume import TRAINER_DIR

TRAIN_OUTPUT = "train_output.json"
"""A finished training's record (model, compute), beside its checkpoint."""


@dataclass
class RunSession:
    spec: RunSpec
    run_dir: Path
    reporter: Reporter = field(default_factory=lambda: Reporter(enabled=False))
    shared: SharedCache | None = None
    _expert: ExpertData | None = None
    _env_version: str | None = None
    _model: ModelRef | None = None
    _backend_info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shared is None:
            self.shared = SharedCache(self.run_dir.parent / "shared")

    # -- shared pieces -------------------------------------------------------------------
    def make_env(self) -> Env:
        env = self.spec.env.obj(self.spec.env_config)
        # An env that needs a model of its own (webarena-lite's fuzzy_match judge) defaults to the run's.
        bind = getattr(env, "bind_policy", None)
        if callable(bind):
            bind(self.spec.model_name, self.spec.backend, self.spec.backend_options)
        return env

    @property
    def env_cls(self):
        return self.spec.env.obj

    @property
    def base_model(self) -> ModelRef:
        if self._model is None:
            self._model = self.spec.model()
        return self._model

    @property
    def prompt_config(self) -> PromptConfig:
        return self.spec.prompt

    @property
    def method(self):
        return self.spec.method.obj(self.spec.method_config)

    def tasks(self, split: str, limit: int | None) -> list[Task]:
        env = self.make_env()
        try:
            tasks = list(env.tasks(split))
        finally:
            env.close()
        if not tasks:
            raise UsageError(f"env {self.spec.env.full_name} has no tasks in split {split!r}")
        return tasks[:limit] if limit else tasks

    def env_version(self) -> str:
        """The env's version, read off an instance (a remote env reports its server's)."""
        if self._env_version is None:
            env = self.make_env()
            try:
                self._env_version = str(env.version)
            finally:
                env.close()
        return self._env_version

    def prompt_builder(self, config: PromptConfig) -> PromptBuilder:
        env = self.make_env()
        try:
            # read off the instance: a remote env's default is its server's
            return PromptBuilder(env.instructions, config, env.default_history_turns)
        finally:
            env.close()

    def expert(self) -> ExpertData:
        """Expert trajectories on the budget's train tasks: the same for every method, collected
        once per output folder."""
        if self._expert is None:
            spec = self.spec
            tasks = self.tasks("train", spec.budget.train_tasks)
            key = {"env": spec.env.full_name, "env_version": self.env_version(),
                   "env_config": spec.env_config.model_dump(mode="json"), "tasks": task_set_sha256(tasks),
                   "seed": spec.seed, "max_turns": spec.limits.max_turns}
            with self.shared.entry("expert", key) as folder:
                cached = load_expert(folder / "expert.jsonl", tasks)
                if cached is None:
                    bar = "expert demonstrations"
                    cached = collect_expert(self.make_env, tasks, spec.limits.max_turns, seed=spec.seed,
                                            on_task=lambda: self.reporter.advance(bar, len(tasks)))
                    cached.save(folder / "expert.jsonl")
            if not cached.steps:
                raise UsageError(f"the expert of {spec.env.full_name} solved none of {len(tasks)} train tasks")
            self._expert = cached
        return self._expert

    # -- training ------------------------------------------------------------------------
    def training_key(self, method_name: str, config: BaseModel, expert: ExpertData | None, model: ModelRef,
                     budget: Budget) -> dict[str, Any]:
        """Everything that determines a trained checkpoint (``expert`` None: a method that uses none)."""
        return {"method": method_name, "config": config.model_dump(mode="json"),
                "expert": expert.sha256() if expert is not None else None,
                "model": model.weights_sha256(), "budget": budget.model_dump(mode="json"), "seed": self.spec.seed,
                "prompt": self.prompt_config.sha256(), "env": self.spec.env.full_name,
                "env_version": self.env_version()}

    def train(self, method: Any, workdir: Path | None = None, expert: ExpertData | None = None,
              model: ModelRef | None = None, budget: Budget | None = None, label: str = "train") -> TrainOutput:
        """Train ``method`` (or reuse the finished training of an earlier attempt of this run)."""
        workdir = workdir or self.run_dir
        workdir.mkdir(parents=True, exist_ok=True)
        marker = workdir / TRAIN_OUTPUT
        budget = budget or self.spec.budget
        model = model or self.base_model
        expert_loader = (lambda: expert) if expert is not None else self.expert
        # A finished training is reused only when everything that determines it matches.
        uses_expert = getattr(method, "uses_expert", True)
        key = self.training_key(method.name, method.config, expert_loader() if uses_expert else None, model, budget)
        check_identity(workdir / "train_key.json", key, f"{workdir} holds a training of other settings")
        if marker.exists():
            return load_train_output(marker)

        def depend_on(name: str, config: BaseModel | None) -> TrainOutput:
            return self.dependency(name, config, expert_loader(), model, budget, label)

        ctx = TrainContext(
            env_name=self.spec.env.full_name, make_env=self.make_env, base_model=model, budget=budget,
            seed=self.spec.seed, workdir=workdir, prompt_config=self.prompt_config, limits=self.spec.limits,
            train_tasks=self.tasks("train", budget.train_tasks), expert_loader=expert_loader,
            backend_name=self.spec.backend, backend_options=self.spec.backend_options,
            on_progress=lambda stage, done, total: self.reporter.update(f"{label}: {stage}", done, total),
            log_path=workdir / "train_log.jsonl", shared=self.shared, depend_on=depend_on,
            evaluate=lambda m, split, name: self.evaluate(m, split, self.prompt_config, workdir=workdir / name,
                                                          label=f"{label}: eval {name}"),
        )
        started = time.perf_counter()
        out = method.train(ctx)
        out.compute.wall_time_s = max(out.compute.wall_time_s, time.perf_counter() - started)
        shutil.rmtree(workdir / TRAINER_DIR, ignore_errors=True)  # resume states: the checkpoint is saved
        save_train_output(marker, out)
        shared = self.shared.path("trained", key)
        # let other methods of this folder reuse the checkpoint (a dependency trained in the entry itself)
        if out.model.path != model.path and workdir.resolve() != shared.resolve():
            with self.shared.entry("trained", key) as entry:
                save_train_output(entry / TRAIN_OUTPUT, out)
        return out

    def dependency(self, name: str, config: BaseModel | None, expert: ExpertData, model: ModelRef,
                    budget: Budget, label: str) -> TrainOutput:
        method_cls = registry.methods.get(name)
        method = method_cls(config if config is not None else method_cls.Config())
        key = self.training_key(name, method.config, expert if getattr(method, "uses_expert", True) else None,
                                model, budget)
        with self.shared.entry("trained", key) as folder:
            marker = folder / TRAIN_OUTPUT
            if marker.exists():
                out = load_train_output(marker)
                if Path(out.model.path).exists():
                    return out
                marker.unlink()
            return self.train(method, workdir=folder, expert=expert, model=model, budget=budget,
                              label=f"{label} ({name})")

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, model: ModelRef, split: str, prompt: PromptConfig, workdir: Path | None = None,
                 label: str | None = None, max_new_tokens: int | None = None) -> EnvResult:
        """Evaluate ``model`` on ``split``; episodes already in the folder's episodes.jsonl are kept."""
        spec = self.spec
        tasks = self.tasks(split, spec.budget.eval_tasks)
        seeds = list(range(spec.budget.eval_seeds))
        jobs = make_jobs(tasks, seeds)
        folder = workdir or self.run_dir
        folder.mkdir(parents=True, exist_ok=True)
        log = EpisodeLog(folder / "episodes.jsonl")
        env_name = spec.env.full_name
        sampling = spec.sampling if max_new_tokens is None else \
            spec.sampling.model_copy(update={"max_new_tokens": max_new_tokens})
        # Episodes already in the folder are kept only when they come from this same evaluation.
        identity = {"model": model.weights_sha256(), "prompt": prompt.sha256(), "env": env_name,
                    "env_version": self.env_version(), "env_config": spec.env_config.model_dump(mode="json"),
                    "generation": sampling.model_dump(mode="json"), "limits": spec.limits.model_dump(mode="json"),
                    "backend": spec.backend}
        check_identity(folder / "evaluation_key.json", identity,
                       f"{folder / 'episodes.jsonl'} holds episodes of another evaluation")
        bar = label or f"eval {split}"
        done_before = {r.key for r in log.load()}
        remaining = [j for j in jobs if (env_name, *j.key) not in done_before]
        if remaining:
            backend = make_backend(spec.backend, model, spec.backend_options)
            self._backend_info = backend.describe()
            try:
                engine = RolloutEngine(backend, self.make_env, self.prompt_builder(prompt), sampling,
                                       spec.limits, wave_size=spec.budget.rollout_batch, env_name=env_name)
                self.reporter.update(bar, len(jobs) - len(remaining), len(jobs))
                records = run_split(engine, jobs, log, env_name,
                                    on_episode=lambda r: self.reporter.advance(bar, len(jobs)))
            finally:
                backend.close()
        else:
            by_key = {r.key: r for r in log.load()}
            records = [by_key[(env_name, *j.key)] for j in jobs]
        return summarise(name=env_name, version=self.env_version(), split=split,
                         config=spec.env_config.model_dump(mode="json"), tasks=tasks, seeds=seeds,
                         max_turns=spec.limits.max_turns, records=records, planned=len(jobs),
                         bootstrap_seed=spec.seed)

    def backend_info(self) -> dict[str, Any]:
        """What the result records of the backend: read off a live backend when this process
        evaluated, else resolved the same way (a resume with nothing left to evaluate records
        what the uninterrupted run did)."""
        if not self._backend_info:
            self._backend_info = resolved_backend_info(self.spec.backend, self.spec.backend_options,
                                                       self.base_model.path)
        return self._backend_info

    # -- forgetting ----------------------------------------------------------------------
    def check_forgetting(self, output) -> ForgettingResult | None:
        """IF-Eval before and after training (``budget.forgetting``), when the protocol produced a
        new checkpoint; under the scaling protocol, for its last point. Every model's answers are
        cached in the output folder's shared cache, batch by batch."""
        from agentbench.forgetting.check import ForgettingCheck

        spec = self.spec
        base = output.base_model or self.base_model
        if not spec.budget.forgetting or Path(output.model.path) == Path(base.path):
            return None
        scope = {"checkpoint": output.model.path}
        if output.scaling:
            last = output.scaling[-1]
            scope["scaling_point"] = f"{last.axis}={last.value} (the last point; the others are not checked)"
        check = ForgettingCheck(config=spec.forgetting, budget=spec.budget, backend=spec.backend,
                                backend_options=spec.backend_options, shared=self.shared, seed=spec.seed,
                                progress=self.reporter.update)
        return check.run(base, output.model, self.run_dir, scope=scope)

    # -- the result ----------------------------------------------------------------------
    def result(self, output, status: str = "complete", error: str | None = None,
               forgetting: ForgettingResult | None = None) -> RunResult:
        spec = self.spec
        base = self.base_model
        info = self.backend_info()
        trained = output.model if output.model.path != base.path else None
        generation = GenerationInfo(
            temperature=spec.sampling.temperature, top_p=spec.sampling.top_p,
            max_new_tokens=output.max_new_tokens or spec.sampling.max_new_tokens, seed=spec.sampling.seed,
            prompt_sha256=output.prompt.sha256(), prompt=output.prompt.model_dump(mode="json"),
        )
        protocol_cls = spec.protocol.obj
        protocol = ProtocolInfo(
            name=protocol_cls.name, version=protocol_cls.version,
            budget="custom" if spec.budget_overridden else spec.budget.name,
            budget_config=spec.budget.model_dump(mode="json"), train_split=protocol_cls.train_split,
            eval_split=output.envs[0].split if output.envs else "", seed=spec.seed,
            also_evaluated=[e.split for e in output.envs[1:]],
        )
        comparability = comparability_of(protocol, generation, output.envs)
        episodes = self.run_dir / "episodes.jsonl"
        method_cls = spec.method.obj
        config = spec.method_config.model_dump(mode="json")
        return RunResult(
            run_id=self.run_dir.name, created_at=now_iso(), status=status, error=error,
            harness=HarnessInfo(**harness_info()), command=command_line(),
            environment=EnvironmentInfo(**environment_info()),
            method=MethodInfo(name=spec.method.full_name, version=method_cls.version, config=config,
                              config_sha256=sha256_json(config), distribution=spec.method.distribution),
            model=ModelInfo(name=base.name, source=base.source, revision_or_sha256=base.weights_sha256(),
                            dtype=str(info.get("dtype")), backend=spec.backend,
                            chat_template_sha256=str(info.get("chat_template_sha256")),
                            checkpoint_path=trained.path if trained else None,
                            checkpoint_sha256=trained.weights_sha256() if trained else None),
            generation=generation, protocol=protocol, train=output.train, envs=output.envs,
            scaling=output.scaling, rl_compat=output.rl_compat, forgetting=forgetting,
            artifacts={"episodes_jsonl_sha256": episodes_sha256(episodes), **{
                f"{p.parent.relative_to(self.run_dir)}/episodes_jsonl_sha256": episodes_sha256(p)
                for p in sorted([*self.run_dir.glob("points/*/episodes.jsonl"),
                                 *self.run_dir.glob("starts/*/*/episodes.jsonl")])},
                **({"forgetting_jsonl_sha256": file_sha256(self.run_dir / FORGETTING_FILE)} if forgetting else {})},
            comparability=comparability, comparability_key=comparability_key(comparability),
        )


def resolved_backend_info(backend: str, options: Any, model_path: str) -> dict[str, Any]:
    """A backend's ``describe()`` without loading the model: "auto" resolved as it would be."""
    from agentbench.backends.hf import chat_template_sha256, load_tokenizer, pick_device, pick_dtype

    info: dict[str, Any] = {"backend": backend, "dtype": options.dtype,
                            "chat_template_sha256": chat_template_sha256(load_tokenizer(model_path))}
    if backend == "hf":
        device = pick_device(options.device)
        info.update(device=str(device), dtype=str(pick_dtype(options.dtype, device)).removeprefix("torch."))
    return info


def _portable_path(path: str, marker: Path) -> str:
    """A checkpoint under the marker's output folder, relative to the marker's folder (so a
    moved output or run folder still resumes); anything else (a base model) as given."""
    target, here = Path(path), marker.parent.resolve()
    try:
        target.resolve().relative_to(here.parent)
    except ValueError:
        return path
    return os.path.relpath(target.resolve(), here)


def _resolve_path(path: str, marker: Path) -> str:
    return path if Path(path).is_absolute() else str((marker.parent / path).resolve())


def save_train_output(path: Path, out: TrainOutput) -> None:
    atomic_write_text(path, json.dumps({
        "model": {"name": out.model.name, "path": _portable_path(out.model.path, path), "source": out.model.source,
                  "learning_rate": out.model.learning_rate},
        "compute": out.compute.model_dump(mode="json"),
        "prompt": out.prompt.model_dump(mode="json") if out.prompt else None,
        "max_new_tokens": out.max_new_tokens,
        "scaling": [p.model_dump(mode="json") for p in out.scaling],
    }, indent=2))


def load_train_output(path: Path) -> TrainOutput:
    try:
        data = json.loads(path.read_text())
        model = ModelRef(**{**data["model"], "path": _resolve_path(data["model"]["path"], path)})
        prompt = PromptConfig(**data["prompt"]) if data.get("prompt") else None
        from agentbench.results import ScalingPoint

        return TrainOutput(model=model, compute=Compute(**data["compute"]), prompt=prompt,
                           max_new_tokens=data.get("max_new_tokens"),
                           scaling=[ScalingPoint.model_validate(p) for p in data.get("scaling", [])])
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"{path} is corrupt ({exc}); delete it to retrain") from exc


def check_identity(path: Path, identity: dict[str, Any], what: str) -> None:
    """Record what determines an artifact beside it, or refuse when a different one is there:
    a one-line error naming the settings that differ."""
    if path.exists():
        try:
            recorded = json.loads(path.read_text())
        except ValueError as exc:
            raise CorruptFileError(f"{path} is corrupt: {exc}") from exc
        if not isinstance(recorded, dict):
            raise CorruptFileError(f"{path} is corrupt: expected a JSON object")
        if recorded != json.loads(json.dumps(identity)):
            changed = sorted(k for k in set(recorded) | set(identity)
                             if json.dumps(recorded.get(k), sort_keys=True) != json.dumps(identity.get(k), sort_keys=True))
            raise UsageError(f"{what} ({', '.join(changed)} differ); use another run folder or --overwrite")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(identity, indent=2, sort_keys=True))


def prepare_run_dir(out: Path, run_id: str, spec: RunSpec, resume: bool, overwrite: bool) -> Path:
    """Create (or check, to resume) the run folder and lock it for this process: a second
    process gets ``RUN is in use (pid N)``. A non-empty folder resumes only with a readable
    run.json that records the same settings."""
    run_dir = out / run_id
    record = spec.record()
    spec_file = run_dir / "run.json"
    if out.exists() and not out.is_dir():
        raise WriteError(f"cannot write {out}: not a folder")
    locking.acquire(run_dir, label=str(run_dir))  # creates the folder; refuses a live holder
    if overwrite:
        for child in run_dir.iterdir():
            if child.name != locking.LOCK_FILE:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    if any(c.name != locking.LOCK_FILE for c in run_dir.iterdir()):
        if not resume:
            raise UsageError(f"{run_dir} exists: pass --resume to continue it or --overwrite to start again")
        if not spec_file.exists():
            raise UsageError(f"cannot resume {run_dir}: it holds files but no run.json, so its settings are "
                             "unknown; use --overwrite to start again or another --run-id")
        try:
            previous = json.loads(spec_file.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptFileError(f"{spec_file} is corrupt: {exc}") from exc
        if not isinstance(previous, dict) or not isinstance(previous.get("spec"), dict):
            raise CorruptFileError(f"{spec_file} is corrupt: expected an object with the run's \"spec\"")
        if previous["spec"] != record:
            changed = sorted(k for k in record if previous["spec"].get(k) != record[k])
            raise UsageError(f"cannot resume {run_dir}: the run's settings changed ({', '.join(changed)})")
    atomic_write_text(spec_file, json.dumps({"spec": record, "command": command_line()}, indent=2))
    return run_dir


def write_final(session: RunSession, result: RunResult) -> Path:
    path = session.run_dir / "result.json"
    write_result(result, path)
    return path
