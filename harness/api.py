"""The Python API the command line, the regression gate, sweeps and tests call.

``run`` trains one or more methods on an env under a protocol and returns the validated
results; ``evaluate`` evaluates a model as it is. Both write the same run folders and
``result.json`` files as ``agentbench-run`` and ``agentbench eval``::

    from agentbench import api
    [result] = api.run(method="il", env="frozenlake", budget="smoke", model="tiny")
    print(result.envs[0].success_rate.value)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentbench.results import RunResult


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its validated result and where ``result.json`` was written."""

    result: RunResult
    path: Path


def run(*, method: str | Sequence[str], env: str, protocol: str = "in-domain", model: str = "smollm2-135m",
        backend: str = "hf", budget: str = "smoke", seed: int = 0, out: Path | str = "runs",
        sets: Sequence[str] | dict[str, Any] = (), resume: bool = False, overwrite: bool = False,
        run_id: str | None = None, reporter: Any = None, protocol_obj: Any = None,
        on_result: Callable[[RunOutcome], None] | None = None,
        command: Sequence[str] | None = None) -> list[RunOutcome]:
    """Resolve, run and record one run per method (``il,iwm,sr`` runs three that share expert
    data, branching rollouts, seeds and evaluation tasks; under ``rl-compat`` the methods are the
    protocol's starts and one run holds them all). ``sets``: ``key=value`` strings or a dict.
    ``command``: the command line the results record (default: this process's)."""
    from agentbench.provenance import recording_command

    with recording_command(command):
        return _run(method=method, env=env, protocol=protocol, model=model, backend=backend, budget=budget,
                    seed=seed, out=out, sets=sets, resume=resume, overwrite=overwrite, run_id=run_id,
                    reporter=reporter, protocol_obj=protocol_obj, on_result=on_result)


def _run(*, method: str | Sequence[str], env: str, protocol: str, model: str, backend: str, budget: str, seed: int,
         out: Path | str, sets: Sequence[str] | dict[str, Any], resume: bool, overwrite: bool, run_id: str | None,
         reporter: Any, protocol_obj: Any, on_result: Callable[[RunOutcome], None] | None) -> list[RunOutcome]:
    from agentbench import registry
    from agentbench.errors import EnvUnavailableError, UsageError
    from agentbench.progress import Reporter
    from agentbench.session import RunSession, prepare_run_dir, write_final
    from agentbench.spec import resolve_spec

    names = [m.strip() for m in (method.split(",") if isinstance(method, str) else method) if m.strip()]
    if not names:
        raise UsageError("--method needs at least one method name")
    set_list = [f"{k}={_text(v)}" for k, v in sets.items()] if isinstance(sets, dict) else list(sets)
    protocol_cls = protocol_obj if protocol_obj is not None else registry.protocols.get(protocol)
    group_starts = getattr(protocol_cls, "methods_are_starts", False)
    if group_starts:
        # rl-compat: the listed methods are the starts of one run whose method is the RL recipe.
        set_list = [*set_list, f"protocol.starts={_text(names)}"]
        names = [_recipe_from_sets(set_list) or protocol_cls.recipe_method]
    if run_id and len(names) > 1:
        raise UsageError("--run-id names one run; leave it out when running several methods")
    group = names if len(names) > 1 else None
    specs = [resolve_spec(method=m, env=env, protocol=protocol, model=model, backend=backend, budget=budget,
                          seed=seed, sets=set_list, protocol_obj=protocol_obj, group=group) for m in names]
    env_cls = specs[0].env.obj
    # availability_for sees the env's options (a data folder, a server URL); plain availability() does not.
    availability = (env_cls.availability_for(specs[0].env_config) if hasattr(env_cls, "availability_for")
                    else env_cls.availability())
    if not availability.runnable:
        raise EnvUnavailableError(f"env {specs[0].env.full_name} cannot run here: {availability.detail}")
    from agentbench.models import check_loadable

    check_loadable(specs[0].model())  # fail early on an unknown or broken model, before any work
    check_device(specs[0].backend_options.device)
    if specs[0].budget.forgetting and any(s.method.name != "none" for s in specs):
        from agentbench.forgetting.verify import require_forgetting_extra

        require_forgetting_extra("the forgetting check (IF-Eval; --set budget.forgetting=false skips it)")
    if protocol_obj is None and specs[0].budget.forgetting and specs[0].forgetting.ifeval_data:
        from agentbench.forgetting.data import load_prompts

        load_prompts(specs[0].forgetting)  # and on a missing or malformed IF-Eval prompt file
    from agentbench import locking
    from agentbench.fileio import DISK_FULL, WriteError, write_error

    outcomes: list[RunOutcome] = []
    reporter = reporter if reporter is not None else Reporter(enabled=False)
    from agentbench.training import distributed

    if distributed.init():  # accelerate launch / torchrun: every rank trains, only rank 0 writes `out`
        out = distributed.output_folder(Path(out))
        if not distributed.is_main():
            reporter, on_result = Reporter(enabled=False), None
    try:
        for spec in specs:
            run_dir = prepare_run_dir(Path(out), run_id or spec.default_run_id(), spec, resume, overwrite)
            protocol_impl = protocol_obj if protocol_obj is not None else spec.protocol.obj(spec.protocol_config)
            with reporter:
                if len(specs) > 1:
                    reporter.note(f"[bold]{spec.method.full_name}[/] ({specs.index(spec) + 1}/{len(specs)})")
                session = RunSession(spec, run_dir, reporter)
                output = protocol_impl.run(session)
                result = session.result(output, forgetting=session.check_forgetting(output))
                path = write_final(session, result)
            outcome = RunOutcome(result, path)
            outcomes.append(outcome)
            if on_result is not None:
                on_result(outcome)
    except WriteError as exc:
        if exc.disk_full:
            raise WriteError(f"{exc}{RESUME_HINT}", disk_full=True) from exc
        raise
    except OSError as exc:  # a full disk where no write_error() wrapped the write (torch.save, ...)
        if exc.errno in DISK_FULL:
            raise WriteError(f"{write_error(exc.filename or '?', exc)}{RESUME_HINT}", disk_full=True) from exc
        raise
    finally:  # the run folders and shared-cache entries this process held
        locking.release_all()
    return outcomes


