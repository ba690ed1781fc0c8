"""The NAS-Bench-201 space's canonical forms, remembered per space shape."""

from __future__ import annotations

import random

import pytest

from nasplat.errors import InvalidGenotypeError
from nasplat.genotype import Genotype
from search_spaces.nb201 import NB201Space


def test_canonical_forms_are_remembered_and_still_validated() -> None:
    space = NB201Space()
    genotype = space.sample(random.Random(0))
    first = space.canonicalize(genotype)
    assert space.canonicalize(genotype) is first  # the second call is a lookup
    assert space.canonicalize(space.genotype(dict(genotype))) is first  # by value, not identity
    assert NB201Space().canonicalize(genotype) is first  # shared by spaces of the same shape
    other = NB201Space(isomorphism="prune")
    assert other.canonicalize(genotype) is not first  # another rule: its own answers
    bad = Genotype("nb201", {**dict(genotype), "edge.1.0": "conv_7x7"})
    for _ in range(2):  # an invalid genotype is never remembered
        with pytest.raises(InvalidGenotypeError):
            space.canonicalize(bad)
