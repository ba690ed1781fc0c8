"""Search strategies; importing the package registers them all."""

from strategies import darts, enas, evolution, nni_adapter, random_search, rl, tpe  # noqa: F401
