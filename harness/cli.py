"""The command line: ``agentbench run|list|eval|forgetting|show|compare|publish|serve-env`` and
``agentbench-run``.

Errors a user can act on print one line (``error: ...``) and exit with their code: 2 for
unknown names and bad options, 1 for failures, 3 for results that cannot be compared.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentbench.errors import AgentbenchError
from agentbench.extras import require_extra
from agentbench.fileio import DISK_FULL, write_error

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Benchmark agent-learning methods against imitation learning, fairly.")
# Wide enough for the result table when output is not a terminal (CI logs, pipes).
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def handles_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OSError as exc:  # a full disk where no write_error() wrapped the write
            if exc.errno not in DISK_FULL:
                raise
            err_console.print(f"[bold red]error:[/] {escape(str(write_error(exc.filename or '?', exc)))}",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except AgentbenchError as exc:
            # escaped: messages name fields like envs[frozenlake/test], which rich would take for markup
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]: finished episodes are saved; rerun with --resume")
            raise typer.Exit(130) from None

    return wrapper


def _quiet_libraries() -> None:
    """Our progress bars replace the libraries' own weight-loading bars."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _configure_threads() -> None:
    _quiet_libraries()
    threads = os.environ.get("AGENTBENCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))


MethodOpt = Annotated[str, typer.Option("--method", "-m", help="method name (agentbench list methods)")]
EnvOpt = Annotated[str, typer.Option("--env", "-e", help="environment name (agentbench list envs)")]
ModelOpt = Annotated[str, typer.Option("--model", help="registered model, local folder or hub id")]
BackendOpt = Annotated[str, typer.Option("--backend", help="a registered backend (agentbench list backends)")]
BudgetOpt = Annotated[str, typer.Option("--budget", help="smoke, small or paper")]
SEED_MAX = 2**32 - 1
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX,
                                      help="seed of data order, sampling and bootstraps (0 to 2**32-1)")]
OutOpt = Annotated[Path, typer.Option("--out", help="folder that receives the run folder")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="key=value for any env/method/protocol option")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="continue the run folder, skipping finished work")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="delete an existing run folder first")]
RunIdOpt = Annotated[str | None, typer.Option("--run-id", help="name of the run folder (default: derived)")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]


def execute(*, method: str, env: str, protocol: str, model: str, backend: str, budget: str, seed: int,
            out: Path, sets: list[str], resume: bool, overwrite: bool, run_id: str | None, quiet: bool,
            protocol_obj=None) -> list[Path]:
    """``agentbench.api.run`` with progress bars and the result tables; returns the result paths."""
    _configure_threads()
    from agentbench import api
    from agentbench.progress import Reporter

    reporter = Reporter(err_console, enabled=not quiet)
    outcomes = api.run(method=method, env=env, protocol=protocol, model=model, backend=backend, budget=budget,
                       seed=seed, out=out, sets=sets, resume=resume, overwrite=overwrite, run_id=run_id,
                       reporter=reporter, protocol_obj=protocol_obj,
                       on_result=lambda o: print_result(o.result, o.path))
    if len(outcomes) > 1:
        print_comparison([o.result for o in outcomes])
    return [o.path for o in outcomes]


def print_comparison(results) -> None:
    """Methods side by side on the headline split, with the difference to imitation learning."""
    baseline = next((r for r in results if r.method.name == "il"), None)
    table = Table(title="methods compared (same expert data, seeds and evaluation tasks)")
    for col in ("method", "split", "success", "95% CI", "vs il", "optimizer steps", "train tokens", "env steps"):
        table.add_column(col, justify="left" if col in ("method", "split") else "right")
    for r in results:
        for e in r.envs:
            base = next((b for b in baseline.envs if b.split == e.split), None) if baseline else None
            delta = f"{100 * (e.success_rate.value - base.success_rate.value):+.1f}" if base and r is not baseline else ""
            lo, hi = e.success_rate.ci95
            table.add_row(r.method.name, e.split, f"{100 * e.success_rate.value:.1f}%",
                          f"[{100 * lo:.1f}, {100 * hi:.1f}]", delta, str(r.train.optimizer_steps),
                          str(r.train.tokens), str(r.train.env_steps))
    console.print(table)


