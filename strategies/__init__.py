"""Search strategies; importing the package registers them all."""

from strategies import evolution, nni_adapter, random_search, rl, tpe  # noqa: F401
