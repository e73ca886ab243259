"""``sharding = "fsdp"``: weights, gradients and AdamW states split over the processes (PyTorch FSDP2).

A full replica per process (:class:`~matpo_gym.trainers.distributed.DataParallel`) needs 16 bytes a
parameter under ``bf16-mixed``, 220 GiB for a 14B model. :func:`shard_model` applies
``fully_shard`` to every decoder layer and then to the root (embeddings, final norm, LM head), so
each process keeps 1/N of every tensor; a layer's weights are all-gathered just before its forward
and backward and freed after, and its gradients are reduce-scattered. Under ``bf16-mixed`` the
gathered weights are bfloat16 and gradients are reduced in float32 (the reference's FSDP mixed
precision); under ``fp32`` and ``bf16`` they keep the weights' dtype.

FSDP's collectives run inside forward and backward, so every process must run them equally often:

* training: every process runs the same number of forward/backward micro-batches; one with fewer
  pads with zero-weight ones (the trainers do, with :meth:`DataParallel.max`);
* generation: ``generate`` runs as many forward steps as its longest completion, which differs per
  process, so :func:`full_parameters` gathers every weight once before rollouts and generation runs
  with no collective at all;
* checkpoints: :func:`full_model_state` and :func:`optimizer_state` gather on every process, and
  process 0 writes a plain Hugging Face folder that ``from_pretrained`` loads.

Gradients are summed over processes, not averaged, as :meth:`DataParallel.sum_gradients` sums
them: the trainers already weight each loss by the token count of all processes together.

With one process (no ``accelerate launch``) ``fsdp`` runs over a one-process group: nothing is
split, but the numerics and checkpoints are those of a sharded run.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

from matpo_gym.trainers.batch import token_logprobs
from matpo_gym.trainers.precision import PrecisionPlan

if TYPE_CHECKING:
    from matpo_gym.trainers.distributed import DataParallel
    from matpo_gym.trainers.state import Checkpoints

LOGPROBS_METHOD = "fsdp_token_logprobs"
"""The model method :func:`model_logprobs` calls under FSDP, registered as a forward of the root."""


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether :func:`shard_model` has sharded ``model``."""
    return isinstance(model, FSDPModule)


def ensure_process_group(device: torch.device) -> None:
    """A one-process group when no launcher started one: FSDP needs a group even with nothing to split."""
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks, as Hugging Face names them in ``_no_split_modules``."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"{type(model).__name__} names no decoder layer class in _no_split_modules; "
                         "sharding = 'fsdp' wraps one FSDP group per decoder layer.")
    return layers


def shard_model(model: torch.nn.Module, device: torch.device, precision: PrecisionPlan) -> torch.nn.Module:
    """Shard ``model`` (on any device) over all processes, each shard on ``device``; returns it.

    The root keeps its weights gathered from forward to backward (it is needed first in backward);
    a frozen model (a KL reference, which has no backward) frees them after every forward.
    """
    ensure_process_group(device)
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    mixed = precision.name == "bf16-mixed"
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if mixed \
        else MixedPrecisionPolicy()
    trainable = any(p.requires_grad for p in model.parameters())
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=policy, reshard_after_forward=True)
    fully_shard(model, mesh=mesh, mp_policy=policy, reshard_after_forward=not trainable)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)  # a sum, as the loss weights expect
            force_sum = getattr(module, "set_force_sum_reduction_for_comms", None)  # torch >= 2.8
            if force_sum is not None:
                force_sum(True)  # gloo has no pre-multiplied sum (NCCL does)
    setattr(model, LOGPROBS_METHOD, functools.partial(token_logprobs, model))
    register_fsdp_forward_method(model, LOGPROBS_METHOD)
    return model