def print_result(result, path: Path) -> None:
    table = Table(title=f"{result.method.name} on {', '.join(sorted({e.name for e in result.envs}))} "
                        f"({result.protocol.name}, {result.protocol.budget} budget, model {result.model.name})")
    for col in ("env", "split", "success", "95% CI", "progress", "invalid", "turns", "episodes"):
        table.add_column(col, justify="right" if col not in ("env", "split") else "left")
    for e in result.envs:
        sr = e.success_rate
        table.add_row(e.name, e.split, f"{100 * sr.value:.1f}%", f"[{100 * sr.ci95[0]:.1f}, {100 * sr.ci95[1]:.1f}]",
                      f"{100 * e.progress_rate:.1f}%", f"{100 * e.invalid_action_rate:.1f}%", f"{e.mean_turns:.1f}",
                      f"{e.n_episodes.completed}/{e.n_episodes.planned}")
    console.print(table)
    t = result.train
    console.print(f"train: {t.optimizer_steps} optimizer steps, {t.examples} examples, {t.tokens} tokens, "
                  f"{t.env_steps} env steps, {t.wall_time_s:.0f} s")
    if result.forgetting is not None:
        f = result.forgetting
        from agentbench.publish.text import ifeval_token_limit

        limit = ifeval_token_limit(f)
        console.print(f"forgetting (IF-Eval prompt-level strict{f', answers of at most {limit} tokens' if limit else ''}): "
                      f"{100 * f.before.prompt_level_strict:.1f}% -> "
                      f"{100 * f.after.prompt_level_strict:.1f}% (p={f.test.p_value:.3g}, {f.test.name})")
    console.print(f"result: {path}")


