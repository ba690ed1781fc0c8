"""Which search process owns a RUNNING trial, and whether that process is still alive.

Several processes may run one study together (``nasplat search --study S --resume`` started
many times, on one machine or on several sharing a PostgreSQL store). Each trial records its
owner, ``HOST/PID/START`` (START: the process's start time, so a reused PID is not taken for
the old process). A RUNNING trial whose owner is dead is an orphan: it is marked INTERRUPTED and
its architecture evaluated again. On the owner's own machine liveness is exact (the process
table); from another machine it is the owner's heartbeat, renewed every
:data:`HEARTBEAT_SECONDS` while it searches and stale after :data:`STALE_SECONDS`.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from functools import cache

HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), ``"?"`` where there is no
    /proc, None when no such process runs."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    # the command name (field 2) may hold spaces and parentheses: split after the last ")"
    return stat[stat.rindex(b")") + 2 :].split()[19].decode()


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@cache
def host() -> str:
    return socket.gethostname()


def current_owner() -> str:
    """This process's owner string (computed per call: a forked child is another owner)."""
    pid = os.getpid()
    return f"{host()}/{pid}/{_start_time(pid) or '?'}"


def parse(owner: str | None) -> tuple[str, int, str] | None:
    """``(host, pid, start)`` of an owner string; None for anything else (an old store's
    worker names, a Ray actor's name)."""
    parts = (owner or "").rsplit("/", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2]


def alive(owner: str | None, heartbeat: datetime | None, now: datetime) -> bool:
    """Whether the process ``owner`` still runs: by the process table on this machine, by its
    last ``heartbeat`` from another one. An unknown owner is dead."""
    parsed = parse(owner)
    if parsed is None:
        return False
    owner_host, pid, start = parsed
    if owner_host == host():
        now_start = _start_time(pid)
        if start == "?" or now_start == "?":
            return _pid_exists(pid)
        return now_start == start
    return heartbeat is not None and now - heartbeat < timedelta(seconds=STALE_SECONDS)
