"""The paper's training data: MuSiQue, plain (local files) or as filtered for MATPO (the hub).

**Plain MuSiQue** (``source.kind = "musique"``) is not on the Hugging Face Hub; its release
(https://github.com/StonyBrookNLP/musique) has one JSON object per line in
``musique_ans_v1.0_{train,dev,test}.jsonl`` (and ``musique_full_v1.0_*`` with unanswerable
contrast questions) with the keys ``id``, ``question``, ``answer``, ``answer_aliases``,
``answerable``, ``paragraphs`` and ``question_decomposition``. Only answerable questions with an
answer are kept (the ``full`` files repeat each id, once unanswerable; an id is kept once). The
hop count comes from the id prefix (``2hop__``, ``3hop1__``, ``4hop3__``, ...), else from the
length of ``question_decomposition``; difficulty follows the offline world's MuSiQue family
(2 hops easy, 3 medium, 4 hard).

**MATPO-data** (``source.kind = "matpo_data"``, hub ``veggiebird/MATPO-data``, split ``train``:
the 6,175 filtered MuSiQue questions the paper trains on). The reference's preprocessing scripts
write verl-style parquet files (``train_musique.parquet``; the ``val_*`` files next to it are
repeated copies of the evaluation benchmarks and are not read for ``train``) with the columns
``data_source``, ``prompt`` (the chat: system prompt, then the question followed by a ``\\boxed{}``
format instruction), ``ability``, ``reward_model`` (``{"style": "rule", "ground_truth": answer}``)
and ``extra_info`` (``split``, ``index``, ``question``, ``answer``, ...). The file itself could not
be inspected here, so the loader also accepts the other common layouts: plain ``question`` /
``answer`` columns (``problem``, ``ground_truth``, ``golden_answers`` too), a list-valued or
``{"target": [...]}`` ground truth (first item the answer, the rest aliases), and plain MuSiQue
rows. The question is ``extra_info.question`` when present, else the last user message of
``prompt`` with the format instruction removed. The reference's own system prompt is not used: the
env supplies its planner and worker prompts.
"""

from __future__ import annotations

import os
import re
from typing import Any

from matpo_gym.data.benchmarks import (
    BENCHMARKS,
    DatasetUnavailable,
    as_mapping,
    as_str_list,
    as_text,
    column,
    is_missing,
    read_rows,
    require_columns,
)
from matpo_gym.data.tasks import Task

HOP_DIFFICULTY = {2: "easy", 3: "medium", 4: "hard"}
"""Difficulty by hop count, as in the offline world's MuSiQue-like family."""
FORMAT_INSTRUCTION = (
    "You should follow the format instruction in the requestion strictly and wrap the final answer "
    "in \\boxed{}."
)
"""What the reference appends to every question (typo included); removed from the question text."""
_HOPS = re.compile(r"^(\d+)hop", re.IGNORECASE)


def load_musique(*, path: str | os.PathLike[str] | None = None, split: str = "train") -> list[Task]:
    """Answerable MuSiQue questions from local files (``path``: a jsonl file, or a folder)."""
    hub = BENCHMARKS["musique"]
    rows, where = read_rows(hub, path=path, split=split)
    require_columns(rows, where, "MuSiQue", ("id",), ("question",), ("answer",))
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, row in enumerate(rows):
        task = musique_task(row, number, split=split)
        if task is not None and task.id not in seen:
            seen.add(task.id)
            tasks.append(task)
    if not tasks:
        raise DatasetUnavailable(
            f"{where} has no answerable MuSiQue question with an answer ({len(rows)} rows); the "
            "test split has no answers: train on 'train' and evaluate on 'dev'."
        )
    return tasks


def musique_task(
    row: dict[str, Any], number: int, *, split: str = "train", source: str = "musique"
) -> Task | None:
    """One MuSiQue row as a task; None for an unanswerable question or one without an answer."""
    answerable = column(row, "answerable")
    if answerable is not None and not is_missing(answerable) and not _truthy(answerable):
        return None
    question, answer = as_text(column(row, "question")), as_text(column(row, "answer"))
    if not question or not answer:
        return None
    task_id = as_text(column(row, "id")) or str(number)
    hops = hop_count(task_id, column(row, "question_decomposition"))
    aliases = _aliases(answer, as_str_list(column(row, "answer_aliases")))
    return Task(
        id=task_id,
        question=question,
        answer=answer,
        family="musique",
        aliases=aliases,
        metadata={**_hop_metadata(hops), "split": split, "source": source},
    )


