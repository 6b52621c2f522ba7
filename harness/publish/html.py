"""The leaderboard as one self-contained HTML page: inline CSS and JS, images embedded as base64,
tables sortable by clicking a header (numbers sort as numbers: success cells on their value),
and each result's provenance on hover (success cells) and in an expandable list (row labels).
Nothing is fetched from the network."""

from __future__ import annotations

import base64
from html import escape

from agentbench.publish.board import Board, Table, provenance
from agentbench.publish.collect import LoadedResult
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

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 90rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
th { border-bottom: 2px solid #444; text-align: left; }
th.num, td.num { text-align: right; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
td.best { font-weight: bold; background: #eef7ee; }
td.tie { background: #f5f9f5; }
tbody.reported td { font-style: italic; color: #666; background: #fafafa; }
tbody.reported tr:first-child td { border-top: 2px solid #999; }
.label { position: relative; white-space: nowrap; }
details summary { cursor: pointer; }
div.provenance { position: absolute; left: 0; top: 100%; z-index: 10; width: 52rem; max-width: 90vw;
  background: #fff; border: 1px solid #999; box-shadow: 0 2px 8px rgba(0, 0, 0, 0.2); padding: 0.5rem 0.8rem; }
div.provenance dl { display: grid; grid-template-columns: max-content auto; gap: 0.1rem 0.8rem; font-size: 0.8rem;
  white-space: normal; margin: 0.3rem 0 0.6rem; }
div.provenance dt { color: #666; } div.provenance dd { margin: 0; font-family: monospace; word-break: break-all; }
figure { display: inline-block; margin: 0.5rem 1rem 0.5rem 0; } figure img { max-width: 100%; }
.legend { font-size: 0.85rem; color: #444; }
"""

SCRIPT = """
(function () {
  function key(row, index) {
    var cell = row.cells[index];
    return cell && cell.hasAttribute('data-sort') ? cell.getAttribute('data-sort') : '';
  }
  function sortBy(table, index, th) {
    var numeric = th.getAttribute('data-numeric') === '1';
    var current = th.getAttribute('aria-sort');
    var dir = current === 'descending' ? 'ascending' : current === 'ascending' ? 'descending'
            : (numeric ? 'descending' : 'ascending');
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.setAttribute('aria-sort', 'none'); });
    th.setAttribute('aria-sort', dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, index), y = key(b, index);
      if (x === '' || y === '') { return (x === '') - (y === '') || a.dataset.index - b.dataset.index; }
      var order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return (dir === 'ascending' ? order : -order) || a.dataset.index - b.dataset.index;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row, i) { row.dataset.index = i; });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.addEventListener('click', function () { sortBy(table, index, th); });
    });
  });
})();
"""


def _provenance_text(run: LoadedResult) -> str:
    return "\n".join(f"{k}: {v}" for k, v in provenance(run).items())


def _provenance_list(runs: list[LoadedResult]) -> str:
    parts = []
    for run in runs:
        items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in provenance(run).items())
        parts.append(f"<dl>{items}</dl>")
    return f'<div class="provenance">{"".join(parts)}</div>'


def _run_label(run: LoadedResult) -> str:
    r = run.result
    return f"{r.method.name} ({r.model.name}, seed {r.protocol.seed}): {r.run_id}"


def _td(piece: Piece, numeric: bool, extra: str = "") -> str:
    classes = " ".join(c for c in ("num" if numeric else "label", "best" if piece.bold else "",
                                   "tie" if piece.tie else "") if c)
    attrs = f' class="{classes}"' if classes else ""
    if piece.sort is not None:
        attrs += f' data-sort="{escape(str(piece.sort))}"'
    if piece.run is not None:
        attrs += f' title="{escape(_provenance_text(piece.run))}"'
    notes = "".join(f"<sup>{n}</sup>" for n in piece.notes)
    tie = TIE if piece.tie else ""
    return f"<td{attrs}>{extra or escape(piece.text)}{tie}{notes}</td>"


def grid_html(grid: Grid, sortable: bool) -> str:
    head = "".join(f'<th class="{"num" if num else ""}" data-numeric="{int(num)}" aria-sort="none">{escape(h)}</th>'
                   for h, num in zip(grid.header, grid.numeric))
    rows = []
    for i, row in enumerate(grid.rows):
        runs = grid.row_runs[i] if i < len(grid.row_runs) else []
        first = (f"<details><summary>{escape(row[0].text)}</summary>{_provenance_list(runs)}</details>"
                 if runs else "")
        cells = [_td(row[0], False, first)] + [_td(p, num) for p, num in zip(row[1:], grid.numeric[1:])]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = f'<tbody class="results">{"".join(rows)}</tbody>'
    if grid.reported:
        reported = "".join("<tr>" + "".join(_td(p, num) for p, num in zip(row, grid.numeric)) + "</tr>"
                           for row in grid.reported)
        body += f'<tbody class="reported">{reported}</tbody>'
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead>{body}</table>"


def _figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode()
    return (f'<figure><img alt="{escape(figure.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(figure.title)}: success rate with 95% intervals</figcaption></figure>")


def _section(table: Table, figures: list[Figure]) -> str:
    parts = [f'<section id="protocol-{escape(table.protocol)}"><h2>{escape(table.protocol)}</h2>',
             grid_html(table_grid(table), sortable=True), '<div class="legend"><p>Columns:</p><ul>']
    parts += [f"<li><code>{escape(c.label)}</code>: {escape(c.describe())}</li>" for c in table.columns]
    parts.append("</ul>")
    if table.notes:
        parts.append("<p>Notes:</p><ol>" + "".join(f"<li>{escape(n)}</li>" for n in table.notes) + "</ol>")
    extra = ([MERGED] if table.merges_runs else []) + ([REPORTED] if table.reported else []) + table.remarks
    if extra:
        parts.append(f"<p>{escape(' '.join(extra))}</p>")
    if table.reported:
        parts.append("<ul>" + "".join(f"<li>reported: {escape(s.paper)} ({escape(s.citation)}); {escape(s.unit)}</li>"
                                      for s in sources(table)) + "</ul>")
    parts.append("</div>")
    parts += [_figure(f) for f in figures]
    return "".join(parts) + "</section>"


def render_html(board: Board, figs: Figures) -> str:
    n = board.n_results
    body = [f"<h1>agentbench leaderboard</h1><p>From {n} result file{'s' if n != 1 else ''}. {escape(INTRO)} "
            "Hover a success cell for its run's provenance; expand a row label for all of its runs.</p>"]
    body += [_section(t, figs.by_table.get(t.protocol, [])) for t in board.tables]
    for i, (view, figure) in enumerate(zip(board.rl_compat, figs.rl_compat)):
        data = base64.b64encode(figure.png).decode()
        body.append(f'<section id="rl-compat-{i}"><h2>{escape(view.title)}</h2>'
                    + grid_html(rl_compat_grid(view), sortable=True)
                    + f'<div class="legend"><p>{escape(rl_compat_legend(view))}</p></div>'
                    + f'<figure><img alt="{escape(figure.title)}" src="data:image/png;base64,{data}">'
                    + f"<figcaption>{escape(figure.title)}</figcaption></figure></section>")
    if figs.scaling:
        runs = "".join(f'<li class="label"><details><summary>{escape(_run_label(r))}</summary>'
                       f"{_provenance_list([r])}</details></li>" for r in board.scaling)
        numbers = "".join(f"<h3>{escape(t.title)}</h3>{grid_html(t.grid, sortable=True)}"
                          for t in scaling_tables(board.scaling))
        body.append('<section id="scaling"><h2>scaling</h2>' + "".join(_figure(f) for f in figs.scaling)
                    + numbers + f'<div class="legend"><p>Runs:</p><ul>{runs}</ul></div></section>')
    if board.reference:
        body.append('<section id="reported"><h2>reported numbers (from the papers, not run here)</h2>')
        for source in board.reference:
            body.append(f"<h3>{escape(source.paper)}</h3><p>{escape(source.citation)}; {escape(source.unit)}.</p>"
                        + grid_html(reference_grid(source), sortable=False))
        body.append("</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>agentbench leaderboard</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{SCRIPT}</script></body></html>\n")
