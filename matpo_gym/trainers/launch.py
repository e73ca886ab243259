"""What a recipe's launch command says about the run: launcher, processes and nodes.

A recipe names its launch command (its ``launch`` key, else its first-line comment), so that
``--dry-run`` can size a multi-process run without starting one.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from matpo_gym.config import ConfigError, load_toml


@dataclass(frozen=True)
class Launch:
    """How a recipe is meant to be started."""

    command: str
    processes: int
    nodes: int
    launcher: str
    """``accelerate``, ``torchrun`` or ``none`` (one process)."""


def read_launch(path: Path | None) -> Launch:
    """The launch command of a recipe: its ``launch`` key, else its first-line ``#`` comment; or,
    when this process was itself started by a launcher (``WORLD_SIZE`` set), what it started."""
    started = running_launch()
    if started is not None:
        return started
    command = ""
    if path is not None:
        command = str(load_toml(path).get("launch", "")).strip()
        if not command:
            first = path.read_text(encoding="utf-8").splitlines()[:1]
            command = first[0].lstrip("#").strip() if first and first[0].startswith("#") else ""
    return parse_launch(command or "matpo-bench train")


def running_launch() -> Launch | None:
    """The processes and nodes ``accelerate launch`` or ``torchrun`` started this process among
    (their ``WORLD_SIZE`` and ``LOCAL_WORLD_SIZE``), or None outside a launcher."""
    try:
        world = int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    except (KeyError, ValueError):
        return None
    if world < 1 or local < 1:
        return None
    return Launch("(this launch)", world, max(1, world // local), "torchrun")


def parse_launch(command: str) -> Launch:
    """Processes and nodes of an ``accelerate launch`` / ``torchrun`` command (else one process).

    >>> parse_launch("accelerate launch --num_processes 8 -m matpo_gym.cli train").processes
    8
    >>> launch = parse_launch("torchrun --nnodes 2 --nproc-per-node=8 -m matpo_gym.cli train")
    >>> (launch.processes, launch.nodes, launch.launcher)
    (16, 2, 'torchrun')
    """
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"launch command {command!r} cannot be parsed: {exc}") from None
    options: dict[str, str] = {}
    for index, word in enumerate(words):
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if not eq and index + 1 < len(words) and not words[index + 1].startswith("-"):
                value = words[index + 1]
            options[name.replace("-", "_")] = value

    def number(name: str) -> int:
        if name not in options:
            return 1
        try:
            return max(1, int(options[name]))
        except ValueError:
            raise ConfigError(
                f"launch command: --{name} must be a number, got {options[name]!r}"
            ) from None

    if "accelerate" in words[:2]:
        return Launch(command, number("num_processes"), number("num_machines"), "accelerate")
    if words and (words[0] == "torchrun" or "torch.distributed.run" in words):
        nodes = number("nnodes")
        return Launch(command, number("nproc_per_node") * nodes, nodes, "torchrun")
    return Launch(command, 1, 1, "none")
