"""Leaderboards: Markdown and a static HTML page from the results store.

``build_leaderboard`` renders one table per env (policy, mode, noise, n, accuracy with its 95%
interval, answered rate, mean turns), best accuracy first, to ``leaderboard.md`` and to a
self-contained ``index.html``: inline CSS, a few lines of inline JS that sort any table by a click
on its header, plots from ``<out>/plots/`` embedded as data URIs, and a content-security policy
that forbids every network fetch.
"""

from __future__ import annotations

import base64
import glob
import html
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from matpo_gym.bench.results import write_bytes_atomic
from matpo_gym.bench.run_folder import UnreadableRun
from matpo_gym.bench.store import ResultsStore, StoredRun, StoreError

PLOT_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}


# -- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderboardRow:
    """One mode of one run, as the leaderboard shows it."""

    env: str
    policy: str
    mode: str
    noise: float
    seed: int | None
    n: int
    accuracy: float
    accuracy_ci95: float
    answered: float
    mean_turns: float
    run: str
    """The run's folder name."""
    scorer: str | None
    ci_low: float | None = None
    """The 95% bootstrap interval over questions (None in summaries that predate it)."""
    ci_high: float | None = None
    questions: int = 0
    samples: int = 0
    missing: int = 0
    """Planned episodes without a record (a run stopped early): counted as 0 in ``accuracy``."""

    @classmethod
    def from_run(cls, run: StoredRun) -> LeaderboardRow:
        s = run.summary
        return cls(
            env=run.env, policy=run.policy, mode=run.mode, noise=run.noise, seed=run.seed, n=int(s["n"]),
            accuracy=float(s["accuracy"]), accuracy_ci95=float(s["accuracy_ci95"]),
            answered=float(s["answered"]), mean_turns=float(s["mean_turns"]), run=run.name, scorer=run.scorer,
            ci_low=s.get("ci_low"), ci_high=s.get("ci_high"), questions=int(s.get("questions") or 0),
            samples=int(s.get("samples") or 0), missing=int((s.get("outcomes") or {}).get("missing") or 0),
        )


def leaderboard_tables(runs: Iterable[StoredRun]) -> dict[str, list[LeaderboardRow]]:
    """Env -> its rows, best accuracy first (ties: more questions first, then by name)."""
    tables: dict[str, list[LeaderboardRow]] = {}
    for run in runs:
        row = LeaderboardRow.from_run(run)
        tables.setdefault(row.env, []).append(row)
    for rows in tables.values():
        rows.sort(key=lambda r: (-r.accuracy, -r.n, r.policy, r.mode, r.noise, r.run))
    return dict(sorted(tables.items()))


def _scorers(rows: Sequence[LeaderboardRow]) -> str:
    names = sorted({r.scorer for r in rows if r.scorer})
    return ", ".join(names) or "unknown"


# -- Markdown ------------------------------------------------------------------------------------

_COLUMNS = ("policy", "mode", "noise", "n", "accuracy", "answered", "mean turns", "run")
_NUMERIC = {"noise", "n", "accuracy", "answered", "mean turns"}

_ABOUT = (
    "Accuracy is the mean score of the env's scorer (failed episodes count as 0) with its 95% "
    "percentile-bootstrap interval over questions (the independent units: a question's samples are "
    "averaged first); n is questions x samples per question; a run stopped before its plan was done "
    "is marked incomplete, its missing episodes counted as 0; answered is the fraction of episodes "
    "that ended with an answer; mean turns counts the turns of every trajectory (planner and workers)."
)


def _accuracy(row: LeaderboardRow) -> str:
    if row.ci_low is None or row.ci_high is None:  # a summary from before the bootstrap interval
        text = f"{row.accuracy:.3f} ± {row.accuracy_ci95:.3f}"
    else:
        text = f"{row.accuracy:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"
    return text + (f" (incomplete: {row.n - row.missing} of {row.n})" if row.missing else "")


def _cells(row: LeaderboardRow) -> tuple[str, ...]:
    n = f"{row.questions}x{row.samples}" if row.questions and row.samples else str(row.n)
    return (
        row.policy, row.mode, f"{row.noise:g}", n, _accuracy(row),
        f"{row.answered:.2f}", f"{row.mean_turns:.1f}", row.run,
    )


