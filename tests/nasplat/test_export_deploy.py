"""Deployable exports: ONNX models agree with PyTorch, TorchScript is checked too, an op that
does not export is named, and nothing is overwritten without --force."""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import search_spaces.ops  # noqa: F401  (registers the ops)
from nasplat.errors import ExportError
from nasplat.run.deploy import check_agrees, onnx_bytes, torchscript_bytes
from nasplat.shape import NetShape
from search_spaces.cell import CellSpace
from search_spaces.chain import ChainSpace
from search_spaces.nb201 import NB201Space
from tests.conftest import DARTS_V2, TINY_CHAIN, run_main

ort = pytest.importorskip("onnxruntime")

NB201 = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
SHAPE = NetShape(in_channels=3, input_size=16)


def run_onnx(data: bytes, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def networks() -> dict[str, nn.Module]:
    chain = ChainSpace(layers=2, widths=[8], ops=["sep_conv_3x3", "max_pool_3x3", "self_attention"])
    cell, nb201 = CellSpace(channels=4, layers=3), NB201Space(channels=4, cells_per_stage=1)
    return {
        "chain": chain.build(chain.sample(random.Random(0)), SHAPE),
        "cell": cell.build(cell.from_notation(DARTS_V2), SHAPE),
        "nb201": nb201.build(nb201.from_notation(NB201), SHAPE),
    }


@pytest.mark.parametrize("space", ["chain", "cell", "nb201"])
def test_onnx_model_agrees_with_pytorch_on_random_inputs(space: str) -> None:
    model = networks()[space].eval()
    data = onnx_bytes(model, SHAPE.input_shape)
    for batch in (1, 5):  # the batch axis is dynamic
        x = torch.randn(batch, *SHAPE.input_shape)
        with torch.no_grad():
            expected = model(x)
        got = run_onnx(data, x)
        assert got.shape == expected.shape == (batch, 10)
        assert (got - expected).abs().max() <= 1e-4


def test_torchscript_of_an_unscriptable_network_is_traced_and_agrees() -> None:
    model = networks()["cell"].eval()
    scripted = torch.jit.load(io.BytesIO(torchscript_bytes(model, SHAPE.input_shape)))
    x = torch.randn(4, *SHAPE.input_shape)
    with torch.no_grad():
        assert (scripted(x) - model(x)).abs().max() <= 1e-4


class Branchy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x  # data-dependent control flow: no ONNX graph


def test_an_op_that_does_not_export_is_named_in_one_line() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), Branchy(), nn.Flatten()).eval()
    with pytest.raises(ExportError) as caught:
        onnx_bytes(model, (3, 4, 4))
    message = str(caught.value)
    assert message.startswith("cannot export to ONNX: module '1' (Branchy): ")
    assert "\n" not in message


def test_an_exported_model_that_disagrees_is_refused() -> None:
    model = nn.Identity()
    assert check_agrees("ONNX", lambda x: [x.numpy() + 5e-5], model, (2,)) == pytest.approx(
        5e-5, rel=1e-3
    )
    with pytest.raises(ExportError, match=r"disagrees with PyTorch .*\(3, 2\): max abs diff 0.001"):
        check_agrees("ONNX", lambda x: [x.numpy() + 1e-3], model, (2,))
    with pytest.raises(ExportError, match=r"outputs shapes \[\(3,\)\], PyTorch \[\(3, 2\)\]"):
        check_agrees("ONNX", lambda x: [x.numpy()[:, 0]], model, (2,))


def test_onnx_without_the_extra_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ExportError, match=r"needs onnxruntime: pip install 'nasplat\[onnx\]'"):
        onnx_bytes(nn.Identity(), (2,))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("deploy")
    search = ("search", "--budget", "2", "--epochs", "1", "--study", "s", "--no-progress")
    code, _, err = run_main(*search, *TINY_CHAIN, cwd=folder)
    assert code == 0, err
    return folder


def export(folder: Path, *args: str) -> tuple[int, str, str]:
    return run_main("export", "--study", "s", "--out", "out", *args, cwd=folder)


def test_cli_onnx_export_refuses_to_overwrite_without_force(study: Path) -> None:
    from nasplat.run.export import build_trial
    from nasplat.store import Store

    code, out, err = export(study, "--format", "onnx")
    assert code == 0, err
    path = study / "out" / "model.onnx"
    assert out.split() == [str(Path("out") / "model.onnx")]
    store = Store(f"sqlite:///{study / 'nasplat.db'}")
    record = store.get_study("s")
    model = build_trial(store, record, store.best_trial("s")).eval()  # with its trained weights
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert (run_onnx(path.read_bytes(), x) - model(x)).abs().max() <= 1e-4

    path.write_bytes(b"not a model")
    code, _, err = export(study, "--format", "onnx")
    assert code == 2 and err.strip() == (
        f"nasplat: error: {Path('out') / 'model.onnx'} already exists; pass --force to overwrite"
    )
    assert path.read_bytes() == b"not a model"
    code, out, err = export(study, "--format", "all")  # model.onnx is not among all's files
    assert code == 0, err
    written = out.split()
    assert {Path(p).name for p in written} >= {"genotype.json", "weights.pt", "model.ts"}
    code, _, err = export(study, "--format", "all")
    assert code == 2 and f"already exists (and {len(written) - 1} more); pass --force" in err

    code, _, err = export(study, "--format", "onnx", "--force")
    assert code == 0, err
    assert run_onnx(path.read_bytes(), x).shape == (3, 10)


def test_a_refused_export_writes_nothing(study: Path) -> None:
    folder = study / "partial"
    folder.mkdir()
    (folder / "metrics.json").write_text("{}")
    code, _, err = run_main("export", "--study", "s", "--out", "partial", cwd=study)
    assert code == 2 and f"{Path('partial') / 'metrics.json'} already exists; pass --force" in err
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.json"]
    assert (folder / "metrics.json").read_text() == "{}"


def test_graph_ops_export_and_keep_working_afterwards() -> None:
    from search_spaces.ops.graph import _grid

    _grid.cache_clear()  # the export traces the first grid: it must not cache fake tensors
    chain = ChainSpace(layers=2, widths=[8], ops=["gcn", "gat"])
    model = chain.build(chain.sample(random.Random(0)), SHAPE).eval()
    onnx_bytes(model, SHAPE.input_shape)  # runs the model after the export to check it
    with torch.no_grad():
        assert model(torch.randn(2, *SHAPE.input_shape)).shape == (2, 10)
