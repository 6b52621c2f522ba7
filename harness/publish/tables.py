"""The leaderboard as markdown (GitHub tables) and as LaTeX (booktabs tabulars)."""

from __future__ import annotations

from collections.abc import Callable

from agentbench.publish.board import Board, Table
from agentbench.publish.grid import (
    INTRO,
    MERGED,
    REPORTED,
    Grid,
    Piece,
    reference_grid,
    rl_compat_grid,
    rl_compat_legend,
    scaling_tables,
    sources,
    table_grid,
)
from agentbench.publish.paired import TIE
from agentbench.publish.plots import Figure, Figures

ImageName = Callable[[Figure], str]


def _results_line(board: Board) -> str:
    n = board.n_results
    return f"From {n} result file{'s' if n != 1 else ''}."


# markdown ------------------------------------------------------------------------------------

def _md_piece(p: Piece) -> str:
    text = p.text.replace("|", "\\|")
    if p.reported and text:
        text = f"*{text}*"
    if p.bold:
        text = f"**{text}**"
    if p.tie:
        text += TIE
    return text + "".join(f"<sup>{n}</sup>" for n in p.notes)


def md_grid(grid: Grid) -> list[str]:
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in grid.header) + " |",
             "|" + "|".join("---:" if num else ":---" for num in grid.numeric) + "|"]
    for row in grid.rows + grid.reported:
        lines.append("| " + " | ".join(_md_piece(p) for p in row) + " |")
    return lines


def _md_table(table: Table, figures: list[Figure], image_name: ImageName) -> list[str]:
    lines = [f"## {table.protocol}", "", *md_grid(table_grid(table)), "", "Columns:"]
    lines += [f"- `{c.label}`: {c.describe()}" for c in table.columns]
    if table.notes:
        lines += ["", "Notes:"] + [f"{i}. {text}" for i, text in enumerate(table.notes, 1)]
    extra = ([MERGED] if table.merges_runs else []) + ([REPORTED] if table.reported else []) + table.remarks
    if extra:
        lines += ["", " ".join(extra)]
    for source in sources(table):
        lines.append(f"- reported: {source.paper} ({source.citation}); {source.unit}")
    lines.append("")
    lines += [f"![{f.title}]({image_name(f)})" for f in figures]
    return lines + [""] if figures else lines


def render_markdown(board: Board, figs: Figures, image_name: ImageName) -> str:
    lines = ["# agentbench leaderboard", "", f"{_results_line(board)} {INTRO}", ""]
    for table in board.tables:
        lines += _md_table(table, figs.by_table.get(table.protocol, []), image_name)
    for view, figure in zip(board.rl_compat, figs.rl_compat):
        lines += [f"## {view.title}", "", *md_grid(rl_compat_grid(view)), "", rl_compat_legend(view), "",
                  f"![{figure.title}]({image_name(figure)})", ""]
    if figs.scaling:
        lines += ["## scaling", "", "Success rate by axis value, one line per run; error bars: 95% intervals.", ""]
        lines += [f"![{f.title}]({image_name(f)})" for f in figs.scaling] + [""]
        for scaling in scaling_tables(board.scaling):
            lines += [f"### {scaling.title}", "", *md_grid(scaling.grid), ""]
    if board.reference:
        lines += ["## reported numbers (from the papers, not run here)", ""]
        for source in board.reference:
            lines += [f"### {source.paper}", "", f"{source.citation}; {source.unit}.", "",
                      *md_grid(reference_grid(source)), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# LaTeX ----------------------------------------------------------------------------------------

LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "–": "--", "Δ": r"$\Delta$", "<": r"$<$", ">": r"$>$", TIE: r"$^\dagger$"}


def tex(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in text)


def _tex_piece(p: Piece) -> str:
    text = tex(p.text)
    if p.reported and text:
        text = rf"\emph{{{text}}}"
    if p.bold:
        text = rf"\textbf{{{text}}}"
    if p.tie:
        text += tex(TIE)
    return text + "".join(rf"\textsuperscript{{{n}}}" for n in p.notes)


