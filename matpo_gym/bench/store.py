"""A SQLite results store: every mode of every run, with its per-question records.

``matpo-bench run`` writes a run folder (``run.json``, one ``<mode>.jsonl`` per mode,
``summary.json``). :class:`ResultsStore` imports such folders into one SQLite file (WAL mode), one
``runs`` row per mode file and one ``records`` row per question, so that leaderboards and analyses
read a single file. Trajectories stay in the run folder; the store keeps everything else.

>>> store = ResultsStore(":memory:")
>>> store.runs()
[]

Importing is idempotent: a run is identified by its folder name and mode (``<name>/<mode>``), and
importing it again replaces the stored copy (useful after a run resumed and added questions).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matpo_gym.bench.protocol import PlannedEpisode
from matpo_gym.bench.results import write_bytes_atomic
from matpo_gym.bench.run_folder import StoreError, load_run_folder, read_records
from matpo_gym.bench.summary import summarize

if TYPE_CHECKING:
    from typing_extensions import Self

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,          -- "<run name>/<mode>"
    name TEXT NOT NULL,
    env TEXT NOT NULL,
    policy TEXT NOT NULL,
    mode TEXT NOT NULL,
    noise REAL NOT NULL,
    seed INTEGER,
    scorer TEXT,
    source TEXT,                  -- the folder or file it was imported from
    config TEXT NOT NULL,         -- JSON
    versions TEXT NOT NULL,       -- JSON
    started TEXT,
    imported_at TEXT NOT NULL,
    summary TEXT NOT NULL         -- JSON, recomputed from the imported records
);
CREATE TABLE records (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,         -- position in the results file
    key TEXT NOT NULL,
    task_id TEXT,
    family TEXT,
    score REAL NOT NULL,
    reward REAL,
    stop_reason TEXT,
    prediction TEXT,
    gold TEXT,
    metrics TEXT,                 -- JSON
    record TEXT NOT NULL,         -- JSON, the full record without trajectories
    PRIMARY KEY (run_id, key)
);
CREATE INDEX records_task ON records(task_id);
"""

_META_KEYS = ("name", "env", "policy", "mode", "noise", "seed", "scorer", "config", "versions", "started")


@dataclass(frozen=True)
class StoredRun:
    """One mode of one run, as a ``runs`` row."""

    id: str
    name: str
    env: str
    policy: str
    mode: str
    noise: float
    seed: int | None
    scorer: str | None
    source: str | None
    config: dict[str, Any]
    versions: dict[str, Any]
    started: str | None
    imported_at: str
    summary: dict[str, Any]
    """The mode's :class:`~matpo_gym.bench.summary.ModeSummary`, recomputed from the stored records."""

    def meta(self) -> dict[str, Any]:
        """The metadata :meth:`ResultsStore.import_jsonl` takes to store these records again."""
        return {key: getattr(self, key) for key in _META_KEYS}


