"""The ``browse`` tool: open a page, read it as text in windows, follow its links.

Where the HTML comes from is a :class:`Fetcher`: the offline page store, or live HTTP. Long pages
are served in windows of ``max_chars`` so one call never floods the agent's context; the footer
says how to read on.
"""

from __future__ import annotations

import bisect
import random
import re
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urldefrag, urljoin, urlsplit

import requests
from requests.compat import chardet
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from matpo_gym.data.tasks import PageStore
from matpo_gym.tools.base import ToolError, ToolSpec, ToolTimeout
from matpo_gym.tools.html_text import html_to_text

DEFAULT_USER_AGENT = "matpo-gym/0.1 (research agent; +https://github.com/matpo-gym)"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_LINK = re.compile(r"\[[^\]\n]*\]\([^)\s]*\)")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """Raw HTML of one page and the URL it was finally served from (links resolve against it)."""

    url: str
    html: str
    truncated: bool = False
    """True when the body was cut at the fetcher's byte cap."""


class Fetcher(Protocol):
    """Where ``browse`` gets HTML; failures raise ToolError / ToolTimeout for the model to read."""

    def fetch(self, url: str) -> FetchedPage: ...


class StoreFetcher:
    """Pages of an offline :class:`~matpo_gym.data.tasks.PageStore`; nothing outside its site."""

    def __init__(self, store: PageStore) -> None:
        self.store = store
        self._urls: list[str] | None = None

    def fetch(self, url: str) -> FetchedPage:
        url = url.strip()
        if not url:
            raise ToolError("The URL is empty. Pass a URL from search results or a link on a page.")
        base = self.store.base_url
        try:
            absolute = urldefrag(urljoin(base, url)).url
            outside = _site(absolute) != _site(base)
        except ValueError as exc:  # urllib's verdict on, say, "http://[::1"
            raise ToolError(f"Cannot browse {url!r}: it is not a valid URL ({exc}).") from None
        if outside:
            raise ToolError(
                f"{url} is outside this site; only pages under {base} can be browsed. "
                "Use search to find pages on the site."
            )
        page = self.store.get(absolute)
        if page is None:
            raise ToolError(
                f"No page at {absolute}. Check the URL, or search for the page by its title."
            )
        return FetchedPage(page.url, page.html)

    def sample_url(self, rng: random.Random) -> str | None:
        """A random page URL of the store (for distractor noise), or None if it is empty."""
        if self._urls is None:
            self._urls = [page.url for page in self.store]
        return rng.choice(self._urls) if self._urls else None


