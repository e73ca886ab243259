"""WebWalkerQA (``callanwu/WebWalkerQA``: ``main``, 680 questions, and ``silver``) as tasks.

Columns: ``question``, ``answer``, ``root_url`` (where the agent starts; it may only follow links
under it) and ``info`` with ``domain``, ``type`` (``single_source`` | ``multi_source``),
``difficulty_level`` (``easy`` | ``medium`` | ``hard``), ``lang``, ``source_website`` and
``golden_path``. ``info`` may arrive as a dict (parquet, jsonl) or as a JSON string (csv). The
capitalised spelling of the GitHub release (``Question``, ``Root_Url``, ``Info`` with ``Hop``,
``Language``, ...) is read too. The task id is an ``id`` column when there is one, else the row's
position in the split.

The authors report accuracy per ``type`` x ``difficulty_level`` and grade answers with an LLM
(correct / incorrect): :class:`~matpo_gym.scoring.judge.LLMJudge` with ``kind="webwalker"``.
"""

from __future__ import annotations

import os
from typing import Any

from matpo_gym.data.benchmarks import (
    BENCHMARKS,
    as_mapping,
    as_str_list,
    as_text,
    column,
    read_rows,
    require_columns,
    row_index,
)
from matpo_gym.data.tasks import Task

INFO_FIELDS: dict[str, tuple[str, ...]] = {
    "domain": ("domain",),
    "type": ("type", "hop"),
    "difficulty_level": ("difficulty_level", "difficulty"),
    "lang": ("lang", "language"),
    "source_website": ("source_website", "source_websites"),
    "golden_path": ("golden_path",),
}
"""Metadata key -> the ``info`` keys it is read from (any case)."""
_LISTS = ("source_website", "golden_path")


def load_webwalkerqa(*, path: str | os.PathLike[str] | None = None, split: str = "main") -> list[Task]:
    """WebWalkerQA tasks from a local file or folder (``path``), else from the hub."""
    hub = BENCHMARKS["webwalkerqa"]
    rows, where = read_rows(hub, path=path, split=split)
    require_columns(rows, where, "WebWalkerQA", ("question",), ("answer",), ("root_url",))
    return [webwalkerqa_task(row, number, split=split) for number, row in enumerate(rows)]


def webwalkerqa_task(row: dict[str, Any], number: int, *, split: str = "main") -> Task:
    """One WebWalkerQA row as a task."""
    root_url = as_text(column(row, "root_url"))
    return Task(
        id=row_index(row, number, ("id",)),
        question=as_text(column(row, "question")),
        answer=as_text(column(row, "answer")),
        family="webwalkerqa",
        root_url=root_url or None,
        metadata={**info_metadata(column(row, "info")), "split": split},
    )


def info_metadata(value: Any) -> dict[str, Any]:
    """The ``info`` cell (dict or JSON string) as task metadata; lists for the two path fields,
    ``type`` and ``difficulty_level`` in lower case.

    >>> info_metadata('{"domain": "conference", "type": "multi_source", '
    ...               '"golden_path": "root->venue"}')  # doctest: +NORMALIZE_WHITESPACE
    {'domain': 'conference', 'type': 'multi_source', 'difficulty_level': '', 'lang': '',
     'source_website': [], 'golden_path': ['root->venue']}
    """
    info = as_mapping(value)
    lowered = {str(key).lower(): item for key, item in info.items()}
    out: dict[str, Any] = {}
    for name, keys in INFO_FIELDS.items():
        item = next((lowered[k] for k in keys if k in lowered), None)
        out[name] = as_str_list(item) if name in _LISTS else as_text(item)
    # one spelling for the two fields results are grouped by ("Multi-source" -> "multi_source")
    for name in ("type", "difficulty_level"):
        out[name] = out[name].lower().replace("-", "_").replace(" ", "_")
    return out
