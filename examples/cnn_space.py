"""A model space as an importable module: `nasplat search --space cnn_space:Net` finds it.

Three blocks; each chooses conv3x3 / depthwise-separable / identity and a width of 16 or 32.
Every width is a value choice consumed by `nasplat.nn` layers, so DARTS and ENAS search the
widths too (by weight slicing), not only the operators.
"""

from torch import nn

from nasplat import nn as nsn


class Net(nn.Sequential):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, blocks: int = 3) -> None:
        layers, c = [nn.Conv2d(in_channels, 16, 3, padding=1)], 16
        for i in range(blocks):
            sep = nn.Sequential(nsn.Conv2d(c, c, 3, padding=1, groups=c), nsn.Conv2d(c, c, 1))
            ops = {
                "conv3x3": nsn.Conv2d(c, c, 3, padding=1),
                "sepconv": sep,
                "identity": nn.Identity(),
            }
            width = nsn.choice(f"width{i}", [16, 32])
            layers += [nsn.LayerChoice(ops, label=f"op{i}"), nsn.Conv2d(c, width, 1)]
            layers += [nsn.BatchNorm2d(width), nn.ReLU()]
            c = width
        head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nsn.Linear(c, num_classes)]
        super().__init__(*layers, *head)


if __name__ == "__main__":
    import random

    space = nsn.ModelSpace(Net)
    print([(d.name, d.choices) for d in space.decisions()])
    print(space.build(space.sample(random.Random(0))))