RESUME_HINT = "; finished episodes are saved: free space and rerun with --resume to continue"


def check_device(device: str) -> None:
    """A CUDA device asked for where there is none fails now, not after training."""
    from agentbench.errors import UsageError

    if device.startswith("cuda"):
        import torch

        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise UsageError(f"device {device!r} is not available here ({torch.cuda.device_count()} CUDA device(s))")


def evaluate(*, env: str, model: str = "smollm2-135m", splits: Sequence[str] = ("test",), backend: str = "hf",
             budget: str = "smoke", seed: int = 0, out: Path | str = "runs", sets: Sequence[str] = (),
             resume: bool = False, overwrite: bool = False, run_id: str | None = None,
             reporter: Any = None, command: Sequence[str] | None = None) -> RunOutcome:
    """Evaluate ``model`` as it is on ``splits`` of ``env`` (``agentbench eval``)."""
    from agentbench.env import SPLITS
    from agentbench.errors import UnknownNameError
    from agentbench.protocols import EvaluateOnly

    for s in splits:
        if s not in SPLITS:
            raise UnknownNameError("split", s, SPLITS)
    [outcome] = run(method="none", env=env, protocol="eval", model=model, backend=backend, budget=budget,
                    seed=seed, out=out, sets=sets, resume=resume, overwrite=overwrite, run_id=run_id,
                    reporter=reporter, protocol_obj=EvaluateOnly(EvaluateOnly.Config(splits=tuple(splits))),
                    command=command)
    return outcome


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def _recipe_from_sets(sets: list[str]) -> str | None:
    """``--set protocol.rl_method=spear`` picks the RL recipe of an rl-compat run."""
    for pair in sets:
        key, _, value = pair.partition("=")
        if key.strip() in ("protocol.rl_method", "rl_method"):
            return value.strip()
    return None
