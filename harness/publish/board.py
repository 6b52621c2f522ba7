"""The leaderboard's content, whatever the output format: method x evaluation tables.

One table per protocol. A row is one trained system: method (name and config), initial model
(name and weights), budget and seed; results of the same system on several envs (separate
runs) share a row, as in the papers' tables. A column is one *evaluation*.

The column rule. Two results share a column only when they were measured by the same
evaluation: the same protocol, env name and version, split, task set (``task_set_sha256``),
episode seeds and turn limit, and every further entry of the results' ``comparability`` record
except ``generation``. Results that differ only in generation settings or prompt
(temperature, top_p, max_new_tokens, prompt_sha256; e.g. ``long-cot``, which evaluates with a
think-longer prompt and more tokens per move) share the column, and their cell carries a
footnote naming the difference from the column's reference settings (those most of its
results use; on a tie, those matching the run's budget). Any other difference makes a separate
column, labelled with what differs (``frozenlake/test tasks 1a2b3c``, ``frozenlake/test 30
turns``). Runs of the scaling protocol get their own tables (one per run and axis: a row per
point) and curves; a method that measures its own per-iteration curve (AgentEvol, OEL) gets both
its final evaluation's row and the curve; runs of the rl-compat protocol get a table each (a row per start and split:
before and after RL, the paired change, both trainings' steps) and a curve of the RL steps.

The marks and the ``vs il`` column come from paired tests on the runs' episodes (``paired``): a
cell is bold only when it beats the column's runner-up by a paired test at 5%, else the rows tied
with the top are marked as a tie group; ``vs il`` is each row's paired difference from the il
row of the same column.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentbench.env import sha256_json
from agentbench.publish.collect import LoadedResult
from agentbench.publish.paired import (
    REFERENCE_METHOD,
    Entry,
    EpisodeStore,
    PairedDiff,
    diff_text,
    mark,
    paired_diff,
    run_episodes_path,
    vs_reference,
)
from agentbench.publish.reference import ReferenceTable, env_key
from agentbench.publish.text import count, forgetting_text, short
from agentbench.results import EnvResult, Rate, RLCompatStart, RunResult, ScalingPoint
from agentbench.trajectory import EpisodeRecord

EMPTY = "–"
"""A value that does not exist (no forgetting check ran)."""
SPLIT_ORDER = {"test": 0, "ood": 1, "train": 2}
PROTOCOL_ORDER = {"in-domain": 0, "ood": 1, "rl-compat": 2, "eval": 3}
GENERATION_LABELS = {"temperature": "temperature", "top_p": "top_p", "max_new_tokens": "max_new_tokens",
                     "prompt_sha256": "prompt"}


@dataclass
class Column:
    key: str
    protocol: str
    env: dict[str, Any]
    """The comparability entry of the env: name, version, split, task_set_sha256, seeds, max_turns."""
    setup: dict[str, Any]
    """Further comparability entries (the protocol, and any a later schema adds)."""
    n_tasks: int
    label: str = ""

    @property
    def name(self) -> str:
        return str(self.env["name"])

    @property
    def split(self) -> str:
        return str(self.env["split"])

    def describe(self) -> str:
        e = self.env
        return (f"{e['name']} v{e['version']}, split {e['split']}, {self.n_tasks} tasks (task set "
                f"{short(e['task_set_sha256'], 12)}), seeds {list(e['seeds'])}, at most {e['max_turns']} turns, "
                f"protocol {self.protocol}")


@dataclass
class Cell:
    rate: Rate
    run: LoadedResult
    env: EnvResult
    best: bool = False
    tie: bool = False
    """In the column's tie group: no paired test at 5% separates it from the top."""
    notes: list[int] = field(default_factory=list)
    episodes: list[EpisodeRecord] | None = None
    """The run's episodes of this evaluation (None: no episodes file beside the result)."""
    vs_il: PairedDiff | None = None


