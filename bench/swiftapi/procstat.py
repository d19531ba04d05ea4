"""CPU time of server process trees, of the kernel and of the whole machine, from /proc.

A server's CPU is utime + stime of every process in its tree (the root pids and their
descendants, found through /proc/PID/task/TID/children), plus cutime + cstime: the time of
children that exited and were reaped, so a worker that is replaced during the window still
counts (see cpu_delta_s).  Times are in clock ticks (``SC_CLK_TCK``, 100 per second on
Linux), so each process read is exact to 10 ms; with ~15 processes over a 15 s window that is
well under 1 % of what the servers spend.

Beside the servers and the load generator, a window's CPU has two more parts, told apart so a
reader can see whether a run was disturbed: the kernel's (kernel threads such as jbd2 and
kworkers, which do journal commits and writeback for fsyncing servers, plus irq and softirq
time: loopback TCP), and the rest, "foreign": other people's processes on a shared box.

The parsers are pure functions of the file text (unit-tested); the readers are thin.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")
PF_KTHREAD = 0x00200000  # include/linux/sched.h: the task is a kernel thread


class PidStat(NamedTuple):
    ticks: int  # utime + stime + cutime + cstime
    kernel_thread: bool


class MachineStat(NamedTuple):
    busy: int  # ticks over all cores: user + nice + system + irq + softirq + steal
    total: int  # busy + idle + iowait
    interrupts: int  # irq + softirq


def parse_pid_stat(text: str) -> PidStat:
    """CPU ticks and the kernel-thread flag from the text of /proc/PID/stat.

    The second field, ``(comm)``, may hold spaces and parentheses, so fields are counted from
    the *last* ')'.  After it come state (field 3), ..., flags (9), ..., utime (14),
    stime (15), cutime (16), cstime (17), numbered as in proc(5).
    """
    head, paren, rest = text.rpartition(")")
    if not paren or "(" not in head:
        raise ValueError(f"not a /proc/PID/stat line: {text[:80]!r}")
    fields = rest.split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return PidStat(utime + stime + cutime + cstime, bool(int(fields[6]) & PF_KTHREAD))


def parse_machine_stat(text: str) -> MachineStat:
    """Ticks over all cores from the aggregate ``cpu`` line of /proc/stat.

    Idle and iowait are not busy; guest and guest_nice are already inside user and nice, so
    they are not added again.
    """
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            values += [0] * (8 - len(values))
            user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
            busy = user + nice + system + irq + softirq + steal
            return MachineStat(busy, busy + idle + iowait, irq + softirq)
    raise ValueError("no aggregate 'cpu ' line in /proc/stat text")


def parse_pid_file(text: str) -> int:
    """The pid in a pid file: its first token, a positive integer."""
    tokens = text.split()
    if not tokens or not tokens[0].isdigit() or int(tokens[0]) <= 0:
        raise ValueError(f"not a pid file: {text[:40]!r}")
    return int(tokens[0])


def process_tree(roots: Iterable[int], children_of: Callable[[int], Iterable[int]]) -> set[int]:
    """The roots and every descendant, given a function from a pid to its child pids."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(children_of(pid))
    return seen


def cpu_delta_s(before: Mapping[int, int], after: Mapping[int, int]) -> float:
    """CPU seconds a tree spent between two snapshots (pid -> ticks, see parse_pid_stat).

    The sum of ``after`` less the sum of ``before``: a pid born in between counts from zero;
    one that exited and was reaped by a parent in the tree moved its whole life into that
    parent's cutime/cstime, and subtracting its ``before`` leaves exactly its part of the window.
    (A process reaped by a parent outside the tree, such as a root pid itself, is lost.)
    """
    return (sum(after.values()) - sum(before.values())) / TICKS_PER_S


# ---------------------------------------------------------------- readers (thin, over /proc)


def children(pid: int) -> list[int]:
    """Child pids of ``pid`` (every thread's children); [] if it has exited."""
    found: list[int] = []
    tasks = PROC / str(pid) / "task"
    try:
        for task in os.listdir(tasks):
            try:
                found += [int(c) for c in (tasks / task / "children").read_text().split()]
            except FileNotFoundError:
                continue  # the thread exited between listdir and read
    except FileNotFoundError:
        pass
    return found


def read_pid_stat(pid: int) -> PidStat | None:
    try:
        return parse_pid_stat((PROC / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None  # exited


def snapshot(roots: Iterable[int]) -> dict[int, int]:
    """pid -> CPU ticks for every live process in the roots' trees."""
    ticks = {}
    for pid in process_tree(roots, children):
        stat = read_pid_stat(pid)
        if stat is not None:
            ticks[pid] = stat.ticks
    return ticks


def kernel_thread_ticks() -> dict[int, int]:
    """pid -> CPU ticks of every kernel thread (they never exit in a benchmark's time)."""
    ticks = {}
    for entry in os.listdir(PROC):
        if entry.isdigit():
            stat = read_pid_stat(int(entry))
            if stat is not None and stat.kernel_thread:
                ticks[int(entry)] = stat.ticks
    return ticks


def machine() -> MachineStat:
    return parse_machine_stat((PROC / "stat").read_text())


def pids_from_dir(directory: Path) -> list[int]:
    """Pids in every ``*.pid`` file of ``directory``, sorted."""
    files = sorted(directory.glob("*.pid"))
    if not files:
        raise FileNotFoundError(f"no *.pid files in {directory}")
    return sorted({parse_pid_file(f.read_text()) for f in files})


def alive(pid: int) -> bool:
    return (PROC / str(pid)).is_dir()
