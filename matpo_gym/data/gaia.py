"""GAIA-text: the 103 text-only questions of GAIA's 2023 validation set, as tasks.

GAIA (``gaia-benchmark/GAIA``, gated, config ``2023_all``, split ``validation``: 165 rows) has the
columns ``task_id``, ``Question``, ``Level``, ``Final answer``, ``file_name`` and ``Annotator
Metadata``. GAIA-text is *not* "the rows without an attached file": it is the fixed list of 103
task ids published with WebThinker (``data/GAIA/dev.json`` in RUC-NLPIR/WebThinker), which the
MATPO paper evaluates on. matpo-gym ships only those ids (``gaia_text_ids.txt``, one per line),
never the questions or answers, and keeps the rows whose ``task_id`` is listed.

GAIA's own quasi-exact match is the ``gaia`` scorer (:func:`~matpo_gym.scoring.metrics.gaia_match`).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Literal

from matpo_gym.data.benchmarks import (
    BENCHMARKS,
    DatasetUnavailable,
    as_mapping,
    as_text,
    column,
    is_missing,
    read_rows,
    require_columns,
)
from matpo_gym.data.tasks import Task

log = logging.getLogger(__name__)

GAIA_TEXT_IDS = Path(__file__).with_name("gaia_text_ids.txt")
"""The shipped list of GAIA-text task ids."""
GAIA_TEXT_COUNT = 103
"""How many ids the list must hold."""
GAIA_TEXT_SOURCE = (
    "WebThinker's GAIA dev set (https://github.com/RUC-NLPIR/WebThinker, file data/GAIA/dev.json: "
    "the \"task_id\" of each of its 103 entries)"
)


class GaiaCoverageWarning(UserWarning):
    """Some GAIA-text ids are not in the data that was loaded (a partial copy, or the wrong split)."""


def load_gaia(
    *,
    path: str | os.PathLike[str] | None = None,
    split: str = "validation",
    subset: Literal["text", "all"] = "text",
    ids_file: str | os.PathLike[str] | None = None,
) -> list[Task]:
    """GAIA tasks from a local file or folder (``path``), else the hub (needs ``HF_TOKEN``).

    ``subset="text"`` keeps the GAIA-text questions (the ids in ``ids_file``, by default the
    shipped list) in dataset order; when some listed ids are missing from the data, a
    :class:`GaiaCoverageWarning` says how many were found. ``subset="all"`` keeps every row.
    """
    if subset not in ("text", "all"):
        raise ValueError(f"subset must be 'text' or 'all', got {subset!r}.")
    wanted = gaia_text_ids(ids_file) if subset == "text" else None  # a missing list fails before any download
    hub = BENCHMARKS["gaia"]
    rows, where = read_rows(hub, path=path, split=split)
    require_columns(rows, where, "GAIA", ("task_id",), ("Question",), ("Final answer",))
    tasks = [gaia_task(row, split=split) for row in rows]
    if wanted is None:
        return tasks
    listed = set(wanted)
    kept = [task for task in tasks if task.id in listed]
    if not kept:
        raise DatasetUnavailable(
            f"None of the {len(wanted)} GAIA-text task ids is in {where} ({len(tasks)} rows). GAIA-text "
            f"comes from the 2023 validation split: load config {hub.config!r}, split 'validation'."
        )
    message = f"GAIA-text: found {len(kept)} of the {len(wanted)} listed task ids in {where} ({len(tasks)} rows)."
    if len(kept) < len(wanted):
        warnings.warn(f"{message} The missing ones are skipped.", GaiaCoverageWarning, stacklevel=2)
    else:
        log.info(message)
    return kept


def gaia_text_ids(ids_file: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """The GAIA-text task ids, in file order (``#`` lines are comments); exactly 103 or an error."""
    path = Path(ids_file) if ids_file is not None else GAIA_TEXT_IDS
    if not path.is_file():
        raise DatasetUnavailable(
            f"The GAIA-text id list {str(path)!r} is missing. GAIA-text is a fixed list of "
            f"{GAIA_TEXT_COUNT} GAIA 2023 validation task ids, taken from {GAIA_TEXT_SOURCE}. Put those "
            "ids in that file, one per line (ids only, never the questions), or load every row with "
            "subset='all'."
        )
    ids = [
        line.strip() for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    duplicates = len(ids) - len(set(ids))
    if len(ids) != GAIA_TEXT_COUNT or duplicates:
        raise DatasetUnavailable(
            f"{str(path)!r} lists {len(ids)} task ids ({duplicates} repeated); GAIA-text has exactly "
            f"{GAIA_TEXT_COUNT} distinct ids, from {GAIA_TEXT_SOURCE}."
        )
    return tuple(ids)


def gaia_task(row: dict[str, Any], *, split: str = "validation") -> Task:
    """One GAIA row as a task."""
    return Task(
        id=as_text(column(row, "task_id")),
        question=as_text(column(row, "Question")),
        answer=as_text(column(row, "Final answer", "final_answer")),
        family="gaia",
        metadata={
            "level": _level(column(row, "Level")),
            "file_name": as_text(column(row, "file_name")),
            "annotator_metadata": as_mapping(column(row, "Annotator Metadata", "annotator_metadata")),
            "split": split,
        },
    )


def _level(value: Any) -> int | None:
    if is_missing(value):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None
