"""Search spaces and the operator library; importing the package registers them all."""

from search_spaces import cell, chain, hierarchical, nb201, ops  # noqa: F401
