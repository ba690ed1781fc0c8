"""Deployable models: TorchScript and ONNX bytes of a network, each run on random inputs of
the network's input shape and compared with PyTorch before it is returned.

The export example has batch 2 and the check batch 3, so a model that only works at the
example's batch size is caught here rather than where it is deployed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from nasplat.errors import ExportError

log = logging.getLogger("nasplat")

TOLERANCE = 1e-4
"""Largest absolute difference allowed between an exported model's outputs and PyTorch's."""
EXAMPLE_BATCH, CHECK_BATCH = 2, 3


def first_line(exc: BaseException) -> str:
    """An exception's message in one line (its type name when it has none)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def random_input(sample_shape: tuple[int, ...], batch: int) -> Any:
    import torch

    return torch.randn((batch, *sample_shape), generator=torch.Generator().manual_seed(batch))


def flat_outputs(value: Any) -> list[Any]:
    """A model's output(s) (a tensor, or tuples, lists and dicts of them) as NumPy arrays."""
    if isinstance(value, dict):
        return [a for v in value.values() for a in flat_outputs(v)]
    if isinstance(value, list | tuple):
        return [a for v in value for a in flat_outputs(v)]
    return [value.detach().cpu().numpy()]


def check_agrees(fmt: str, run: Callable[[Any], list[Any]], model: Any, sample: tuple) -> float:
    """The largest absolute difference between ``run(x)`` and ``model(x)`` on random inputs
    ``x`` of batch :data:`CHECK_BATCH` (ExportError past :data:`TOLERANCE`)."""
    import numpy as np
    import torch

    x = random_input(sample, CHECK_BATCH)
    try:
        with torch.no_grad():
            expected, got = flat_outputs(model(x)), run(x)
    except Exception as exc:  # noqa: BLE001 - the runtime's own error, in one line
        raise ExportError(
            f"checking the {fmt} model on inputs {tuple(x.shape)} failed: {first_line(exc)}"
        ) from None
    shapes = [np.shape(a) for a in got], [np.shape(a) for a in expected]
    if shapes[0] != shapes[1]:
        raise ExportError(f"the {fmt} model outputs shapes {shapes[0]}, PyTorch {shapes[1]}")
    diff = max(
        (float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(got, expected, strict=True)),
        default=0,
    )
    if not diff <= TOLERANCE:
        raise ExportError(
            f"the {fmt} model disagrees with PyTorch on random inputs {tuple(x.shape)}: "
            f"max abs diff {diff:.3g} > {TOLERANCE:g}"
        )
    log.info("%s model checked: max abs diff %.2g on random inputs %s", fmt, diff, tuple(x.shape))
    return diff


def torchscript_bytes(model: Any, sample: tuple[int, ...]) -> bytes:
    """``model`` (in eval mode) scripted, or traced at inputs of ``sample`` shape when it cannot
    be scripted; tracer warnings are captured and logged at debug level, never printed."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            module, how = torch.jit.script(model), "scripted"
        except Exception as exc:  # noqa: BLE001 - anything TorchScript cannot compile: trace
            log.debug("TorchScript: not scriptable (%s); tracing", first_line(exc))
            example = random_input(sample, EXAMPLE_BATCH)
            module, how = torch.jit.trace(model, example), f"traced at {tuple(example.shape)}"
    tracer = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    for warning in tracer:
        log.debug("TorchScript tracer: %s", first_line(warning.message))
    log.info("TorchScript model %s (%d tracer warning(s))", how, len(tracer))
    check_agrees("TorchScript", lambda x: flat_outputs(module(x)), model, sample)
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    return buffer.getvalue()


def onnx_bytes(model: Any, sample: tuple[int, ...]) -> bytes:
    """``model`` (in eval mode) as an ONNX model with a dynamic batch axis (input ``input``),
    checked in onnxruntime. A module that does not export is named in the one-line error."""
    try:
        import onnxruntime
        import onnxscript  # noqa: F401 - torch's ONNX exporter needs it
    except ImportError as exc:
        raise ExportError(f"--format onnx needs {exc.name}: pip install 'nasplat[onnx]'") from None
    import torch

    example = random_input(sample, EXAMPLE_BATCH)
    with quiet():
        try:
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                verbose=False,
                input_names=["input"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
            )
            buffer = io.BytesIO()
            program.save(buffer)
        except Exception as exc:  # noqa: BLE001 - any exporter failure, in one line
            raise ExportError(f"cannot export to ONNX: {failure(exc, model)}") from None
    data = buffer.getvalue()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    check_agrees("ONNX", lambda x: session.run(None, {name: x.numpy()}), model, sample)
    return data


def failure(exc: BaseException, model: Any) -> str:
    """What failed: the innermost submodule of ``model`` running in the error's tracebacks
    (its path and class), then the root cause's first line."""
    paths = {id(m): name for name, m in model.named_modules()}
    culprit, root, seen = None, exc, set()
    chain: BaseException | None = exc
    while chain is not None and id(chain) not in seen:
        seen.add(id(chain))
        root = chain
        frame = chain.__traceback__
        while frame is not None:
            owner = frame.tb_frame.f_locals.get("self")
            if id(owner) in paths:
                culprit = owner
            frame = frame.tb_next
        chain = chain.__cause__ or chain.__context__
    where = ""
    if culprit is not None:
        where = f"module {paths[id(culprit)] or '(the network)'!r} ({type(culprit).__name__}): "
    return where + first_line(root)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Warnings, torch's log records and anything printed stay off the console."""
    loggers = [logging.getLogger(name) for name in ("torch", "onnxscript")]
    levels = [logger.level for logger in loggers]
    sink = io.StringIO()
    try:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if sink.getvalue().strip():
            log.debug("exporter output: %s", sink.getvalue().strip()[:2000])