@app.command("run")
@handles_errors
def run_command(
    method: MethodOpt,
    env: EnvOpt,
    protocol: Annotated[str, typer.Option("--protocol", "-p", help="a registered protocol (agentbench list protocols)")] = "in-domain",
    model: ModelOpt = "smollm2-135m",
    backend: BackendOpt = "hf",
    budget: BudgetOpt = "smoke",
    seed: SeedOpt = 0,
    out: OutOpt = Path("runs"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value for any env/method/protocol option")] = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    run_id: RunIdOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Train METHOD on ENV under a protocol, evaluate it, and write result.json."""
    execute(method=method, env=env, protocol=protocol, model=model, backend=backend, budget=budget, seed=seed,
            out=out, sets=set_ or [], resume=resume, overwrite=overwrite, run_id=run_id, quiet=quiet)


@app.command("eval")
@handles_errors
def eval_command(
    env: EnvOpt,
    model: ModelOpt = "smollm2-135m",
    split: Annotated[list[str] | None, typer.Option("--split", help="split(s) to evaluate")] = None,
    backend: BackendOpt = "hf",
    budget: BudgetOpt = "smoke",
    seed: SeedOpt = 0,
    out: OutOpt = Path("runs"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value for any env option")] = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    run_id: RunIdOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate a model or checkpoint on ENV without training."""
    from agentbench.env import SPLITS
    from agentbench.errors import UnknownNameError
    from agentbench.protocols import EvaluateOnly

    splits = tuple(split or ["test"])
    for s in splits:
        if s not in SPLITS:
            raise UnknownNameError("split", s, SPLITS)
    execute(method="none", env=env, protocol="eval", model=model, backend=backend, budget=budget, seed=seed,
            out=out, sets=set_ or [], resume=resume, overwrite=overwrite, run_id=run_id, quiet=quiet,
            protocol_obj=EvaluateOnly(EvaluateOnly.Config(splits=splits)))


@app.command("forgetting")
@handles_errors
def forgetting_command(
    model: Annotated[str, typer.Option("--model", help="the trained model: a checkpoint folder, a registered "
                                                       "model or a hub id")],
    base: Annotated[str | None, typer.Option(
        "--base", help="the initial model (default: the base model the checkpoint records)")] = None,
    backend: BackendOpt = "hf",
    budget: BudgetOpt = "smoke",
    seed: SeedOpt = 0,
    out: OutOpt = Path("runs"),
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="key=value for budget, backend or ifeval_* options")] = None,
    quiet: QuietOpt = False,
) -> None:
    """IF-Eval instruction following of MODEL against its initial model, with a paired test."""
    _configure_threads()
    from agentbench.forgetting.verify import require_forgetting_extra

    require_forgetting_extra()
    from agentbench.forgetting.standalone import run_standalone
    from agentbench.progress import Reporter

    with Reporter(err_console, enabled=not quiet) as reporter:
        result, path = run_standalone(model=model, base=base, budget=budget, backend=backend, seed=seed, out=out,
                                      sets=set_ or [], progress=reporter.update)
    print_forgetting(result, path)


FORGETTING_ROWS = {"prompt_level_strict": "prompt-level strict", "prompt_level_loose": "prompt-level loose",
                   "inst_level_strict": "instruction-level strict", "inst_level_loose": "instruction-level loose"}


def print_forgetting(f, path: Path) -> None:
    models = f.extra.get("models", {})
    before, after = models.get("before", {}).get("name", "before"), models.get("after", {}).get("name", "after")
    from agentbench.publish.text import ifeval_token_limit

    limit = ifeval_token_limit(f)
    table = Table(title=f"IF-Eval forgetting: {before} -> {after} ({f.n} prompts"
                        f"{f', answers of at most {limit} tokens' if limit else ''})")
    for col in ("metric", "before", "after", "delta", "95% CI of delta"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    intervals = f.test.details.get("bootstrap", {}).get("intervals", {})
    for key, label in FORGETTING_ROWS.items():
        lo, hi = intervals.get(key, {}).get("ci95", (float("nan"), float("nan")))
        table.add_row(label, f"{100 * getattr(f.before, key):.1f}%", f"{100 * getattr(f.after, key):.1f}%",
                      f"{100 * getattr(f.delta, key):+.1f}", f"[{100 * lo:+.1f}, {100 * hi:+.1f}]")
    console.print(table)
    d = f.test.details.get("discordant", {})
    console.print(f"{f.test.name}: p={f.test.p_value:.3g} ({d.get('before_only', 0)} prompts lost, "
                  f"{d.get('after_only', 0)} gained)", highlight=False)
    console.print(f"prompts: {f.source} (sha256 {f.dataset_sha256[:12]}); "
                  f"{f.extra.get('wall_time_s', 0):.0f} s", highlight=False, soft_wrap=True)
    console.print(f"result: {path}")


@app.command("show")
@handles_errors
def show_command(
    path: Annotated[Path, typer.Argument(help="a result.json or a run folder")],
) -> None:
    """Validate a result file and print its table."""
    from agentbench.results import read_result

    file = path / "result.json" if path.is_dir() else path
    print_result(read_result(file), file)


@app.command("publish")
@handles_errors
def publish_command(
    folder: Annotated[Path, typer.Argument(help="folder searched (recursively) for result.json files")],
    format_: Annotated[str, typer.Option("--format", "-f", help="md, latex or html")] = "md",
    out: Annotated[Path | None, typer.Option(
        "--out", help="the document to write (default: FOLDER/leaderboard.md|.tex|.html); images go beside it")] = None,
    reference: Annotated[bool, typer.Option(
        "--reference", help="add the papers' reported numbers, marked as such (never compared with ours)")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="fail (exit 2) on a corrupt result file instead of skipping it")] = False,
) -> None:
    """Leaderboard tables and plots from the result files under FOLDER."""
    from agentbench.publish import publish

    require_extra("matplotlib", extra="publish", what="agentbench publish")  # it draws the plots

    published = publish(folder, format_, out, reference=reference, strict=strict)
    for message in published.messages:
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
    images = f" and {len(published.images)} image(s) beside it" if published.images else ""
    console.print(f"wrote {published.document}{images} from {published.n_results} result(s)",
                  highlight=False, soft_wrap=True)


@app.command("compare")
@handles_errors
def compare_command(
    base: Annotated[Path, typer.Argument(help="the reference: a result.json or a run folder")],
    new: Annotated[Path, typer.Argument(help="the result under test: a result.json or a run folder")],
    margin: Annotated[float, typer.Option("--margin", help="practical margin in points: smaller drops are no regression")] = 2.0,
    alpha: Annotated[float, typer.Option("--alpha", help="family-wise error rate (Holm over all metrics)")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX, help="seed of the bootstraps")] = 0,
    json_path: Annotated[Path | None, typer.Option("--json", help="also write the comparison as JSON here")] = None,
    progress: Annotated[bool, typer.Option("--progress", help="also gate every env's progress rate")] = False,
    cell: Annotated[str | None, typer.Option(
        "--cell", help="rl-compat results: gate one start's cell, START (after RL) or START/before|after "
                       "(default: the top-level envs)")] = None,
) -> None:
    """Statistical regression gate between two results: exit 0 pass, 1 regression, 2 inconclusive,
    3 not comparable."""
    from agentbench.compare import compare, write_comparison

    comparison = compare(base, new, margin=margin, alpha=alpha, seed=seed, progress=progress, cell=cell)
    print_comparison_table(comparison)
    if json_path is not None:
        write_comparison(comparison, json_path)
        console.print(f"comparison: {json_path}")
    raise typer.Exit(comparison.exit_code)


VERDICT_STYLES = {"pass": "bold green", "regression": "bold red", "inconclusive": "bold yellow"}


def print_comparison_table(c) -> None:
    level = f"{100 * (1 - c.alpha):g}%"
    console.print(f"BASE {c.base.run_id} ({c.base.method})\nNEW  {c.new.run_id} ({c.new.method})"
                  + (f"\ncell {c.cell} (rl-compat)" if c.cell else ""), highlight=False, soft_wrap=True)
    table = Table(title=f"NEW vs BASE: margin {c.margin:g} points, alpha {c.alpha:g}, Holm over "
                        f"{len(c.metrics)} metric(s)")
    for col in ("metric", "pairs", "BASE", "NEW", "delta", f"{level} CI", "LB Holm", "p", "p Holm",
                "p NI Holm", "verdict"):
        table.add_column(col, justify="left" if col in ("metric", "verdict") else "right",
                         no_wrap=col in ("metric", "verdict", f"{level} CI"))
    for m in c.metrics:
        table.add_row(
            m.metric, f"{m.n_pairs}" + (f" ({m.n_tasks}x{m.seeds_per_task})" if m.seeds_per_task > 1 else ""),
            f"{m.base_rate:.1f}%", f"{m.new_rate:.1f}%", f"{m.delta:+.1f}", f"[{m.ci[0]:+.1f}, {m.ci[1]:+.1f}]",
            f"{m.lower_bound_holm:+.1f}", f"{m.p_value:.3g}", f"{m.p_adjusted:.3g}",
            f"{m.p_noninferiority_adjusted:.3g}", f"[{VERDICT_STYLES[m.verdict.value]}]{m.verdict.value}[/]")
    console.print(table)
    tests = sorted({m.test for m in c.metrics})
    console.print(f"tests: {'; '.join(tests)}. delta, CI and LB in points (NEW - BASE); LB Holm: one-sided "
                  f"lower bound at the metric's Holm level; NI: non-inferiority (H0: delta <= -{c.margin:g}).",
                  highlight=False, soft_wrap=True)
    for m in c.metrics:
        if m.needed is not None and m.needed.tasks is not None:
            console.print(f"{m.metric}: about {m.needed.tasks} tasks ({m.needed.episodes} episodes) would decide "
                          f"({m.needed.target}; {m.needed.assumption})", highlight=False, soft_wrap=True)
        elif m.needed is not None:
            console.print(f"{m.metric}: the observed delta sits on the margin; no sample size decides it",
                          highlight=False, soft_wrap=True)
    for note in c.notes:
        console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    console.print(f"verdict: [{VERDICT_STYLES[c.verdict.value]}]{c.verdict.value.upper()}[/] (exit {c.exit_code})")


@app.command("serve-env")
@handles_errors
def serve_env_command(
    env: Annotated[str, typer.Argument(help="environment name (agentbench list envs)")],
    host: Annotated[str, typer.Option("--host", help="address to listen on; 0.0.0.0 for other hosts")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port to listen on (0: any free port)")] = 8000,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value for any env option")] = None,
    max_sessions: Annotated[int, typer.Option("--max-sessions", min=1, help="live sessions at most")] = 64,
    idle_timeout: Annotated[float, typer.Option(
        "--idle-timeout", min=0.001, help="seconds after which an idle session may be evicted for a new one")] = 600.0,
    log_level: Annotated[str, typer.Option(
        "--log-level", help="uvicorn log level: critical, error, warning, info (logs requests), debug, trace")] = "warning",
    token: Annotated[str | None, typer.Option(
        "--token", envvar="AGENTBENCH_ENV_TOKEN", show_envvar=False,
        help="a shared secret every request must carry (clients: --set token=... or $AGENTBENCH_ENV_TOKEN)")] = None,
) -> None:
    """Serve ENV over AgentGym's HTTP protocol (drive it with --env agentgym:ENV --set url=...)."""
    for module in ("starlette", "uvicorn"):
        require_extra(module, extra="agentgym", what="agentbench serve-env")
    from agentbench.agentgym.server import LOG_LEVELS, is_loopback, serve
    from agentbench.agentgym.service import EnvService, ServedEnv
    from agentbench.errors import UnknownNameError

    if log_level.lower() not in LOG_LEVELS:
        raise UnknownNameError("log level", log_level, LOG_LEVELS)
    service = EnvService(ServedEnv.from_registry(env, set_ or []), max_sessions=max_sessions,
                         idle_timeout_s=idle_timeout)
    if not is_loopback(host):
        err_console.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this address can drive "
                          f"the env{'' if token else ' (no authentication; pass --token to require a shared secret)'}",
                          highlight=False, soft_wrap=True)

    def ready(url: str) -> None:
        console.print(f"serving {service.served.full_name} on {url} (AgentGym protocol, at most {max_sessions} "
                      f"sessions); use it with --env agentgym:{service.served.full_name} --set url={url}"
                      + (" and the token (--set token=... or $AGENTBENCH_ENV_TOKEN)" if token else ""),
                      highlight=False, soft_wrap=True)

    serve(service, host, port, log_level=log_level.lower(), on_ready=ready, token=token)