def model_logprobs(model: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:
    """:func:`~matpo_gym.trainers.batch.token_logprobs`, run as a forward of the root when sharded.

    It calls the decoder and the LM head separately (the head on generated positions only) and never
    the root's ``forward``, whose FSDP hooks gather the embeddings, final norm and head and prepare
    their backward; registered as a forward method, it runs those hooks itself.
    """
    method = getattr(model, LOGPROBS_METHOD, None)
    return method(*args, **kwargs) if method is not None else token_logprobs(model, *args, **kwargs)


@contextlib.contextmanager
def full_parameters(model: torch.nn.Module, enabled: bool = True) -> Iterator[None]:
    """Every weight gathered on every process (one all-gather per FSDP group), kept until exit.

    Inside, forward passes and ``model.generate`` issue no collective, so processes may generate
    different numbers of tokens and batches. A no-op for an unsharded model, or with ``enabled``
    False (a separate engine generates).
    """
    if not (enabled and is_sharded(model)):
        yield
        return
    modules = [m for m in model.modules() if isinstance(m, FSDPModule)]
    for module in modules:
        module.unshard()
        module.set_reshard_after_forward(False, recurse=False)
    # transformers' generate keeps an FSDP model's processes stepping together (an all-reduce per
    # token, ``synced_gpus``); with every weight here, each process may stop when it is done.
    model.generate = functools.partial(model.generate, synced_gpus=False)
    try:
        yield
    finally:
        del model.generate
        for module in modules:
            module.reshard()
            module.set_reshard_after_forward(module is not model, recurse=False)


def full_model_state(model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
    """The full state dict on process 0's CPU (``{}`` on the others); None when not sharded.

    Every process must call it: the shards are gathered one tensor at a time.
    """
    if not is_sharded(model):
        return None
    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_checkpoint(checkpoints: Checkpoints, parallel: DataParallel, step: int, model: torch.nn.Module,
                    tokenizer: Any, optimizer: torch.optim.Optimizer, extra: dict[str, Any]) -> None:
    """Write checkpoint ``step-N``: every process gathers (a no-op unless sharded), process 0 writes,
    and all wait until it is on disk."""
    weights = full_model_state(model)
    state = optimizer_state(model, optimizer)
    if parallel.is_main:
        checkpoints.save(step, model, tokenizer, state, extra, weights)
    parallel.barrier()


def optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """The optimizer's state to checkpoint: full and keyed by parameter name under FSDP (on process
    0's CPU, ``{}`` elsewhere; every process must call it), else ``optimizer.state_dict()``.

    None under FSDP before the first step: ``get_optimizer_state_dict`` would first take a zero
    step to create the state, and that extra step would shift AdamW's bias correction.
    """
    if not is_sharded(model):
        return optimizer.state_dict()
    if not optimizer.state:
        return None
    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True,
                                                                               cpu_offload=True))


def load_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Restore :func:`optimizer_state` on every process; under FSDP process 0 reads it and sends each
    process its shards. A checkpoint of the other kind (sharded or not) is converted by name."""
    names = [name for name, _ in model.named_parameters()]
    if not is_sharded(model):
        optimizer.load_state_dict(_renamed(state, {name: index for index, name in enumerate(names)}))
        return
    if not state["state"]:  # nothing stepped yet: the fresh optimizer is that state (see optimizer_state)
        return
    first = dist.get_rank() == 0
    full = _renamed(state, dict(enumerate(names))) if first else {}
    set_optimizer_state_dict(model, optimizer, full,
                             options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))


def _renamed(state: dict[str, Any], keys: dict[Any, Any]) -> dict[str, Any]:
    """``state`` with each parameter key (an index, or a name under FSDP) mapped through ``keys``."""
    return {
        **state,
        "state": {keys.get(key, key): value for key, value in state["state"].items()},
        "param_groups": [{**group, "params": [keys.get(p, p) for p in group["params"]]}
                         for group in state["param_groups"]],
    }


def full_named_parameters(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, full tensor) of every parameter, gathered one at a time under FSDP (every process
    must iterate them all), for a separate rollout engine that loads the updated weights."""
    for name, param in model.named_parameters():
        full = param.full_tensor() if hasattr(param, "full_tensor") else param
        yield name, full.detach()


__all__ = [
    "full_model_state",
    "full_named_parameters",
    "full_parameters",
    "is_sharded",
    "load_optimizer_state",
    "model_logprobs",
    "optimizer_state",
    "save_checkpoint",
    "shard_model",
]
