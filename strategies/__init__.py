"""Search strategies; importing the package registers them all."""

from strategies import evolution, random_search  # noqa: F401
