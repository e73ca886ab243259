"""The live ``search`` tool: web results through ``ddgs`` (DuckDuckGo and other engines).

It takes the same arguments as :class:`~matpo_gym.tools.search.LocalSearch` and prints results in
the same numbered format, so prompts, parsers and noise work unchanged on either backend. Every
search of the process is spaced by at least ``min_interval_s`` (the engines block clients that
search too fast); rate limits and timeouts are retried with exponential backoff; what still fails
becomes a :class:`~matpo_gym.tools.base.ToolError` (or :class:`~matpo_gym.tools.base.ToolTimeout`)
for the model to read. ``ddgs`` is an optional dependency: ``pip install "matpo-gym[web]"``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from matpo_gym.tools.base import ToolError, ToolTimeout
from matpo_gym.tools.html_text import collapse
from matpo_gym.tools.search import (
    MAX_TOP_K,
    SearchHit,
    SearchTool,
    _shorten,
    require_query,
    search_spec,
)

try:  # optional: only the default client needs ddgs; exceptions are matched by class otherwise
    from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException
except ImportError:  # pragma: no cover - exercised only where the web extra is not installed
    DDGSException = RatelimitException = TimeoutException = None  # type: ignore[assignment,misc]

SAFE_SEARCH = ("on", "moderate", "off")
_NO_RESULTS = "No results found."  # what ddgs raises when every engine answered with nothing
_RATE_LIMIT_HINTS = ("ratelimit", "rate limit", "429", "too many requests")
_NETWORK_HINTS = ("dnserror", "dns error", "connecterror", "connection", "network", "resolve")
_DETAIL_CHARS = 160


class SearchClient(Protocol):
    """What :class:`WebSearch` needs of a client: ``ddgs.DDGS().text``'s signature and results."""

    def text(self, query: str, **kwargs: Any) -> list[dict[str, Any]]: ...


class _Pacer:
    """Spaces calls process-wide: each call starts at least ``interval`` after the previous one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = float("-inf")

    def wait(self, interval: float, deadline: float = float("inf")) -> float:
        """Reserve the next start time under the lock, sleep until it; returns the pause. A start
        at or past ``deadline`` is not reserved: the call times out now, sending no request (the
        caller has given up on it, and a late request would push every later search back)."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._last + interval)
            if start >= deadline:
                raise ToolTimeout("too many searches are waiting their turn at the search engine; "
                                  "try again shortly.")
            self._last = start
        pause = start - now
        if pause > 0:
            time.sleep(pause)
        return pause


_PACER = _Pacer()
"""One for the whole process: every WebSearch instance shares it."""