@app.command("check-env")
@handles_errors
def check_env_command(
    env: Annotated[str, typer.Argument(help="environment name (agentbench list envs)")],
    sample: Annotated[int, typer.Option("--sample", help="tasks per split the expert plays")] = 50,
    split: Annotated[list[str] | None, typer.Option("--split", help="split(s) to sample (default: all)")] = None,
    seed: SeedOpt = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value for any env option")] = None,
) -> None:
    """Check ENV against the environment contract: determinism, the expert's success per split,
    snapshot/replay round trips, garbage actions survived. Exit 1 when the contract fails."""
    from agentbench import conformance, registry
    from agentbench.env import SPLITS
    from agentbench.errors import EnvUnavailableError, UnknownNameError
    from agentbench.spec import parse_sets

    splits = split or list(SPLITS)
    for s in splits:
        if s not in SPLITS:
            raise UnknownNameError("split", s, SPLITS)
    resolved = registry.envs.resolve(env)
    cls = resolved.obj
    params = parse_sets(set_ or [], {"env": cls.Config})["env"]
    if resolved.variant is not None:
        params.setdefault("variant", resolved.variant)
    # An env may name the settings its contract is checked under (tau-bench: the scripted user, so
    # that no user model is loaded); --set overrides them.
    defaults = {k: v for k, v in getattr(cls, "conformance_params", {}).items() if k not in params}
    params.update(defaults)
    if defaults:
        console.print(f"checked with {', '.join(f'{k}={v}' for k, v in defaults.items())} "
                      "(the env's conformance settings; --set to override)", highlight=False)
    instance = cls.from_params(params)
    available = cls.availability_for(instance.config)
    if not available.runnable:
        raise EnvUnavailableError(f"env {resolved.full_name} cannot run here: {available.detail}")
    table = Table(title=f"{resolved.full_name} v{instance.version}: the expert on {sample} sampled tasks per split")
    for col in ("split", "solved", "rate", "mean actions", "failed tasks"):
        table.add_column(col, justify="left" if col in ("split", "failed tasks") else "right")
    failures: list[str] = []
    with instance:
        for s in splits:
            found = conformance.expert_rate(instance, s, sample, seed)
            table.add_row(s, f"{found.solved}/{found.sampled}", f"{100 * found.rate:.1f}%",
                          f"{found.mean_actions:.1f}", ", ".join(found.failed[:5]) + (" ..." if len(found.failed) > 5 else ""))
            if s == "test" and found.rate < conformance.EXPERT_THRESHOLD:
                failures.append(f"the expert solves {100 * found.rate:.1f}% of test tasks (contract: "
                                f">= {100 * conformance.EXPERT_THRESHOLD:.0f}%)")
        console.print(table)
        task = instance.tasks("test")[0]
        if not conformance.is_deterministic(instance, task):
            failures.append("the same task, seed and actions gave different episodes")
        failures += conformance.branching_problems(instance, instance.tasks("train")[0])
        for garbage in conformance.GARBAGE_ACTIONS:
            problem = conformance.garbage_problem(instance, task, garbage)
            if problem:
                failures.append(f"garbage action {garbage[:20]!r}: {problem}")
    branching = "snapshot/restore" if getattr(instance, "supports_snapshot", False) else "replay"
    for line in failures:
        err_console.print(f"[bold red]fails:[/] {line}", highlight=False)
    if failures:
        raise typer.Exit(1)
    console.print(f"contract kept: deterministic, branching by {branching}, "
                  f"{len(conformance.GARBAGE_ACTIONS)} garbage actions survived")


