"""What a training run leaves on disk: checkpoints (resumable), metrics and curves."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matpo_gym.trainers.precision import PrecisionPlan, resolve_precision

LATEST = "latest"
TRAINER_STATE = "trainer_state.pt"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_model(name: str, device: torch.device, precision: PrecisionPlan | None = None, *, sharded: bool = False):
    """(model, tokenizer) from a local folder, a hub name, or ``tiny``, weights in the dtype the
    precision trains them in (float32 master weights unless it is pure ``bf16``). A model to be
    ``sharded`` loads on the CPU: :func:`~matpo_gym.trainers.sharding.shard_model` moves each shard
    to ``device``."""
    from matpo_gym.policies.hf import load_pretrained

    plan = precision or resolve_precision("auto", device.type)
    return load_pretrained(name, torch.device("cpu") if sharded else device, plan.weight_dtype())


class Checkpoints:
    """``<out>/checkpoints/step-N`` folders (model, tokenizer, trainer state) and a ``latest`` pointer."""

    def __init__(self, out: Path):
        self.root = out / "checkpoints"

    def save(self, step: int, model, tokenizer, optimizer_state: dict[str, Any] | None,
             extra: dict[str, Any], weights: dict[str, torch.Tensor] | None = None) -> Path:
        """Write ``step-N`` atomically; ``weights`` is a sharded model's gathered full state dict
        (:func:`~matpo_gym.trainers.sharding.full_model_state`), None saves ``model``'s own."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"step-{step}"
        tmp = self.root / f".step-{step}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, state_dict=weights)
        tokenizer.save_pretrained(tmp)
        torch.save(
            {
                "step": step,
                "optimizer": optimizer_state,
                "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
                "extra": extra,
            },
            tmp / TRAINER_STATE,
        )
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer = self.root / f".{LATEST}.tmp"
        pointer.write_text(final.name)
        os.replace(pointer, self.root / LATEST)
        return final

    def latest(self) -> Path | None:
        pointer = self.root / LATEST
        if not pointer.exists():
            return None
        path = self.root / pointer.read_text().strip()
        return path if path.is_dir() else None

    @staticmethod
    def state(path: Path) -> dict[str, Any] | None:
        """The trainer state saved in ``path`` (memory-mapped), or None for a folder without one
        (a hub model, a plain Hugging Face folder)."""
        file = Path(path) / TRAINER_STATE
        return torch.load(file, weights_only=False, mmap=True) if file.is_file() else None

    @staticmethod
    def restore(path: Path, load_optimizer: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        """The trainer state of ``path``; its optimizer state goes to ``load_optimizer``. Memory-mapped:
        processes that do not read the optimizer tensors (FSDP's other ranks) never load them."""
        state = Checkpoints.state(path)
        if state is None:
            raise FileNotFoundError(f"{path} holds no {TRAINER_STATE}: it is not a training checkpoint.")
        if load_optimizer is not None and state["optimizer"] is not None:
            load_optimizer(state["optimizer"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        return state


class MetricsLog:
    """``metrics.jsonl``: one JSON object per step, appended and flushed as it happens."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, row: dict[str, Any]) -> None:
        """Append one row; NaN (a metric with nothing to average) is written as null."""
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(clean, default=float) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (they belong to work a resume will redo)."""
        rows = [r for r in self.read() if r.get("step", 0) <= step]
        self.path.write_text("".join(json.dumps(r, default=float) + "\n" for r in rows), encoding="utf-8")


def enable_activation_checkpointing(model: Any) -> None:
    """Recompute each decoder layer in the backward pass (``gradient_checkpointing``), under the
    name the installed transformers gives it (``activation_checkpointing_enable`` from v5)."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def plot_curves(rows: list[dict[str, Any]], path: Path, keys: tuple[str, ...]) -> Path | None:
    """A PNG with one panel per metric against the step; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = tuple(k for k in keys if any(k in r for r in rows))
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for axis, key in zip(axes[0], keys):
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
        axis.set_title(key)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
