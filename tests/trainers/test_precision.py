"""Precision: what the weights are kept in, what the forward pass computes in, and why it matters."""

from __future__ import annotations

import pytest
import torch

from matpo_gym.trainers.precision import native_bf16, resolve_precision


def test_auto_is_mixed_on_cuda_and_float32_on_cpu():
    assert resolve_precision("auto", "cuda").name == "bf16-mixed"
    assert resolve_precision("auto", "cpu").name == ("bf16-mixed" if native_bf16("cpu") else "fp32")
    assert resolve_precision("auto", "mps").name == "fp32"
    assert resolve_precision("bf16", "cuda").weight_bytes == 2
    assert resolve_precision("bf16-mixed", "cuda").weight_bytes == 4
    with pytest.raises(ValueError, match="Unknown precision 'fp8'"):
        resolve_precision("fp8", "cuda")


@pytest.mark.parametrize(("flags", "native"), [
    ("fpu sse2 avx2 avx512f avx512_bf16", True),  # AMD Zen 4, Intel Cooper Lake
    ("fpu sse2 avx2 avx512f amx_tile amx_bf16", True),  # Intel Sapphire Rapids
    ("fpu sse2 avx2 avx512f avx512_vnni", False),  # AVX-512 without bfloat16 dot products
    ("", False),  # no flags reported (not Linux)
])
def test_a_cpu_multiplies_bfloat16_natively_with_amx_or_avx512_bf16(monkeypatch, flags, native):
    from matpo_gym.trainers import precision

    monkeypatch.setattr(precision, "cpu_info", lambda: {"model name": "a CPU", "flags": flags} if flags else {})
    assert precision.native_bf16("cpu") is native
    assert resolve_precision("auto", "cpu").name == ("bf16-mixed" if native else "fp32")


def test_mixed_keeps_float32_weights_and_computes_in_bfloat16():
    plan = resolve_precision("bf16-mixed", "cpu")
    layer = torch.nn.Linear(8, 8).to(plan.weight_dtype())
    with plan.autocast(torch.device("cpu")):
        out = layer(torch.randn(2, 8))
    assert layer.weight.dtype == torch.float32 and out.dtype == torch.bfloat16
    with resolve_precision("fp32", "cpu").autocast(torch.device("cpu")):
        assert layer(torch.randn(2, 8)).dtype == torch.float32


def test_a_small_update_survives_float32_master_weights_but_not_pure_bfloat16():
    """An AdamW step of lr 1e-5 on weights near 1 is below one bfloat16 step (2**-7 there)."""
    results = {}
    for name in ("bf16", "bf16-mixed"):
        plan = resolve_precision(name, "cpu")
        weight = torch.nn.Parameter(torch.ones(64, dtype=plan.weight_dtype()))
        optimizer = torch.optim.AdamW([weight], lr=1e-5, weight_decay=0.0)
        for _ in range(10):
            optimizer.zero_grad()
            with plan.autocast(torch.device("cpu")):
                loss = (weight * torch.ones(64)).sum()
            loss.backward()
            optimizer.step()
        results[name] = float((1 - weight.detach().float()).mean())
    assert results["bf16"] == 0.0  # every update rounded away
    assert results["bf16-mixed"] == pytest.approx(1e-4, rel=0.05)  # 10 steps of lr 1e-5
