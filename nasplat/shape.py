"""The shape of a network: what its input looks like and how many classes it predicts.

One :class:`NetShape` is recorded with every study (``config["shape"]``); a trial's network is
the study's shape at the trial's budget (:meth:`NetShape.at_budget`: width and resolution), so
``build``, ``export``, ``train``, the dashboards and ``nasplat.build(path)`` all rebuild the
network a trial actually trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from nasplat.errors import ConfigError


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class NetShape:
    """The input of one sample, the number of classes (outputs) and the width multiplier.

    ``sample_shape`` is the shape of one input sample without the batch dimension: ``(C, H, W)``
    for images, ``(F,)`` for feature vectors, ``(C, L)`` or ``(L, F)`` for sequences. ``None``
    (the default, and what every square image is stored as) means the square image
    ``(in_channels, input_size, input_size)``. When it is set, ``in_channels`` and
    ``input_size`` are derived from it: ``in_channels = sample_shape[0]`` and ``input_size``
    is the largest dimension after the first (``max(H, W)`` of an image, ``L`` of ``(C, L)``),
    or the length of a vector. Built-in image spaces read ``in_channels``; a space for other
    data reads ``sample_shape`` (see :attr:`input_shape`).
    """

    in_channels: int = 1
    input_size: int = 8
    num_classes: int = 10
    width_mult: float = 1.0
    sample_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.sample_shape is not None:
            sample = self.sample_shape
            if (
                isinstance(sample, str | bytes)
                or not isinstance(sample, Sequence)
                or not sample
                or not all(_is_count(d) for d in sample)
            ):
                raise ConfigError(
                    f"network shape: sample_shape must be a non-empty list of integers >= 1, "
                    f"got {sample!r}"
                )
            sample = tuple(sample)
            square = len(sample) == 3 and sample[1] == sample[2]
            object.__setattr__(self, "sample_shape", None if square else sample)
            object.__setattr__(self, "in_channels", sample[0])
            object.__setattr__(self, "input_size", max(sample[1:] or sample))
        for name in ("in_channels", "input_size", "num_classes"):
            value = getattr(self, name)
            if not _is_count(value):
                raise ConfigError(f"network shape: {name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.width_mult, int | float) or not self.width_mult > 0:
            raise ConfigError(f"network shape: width_mult must be > 0, got {self.width_mult!r}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input sample (``sample_shape``, or the square image)."""
        if self.sample_shape is not None:
            return self.sample_shape
        return (self.in_channels, self.input_size, self.input_size)

    @property
    def is_image(self) -> bool:
        """Whether a sample is an image ``(C, H, W)``."""
        return len(self.input_shape) == 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields; ``sample_shape`` (a list) only when it is set."""
        data: dict[str, Any] = {
            "in_channels": self.in_channels,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "width_mult": self.width_mult,
        }
        if self.sample_shape is not None:
            data["sample_shape"] = list(self.sample_shape)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> NetShape:
        """From :meth:`to_dict` output; unknown keys are ignored, missing ones take defaults
        (so the dicts of older studies, without ``sample_shape``, load as square images)."""
        data = dict(data or {})
        fields = ("in_channels", "input_size", "num_classes", "width_mult", "sample_shape")
        return cls(**{k: data[k] for k in fields if k in data})

    @classmethod
    def of_study(cls, config: Mapping[str, Any]) -> NetShape:
        """The shape stored with a study's config (``shape``; older stores: ``data``)."""
        stored = config.get("shape") or config.get("data") or {}
        return cls.from_dict({k: v for k, v in stored.items() if v is not None})

    def at_budget(self, budget: Any) -> NetShape:
        """This shape at a trial budget: the budget's ``width_mult`` multiplies the width and
        its ``resolution`` (when set) becomes the input size (see :meth:`at_resolution`).
        Accepts a Budget or its dict."""
        get = budget.get if isinstance(budget, Mapping) else lambda k, d=None: getattr(budget, k, d)
        width = float(get("width_mult", 1.0) or 1.0)
        resolution = get("resolution", None)
        shape = self.at_resolution(int(resolution)) if resolution else self
        return replace(shape, width_mult=self.width_mult * width)

    def at_resolution(self, resolution: int) -> NetShape:
        """This shape with images scaled so that their longer side is ``resolution`` (the
        aspect ratio kept, each side at least 1); ConfigError for data that is not an image,
        unless ``resolution`` already is its input size."""
        if resolution < 1:
            raise ConfigError(f"resolution must be >= 1, got {resolution}")
        if resolution == self.input_size:
            return self
        if not self.is_image:
            raise ConfigError(
                f"resolution {resolution} applies to images (C, H, W); "
                f"this data's samples are {self.input_shape}"
            )
        channels, height, width = self.input_shape
        scale = resolution / max(height, width)
        sample = (channels, max(1, round(height * scale)), max(1, round(width * scale)))
        return replace(self, sample_shape=sample)

    def example_input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The shape of a batch of ``batch`` inputs: ``(batch, *input_shape)``."""
        return (batch, *self.input_shape)