def _sort_keys(row: LeaderboardRow) -> tuple[str, ...]:
    return (
        row.policy, row.mode, repr(row.noise), str(row.n), repr(row.accuracy), repr(row.answered),
        repr(row.mean_turns), row.run,
    )


def render_markdown(tables: dict[str, list[LeaderboardRow]]) -> str:
    """The leaderboard as Markdown: one section and table per env."""

    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = ["# Leaderboard", "", _ABOUT, ""]
    if not tables:
        lines += ["No runs yet: `matpo-bench leaderboard build --runs 'runs/*'` adds them.", ""]
    for env, rows in tables.items():
        lines += [f"## {env}", "", f"Scorer: `{_scorers(rows)}`.", ""]
        lines.append("| " + " | ".join(_COLUMNS) + " |")
        lines.append("| " + " | ".join("---:" if c in _NUMERIC else "---" for c in _COLUMNS) + " |")
        for row in rows:
            lines.append("| " + " | ".join(cell(c) for c in _cells(row)) + " |")
        lines.append("")
    return "\n".join(lines)


# -- HTML ----------------------------------------------------------------------------------------

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1d2125; background: #fff; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
p.about, p.scorer { color: #4a525a; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid #dde1e5; text-align: left; white-space: nowrap; }
th { background: #f3f5f7; cursor: pointer; user-select: none; }
th:hover, th:focus { background: #e4e9ee; outline: none; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .75em; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .75em; }
tbody tr:nth-child(even) { background: #fafbfc; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #dde1e5; }
figcaption { color: #4a525a; font-size: .9em; }
"""

_JS = """
(function () {
  function key(row, column, numeric) {
    var cell = row.cells[column];
    var value = cell.getAttribute("data-sort");
    if (value === null) value = cell.textContent;
    if (!numeric) return value.toLowerCase();
    var number = parseFloat(value);
    return isNaN(number) ? -Infinity : number;
  }
  function sortBy(table, th, column) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var numeric = th.getAttribute("data-type") === "number";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, column, numeric), y = key(b, column, numeric);
      var order = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(table, th, column); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, th, column); }
      });
    });
  });
})();
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _plot_figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = html.escape(path.name)
    return (
        f'<figure><img src="data:{PLOT_TYPES[path.suffix.lower()]};base64,{data}" alt="{name}">'
        f"<figcaption>{name}</figcaption></figure>"
    )


def find_plots(folder: Path) -> list[Path]:
    """The ``*.svg`` and ``*.png`` files in ``folder``, by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PLOT_TYPES)


def render_html(tables: dict[str, list[LeaderboardRow]], plots: Sequence[Path] = ()) -> str:
    """A self-contained page: every table sortable by a click on a header, plots inlined."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>matpo-gym leaderboard</title><style>{_CSS}</style></head><body>",
        "<h1>matpo-gym leaderboard</h1>",
        f'<p class="about">{e(_ABOUT)} Click a column header to sort.</p>',
    ]
    if not tables:
        parts.append("<p>No runs yet.</p>")
    for env, rows in tables.items():
        parts += [
            f'<section id="env-{e(env, quote=True)}"><h2>{e(env)}</h2>',
            f'<p class="scorer">Scorer: <code>{e(_scorers(rows))}</code>.</p>',
            f'<table class="sortable" data-env="{e(env, quote=True)}"><thead><tr>',
        ]
        for column in _COLUMNS:
            numeric = column in _NUMERIC
            attrs = ' class="num" data-type="number"' if numeric else ' data-type="text"'
            if column == "accuracy":
                attrs += ' aria-sort="descending"'
            parts.append(f'<th scope="col" data-column="{e(column)}"{attrs}>{e(column)}</th>')
        parts.append("</tr></thead><tbody>")
        for row in rows:
            parts.append("<tr>")
            for column, text, sort in zip(_COLUMNS, _cells(row), _sort_keys(row)):
                css = ' class="num"' if column in _NUMERIC else ""
                parts.append(f'<td{css} data-sort="{e(sort, quote=True)}">{e(text)}</td>')
            parts.append("</tr>")
        parts.append("</tbody></table></section>")
    if plots:
        parts.append('<section id="plots"><h2>Plots</h2>')
        parts += [_plot_figure(p) for p in plots]
        parts.append("</section>")
    parts += [f"<script>{_JS}</script>", "</body></html>", ""]
    return "\n".join(parts)


