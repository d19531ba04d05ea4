"""How busy the shared machine was while a phase ran: the load average sampled, and the CPU
of the whole machine split into the cluster's servers, the daemon passes this benchmark ran
(RUSAGE_CHILDREN: each pass is reaped before the window closes), this process, kernel
threads, and the rest: "foreign" CPU, other people's work on the same cores
(bench/swiftapi/procstat.py reads /proc)."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from procstat import TICKS_PER_S, cpu_delta_s, kernel_thread_ticks, machine, snapshot

SAMPLE_INTERVAL_S = 2.0


def _rusage_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def loadavg_1m() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


@dataclass
class LoadWindow:
    """Open with ``start()``, close with ``stop()``; ``result()`` is then a dict."""

    server_pids: Callable[[], list[int]]  # read again at the end: a node's servers restart
    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> LoadWindow:
        self._wall = time.monotonic()
        self._machine = machine()
        self._kernel = kernel_thread_ticks()
        self._servers = snapshot(self.server_pids())
        self._children = _rusage_s(resource.RUSAGE_CHILDREN)
        self._self = _rusage_s(resource.RUSAGE_SELF)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append(loadavg_1m())
            self._stop.wait(SAMPLE_INTERVAL_S)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        wall_s = time.monotonic() - self._wall
        after = machine()
        busy_s = (after.busy - self._machine.busy) / TICKS_PER_S
        cores = (after.total - self._machine.total) / TICKS_PER_S / max(wall_s, 1e-9)
        kernel_s = cpu_delta_s(self._kernel, kernel_thread_ticks())
        # A restarted server is a new pid: its time counts from zero, the old one's is lost
        # (the window that restarts servers is not one whose server CPU is reported).
        servers_s = cpu_delta_s(self._servers, snapshot(self.server_pids()))
        children_s = _rusage_s(resource.RUSAGE_CHILDREN) - self._children
        self_s = _rusage_s(resource.RUSAGE_SELF) - self._self
        foreign_s = max(0.0, busy_s - kernel_s - servers_s - children_s - self_s)
        return {
            "wall_s": round(wall_s, 2),
            "cores": round(cores, 2),
            "machine_busy_cpu_s": round(busy_s, 2),
            "servers_cpu_s": round(servers_s, 2),
            "daemon_passes_cpu_s": round(children_s, 2),
            "bench_cpu_s": round(self_s, 2),
            "kernel_threads_cpu_s": round(kernel_s, 2),
            "foreign_cpu_s": round(foreign_s, 2),
            "foreign_cores": round(foreign_s / max(wall_s, 1e-9), 2),
            "loadavg_1m_mean": round(sum(self.samples) / max(len(self.samples), 1), 2),
            "loadavg_1m_max": round(max(self.samples, default=0.0), 2),
        }
