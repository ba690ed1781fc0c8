"""Property: any bad value of a ``search`` flag (out of range, the wrong type, NaN, infinity)
is one line on stderr, exit status 2, no traceback, and a store byte for byte as it was.

Each example runs the CLI in this process (``nasplat.cli.main``), so a handful of examples per
run keeps the test short; the values that once slipped through are pinned as examples.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from nasplat_support import small_store  # noqa: E402

from tests.conftest import TINY_CHAIN, run_main  # noqa: E402

INT_FLAGS = {  # flag -> the values it refuses
    "--budget": lambda n: n < 1,
    "--epochs": lambda n: n < 0,
    "--seed": lambda n: n < 0 or n >= 2**32,
    "--resolution": lambda n: n < 1,
    "--population-size": lambda n: n < 2,
    "--tournament-size": lambda n: n < 1 or n > 3,  # the population below is 3
}
FLOAT_FLAGS = {
    "--time-limit": lambda x: not 0 < x < math.inf,
    "--width-mult": lambda x: not 0 < x < math.inf,
    "--data-fraction": lambda x: not 0 < x <= 1,
}
NOT_A_NUMBER = st.text(min_size=0, max_size=12).filter(lambda s: not _numeric(s))


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _int_case(flag: str) -> st.SearchStrategy[tuple[str, str]]:
    refused = INT_FLAGS[flag]
    numbers = st.one_of(
        st.integers(min_value=-(2**70), max_value=0), st.integers(min_value=2**32, max_value=2**70)
    )
    values = st.one_of(
        numbers.filter(refused).map(str),
        NOT_A_NUMBER,
        st.floats(allow_nan=True, allow_infinity=True).map(repr),  # "1.5", "nan", "inf"
    )
    return values.map(lambda v: (flag, v))


def _float_case(flag: str) -> st.SearchStrategy[tuple[str, str]]:
    refused = FLOAT_FLAGS[flag]
    values = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(refused).map(repr),
        st.sampled_from(["nan", "-nan", "inf", "-inf", "NaN", "Infinity"]),
        NOT_A_NUMBER,
    )
    return values.map(lambda v: (flag, v))


BAD_FLAG = st.one_of(
    *(_int_case(flag) for flag in INT_FLAGS), *(_float_case(flag) for flag in FLOAT_FLAGS)
)


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a nasplat store (one study) as ``nasplat.db``, checkpointed."""
    path = tmp_path_factory.mktemp("hostile-flags")
    small_store(path / "nasplat.db")
    return path


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(bad=BAD_FLAG)
@example(bad=("--budget", "0"))
@example(bad=("--seed", "-1"))
@example(bad=("--seed", str(2**70)))
@example(bad=("--time-limit", "nan"))
@example(bad=("--time-limit", "inf"))
@example(bad=("--width-mult", "inf"))
@example(bad=("--data-fraction", "nan"))
@example(bad=("--epochs", "nan"))
def test_a_bad_flag_value_is_one_line_and_changes_nothing(
    folder: Path, bad: tuple[str, str]
) -> None:
    before = digest(folder)
    flag, value = bad
    args = ["search", "--no-progress", *TINY_CHAIN]
    args += [] if flag == "--epochs" else ["--epochs", "1"]
    args += [] if flag == "--budget" else ["--budget", "2"]
    args += ["--population-size", "3"] if flag == "--tournament-size" else []
    code, stdout, stderr = run_main(*args, flag, value, cwd=folder)
    lines = stderr.strip().splitlines()
    assert code == 2, (bad, stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("nasplat: error:"), (bad, stderr)
    assert "Traceback" not in stderr and stdout == ""
    assert digest(folder) == before, bad


@pytest.mark.parametrize(
    "bad",
    [
        {"seed": -1},
        {"seed": 2**32},
        {"seed": 1.5},
        {"seed": True},
        {"time_limit": math.nan},
        {"time_limit": math.inf},
        {"time_limit": "soon"},
    ],
)
def test_a_config_file_gets_the_same_checks(bad: dict) -> None:
    from nasplat.config import SearchConfig
    from nasplat.errors import ConfigError

    with pytest.raises(ConfigError):
        SearchConfig.from_dict(bad)


@pytest.mark.parametrize(
    "options",
    [
        {"cpus_per_trial": math.nan},
        {"gpus_per_trial": math.inf},
        {"cpus_per_trial": math.inf, "gpus_per_trial": 0},
    ],
)
def test_ray_resources_must_be_finite(options: dict) -> None:
    from nasplat.errors import ConfigError
    from nasplat.run.ray import RayExecutor

    with pytest.raises(ConfigError):
        RayExecutor(**options)
