"""The leakage guard: keep agents away from sites that host benchmark datasets and their answers.

A web agent can find a benchmark's own question and gold answer on a dataset hub and copy it; the
MATPO reference blocks Hugging Face dataset and space pages for that reason. :func:`guard_tools`
wraps ``search`` so that results on a blocked site are dropped (the rest are renumbered; nothing
replaces them, so a guarded search may return fewer than ``top_k`` results) and ``browse`` so that
a blocked URL is refused with a tool error. Each wrapper counts what it blocked, for the episode's
accounting (:meth:`GuardedTool.pop_blocked`).

A rule is a host with an optional path prefix, without a scheme: ``huggingface.co/datasets``
blocks ``https://huggingface.co/datasets/x`` and ``http://www.huggingface.co/datasets?q=y``, but
not ``huggingface.co/datasets-guide`` or ``huggingface.co/models``. Subdomains of a rule's host
match too; hosts and paths are compared case-insensitively.

>>> rules = parse_rules(["huggingface.co/datasets", "hf.co"])
>>> blocked_rule("https://www.huggingface.co/datasets/musique", rules)
'huggingface.co/datasets'
>>> blocked_rule("https://huggingface.co/datasets-guide", rules) is None
True
>>> blocked_rule("https://cdn.hf.co/x", rules)
'hf.co'
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from matpo_gym.tools.base import Tool, ToolError, ToolSpec

DEFAULT_BLOCKED_DOMAINS: tuple[str, ...] = (
    "huggingface.co/datasets",
    "huggingface.co/spaces",
    "hf.co/datasets",
    "hf.co/spaces",
    "huggingface.co/api/datasets",
    "huggingface.co/api/spaces",
    "datasets-server.huggingface.co",
    "hf.space",
)
"""Dataset hosting the reference blocks (Hugging Face datasets and spaces, and the hf.co alias),
and the other doors to the same rows: the dataset API and its parquet export, the viewer's row
server, and spaces served on their own ``*.hf.space`` domain."""

_RANK = re.compile(r"^\d+\.\s")
_URL_LINE = re.compile(r"^\s*URL:\s*(\S+)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class Rule:
    """One blocked site: a host and a path prefix (``""`` blocks the whole host)."""

    text: str
    host: str
    path: str

    def matches(self, host: str, path: str) -> bool:
        if host != self.host and not host.endswith("." + self.host):
            return False
        return not self.path or path == self.path or path.startswith(self.path + "/")


def parse_rules(entries: Iterable[str]) -> tuple[Rule, ...]:
    """Rules from ``host[/path]`` strings; a scheme or trailing slash is tolerated and ignored."""
    rules = []
    for entry in entries:
        text = _SCHEME.sub("", entry.strip()).rstrip("/").lower()
        host, _, path = text.partition("/")
        host = host.removeprefix("www.")
        if not host or not host.strip("."):
            raise ValueError(
                f"blocked domain {entry!r} has no host; write e.g. 'huggingface.co/datasets'"
            )
        rules.append(Rule(entry.strip(), host, f"/{path}" if path else ""))
    return tuple(rules)


def blocked_rule(url: str, rules: Sequence[Rule], base_url: str | None = None) -> str | None:
    """The rule that blocks ``url`` (resolved against ``base_url`` when relative), or None.

    A URL without a scheme that is not resolved against a base is read as ``http://`` + URL, so
    ``huggingface.co/datasets/x`` written bare is blocked too.
    """
    url = url.strip()
    try:
        if base_url is not None:
            url = urljoin(base_url, url)
        if not _SCHEME.match(url):
            url = "http://" + url.lstrip("/")
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().removeprefix("www.")
    except ValueError:  # not a URL at all: the tool itself will say so
        return None
    path = parts.path.lower().rstrip("/")
    return next((rule.text for rule in rules if rule.matches(host, path)), None)


class GuardedTool:
    """What both guards share: the wrapped tool, the rules and a thread-safe blocked counter."""

    def __init__(self, tool: Tool, rules: Sequence[Rule], base_url: str | None = None) -> None:
        self.tool = tool
        self.spec: ToolSpec = tool.spec
        self.rules = tuple(rules)
        self.base_url = base_url
        self._lock = threading.Lock()
        self._blocked = 0

    def pop_blocked(self) -> int:
        """How many results or URLs were blocked since the last pop."""
        with self._lock:
            count, self._blocked = self._blocked, 0
        return count

    def _count(self, blocked: int) -> None:
        with self._lock:
            self._blocked += blocked

    def _rule(self, url: str) -> str | None:
        return blocked_rule(url, self.rules, self.base_url)


class GuardedSearch(GuardedTool):
    """``search`` without the results on blocked sites (counted in :meth:`pop_blocked`)."""

    def __call__(self, **arguments: Any) -> str:
        text, dropped = self.filter(self.tool(**arguments), str(arguments.get("query", "")))
        self._count(dropped)
        return text

    def filter(self, text: str, query: str) -> tuple[str, int]:
        """The numbered result list without blocked results, renumbered; and how many went."""
        lines = text.split("\n")
        heads = [i for i, line in enumerate(lines) if _RANK.match(line)]
        if not heads:
            return text, 0
        blocks = [lines[a:b] for a, b in zip(heads, [*heads[1:], len(lines)], strict=True)]
        kept = [block for block in blocks if not self._blocked_block(block)]
        dropped = len(blocks) - len(kept)
        if not dropped:
            return text, 0
        if not kept:
            return (
                f'No results for "{query.strip()}". '
                "Try fewer or different keywords, such as a name or a distinctive term."
            ), dropped
        out = lines[: heads[0]]
        for rank, block in enumerate(kept, start=1):
            out += [_RANK.sub(f"{rank}. ", block[0], count=1), *block[1:]]
        return "\n".join(out), dropped

    def distractor(self, rng: random.Random) -> str | None:
        """The wrapped tool's unrelated result (noise kind 'irrelevant'), filtered the same way."""
        inner = getattr(self.tool, "distractor", None)
        if inner is None:
            return None
        text = inner(rng)
        return None if text is None else self.filter(text, "")[0]

    def _blocked_block(self, block: list[str]) -> bool:
        url = _first_url(block)
        return url is not None and self._rule(url) is not None


