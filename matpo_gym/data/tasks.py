"""Tasks (one question with its gold answer) and the page store web tools read from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Task:
    """One question to answer. Same shape for the synthetic world and the real benchmarks."""

    id: str
    question: str
    answer: str
    """The gold answer, as the scorer compares it."""
    family: str
    """``frames``, ``webwalker``, ``gaia``, ``musique`` (world families) or a benchmark name."""
    root_url: str | None = None
    """Where navigation starts (WebWalkerQA-style tasks); may be relative to the site's base URL."""
    aliases: tuple[str, ...] = ()
    """Other accepted spellings of the answer."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Difficulty, hops, category, gold path, ... (free-form, recorded with results)."""


@dataclass(frozen=True, slots=True)
class Page:
    """One web page of a site: its canonical URL, title and raw HTML."""

    url: str
    title: str
    html: str


class PageStore(Protocol):
    """Read access to a set of pages keyed by URL (the offline world, or a recorded crawl)."""

    base_url: str

    def get(self, url: str) -> Page | None:
        """The page at ``url`` (absolute, or a path relative to ``base_url``), or None."""
        ...

    def __iter__(self) -> Iterator[Page]: ...

    def __len__(self) -> int: ...
