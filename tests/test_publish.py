"""agentbench publish: tables (exact markdown and LaTeX), the column rule, reported rows, errors,
and the HTML page in a real headless Chromium.

The results are written by a fixture builder through the real schema (``RunResult``,
``comparability_of``, ``wilson_interval``, ``write_result``; every file is re-read with
``read_result``), so they are what a run would write, minus the run: a tiny-model run takes
~20 s per method here, and the tables need a dozen results with chosen numbers.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentbench.cli import app
from agentbench.method import Compute
from agentbench.publish import publish
from agentbench.publish.board import build_board
from agentbench.publish.reference import reference_data
from agentbench.results import (
    EnvironmentInfo,
    EnvResult,
    EpisodeCounts,
    ForgettingResult,
    ForgettingScores,
    GenerationInfo,
    HarnessInfo,
    MethodInfo,
    ModelInfo,
    PairedTest,
    ProtocolInfo,
    Rate,
    RunResult,
    ScalingPoint,
    Terminations,
    Tokens,
    comparability_key,
    comparability_of,
    read_result,
    write_result,
)
from agentbench.stats import wilson_interval
from agentbench.trajectory import EpisodeRecord, Termination, TokenCount

runner = CliRunner()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _rate(successes: int, n: int) -> Rate:
    return Rate(value=successes / n, n=n, ci95=wilson_interval(successes, n), ci_method="wilson score")


def _env(name: str, split: str, successes: int, n: int = 8, *, version: str = "1", seeds=(0,), max_turns: int = 20,
         completed: int | None = None) -> EnvResult:
    done = n if completed is None else completed
    return EnvResult(
        name=name, version=version, split=split, task_set_sha256=_sha(f"{name}/{split}/{n}"), n_tasks=n,
        seeds=list(seeds), max_turns=max_turns, n_episodes=EpisodeCounts(planned=n, completed=done, errored=n - done),
        success_rate=_rate(successes, done), progress_rate=successes / n, invalid_action_rate=0.1, mean_turns=4.0,
        tokens=Tokens(prompt=1000, completion=100),
        terminations=Terminations(success=successes, failure=done - successes, env_error=n - done))


def _forgetting(delta: float, p: float) -> ForgettingResult:
    before = ForgettingScores(prompt_level_strict=0.5, prompt_level_loose=0.55, inst_level_strict=0.6,
                              inst_level_loose=0.65)
    after = before.model_copy(update={"prompt_level_strict": 0.5 + delta})
    diff = ForgettingScores(prompt_level_strict=delta, prompt_level_loose=0.0, inst_level_strict=0.0,
                            inst_level_loose=0.0)
    return ForgettingResult(benchmark="ifeval", source="fixture", dataset_sha256=_sha("ifeval"), n=50, before=before,
                            after=after, delta=diff, test=PairedTest(name="exact McNemar", p_value=p))


def make_result(method: str, envs: list[EnvResult], *, protocol: str = "in-domain", model: str = "tiny",
                seed: int = 0, max_new_tokens: int = 40, prompt: str = "default", eval_tasks: int = 8,
                steps: int = 8, tokens: int = 7610, env_steps: int = 30, forgetting: ForgettingResult | None = None,
                scaling: list[ScalingPoint] | None = None, status: str = "complete",
                created_at: str = "2026-01-01T00:00:00+00:00") -> RunResult:
    budget = {"name": "custom", "train_tasks": 4, "eval_tasks": eval_tasks, "max_new_tokens": 40}
    proto = ProtocolInfo(name=protocol, version="1", budget="custom", budget_config=budget, train_split="train",
                         eval_split=envs[0].split, seed=seed)
    gen = GenerationInfo(temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=0,
                         prompt_sha256=_sha(prompt), prompt={"format_instructions": prompt})
    comparability = comparability_of(proto, gen, envs)
    run_id = f"{method}__{envs[0].name}__{protocol}__{model}__s{seed}__{_sha(json.dumps(comparability))[:6]}"
    return RunResult(
        run_id=run_id, created_at=created_at, status=status, harness=HarnessInfo(version="0.1.0", git_commit="c0ffee" * 6,
                                                                                 git_dirty=False),
        command=["agentbench", "run", "--method", method, "--env", envs[0].name, "--model", model],
        environment=EnvironmentInfo(python="3.11", platform="linux", device="cpu"),
        method=MethodInfo(name=method, version="1", config={"lora": False}, config_sha256=_sha(f"{method}-config")),
        model=ModelInfo(name=model, source="fixture", revision_or_sha256=_sha(model), dtype="float32", backend="hf",
                        chat_template_sha256=_sha("template"), checkpoint_sha256=_sha(f"{run_id}-ckpt")),
        generation=gen, protocol=proto,
        train=Compute(examples=30, optimizer_steps=steps, tokens=tokens, env_steps=env_steps, wall_time_s=20.0),
        envs=envs, forgetting=forgetting, scaling=scaling or [], comparability=comparability,
        comparability_key=comparability_key(comparability))


def fixed_results() -> list[RunResult]:
    """The fixed set the expected tables are written for."""
    points = [ScalingPoint(axis="branching_k", value=k, method="iwm", env="frozenlake", split="test",
                           success_rate=_rate(s, 8)) for k, s in ((1, 2), (2, 3), (4, 5))]
    return [
        make_result("il", [_env("frozenlake", "test", 3)], forgetting=_forgetting(-0.02, 0.5)),
        make_result("iwm", [_env("frozenlake", "test", 5)], steps=8, tokens=15220, env_steps=94,
                    forgetting=_forgetting(-0.04, 0.125)),
        # long-cot: the il checkpoint, evaluated with a think-longer prompt and 4x the tokens per move.
        make_result("long-cot", [_env("frozenlake", "test", 2)], max_new_tokens=160, prompt="think longer"),
        # il on a second env (a separate run, the same system): it shares il's row.
        make_result("il", [_env("sokoban", "test", 1, completed=7)], status="partial", steps=6, tokens=5000,
                    env_steps=40),
        # il evaluated on 16 tasks: another task set, so another column (and another budget, another row).
        make_result("il", [_env("frozenlake", "test", 8, n=16)], eval_tasks=16),
        make_result("sr", [_env("frozenlake", "ood", 7), _env("frozenlake", "test", 6)], protocol="ood",
                    steps=8, tokens=20000, env_steps=94),
        make_result("il", [_env("frozenlake", "ood", 1), _env("frozenlake", "test", 3)], protocol="ood"),
        make_result("iwm", [_env("frozenlake", "test", 5)], protocol="scaling", scaling=points),
    ]


def episodes_of(env: EnvResult, solved: list[int] | None = None) -> list[EpisodeRecord]:
    """Episodes behind an env result: tasks t0, t1, ... (seed ``env.seeds[0]``), one per completed
    episode; ``solved`` lists the task numbers that succeed (default: the first ``successes``)."""
    successes = env.terminations.success
    solved = list(range(successes)) if solved is None else solved
    assert len(solved) == successes
    return [EpisodeRecord(env=env.name, split=env.split, task_id=f"t{i}", seed=env.seeds[0], success=i in solved,
                          reward=float(i in solved), progress=float(i in solved), turns=4, invalid_actions=0,
                          termination=Termination.success if i in solved else Termination.failure,
                          tokens=TokenCount(prompt=100, completion=10), trajectory_sha256=_sha(f"t{i}"), trajectory=[])
            for i in range(env.n_episodes.completed)]


def write_episodes(path: Path, records: list[EpisodeRecord]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json() + "\n" for r in records))


def write_results(folder: Path, results: list[RunResult], episodes: bool = True) -> Path:
    """Each result in its run folder, with an ``episodes.jsonl`` consistent with it (``episodes``)."""
    for r in results:
        write_result(r, folder / r.run_id / "result.json")
        read_result(folder / r.run_id / "result.json")  # every fixture validates against the schema
        if episodes and not r.scaling:
            write_episodes(folder / r.run_id / "episodes.jsonl", [x for e in r.envs for x in episodes_of(e)])
    return folder


@pytest.fixture
def runs(tmp_path) -> Path:
    return write_results(tmp_path / "runs", fixed_results())


EXPECTED_MD = """\
# agentbench leaderboard

