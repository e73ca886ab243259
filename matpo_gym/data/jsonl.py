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
            tasks.append(
                Task(
                    id=str(row.get("id", number)),
                    question=row["question"],
                    answer=str(row["answer"]),
                    family=row.get("family", family),
                    root_url=row.get("root_url"),
                    aliases=tuple(row.get("aliases", ())),
                    metadata=row.get("metadata", {}),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetUnavailable(
                f"{path}:{number}: each line must be a JSON object with 'question' and 'answer' ({exc})."
            ) from None
    return tuple(tasks)
