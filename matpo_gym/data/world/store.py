"""The rendered site as a :class:`~matpo_gym.data.tasks.PageStore`, forgiving about URL spelling.

Agents type URLs by hand, so :meth:`SiteStore.get` accepts absolute URLs under the base URL or
bare paths, ignores query strings and fragments (except a category's ``?page=N``), decodes
percent-escapes and treats spaces as underscores, as a wiki would.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from matpo_gym.data.tasks import Page

_CATEGORY = re.compile(r"^/category/([^/]+)(?:/(\d+))?$")


class SiteStore:
    """Pages of one site keyed by path; every page's ``url`` is absolute under ``base_url``."""

    def __init__(self, base_url: str, pages: Iterable[Page]) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._origin = (parts.scheme.lower(), parts.netloc.lower())
        self._pages: dict[str, Page] = {}
        for page in pages:
            path = self.path_of(page.url)
            if path is None:
                raise ValueError(f"page {page.url!r} is not under {self.base_url!r}")
            if path in self._pages:
                raise ValueError(f"two pages at {path!r}")
            self._pages[path] = page

    def url_for(self, path: str) -> str:
        """The absolute URL of a site path such as ``/wiki/X``."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def path_of(self, url: str) -> str | None:
        """The canonical site path ``url`` names, or None when it points at another host."""
        parts = urlsplit(url.strip())
        origin = (parts.scheme.lower(), parts.netloc.lower())
        if (parts.scheme or parts.netloc) and origin != self._origin:
            return None
        path = unquote(parts.path).replace(" ", "_")
        path = "/" + path.strip("/")
        match = _CATEGORY.match(path)
        if match:
            number = match.group(2)
            if number is None:
                number = (parse_qs(parts.query).get("page") or ["1"])[0]
            if not number.isdigit() or int(number) < 1:
                return path
            if int(number) > 1:
                return f"/category/{match.group(1)}/{int(number)}"
            return f"/category/{match.group(1)}"
        return path

    def get(self, url: str) -> Page | None:
        """The page at ``url`` (absolute under ``base_url``, or a path), or None."""
        path = self.path_of(url)
        return None if path is None else self._pages.get(path)

    def paths(self) -> list[str]:
        """Every canonical path, in site order (root, categories, entities)."""
        return list(self._pages)

    def __contains__(self, url: object) -> bool:
        return isinstance(url, str) and self.get(url) is not None

    def __iter__(self) -> Iterator[Page]:
        return iter(self._pages.values())

    def __len__(self) -> int:
        return len(self._pages)
