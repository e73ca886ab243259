"""Tools an agent can call, and the noise-injection wrapper for robustness ablations."""

from matpo_gym.tools.base import (
    Tool,
    ToolError,
    ToolResult,
    ToolSpec,
    ToolTimeout,
    run_tool,
    unknown_tool,
)
from matpo_gym.tools.browse import (
    Browse,
    FetchedPage,
    Fetcher,
    HttpFetcher,
    StoreFetcher,
    split_windows,
)
from matpo_gym.tools.cache import CachedTool, ToolCache
from matpo_gym.tools.html_text import PageText, html_to_text
from matpo_gym.tools.noise import ALL_KINDS, NoiseConfig, NoiseEvent, NoisyTool, apply_noise
from matpo_gym.tools.search import LocalSearch, SearchHit
from matpo_gym.tools.web_search import WebSearch

__all__ = [
    "ALL_KINDS",
    "Browse",
    "CachedTool",
    "FetchedPage",
    "Fetcher",
    "HttpFetcher",
    "LocalSearch",
    "NoiseConfig",
    "NoiseEvent",
    "NoisyTool",
    "PageText",
    "SearchHit",
    "StoreFetcher",
    "Tool",
    "ToolCache",
    "ToolError",
    "ToolResult",
    "ToolSpec",
    "ToolTimeout",
    "WebSearch",
    "apply_noise",
    "html_to_text",
    "run_tool",
    "split_windows",
    "unknown_tool",
]
