"""A table as a grid of printable pieces, shared by the markdown, LaTeX and HTML writers."""

from __future__ import annotations

from dataclasses import dataclass, field

from agentbench.publish.board import (
    COMPUTE_COLUMNS,
    EMPTY,
    RLCompatView,
    Row,
    Table,
    curve_label,
    scaling_curves,
)
from agentbench.publish.collect import LoadedResult
from agentbench.publish.paired import TIE, PairedDiff, diff_text
from agentbench.publish.reference import ReferenceTable
from agentbench.publish.text import axis_value, count, rate_text, signed_points

FORGETTING_HEADER = "forgetting Δ (p, IF-Eval token limit)"
VS_IL_HEADER = "vs il (points, p)"


@dataclass(frozen=True)
class Piece:
    text: str
    bold: bool = False
    notes: tuple[int, ...] = ()
    tie: bool = False
    """In a tie group with the column's top (written with ``TIE``)."""
    reported: bool = False
    sort: float | str | None = None
    """What the page sorts on (the success value for a success cell)."""
    run: LoadedResult | None = None
    """The result a success cell comes from (the page shows its provenance)."""


@dataclass
class Grid:
    header: list[str]
    numeric: list[bool]
    """Per column: right-aligned and sorted as numbers."""
    rows: list[list[Piece]]
    row_runs: list[list[LoadedResult]] = field(default_factory=list)
    reported: list[list[Piece]] = field(default_factory=list)


def _row_pieces(table: Table, row: Row) -> list[Piece]:
    pieces = [Piece(row.label, sort=row.label)]
    for col in table.columns:
        cell = row.cells.get(col.key)
        pieces.append(Piece(EMPTY) if cell is None else
                      Piece(rate_text(cell.rate), cell.best, tuple(cell.notes), cell.tie, sort=cell.rate.value,
                            run=cell.run))
    pieces.append(Piece(row.vs_il(table.columns) or EMPTY, sort=row.vs_il_sort(table.columns)))
    pieces.append(Piece(row.forgetting or EMPTY, sort=row.forgetting_sort))
    pieces += [Piece(row.compute(attr), sort=row.compute_sort(attr)) for attr, _ in COMPUTE_COLUMNS]
    return pieces


def table_grid(table: Table) -> Grid:
    header = ["method (model)", *(c.label for c in table.columns), VS_IL_HEADER, FORGETTING_HEADER,
              *(name for _, name in COMPUTE_COLUMNS)]
    grid = Grid(header, [False] + [True] * (len(header) - 1), [_row_pieces(table, r) for r in table.rows],
                [list(r.runs) for r in table.rows])
    blank = [Piece("")] * (2 + len(COMPUTE_COLUMNS))
    for rep in table.reported:
        grid.reported.append([Piece(f"reported: {rep.label} ({rep.source.authors})", reported=True),
                              *(Piece(rep.cells.get(c.key, ""), reported=True) for c in table.columns), *blank])
    return grid


@dataclass(frozen=True)
class ScalingTable:
    title: str
    """``iwm (smollm2-135m, seed 0): frozenlake/test by branching_k``."""
    grid: Grid


def scaling_tables(runs: list[LoadedResult]) -> list[ScalingTable]:
    """The numbers behind the scaling curves: per run and (axis, env, split), a row per point with
    its success rate and the compute spent on it."""
    tables = []
    for loaded in runs:
        for (axis, env, split), points in scaling_curves(loaded).items():
            header = [axis, f"{env}/{split}", *(name for _, name in COMPUTE_COLUMNS)]
            rows = [[Piece(axis_value(p.value), sort=p.value),
                     Piece(rate_text(p.success_rate), sort=p.success_rate.value, run=loaded),
                     *(Piece(count(getattr(p.train, attr)), sort=getattr(p.train, attr)) if p.train else Piece(EMPTY)
                       for attr, _ in COMPUTE_COLUMNS)]
                    for p in points]
            tables.append(ScalingTable(f"{curve_label(loaded, points)}: {env}/{split} by {axis}",
                                       Grid(header, [False] + [True] * (len(header) - 1), rows)))
    return tables


