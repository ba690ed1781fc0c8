"""Tabular data: scikit-learn's breast-cancer table (30 features) and an MLP space whose depth,
widths and activations are searched by TPE with the built-in training loop."""

from sklearn.datasets import load_breast_cancer
from torch import nn

import nasplat
from nasplat import nn as nsn


class MLP(nn.Sequential):
    def __init__(self, features: int = 30, classes: int = 2) -> None:
        layers, c = [], features
        for i in range(nsn.choice("depth", [1, 2, 3])):  # later layers exist only when deeper
            width = nsn.choice(f"width{i}", [16, 64, 256])
            act = nsn.LayerChoice({"relu": nn.ReLU(), "gelu": nn.GELU()}, label=f"act{i}")
            layers += [nsn.Linear(c, width), act]
            c = width
        super().__init__(*layers, nsn.Linear(c, classes))


x, y = load_breast_cancer(return_X_y=True)
x = (x - x.mean(axis=0)) / x.std(axis=0)  # normalising is the user's choice
study = nasplat.create_study(MLP, data=(x, y), strategy="tpe", storage="memory://", epochs=10)
study.optimize(n_trials=10)
print(study.trials_dataframe().filter(regex="number|^value|params_"))
print("best:", study.best.params, "val_acc", round(study.best.value, 3))
