"""Building an env's tools from its spec: shared heavy parts, per-env guard and noise wrappers.

The wrappers nest as noise(leakage guard(cache(tool))): the cache records clean results, the
guard filters what the agent may see, and noise disturbs what the guard let through.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping

from matpo_gym.data.tasks import PageStore
from matpo_gym.envs.spec import ToolsSpec
from matpo_gym.tools.base import Tool
from matpo_gym.tools.browse import Browse, StoreFetcher
from matpo_gym.tools.leakage import guard_tools
from matpo_gym.tools.noise import NoiseConfig, apply_noise
from matpo_gym.tools.search import LocalSearch
from matpo_gym.tools.web import cached_tools, web_tools

TOOL_NAMES = ("search", "browse")


@functools.lru_cache(maxsize=8)
def _local_search(site: PageStore, top_k: int) -> LocalSearch:
    """One BM25 index per site, shared by every env of the process (it is read-only)."""
    return LocalSearch(site, top_k=top_k)


@functools.lru_cache(maxsize=8)
def site_digest(site: PageStore) -> str:
    """A digest of every page of ``site``: which offline world a cached local result belongs to
    (every world has the same base URL and paths)."""
    digest = hashlib.sha256()
    for page in site:
        digest.update(page.url.encode() + b"\0" + page.html.encode() + b"\0")
    return digest.hexdigest()[:16]


def build_tools(
    spec: ToolsSpec, site: PageStore | None, noise: NoiseConfig | None = None
) -> dict[str, Tool]:
    """The tools named in ``spec``: behind the leakage guard when ``spec.leakage_guard`` is on,
    then wrapped in noise when ``noise.rate > 0``."""
    unknown = [name for name in spec.names if name not in TOOL_NAMES]
    if unknown:
        raise ValueError(f"Unknown tool {unknown[0]!r}; available tools: {', '.join(TOOL_NAMES)}.")
    if not spec.names:
        return {}  # a closed-book env: the agent answers from the question alone
    if spec.backend == "web":
        tools: Mapping[str, Tool] = web_tools(spec)
    else:
        if site is None:
            raise ValueError("Local tools need an offline site; this env's source has none.")
        tools = cached_tools(
            {
                "search": _local_search(site, spec.search_top_k),
                "browse": Browse(StoreFetcher(site), max_chars=spec.browse_max_chars),
            },
            spec,
            site=site_digest(site) if spec.cache_mode != "off" else "",
        )
    chosen = {name: tools[name] for name in spec.names}
    if spec.leakage_guard:
        base_url = site.base_url if spec.backend == "local" and site is not None else None
        chosen = guard_tools(chosen, spec.blocked_domains, base_url=base_url)
    return apply_noise(chosen, noise) if noise is not None else chosen
