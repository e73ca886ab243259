"""Leaderboards: Markdown and a static HTML page from the results store, and submission checks.

``build_leaderboard`` renders one table per env (policy, mode, noise, n, accuracy with its 95%
interval, answered rate, mean turns), best accuracy first, to ``leaderboard.md`` and to a
self-contained ``index.html``: inline CSS, a few lines of inline JS that sort any table by a click
on its header, plots from ``<out>/plots/`` embedded as data URIs, and a content-security policy
that forbids every network fetch.

``verify_submission`` re-scores every record of a run folder from its prediction and gold answer
with the env's scorer, recomputes the summary, and rejects the run when a claimed score or the
claimed accuracy / n disagree.
"""

from __future__ import annotations

import base64
import glob
import html
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from matpo_gym.bench.store import ResultsStore, StoredRun, StoreError, load_run_folder
from matpo_gym.bench.summary import ModeSummary, summarize
from matpo_gym.data.tasks import Task
from matpo_gym.scoring.scorers import get_scorer

TOLERANCE = 1e-9
"""Largest difference allowed between a claimed and a recomputed score or accuracy."""

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

    @classmethod
    def from_run(cls, run: StoredRun) -> LeaderboardRow:
        s = run.summary
        return cls(
            env=run.env, policy=run.policy, mode=run.mode, noise=run.noise, seed=run.seed, n=int(s["n"]),
            accuracy=float(s["accuracy"]), accuracy_ci95=float(s["accuracy_ci95"]),
            answered=float(s["answered"]), mean_turns=float(s["mean_turns"]), run=run.name, scorer=run.scorer,
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
    "Accuracy is the mean score of the env's scorer (failed episodes count as 0), ± the half-width "
    "of its 95% normal-approximation interval; answered is the fraction of episodes that ended with "
    "an answer; mean turns counts the turns of every trajectory (planner and workers)."
)