From 8 result files. Cells: success rate in % with its 95% interval; bold: the best in the column, ahead of the runner-up by a paired test at 5% (exact McNemar on episodes paired by task and seed; several seeds per task: sign-flip test over tasks); †: otherwise the rows that no such test separates from the column's top (a tie group; a result without episodes to pair cannot be separated; nothing is marked when all results are equal). vs il: each row's paired difference from the il row in the same column, in points, with the test's p-value ('–': no il in the column, no episodes to pair, or the il row itself). Forgetting: change of IF-Eval prompt-level strict accuracy after training, in points, with the paired test's p-value. Compute: the training phase's optimizer steps, training tokens and environment steps. Results share a column only when measured by the same evaluation (protocol, env and version, split, task set, seeds, turn limit); a numbered note marks a result evaluated with other generation settings or prompt.

## in-domain

| method (model) | frozenlake/test tasks 7f8246 | frozenlake/test tasks 4eb640 | sokoban/test | vs il (points, p) | forgetting Δ (p, IF-Eval token limit) | opt. steps | train tokens | env steps |
|:---|---:|---:|---:|---:|---:|---:|---:|---:|
| il (tiny) eval_tasks=16 | – | 50.0 [28.0, 72.0] | – | – | – | 8 | 7,610 | 30 |
| il (tiny) eval_tasks=8 | 37.5 [13.7, 69.4]† | – | 14.3 [2.6, 51.3]<sup>2</sup> | – | -2.0 (p=0.5) / – | 8 / 6 | 7,610 / 5,000 | 30 / 40 |
| iwm (tiny) | 62.5 [30.6, 86.3]† | – | – | +25.0 (p=0.5) | -4.0 (p=0.125) | 8 | 15,220 | 94 |
| long-cot (tiny) | 25.0 [7.1, 59.1]†<sup>1</sup> | – | – | -12.5 (p=1) | – | 8 | 7,610 | 30 |

