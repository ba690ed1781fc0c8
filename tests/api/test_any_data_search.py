"""Nothing assumes square images: tabular vectors and sequences searched end to end, a plain
Dataset without ``.tensors``, all through the Python API with user-written model spaces."""

from __future__ import annotations

import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import Dataset

import nasplat
from nasplat import nn as nsn


class MLP(nn.Module):
    """A tabular MLP: depth 1 or 2 hidden layers, widths and activation chosen."""

    def __init__(self, features: int = 30, classes: int = 2) -> None:
        super().__init__()
        layers, c = [], features
        for i in range(nsn.choice("depth", [1, 2])):
            width = nsn.choice(f"width{i}", [16, 64])
            act = nsn.LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label=f"act{i}")
            layers += [nsn.Linear(c, width), act]
            c = width
        self.body = nn.Sequential(*layers, nsn.Linear(c, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SeqNet(nn.Module):
    """A 1-D conv net over (channels, length) sequences: kernel and mixing op chosen."""

    def __init__(self, channels: int = 2, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv1d(channels, 16, 1)
        self.op = nsn.LayerChoice(
            {
                "conv3": nn.Conv1d(16, 16, 3, padding=1),
                "conv7": nn.Conv1d(16, 16, 7, padding=3),
                "attention": SelfAttention1d(16),
            },
            label="op",
        )
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.op(self.stem(x))).mean(dim=2))


class SelfAttention1d(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(channels, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.transpose(1, 2)
        return self.attention(tokens, tokens, tokens, need_weights=False)[0].transpose(1, 2)


def test_tabular_breast_cancer_vectors_with_an_mlp_space():
    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)  # normalisation is the user's choice
    study = nasplat.create_study(
        MLP, data=(x, y), strategy="random", storage="memory://", n_trials=4, epochs=5, seed=2
    )
    study.optimize()
    trials = study.trials
    assert [t.state for t in trials] == ["COMPLETE"] * 4, [t.error for t in trials]
    assert study.best.value > 0.85  # well above the 63% majority class
    frame = study.trials_dataframe()
    assert {"params_depth", "params_width0", "params_act0"} <= set(frame.columns)
    assert study.record.shape.sample_shape == (30,)
    # an inactive decision (width1 at depth 1) does not make a second architecture
    depth1 = [t for t in trials if t.params["depth"] == 1]
    assert all(t.params["width1"] == 16 and t.params["act1"] == "relu" for t in depth1)


def sequences(n: int = 240, length: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: a slow sine, 1: a fast sine, 2: noise; two channels of length 32."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    t = torch.linspace(0, 6.28, length)
    freq = torch.where(y == 0, 1.0, 4.0).view(-1, 1, 1)
    x = torch.sin(freq * t + torch.rand(n, 1, 1, generator=g) * 6.28).repeat(1, 2, 1)
    x[y == 2] = torch.randn(int((y == 2).sum()), 2, length, generator=g)
    return x + 0.1 * torch.randn(n, 2, length, generator=g), y


def test_sequences_with_a_conv1d_and_attention_space_and_a_user_objective():
    def objective(model, ctx):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for epoch in range(3):
            for x, y in ctx.loader("train", 32):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
            with torch.no_grad():
                x, y = next(iter(ctx.loader("val", 1000)))
                accuracy = (model(x).argmax(1) == y).float().mean().item()
            ctx.report(epoch, val_acc=accuracy)
        return accuracy

    study = nasplat.create_study(SeqNet, data=sequences(), strategy="random", storage="memory://")
    study.optimize(objective, n_trials=3)
    assert sorted(t.params["op"] for t in study.trials) == ["attention", "conv3", "conv7"]
    assert all(t.state == "COMPLETE" for t in study.trials)
    assert study.best.value > 0.6  # chance is 1/3
    assert study.record.shape.sample_shape == (2, 32)


class PlainDataset(Dataset):
    """A map-style dataset without ``.tensors`` (what a user's own data looks like)."""

    def __init__(self) -> None:
        self.x, self.y = sequences(120, seed=1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.x[index], int(self.y[index])


def test_a_plain_dataset_is_searched_by_the_built_in_loop_and_a_user_objective():
    study = nasplat.create_study(
        SeqNet, data=PlainDataset(), strategy="random", storage="memory://", n_trials=2, epochs=1
    )
    study.optimize()
    assert [t.state for t in study.trials] == ["COMPLETE"] * 2, [t.error for t in study.trials]

    def objective(model, ctx):
        assert not hasattr(ctx.train, "tensors")  # the user's own dataset (a Subset of it)
        return float(len(ctx.train))

    study.optimize(objective, n_trials=1)
    assert study.trials[-1].value == 96.0  # 120 samples less 10% test and 10% val
