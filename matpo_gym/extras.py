"""Which optional extra provides a module, so a command that needs one says what to install."""

from __future__ import annotations

OPTIONAL_MODULES = {
    "torch": "hf", "transformers": "hf", "tokenizers": "hf", "accelerate": "hf",
    "datasets": "data", "matplotlib": "plot", "ddgs": "web", "vllm": "vllm",
}
"""Top-level module -> the extra of ``matpo-gym`` that installs it."""


def install_hint(error: ImportError) -> str | None:
    """``pip install "matpo-gym[EXTRA]"`` for a missing module of an optional extra, else None.

    >>> install_hint(ModuleNotFoundError("No module named 'torch'", name="torch"))
    'pip install "matpo-gym[hf]"'
    """
    extra = OPTIONAL_MODULES.get((getattr(error, "name", None) or "").partition(".")[0])
    return f'pip install "matpo-gym[{extra}]"' if extra else None
