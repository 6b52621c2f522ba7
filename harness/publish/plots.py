"""PNG figures: per-evaluation bar charts and scaling curves, with 95% intervals as error bars.

matplotlib's object API on the Agg canvas (no pyplot state, no display needed); the images are
returned as bytes, so that markdown and LaTeX write them beside the document and the HTML page
embeds them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from agentbench.publish.board import Board, Column, RLCompatView, Table, curve_label, scaling_curves
from agentbench.publish.collect import LoadedResult
from agentbench.publish.text import axis_value

BEST_COLOR, COLOR = "#1f6f3f", "#4a78a8"
# Axes of doublings are drawn on a log2 scale.
LOG2_AXES = {"expert_fraction", "branching_k", "iterations"}


@dataclass(frozen=True)
class Figure:
    slug: str
    """File-name part: ``<stem>-<slug>.png``."""
    title: str
    png: bytes


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def bar_chart(table: Table, column: Column) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    rows = [r for r in table.rows if column.key in r.cells]
    cells = [r.cells[column.key] for r in rows]
    values = [100 * c.rate.value for c in cells]
    errors = _error_bars([c.rate for c in cells])
    fig = MplFigure(figsize=(max(4.0, 1.1 * len(rows) + 1.5), 3.6))
    ax = fig.subplots()
    ax.bar(range(len(rows)), values, yerr=errors, capsize=4,
           color=[BEST_COLOR if c.best else COLOR for c in cells])
    ax.set_xticks(range(len(rows)), [r.label for r in rows], rotation=20 if len(rows) > 3 else 0, ha="right"
                  if len(rows) > 3 else "center", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("success rate (%), 95% interval")
    title = f"{column.label} ({table.protocol})"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return Figure(f"{slug(table.protocol)}-{slug(column.label)}", title, _png(fig))


def _curve_key(loaded: LoadedResult, env: str, split: str) -> str:
    entry = next((e for e in loaded.result.envs if e.name == env and e.split == split), None)
    return entry.task_set_sha256[:6] if entry else "?"


def scaling_charts(runs: list[LoadedResult]) -> list[Figure]:
    """One figure per (axis, env, split, task set); one line per run (method and model)."""
    from matplotlib.figure import Figure as MplFigure

    groups: dict[tuple[str, str, str, str], list[tuple[str, list]]] = {}
    for loaded in runs:
        for (axis, env, split), points in scaling_curves(loaded).items():
            groups.setdefault((axis, env, split, _curve_key(loaded, env, split)), []).append(
                (curve_label(loaded, points), points))
    figures = []
    many_task_sets = {k[:3] for k in groups if sum(1 for g in groups if g[:3] == k[:3]) > 1}
    for (axis, env, split, tasks), curves in sorted(groups.items()):
        numeric = all(isinstance(p.value, float) for _, pts in curves for p in pts)
        categories: list[str] = []
        for _, pts in curves:
            categories += [axis_value(p.value) for p in pts if axis_value(p.value) not in categories]
        fig = MplFigure(figsize=(6.0, 3.8))
        ax = fig.subplots()
        for label, pts in sorted(curves):
            pts = sorted(pts, key=lambda p: p.value) if numeric else pts
            xs = [p.value if numeric else categories.index(axis_value(p.value)) for p in pts]
            ys = [100 * p.success_rate.value for p in pts]
            err = _error_bars([p.success_rate for p in pts])
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
        if numeric and axis in LOG2_AXES and all(float(p.value) > 0 for _, pts in curves for p in pts):
            ax.set_xscale("log", base=2)
        values = sorted({p.value for _, pts in curves for p in pts}) if numeric else None
        if values is not None:
            ax.set_xticks(values, [axis_value(v) for v in values])
        else:
            ax.set_xticks(range(len(categories)), categories)
        ax.set_ylim(0, 100)
        ax.set_xlabel(axis)
        ax.set_ylabel("success rate (%), 95% interval")
        suffix = f" tasks {tasks}" if (axis, env, split) in many_task_sets else ""
        title = f"{env}/{split}{suffix} by {axis}"
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        figures.append(Figure(f"scaling-{slug(axis)}-{slug(env)}-{slug(split)}{'-' + tasks if suffix else ''}",
                              title, _png(fig)))
    return figures


def rl_curve(view: RLCompatView) -> Figure:
    """Training-rollout success (left) and mean reward (right) over RL steps, one line per start."""
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(9.0, 3.6))
    success_ax, reward_ax = fig.subplots(1, 2)
    for start in view.starts:
        steps = sorted(start.rl_train.rl_steps, key=lambda s: s.step)
        xs = [s.step for s in steps]
        success_ax.plot(xs, [100 * s.success for s in steps], marker="o", markersize=3, label=start.start)
        reward_ax.plot(xs, [s.mean_reward for s in steps], marker="o", markersize=3, label=start.start)
    success_ax.set_ylim(0, 100)
    success_ax.set_ylabel("training-rollout success (%)")
    reward_ax.set_ylabel("mean reward")
    for ax in (success_ax, reward_ax):
        ax.set_xlabel("RL step")
        ax.legend(fontsize=8, title="start", title_fontsize=8)
    r = view.run.result
    title = f"rl-compat {r.method.name} from each start: training rollouts per RL step ({r.run_id})"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return Figure(f"rl-compat-{slug(r.run_id)}", title, _png(fig))


@dataclass(frozen=True)
class Figures:
    by_table: dict[str, list[Figure]]
    """Table protocol -> its bar charts, one per column."""
    scaling: list[Figure]
    rl_compat: list[Figure] = ()
    """One curve figure per rl-compat run, in ``board.rl_compat``'s order."""

    def all(self) -> list[Figure]:
        return [f for figs in self.by_table.values() for f in figs] + list(self.rl_compat) + self.scaling


def figures(board: Board) -> Figures:
    """Every figure of the board: bars per table column, the rl-compat curves and the scaling curves."""
    return Figures({t.protocol: [bar_chart(t, c) for c in t.columns] for t in board.tables},
                   scaling_charts(board.scaling), [rl_curve(v) for v in board.rl_compat])


def _error_bars(rates) -> list[list[float]]:
    """Lower and upper bar lengths in points, never negative: results written before
    ``wilson_interval`` clamped its bounds hold a lower bound 1.4e-17 above a 0% rate, which
    matplotlib rejects as a negative length."""
    return [[max(0.0, 100 * (r.value - r.ci95[0])) for r in rates],
            [max(0.0, 100 * (r.ci95[1] - r.value)) for r in rates]]
