"""A store refuses what is not its own, and the commands that only read never create one.

A text file, a damaged SQLite file or another application's database given as the storage is
one line, exit 2, and the file byte for byte as it was (no nasplat tables added, no switch to
WAL). ``studies``, ``trials``, ``best``, ``export``, ``pareto`` and ``dashboard`` read an
existing store only: a typo in the URL is "no store at ...", and no file appears; a store on
read-only media is listed.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from nasplat_support import small_store

from nasplat.errors import StorageError
from nasplat.store import open_store
from tests.conftest import run_main

READ_COMMANDS = [
    ["studies"],
    ["trials", "--study", "s"],
    ["best", "--study", "s"],
    ["export", "--study", "s", "--out", "exported"],
    ["pareto", "--study", "s"],
    ["dashboard", "--study", "s", "--out", "report.html"],
]


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def one_error_line(code: int, stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("nasplat: error:"), stderr
    return lines[0]


def text_file(path: Path) -> None:
    path.write_text("name,value\nnot,a database\n")


def foreign_database(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO users (name) VALUES ('ada')")
    connection.close()


def foreign_studies_table(path: Path) -> None:
    """Another application's database that happens to have a ``studies`` table."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE studies (id INTEGER PRIMARY KEY, title TEXT)")
    connection.close()


def bad_header(path: Path) -> None:
    small_store(path)
    data = bytearray(path.read_bytes())
    data[16:24] = b"\xff" * 8  # page size and format bytes
    path.write_bytes(bytes(data))


def bad_page(path: Path) -> None:
    small_store(path)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) >= 3 * page
    data[2 * page : 2 * page + 64] = b"\xa5" * 64  # the third page: a table's b-tree page
    path.write_bytes(bytes(data))


HOSTILE = {
    "text": (text_file, "not a SQLite database"),
    "foreign": (foreign_database, "another application's database (tables: users)"),
    "foreign-studies": (foreign_studies_table, "another application's database"),
    "bad-header": (bad_header, ""),
    "bad-page": (bad_page, "damaged"),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize(
    "command",
    [["studies"], ["trials", "--study", "s"], ["search", "--budget", "1", "--epochs", "1"]],
)
def test_a_file_that_is_not_a_nasplat_store_is_refused_and_left_as_is(
    tmp_path: Path, kind: str, command: list[str]
) -> None:
    make, message = HOSTILE[kind]
    make(tmp_path / "x.db")
    for extra in tmp_path.glob("x.db-*"):  # a checkpointed store: the WAL is not the point
        extra.unlink()
    before = digest(tmp_path)
    code, _, stderr = run_main(*command, "--storage", "sqlite:///x.db", cwd=tmp_path)
    line = one_error_line(code, stderr)
    assert message in line and "x.db" in line, line
    assert digest(tmp_path) == before  # byte for byte, and no new file (WAL, journal)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_the_store_class_refuses_them_too(tmp_path: Path, kind: str) -> None:
    HOSTILE[kind][0](tmp_path / "x.db")
    before = (tmp_path / "x.db").read_bytes()
    for create in (True, False):
        with pytest.raises(StorageError):
            open_store(f"sqlite:///{tmp_path / 'x.db'}", create=create)
    assert (tmp_path / "x.db").read_bytes() == before


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "x.db").mkdir()
    code, _, stderr = run_main("studies", "--storage", "sqlite:///x.db", cwd=tmp_path)
    assert "is a folder" in one_error_line(code, stderr)


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_reading_commands_never_create_a_store(tmp_path: Path, command: list[str]) -> None:
    code, _, stderr = run_main(*command, "--storage", "sqlite:///typo.db", cwd=tmp_path)
    line = one_error_line(code, stderr)
    assert f"no store at {tmp_path / 'typo.db'}" in line, line
    assert list(tmp_path.iterdir()) == []


def test_reading_commands_never_create_the_default_store(tmp_path: Path) -> None:
    code, _, stderr = run_main("studies", cwd=tmp_path)
    assert "no store at" in one_error_line(code, stderr)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_file_is_no_store_to_read(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    code, _, stderr = run_main("studies", "--storage", "sqlite:///empty.db", cwd=tmp_path)
    assert "no store at" in one_error_line(code, stderr)
    assert (tmp_path / "empty.db").read_bytes() == b""


def test_a_store_on_read_only_media_is_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    small_store(folder / "nasplat.db")
    before = digest(folder)
    # read-only file and folder; as root (where permissions do not bind) the store also sees
    # the media as not writable
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode)
    )
    os.chmod(folder / "nasplat.db", stat.S_IRUSR | stat.S_IRGRP)
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    try:
        for command in (
            ["studies", "--format", "csv"],
            ["trials", "--study", "s"],
            ["best", "--study", "s"],
        ):
            code, stdout, stderr = run_main(*command, cwd=folder)
            assert code == 0, stderr
            assert stdout
        code, stdout, _ = run_main("studies", "--format", "csv", cwd=folder)
        assert stdout.splitlines()[1].startswith("s,chain,random,train")
        assert digest(folder) == before  # no WAL index, no journal: nothing written
    finally:
        os.chmod(folder, stat.S_IRWXU)
        os.chmod(folder / "nasplat.db", stat.S_IRUSR | stat.S_IWUSR)


def test_reading_a_live_store_does_not_change_it(tmp_path: Path) -> None:
    small_store(tmp_path / "nasplat.db")
    before = (tmp_path / "nasplat.db").read_bytes()
    for command in READ_COMMANDS[:3]:
        code, _, stderr = run_main(*command, cwd=tmp_path)
        assert code == 0, stderr
    assert (tmp_path / "nasplat.db").read_bytes() == before
    store = open_store(f"sqlite:///{tmp_path / 'nasplat.db'}", create=False)
    try:
        assert [s["name"] for s in store.list_studies()] == ["s"]
        with pytest.raises(Exception, match="readonly|read-only|query_only"):
            store.create_study(
                "t",
                space="chain",
                strategy="random",
                evaluator="train",
                objectives=[("val_acc", "maximize")],
                config={},
            )
    finally:
        store.close()
