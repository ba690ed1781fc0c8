"""Model spaces written as PyTorch code (see docs/nn.md).

A user's ``nn.Module`` makes its decisions in its constructor with :class:`LayerChoice`,
:class:`InputChoice` and :func:`choice`; :class:`ModelSpace` turns the class into a
:class:`~nasplat.space.SearchSpace`. ``Conv2d``, ``Linear`` and ``BatchNorm1d/2d`` accept value
choices for their sizes and are searched by weight sharing in a supernet.
"""

from nasplat.nn.choices import ChosenInputs, InputChoice, LayerChoice, ValueChoice, choice
from nasplat.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear
from nasplat.nn.space import ModelSpace
from nasplat.nn.supernet import ModelSupernet

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "ChosenInputs",
    "Conv2d",
    "InputChoice",
    "LayerChoice",
    "Linear",
    "ModelSpace",
    "ModelSupernet",
    "ValueChoice",
    "choice",
]
