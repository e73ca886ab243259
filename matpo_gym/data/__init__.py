"""Task sources: the offline synthetic world and loaders for the real benchmarks."""

from matpo_gym.data.tasks import Page, PageStore, Task

__all__ = ["Page", "PageStore", "Task"]
