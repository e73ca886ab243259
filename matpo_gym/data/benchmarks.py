"""Entry point for the real benchmarks (FRAMES, WebWalkerQA, GAIA-text)."""

from __future__ import annotations

from matpo_gym.data.tasks import Task


class DatasetUnavailable(RuntimeError):
    """The data an env needs is not on this machine; the message says how to get it."""


HOW_TO_GET = {
    "frames": "google/frames-benchmark (test split)",
    "webwalkerqa": "callanwu/WebWalkerQA (main split)",
    "gaia": "gaia-benchmark/GAIA (2023_all, validation; gated: set HF_TOKEN)",
}


def load(kind: str, *, path: str | None, split: str) -> list[Task]:
    """Load a real benchmark from ``path``; without it, explain how to get the data."""
    if kind not in HOW_TO_GET:
        raise DatasetUnavailable(f"Unknown benchmark {kind!r}; known: {', '.join(HOW_TO_GET)}.")
    where = f"the local file or folder {path!r}" if path else "no local path"
    raise DatasetUnavailable(
        f"The {kind} benchmark is not available here ({where}, no network to the dataset hub). "
        f"Get {HOW_TO_GET[kind]} with `huggingface-cli download --repo-type dataset ...` on a "
        f"machine with access, then point the env at it: copy envs/{kind}.toml and set "
        f'[source] path = "/path/to/data". Offline, use the synthetic world envs instead, e.g. '
        f"`matpo-bench run --env world-frames`."
    )
