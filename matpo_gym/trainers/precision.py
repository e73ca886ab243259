"""What the trained weights are stored in and what the forward pass computes in.

``bf16-mixed`` (the default on CUDA and on CPUs that multiply bfloat16 natively) keeps float32
master weights, gradients and AdamW moments and runs the forward and backward passes under
bfloat16 autocast, as FSDP mixed precision does in the reference trainer. Pure ``bf16`` halves
the weight memory, but an AdamW update smaller than one bfloat16 step of a weight (about 0.4% of
it) is rounded away: at the paper's learning rate of 1e-5 most updates vanish, so it is offered
only as an explicit choice.

This module imports no torch at import time, so ``train --dry-run`` can size a run with it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "fp32", "bf16", "bf16-mixed"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "bf16-mixed")


@dataclass(frozen=True)
class PrecisionPlan:
    """A resolved precision: the bytes each value of the training state takes, and the autocast."""

    name: Literal["fp32", "bf16", "bf16-mixed"]

    @property
    def weight_bytes(self) -> int:
        """Bytes per weight, gradient and AdamW moment (the optimizer keeps the weights' dtype)."""
        return 2 if self.name == "bf16" else 4

    @property
    def compute(self) -> str:
        """The dtype matrix products run in."""
        return "float32" if self.name == "fp32" else "bfloat16"

    @property
    def compute_bytes(self) -> int:
        """Bytes per value of what matrix products read and write (activations, gathered weights)."""
        return 4 if self.name == "fp32" else 2

    @property
    def label(self) -> str:
        """How a plan or a report names it."""
        if self.name == "bf16-mixed":
            return "bf16-mixed (float32 weights, bfloat16 compute)"
        return "bfloat16" if self.name == "bf16" else "float32"

    def weight_dtype(self) -> torch.dtype:
        import torch

        return torch.bfloat16 if self.name == "bf16" else torch.float32

    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype forward passes autocast to (``bf16-mixed``), or None: they run in the weights' dtype."""
        import torch

        return torch.bfloat16 if self.name == "bf16-mixed" else None

    @contextlib.contextmanager
    def autocast(self, device: torch.device) -> Iterator[None]:
        """Autocast around a forward pass under ``bf16-mixed``; nothing otherwise."""
        import torch

        dtype = self.autocast_dtype()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            yield


BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
"""CPU features that multiply bfloat16 matrices in hardware: AMX tiles (Intel Sapphire Rapids and
later) or AVX-512 BF16 dot products (AMD Zen 4 and later, Intel Cooper Lake)."""


def native_bf16(device_type: str) -> bool:
    """Whether the device multiplies bfloat16 matrices natively: CUDA, or a CPU with one of
    :data:`BF16_CPU_FLAGS`. There bfloat16 autocast makes a tiny model's training step 1.7x
    (AVX-512 BF16, 2 cores) to 2x (AMX) faster; without them a CPU emulates bfloat16 and float32
    is faster."""
    if device_type == "cuda":
        return True
    return device_type == "cpu" and bool(BF16_CPU_FLAGS & _cpu_flags())


@functools.cache
def cpu_info() -> dict[str, str]:
    """The first processor's fields as Linux reports them in ``/proc/cpuinfo`` (``model name``,
    ``flags``...; read without torch, for the dry-run); empty elsewhere."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    if info:
                        break  # the first processor's block ends at a blank line
                    continue
                key, _, value = line.partition(":")
                info[key.strip()] = " ".join(value.split())
    except OSError:
        pass
    return info


def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags; empty where they are not reported."""
    return frozenset(cpu_info().get("flags", "").split())


def resolve_precision(precision: str, device_type: str) -> PrecisionPlan:
    """``auto`` is ``bf16-mixed`` where bfloat16 is native (:func:`native_bf16`) and ``fp32``
    elsewhere; an unknown name is an error."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
    if precision == "auto":
        return PrecisionPlan("bf16-mixed" if native_bf16(device_type) else "fp32")
    return PrecisionPlan(precision)  # type: ignore[arg-type]


__all__ = ["BF16_CPU_FLAGS", "PRECISIONS", "Precision", "PrecisionPlan", "cpu_info", "native_bf16",
           "resolve_precision"]
