"""The CI regression gate: rerun a declared smoke protocol and ``compare`` every env against
its committed baseline.

``leaderboards/baselines/gate.json`` declares the protocol: ``common`` options for every run
and one ``agentbench`` command per gated name (adding an env to the gate is one line there
and then ``make baselines ONLY=name``). Each baseline is ``leaderboards/baselines/<name>/``
with the run's ``result.json`` and ``episodes.jsonl`` only.

    python -m agentbench.gate check        # make regression: rerun into a temp folder, compare
    python -m agentbench.gate baselines    # make baselines: regenerate them deliberately

Each declared command runs as the :mod:`agentbench.api` call it stands for, in a process of its
own, and its result records the command line it stands for.

``check`` fails (exit 1) unless every comparison passes; an inconclusive comparison fails too
(``--allow-inconclusive`` lets it through). The protocol is deterministic, so unchanged code
reproduces the baselines' episodes exactly and passes; inconclusive means behaviour changed but
the smoke protocol is too small to tell whether for the worse, which deserves a look and a
deliberate ``make baselines`` rather than a silent pass.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.markup import escape
from rich.table import Table

from agentbench.errors import AgentbenchError, CorruptFileError, NotComparableError
from agentbench.results import read_result

DEFAULT_DIR = Path("leaderboards/baselines")
SPEC_FILE = "gate.json"
KEPT_FILES = ("result.json", "episodes.jsonl")


class GateError(AgentbenchError):
    """A gated run failed, or a baseline is missing or out of date."""

    exit_code = 1


class GateSpec(BaseModel):
    """``gate.json``: the smoke protocol the baselines were made with."""

    model_config = ConfigDict(extra="forbid")

    about: str = Field("", description="what the protocol is and why it is sized as it is")
    common: list[str] = Field(default_factory=list, description="options appended to every run's command")
    runs: dict[str, list[str]] = Field(description="gated name -> agentbench arguments (run ... or eval ...); "
                                                   "its options come after ``common``'s, so they override them")
    progress: bool = Field(False, description="gate progress rates too (compare --progress)")

    def argv(self, name: str) -> list[str]:
        """The declared command of ``name`` (without --out and --run-id, which the gate adds)."""
        command, *options = self.runs[name]
        return [command, *self.common, *options]


def load_spec(folder: Path) -> GateSpec:
    path = folder / SPEC_FILE
    try:
        return GateSpec.model_validate_json(path.read_text())
    except OSError as exc:
        raise CorruptFileError(f"cannot read {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CorruptFileError(f"{path} is corrupt: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def without_out(argv: list[str]) -> list[str]:
    """argv less the options that only say where a run goes (``--out``, ``--run-id``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--out", "--run-id"):
            skip = True
        elif not arg.startswith(("--out=", "--run-id=")):
            out.append(arg)
    return out


RUN_OPTIONS = {"--method": "method", "-m": "method", "--env": "env", "-e": "env", "--protocol": "protocol",
               "-p": "protocol", "--model": "model", "--backend": "backend", "--budget": "budget",
               "--seed": "seed", "--set": "sets"}
EVAL_OPTIONS = {"--env": "env", "-e": "env", "--model": "model", "--backend": "backend", "--budget": "budget",
                "--seed": "seed", "--set": "sets", "--split": "splits"}
FLAGS = ("--quiet", "-q")
"""Options that change nothing recorded (no progress bars: the gate's runs are quiet anyway)."""


def api_call(name: str, argv: list[str]) -> tuple[str, dict[str, Any]]:
    """A declared command (``run ...`` or ``eval ...``) as the :mod:`agentbench.api` call it stands
    for: (``"run"`` or ``"evaluate"``, keyword arguments). An option the gate cannot pass is refused."""
    command, *options = argv
    table = {"run": RUN_OPTIONS, "eval": EVAL_OPTIONS}.get(command)
    if table is None:
        raise GateError(f"{SPEC_FILE}: {name}: a gated command starts with run or eval, not {command!r}")
    kwargs: dict[str, Any] = {"sets": []}
    i = 0
    while i < len(options):
        option, value = options[i], None
        if "=" in option and option.startswith("--"):
            option, value = option.split("=", 1)
        if option in FLAGS:
            i += 1
            continue
        key = table.get(option)
        if key is None:
            raise GateError(f"{SPEC_FILE}: {name}: option {option!r} of {command} is not one the gate can pass "
                            f"(it takes {', '.join(sorted(set(table)))} and {', '.join(FLAGS)})")
        if value is None:
            if i + 1 >= len(options):
                raise GateError(f"{SPEC_FILE}: {name}: option {option!r} needs a value")
            value, i = options[i + 1], i + 2
        else:
            i += 1
        if key in ("sets", "splits"):
            kwargs.setdefault(key, []).append(value)
        elif key == "seed":
            try:
                kwargs[key] = int(value)
            except ValueError:
                raise GateError(f"{SPEC_FILE}: {name}: --seed expects an integer, got {value!r}") from None
        else:
            kwargs[key] = value  # a later option overrides common's, as on the command line
    return ("run" if command == "run" else "evaluate"), kwargs


def _run_declared(name: str, argv: list[str], out: str) -> tuple[str, float, str]:
    """In the run's own process: ``argv`` through :mod:`agentbench.api`, recording the command line it
    stands for. Returns (run folder, seconds, error line or "")."""
    from agentbench import api
    from agentbench.cli import _configure_threads

    _configure_threads()
    function, kwargs = api_call(name, argv)
    recorded = ["agentbench", *argv, "--out", out, "--run-id", name]
    started = time.perf_counter()
    try:
        getattr(api, function)(**kwargs, out=out, run_id=name, command=recorded)
    except AgentbenchError as exc:
        return "", time.perf_counter() - started, f"gate run {name!r} failed (exit {exc.exit_code}): {exc}"
    return str(Path(out) / name), time.perf_counter() - started, ""


def run_all(spec: GateSpec, names: list[str], out: Path, jobs: int) -> dict[str, tuple[Path, float]]:
    """Every named run, ``jobs`` at a time, each a :func:`agentbench.api.run` (or ``evaluate``) in a
    fresh process of its own (as from the command line: torch's global state, seeds and threads
    start clean, so reruns reproduce the baselines bitwise)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    for name in names:
        api_call(name, spec.argv(name))  # refuse an unsupported option before any run starts
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the spawned processes
    done: dict[str, tuple[Path, float]] = {}
    errors: list[str] = []
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        futures = {name: pool.submit(_run_declared, name, spec.argv(name), str(out)) for name in names}
        for name, future in futures.items():
            folder, seconds, error = future.result()
            if error:
                errors.append(error)
            else:
                done[name] = (Path(folder), seconds)
    if errors:
        raise GateError("; ".join(errors))
    return done


def select(spec: GateSpec, only: str | None) -> list[str]:
    if not only:
        return list(spec.runs)
    names = [n.strip() for n in only.split(",") if n.strip()]
    for n in names:
        if n not in spec.runs:
            from agentbench.errors import UnknownNameError

            raise UnknownNameError("gated run", n, spec.runs)
    return names


app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
FolderOpt = Annotated[Path, typer.Option("--baselines", help="folder with gate.json and one folder per baseline")]
OnlyOpt = Annotated[str | None, typer.Option("--only", help="comma-separated gated names (default: all)")]
JobsOpt = Annotated[int, typer.Option("--jobs", help="runs at once (each on one thread)")]


def _cli(fn):
    from agentbench.cli import handles_errors

    return handles_errors(fn)


@app.command("baselines")
@_cli
def baselines_command(folder: FolderOpt = DEFAULT_DIR, only: OnlyOpt = None, jobs: JobsOpt = 1) -> None:
    """Regenerate the baselines: run the declared protocol and keep result.json and episodes.jsonl."""
    from agentbench.cli import console

    spec = load_spec(folder)
    names = select(spec, only)
    with tempfile.TemporaryDirectory(prefix="agentbench-baselines-") as tmp:
        for name, (run_dir, seconds) in run_all(spec, names, Path(tmp), jobs).items():
            target = folder / name
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for file in KEPT_FILES:
                shutil.copy2(run_dir / file, target / file)
            rate = read_result(target / "result.json").envs[0].success_rate
            console.print(f"{name}: {target} ({seconds:.0f} s, success {100 * rate.value:.1f}% of {rate.n})")
    stale = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in spec.runs)
    if stale:
        console.print(f"note: {', '.join(stale)} in {folder} are not declared in {SPEC_FILE} (not gated)")


def check_baseline(spec: GateSpec, folder: Path, name: str) -> Path:
    """The baseline's result.json, after checking it exists and was made by the declared command."""
    path = folder / name / "result.json"
    if not path.exists():
        raise GateError(f"no baseline for {name!r} ({path}): run `make baselines ONLY={name}` and commit it")
    recorded = without_out(read_result(path).command[1:])
    if recorded != spec.argv(name):
        raise GateError(f"the baseline of {name!r} was made by another command than {SPEC_FILE} declares: "
                        f"run `make baselines ONLY={name}` and commit it")
    return path


@app.command("check")
@_cli
def check_command(
    folder: FolderOpt = DEFAULT_DIR,
    only: OnlyOpt = None,
    jobs: JobsOpt = 1,
    keep: Annotated[Path | None, typer.Option("--keep", help="keep the reruns and comparison JSON here")] = None,
    allow_inconclusive: Annotated[bool, typer.Option(
        "--allow-inconclusive", help="let inconclusive comparisons pass (for hardware that does not "
                                     "reproduce the baselines bitwise)")] = False,
    require_identical: Annotated[bool, typer.Option(
        "--require-identical", help="also fail when a rerun's episodes differ from the baseline's at all "
                                    "(a bitwise reproducibility gate)")] = False,
    margin: Annotated[float, typer.Option("--margin", help="practical margin in points")] = 2.0,
    alpha: Annotated[float, typer.Option("--alpha", help="family-wise error rate per comparison")] = 0.05,
) -> None:
    """Rerun the declared protocol and gate every env with ``agentbench compare``."""
    from agentbench.cli import console, print_comparison_table
    from agentbench.compare import compare, write_comparison

    spec = load_spec(folder)
    names = select(spec, only)
    bases = {name: check_baseline(spec, folder, name) for name in names}
    out = keep or Path(tempfile.mkdtemp(prefix="agentbench-regression-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        reruns = run_all(spec, names, out, jobs)
        total = time.perf_counter() - started
        summary = Table(title=f"regression gate: {len(names)} run(s) against {folder} ({total:.0f} s)")
        for col in ("run", "verdict", "delta (points)", "episodes identical", "seconds"):
            summary.add_column(col)
        failed = []
        for name in names:
            run_dir, seconds = reruns[name]
            same = (bases[name].parent / "episodes.jsonl").read_bytes() == (run_dir / "episodes.jsonl").read_bytes()
            try:
                comparison = compare(bases[name], run_dir, margin=margin, alpha=alpha, progress=spec.progress)
            except NotComparableError as exc:
                console.print(f"{name}: {escape(str(exc))}", highlight=False, soft_wrap=True)
                failed.append(f"{name} (not comparable)")
                summary.add_row(name, "not comparable", "", "yes" if same else "no", f"{seconds:.0f}")
                continue
            print_comparison_table(comparison)
            write_comparison(comparison, run_dir / "comparison.json")
            verdict = comparison.verdict.value
            ok = verdict == "pass" or (allow_inconclusive and verdict == "inconclusive")
            if not ok:
                failed.append(f"{name} ({verdict})")
            elif require_identical and not same:
                failed.append(f"{name} (episodes differ)")
            summary.add_row(name, verdict, ", ".join(f"{m.delta:+.1f}" for m in comparison.metrics),
                            "yes" if same else "no", f"{seconds:.0f}")
        console.print(summary)
    finally:
        if keep is None:
            shutil.rmtree(out, ignore_errors=True)
    if failed:
        raise GateError(f"regression gate failed: {', '.join(failed)}; if the change is deliberate, "
                        "regenerate the baselines with `make baselines` and commit them")
    console.print(f"regression gate passed: {', '.join(names)}")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