class WebSearch(SearchTool):
    """The ``search`` tool on the live web: ``ddgs.DDGS().text``, formatted like local search.

    ``timeout_s`` bounds a whole call, retries included: a retry whose backoff would end past it
    is not attempted. ``client_factory`` makes the client for each call (default: a fresh
    ``ddgs.DDGS`` with the time that is left); anything with a ``text(query, **kwargs)`` method
    returning ddgs-style dicts (``title``, ``href``, ``body``) will do.
    """

    def __init__(
        self,
        *,
        top_k: int = 5,
        region: str = "wt-wt",
        safe_search: str = "moderate",
        timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        min_interval_s: float = 1.0,
        backend: str = "auto",
        client_factory: Callable[[], SearchClient] | None = None,
        snippet_chars: int = 200,
    ) -> None:
        if not 1 <= top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be in 1..{MAX_TOP_K}, got {top_k}")
        if safe_search not in SAFE_SEARCH:
            raise ValueError(
                f"safe_search must be one of {', '.join(SAFE_SEARCH)}, got {safe_search!r}"
            )
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if max_retries < 0 or backoff_s < 0 or min_interval_s < 0:
            raise ValueError(
                "max_retries, backoff_s and min_interval_s must not be negative, got "
                f"{max_retries}, {backoff_s} and {min_interval_s}"
            )
        if snippet_chars < 20:
            raise ValueError(f"snippet_chars must be at least 20, got {snippet_chars}")
        if client_factory is None and DDGSException is None:
            raise ImportError(
                'Live web search needs the ddgs package: pip install "matpo-gym[web]" '
                '(or use the local backend: [tools] backend = "local").'
            )
        self.top_k = top_k
        self.region = region
        self.safe_search = safe_search
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.min_interval_s = float(min_interval_s)
        self.backend = backend
        self.snippet_chars = snippet_chars
        self._client_factory = client_factory
        self.spec = search_spec("the web", top_k)

    def search_raw(self, query: str, k: int) -> list[SearchHit]:
        """The top ``k`` web results, best first (``score`` is 1/rank: engines give none)."""
        require_query(query)
        rows = self._fetch(query.strip(), k)
        hits: list[SearchHit] = []
        for row in rows:
            url = str(row.get("href") or row.get("url") or "").strip()
            if not url:
                continue
            title = collapse(str(row.get("title") or "")) or url
            body = collapse(str(row.get("body") or ""))
            snippet = _shorten(body, 0, self.snippet_chars)
            hits.append(SearchHit(url=url, title=title, snippet=snippet, score=1 / (len(hits) + 1)))
            if len(hits) == k:
                break
        return hits

    def _fetch(self, query: str, k: int) -> list[dict[str, Any]]:
        """Raw result rows, with pacing, retries and backoff; failures become tool errors."""
        deadline = time.monotonic() + self.timeout_s
        attempts = 0
        failure: tuple[str, Exception] | None = None
        while True:
            try:
                _PACER.wait(self.min_interval_s, deadline)
            except ToolTimeout:
                if failure is not None:  # a retry left without a turn: report what it retried
                    raise _tool_error(failure[0], failure[1], attempts, self.timeout_s) from failure[1]
                raise
            attempts += 1
            try:
                rows = self._client(deadline).text(
                    query,
                    region=self.region,
                    safesearch=self.safe_search,
                    max_results=k,
                    backend=self.backend,
                )
            except Exception as exc:  # every client failure is classified below
                kind = _classify(exc)
                if kind == "empty":
                    return []
                retry = attempts <= self.max_retries and kind in ("rate_limit", "timeout")
                pause = self.backoff_s * 2 ** (attempts - 1)
                if retry and time.monotonic() + pause < deadline:
                    failure = (kind, exc)
                    time.sleep(pause)
                    continue
                raise _tool_error(kind, exc, attempts, self.timeout_s) from exc
            return list(rows or [])

    def _client(self, deadline: float) -> SearchClient:
        if self._client_factory is not None:
            return self._client_factory()
        from ddgs import DDGS

        return DDGS(timeout=max(1, round(deadline - time.monotonic())))  # type: ignore[return-value]


def _classify(exc: Exception) -> str:
    """``rate_limit``, ``timeout``, ``empty`` (no results), ``network`` or ``other``."""
    message = str(exc)
    lowered = f"{type(exc).__name__}: {message}".lower()
    if RatelimitException is not None and isinstance(exc, RatelimitException):
        return "rate_limit"
    if (TimeoutException is not None and isinstance(exc, TimeoutException)) or isinstance(
        exc, TimeoutError
    ):
        return "timeout"
    if message.strip() == _NO_RESULTS:
        return "empty"
    if any(hint in lowered for hint in _RATE_LIMIT_HINTS):
        return "rate_limit"
    if "timed out" in lowered or "timeout" in lowered:
        return "timeout"
    if any(hint in lowered for hint in _NETWORK_HINTS):
        return "network"
    return "other"


def _tool_error(kind: str, exc: Exception, attempts: int, timeout_s: float) -> ToolError:
    """A short message the model can act on (run_tool prefixes "Tool 'search' failed: ")."""
    detail = collapse(f"{type(exc).__name__}: {exc}")
    if len(detail) > _DETAIL_CHARS:
        detail = detail[: _DETAIL_CHARS - 3] + "..."
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if kind == "timeout":
        return ToolTimeout(
            f"the web search engines did not answer in time ({tries} within {timeout_s:g} s). "
            "Try again, or use a shorter query."
        )
    if kind == "rate_limit":
        return ToolError(
            f"the web search engines are limiting requests ({tries}; {detail}). "
            "Wait a moment before searching again, or browse a URL you already have."
        )
    if kind == "network":
        return ToolError(
            f"the web search engines could not be reached ({detail}). The network may be down; "
            "try again later."
        )
    return ToolError(f"web search failed ({detail}). Try again or rephrase the query.")