@dataclass(frozen=True)
class LeaderboardFiles:
    """What :func:`build_leaderboard` wrote."""

    markdown: Path
    html: Path
    rows: int
    """Table rows (one per mode of each run)."""
    plots: list[Path] = field(default_factory=list)


def _stored_runs(store_or_runs: ResultsStore | Iterable[StoredRun | Path | str]) -> list[StoredRun]:
    if isinstance(store_or_runs, ResultsStore):
        return store_or_runs.runs()
    items = list(store_or_runs)
    runs = [item for item in items if isinstance(item, StoredRun)]
    folders = [item for item in items if not isinstance(item, StoredRun)]
    if folders:
        with ResultsStore(":memory:") as scratch:
            for folder in folders:
                scratch.import_run(folder)
            runs += scratch.runs()
    return runs


def build_leaderboard(
    store_or_runs: ResultsStore | Iterable[StoredRun | Path | str], out_dir: Path = Path("leaderboards")
) -> LeaderboardFiles:
    """Write ``leaderboard.md`` and ``index.html`` to ``out_dir`` from a store, stored runs or run folders."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = leaderboard_tables(_stored_runs(store_or_runs))
    plots = find_plots(out_dir / "plots")
    markdown, page = out_dir / "leaderboard.md", out_dir / "index.html"
    write_bytes_atomic(markdown, render_markdown(tables).encode("utf-8"))
    write_bytes_atomic(page, render_html(tables, plots).encode("utf-8"))
    return LeaderboardFiles(markdown, page, sum(len(rows) for rows in tables.values()), plots)


# -- commands ------------------------------------------------------------------------------------


@dataclass
class LeaderboardBuildConfig:
    """Import run folders into the results store, then render leaderboard.md and index.html."""

    runs: tuple[str, ...] | str = ("runs/*",)
    """Run folders or glob patterns (``'runs/*'``); a pattern skips folders without a run.json."""
    store: Path | None = Path("leaderboards/results.sqlite")
    """SQLite results store the runs go into (the page shows every run it holds); None: only these runs."""
    out: Path = Path("leaderboards")
    """Folder for leaderboard.md and index.html; plots in ``<out>/plots/`` (svg, png) are embedded."""


def expand_runs(runs: Sequence[str] | str) -> dict[Path, bool]:
    """Run folders named by paths or glob patterns, each with whether a pattern found it (rather
    than a name); a pattern must match at least one run folder."""
    folders: dict[Path, bool] = {}
    for entry in [runs] if isinstance(runs, str) else runs:
        if any(ch in entry for ch in "*?["):
            matched = [Path(p) for p in sorted(glob.glob(entry)) if (Path(p) / "run.json").is_file()]
            if not matched:
                raise StoreError(f"No run folders (folders with a run.json) match {entry!r}.")
            for folder in matched:
                folders.setdefault(folder, True)
        else:
            folders[Path(entry)] = False
    return folders


def leaderboard_build(config: LeaderboardBuildConfig, *, stream: TextIO | None = None) -> LeaderboardFiles:
    """``matpo-bench leaderboard build``."""
    stream = stream or sys.stdout
    folders = expand_runs(config.runs)
    imported: list[str] = []
    skipped: list[str] = []
    with ResultsStore(config.store if config.store is not None else ":memory:") as store:
        for folder, by_pattern in folders.items():
            try:
                imported += store.import_run(folder)
            except UnreadableRun as exc:
                if not by_pattern:  # a folder named on its own must import
                    raise
                skipped.append(str(exc))  # one unfinished or broken run in runs/* does not stop the rest
        files = build_leaderboard(store, config.out)
    where = f" into {config.store}" if config.store is not None else ""
    print(f"Imported {len(imported)} run mode(s) from {len(folders) - len(skipped)} folder(s){where}.", file=stream)
    for reason in skipped:
        print(f"Skipped: {reason}", file=stream)
    print(f"Leaderboard ({files.rows} rows): {files.markdown}, {files.html}", file=stream)
    return files