KINDS = ("envs", "methods", "protocols", "models", "backends")


@app.command("list")
@handles_errors
def list_command(
    kind: Annotated[str | None, typer.Argument(help="envs, methods, protocols, models or backends")] = None,
) -> None:
    """What is registered, with one-line descriptions."""
    from agentbench import registry
    from agentbench.errors import UnknownNameError

    if kind is not None and kind not in KINDS:
        raise UnknownNameError("kind", kind, KINDS)
    for k in [kind] if kind else KINDS:
        reg = getattr(registry, k)
        table = Table(title=k, title_justify="left", show_lines=False)
        table.add_column("name", style="bold")
        table.add_column("description")
        if k == "envs":
            table.add_column("runs here")
        table.add_column("from")
        for name, dist, obj in reg.describe():
            if isinstance(obj, Exception):
                row = [name, f"[red]failed to load: {obj}[/]"] + (["no"] if k == "envs" else []) + [dist]
            else:
                row = [name, _describe(obj)] + ([_availability(obj)] if k == "envs" else []) + [dist]
            table.add_row(*row)
        console.print(table)


def _describe(obj) -> str:
    text = getattr(obj, "description", None) or (obj.__doc__ or "").strip().split("\n")[0]
    return str(text)


def _availability(env_cls) -> str:
    try:
        a = env_cls.availability()
    except Exception as exc:  # a plugin's check must not break the listing
        return f"[red]check failed: {escape(str(exc))}[/]"
    if a.runnable:
        return f"yes: {escape(a.detail)}" if a.detail else "yes"
    return f"[yellow]no[/]: {escape(a.detail)}"  # escaped: "needs agentbench[webarena]" is not markup