Columns:
- `frozenlake/test tasks 7f8246`: frozenlake v1, split test, 8 tasks (task set 7f82468a6d76), seeds [0], at most 20 turns, protocol in-domain
- `frozenlake/test tasks 4eb640`: frozenlake v1, split test, 16 tasks (task set 4eb64092ee7b), seeds [0], at most 20 turns, protocol in-domain
- `sokoban/test`: sokoban v1, split test, 8 tasks (task set 008af0d3a236), seeds [0], at most 20 turns, protocol in-domain

Notes:
1. long-cot (tiny): evaluated with max_new_tokens 160 and prompt bf8d4350; the column's reference settings are max_new_tokens 40 and prompt 37a8eec1 (same tasks, seeds and turn limit).
2. il (tiny) eval_tasks=8 on sokoban/test: run partial, 7 of 8 planned episodes completed, 1 abandoned on env errors.

Rows that combine several runs (one per env) list forgetting and compute per run, in the order of the columns they fill.

![frozenlake/test tasks 7f8246 (in-domain)](board-in-domain-frozenlake-test-tasks-7f8246.png)
![frozenlake/test tasks 4eb640 (in-domain)](board-in-domain-frozenlake-test-tasks-4eb640.png)
![sokoban/test (in-domain)](board-in-domain-sokoban-test.png)

## ood

| method (model) | frozenlake/test | frozenlake/ood | vs il (points, p) | forgetting Δ (p, IF-Eval token limit) | opt. steps | train tokens | env steps |
|:---|---:|---:|---:|---:|---:|---:|---:|
| il (tiny) | 37.5 [13.7, 69.4]† | 12.5 [2.2, 47.1] | – | – | 8 | 7,610 | 30 |
| sr (tiny) | 75.0 [40.9, 92.9]† | **87.5 [52.9, 97.8]** | +37.5 (p=0.25) / +75.0 (p=0.0312) | – | 8 | 20,000 | 94 |

Columns:
- `frozenlake/test`: frozenlake v1, split test, 8 tasks (task set 7f82468a6d76), seeds [0], at most 20 turns, protocol ood
- `frozenlake/ood`: frozenlake v1, split ood, 8 tasks (task set d2ef0c2f2421), seeds [0], at most 20 turns, protocol ood

![frozenlake/test (ood)](board-ood-frozenlake-test.png)
![frozenlake/ood (ood)](board-ood-frozenlake-ood.png)

## scaling

Success rate by axis value, one line per run; error bars: 95% intervals.

![frozenlake/test by branching_k](board-scaling-branching-k-frozenlake-test.png)

### iwm (tiny, seed 0): frozenlake/test by branching_k

| branching_k | frozenlake/test | opt. steps | train tokens | env steps |
|:---|---:|---:|---:|---:|
| 1 | 25.0 [7.1, 59.1] | – | – | – |
| 2 | 37.5 [13.7, 69.4] | – | – | – |
| 4 | 62.5 [30.6, 86.3] | – | – | – |
"""
EXPECTED_LATEX = """\
% agentbench leaderboard; needs \\usepackage{booktabs} and \\usepackage{graphicx}.
% From 8 result files. Cells: success rate in % with its 95% interval; bold: the best in the column, ahead of the runner-up by a paired test at 5% (exact McNemar on episodes paired by task and seed; several seeds per task: sign-flip test over tasks); †: otherwise the rows that no such test separates from the column's top (a tie group; a result without episodes to pair cannot be separated; nothing is marked when all results are equal). vs il: each row's paired difference from the il row in the same column, in points, with the test's p-value ('–': no il in the column, no episodes to pair, or the il row itself). Forgetting: change of IF-Eval prompt-level strict accuracy after training, in points, with the paired test's p-value. Compute: the training phase's optimizer steps, training tokens and environment steps. Results share a column only when measured by the same evaluation (protocol, env and version, split, task set, seeds, turn limit); a numbered note marks a result evaluated with other generation settings or prompt.

