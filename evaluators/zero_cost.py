"""Zero-cost proxies: scores of an untrained network from one mini-batch, no training.

Every proxy is registered in :data:`nasplat.registry.PROXIES` as ``fn(model, x, y) -> float``
(``model`` freshly initialised and owned by the call, which may change it; ``x`` a float
NCHW batch, ``y`` its labels). Higher scores predict higher accuracy for every proxy.
"Weights" below are the parameters with two or more dimensions (convolution, linear and
attention projection matrices); biases and norm scales are left out, as in the papers.

- ``synflow`` (Tanaka et al. 2020; as a NAS proxy, Abdelfattah et al. 2021): absolute
  weights, double precision, eval mode, an all-ones input; sum over weights of w * dR/dw where
  R is the sum of the outputs. Data-independent.
- ``naswot`` (Mellor et al. 2021): the log-determinant of the kernel K[i, j] = number of
  rectifier units where inputs i and j agree (both active or both inactive), over the batch.
- ``jacov`` (Mellor et al. 2020, v1): -sum(log(v + k) + 1 / (v + k)), k = 1e-5, over the
  eigenvalues v of the correlation matrix of the per-input Jacobians d(sum of outputs)/dx.
- ``grad_norm``: sum of the L2 norms of the weights' gradients of the cross-entropy loss.
- ``snip`` (Lee et al. 2019): sum over weights of |w * dL/dw| for the cross-entropy loss L.
- ``params`` and ``flops``: parameter count and forward FLOPs of one input (torch's counter).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasplat.registry import PROXIES

RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.SiLU, nn.GELU, nn.ELU)
"""Activation modules whose input sign forms NASWOT's binary code."""


def _logits(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple | list) else output


def weights(model: nn.Module) -> list[torch.Tensor]:
    """The parameters a proxy sums over: those with two or more dimensions."""
    return [p for p in model.parameters() if p.dim() >= 2]


def _loss_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(_logits(model(x)), y).backward()
    return weights(model)


@PROXIES.register("synflow", description="synaptic flow: sum |w| * dR/d|w| on an all-ones input")
def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.double().eval()
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    model.zero_grad(set_to_none=True)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    _logits(model(ones)).sum().backward()
    return float(sum((w * w.grad).sum().item() for w in weights(model) if w.grad is not None))


@PROXIES.register("naswot", description="NASWOT: log-determinant of the activation-pattern kernel")
def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    codes: list[torch.Tensor] = []

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        codes.append((inputs[0] > 0).reshape(len(inputs[0]), -1).double())

    handles = [
        m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, RECTIFIERS)
    ]
    try:
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    codes = [c for c in codes if len(c) == len(x)]  # token-shaped activations keep batch first
    if not codes:
        return float("nan")
    c = torch.cat(codes, dim=1)
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


@PROXIES.register("jacov", description="Jacobian covariance of the inputs' gradients")
def jacov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.train()
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    _logits(model(x)).sum().backward()
    jacobians = x.grad.reshape(len(x), -1).double()
    corr = torch.corrcoef(jacobians)
    if not torch.isfinite(corr).all():
        return float("-inf")  # some input's Jacobian is constant: the network ignores inputs
    eigenvalues = torch.linalg.eigvalsh(corr).clamp_min(0)
    k = 1e-5
    return float(-torch.sum(torch.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))


@PROXIES.register("grad_norm", description="sum of the weights' gradient norms of the loss")
def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    grads = [w.grad for w in _loss_gradients(model, x, y) if w.grad is not None]
    return float(sum(g.norm().item() for g in grads))


@PROXIES.register("snip", description="SNIP connection sensitivity: sum |w * dL/dw|")
def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    params = _loss_gradients(model, x, y)
    return float(sum((w * w.grad).abs().sum().item() for w in params if w.grad is not None))


@PROXIES.register("params", description="number of parameters")
def params(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    from nasplat.ml.profiling import count_params

    return float(count_params(model))


@PROXIES.register("flops", description="forward FLOPs of one input (torch's flop counter)")
def flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    from nasplat.ml.profiling import profile

    return profile(model, (1, *x.shape[1:]))["flops"]


def finite_or_worst(value: float) -> float:
    """NaN (an undefined score) ranks last, like -inf."""
    return float("-inf") if math.isnan(value) else value


def score(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(score, seconds)`` of proxy ``name`` on a copy of ``model`` (the model is untouched)."""
    import copy
    import time

    proxy = PROXIES.get(name)
    candidate = copy.deepcopy(model)
    start = time.perf_counter()
    value = finite_or_worst(float(proxy(candidate, x, y)))
    return value, time.perf_counter() - start
