"""DARTS: differentiable architecture search (Liu, Simonyan & Yang, ICLR 2019).

The supernet runs in continuous mode: every edge outputs the softmax(alpha)-weighted sum of its
candidate ops. Bilevel optimisation on two halves of the training split: the network weights
``w`` minimise the loss on the first half (SGD with momentum, cosine schedule, gradient
clipping); the architecture parameters ``alpha`` minimise the loss on the second half (Adam).
Each step first updates ``alpha`` on a batch of the second half, then ``w`` on a batch of the
first half.

First order (``order=1``) uses ``grad_alpha L_val(w, alpha)``. Second order (``order=2``)
differentiates through one virtual SGD step ``w' = w - xi * (momentum * buf + grad_w L_train
+ weight_decay * w)`` with ``xi`` the current weight learning rate::

    grad_alpha L_val(w', alpha) - xi * (grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 eps)

where ``w+- = w +- eps * grad_w' L_val(w', alpha)`` and ``eps = epsilon / ||grad_w' L_val||``
(the paper's finite-difference Hessian-vector product, ``epsilon = 0.01``).

Two later methods are options:

- PC-DARTS (Xu et al., ICLR 2020): ``partial_channels=K`` runs each edge's candidate ops on
  ``1/K`` of its channels (the rest bypass them, then a channel shuffle), and edge
  normalisation (on with it unless ``edge_normalization=false``) weights each node's input
  edges by a softmax of per-edge logits ``beta``, learnt with the alphas; the derivation reads
  ``softmax(alpha) * softmax(beta)`` (:mod:`search_spaces.supernet`).
- beta-DARTS (Ye et al., CVPR 2022): ``regularizer="beta-decay"`` adds ``lambda_e *
  mean_edges logsumexp(alpha_edge)`` to the architecture loss, with ``lambda_e =
  regularizer_weight * (e - 1) / epochs`` growing linearly over the epochs ``e`` (the paper's
  ``0.5 e`` over 50 epochs: ``regularizer_weight=25``). Its gradient on an edge is
  ``lambda_e softmax(alpha_edge) / edges``: the largest alphas are pushed down the most, which
  keeps an edge's softmax from collapsing onto one op (parameter-free ones, typically).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.genotype import Genotype
from nasplat.ml.training import evaluate_model
from nasplat.registry import STRATEGIES
from nasplat.space import SearchSpace
from strategies.declared import DARTS
from strategies.oneshot_common import SupernetStrategy, accuracy, alpha_values, cosine_lr

Batch = tuple[torch.Tensor, torch.Tensor]

REGULARIZERS = ("none", "beta-decay")


def beta_decay_loss(alphas: list[nn.Parameter]) -> torch.Tensor:
    """beta-DARTS's regulariser: the mean over edges of ``logsumexp(alpha_edge)``."""
    return torch.stack([torch.logsumexp(a, dim=0) for a in alphas]).mean()


