"""ENAS: efficient neural architecture search via parameter sharing (Pham et al., ICML 2018).

The supernet runs in single-path mode. Each epoch alternates two phases:

1. shared weights: for every minibatch of the first half of the training split, the
   :class:`~strategies.rl.Controller` samples a child (one choice per decision) and the child's
   path is trained one SGD step (Nesterov momentum, cosine schedule, gradient clipping);
2. controller: ``controller_steps`` children are sampled and rewarded with their shared-weight
   accuracy on a minibatch of the second half (plus ``entropy_weight`` times the sample's
   entropy, as ENAS); REINFORCE with a moving-average baseline (``baseline_decay``) and Adam.

After every epoch the controller's most likely child (argmax decoding) is evaluated on the
validation split and recorded. At the end ``final_samples`` children are sampled, ranked by
shared-weight accuracy on the whole second half, and the best is returned for retraining.

Running BatchNorm statistics accumulated over many different paths match no single child, so
a child is never evaluated with them. The per-epoch validation of the greedy child and the final
ranking re-estimate BatchNorm statistics for each child's path first, as single-path one-shot
NAS does (SPOS): reset, cumulative average over ``bn_recalibration`` fixed batches of the
weights' half in training mode without gradient, then evaluation mode
(:func:`~nasplat.ml.training.recalibrate_batchnorm`); the supernet's own running statistics are
restored afterwards. A controller reward is measured on one minibatch with that minibatch's own
statistics (training-mode normalisation, running statistics untouched): re-estimating per reward
would multiply the controller phase's cost by ``bn_recalibration + 1``. ``bn_recalibration=0``
evaluates every child with batch statistics (the earlier behaviour).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.genotype import Genotype
from nasplat.ml.data import tensors_of
from nasplat.ml.training import recalibrate_batchnorm
from nasplat.registry import STRATEGIES
from nasplat.space import SearchSpace
from strategies._encoding import decode
from strategies.declared import ENAS
from strategies.oneshot_common import (
    SupernetStrategy,
    accuracy,
    cosine_lr,
    frozen_batchnorm_stats,
    logits_of,
    split_halves,
)
from strategies.rl import Controller


@STRATEGIES.register(
    "enas", description="ENAS: single-path supernet + REINFORCE controller (Pham et al. 2018)"
)
class Enas(SupernetStrategy):
    """ENAS on a space's single-path supernet, with the ``rl`` strategy's LSTM controller.

    Options (ENAS values unless noted; see docs/strategies.md): ``epochs`` (10), ``batch_size``
    (64), ``lr`` (0.05) cosine-annealed to ``lr_min`` (0.001), ``momentum`` (0.9, Nesterov),
    ``weight_decay`` (1e-4), ``grad_clip`` (5), ``controller_lr`` (3.5e-3, ENAS's released
    code; paper 3.5e-4), ``controller_steps`` (20 per epoch), ``entropy_weight`` (1e-4),
    ``baseline_decay`` (0.99), ``hidden`` (64), ``temperature`` (5), ``tanh_constant`` (2.5),
    ``final_samples`` (10), ``bn_recalibration`` (10 batches of ``batch_size``: the BatchNorm
    re-estimation per evaluated child, see above; 0: batch statistics), plus the common ones of
    :class:`~strategies.oneshot_common.SupernetStrategy`.
    """

    name = "enas"
    OPTIONS = ENAS
    mode = "single_path"

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        direction: str | Direction = Direction.MAXIMIZE,
        lr: float = 0.05,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        grad_clip: float | None = 5.0,
        controller_lr: float = 3.5e-3,
        controller_steps: int = 20,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.99,
        hidden: int = 64,
        temperature: float | None = 5.0,
        tanh_constant: float | None = 2.5,
        final_samples: int = 10,
        bn_recalibration: int = 10,
        **common: Any,
    ) -> None:
        super().__init__(space, seed=seed, direction=direction, **common)
        checks = {
            "lr and controller_lr must be > 0": lr > 0 and controller_lr > 0,
            "controller_steps must be >= 1": int(controller_steps) >= 1,
            "final_samples must be >= 1": int(final_samples) >= 1,
            "baseline_decay must be in [0, 1)": 0 <= baseline_decay < 1,
            "bn_recalibration must be >= 0": int(bn_recalibration) >= 0,
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ConfigError(f"enas: {'; '.join(failed)}")
        self.lr, self.lr_min = float(lr), float(lr_min)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.controller_lr = float(controller_lr)
        self.controller_steps = int(controller_steps)
        self.entropy_weight = float(entropy_weight)
        self.baseline_decay = float(baseline_decay)
        self.final_samples = int(final_samples)
        self.bn_recalibration = int(bn_recalibration)
        self.calibration: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)
        # decisions the supernet cannot vary have one choice here (SearchSpace.one_shot_decisions)
        self.decisions = space.one_shot_decisions()
        self.controller = Controller(
            [len(d.choices) for d in self.decisions],
            hidden=int(hidden),
            temperature=temperature,
            tanh_constant=tanh_constant,
            generator=self.generator,
        )
        self.baseline: float | None = None
        self.final_ranking: list[tuple[float, Genotype]] = []

    def setup(self, context: Any) -> None:
        self.weight_optimizer = torch.optim.SGD(
            self.supernet.weight_parameters(),
            lr=self.lr,
            momentum=self.momentum,
            nesterov=self.momentum > 0,
            weight_decay=self.weight_decay,
        )
        self.controller_optimizer = torch.optim.Adam(
            self.controller.parameters(), lr=self.controller_lr
        )
        # fixed BatchNorm calibration batches from the weights' half (own generator: the
        # training stream is untouched, and a resumed search draws the same batches)
        x = self.weight_data.x
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed + 2))
        chosen = order[: self.bn_recalibration * self.batch_size].to(x.device)
        self.calibration = list(x[chosen].split(self.batch_size)) if self.bn_recalibration else []

    # --- sampling and rewards -----------------------------------------------------------------
    def sample(self) -> tuple[Genotype, torch.Tensor, torch.Tensor]:
        """A child from the controller: ``(genotype, log_prob, entropy)`` (differentiable)."""
        indices, log_prob, entropy = self.controller.sample(self.generator)
        return decode(self.space, indices.tolist(), self.decisions), log_prob, entropy

    def shared_accuracy(self, genotype: Genotype, dataset: Any) -> float:
        """Accuracy of a child with the shared weights on a batch or a whole dataset: a
        dataset with the child's re-estimated BatchNorm statistics (``bn_recalibration``), a
        batch (a controller reward) with its own statistics. The supernet's running statistics
        and training mode are left as they were."""
        whole = isinstance(dataset, Dataset)
        x, y = tensors_of(dataset) if whole else dataset
        device = next(self.supernet.parameters()).device
        correct = 0.0
        self.supernet.train()
        with torch.no_grad(), frozen_batchnorm_stats(self.supernet):
            if whole and self.calibration:
                recalibrate_batchnorm(
                    self.supernet,
                    self.calibration,
                    forward=lambda xb: self.supernet(xb, genotype=genotype),
                )
                self.supernet.eval()
            for start in range(0, len(y), 256):
                xb, yb = x[start : start + 256].to(device), y[start : start + 256].to(device)
                logits = logits_of(self.supernet(xb, genotype=genotype))
                correct += accuracy(logits, yb) * len(yb)
        self.supernet.train()
        return correct / len(y)

    # --- one epoch --------------------------------------------------------------------------
    def train_epoch(self, epoch: int, context: Any) -> dict[str, float]:
        lr = cosine_lr(epoch, self.epochs, self.lr, self.lr_min)
        for group in self.weight_optimizer.param_groups:
            group["lr"] = lr
        loss_sum, acc_sum, steps = 0.0, 0.0, 0
        weights = self.supernet.weight_parameters()
        self.supernet.train()
        for batch in self.weight_data.epoch():
            with torch.no_grad():
                child, _, _ = self.sample()
            loss, logits = self.loss(batch, child)
            self.weight_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(weights, self.grad_clip)
            self.weight_optimizer.step()
            loss_sum += loss.item()
            acc_sum += accuracy(logits.detach(), batch[1])
            steps += 1
        rewards, entropies = self.train_controller()
        greedy = self.derived()
        return {
            "value": self.shared_accuracy(greedy, context.splits.val),
            "train_loss": loss_sum / max(steps, 1),
            "train_acc": acc_sum / max(steps, 1),
            "reward": sum(rewards) / len(rewards),
            "baseline": float(self.baseline or 0.0),
            "entropy": sum(entropies) / len(entropies),
            "lr": lr,
        }

    def train_controller(self) -> tuple[list[float], list[float]]:
        """``controller_steps`` REINFORCE updates; returns the rewards and sample entropies."""
        rewards, entropies = [], []
        for _ in range(self.controller_steps):
            child, log_prob, entropy = self.sample()
            reward = self.shared_accuracy(child, self.arch_data.next())
            reward += self.entropy_weight * entropy.item()
            if self.baseline is None:
                self.baseline = reward  # start at the first reward, not at 0
            self.baseline -= (1 - self.baseline_decay) * (self.baseline - reward)
            loss = -log_prob * (reward - self.baseline)
            self.controller_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.controller_optimizer.step()
            rewards.append(reward)
            entropies.append(entropy.item())
        return rewards, entropies

    # --- results --------------------------------------------------------------------------------
    def derived(self) -> Genotype:
        """The controller's most likely child."""
        return decode(self.space, self.controller.greedy().tolist(), self.decisions)

    def final_genotype(self, context: Any) -> Genotype:
        """The best of ``final_samples`` sampled children (distinct canonical forms) by
        shared-weight accuracy on the second half of the training split (averaged over the
        workers of a data-parallel search, whose shards and BatchNorm calibrations differ)."""
        _, held_out = split_halves(context.splits.train, self.seed)
        seen: dict[str, Genotype] = {}
        with torch.no_grad():
            for _ in range(self.final_samples):
                child = self.space.canonicalize(self.sample()[0])
                seen.setdefault(child.sha, child)
        children = list(seen.values())
        accuracies = context.mean_across_workers(
            [self.shared_accuracy(g, held_out) for g in children]
        )
        ranked = sorted(
            zip(accuracies, range(len(children)), children, strict=True),
            key=lambda item: (-item[0], item[1]),
        )
        self.final_ranking = [(acc, g) for acc, _, g in ranked]
        for rank, (acc, g) in enumerate(self.final_ranking, start=1):
            notation = self.space.to_notation(g)
            context.log(f"sampled child {rank}: shared-weight accuracy {acc:.4f} {notation}")
        return ranked[0][2]

    def extra_state(self) -> dict[str, Any]:
        return {
            "weight_optimizer": self.weight_optimizer.state_dict(),
            "controller": self.controller.state_dict(),
            "controller_optimizer": self.controller_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "baseline": self.baseline,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.weight_optimizer.load_state_dict(state["weight_optimizer"])
        self.controller.load_state_dict(state["controller"])
        self.controller_optimizer.load_state_dict(state["controller_optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = state["baseline"]
