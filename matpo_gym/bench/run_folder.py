"""Reading a run folder of ``matpo-bench run`` (``run.json``, ``<mode>.jsonl``, ``summary.json``),
with a clear :class:`StoreError` that names what is missing or corrupt and how to repair it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matpo_gym.bench.protocol import PlannedEpisode
from matpo_gym.envs.spec import MODES

REQUIRED_RECORD_KEYS = ("key", "task_id", "score", "reward", "stop_reason", "stats", "turns")
"""What every per-question record must carry (the shape ``matpo-bench run`` writes)."""


class StoreError(ValueError):
    """A run folder, results file or store file that cannot be read as one."""


class UnreadableRun(StoreError):
    """A run folder that cannot be read (yet): unfinished, or a file in it cut or corrupt."""


@dataclass(frozen=True)
class RunFolder:
    """A run folder read from disk: its ``run.json``, records per mode and claimed summaries."""

    path: Path
    meta: dict[str, Any]
    """The parsed ``run.json``."""
    records: dict[str, list[dict[str, Any]]]
    """Mode -> records, in file order."""
    summaries: dict[str, dict[str, Any]] | None
    """Mode -> the summary ``summary.json`` claims; None when the file is missing (unfinished run)."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def env(self) -> str:
        spec = self.meta.get("env_spec") or {}
        return str(spec.get("name") or Path(str(self.meta["config"].get("env", "?"))).stem)

    @property
    def scorer(self) -> str | None:
        scoring = (self.meta.get("env_spec") or {}).get("scoring") or {}
        return scoring.get("scorer")

    def plan(self, mode: str) -> list[PlannedEpisode] | None:
        """The episodes the run planned for ``mode`` (run.json's ``plan``), so a summary counts
        exactly them, missing ones as 0; None for a folder written before plans were recorded."""
        episodes = (self.meta.get("plan") or {}).get(mode)
        if not isinstance(episodes, list):
            return None
        try:
            return [PlannedEpisode(**episode) for episode in episodes]
        except TypeError as exc:
            raise UnreadableRun(f"Corrupt {self.path / 'run.json'}: its {mode} plan ({exc}).") from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnreadableRun(
            f"{path.parent} has no {path.name} ({what}); is it a run folder written by `matpo-bench run`?"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnreadableRun(f"Corrupt {path}: not valid JSON ({exc}).") from None


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of one JSONL results file; a clear error names any bad line.

    Unlike :class:`~matpo_gym.bench.results.ResultsFile`, this never repairs the file: a line cut
    short by a crash is an error here (rerun ``matpo-bench run`` with the same arguments to repair
    and finish it).
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableRun(f"No results file at {path}.")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UnreadableRun(
                    f"Corrupt {path}, line {number}: not valid JSON ({exc.msg}). If a run was cut short, "
                    "rerun the same `matpo-bench run` command to repair and finish it."
                ) from None
            if not isinstance(record, dict):
                raise UnreadableRun(f"Corrupt {path}, line {number}: expected a JSON object.")
            missing = [key for key in REQUIRED_RECORD_KEYS if key not in record]
            if missing:
                raise UnreadableRun(f"{path}, line {number}: the record has no {', '.join(map(repr, missing))}.")
            records.append(record)
    return records


def load_run_folder(folder: Path | str) -> RunFolder:
    """Read a run folder, with a clear :class:`StoreError` for anything missing or corrupt."""
    path = Path(folder)
    if not path.exists():
        raise UnreadableRun(f"No run folder at {path}.")
    if not path.is_dir():
        raise UnreadableRun(f"{path} is not a folder; give a run folder (`<out>/<name>/` of `matpo-bench run`).")
    meta = _read_json(path / "run.json", "the run's metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise UnreadableRun(f"Corrupt {path / 'run.json'}: expected an object with a 'config' table.")
    records: dict[str, list[dict[str, Any]]] = {
        mode: read_records(path / f"{mode}.jsonl")
        for mode in MODES if (path / f"{mode}.jsonl").is_file()
    }
    if not records:
        names = ", ".join(f"{mode}.jsonl" for mode in MODES)
        raise UnreadableRun(f"{path} has no results file ({names}); the run has not finished a question yet.")
    summaries = None
    if (path / "summary.json").is_file():
        data = _read_json(path / "summary.json", "the run's summary")
        if not isinstance(data, list) or not all(isinstance(s, dict) and "mode" in s for s in data):
            raise UnreadableRun(f"Corrupt {path / 'summary.json'}: expected a list of per-mode summaries.")
        summaries = {s["mode"]: s for s in data}
    return RunFolder(path=path, meta=meta, records=records, summaries=summaries)
