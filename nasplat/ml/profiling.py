"""Parameter and FLOP counts of a module, measured with torch's own flop counter."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils import flop_counter

_aten = torch.ops.aten


def _cpu_sdpa(q: Any, k: Any, v: Any, *_: Any, out_shape: Any = None, **__: Any) -> int:
    return flop_counter.sdpa_flop_count(q, k, v)


def _cpu_sdpa_backward(
    grad: Any, q: Any, k: Any, v: Any, *_: Any, out_shape: Any = None, **__: Any
) -> int:
    return flop_counter.sdpa_backward_flop_count(grad, q, k, v)


# torch's counter knows the CUDA attention kernels but not the CPU flash-attention kernel that
# ``F.scaled_dot_product_attention`` dispatches to on CPU; map it to torch's own SDPA formulas.
CPU_ATTENTION_FLOPS: dict[Any, Any] = {
    _aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa,
    _aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward,
}


def count_params(module: torch.nn.Module) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters())


def flop_counter_mode() -> flop_counter.FlopCounterMode:
    """A silent ``FlopCounterMode`` that also counts CPU scaled-dot-product attention."""
    return flop_counter.FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS)


def profile(module: torch.nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
    """``{"params", "flops"}`` of ``module`` on a zero tensor of ``input_shape``.

    FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` for one forward pass in
    eval mode under ``no_grad`` (a multiply-add counts 2; only the ops torch's counter knows,
    i.e. matmuls, convolutions and attention, contribute: elementwise ops, norms, pooling and
    gathers count zero). The module's training flag is restored afterwards. The input is created
    on the device of the module's first parameter (CPU if it has none).
    """
    first = next(module.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    was_training = module.training
    module.eval()
    counter = flop_counter_mode()
    try:
        with torch.no_grad(), counter:
            module(torch.zeros(*input_shape, device=device))
    finally:
        module.train(was_training)
    return {"params": float(count_params(module)), "flops": float(counter.get_total_flops())}
