"""Tasks from a local JSONL file: one ``{"question", "answer", ...}`` object per line."""

from __future__ import annotations

import json
from pathlib import Path

from matpo_gym.data.benchmarks import DatasetUnavailable
from matpo_gym.data.tasks import Task


def load_tasks_jsonl(path: Path, family: str = "custom") -> tuple[Task, ...]:
    if not path.is_file():
        raise DatasetUnavailable(f"Task file {path} does not exist.")
    tasks = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row.get("answer"), (str, int, float)):
                raise TypeError(f"'answer' must be a string or a number, got {type(row.get('answer')).__name__}")
            tasks.append(
                Task(
                    id=str(row.get("id", number)),
                    question=row["question"],
                    answer=str(row["answer"]),
                    family=row.get("family", family),
                    root_url=row.get("root_url"),
                    aliases=_aliases(row),
                    metadata=row.get("metadata", {}),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetUnavailable(
                f"{path}:{number}: each line must be a JSON object with 'question' and 'answer' ({exc})."
            ) from None
    return tuple(tasks)


def _aliases(row: dict) -> tuple[str, ...]:
    """``aliases`` (or MuSiQue's ``answer_aliases``): a list of strings, or one string (not its
    characters, each of which would then count as a right answer)."""
    value = row.get("aliases", row.get("answer_aliases", ()))
    if isinstance(value, str):
        value = [value]
    return tuple(str(v) for v in value if str(v).strip())