def tex_tabular(grid: Grid) -> list[str]:
    spec = "".join("r" if num else "l" for num in grid.numeric)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(tex(h) for h in grid.header) + r" \\",
             r"\midrule"]
    lines += [" & ".join(_tex_piece(p) for p in row) + r" \\" for row in grid.rows]
    if grid.reported:
        lines += [r"\midrule",
                  rf"\multicolumn{{{len(grid.header)}}}{{l}}{{\emph{{Reported in the papers (not run here)}}}} \\"]
        lines += [" & ".join(_tex_piece(p) for p in row) + r" \\" for row in grid.reported]
    return lines + [r"\bottomrule", r"\end{tabular}"]


def _tex_figure(figure: Figure, image_name: ImageName) -> list[str]:
    return [r"\begin{figure}[ht]", r"\centering", rf"\includegraphics[width=0.7\linewidth]{{{image_name(figure)}}}",
            rf"\caption{{{tex(figure.title)}: success rate with 95\% intervals.}}", r"\end{figure}", ""]


def _tex_table(table: Table, figures: list[Figure], image_name: ImageName) -> list[str]:
    caption = (rf"Protocol {tex(table.protocol)}: success rate in \% with 95\% interval; bold: best in the column "
               rf"by a paired test at 5\%; {tex(TIE)}: tied with the column's top.")
    lines = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{caption}}}",
             *tex_tabular(table_grid(table)), r"\par\smallskip", r"\begin{minipage}{\linewidth}\footnotesize"]
    lines += [rf"{tex(c.label)}: {tex(c.describe())}.\\" for c in table.columns]
    lines += [rf"\textsuperscript{{{i}}} {tex(text)}\\" for i, text in enumerate(table.notes, 1)]
    extra = ([MERGED] if table.merges_runs else []) + ([REPORTED] if table.reported else []) + table.remarks
    lines += [rf"{tex(text)}\\" for text in extra]
    lines += [rf"Reported: {tex(s.paper)} ({tex(s.citation)}); {tex(s.unit)}.\\" for s in sources(table)]
    lines += [r"\end{minipage}", r"\end{table}", ""]
    for figure in figures:
        lines += _tex_figure(figure, image_name)
    return lines


def render_latex(board: Board, figs: Figures, image_name: ImageName) -> str:
    lines = [r"% agentbench leaderboard; needs \usepackage{booktabs} and \usepackage{graphicx}.",
             f"% {_results_line(board)} {INTRO}", ""]
    for table in board.tables:
        lines += _tex_table(table, figs.by_table.get(table.protocol, []), image_name)
    for view, figure in zip(board.rl_compat, figs.rl_compat):
        lines += [r"\begin{table}[ht]", r"\centering",
                  rf"\caption{{{tex(view.title)}: success rate in \% with 95\% interval, before and after RL.}}",
                  *tex_tabular(rl_compat_grid(view)), r"\par\smallskip",
                  rf"\begin{{minipage}}{{\linewidth}}\footnotesize {tex(rl_compat_legend(view))}\end{{minipage}}",
                  r"\end{table}", ""]
        lines += [r"\begin{figure}[ht]", r"\centering",
                  rf"\includegraphics[width=0.9\linewidth]{{{image_name(figure)}}}",
                  rf"\caption{{{tex(figure.title)}.}}", r"\end{figure}", ""]
    for figure in figs.scaling:
        lines += _tex_figure(figure, image_name)
    for scaling in scaling_tables(board.scaling):
        lines += [r"\begin{table}[ht]", r"\centering",
                  rf"\caption{{{tex(scaling.title)}: success rate in \% with 95\% interval, and compute per point.}}",
                  *tex_tabular(scaling.grid), r"\end{table}", ""]
    for source in board.reference:
        lines += [r"\begin{table}[ht]", r"\centering",
                  rf"\caption{{Reported in the papers (not run here): {tex(source.paper)} ({tex(source.citation)}); "
                  rf"{tex(source.unit)}.}}", *tex_tabular(reference_grid(source)), r"\end{table}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
