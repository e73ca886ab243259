"""Per-question results as JSON Lines, appended atomically and resumable.

Each record is one ``os.write`` of a full line to a file opened in append mode, then fsync'd, so
a crash loses at most the episode in flight. A line cut short by a crash is dropped (and the file
repaired) when the file is next opened, and finished keys are skipped on resume.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (:func:`write_bytes_atomic`)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    write_bytes_atomic(path, text.encode("utf-8"))


def question_means(records: Sequence[dict[str, Any]], keys: set[str] | None = None) -> dict[str, float]:
    """Task id -> mean score over that question's samples (records outside ``keys`` are ignored), in
    task-id order: a bootstrap over them draws the same resamples however often the run resumed."""
    by_question: dict[str, list[float]] = {}
    for record in records:
        if keys is None or record["key"] in keys:
            by_question.setdefault(record["task_id"], []).append(float(record["score"]))
    return {task: sum(scores) / len(scores) for task, scores in sorted(by_question.items())}


def question_changes(treated: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Task id -> the treated records' mean score minus the reference's, on the questions both played
    (each question its own control), in task-id order."""
    treated_scores, reference_scores = question_means(treated), question_means(reference)
    return {task: score - reference_scores[task] for task, score in treated_scores.items() if task in reference_scores}


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The complete records of a JSONL file (none when it is missing), and whether any line was
    left out because it does not parse (a crash in the middle of a write cuts the last one short)."""
    if not path.is_file():
        return [], False
    records, cut = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            cut = True
    return records, cut


class ResultsFile:
    """An append-only JSONL file of result records keyed by ``record["key"]``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[dict[str, Any]] = self._load()

    def _load(self) -> list[dict[str, Any]]:
        records, cut = read_jsonl(self.path)
        if cut:  # a crash cut a line short: keep the complete records only
            self._rewrite(records)
        return records

    def _rewrite(self, records: Iterable[dict[str, Any]]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    @property
    def done_keys(self) -> set[str]:
        return {record["key"] for record in self.records}

    def append(self, record: dict[str, Any]) -> None:
        """Add one record durably."""
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records.append(record)
