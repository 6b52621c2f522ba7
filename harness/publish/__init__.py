"""``agentbench publish``: leaderboard tables and plots from result files.

``publish(folder, fmt, out)`` reads every ``result.json`` under ``folder`` (validated; corrupt
files are skipped and reported, or fail the command with ``strict``), builds the tables
(``board``: the column rule is documented there), draws the figures (``plots``) and writes one
document: markdown or LaTeX with the PNG images beside it, or a self-contained HTML page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agentbench.errors import UnknownNameError, UsageError
from agentbench.fileio import atomic_write_text, write_bytes


@dataclass(frozen=True)
class Format:
    suffix: str
    images_beside: bool
    """Whether the images are written as files beside the document (else embedded)."""
    render: Callable  # (board, figures, image_name) -> str


def _markdown(board, figs, image_name):
    from agentbench.publish.tables import render_markdown

    return render_markdown(board, figs, image_name)


def _latex(board, figs, image_name):
    from agentbench.publish.tables import render_latex

    return render_latex(board, figs, image_name)


def _html(board, figs, image_name):
    from agentbench.publish.html import render_html

    return render_html(board, figs)


FORMATS: dict[str, Format] = {
    "md": Format(".md", True, _markdown),
    "latex": Format(".tex", True, _latex),
    "html": Format(".html", False, _html),
}


@dataclass
class Published:
    document: Path
    images: list[Path] = field(default_factory=list)
    n_results: int = 0
    messages: list[str] = field(default_factory=list)
    """Files skipped and results left out, one line each."""


def publish(folder: Path, fmt: str, out: Path | None = None, reference: bool = False,
            strict: bool = False) -> Published:
    if fmt not in FORMATS:
        raise UnknownNameError("format", fmt, FORMATS)
    from agentbench.publish.board import build_board
    from agentbench.publish.collect import collect
    from agentbench.publish.plots import figures
    from agentbench.publish.reference import reference_data

    spec = FORMATS[fmt]
    out = Path(out) if out is not None else Path(folder) / f"leaderboard{spec.suffix}"
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the document's file name (e.g. {out / 'leaderboard'}"
                         f"{spec.suffix})")
    collection = collect(folder, strict=strict)
    board = build_board(collection.results, reference_data().tables if reference else None)
    figs = figures(board)

    def image_name(figure) -> str:
        return f"{out.stem}-{figure.slug}.png"

    images = []
    if spec.images_beside:
        for figure in figs.all():
            path = out.parent / image_name(figure)
            write_bytes(path, figure.png)
            images.append(path)
    atomic_write_text(out, spec.render(board, figs, image_name))
    return Published(out, images, board.n_results, collection.skipped + board.warnings)
