"""HTML to the compact, link-preserving text an agent reads.

The browse tool shows this text to the model and the search index tokenizes it, so it keeps what
carries meaning (headings, paragraphs, list items, table rows, links with absolute URLs the agent
can browse next) and drops what only costs context (scripts, styles, navigation bars, footers,
forms). It never raises: real pages are often broken, and a tool must not crash on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import quote, urljoin

from bs4 import BeautifulSoup, CData, NavigableString, Tag
from bs4.element import PageElement, PreformattedString
from bs4.exceptions import ParserRejectedMarkup

_DROP = frozenset(
    {"script", "style", "noscript", "svg", "nav", "footer", "form", "title", "template"}
    | {"iframe", "object", "embed", "canvas", "button", "input", "select", "textarea", "option"}
)
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_BLOCKS = frozenset(
    {"address", "article", "aside", "blockquote", "body", "center", "dd", "details", "dialog"}
    | {"div", "dl", "dt", "fieldset", "figcaption", "figure", "header", "hgroup", "html", "main"}
    | {"p", "section", "summary", "caption", "hr"}
)
_LISTS = frozenset({"ul", "ol", "menu"})
_CELLS = frozenset({"td", "th"})
_STRUCTURE = (
    _BLOCKS | _LISTS | _CELLS | frozenset({"li", "table", "tr", "br", "pre"}) | set(_HEADINGS)
)
_NO_LINK_SCHEMES = ("javascript:", "data:", "vbscript:")
_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")
_INNER_SPACE = re.compile(r"\s")


@dataclass(frozen=True, slots=True)
class PageText:
    """The readable form of one page."""

    title: str
    text: str
    """One block per line: ``# heading``, paragraphs, ``- item``, ``Label: value`` table rows."""
    links: list[tuple[str, str]] = field(default_factory=list)
    """(anchor text, absolute URL) in page order, without duplicates."""


def collapse(text: str) -> str:
    """Runs of whitespace (newlines, non-breaking spaces) become one space."""
    return _SPACE.sub(" ", text).strip()


def html_to_text(html: str, base_url: str, *, inline_links: bool = True) -> PageText:
    """Render ``html`` as readable text; relative links resolve against ``base_url``.

    ``inline_links=False`` writes anchors as plain text (what a search index wants).
    """
    try:
        soup = BeautifulSoup(html, "html.parser")
    except ParserRejectedMarkup:
        return PageText(title="", text=collapse(_TAG.sub(" ", html)))
    renderer = _Renderer(base_url, inline_links)
    renderer.render(soup)
    title = collapse(soup.title.get_text()) if soup.title is not None else ""
    return PageText(
        title=title or renderer.first_h1, text="\n".join(renderer.lines), links=renderer.links
    )


def resolve_link(href: str, base_url: str) -> str | None:
    """The absolute URL an ``href`` points to, or None when it leads nowhere browsable."""
    href = href.strip()
    if not href or href.startswith("#") or href.lower().startswith(_NO_LINK_SCHEMES):
        return None
    try:
        url = urljoin(base_url, re.sub(r"[\t\r\n]", "", href))
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    return _INNER_SPACE.sub(lambda m: quote(m.group()), url)


class _Close(NamedTuple):
    """What to do when a tag ends; ``start`` is where its text begins in the buffer."""

    kind: str
    start: int = 0
    url: str = ""
    level: int = 0
    header: bool = False


_INLINE, _SPACE_OUT, _BLOCK, _LIST, _ROW = (
    _Close(k) for k in ("inline", "space", "block", "list", "row")
)