def load_matpo_data(
    *, path: str | os.PathLike[str] | None = None, split: str = "train"
) -> list[Task]:
    """The filtered MuSiQue questions of ``veggiebird/MATPO-data`` (``path``, else the hub)."""
    hub = BENCHMARKS["matpo_data"]
    rows, where = read_rows(hub, path=path, split=split)
    require_columns(
        rows, where, "MATPO-data",
        ("prompt", "question", "problem", "extra_info"),
        ("reward_model", "answer", "ground_truth", "golden_answers", "extra_info"),
    )
    mapped = (matpo_data_task(row, number, split=split) for number, row in enumerate(rows))
    tasks = [task for task in mapped if task is not None]
    if not tasks:
        raise DatasetUnavailable(
            f"{where} has no row with both a question and an answer ({len(rows)} rows; columns: "
            f"{', '.join(map(repr, rows[0]))})."
        )
    return tasks


def matpo_data_task(row: dict[str, Any], number: int, *, split: str = "train") -> Task | None:
    """One MATPO-data row (verl layout, plain question/answer, or plain MuSiQue) as a task."""
    if "question_decomposition" in row or "answerable" in row:
        return musique_task(row, number, split=split, source="matpo_data")
    extra = as_mapping(column(row, "extra_info"))
    question = as_text(extra.get("question")) or as_text(column(row, "question", "problem"))
    if not question:
        question = _user_message(column(row, "prompt"))
    golds = _ground_truth(column(row, "reward_model"))
    if not golds:
        golds = _answers(column(row, "answer", "ground_truth", "golden_answers"))
    if not golds:
        golds = _answers(extra.get("answer"))
    if not question or not golds:
        return None
    meta = as_mapping(extra.get("metadata"))
    ids = (as_text(column(row, "id")), as_text(meta.get("id")), as_text(extra.get("index")))
    task_id = next((text for text in ids if text), str(number))
    decomposition = meta.get("question_decomposition", column(row, "question_decomposition"))
    listed = [*as_str_list(column(row, "answer_aliases")), *as_str_list(meta.get("answer_aliases"))]
    return Task(
        id=task_id,
        question=question,
        answer=golds[0],
        family="musique",
        aliases=_aliases(golds[0], [*golds[1:], *listed]),
        metadata={
            **_hop_metadata(hop_count(task_id, decomposition)),
            "split": split,
            "source": "matpo_data",
            "data_source": as_text(column(row, "data_source")),
        },
    )


def hop_count(task_id: str, decomposition: Any = None) -> int | None:
    """Hops of a MuSiQue question: the id's ``<n>hop`` prefix, else the decomposition's length.

    >>> hop_count("3hop1__9285_5188_23307")
    3
    >>> hop_count("q17", [{"question": "a"}, {"question": "b"}])
    2
    >>> hop_count("q17") is None
    True
    """
    match = _HOPS.match(task_id)
    if match:
        return int(match.group(1))
    if isinstance(decomposition, (list, tuple)) and decomposition:
        return len(decomposition)
    return None


def _hop_metadata(hops: int | None) -> dict[str, Any]:
    if hops is None:
        return {"hops": None}
    return {"hops": hops, "difficulty": HOP_DIFFICULTY.get(hops, "hard" if hops > 4 else "easy")}


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _aliases(answer: str, candidates: list[str]) -> tuple[str, ...]:
    """Distinct aliases other than the answer itself, in order."""
    out: list[str] = []
    for alias in candidates:
        if alias and alias != answer and alias not in out:
            out.append(alias)
    return tuple(out)


def _answers(value: Any) -> list[str]:
    """A ground-truth cell as a list of answers: a string, a list, or ``{"target": [...]}``."""
    if isinstance(value, dict):
        value = value.get("target", value.get("answer"))
    return as_str_list(value)


def _ground_truth(value: Any) -> list[str]:
    """The answers in a verl ``reward_model`` cell (``{"style": ..., "ground_truth": ...}``)."""
    reward_model = as_mapping(value)
    return _answers(reward_model.get("ground_truth")) if reward_model else []


def _user_message(prompt: Any) -> str:
    """The last user message of a chat ``prompt``, without the reference's format instruction."""
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, (list, tuple)):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        text = as_text(users[-1].get("content")) if users else ""
    else:
        return ""
    return text.replace(FORMAT_INSTRUCTION, "").strip()
