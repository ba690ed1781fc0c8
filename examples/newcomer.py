import torch
from torch import nn

from nasplat import create_study
from nasplat import nn as nsn


class Net(nn.Sequential):  # 3 blocks: conv3x3 / depthwise-separable / identity, width 16 or 32
    def __init__(self):
        layers, c = [nn.Conv2d(3, 16, 3, padding=1)], 16
        for i in range(3):
            sep = nn.Sequential(nsn.Conv2d(c, c, 3, padding=1, groups=c), nsn.Conv2d(c, c, 1))
            ops = dict(conv3x3=nsn.Conv2d(c, c, 3, padding=1), sepconv=sep, identity=nn.Identity())
            width = nsn.choice(f"width{i}", [16, 32])
            layers += [nsn.LayerChoice(ops, label=f"op{i}"), nsn.Conv2d(c, width, 1), nn.ReLU()]
            c = width
        super().__init__(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nsn.Linear(c, 10))


def objective(model, ctx):  # your own training: 2 epochs of Adam, then validation accuracy
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        for x, y in ctx.loader("train", batch_size=32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    with torch.no_grad():
        right = sum((model(x).argmax(1) == y).sum().item() for x, y in ctx.loader("val", 256))
    return right / len(ctx.val)


data = torch.randn(256, 3, 32, 32), torch.randint(0, 10, (256,))
study = create_study(Net, data=data, strategy="evolution", strategy_options={"population_size": 4})
study.optimize(objective, n_trials=8)
print(study.trials_dataframe().filter(regex="number|value|params_"))