@dataclass
class Row:
    key: str
    system: dict[str, Any]
    budget_config: dict[str, Any]
    method_config: dict[str, Any]
    """The method's resolved configuration: rows of one method that differ in it are labelled
    with the entries that differ (``epochs=1.0``)."""
    label: str = ""
    cells: dict[str, Cell] = field(default_factory=dict)
    runs: list[LoadedResult] = field(default_factory=list)
    """The runs of the row, in the order of the columns they fill."""

    def _joined(self, fn: Callable[[RunResult], str | None]) -> str | None:
        texts = [fn(r.result) for r in self.runs]
        return None if all(t is None for t in texts) else " / ".join(t or EMPTY for t in texts)

    @property
    def forgetting(self) -> str | None:
        return self._joined(forgetting_text)

    @property
    def forgetting_sort(self) -> float | None:
        f = self.runs[0].result.forgetting
        return None if f is None else f.delta.prompt_level_strict

    def compute(self, attr: str) -> str:
        return self._joined(lambda r: count(getattr(r.train, attr))) or ""

    def vs_il(self, columns: list[Column]) -> str | None:
        """The paired differences from il, one per column the row fills, in column order."""
        diffs = [self.cells[c.key].vs_il for c in columns if c.key in self.cells]
        return None if all(d is None for d in diffs) else " / ".join(diff_text(d) or EMPTY for d in diffs)

    def vs_il_sort(self, columns: list[Column]) -> float | None:
        diffs = [self.cells[c.key].vs_il for c in columns if c.key in self.cells]
        return next((d.delta for d in diffs if d is not None), None)

    def compute_sort(self, attr: str) -> int:
        return sum(getattr(r.result.train, attr) for r in self.runs)


COMPUTE_COLUMNS = (("optimizer_steps", "opt. steps"), ("tokens", "train tokens"), ("env_steps", "env steps"))


@dataclass
class ReportedRow:
    label: str
    source: ReferenceTable
    cells: dict[str, str]
    """Column key -> the reported number, as text."""


@dataclass
class Table:
    protocol: str
    columns: list[Column]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    reported: list[ReportedRow] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    """Unnumbered lines under the table (which il row ``vs il`` compares against, when several)."""

    @property
    def merges_runs(self) -> bool:
        return any(len(r.runs) > 1 for r in self.rows)

    def note(self, text: str) -> int:
        if text not in self.notes:
            self.notes.append(text)
        return self.notes.index(text) + 1


@dataclass
class RLRow:
    """One start on one split of an rl-compat run."""

    start: str
    split: str
    env: str
    before: Rate
    after: Rate
    change: PairedDiff | None
    """after - before on the same episodes (None: no episodes to pair)."""
    start_steps: int
    rl_steps: int
    vs_il: PairedDiff | None = None
    """after-RL success against the il start's, on the same episodes."""
    best: bool = False
    tie: bool = False


@dataclass
class RLCompatView:
    """An rl-compat run: its table's rows and its starts' RL curves."""

    run: LoadedResult
    rows: list[RLRow]
    starts: list[RLCompatStart]

    @property
    def title(self) -> str:
        r = self.run.result
        return (f"rl-compat: {r.method.name} from each start ({r.model.name}, seed {r.protocol.seed}, "
                f"budget {r.protocol.budget})")


@dataclass
class Board:
    tables: list[Table]
    scaling: list[LoadedResult]
    n_results: int
    warnings: list[str] = field(default_factory=list)
    reference: list[ReferenceTable] = field(default_factory=list)
    rl_compat: list[RLCompatView] = field(default_factory=list)


