"""A table as a grid of printable pieces, shared by the markdown, LaTeX and HTML writers."""

from __future__ import annotations

from dataclasses import dataclass, field

from agentbench.publish.board import COMPUTE_COLUMNS, EMPTY, Row, Table, curve_label, scaling_curves
from agentbench.publish.collect import LoadedResult
from agentbench.publish.reference import ReferenceTable
from agentbench.publish.text import axis_value, count, rate_text

FORGETTING_HEADER = "forgetting Δ (p, IF-Eval token limit)"


@dataclass(frozen=True)
class Piece:
    text: str
    bold: bool = False
    notes: tuple[int, ...] = ()
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
                      Piece(rate_text(cell.rate), cell.best, tuple(cell.notes), sort=cell.rate.value, run=cell.run))
    pieces.append(Piece(row.forgetting or EMPTY, sort=row.forgetting_sort))
    pieces += [Piece(row.compute(attr), sort=row.compute_sort(attr)) for attr, _ in COMPUTE_COLUMNS]
    return pieces


def table_grid(table: Table) -> Grid:
    header = ["method (model)", *(c.label for c in table.columns), FORGETTING_HEADER,
              *(name for _, name in COMPUTE_COLUMNS)]
    grid = Grid(header, [False] + [True] * (len(header) - 1), [_row_pieces(table, r) for r in table.rows],
                [list(r.runs) for r in table.rows])
    blank = [Piece("")] * (1 + len(COMPUTE_COLUMNS))
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


INTRO = ("Cells: success rate in % with its 95% interval; bold: the best in the column (not marked when all "
         "tie). Forgetting: change of IF-Eval prompt-level strict accuracy after training, in points, with the "
         "paired test's p-value. Compute: the training phase's optimizer steps, training tokens and environment "
         "steps. Results share a column only when measured by the same evaluation (protocol, env and version, "
         "split, task set, seeds, turn limit); a numbered note marks a result evaluated with other generation "
         "settings or prompt.")
MERGED = ("Rows that combine several runs (one per env) list forgetting and compute per run, in the order of "
          "the columns they fill.")
REPORTED = "Reported rows are numbers from the papers (other models and data; not run here, never marked best)."