def main() -> None:
    app()


run_app = typer.Typer(add_completion=False)
run_app.command()(run_command)


def run_main() -> None:
    """``agentbench-run``: the same as ``agentbench run``."""
    run_app()


if __name__ == "__main__":  # pragma: no cover
    main()


# -- agentbench sweep (harness/sweep.py) ------------------------------------------------------
SWEEP_STYLES = {"done": "green", "skipped": "cyan", "failed": "bold red"}


@app.command("sweep")
@handles_errors
def sweep_command(
    method: Annotated[str, typer.Option("--method", "-m", help="methods, comma-separated (il,iwm)")],
    env: Annotated[str, typer.Option("--env", "-e", help="environments, comma-separated")],
    seed: Annotated[str, typer.Option("--seed", help="seeds, comma-separated (0,1,2)")] = "0",
    protocol: Annotated[str, typer.Option("--protocol", "-p", help="in-domain, ood or scaling")] = "in-domain",
    model: ModelOpt = "smollm2-135m",
    backend: BackendOpt = "hf",
    budget: BudgetOpt = "smoke",
    out: OutOpt = Path("runs"),
    set_: SetOpt = None,
    launcher: Annotated[str, typer.Option("--launcher", help="local (worker processes) or ray "
                                                             "(RAY_ADDRESS's cluster, else a local one)")] = "local",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="local: cells run at once")] = 1,
    retries: Annotated[int, typer.Option("--retries", help="ray: retries of a cell whose worker died")] = 2,
    gpus_per_cell: Annotated[float, typer.Option("--gpus-per-cell", help="ray: GPUs each cell reserves")] = 0.0,
    cpus_per_cell: Annotated[float, typer.Option("--cpus-per-cell", help="ray: CPUs each cell reserves")] = 1.0,
    format_: Annotated[str, typer.Option("--format", "-f", help="leaderboard format: md, latex or html")] = "md",
) -> None:
    """One run per (method, env, seed) cell, skipping cells already complete, then the folder's
    leaderboard. Exit 1 when a cell failed (its log is under OUT/sweep-logs/)."""
    _configure_threads()
    from agentbench.sweep import split_list, sweep

    try:
        seeds = [int(s) for s in split_list(seed, "seed")]
    except ValueError:
        raise typer.BadParameter(f"--seed expects integers, got {seed!r}") from None

    def done(o) -> None:
        extra = f" ({o.seconds:.0f} s)" if o.seconds else ""
        detail = f": {o.error}" if o.error else ""
        err_console.print(f"[{SWEEP_STYLES[o.status]}]{o.status}[/] {escape(o.cell.label())}{extra}{escape(detail)}",
                          highlight=False, soft_wrap=True)

    report = sweep(methods=split_list(method, "method"), envs=split_list(env, "env"), seeds=seeds, out=out,
                   protocol=protocol, model=model, backend=backend, budget=budget, sets=set_ or [],
                   launcher=launcher, jobs=jobs, retries=retries, gpus_per_cell=gpus_per_cell,
                   cpus_per_cell=cpus_per_cell, publish_format=format_, on_done=done)
    table = Table(title=f"sweep: {len(report.outcomes)} cell(s) in {out}")
    for col in ("method", "env", "seed", "status", "success", "seconds", "run"):
        table.add_column(col, justify="right" if col in ("seed", "success", "seconds") else "left")
    for o in report.outcomes:
        success = ", ".join(f"{100 * v:.1f}%" for v in o.success.values())
        table.add_row(o.cell.method, o.cell.env, str(o.cell.seed), f"[{SWEEP_STYLES[o.status]}]{o.status}[/]",
                      success, f"{o.seconds:.0f}" if o.seconds else "", o.cell.run_id)
    console.print(table)
    for message in report.messages:
        err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if report.leaderboard is not None:
        console.print(f"leaderboard: {report.leaderboard}", highlight=False, soft_wrap=True)
    if report.failed:
        raise typer.Exit(1)
