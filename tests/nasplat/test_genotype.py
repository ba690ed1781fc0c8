import json
import subprocess
import sys

import pytest

from nasplat import Decision, Genotype
from nasplat.errors import InvalidGenotypeError, UnknownNameError
from nasplat.registry import Registry


def test_genotype_is_ordered_frozen_and_round_trips_exactly() -> None:
    g = Genotype("chain", {"b": 1, "a": "conv_3x3", "c": True, "d": 0.5, "e": None})
    assert list(g) == ["b", "a", "c", "d", "e"]
    back = Genotype.from_json(g.to_json())
    assert back == g and back.to_json() == g.to_json()
    assert type(back["c"]) is bool and type(back["b"]) is int and type(back["d"]) is float
    with pytest.raises(TypeError):
        g["a"] = "x"  # type: ignore[index]


def test_order_and_types_matter_for_identity() -> None:
    a = Genotype("s", {"x": 1, "y": 2})
    assert a != Genotype("s", {"y": 2, "x": 1})
    assert a != Genotype("s", {"x": True, "y": 2})
    assert a != Genotype("t", {"x": 1, "y": 2})
    assert a.replace({"x": 3})["x"] == 3 and a["x"] == 1


def test_sha_is_stable_across_processes() -> None:
    g = Genotype("chain", {"layer0.op": "conv_3x3", "layer0.width": 16})
    code = "from nasplat import Genotype; print(Genotype('chain', {'layer0.op': 'conv_3x3', 'layer0.width': 16}).sha)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == g.sha and len(g.sha) == 64


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"space": "chain"}',
        '{"space": "chain", "decisions": [1]}',
        '{"space": "", "decisions": {}}',
        '{"space": "c", "decisions": {"a": [1]}}',
    ],
)
def test_malformed_json_is_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidGenotypeError):
        Genotype.from_json(text)


def test_decision_needs_choices() -> None:
    assert Decision("a", [1, 2]).choices == (1, 2)
    with pytest.raises(ValueError):
        Decision("a", [])


def test_registry_rejects_duplicates_and_lists_known_names() -> None:
    reg: Registry[object] = Registry("widget")

    @reg.register("a", family="x")
    def a() -> None:
        """Makes an a."""

    assert reg.meta("a") == {"family": "x", "description": "Makes an a."}
    with pytest.raises(ValueError, match="duplicate"):
        reg.add("a", object())
    with pytest.raises(UnknownNameError, match="unknown widget 'b'; known: a"):
        reg.get("b")
    assert "a" in reg and reg.names() == ["a"] and json.dumps(reg.names())


def test_import_nasplat_is_light() -> None:
    code = "import sys, nasplat; print(any(m in sys.modules for m in ('torch', 'sqlalchemy', 'pandas', 'ray', 'plotly')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
