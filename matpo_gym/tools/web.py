"""The live tools of ``[tools] backend = "web"``, and the tool cache applied from an env spec.

``search`` is :class:`~matpo_gym.tools.web_search.WebSearch` (ddgs), ``browse`` is
:class:`~matpo_gym.tools.browse.Browse` over :class:`~matpo_gym.tools.browse.HttpFetcher`. With
``cache_mode`` other than ``off`` both answer through a
:class:`~matpo_gym.tools.cache.CachedTool` on ``cache_path``; ``replay`` then runs fully offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from matpo_gym.tools.base import Tool, ToolError
from matpo_gym.tools.browse import Browse, HttpFetcher
from matpo_gym.tools.cache import CachedTool, shared_cache
from matpo_gym.tools.web_search import SearchClient, WebSearch

if TYPE_CHECKING:  # tools sit below envs: the spec is only read, never imported at run time
    from matpo_gym.envs.spec import ToolsSpec


def _no_live_search() -> SearchClient:
    """The search client of a replay, which answers every call from the cache (so it needs no ddgs)."""
    raise ToolError("cache_mode 'replay' makes no live searches.")


def web_tools(spec: ToolsSpec) -> dict[str, Tool]:
    """Live ``search`` and ``browse`` configured by ``spec``, cached as ``spec.cache_mode`` says."""
    tools: dict[str, Tool] = {
        "search": WebSearch(
            top_k=spec.search_top_k,
            region=spec.search_region,
            safe_search=spec.safe_search,
            timeout_s=spec.timeout_s,
            client_factory=_no_live_search if spec.cache_mode == "replay" else None,
        ),
        "browse": Browse(HttpFetcher(timeout=spec.timeout_s), max_chars=spec.browse_max_chars),
    }
    return cached_tools(tools, spec)


def cached_tools(tools: Mapping[str, Tool], spec: ToolsSpec, *, site: str = "") -> dict[str, Tool]:
    """``tools`` behind the cache that ``spec.cache_path`` and ``spec.cache_mode`` describe.

    Each tool's namespace records the spec settings its results depend on (backend, result
    count, region, page size, and ``site``: which offline world, for the local backend), so one
    cache file can hold several configurations without mixing them up. With
    ``cache_mode = "off"`` the tools come back unwrapped.
    """
    if spec.cache_mode == "off":
        return dict(tools)
    if not spec.cache_path:
        raise ValueError(
            f"tools.cache_path is required when tools.cache_mode is {spec.cache_mode!r}: "
            "name the SQLite file of recorded tool results (or set cache_mode = 'off')."
        )
    if spec.cache_mode == "replay" and not Path(spec.cache_path).is_file():
        raise ValueError(f"Nothing to replay: the tool cache {spec.cache_path} does not exist (record it first with "
                         "cache_mode 'record' or 'read_write').")
    cache = shared_cache(spec.cache_path)
    return {
        name: CachedTool(
            tool,
            cache,
            spec.cache_mode,
            namespace=tool_namespace(name, spec, site=site),
            time_limit=spec.timeout_s,
        )
        for name, tool in tools.items()
    }


def tool_namespace(name: str, spec: ToolsSpec, *, site: str = "") -> str:
    """The settings of ``spec`` that change what tool ``name`` returns, as a cache namespace."""
    parts: list[str] = [spec.backend] + ([f"site={site}"] if site else [])
    if name == "search":
        parts.append(f"top_k={spec.search_top_k}")
        if spec.backend == "web":
            parts += [f"region={spec.search_region}", f"safe_search={spec.safe_search}"]
    elif name == "browse":
        parts.append(f"max_chars={spec.browse_max_chars}")
    return ";".join(parts)
