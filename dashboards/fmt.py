"""Numbers as a person reads them: a metric's value at its precision, counts, durations."""

from __future__ import annotations

import math

_SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def engineering(value: float) -> str:
    """``1234567`` as ``1.23M`` (three significant digits, k/M/G/T suffixes)."""
    for scale, suffix in _SUFFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def format_duration(seconds: float | None) -> str:
    """``4321`` as ``1 h 12 min``, ``75`` as ``1 min 15 s``, ``2.5`` as ``2.5 s``."""
    if _missing(seconds):
        return "–"
    assert seconds is not None
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def format_value(metric: str, value: float | None) -> str:
    """A metric's value at the precision it is read at: accuracies to 4 decimals (or 2 when in
    percent), sizes and FLOPs in k/M/G, latencies in ms, seconds as a duration, anything else
    to 4 significant digits."""
    if _missing(value):
        return "–"
    assert value is not None
    name = metric.lower()
    if "acc" in name or name.startswith("top"):
        return f"{value:.4f}" if -1 <= value <= 1 else f"{value:.2f}"
    if "params" in name or "flops" in name or "macs" in name:
        return engineering(value)
    if name.endswith("_ms"):
        return f"{value:.3g} ms"
    if name.endswith(("_s", "seconds")):
        return format_duration(value)
    return f"{value:.4g}"


def format_count(count: int) -> str:
    """``100000`` as ``100,000``."""
    return f"{count:,}"