@STRATEGIES.register(
    "darts", description="DARTS: differentiable supernet search, 1st/2nd order (Liu et al. 2019)"
)
class Darts(SupernetStrategy):
    """DARTS on a space's continuous supernet.

    Options (paper values unless noted; see docs/strategies.md): ``order`` (1; 2 for the
    unrolled step), ``epochs`` (10; paper 50 on CIFAR-10), ``batch_size`` (64), ``lr`` (0.025)
    cosine-annealed to ``lr_min`` (0.001), ``momentum`` (0.9), ``weight_decay`` (3e-4),
    ``grad_clip`` (5), ``arch_lr`` (3e-3; paper 3e-4 for ~20,000 steps, scaled up for the
    ~100-300 steps of a small dataset), ``arch_betas`` ((0.5, 0.999)), ``arch_weight_decay``
    (1e-3), ``epsilon`` (0.01), ``partial_channels`` (1: off; PC-DARTS uses 4),
    ``edge_normalization`` (None: on when ``partial_channels > 1``), ``regularizer``
    (``"none"`` or ``"beta-decay"``), ``regularizer_weight`` (25, beta-DARTS's final weight),
    ``channels_last`` (False; True stores the supernet's 4-d weights channels-last, which made
    a CPU step ~15% cheaper in docs/benchmarks.md), plus the common ones of
    :class:`~strategies.oneshot_common.SupernetStrategy`.
    """

    name = "darts"
    OPTIONS = DARTS
    mode = "continuous"

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        direction: str | Direction = Direction.MAXIMIZE,
        order: int = 1,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        grad_clip: float | None = 5.0,
        arch_lr: float = 3e-3,
        arch_betas: Any = (0.5, 0.999),
        arch_weight_decay: float = 1e-3,
        epsilon: float = 0.01,
        partial_channels: int = 1,
        edge_normalization: bool | None = None,
        regularizer: str = "none",
        regularizer_weight: float = 25.0,
        channels_last: bool = False,
        **common: Any,
    ) -> None:
        super().__init__(space, seed=seed, direction=direction, **common)
        if int(order) not in (1, 2):
            raise ConfigError(f"darts: order must be 1 or 2, got {order}")
        if lr <= 0 or arch_lr <= 0 or not 0 <= lr_min <= lr or epsilon <= 0:
            raise ConfigError("darts: lr, arch_lr and epsilon must be > 0 and 0 <= lr_min <= lr")
        checks = {
            f"partial_channels must be an integer >= 1, got {partial_channels!r}": (
                isinstance(partial_channels, int)
                and not isinstance(partial_channels, bool)
                and partial_channels >= 1
            ),
            f"edge_normalization must be true, false or null, got {edge_normalization!r}": (
                edge_normalization is None or isinstance(edge_normalization, bool)
            ),
            f"regularizer must be one of {', '.join(REGULARIZERS)}, got {regularizer!r}": (
                regularizer in REGULARIZERS
            ),
            f"regularizer_weight must be a number >= 0, got {regularizer_weight!r}": (
                isinstance(regularizer_weight, int | float)
                and not isinstance(regularizer_weight, bool)
                and regularizer_weight >= 0
            ),
            f"channels_last must be true or false, got {channels_last!r}": isinstance(
                channels_last, bool
            ),
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ConfigError(f"darts: {'; '.join(failed)}")
        self.partial_channels = int(partial_channels)
        self.edge_normalization = (
            self.partial_channels > 1 if edge_normalization is None else edge_normalization
        )
        self.regularizer = regularizer
        self.regularizer_weight = float(regularizer_weight)
        self.reg_weight = 0.0  # the regulariser's weight in the current epoch
        self.channels_last = channels_last
        self.order = int(order)
        self.lr, self.lr_min = float(lr), float(lr_min)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.arch_lr, self.arch_betas = float(arch_lr), tuple(float(b) for b in arch_betas)
        self.arch_weight_decay = float(arch_weight_decay)
        self.epsilon = float(epsilon)

    def supernet_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.partial_channels > 1:
            options["partial_channels"] = self.partial_channels
        if self.edge_normalization:
            options["edge_normalization"] = True
        return options

    def setup(self, context: Any) -> None:
        if self.channels_last:  # 4-d weights in NHWC order; conv outputs follow them
            self.supernet.to(memory_format=torch.channels_last)
        self.weight_optimizer = torch.optim.SGD(
            self.supernet.weight_parameters(),
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )
        self.arch_optimizer = torch.optim.Adam(
            self.supernet.arch_parameters(),
            lr=self.arch_lr,
            betas=self.arch_betas,  # type: ignore[arg-type]
            weight_decay=self.arch_weight_decay,
        )

    # --- one epoch --------------------------------------------------------------------------
    def train_epoch(self, epoch: int, context: Any) -> dict[str, float]:
        lr = cosine_lr(epoch, self.epochs, self.lr, self.lr_min)
        for group in self.weight_optimizer.param_groups:
            group["lr"] = lr
        if self.regularizer != "none":
            self.reg_weight = self.regularizer_weight * (epoch - 1) / self.epochs
        self.supernet.train()
        sums = {"train_loss": 0.0, "train_acc": 0.0, "arch_loss": 0.0}
        steps = 0
        for train_batch in self.weight_data.epoch():
            sums["arch_loss"] += self.arch_step(train_batch, self.arch_data.next(), lr)
            loss, acc = self.weight_step(train_batch)
            sums["train_loss"] += loss
            sums["train_acc"] += acc
            steps += 1
        val_acc, val_loss = evaluate_model(self.supernet, context.splits.val)
        values = {k: v / max(steps, 1) for k, v in sums.items()}
        values.update(value=val_acc, val_loss=val_loss, lr=lr)
        values.update(alpha_values(self.supernet.arch_weights()))
        edge_weights = getattr(self.supernet, "edge_weights", dict)()
        values.update({f"beta.{edge}": w for edge, w in edge_weights.items()})
        if self.regularizer != "none":
            values["regularizer_weight"] = self.reg_weight
        return values

    def weight_step(self, batch: Batch) -> tuple[float, float]:
        """One SGD step of the weights on a batch of the first half: ``(loss, accuracy)``."""
        weights = self.supernet.weight_parameters()
        loss, logits = self.loss(batch)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
        for w, g in zip(weights, grads, strict=True):
            w.grad = g
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(weights, self.grad_clip)
        self.weight_optimizer.step()
        self.weight_optimizer.zero_grad(set_to_none=True)
        return loss.item(), accuracy(logits.detach(), batch[1])

    def arch_step(self, train_batch: Batch, val_batch: Batch, lr: float) -> float:
        """One Adam step of the architecture parameters (plus the regulariser's gradient, if
        any); returns the validation-half loss."""
        alphas = self.supernet.arch_parameters()
        grads, val_loss = self.arch_gradient(train_batch, val_batch, lr)
        for a, g in zip(alphas, grads, strict=True):
            a.grad = g
        self.arch_optimizer.step()
        self.arch_optimizer.zero_grad(set_to_none=True)
        return val_loss

    # --- the architecture gradient -------------------------------------------------------------
    def arch_gradient(
        self, train_batch: Batch, val_batch: Batch, xi: float
    ) -> tuple[list[torch.Tensor], float]:
        """:meth:`hypergradient` plus the regulariser's gradient at this epoch's weight
        (``reg_weight``); zero for the edge normalisation's betas."""
        grads, val_loss = self.hypergradient(train_batch, val_batch, xi)
        if self.regularizer == "beta-decay" and self.reg_weight > 0:
            alphas = self.supernet.arch_parameters()
            extra = _grads(beta_decay_loss(self.supernet.alpha_parameters()), alphas)
            grads = [g + self.reg_weight * e for g, e in zip(grads, extra, strict=True)]
        return grads, val_loss

    def hypergradient(
        self, train_batch: Batch, val_batch: Batch, xi: float
    ) -> tuple[list[torch.Tensor], float]:
        """``(gradient of the validation loss w.r.t. each alpha, validation loss)``: first
        order, or through the unrolled step with learning rate ``xi`` (``order=2``)."""
        alphas = self.supernet.arch_parameters()
        if self.order == 1:
            loss, _ = self.loss(val_batch)
            return _grads(loss, alphas), loss.item()
        weights = self.supernet.weight_parameters()
        original = [w.detach().clone() for w in weights]
        try:
            self._virtual_step(train_batch, weights, xi)
            loss, _ = self.loss(val_batch)
            both = _grads(loss, [*alphas, *weights])
            direct, v = both[: len(alphas)], both[len(alphas) :]
            hessian_v = self._hessian_vector(train_batch, weights, original, v)
        finally:
            _assign(weights, original)
        return [d - xi * h for d, h in zip(direct, hessian_v, strict=True)], loss.item()

    def _virtual_step(self, batch: Batch, weights: list[nn.Parameter], xi: float) -> None:
        """``w <- w - xi * (momentum * buf + grad_w L_train + weight_decay * w)`` in place."""
        loss, _ = self.loss(batch)
        grads = _grads(loss, weights)
        with torch.no_grad():
            for w, g in zip(weights, grads, strict=True):
                step = g + self.weight_decay * w
                buf = self.weight_optimizer.state.get(w, {}).get("momentum_buffer")
                if buf is not None:
                    step = step + self.momentum * buf
                w.sub_(xi * step)

    def _hessian_vector(
        self,
        batch: Batch,
        weights: list[nn.Parameter],
        original: list[torch.Tensor],
        v: list[torch.Tensor],
    ) -> list[torch.Tensor]:
        """``d/d alpha (grad_w L_train) . v`` by central differences around ``original``."""
        norm = torch.cat([x.flatten() for x in v]).norm()
        eps = self.epsilon / max(norm.item(), 1e-12)
        alphas = self.supernet.arch_parameters()
        sides = []
        for sign in (1.0, -1.0):
            _assign(weights, [w + sign * eps * d for w, d in zip(original, v, strict=True)])
            loss, _ = self.loss(batch)
            sides.append(_grads(loss, alphas))
        return [(p - m) / (2 * eps) for p, m in zip(*sides, strict=True)]

    # --- results --------------------------------------------------------------------------------
    def derived(self) -> Genotype:
        return self.supernet.derive_genotype()

    def final_genotype(self, context: Any) -> Genotype:
        return self.supernet.derive_genotype()

    def extra_state(self) -> dict[str, Any]:
        return {
            "weight_optimizer": self.weight_optimizer.state_dict(),
            "arch_optimizer": self.arch_optimizer.state_dict(),
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.weight_optimizer.load_state_dict(state["weight_optimizer"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])


def _grads(loss: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    """Gradients of ``loss`` w.r.t. ``params`` (zeros for parameters it does not use)."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def _assign(params: list[nn.Parameter], values: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, value in zip(params, values, strict=True):
            p.copy_(value)