RL_HEADER = ["start", "evaluation", "before RL", "after RL", "Δ after - before [95% CI] (p)", VS_IL_HEADER,
             "start opt. steps", "RL opt. steps"]


def _change_text(diff: PairedDiff | None, before: float, after: float) -> tuple[str, float]:
    if diff is None:  # no episodes to pair: the difference of the rates, without a test
        return f"{signed_points(after - before)} (unpaired)", after - before
    lo, hi = diff.ci
    return f"{signed_points(diff.delta)} [{signed_points(lo)}, {signed_points(hi)}] (p={diff.p_value:.3g})", diff.delta


def rl_compat_grid(view: RLCompatView) -> Grid:
    """A row per start and split: success before and after RL, the paired change, vs il (after RL)
    and both trainings' optimizer steps."""
    rows = []
    for r in view.rows:
        change, change_sort = _change_text(r.change, r.before.value, r.after.value)
        rows.append([Piece(r.start, sort=r.start), Piece(f"{r.env}/{r.split}", sort=f"{r.env}/{r.split}"),
                     Piece(rate_text(r.before), sort=r.before.value, run=view.run),
                     Piece(rate_text(r.after), r.best, (), r.tie, sort=r.after.value, run=view.run),
                     Piece(change, sort=change_sort),
                     Piece(diff_text(r.vs_il) or EMPTY, sort=r.vs_il.delta if r.vs_il else None),
                     Piece(count(r.start_steps), sort=r.start_steps), Piece(count(r.rl_steps), sort=r.rl_steps)])
    return Grid(list(RL_HEADER), [False, False] + [True] * (len(RL_HEADER) - 2), rows, [[view.run]] * len(rows))


def rl_compat_legend(view: RLCompatView) -> str:
    r = view.run.result
    steps = ", ".join(f"{s.start} {len(s.rl_train.rl_steps)}" for s in view.starts)
    return (f"Run {r.run_id} ({view.run.path}). Every start is trained by the same {r.method.name} recipe "
            f"(same steps, hyper-parameters, seeds and tasks). Δ: after - before RL on the same episodes, in "
            f"points, with its 95% interval and the paired test's p-value. vs il: after-RL success against the "
            f"il start's on the same episodes. Bold and {TIE} compare the starts' after-RL success per evaluation "
            f"(as in the tables above). RL steps logged per start: {steps}.")


def reference_grid(source: ReferenceTable) -> Grid:
    columns = source.columns
    return Grid(["method", *columns], [False] + [True] * len(columns),
                [[Piece(r.method, reported=True), *(Piece(r.cells.get(c, ""), reported=True) for c in columns)]
                 for r in source.rows])


def sources(table: Table) -> list[ReferenceTable]:
    """The papers a table's reported rows come from, in order of first use."""
    seen: dict[str, ReferenceTable] = {}
    for rep in table.reported:
        seen.setdefault(rep.source.id, rep.source)
    return list(seen.values())


INTRO = ("Cells: success rate in % with its 95% interval; bold: the best in the column, ahead of the runner-up "
         f"by a paired test at 5% (exact McNemar on episodes paired by task and seed; several seeds per task: "
         f"sign-flip test over tasks); {TIE}: otherwise the rows that no such test separates from the column's top "
         "(a tie group; a result without episodes to pair cannot be separated; nothing is marked when all results "
         "are equal). vs il: each row's paired difference from the il row in the same column, in points, with the "
         "test's p-value ('–': no il in the column, no episodes to pair, or the il row itself). Forgetting: change of IF-Eval prompt-level strict accuracy after training, in points, with the "
         "paired test's p-value. Compute: the training phase's optimizer steps, training tokens and environment "
         "steps. Results share a column only when measured by the same evaluation (protocol, env and version, "
         "split, task set, seeds, turn limit); a numbered note marks a result evaluated with other generation "
         "settings or prompt.")
MERGED = ("Rows that combine several runs (one per env) list forgetting and compute per run, in the order of "
          "the columns they fill.")
REPORTED = "Reported rows are numbers from the papers (other models and data; not run here, never marked best)."