def write_jsonl_atomic(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Write records as JSON Lines atomically (:func:`~matpo_gym.bench.results.write_bytes_atomic`)."""
    text = "".join(json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records)
    write_bytes_atomic(path, text.encode("utf-8"))


def _float(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"{where}: expected a number, got {value!r}.") from None
    if math.isnan(number):
        raise StoreError(f"{where}: the value is NaN.")
    return number


class ResultsStore:
    """Runs and their per-question records in one SQLite file (``":memory:"`` for a scratch store)."""

    def __init__(self, path: Path | str):
        self.path = path if str(path) == ":memory:" else Path(path)
        if isinstance(self.path, Path):
            if self.path.is_dir():
                raise StoreError(f"{self.path} is a folder; give the store's file path (e.g. results.sqlite).")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=30)
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path} is not a readable results store ({exc}).") from None
        except StoreError:
            self._db.close()
            raise

    def _init_schema(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            with self._db:
                self._db.executescript(_SCHEMA)
                self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            return
        if "schema_version" not in tables:
            raise StoreError(f"{self.path} is an SQLite file but not a matpo-gym results store.")
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else None
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has results-store schema version {version}; this matpo-gym reads version "
                f"{SCHEMA_VERSION}. Import the run folders into a new store."
            )

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    def import_run(self, folder: Path | str) -> list[str]:
        """Import a run folder, one run per mode file; returns the run ids (``<name>/<mode>``).

        Importing the same folder again replaces what was stored for it.
        """
        run = load_run_folder(folder)
        config = run.meta["config"]
        ids = []
        path = run.path.resolve()
        with self._db:
            for mode, records in run.records.items():
                meta = {
                    "name": run.name,
                    "env": run.env,
                    "policy": str(run.meta.get("policy") or config.get("policy", "?")),
                    "mode": mode,
                    "noise": config.get("noise", 0.0),
                    "seed": config.get("seed"),
                    "scorer": run.scorer,
                    "config": config,
                    "versions": run.meta.get("versions") or {},
                    "started": run.meta.get("started"),
                }
                ids.append(self._insert(meta, records, source=str(path / f"{mode}.jsonl"),
                                        planned=run.plan(mode)))
        return ids

    def import_jsonl(self, path: Path | str, meta: Mapping[str, Any]) -> str:
        """Import one results file (e.g. from :meth:`export_jsonl`) as a run; returns its id.

        ``meta`` needs ``name``, ``env`` and ``policy``; ``mode`` defaults to the records' ``mode``
        and the others (``noise``, ``seed``, ``scorer``, ``config``, ``versions``, ``started``)
        are optional. :meth:`StoredRun.meta` gives all of them for a stored run.
        """
        path = Path(path)
        unknown = sorted(set(meta) - set(_META_KEYS))
        if unknown:
            raise StoreError(f"Unknown run metadata key {unknown[0]!r}; valid keys: {', '.join(_META_KEYS)}.")
        missing = [key for key in ("name", "env", "policy") if not meta.get(key)]
        if missing:
            raise StoreError(f"Run metadata for {path} needs {', '.join(map(repr, missing))}.")
        records = read_records(path)
        mode = meta.get("mode")
        if mode is None:
            modes = {record.get("mode") for record in records}
            if len(modes) != 1 or None in modes:
                raise StoreError(f"{path}: give meta['mode']; the records name modes {sorted(map(str, modes))}.")
            mode = modes.pop()
        full = {
            "noise": 0.0, "seed": None, "scorer": None, "config": {}, "versions": {}, "started": None,
            **meta, "mode": mode,
        }
        with self._db:
            return self._insert(full, records, source=str(path.resolve()))

    def _insert(self, meta: Mapping[str, Any], records: Sequence[dict[str, Any]], *, source: str,
                planned: Sequence[PlannedEpisode] | None = None) -> str:
        """Replace run ``<name>/<mode>`` with these records (inside the caller's transaction); with
        ``planned``, its summary counts exactly the planned episodes (missing ones as 0)."""
        run_id = f"{meta['name']}/{meta['mode']}"
        stored = self._db.execute("SELECT source FROM runs WHERE id = ?", (run_id,)).fetchone()
        if stored is not None and Path(stored[0]).resolve() != Path(source).resolve():
            raise StoreError(f"{source}: a run named {run_id!r} is already stored, from {stored[0]}; give one of "
                             "them another name (matpo-bench run --name) or build from a new store.")
        rows = []
        for seq, record in enumerate(records):
            where = f"{source}, record {record.get('key')!r}"
            record = {k: v for k, v in record.items() if k != "trajectories"}
            prediction = record.get("prediction")
            rows.append((
                run_id, seq, str(record["key"]), record.get("task_id"), record.get("family"),
                _float(record["score"], f"{where}: score"), _float(record["reward"], f"{where}: reward"),
                record.get("stop_reason"), None if prediction is None else str(prediction),
                None if record.get("gold") is None else str(record["gold"]),
                json.dumps(record.get("metrics") or {}),
                json.dumps(record, ensure_ascii=False, default=str),
            ))
        keys = [row[2] for row in rows]
        if len(set(keys)) != len(keys):
            duplicate = next(key for key in keys if keys.count(key) > 1)
            raise StoreError(f"{source}: key {duplicate!r} appears more than once.")
        try:
            summary = summarize(str(meta["mode"]), records, planned=planned, seed=int(meta.get("seed") or 0)).to_dict()
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{source}: a record's stats cannot be summarised ({exc!r}).") from None
        self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,))  # cascades to its records
        self._db.execute(
            "INSERT INTO runs (id, name, env, policy, mode, noise, seed, scorer, source, config, versions,"
            " started, imported_at, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id, str(meta["name"]), str(meta["env"]), str(meta["policy"]), str(meta["mode"]),
                _float(meta.get("noise") or 0.0, f"{source}: noise"), meta.get("seed"), meta.get("scorer"),
                source, json.dumps(meta.get("config") or {}, default=str),
                json.dumps(meta.get("versions") or {}, default=str), meta.get("started"),
                time.strftime("%Y-%m-%dT%H:%M:%S%z"), json.dumps(summary),
            ),
        )
        self._db.executemany(
            "INSERT INTO records (run_id, seq, key, task_id, family, score, reward, stop_reason, prediction,"
            " gold, metrics, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return run_id

    def delete(self, run_id: str) -> None:
        """Remove a run and its records."""
        self.run(run_id)
        with self._db:
            self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # -- reading -------------------------------------------------------------------------------

    @staticmethod
    def _stored_run(row: sqlite3.Row) -> StoredRun:
        return StoredRun(
            id=row["id"], name=row["name"], env=row["env"], policy=row["policy"], mode=row["mode"],
            noise=row["noise"], seed=row["seed"], scorer=row["scorer"], source=row["source"],
            config=json.loads(row["config"]), versions=json.loads(row["versions"]), started=row["started"],
            imported_at=row["imported_at"], summary=json.loads(row["summary"]),
        )

    def runs(self) -> list[StoredRun]:
        """Every stored run, ordered by env, name and mode."""
        rows = self._db.execute("SELECT * FROM runs ORDER BY env, name, mode").fetchall()
        return [self._stored_run(row) for row in rows]

    def run(self, run_id: str) -> StoredRun:
        """One stored run; a clear error lists the known ids."""
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            known = [r[0] for r in self._db.execute("SELECT id FROM runs ORDER BY id")]
            raise StoreError(f"No run {run_id!r} in {self.path}; stored runs: {', '.join(known) or 'none'}.")
        return self._stored_run(row)

    def records(self, run_id: str) -> list[dict[str, Any]]:
        """A run's records (without trajectories), in their original order."""
        self.run(run_id)
        rows = self._db.execute("SELECT record FROM records WHERE run_id = ? ORDER BY seq", (run_id,))
        return [json.loads(row[0]) for row in rows]

    def export_jsonl(self, run_id: str, path: Path | str) -> Path:
        """Write a run's records to a JSONL file that :meth:`import_jsonl` reads back."""
        path = Path(path)
        write_jsonl_atomic(path, self.records(run_id))
        return path
