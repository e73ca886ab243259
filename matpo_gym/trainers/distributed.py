"""Data parallelism for the RL trainers, on the process group that accelerate or torchrun sets up.

Every process holds the full model, plays its share of the step's questions (all G rollouts of a
question stay on one process, so group advantages need no communication), and computes gradients
on its own tokens. One all-reduce of the flattened gradients per optimizer step then sums them, so
every process takes the same step. A process with no tokens still joins the all-reduce with
zeros: uneven work cannot deadlock, which per-micro-batch DDP hooks would. Launch with::

    accelerate launch --num_processes 8 -m matpo_gym.cli train --recipe trainers/paper-matpo-qwen3-4b.toml

In a single process every method here is a no-op. With ``sharding = "fsdp"``
(:mod:`~matpo_gym.trainers.sharding`) FSDP reduces the gradients instead of :meth:`sum_gradients`,
and :meth:`max` tells each process how many micro-batches to run so that all run as many.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import torch

T = TypeVar("T")


class DataParallel:
    """Rank, world size, sharding and the few collectives the trainer needs."""

    def __init__(self, cpu: bool = False):
        from accelerate import PartialState

        self.state = PartialState(cpu=cpu)
        self.rank = self.state.process_index
        self.world = self.state.num_processes
        self.device = self.state.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share: every ``world``-th item from its rank."""
        return list(items[self.rank :: self.world])

    def sum(self, value: float) -> float:
        """The sum of ``value`` over all processes."""
        if self.world == 1:
            return value
        tensor = torch.tensor([float(value)], device=self.device)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def max(self, value: int) -> int:
        """The largest ``value`` over all processes."""
        if self.world == 1:
            return value
        tensor = torch.tensor([int(value)], device=self.device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return int(tensor.item())

    def gather(self, items: list[Any]) -> list[Any]:
        """Every process's ``items``, concatenated in rank order."""
        if self.world == 1:
            return list(items)
        gathered: list[list[Any]] = [[] for _ in range(self.world)]
        torch.distributed.all_gather_object(gathered, items)
        return [item for part in gathered for item in part]

    def sum_gradients(self, model: torch.nn.Module) -> None:
        """Sum every parameter's gradient over processes (missing gradients count as zero)."""
        if self.world == 1:
            return
        params = [p for p in model.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        torch.distributed.all_reduce(flat)
        offset = 0
        for p in params:
            count = p.grad.numel()
            p.grad.copy_(flat[offset : offset + count].view_as(p.grad))
            offset += count

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()