class _Renderer:
    """Walks the tree iteratively (deeply nested junk must not hit the recursion limit).

    Inside a table cell, heading or link everything is rendered inline: block structure there
    becomes a space, so nested tables and lists flatten into their cell.
    """

    def __init__(self, base_url: str, inline_links: bool) -> None:
        self.base_url = base_url
        self.inline_links = inline_links
        self.lines: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.first_h1 = ""
        self._seen_links: set[tuple[str, str]] = set()
        self._buf: list[str] = []
        self._prefix = ""
        self._inline_depth = 0
        self._link_depth = 0
        self._list_depth = 0
        self._row: list[tuple[str, bool]] | None = None

    def render(self, root: Tag) -> None:
        stack: list[tuple[PageElement, _Close | None]] = [(root, None)]
        while stack:
            node, on_exit = stack.pop()
            if on_exit is not None:
                self._exit(on_exit)
            elif isinstance(node, NavigableString):
                if not isinstance(node, PreformattedString) or isinstance(node, CData):
                    self._buf.append(str(node))
            elif isinstance(node, Tag) and node.name not in _DROP:
                close = self._enter(node)
                if close is not None:
                    stack.append((node, close))
                    stack.extend((child, None) for child in reversed(node.contents))
        self._flush()

    def _enter(self, tag: Tag) -> _Close | None:
        """Handle an opening tag; return what to do at its end, or None to skip its children."""
        name = tag.name
        if name == "a":
            url = resolve_link(str(tag.get("href") or ""), self.base_url)
            if url is None or self._link_depth:
                return _INLINE
            self._inline_depth += 1
            self._link_depth += 1
            return _Close("link", len(self._buf), url=url)
        if name not in _STRUCTURE:
            return _INLINE
        if self._inline_depth:
            self._buf.append(" ")
            return _SPACE_OUT
        if name in _HEADINGS:
            self._flush()
            self._inline_depth += 1
            return _Close("heading", len(self._buf), level=_HEADINGS[name])
        if name in _CELLS and self._row is not None:
            self._inline_depth += 1
            return _Close("cell", len(self._buf), header=name == "th")
        self._flush()
        if name == "tr":
            self._row = []
            return _ROW
        if name in _LISTS:
            self._list_depth += 1
            return _LIST
        if name == "li":
            self._prefix = "  " * max(0, self._list_depth - 1) + "- "
        elif name == "pre":
            self.lines.extend(line.rstrip() for line in tag.get_text().splitlines() if line.strip())
            return None
        return _BLOCK

    def _exit(self, close: _Close) -> None:
        kind = close.kind
        if kind == "inline":
            return
        if kind == "space":
            self._buf.append(" ")
        elif kind == "block":
            self._flush()
        elif kind == "list":
            self._flush()
            self._list_depth -= 1
        elif kind == "link":
            text = self._take(close.start)
            self._inline_depth -= 1
            self._link_depth -= 1
            if text:
                self._buf.append(f"[{text}]({close.url})" if self.inline_links else text)
                if (text, close.url) not in self._seen_links:
                    self._seen_links.add((text, close.url))
                    self.links.append((text, close.url))
        elif kind == "heading":
            text = self._take(close.start)
            self._inline_depth -= 1
            if text:
                self.lines.append("#" * close.level + " " + text)
                if close.level == 1 and not self.first_h1:
                    self.first_h1 = _strip_links(text)
        elif kind == "cell":
            self._inline_depth -= 1
            if self._row is not None:
                self._row.append((self._take(close.start), close.header))
        elif kind == "row":
            self._emit_row()

    def _emit_row(self) -> None:
        cells = [(text, is_header) for text, is_header in self._row or [] if text]
        self._row = None
        if len(cells) == 2 and cells[0][1]:
            self.lines.append(f"{cells[0][0]}: {cells[1][0]}")
        elif cells:
            self.lines.append(" | ".join(text for text, _ in cells))

    def _take(self, start: int) -> str:
        text = collapse("".join(self._buf[start:]))
        del self._buf[start:]
        return text

    def _flush(self) -> None:
        text = self._take(0)
        if text:
            self.lines.append(self._prefix + text)
        self._prefix = ""


def _strip_links(text: str) -> str:
    return re.sub(r"\[([^\]]*)\]\([^)\s]*\)", r"\1", text)
