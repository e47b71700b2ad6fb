"""CPU and memory of a server's process tree, read from /proc (Linux), and CPU of the load generator."""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.2


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from "state" on: ppid [1], utime [11], stime [12]


def tree(pid: int) -> list[int]:
    """The process and all its descendants (nginx's workers, the lab's workers, the JVM's threads are one)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    """A process's proportional share of memory: shared pages (a forked worker's) counted once in a sum."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return _status_kib(pid, "VmRSS")


def peak_rss_mib(pid: int) -> float:
    """The highest resident memory of one process so far (VmHWM), MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def generator_cpu_seconds() -> float:
    """CPU of this process's reaped children (the load generator's worker processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Window:
    server_cpu: float  # CPU seconds of the server's processes
    generator_cpu: float  # CPU seconds of the load generator
    wall: float
    tree_mib: float  # the highest sum of the tree's proportional memory (PSS) seen while sampling


class Meter:
    """CPU used by a server tree and by the generator over a window, and the tree's memory, sampled."""

    def __init__(self, pid: int) -> None:
        self.pids = tree(pid)
        self.pss = 0.0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self.wall = time.monotonic()
        self.server = cpu_seconds(self.pids)
        self.generator = generator_cpu_seconds()
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.pss = max(self.pss, sum(_pss_kib(pid) for pid in self.pids) / 1024)

    def read(self, generator_cpu: float | None = None) -> Window:
        """The window so far; ``generator_cpu``: the generator's own count, when its processes report it."""
        wall = max(time.monotonic() - self.wall, 1e-9)
        self._stop.set()
        self._sampler.join()
        server = cpu_seconds(self.pids) - self.server
        generator = generator_cpu if generator_cpu is not None else generator_cpu_seconds() - self.generator
        return Window(server, generator, wall, self.pss)
