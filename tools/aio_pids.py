"""Pid files and process groups: knowing what runs, and stopping it for sure.

`torus up` starts each server as the leader of its own session, so its process group holds the
server and every worker it forks; signals go to the whole group.  A pid file holds the pid and
the process's start time (``/proc/PID/stat``), so a pid the kernel has since given to another
process is never signalled.  Linux-only, like the rest of Torus's tooling.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

POLL_INTERVAL_S = 0.05


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_ticks: int  # field 22 of /proc/PID/stat: when the process started


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields from the state on (the name before it may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, or None if it is gone or a zombie."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of the whole line


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def record(pid: int) -> PidRecord:
    ticks = start_ticks(pid)
    if ticks is None:
        raise ProcessLookupError(f"process {pid} is not running")
    return PidRecord(pid, ticks)


def write_pid_file(path: Path, pid: int) -> PidRecord:
    entry = record(pid)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{entry.pid} {entry.start_ticks}\n")
    os.replace(tmp, path)
    return entry


def read_pid_file(path: Path) -> PidRecord | None:
    """The record, or None if the file is missing or not one of ours."""
    try:
        pid_text, ticks_text = path.read_text().split()
        return PidRecord(int(pid_text), int(ticks_text))
    except (OSError, ValueError):
        return None


def is_running(entry: PidRecord) -> bool:
    """Whether the recorded process, or what is left of its process group, still runs.

    A leader that died may leave workers behind in its group; Linux gives no new process a
    pid still in use as a group id, so those are ours.  A live leader must have the recorded
    start time, or the pid now belongs to someone else.
    """
    ticks = start_ticks(entry.pid)
    if ticks is not None:
        return ticks == entry.start_ticks
    return bool(group_members(entry.pid))


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def stop_groups(
    entries: Iterable[PidRecord],
    grace_s: float,
    *,
    on_kill: Callable[[PidRecord], None] = lambda entry: None,
    reap: Callable[[], None] = lambda: None,
) -> None:
    """SIGTERM each running group, wait up to ``grace_s`` for all to end, then SIGKILL the rest.

    ``reap`` is called while waiting, for a caller whose children these are (their zombies
    count as ended already).  ``on_kill`` hears of each group that had to be killed.
    """
    running = [entry for entry in entries if is_running(entry)]
    for entry in running:
        signal_group(entry.pid, signal.SIGTERM)
    running = _wait(running, grace_s, reap)
    for entry in running:
        on_kill(entry)
        signal_group(entry.pid, signal.SIGKILL)
    _wait(running, 10.0, reap)


def _wait(entries: list[PidRecord], timeout_s: float, reap: Callable[[], None]) -> list[PidRecord]:
    """Those of ``entries`` still running after up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        reap()
        entries = [entry for entry in entries if group_members(entry.pid)]
        if not entries or time.monotonic() >= deadline:
            return entries
        time.sleep(POLL_INTERVAL_S)