\\begin{table}[ht]
\\centering
\\caption{Protocol in-domain: success rate in \\% with 95\\% interval; bold: best in the column by a paired test at 5\\%; $^\\dagger$: tied with the column's top.}
\\begin{tabular}{lrrrrrrrr}
\\toprule
method (model) & frozenlake/test tasks 7f8246 & frozenlake/test tasks 4eb640 & sokoban/test & vs il (points, p) & forgetting $\\Delta$ (p, IF-Eval token limit) & opt. steps & train tokens & env steps \\\\
\\midrule
il (tiny) eval\\_tasks=16 & -- & 50.0 [28.0, 72.0] & -- & -- & -- & 8 & 7,610 & 30 \\\\
il (tiny) eval\\_tasks=8 & 37.5 [13.7, 69.4]$^\\dagger$ & -- & 14.3 [2.6, 51.3]\\textsuperscript{2} & -- & -2.0 (p=0.5) / -- & 8 / 6 & 7,610 / 5,000 & 30 / 40 \\\\
iwm (tiny) & 62.5 [30.6, 86.3]$^\\dagger$ & -- & -- & +25.0 (p=0.5) & -4.0 (p=0.125) & 8 & 15,220 & 94 \\\\
long-cot (tiny) & 25.0 [7.1, 59.1]$^\\dagger$\\textsuperscript{1} & -- & -- & -12.5 (p=1) & -- & 8 & 7,610 & 30 \\\\
\\bottomrule
\\end{tabular}
\\par\\smallskip
\\begin{minipage}{\\linewidth}\\footnotesize
frozenlake/test tasks 7f8246: frozenlake v1, split test, 8 tasks (task set 7f82468a6d76), seeds [0], at most 20 turns, protocol in-domain.\\\\
frozenlake/test tasks 4eb640: frozenlake v1, split test, 16 tasks (task set 4eb64092ee7b), seeds [0], at most 20 turns, protocol in-domain.\\\\
sokoban/test: sokoban v1, split test, 8 tasks (task set 008af0d3a236), seeds [0], at most 20 turns, protocol in-domain.\\\\
\\textsuperscript{1} long-cot (tiny): evaluated with max\\_new\\_tokens 160 and prompt bf8d4350; the column's reference settings are max\\_new\\_tokens 40 and prompt 37a8eec1 (same tasks, seeds and turn limit).\\\\
\\textsuperscript{2} il (tiny) eval\\_tasks=8 on sokoban/test: run partial, 7 of 8 planned episodes completed, 1 abandoned on env errors.\\\\
Rows that combine several runs (one per env) list forgetting and compute per run, in the order of the columns they fill.\\\\
\\end{minipage}
\\end{table}

\\begin{figure}[ht]
\\centering
\\includegraphics[width=0.7\\linewidth]{board-in-domain-frozenlake-test-tasks-7f8246.png}
\\caption{frozenlake/test tasks 7f8246 (in-domain): success rate with 95\\% intervals.}
\\end{figure}

\\begin{figure}[ht]
\\centering
\\includegraphics[width=0.7\\linewidth]{board-in-domain-frozenlake-test-tasks-4eb640.png}
\\caption{frozenlake/test tasks 4eb640 (in-domain): success rate with 95\\% intervals.}
\\end{figure}

\\begin{figure}[ht]
\\centering
\\includegraphics[width=0.7\\linewidth]{board-in-domain-sokoban-test.png}
\\caption{sokoban/test (in-domain): success rate with 95\\% intervals.}
\\end{figure}

\\begin{table}[ht]
\\centering
\\caption{Protocol ood: success rate in \\% with 95\\% interval; bold: best in the column by a paired test at 5\\%; $^\\dagger$: tied with the column's top.}
\\begin{tabular}{lrrrrrrr}
\\toprule
method (model) & frozenlake/test & frozenlake/ood & vs il (points, p) & forgetting $\\Delta$ (p, IF-Eval token limit) & opt. steps & train tokens & env steps \\\\
\\midrule
il (tiny) & 37.5 [13.7, 69.4]$^\\dagger$ & 12.5 [2.2, 47.1] & -- & -- & 8 & 7,610 & 30 \\\\
sr (tiny) & 75.0 [40.9, 92.9]$^\\dagger$ & \\textbf{87.5 [52.9, 97.8]} & +37.5 (p=0.25) / +75.0 (p=0.0312) & -- & 8 & 20,000 & 94 \\\\
\\bottomrule
\\end{tabular}
\\par\\smallskip
\\begin{minipage}{\\linewidth}\\footnotesize
frozenlake/test: frozenlake v1, split test, 8 tasks (task set 7f82468a6d76), seeds [0], at most 20 turns, protocol ood.\\\\
frozenlake/ood: frozenlake v1, split ood, 8 tasks (task set d2ef0c2f2421), seeds [0], at most 20 turns, protocol ood.\\\\
\\end{minipage}
\\end{table}

\\begin{figure}[ht]
\\centering
\\includegraphics[width=0.7\\linewidth]{board-ood-frozenlake-test.png}
\\caption{frozenlake/test (ood): success rate with 95\\% intervals.}
\\end{figure}

\\begin{figure}[ht]
\\centering
\\includegraphics[width=0.7\\linewidth]{board-ood-frozenlake-ood.png}
\\caption{frozenlake/ood (ood): success rate with 95\\% intervals.}
\\end{figure}

\\begin{figure}[ht]
\\centering
\\includegraphics[width=0.7\\linewidth]{board-scaling-branching-k-frozenlake-test.png}
\\caption{frozenlake/test by branching\\_k: success rate with 95\\% intervals.}
\\end{figure}

\\begin{table}[ht]
\\centering
\\caption{iwm (tiny, seed 0): frozenlake/test by branching\\_k: success rate in \\% with 95\\% interval, and compute per point.}
\\begin{tabular}{lrrrr}
\\toprule
branching\\_k & frozenlake/test & opt. steps & train tokens & env steps \\\\
\\midrule
1 & 25.0 [7.1, 59.1] & -- & -- & -- \\\\
2 & 37.5 [13.7, 69.4] & -- & -- & -- \\\\
4 & 62.5 [30.6, 86.3] & -- & -- & -- \\\\
\\bottomrule
\\end{tabular}
\\end{table}
"""


def _publish_text(runs: Path, fmt: str, out: Path, **kwargs) -> str:
    return publish(runs, fmt, out, **kwargs).document.read_text()


def test_markdown_output_is_exact(runs, tmp_path):
    published = publish(runs, "md", tmp_path / "site" / "board.md")
    assert published.document.read_text() == EXPECTED_MD
    assert published.messages == []
    names = sorted(p.name for p in published.images)
    assert names == sorted(re.findall(r"\]\((board-[^)]+\.png)\)", EXPECTED_MD))  # every image referenced exists
    for path in published.images:
        assert path.parent == published.document.parent
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_latex_output_is_exact(runs, tmp_path):
    assert _publish_text(runs, "latex", tmp_path / "board.tex") == EXPECTED_LATEX


def _columns_of(board) -> list[set[str]]:
    """For every column of every table: the runs whose numbers it holds."""
    return [{r.cells[c.key].run.result.run_id for r in t.rows if c.key in r.cells}
            for t in board.tables for c in t.columns]


def _loaded(results):
    from agentbench.publish.collect import LoadedResult

    return [LoadedResult(f"{r.run_id}/result.json", r) for r in results]


def _with_extra_comparability(result: RunResult) -> RunResult:
    """A result whose comparability record has an entry a later schema might add."""
    comparability = {**result.comparability, "judge": "gpt-judge-v2"}
    return result.model_copy(update={"comparability": comparability,
                                     "comparability_key": comparability_key(comparability), "run_id": "judged"})


@pytest.mark.parametrize("variant", [
    lambda: make_result("iwm", [_env("frozenlake", "test", 5, version="2")]),
    lambda: make_result("iwm", [_env("frozenlake", "test", 5, n=16)]),
    lambda: make_result("iwm", [_env("frozenlake", "test", 5, seeds=(0, 1))]),
    lambda: make_result("iwm", [_env("frozenlake", "test", 5, max_turns=30)]),
    lambda: make_result("iwm", [_env("frozenlake", "test", 5)], protocol="ood"),
    lambda: _with_extra_comparability(make_result("iwm", [_env("frozenlake", "test", 5)])),
], ids=["env-version", "task-set", "seeds", "max-turns", "protocol", "other-comparability-entry"])
def test_results_of_different_evaluations_never_share_a_column(variant):
    base = make_result("il", [_env("frozenlake", "test", 3)])
    board = build_board(_loaded([base, variant()]))
    columns = _columns_of(board)
    assert len(columns) == 2 and all(len(runs) == 1 for runs in columns)
    for table in board.tables:  # a table's columns say how they differ (the protocol makes its own table)
        labels = [c.label for c in table.columns]
        assert len(labels) == len(set(labels))
    assert not any(c.best for t in board.tables for r in t.rows for c in r.cells.values())


def test_generation_differences_share_the_column_with_a_note_naming_them():
    il = make_result("il", [_env("frozenlake", "test", 3)])
    iwm = make_result("iwm", [_env("frozenlake", "test", 4)])
    cot = make_result("long-cot", [_env("frozenlake", "test", 5)], max_new_tokens=160, prompt="think longer")
    assert len({r.comparability_key for r in (il, iwm, cot)}) == 2  # `compare` would refuse il vs long-cot
    (table,) = build_board(_loaded([il, iwm, cot])).tables
    (column,) = table.columns
    cells = {r.label: r.cells[column.key] for r in table.rows}
    assert cells["il (tiny)"].notes == cells["iwm (tiny)"].notes == []  # the majority's settings are the reference
    # 5, 4 and 3 of 8 with no episodes to pair: nothing separates the top, so all three are one tie group
    assert cells["long-cot (tiny)"].notes == [1] and not cells["long-cot (tiny)"].best
    assert all(c.tie and not c.best for c in cells.values())
    assert "max_new_tokens 160" in table.notes[0] and "max_new_tokens 40" in table.notes[0]
    assert "prompt" in table.notes[0]


def test_a_rerun_in_the_same_cell_keeps_the_newer_result_and_says_so():
    old = make_result("il", [_env("frozenlake", "test", 1)], created_at="2026-01-01T00:00:00+00:00")
    new = make_result("il", [_env("frozenlake", "test", 6)], created_at="2026-02-01T00:00:00+00:00")
    board = build_board([*_loaded([new]), *_loaded([old])[::-1]][::-1])
    (row,) = board.tables[0].rows
    assert next(iter(row.cells.values())).rate.value == 6 / 8
    assert len(board.warnings) == 1 and "kept the newer" in board.warnings[0]


def test_reference_rows_are_marked_sourced_and_never_best(runs, tmp_path):
    for source in reference_data().tables:
        assert re.fullmatch(r"\d{4}\.\d{5}", source.arxiv) and source.table and source.paper and source.rows
    plain = _publish_text(runs, "md", tmp_path / "a.md")
    with_reference = _publish_text(runs, "md", tmp_path / "b.md", reference=True)
    ours, _, papers = with_reference.partition("## reported numbers (from the papers, not run here)")
    reported = [line for line in ours.splitlines() if line.startswith("| *reported: ")]
    # OEL's pass rates belong to its own games (frozenlake-oel, sokoban-oel), never to our frozenlake and sokoban
    # columns, and nothing else reported fits these columns either.
    assert reported == []
    assert "| *OEL, after its iterations* | *>40* | *25 to 30+* |" in papers
    assert "- reported: Online Experiential Learning" not in ours
    assert not any("**" in line for line in reported)
    # Our rows, and their best marks, are the same with and without the reported rows.
    assert [line for line in ours.splitlines() if line.startswith("| ") and line not in reported] == \
        [line for line in plain.splitlines() if line.startswith("| ")]
    assert "| method | frozenlake-oel/test | sokoban-oel/test |" in papers
    assert "| *AgentEvol* | *76.5* | *88.0* | *82.7* | *64.0* | *82.7* |" in papers
    assert "reported" not in plain


def test_oel_reported_numbers_sit_only_under_oels_games():
    results = [make_result("il", [_env("frozenlake", "test", 3)]), make_result("il", [_env("frozenlake-oel", "test", 2)]),
               make_result("il", [_env("sokoban-oel", "test", 1)])]
    (table,) = build_board(_loaded(results), reference_data().tables).tables
    names = {c.key: c.name for c in table.columns}
    assert {r.label for r in table.reported} == {"OEL, initial model", "OEL, after its iterations"}
    for row in table.reported:
        assert sorted(names[key] for key in row.cells) == ["frozenlake-oel", "sokoban-oel"]


def test_corrupt_files_are_skipped_with_one_line_or_fail_with_strict(runs, tmp_path):
    (runs / "broken").mkdir()
    (runs / "broken" / "result.json").write_text('{"schema_version": 1, "run_id": ')
    out = tmp_path / "board.md"
    result = runner.invoke(app, ["publish", str(runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "broken/result.json is corrupt: not valid JSON" in warnings[0]
    assert out.read_text().startswith("# agentbench leaderboard\n\nFrom 8 result files.")
    strict = runner.invoke(app, ["publish", str(runs), "--out", str(out), "--strict"])
    assert strict.exit_code == 2
    assert strict.output.startswith("error: ") and "not valid JSON" in strict.output and "Traceback" not in strict.output


@pytest.mark.parametrize(("make_args", "needle"), [
    (lambda d: ["publish", str(d / "empty")], "no result.json under"),
    (lambda d: ["publish", str(d / "missing")], "is not a folder"),
    (lambda d: ["publish", str(d / "runs"), "--format", "pdf"], "unknown format 'pdf'"),
    (lambda d: ["publish", str(d / "runs"), "--format", "mdd"], "did you mean 'md'"),
    (lambda d: ["publish", str(d / "runs"), "--out", str(d)], "is a folder"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, make_args, needle):
    (tmp_path / "empty" / "some-run").mkdir(parents=True)
    result = runner.invoke(app, make_args(tmp_path))
    assert result.exit_code == 2, result.output
    assert needle in result.output and result.output.startswith("error: ")
    assert len(result.output.strip().splitlines()) == 1


def test_only_corrupt_files_is_an_error(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "result.json").write_text("[]")
    result = runner.invoke(app, ["publish", str(tmp_path)])
    assert result.exit_code == 2 and "no valid result.json" in result.output


def test_html_page_in_a_real_browser(runs, tmp_path):
    from agentbench.envs.webarena.browser import CHROMIUM_FLAGS, browser_availability, chromium_path

    availability = browser_availability()
    if not availability.runnable:
        pytest.skip(availability.detail)
    from playwright.sync_api import sync_playwright

    page_path = publish(runs, "html", tmp_path / "board.html", reference=True).document
    assert list(tmp_path.glob("*.png")) == []  # the images are embedded, not beside the page
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_FLAGS), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors, requests = [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")

            table = page.locator("#protocol-in-domain table.sortable")
            def order() -> list[str]:
                return table.locator("tbody.results tr td:first-child summary").all_inner_texts()

            assert order() == ["il (tiny) eval_tasks=16", "il (tiny) eval_tasks=8", "iwm (tiny)", "long-cot (tiny)"]
            header = table.locator("thead th", has_text="frozenlake/test tasks 7f8246")
            header.click()  # numbers: highest first; a row without a value in the column goes last
            assert order() == ["iwm (tiny)", "il (tiny) eval_tasks=8", "long-cot (tiny)", "il (tiny) eval_tasks=16"]
            assert header.get_attribute("aria-sort") == "descending"
            header.click()
            assert order() == ["long-cot (tiny)", "il (tiny) eval_tasks=8", "iwm (tiny)", "il (tiny) eval_tasks=16"]
            table.locator("thead th", has_text="train tokens").click()
            assert order()[0] == "iwm (tiny)"  # 15,220 sorts above 7,610 / 5,000 (summed: 12,610) as a number
            # Reported rows stay below ours, apart, whatever the order.
            # (none fit these columns: OEL's numbers belong to its own games, see the reference test)
            assert table.locator("tbody.reported tr td:first-child").all_inner_texts() == []
            assert table.locator("tbody.reported td.best").count() == 0

            assert table.locator("td.best").count() == 0  # 62.5 vs 37.5 of 8 is no paired win: a tie group
            assert sorted(table.locator("td.tie").all_inner_texts()) == [
                "25.0 [7.1, 59.1]†1", "37.5 [13.7, 69.4]†", "62.5 [30.6, 86.3]†"]
            best = page.locator("#protocol-ood td.best")
            assert best.count() == 1 and best.inner_text() == "87.5 [52.9, 97.8]"
            title = best.get_attribute("title")
            assert "run id: sr__frozenlake__ood__tiny__s0__" in title and "comparability key: " in title
            assert "harness: agentbench 0.1.0 @ c0ffeec0ffee" in title and "command: agentbench run" in title
            details = table.locator("details", has=page.get_by_text("il (tiny) eval_tasks=8", exact=True))
            assert not details.locator("dl").first.is_visible()
            details.locator("summary").click()
            assert details.locator("dl").count() == 2  # the row's two runs (frozenlake, sokoban)
            assert details.locator("dl").first.is_visible() and "created at" in details.inner_text()

            assert page.locator("#scaling details").count() == 1  # the scaling run's provenance
            scaling = page.locator("#scaling table")  # the numbers behind the curve, a row per point
            assert scaling.count() == 1
            assert scaling.locator("tbody tr td:nth-child(2)").all_inner_texts() == [
                "25.0 [7.1, 59.1]", "37.5 [13.7, 69.4]", "62.5 [30.6, 86.3]"]
            images = page.locator("img")
            assert images.count() == 6
            widths = images.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert all(w > 0 for w in widths), widths
            shot = tmp_path / "board-screenshot.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000 and shot.read_bytes()[:4] == b"\x89PNG"
            assert errors == []
            assert all(url.startswith(("file:", "data:")) for url in requests), requests
        finally:
            browser.close()


def test_rows_of_one_method_with_other_settings_are_labelled_by_the_settings_that_differ():
    default = make_result("il", [_env("frozenlake", "test", 3)])
    one_epoch = make_result("il", [_env("frozenlake", "test", 4)], steps=4)
    one_epoch = one_epoch.model_copy(update={"run_id": "il-one-epoch", "method": one_epoch.method.model_copy(
        update={"config": {"lora": False, "epochs": 1.0}, "config_sha256": _sha("il-one-epoch")})})
    board = build_board(_loaded([default, one_epoch]))
    assert [r.label for r in board.tables[0].rows] == ["il (tiny) epochs=1.0", "il (tiny) epochs=None"]


# -- rl-compat results and the paired marks ---------------------------------------------------

RL_STARTS = {"none": (0, 2), "il": (4, 8), "iwm": (3, 15)}
"""start -> (successes before RL, after RL), of 16 test tasks (nested: task i solved for i < count)."""


def rl_compat_folder(root: Path, starts: dict[str, tuple[int, int]] | None = None, name: str = "rl") -> Path:
    """An rl-compat run folder as the protocol writes it: the headline start's (il's) after-RL episodes
    at the top, every other start's under ``starts/<start>/{before,after}``."""
    from agentbench.method import RLStep
    from agentbench.results import RLCompatCell, RLCompatStart

    starts = starts or RL_STARTS
    entries, headline_env = [], None
    folder = root / name
    for i, (start, (before, after)) in enumerate(starts.items()):
        b_env, a_env = _env("frozenlake", "test", before, n=16), _env("frozenlake", "test", after, n=16)
        steps = [RLStep(step=s, mean_reward=0.1 * s + 0.05 * i, success=min(1.0, 0.1 * s + 0.2 * i),
                        invalid_action_rate=0.1, episode_length=4.0) for s in range(1, 4)]
        entries.append(RLCompatStart(
            start=start, folder=f"starts/{start}", checkpoint_sha256=None if start == "none" else _sha(start),
            start_train=Compute(optimizer_steps=0 if start == "none" else 12),
            rl_train=Compute(optimizer_steps=3, rl_steps=steps),
            cells=[RLCompatCell(split="test", before=b_env, after=a_env)]))
        write_episodes(folder / "starts" / start / "before" / "episodes.jsonl", episodes_of(b_env))
        headline = i == 1
        write_episodes(folder / ("episodes.jsonl" if headline else f"starts/{start}/after/episodes.jsonl"),
                       episodes_of(a_env))
        if headline:
            headline_env = a_env
    result = make_result("grpo", [headline_env], protocol="rl-compat")
    result = result.model_copy(update={"rl_compat": entries, "run_id": name})
    write_result(result, folder / "result.json")
    read_result(folder / "result.json")
    return folder


def test_rl_compat_result_is_published_as_a_table_and_a_curve(tmp_path):
    rl_compat_folder(tmp_path / "runs")
    published = publish(tmp_path / "runs", "md", tmp_path / "site" / "board.md")
    text = published.document.read_text()
    assert "## rl-compat: grpo from each start (tiny, seed 0, budget custom)" in text
    assert ("| start | evaluation | before RL | after RL | Δ after - before [95% CI] (p) | vs il (points, p) | "
            "start opt. steps | RL opt. steps |") in text
    # none: 0 -> 2 of 16; il: 4 -> 8; iwm 3 -> 15, ahead of il's 8 after RL by 7 discordant pairs (p = 2/2^7)
    # (the interval is McNemar's, conditional on the discordant pairs, as `compare` reports it)
    assert "| none | frozenlake/test | 0.0 [0.0, 19.4] | 12.5 [3.5, 36.0] | +12.5 [-8.5, +12.5] (p=0.5) | " \
           "-37.5 (p=0.0312) | 0 | 3 |" in text
    assert "| il | frozenlake/test | 25.0 [10.2, 49.5] | 50.0 [28.0, 72.0] | +25.0 [-5.1, +25.0] (p=0.125) | – | " \
           "12 | 3 |" in text
    assert "| iwm | frozenlake/test | 18.8 [6.6, 43.0] | **93.8 [71.7, 98.9]** | +75.0 [+35.3, +75.0] (p=0.000488) | " \
           "+43.8 (p=0.0156) | 12 | 3 |" in text
    assert "RL steps logged per start: none 3, il 3, iwm 3." in text
    assert "## rl-compat\n" not in text  # the run is not also a row of a generic table
    (curve,) = [p for p in published.images if "rl-compat" in p.name]
    assert f"]({curve.name})" in text and curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    latex = publish(tmp_path / "runs", "latex", tmp_path / "site" / "board.tex").document.read_text()
    assert r"iwm & frozenlake/test & 18.8 [6.6, 43.0] & \textbf{93.8 [71.7, 98.9]}" in latex
    assert rf"\includegraphics[width=0.9\linewidth]{{{curve.name}}}" in latex
    html = publish(tmp_path / "runs", "html", tmp_path / "site" / "board.html").document.read_text()
    assert '<section id="rl-compat-0">' in html and html.count("data:image/png;base64,") == 1


def test_rl_compat_ties_when_no_start_is_ahead_by_a_paired_test(tmp_path):
    rl_compat_folder(tmp_path / "runs", {"none": (0, 6), "il": (4, 8), "iwm": (3, 9)})
    text = publish(tmp_path / "runs", "md", tmp_path / "board.md").document.read_text()
    assert "**" not in text.split("## rl-compat")[1]
    rows = [line for line in text.splitlines() if line.startswith("| none |") or line.startswith("| i")]
    assert ["†" in line.split(" | ")[3] for line in rows] == [True, True, True]  # 37.5, 50.0, 56.2: one tie group


def _column_board(tmp_path, counts: dict[str, int], solved: dict[str, list[int]] | None = None):
    results = [make_result(m, [_env("frozenlake", "test", k, n=16)]) for m, k in counts.items()]
    folder = write_results(tmp_path / "runs", results, episodes=False)
    for r in results:
        (env,) = r.envs
        write_episodes(folder / r.run_id / "episodes.jsonl", episodes_of(env, (solved or {}).get(r.method.name)))
    from agentbench.publish.collect import collect

    (table,) = build_board(collect(folder).results).tables
    return {row.system["method"]: row for row in table.rows}, table


def test_best_needs_a_paired_win_over_the_runner_up(tmp_path):
    rows, table = _column_board(tmp_path, {"il": 2, "iwm": 10, "sr": 3})
    (col,) = table.columns
    cells = {m: r.cells[col.key] for m, r in rows.items()}
    assert cells["iwm"].best and not any(c.tie for c in cells.values())  # 8 discordant pairs vs sr, p = 2/2^7
    assert not cells["il"].best and not cells["sr"].best
    assert rows["iwm"].vs_il(table.columns) == "+50.0 (p=0.00781)"
    assert rows["sr"].vs_il(table.columns) == "+6.2 (p=1)"
    assert rows["il"].vs_il(table.columns) is None


def test_a_higher_rate_on_other_episodes_is_a_tie_not_a_win(tmp_path):
    # sr solves 6 tasks, il 5 others: 11 discordant pairs, 6 to 5 -> no paired difference; iwm (0) is separated.
    rows, table = _column_board(tmp_path, {"il": 5, "sr": 6, "iwm": 0},
                                {"il": [0, 1, 2, 3, 4], "sr": [5, 6, 7, 8, 9, 10], "iwm": []})
    (col,) = table.columns
    cells = {m: r.cells[col.key] for m, r in rows.items()}
    assert cells["sr"].tie and cells["il"].tie and not cells["iwm"].tie
    assert not any(c.best for c in cells.values())
    assert rows["sr"].vs_il(table.columns) == "+6.2 (p=1)"
    assert rows["iwm"].vs_il(table.columns) == "-31.2 (p=0.0625)"


def test_vs_il_is_empty_without_il_or_without_episodes(tmp_path):
    rows, table = _column_board(tmp_path, {"iwm": 10, "sr": 3})
    assert all(r.vs_il(table.columns) is None for r in rows.values())
    no_episodes = build_board(_loaded([make_result("il", [_env("frozenlake", "test", 2)]),
                                       make_result("iwm", [_env("frozenlake", "test", 7)])]))
    assert all(r.vs_il(no_episodes.tables[0].columns) is None for r in no_episodes.tables[0].rows)


def test_publish_is_deterministic(runs, tmp_path):
    rl_compat_folder(runs)
    first = _publish_text(runs, "md", tmp_path / "a.md")
    assert _publish_text(runs, "md", tmp_path / "b.md") == first.replace("a-", "b-")
