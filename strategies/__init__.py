"""Search strategies; importing the package registers them all."""

from strategies import (  # noqa: F401
    darts,
    enas,
    evolution,
    local_search,
    nni_adapter,
    random_search,
    rl,
    tpe,
)
