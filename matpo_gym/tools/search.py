"""Local keyword search over a page store: the offline stand-in for a web search engine.

The index is built once (BM25 via ``bm25s``, English stopwords) and only read afterwards, so one
instance answers concurrent queries from many episodes without locking.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import bm25s
from bm25s.tokenization import Tokenizer

from matpo_gym.data.tasks import PageStore
from matpo_gym.tools.base import ToolError, ToolSpec
from matpo_gym.tools.html_text import html_to_text

MAX_TOP_K = 10
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_BLOCK_MARK = re.compile(r"^(#+|-)\s+")
_FALLBACK_QUERIES = (
    "history",
    "river",
    "election",
    "museum",
    "treaty",
    "festival",
    "railway",
    "island",
)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One ranked result."""

    url: str
    title: str
    snippet: str
    score: float
    """BM25 score; only comparable within one query."""


def search_spec(where: str, top_k: int) -> ToolSpec:
    """The ``search`` tool's description and schema; ``where`` names what is searched."""
    return ToolSpec(
        name="search",
        description=(
            f"Search {where} by keywords. Returns a numbered list of results, best first, each "
            "with its title, URL and a snippet. Use names and distinctive words rather than "
            "whole questions; browse a result's URL to read the page."
        ),
        parameters={
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Keywords to look for, e.g. 'Ada Lovelace birthplace'.",
                },
                "top_k": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_TOP_K,
                    "description": f"How many results to return (default {top_k}).",
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    )


def require_query(query: object) -> None:
    """A :class:`ToolError` for an empty or non-text query."""
    if not isinstance(query, str) or not query.strip():
        raise ToolError('The query is empty. Pass a few keywords, e.g. search(query="Ada Lovelace").')


class SearchTool:
    """What every ``search`` backend shares: argument checks and the numbered result format.

    Subclasses set ``spec`` and ``top_k`` and implement :meth:`search_raw`.
    """

    spec: ToolSpec
    top_k: int

    def search_raw(self, query: str, k: int) -> list[SearchHit]:
        raise NotImplementedError

    def __call__(self, query: str, top_k: int | None = None) -> str:
        """Run the search and format the hits for the model."""
        k = self.top_k if top_k is None else top_k
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_TOP_K:
            raise ToolError(f"top_k must be an integer from 1 to {MAX_TOP_K}, got {top_k!r}.")
        hits = self.search_raw(query, k)
        if not hits:
            return (
                f'No results for "{query.strip()}". '
                "Try fewer or different keywords, such as a name or a distinctive term."
            )
        return "\n".join(_format_hit(rank, hit) for rank, hit in enumerate(hits, start=1))


class LocalSearch(SearchTool):
    """The ``search`` tool: BM25 over the title and readable text of every page in a store."""

    def __init__(self, store: PageStore, *, top_k: int = 5, snippet_chars: int = 200) -> None:
        if not 1 <= top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be in 1..{MAX_TOP_K}, got {top_k}")
        if snippet_chars < 20:
            raise ValueError(f"snippet_chars must be at least 20, got {snippet_chars}")
        self.top_k = top_k
        self.snippet_chars = snippet_chars
        self.spec = search_spec("the pages of the site", top_k)
        self._urls: list[str] = []
        self._titles: list[str] = []
        self._texts: list[str] = []
        for page in store:
            text = html_to_text(page.html, page.url, inline_links=False)
            self._urls.append(page.url)
            self._titles.append(page.title or text.title or page.url)
            self._texts.append(text.text)
        self._tokenizer = Tokenizer(stopwords="en")
        self._stopwords = frozenset(self._tokenizer.stopwords)
        self._bm25 = bm25s.BM25()
        if self._urls:
            corpus = [
                f"{title}\n{text}" for title, text in zip(self._titles, self._texts, strict=True)
            ]
            tokens = self._tokenizer.tokenize(
                corpus, update_vocab=True, return_as="tuple", show_progress=False
            )
            self._bm25.index(tokens, show_progress=False)

    def __len__(self) -> int:
        return len(self._urls)

    def search_raw(self, query: str, k: int) -> list[SearchHit]:
        """The top ``k`` pages with a positive score, best first."""
        require_query(query)
        terms = self._terms(query)
        if not self._urls or not terms or k < 1:
            return []
        ids = self._tokenizer.tokenize(
            [query], update_vocab=False, return_as="ids", show_progress=False
        )
        docs, scores = self._bm25.retrieve(ids, k=min(k, len(self._urls)), show_progress=False)
        return [
            SearchHit(
                url=self._urls[doc],
                title=self._titles[doc],
                snippet=self._snippet(doc, terms),
                score=float(score),
            )
            for doc, score in zip(docs[0].tolist(), scores[0].tolist(), strict=True)
            if score > 0
        ]

    def distractor(self, rng: random.Random) -> str:
        """Results for an unrelated query, a random page title (noise kind 'irrelevant')."""
        query = rng.choice(self._titles) if self._titles else rng.choice(_FALLBACK_QUERIES)
        return self(query=query)

    def _terms(self, text: str) -> set[str]:
        return {w for w in self._tokenizer.splitter(text.lower()) if w not in self._stopwords}

    def _snippet(self, doc: int, terms: set[str]) -> str:
        """The sentence sharing most terms with the query, else the start of the text."""
        sentences = [_BLOCK_MARK.sub("", s).strip() for s in _SENTENCE_END.split(self._texts[doc])]
        sentences = [s for s in sentences if s]
        if sentences and sentences[0] == self._titles[doc]:
            sentences = sentences[1:] or sentences
        if not sentences:
            return ""
        overlaps = [len(self._terms(s) & terms) for s in sentences]
        best = max(range(len(sentences)), key=lambda i: (overlaps[i], -i))
        if overlaps[best] == 0:
            return _shorten(" ".join(sentences), 0, self.snippet_chars)
        sentence = sentences[best]
        found = [
            m.start()
            for t in terms
            if (m := re.search(rf"\b{re.escape(t)}\b", sentence, re.IGNORECASE))
        ]
        return _shorten(sentence, min(found, default=0), self.snippet_chars)


def _shorten(text: str, focus: int, limit: int) -> str:
    """At most ``limit`` characters of ``text`` around ``focus``, cut at spaces, with '...'."""
    if len(text) <= limit:
        return text
    start = max(0, min(focus - limit // 4, len(text) - limit))
    if start > 0:
        start = text.rfind(" ", 0, start) + 1
    prefix = "..." if start > 0 else ""
    if len(text) - start <= limit - len(prefix):
        return prefix + text[start:]
    end = start + limit - len(prefix) - 3
    space = text.rfind(" ", start, end + 1)
    if space > start:
        end = space
    return prefix + text[start:end].rstrip() + "..."


def _format_hit(rank: int, hit: SearchHit) -> str:
    lines = [f"{rank}. {hit.title}", f"   URL: {hit.url}"]
    if hit.snippet:
        lines.append(f"   {hit.snippet}")
    return "\n".join(lines)