class GuardedBrowse(GuardedTool):
    """``browse`` that refuses blocked URLs, asked for or reached by a redirect."""

    def __call__(self, **arguments: Any) -> str:
        url = str(arguments.get("url", ""))
        self._refuse(url)
        text = self.tool(**arguments)
        served = _first_url(text.split("\n")[:3])
        if served is not None:
            self._refuse(served)
        return text

    def distractor(self, rng: random.Random) -> str | None:
        """The wrapped tool's random page (noise kind 'irrelevant'), unless it is blocked."""
        inner = getattr(self.tool, "distractor", None)
        text = None if inner is None else inner(rng)
        if text is None:
            return None
        served = _first_url(text.split("\n")[:3])
        return None if served is not None and self._rule(served) is not None else text

    def _refuse(self, url: str) -> None:
        rule = self._rule(url)
        if rule is None:
            return
        self._count(1)
        raise ToolError(
            f"{url} is on a blocked site ({rule}): dataset-hosting pages may contain the "
            "benchmark's answers and cannot be browsed. Find the information elsewhere."
        )


def _first_url(lines: Iterable[str]) -> str | None:
    """The URL of the first ``URL: ...`` line (search results and browse headers have one)."""
    return next((m.group(1) for m in map(_URL_LINE.match, lines) if m), None)


def guard_tools(
    tools: Mapping[str, Tool], blocked: Iterable[str], base_url: str | None = None
) -> dict[str, Tool]:
    """``search`` and ``browse`` of ``tools`` behind the leakage guard; other tools unchanged.

    ``base_url`` resolves relative URLs (the offline site's base) before they are checked.
    """
    rules = parse_rules(blocked)
    wrappers: dict[str, type[GuardedTool]] = {"search": GuardedSearch, "browse": GuardedBrowse}
    return {
        name: wrappers[name](tool, rules, base_url) if name in wrappers else tool
        for name, tool in tools.items()
    }