def _cells(row: LeaderboardRow) -> tuple[str, ...]:
    return (
        row.policy, row.mode, f"{row.noise:g}", str(row.n), f"{row.accuracy:.3f} ± {row.accuracy_ci95:.3f}",
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


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build_leaderboard(
    store_or_runs: ResultsStore | Iterable[StoredRun | Path | str], out_dir: Path = Path("leaderboards")
) -> LeaderboardFiles:
    """Write ``leaderboard.md`` and ``index.html`` to ``out_dir`` from a store, stored runs or run folders."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = leaderboard_tables(_stored_runs(store_or_runs))
    plots = find_plots(out_dir / "plots")
    markdown, page = out_dir / "leaderboard.md", out_dir / "index.html"
    _write_text_atomic(markdown, render_markdown(tables))
    _write_text_atomic(page, render_html(tables, plots))
    return LeaderboardFiles(markdown, page, sum(len(rows) for rows in tables.values()), plots)


# -- verification --------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_submission`: accepted when there is no reason to reject."""

    folder: Path
    reasons: list[str] = field(default_factory=list)
    """Why the submission is rejected (empty when it is accepted)."""
    records_checked: int = 0
    summaries: dict[str, ModeSummary] = field(default_factory=dict)
    """Mode -> the summary recomputed from the re-scored records."""

    @property
    def ok(self) -> bool:
        return not self.reasons

    def format(self, max_reasons: int = 20) -> str:
        """A short human-readable verdict."""
        if self.ok:
            modes = ", ".join(f"{m} n={s.n} accuracy={s.accuracy:.3f}" for m, s in self.summaries.items())
            return f"ACCEPTED {self.folder}: {self.records_checked} records re-scored; {modes}"
        lines = [f"REJECTED {self.folder}: {len(self.reasons)} problem(s)"]
        lines += [f"  - {reason}" for reason in self.reasons[:max_reasons]]
        if len(self.reasons) > max_reasons:
            lines.append(f"  ... and {len(self.reasons) - max_reasons} more")
        return "\n".join(lines)


def _differs(a: Any, b: Any) -> bool:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return True
    return not (math.isfinite(x) and math.isfinite(y)) or abs(x - y) > TOLERANCE


def verify_submission(folder: Path | str) -> VerifyReport:
    """Re-score a run folder's records with its env's scorer and check its claimed summary.

    Raises :class:`StoreError` only when ``folder`` is not a folder at all; anything wrong inside
    it (missing or corrupt files, a score or summary that does not match) is a rejection reason.
    """
    path = Path(folder)
    if not path.is_dir():
        raise StoreError(f"No run folder at {path}." if not path.exists() else f"{path} is not a folder.")
    report = VerifyReport(path)
    reject = report.reasons.append
    try:
        run = load_run_folder(path)
    except StoreError as exc:
        reject(str(exc))
        return report
    judge = run.meta["config"].get("judge")
    if judge or any(r.get("judge") for records in run.records.values() for r in records):
        reject(f"scored by an LLM judge ({judge or 'see the records'}); its verdicts cannot be re-scored offline")
        return report
    if run.scorer is None:
        reject("run.json names no scorer (env_spec.scoring.scorer)")
        return report
    try:
        scorer = get_scorer(run.scorer)
    except KeyError as exc:
        reject(str(exc.args[0]))
        return report

    for mode, records in run.records.items():
        where = f"{mode}.jsonl"
        keys = [str(r["key"]) for r in records]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            reject(f"{where}: key(s) recorded more than once: {', '.join(duplicates[:5])}")
        rescored = []
        for record in records:
            report.records_checked += 1
            label = f"{where} {record['key']}"
            if record.get("mode", mode) != mode:
                reject(f"{label}: the record says mode {record.get('mode')!r}")
            gold = record.get("gold")
            if gold is None:
                reject(f"{label}: no gold answer to re-score against")
                rescored.append({**record, "score": 0.0})
                continue
            prediction = record.get("prediction")
            task = Task(
                id=str(record["task_id"]), question=str(record.get("question") or ""), answer=str(gold),
                family=str(record.get("family") or ""), aliases=tuple(map(str, record.get("aliases") or ())),
            )
            metrics = scorer.score(None if prediction is None else str(prediction), task)
            score = metrics[scorer.primary]
            if _differs(record["score"], score):
                reject(f"{label}: claims score {record['score']!r}, re-scored {score!r} with {scorer.name}")
            claimed_metrics = record.get("metrics") or {}
            for name, value in metrics.items():
                if name in claimed_metrics and _differs(claimed_metrics[name], value):
                    reject(f"{label}: claims {name} {claimed_metrics[name]!r}, re-scored {value!r}")
            rescored.append({**record, "score": score})
        report.summaries[mode] = summarize(mode, rescored)

    if run.summaries is None:
        reject("no summary.json: the run did not finish")
        return report
    for mode in sorted(set(run.summaries) - set(run.records)):
        reject(f"summary.json reports mode {mode!r} but there is no {mode}.jsonl")
    for mode, recomputed in report.summaries.items():
        claimed = run.summaries.get(mode)
        if claimed is None:
            reject(f"summary.json has no entry for mode {mode!r}")
            continue
        if claimed.get("n") != recomputed.n:
            reject(f"summary.json {mode}: claims n={claimed.get('n')!r}, the records hold {recomputed.n}")
        if _differs(claimed.get("accuracy"), recomputed.accuracy):
            reject(
                f"summary.json {mode}: claims accuracy {claimed.get('accuracy')!r}, "
                f"recomputed {recomputed.accuracy!r}"
            )
    return report


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


@dataclass
class LeaderboardVerifyConfig:
    """Re-score a submitted run folder and check its claimed summary; exit code 1 if rejected."""

    folder: Path
    """The run folder to check (``<out>/<name>/`` of ``matpo-bench run``)."""


def expand_runs(runs: Sequence[str] | str) -> list[Path]:
    """Run folders named by paths or glob patterns; a pattern must match at least one run folder."""
    folders: list[Path] = []
    for entry in [runs] if isinstance(runs, str) else runs:
        if any(ch in entry for ch in "*?["):
            matched = [Path(p) for p in sorted(glob.glob(entry)) if (Path(p) / "run.json").is_file()]
            if not matched:
                raise StoreError(f"No run folders (folders with a run.json) match {entry!r}.")
            folders += matched
        else:
            folders.append(Path(entry))
    return list(dict.fromkeys(folders))


def leaderboard_build(config: LeaderboardBuildConfig, *, stream: TextIO | None = None) -> LeaderboardFiles:
    """``matpo-bench leaderboard build``."""
    stream = stream or sys.stdout
    folders = expand_runs(config.runs)
    with ResultsStore(config.store if config.store is not None else ":memory:") as store:
        imported = [run_id for folder in folders for run_id in store.import_run(folder)]
        files = build_leaderboard(store, config.out)
    where = f" into {config.store}" if config.store is not None else ""
    print(f"Imported {len(imported)} run mode(s) from {len(folders)} folder(s){where}.", file=stream)
    print(f"Leaderboard ({files.rows} rows): {files.markdown}, {files.html}", file=stream)
    return files


def leaderboard_verify(config: LeaderboardVerifyConfig, *, stream: TextIO | None = None) -> int:
    """``matpo-bench leaderboard verify``: 0 when the submission checks out, 1 when it is rejected."""
    report = verify_submission(config.folder)
    print(report.format(), file=stream or sys.stdout)
    return 0 if report.ok else 1