def evaluation_of(result: RunResult, env: EnvResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """(setup, env entry): what defines the evaluation ``env`` was measured by, generation excluded."""
    comp = result.comparability
    setup = {k: v for k, v in comp.items() if k not in ("generation", "envs")}
    setup.setdefault("protocol", result.protocol.name)
    entry = next((e for e in comp.get("envs", []) if e.get("name") == env.name and e.get("split") == env.split),
                 None)
    if entry is None:  # a result without a comparability record: rebuild it from the env entry
        entry = {"name": env.name, "version": env.version, "split": env.split,
                 "task_set_sha256": env.task_set_sha256, "seeds": env.seeds, "max_turns": env.max_turns}
    return setup, entry


def generation_of(result: RunResult) -> dict[str, Any]:
    g = result.generation
    return result.comparability.get("generation") or {
        "temperature": g.temperature, "top_p": g.top_p, "max_new_tokens": g.max_new_tokens,
        "prompt_sha256": g.prompt_sha256}


def system_of(result: RunResult) -> dict[str, Any]:
    """What makes a row: the trained system, not the evaluation."""
    p = result.protocol
    return {"method": result.method.name, "method_config": result.method.config_sha256,
            "model": result.model.name, "weights": result.model.revision_or_sha256, "budget": p.budget,
            "budget_config": sha256_json(p.budget_config), "seed": p.seed}


Attr = tuple[Callable[[Any], Any], Callable[[Any, list[Any]], str]]
"""How to read an attribute of a row or column, and write it given the values it takes in its group."""


def disambiguate(items: list, base: Callable[[Any], str], attrs: list[Attr], fallback: Callable[[Any], str]) -> list[str]:
    """Labels: ``base(item)``, plus the attributes that differ among items sharing that base."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(base(item), []).append(i)
    labels = [base(item) for item in items]
    for label, members in groups.items():
        if len(members) < 2:
            continue
        parts: dict[int, list[str]] = {i: [] for i in members}
        for get, fmt in attrs:
            values = [get(items[i]) for i in members]
            if len({sha256_json(v) for v in values}) > 1:
                for i, v in zip(members, values):
                    parts[i].append(fmt(v, values))
        for i in members:
            labels[i] = " ".join([label, *parts[i]])
        if len({labels[i] for i in members}) < len(members):
            for i in members:
                labels[i] = f"{labels[i]} {fallback(items[i])}"
    return labels


def _plain(template: str) -> Callable[[Any, list[Any]], str]:
    return lambda v, _values: template.format(v=v, short=short(str(v), 6))


def _dict_difference(value: dict[str, Any], values: list[dict[str, Any]]) -> str:
    """The entries of ``value`` that not every dict of the group shares (``eval_tasks=16``)."""
    keys = sorted({k for d in values for k in d if len({json.dumps(x.get(k), sort_keys=True) for x in values}) > 1})
    return " ".join(f"{k}={value.get(k)}" for k in keys)


ROW_ATTRS: list[Attr] = [
    (lambda r: r.system["seed"], _plain("seed {v}")), (lambda r: r.system["budget"], _plain("budget {v}")),
    (lambda r: r.budget_config, _dict_difference), (lambda r: r.method_config, _dict_difference),
    (lambda r: r.system["weights"], _plain("weights {short}"))]
COLUMN_ATTRS: list[Attr] = [
    (lambda c: c.env["version"], _plain("v{v}")), (lambda c: c.env["task_set_sha256"], _plain("tasks {short}")),
    (lambda c: c.env["seeds"], _plain("seeds {v}")), (lambda c: c.env["max_turns"], _plain("{v} turns")),
    (lambda c: c.setup, _dict_difference)]


def build_table(protocol: str, results: list[LoadedResult], warnings: list[str],
                store: EpisodeStore | None = None) -> Table:
    columns: dict[str, Column] = {}
    rows: dict[str, Row] = {}
    for loaded in results:
        r = loaded.result
        system = system_of(r)
        row_key = sha256_json(system)
        row = rows.setdefault(row_key, Row(row_key, system, r.protocol.budget_config, dict(r.method.config)))
        for e in r.envs:
            setup, entry = evaluation_of(r, e)
            key = sha256_json({"setup": setup, "env": entry})
            columns.setdefault(key, Column(key, protocol, entry, setup, e.n_tasks))
            old = row.cells.get(key)
            if old is not None:
                keep, drop = sorted([old.run, loaded], key=lambda x: (x.result.created_at, x.result.run_id))[::-1]
                warnings.append(f"{keep.result.method.name} ({keep.result.model.name}) has two results on "
                                f"{e.name}/{e.split}: kept the newer {keep.path}, left out {drop.path}")
                if keep is old.run:
                    continue
            row.cells[key] = Cell(e.success_rate, loaded, e)
    ordered = sorted(columns.values(), key=lambda c: (c.name, SPLIT_ORDER.get(c.split, 9), c.split, str(c.env['version']),
                                                      c.n_tasks, c.env['max_turns'], c.key))
    for col, label in zip(ordered, disambiguate(ordered, lambda c: f"{c.name}/{c.split}", COLUMN_ATTRS,
                                                lambda c: c.key[:6])):
        col.label = label
    row_list = list(rows.values())
    for row, label in zip(row_list, disambiguate(
            row_list, lambda r: f"{r.system['method']} ({r.system['model']})", ROW_ATTRS, lambda r: r.key[:6])):
        row.label = label
    row_list.sort(key=lambda r: r.label)
    for row in row_list:
        for col in ordered:
            cell = row.cells.get(col.key)
            if cell is not None and cell.run not in row.runs:
                row.runs.append(cell.run)
    table = Table(protocol, ordered, row_list)
    store = store or EpisodeStore(warnings)
    for row in row_list:
        for cell in row.cells.values():
            cell.episodes = store.of(run_episodes_path(cell.run.root),
                                     cell.run.result.artifacts.get("episodes_jsonl_sha256"),
                                     cell.env.name, cell.env.split)
    mark_best(table)
    compare_with_il(table)
    add_notes(table)
    return table


def mark_best(table: Table) -> None:
    """Per column: bold the top when a paired test at 5% puts it ahead of the runner-up, else mark
    the rows tied with it (``paired.mark``)."""
    for col in table.columns:
        entries = [(r.cells[col.key], Entry(r.label, r.cells[col.key].rate.value, r.cells[col.key].episodes))
                   for r in table.rows if col.key in r.cells]
        mark([e for _, e in entries])
        for cell, entry in entries:
            cell.best, cell.tie = entry.best, entry.tie


def compare_with_il(table: Table) -> None:
    """Each cell's paired difference from the il row's cell in the same column. With several il
    rows in a column, the one trained longest (most optimizer steps; then first by label) is the
    reference, and a remark says so."""
    for col in table.columns:
        ils = [r for r in table.rows if r.system["method"] == REFERENCE_METHOD and col.key in r.cells]
        if not ils:
            continue
        ref = sorted(ils, key=lambda r: (-r.cells[col.key].run.result.train.optimizer_steps, r.label))[0]
        if len(ils) > 1:
            remark = (f"vs il on {col.label}: against {ref.label}, the il row trained longest "
                      f"(of {len(ils)} il rows).")
            if remark not in table.remarks:
                table.remarks.append(remark)
        base = ref.cells[col.key].episodes
        for row in table.rows:
            if row is not ref and col.key in row.cells:
                row.cells[col.key].vs_il = vs_reference(row.cells[col.key].episodes, base)


def _reference_generation(entries: list[tuple[Row, Cell]]) -> str:
    votes = Counter(sha256_json(generation_of(c.run.result)) for _, c in entries)

    def matches_budget(key: str) -> int:
        return sum(1 for _, c in entries if sha256_json(generation_of(c.run.result)) == key
                   and generation_of(c.run.result).get("max_new_tokens")
                   == c.run.result.protocol.budget_config.get("max_new_tokens"))

    return max(votes, key=lambda k: (votes[k], matches_budget(k)))


def _generation_words(gen: dict[str, Any], keys: list[str]) -> str:
    return " and ".join(f"{GENERATION_LABELS.get(k, k)} {short(v) if k == 'prompt_sha256' else v}"
                        for k, v in ((k, gen.get(k)) for k in keys))


def add_notes(table: Table) -> None:
    for col in table.columns:
        entries = [(r, r.cells[col.key]) for r in table.rows if col.key in r.cells]
        ref_key = _reference_generation(entries)
        ref = next(generation_of(c.run.result) for _, c in entries
                   if sha256_json(generation_of(c.run.result)) == ref_key)
        for row, cell in entries:
            result = cell.run.result
            gen = generation_of(result)
            differs = [k for k in sorted(set(gen) | set(ref)) if gen.get(k) != ref.get(k)]
            if differs:
                cell.notes.append(table.note(
                    f"{row.label}: evaluated with {_generation_words(gen, differs)}; the column's reference "
                    f"settings are {_generation_words(ref, differs)} (same tasks, seeds and turn limit)."))
            n = cell.env.n_episodes
            if result.status != "complete" or n.completed < n.planned:
                cell.notes.append(table.note(
                    f"{row.label} on {col.label}: run {result.status}, {n.completed} of {n.planned} planned "
                    f"episodes completed, {n.errored} abandoned on env errors."))


def attach_reference(table: Table, reference: list[ReferenceTable]) -> None:
    for source in reference:
        for ref_row in source.rows:
            cells = {c.key: ref_row.cells[env_key(c.name, c.split)] for c in table.columns
                     if env_key(c.name, c.split) in ref_row.cells}
            if cells:
                table.reported.append(ReportedRow(ref_row.method, source, cells))


def build_board(results: list[LoadedResult], reference: list[ReferenceTable] | None = None) -> Board:
    warnings: list[str] = []
    store = EpisodeStore(warnings)
    scaling = [r for r in results if r.result.scaling]
    rl = [r for r in results if r.result.rl_compat and not r.result.scaling]
    by_protocol: dict[str, list[LoadedResult]] = {}
    for loaded in results:
        if loaded.result.evaluated_itself and not loaded.result.rl_compat:  # (scaling runs: curves only)
            by_protocol.setdefault(loaded.result.protocol.name, []).append(loaded)
    tables = [build_table(p, rs, warnings, store) for p, rs in
              sorted(by_protocol.items(), key=lambda kv: (PROTOCOL_ORDER.get(kv[0], 9), kv[0]))]
    for table in tables:
        attach_reference(table, reference or [])
    views = [rl_compat_view(loaded, store) for loaded in sorted(rl, key=lambda x: x.path)]
    return Board(tables, scaling, len(results), warnings, list(reference or []), views)


def rl_compat_view(loaded: LoadedResult, store: EpisodeStore) -> RLCompatView:
    """An rl-compat run's rows: per split (in the split order), per start (in the run's order)."""
    from agentbench.compare import rl_compat_episodes

    result = loaded.result

    def episodes(start: str, phase: str, env: EnvResult) -> list[EpisodeRecord] | None:
        if loaded.root is None:
            return None
        path, key = rl_compat_episodes(loaded.root, result, start, phase)
        return store.of(path, result.artifacts.get(key), env.name, env.split)

    rows: list[RLRow] = []
    after_eps: dict[tuple[str, str, str], list[EpisodeRecord] | None] = {}
    for entry in result.rl_compat:
        for cell in entry.cells:
            before, after = episodes(entry.start, "before", cell.before), episodes(entry.start, "after", cell.after)
            after_eps[(entry.start, cell.after.name, cell.split)] = after
            change = paired_diff(before, after) if before is not None and after is not None else None
            rows.append(RLRow(entry.start, cell.split, cell.after.name, cell.before.success_rate,
                              cell.after.success_rate, change, entry.start_train.optimizer_steps,
                              entry.rl_train.optimizer_steps))
    order = {e.start: i for i, e in enumerate(result.rl_compat)}
    rows.sort(key=lambda r: (r.env, SPLIT_ORDER.get(r.split, 9), r.split, order[r.start]))
    groups: dict[tuple[str, str], list[RLRow]] = {}
    for row in rows:
        groups.setdefault((row.env, row.split), []).append(row)
    for (env, split), members in groups.items():
        entries = [Entry(r.start, r.after.value, after_eps[(r.start, env, split)]) for r in members]
        mark(entries)
        base = after_eps.get((REFERENCE_METHOD, env, split))
        for row, entry in zip(members, entries):
            row.best, row.tie = entry.best, entry.tie
            if row.start != REFERENCE_METHOD and base is not None:
                row.vs_il = vs_reference(after_eps[(row.start, env, split)], base)
    return RLCompatView(loaded, rows, list(result.rl_compat))


def provenance(loaded: LoadedResult) -> dict[str, str]:
    """Where a result comes from, for the page's hover text and expandable details."""
    r = loaded.result
    h = r.harness
    commit = f" @ {h.git_commit[:12]}" if h.git_commit else ""
    dirty = " (uncommitted changes)" if h.git_dirty else ""
    budget = ", ".join(f"{k}={v}" for k, v in r.protocol.budget_config.items() if k != "name")
    return {
        "run id": r.run_id, "result file": loaded.path, "status": r.status, "created at": r.created_at,
        "harness": f"agentbench {h.version}{commit}{dirty}",
        "model": f"{r.model.name}, weights sha256 {r.model.revision_or_sha256}",
        "checkpoint sha256": r.model.checkpoint_sha256 or "none (not trained)",
        "method": f"{r.method.name} v{r.method.version}, config sha256 {short(r.method.config_sha256, 12)}",
        "budget": f"{r.protocol.budget} ({budget})" if budget else r.protocol.budget,
        "command": shlex.join(r.command), "comparability key": r.comparability_key,
    }


def scaling_curves(loaded: LoadedResult) -> dict[tuple[str, str, str], list[ScalingPoint]]:
    """A scaling run's points by (axis, env, split), in the order the run wrote them."""
    curves: dict[tuple[str, str, str], list[ScalingPoint]] = {}
    for p in loaded.result.scaling:
        curves.setdefault((p.axis, p.env, p.split), []).append(p)
    return curves


def curve_label(loaded: LoadedResult, points: list[ScalingPoint]) -> str:
    return f"{points[0].method} ({loaded.result.model.name}, seed {loaded.result.protocol.seed})"
