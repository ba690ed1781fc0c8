"""Search spaces and the operator library; importing the package registers them all."""

from search_spaces import chain, ops  # noqa: F401
