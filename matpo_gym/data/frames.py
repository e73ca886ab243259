"""FRAMES (``google/frames-benchmark``, one ``test`` split of 824 rows) as tasks.

Columns used: ``Prompt`` (the question), ``Answer``, ``reasoning_types`` (``"Numerical reasoning |
Temporal reasoning"``), ``wiki_links`` (a Python list written as a string) and ``wikipedia_link_1``,
``wikipedia_link_2``, ... (one article per column; the last may be ``wikipedia_link_11+``). The hub
file has no id column in some revisions and an index column (``Unnamed: 0``) in others: the task id
is that index when present, else the row's position.

The authors score FRAMES with an LLM judge ("is the gold answer's meaning present in the
response"): :class:`~matpo_gym.scoring.judge.LLMJudge` with ``kind="frames"``.
"""

from __future__ import annotations

import ast
import os
import re
from typing import Any

from matpo_gym.data.benchmarks import (
    BENCHMARKS,
    as_text,
    column,
    is_missing,
    read_rows,
    require_columns,
    row_index,
)
from matpo_gym.data.tasks import Task

_LINK_COLUMN = re.compile(r"^wikipedia_link_(\d+)\+?$", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s'\",\]\[]+")


def load_frames(*, path: str | os.PathLike[str] | None = None, split: str = "test") -> list[Task]:
    """FRAMES tasks from a local file or folder (``path``), else from the hub."""
    hub = BENCHMARKS["frames"]
    rows, where = read_rows(hub, path=path, split=split)
    require_columns(rows, where, "FRAMES", ("Prompt",), ("Answer",))
    return [frames_task(row, number, split=split) for number, row in enumerate(rows)]


def frames_task(row: dict[str, Any], number: int, *, split: str = "test") -> Task:
    """One FRAMES row as a task (``number`` is its position, the id when there is no index column)."""
    return Task(
        id=row_index(row, number),
        question=as_text(column(row, "Prompt")),
        answer=as_text(column(row, "Answer")),
        family="frames",
        metadata={
            "reasoning_types": reasoning_types(column(row, "reasoning_types")),
            "wiki_links": parse_links(column(row, "wiki_links")),
            "wikipedia_links": wikipedia_link_columns(row),
            "split": split,
        },
    )


def reasoning_types(value: Any) -> list[str]:
    """``"Numerical reasoning | Tabular reasoning"`` -> ``["Numerical reasoning", "Tabular reasoning"]``.

    >>> reasoning_types(" Temporal reasoning|Multiple constraints ")
    ['Temporal reasoning', 'Multiple constraints']
    """
    if isinstance(value, (list, tuple)):
        return [as_text(v) for v in value if not is_missing(v)]
    return [part.strip() for part in as_text(value).split("|") if part.strip()]


def parse_links(value: Any) -> list[str]:
    """The ``wiki_links`` cell: a list written as a Python literal; a malformed one gives the URLs
    that can be found in it.

    >>> parse_links("['https://en.wikipedia.org/wiki/A', 'https://en.wikipedia.org/wiki/B']")
    ['https://en.wikipedia.org/wiki/A', 'https://en.wikipedia.org/wiki/B']
    >>> parse_links("['https://en.wikipedia.org/wiki/A', 'https://en.wikipedia.org/wi")
    ['https://en.wikipedia.org/wiki/A', 'https://en.wikipedia.org/wi']
    """
    if is_missing(value):
        return []
    if isinstance(value, (list, tuple)):
        return [as_text(v) for v in value if not is_missing(v)]
    text = as_text(value)
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _URL.findall(text)
    if isinstance(parsed, str):
        return [parsed.strip()] if parsed.strip() else []
    if isinstance(parsed, (list, tuple)):
        return [as_text(v) for v in parsed if not is_missing(v)]
    return _URL.findall(text)


def wikipedia_link_columns(row: dict[str, Any]) -> list[str]:
    """The non-empty ``wikipedia_link_N`` cells in numeric order (``_2`` before ``_10``)."""
    numbered = sorted(
        (int(match.group(1)), key) for key in row if (match := _LINK_COLUMN.match(key))
    )
    links: list[str] = []
    for _, key in numbered:
        value = row[key]
        if isinstance(value, (list, tuple)) or as_text(value).startswith("["):
            links.extend(parse_links(value))  # a cell holding several links (``wikipedia_link_11+``)
        elif not is_missing(value):
            links.append(as_text(value))
    return links
