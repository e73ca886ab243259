"""What a planner reads when one of its workers returns: the worker's report, cut to size.

A worker that answered reports its answer (thinking removed unless ``strip_thinking`` is off,
when its whole final message is kept, answer tags removed). A worker stopped at a limit without
being asked for a summary is reported by a note and its last message. The summary budget applies
to every report, so the planner's context grows by at most ``summary_chars`` per worker.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from matpo_gym.core.actions import strip_thinking
from matpo_gym.core.messages import Message

SUMMARY_REQUEST = (
    "You have used your turn or context budget. Do not call any more tools. Write your final "
    "summary now, inside <answer>...</answer>: your conclusion, the facts that support it with "
    "their sources, and what you could not find."
)
"""The message that asks a worker at its turn or context limit for its summary."""
NO_SUMMARY = "The worker stopped without a summary; its subtask is unresolved."
STOPPED = (
    "The worker was stopped at its {limit} before writing a summary; its subtask may be unresolved."
)
"""What the planner reads of a worker stopped without a summary (``forced_summary`` off), followed
by the worker's last message, when it wrote one, cut to the summary size."""
SUMMARY_CUT = " [...summary cut]"
_ANSWER_TAGS = re.compile(r"</?answer>")


def worker_report(
    messages: Sequence[Message], final: str | None, reason: str, *, keep_thinking: bool, summary_chars: int
) -> str:
    """The report of a worker whose conversation is ``messages`` and that stopped with ``reason``
    (its answer ``final``, or None when it gave none)."""

    def clean(text: str) -> str:
        return (text if keep_thinking else strip_thinking(text)).strip()

    def cut(text: str) -> str:
        if 0 < summary_chars < len(text):
            keep = summary_chars - len(SUMMARY_CUT)
            text = text[:keep] + SUMMARY_CUT if keep > 0 else text[:summary_chars]  # the marker must fit too
        return text

    if final is not None:
        if keep_thinking:
            final = _ANSWER_TAGS.sub("", messages[-1].content)
        return cut(clean(final) or NO_SUMMARY)
    if reason not in ("turn_limit", "context_limit"):
        return NO_SUMMARY
    note = STOPPED.format(limit=reason.replace("_", " "))
    last = next((m.content for m in reversed(messages) if m.role == "assistant"), "")
    text = cut(clean(last))
    return f"{note} Its last message:\n{text}" if text else note