class HttpFetcher:
    """Live pages over HTTP(S): redirects followed, HTML only, a byte cap and a total time limit."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_bytes: int = 2_000_000,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        if timeout <= 0 or max_bytes <= 0:
            raise ValueError(
                f"timeout and max_bytes must be positive, got {timeout} and {max_bytes}"
            )
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.user_agent = user_agent

    def fetch(self, url: str) -> FetchedPage:
        url = url.strip()
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise ToolError(f"Cannot browse {url!r}: it is not a valid URL ({exc}).") from None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ToolError(f"Cannot browse {url!r}: give an absolute http:// or https:// URL.")
        deadline = time.monotonic() + self.timeout
        try:
            with requests.get(
                url,
                headers={
                    "User-Agent": self.user_agent,
                    "Accept": "text/html,application/xhtml+xml",
                },
                timeout=self.timeout,
                stream=True,
                allow_redirects=True,
            ) as response:
                if response.status_code >= 400:
                    raise ToolError(
                        f"HTTP {response.status_code} {response.reason} for {response.url}."
                    )
                content_type = response.headers.get("Content-Type", "")
                mime = content_type.split(";")[0].strip().lower()
                if mime and mime not in HTML_TYPES:
                    raise ToolError(
                        f"Cannot read {response.url}: its content type is {mime}, not an HTML page."
                    )
                body, truncated = self._read(response, deadline)
                return FetchedPage(response.url, decode_html(body, content_type), truncated)
        except requests.Timeout as exc:
            raise ToolTimeout(f"{url} did not answer within {self.timeout:g} s.") from exc
        except requests.TooManyRedirects as exc:
            raise ToolError(f"Too many redirects while opening {url}.") from exc
        except ReadTimeoutError as exc:  # the body stalled
            raise ToolTimeout(f"{url} stopped sending for {self.timeout:g} s.") from exc
        except requests.ConnectionError as exc:
            raise ToolError(
                f"Could not connect to {parts.netloc}: the site may be down or the address wrong."
            ) from exc
        except (requests.RequestException, Urllib3Error) as exc:
            raise ToolError(f"Could not fetch {url} ({type(exc).__name__}: {exc}).") from exc

    def _read(self, response: requests.Response, deadline: float) -> tuple[bytes, bool]:
        """The body up to ``max_bytes``, abandoned at ``deadline`` so a slow server can't stall us.

        ``read1`` returns what one socket read brings, so the deadline is checked as bytes trickle.
        """
        chunks: list[bytes] = []
        size = 0
        while size <= self.max_bytes:
            if time.monotonic() > deadline:
                raise ToolTimeout(f"{response.url} was still sending after {self.timeout:g} s.")
            chunk = response.raw.read1(65536, decode_content=True)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)[: self.max_bytes], True


def decode_html(body: bytes, content_type: str = "") -> str:
    """Decode with the declared charset (header, then ``<meta>``), else UTF-8, else a guess."""
    if body.startswith(b"\xef\xbb\xbf"):
        return body[3:].decode("utf-8", errors="replace")
    header = _HEADER_CHARSET.search(content_type)
    meta = _META_CHARSET.search(body[:4096])
    for declared in (
        header.group(1) if header else None,
        meta.group(1).decode("ascii") if meta else None,
    ):
        if declared:
            try:
                return body.decode(declared, errors="replace")
            except LookupError:  # an unknown charset name: try the next source
                pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        detected = (chardet.detect(body).get("encoding") if chardet else None) or "cp1252"
        try:
            return body.decode(detected, errors="replace")
        except LookupError:
            return body.decode("cp1252", errors="replace")


class Browse:
    """The ``browse`` tool: a page's title, URL and readable text, one window at a time."""

    def __init__(self, fetcher: Fetcher, *, max_chars: int = 4000) -> None:
        if max_chars < 200:
            raise ValueError(f"max_chars must be at least 200, got {max_chars}")
        self.fetcher = fetcher
        self.max_chars = max_chars
        self.spec = ToolSpec(
            name="browse",
            description=(
                "Open a web page and read its text. Links appear inline as [text](url); browse "
                f"those URLs to follow them. Long pages come in parts of about {max_chars} "
                "characters: pass page=2, 3, ... to read further."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "url": {
                        "type": "string",
                        "minLength": 1,
                        "description": "The page's URL, e.g. from search results or a link.",
                    },
                    "page": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "Which part of a long page to read (default 1).",
                    },
                },
                "required": ["url"],
                "additionalProperties": False,
            },
        )

    def __call__(self, url: str, page: int = 1) -> str:
        """Fetch ``url`` and return window ``page`` of its text."""
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ToolError(f"page must be an integer of at least 1, got {page!r}.")
        fetched = self.fetcher.fetch(url)
        text = html_to_text(fetched.html, fetched.url)
        windows = split_windows(text.text, self.max_chars)
        if page > len(windows):
            raise ToolError(
                f"page={page} is past the end: {fetched.url} has {len(windows)} page(s)."
            )
        lines = [f"Title: {text.title or '(untitled)'}", f"URL: {fetched.url}", ""]
        lines.append(windows[page - 1] or "(This page has no readable text.)")
        notes = []
        if len(windows) > 1:
            if page < len(windows):
                notes.append(
                    f"page {page} of {len(windows)}; call browse with page={page + 1} for more"
                )
            else:
                notes.append(f"page {page} of {len(windows)}; end of the page")
        if fetched.truncated and page == len(windows):
            notes.append("the page was too large and is cut off here")
        if notes:
            lines += ["", f"({'; '.join(notes)})"]
        return "\n".join(lines)

    def distractor(self, rng: random.Random) -> str | None:
        """A random other page of the store (noise kind 'irrelevant'); None on the live web."""
        if not isinstance(self.fetcher, StoreFetcher):
            return None
        url = self.fetcher.sample_url(rng)
        return None if url is None else self(url=url)


def split_windows(text: str, max_chars: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``max_chars``, at line breaks where possible, else at
    spaces outside ``[text](url)`` links; a single overlong word is cut hard."""
    links = [m.span() for m in _LINK.finditer(text)]
    starts = [s for s, _ in links]
    windows: list[str] = []
    start = 0
    while len(text) - start > max_chars:
        limit = start + max_chars
        cut = text.rfind("\n", start, limit + 1)
        if cut <= start + max_chars // 2:
            cut = _last_free_space(text, start, limit, links, starts)
        windows.append(text[start:cut].strip())
        start = cut
        while start < len(text) and text[start].isspace():
            start += 1
    windows.append(text[start:].strip())
    return windows


def _last_free_space(
    text: str, start: int, limit: int, links: list[tuple[int, int]], starts: list[int]
) -> int:
    """The last space in (start, limit] outside any link, else any space there, else ``limit``."""
    pos = limit + 1
    first_space = -1
    while True:
        pos = max(text.rfind(" ", start + 1, pos), text.rfind("\n", start + 1, pos))
        if pos == -1:
            return first_space if first_space != -1 else limit
        if first_space == -1:
            first_space = pos
        i = bisect.bisect_right(starts, pos) - 1
        if i < 0 or links[i][1] <= pos:
            return pos


def _site(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()
