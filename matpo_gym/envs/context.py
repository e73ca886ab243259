"""Fitting a conversation into a token budget by dropping its middle.

The system prompt and the first user message (the question or subtask) are always kept, as are
the latest messages that fit; a short note stands where messages were dropped. When even the
latest message alone is too long, its content is cut, and so is a question too long to leave it a
quarter of the budget. Every cut is reported, never silent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matpo_gym.core.messages import Message

TokenCounter = Callable[[str], int]

_PIECES = re.compile(r"\w+|[^\w\s]")
MESSAGE_OVERHEAD = 4
"""Tokens a chat template spends around each message (role markers, separators)."""


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate: words and punctuation marks, ~1.3 per English word piece.

    Used when no tokenizer is given; pass the policy's tokenizer for exact budgets.
    """
    return len(_PIECES.findall(text))


@dataclass(frozen=True, slots=True)
class Fitted:
    """A context-fitted prompt and what was cut to get it."""

    messages: tuple[Message, ...]
    tokens: int
    dropped_messages: int
    cut_chars: int

    @property
    def truncated(self) -> bool:
        return self.dropped_messages > 0 or self.cut_chars > 0


CUT_MARKER = " [...cut to fit the context window]"


def _note(count: int) -> Message:
    return Message("user", f"[{count} earlier message(s) removed to fit the context window]")


def _cut_content(message: Message, budget: int, count: TokenCounter) -> tuple[Message, int]:
    """Shorten ``message`` to ``budget`` tokens, the cut marker included (binary search on
    characters); chars removed."""
    text = message.content
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid] + CUT_MARKER) + MESSAGE_OVERHEAD <= budget:
            lo = mid
        else:
            hi = mid - 1
    return Message(message.role, text[:lo] + CUT_MARKER, message.name), len(text) - lo


def message_tokens(message: Message, count: TokenCounter = approx_tokens) -> int:
    """What one message costs a budget: its content plus the template's overhead around it."""
    return count(message.content) + MESSAGE_OVERHEAD


def conversation_tokens(messages: Sequence[Message], count: TokenCounter = approx_tokens) -> int:
    """What a whole conversation costs, untruncated: the measure the whole-conversation caps use."""
    return sum(message_tokens(m, count) for m in messages)


def fit_context(messages: Sequence[Message], limit: int, count: TokenCounter = approx_tokens) -> Fitted:
    """Keep head (system + first user message) and the longest tail that fits in ``limit`` tokens.

    A question shorter than a quarter of the budget stays whole; a longer one keeps at least a
    quarter, and whatever the latest message (a summary request, a tool result: what the model
    must act on) leaves of its own quarter. The latest message gets what the head leaves, cut to
    fit (down to its cut marker when a long system prompt and question take nearly all). A budget
    that cannot hold the system prompt and two cut messages is a configuration error.
    """
    sizes = [message_tokens(m, count) for m in messages]
    total = sum(sizes)
    if total <= limit:
        return Fitted(tuple(messages), total, 0, 0)
    floor = message_tokens(Message("user", CUT_MARKER), count)  # a message cut to nothing but its marker
    note_tokens = message_tokens(_note(len(messages)), count)
    if messages and sizes[0] + 2 * floor + note_tokens > limit:
        raise ValueError(f"A context budget of {limit} tokens cannot hold the system prompt ({sizes[0]} tokens) "
                         "and a question; raise the env's context_tokens (or the role's own budget).")
    head_len = min(2, len(messages))
    head = list(messages[:head_len])
    if len(messages) <= head_len:
        # only the head is there and it alone is too long: cut the first user message
        first, cut_chars = _cut_content(head[-1], max(limit - sum(sizes[:-1]), floor), count)
        head[-1] = first
        return Fitted(tuple(head), sum(sizes[:-1]) + message_tokens(first, count), 0, cut_chars)
    cut_chars = 0
    # the question's floor never pushes the head past what leaves the latest message its marker
    spare = limit - sizes[0] - note_tokens - floor
    keep = max(limit - sizes[0] - note_tokens - min(sizes[-1], limit // 4), min(sizes[1], limit // 4, spare))
    if head_len == 2 and sizes[1] > keep:
        head[1], cut_chars = _cut_content(head[1], max(keep, floor), count)
    head_tokens = sum(message_tokens(m, count) for m in head)
    budget = limit - head_tokens - note_tokens
    tail: list[Message] = []
    tail_tokens = 0
    for index in range(len(messages) - 1, head_len - 1, -1):
        if tail_tokens + sizes[index] > budget:
            break
        tail.insert(0, messages[index])
        tail_tokens += sizes[index]
    if not tail:
        latest, cut_latest = _cut_content(messages[-1], max(budget, floor), count)
        tail, tail_tokens, cut_chars = [latest], message_tokens(latest, count), cut_chars + cut_latest
    dropped = len(messages) - head_len - len(tail)
    out = head + ([_note(dropped)] if dropped else []) + tail
    tokens = head_tokens + tail_tokens + (note_tokens if dropped else 0)
    return Fitted(tuple(out), tokens, dropped, cut_chars)
