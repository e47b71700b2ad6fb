"""Where the lab server spends its time under keep-alive load: py-spy when installed, else cProfile.

py-spy samples the running server from outside (no slowdown; ``pip install py-spy``); cProfile runs
the server under Python's profiler (every call is slowed, so small functions look heavier). Both print
the functions with the most time of their own and the most time including what they call.
"""

from __future__ import annotations

import collections
import pstats
import shutil
import signal
import subprocess
import sys
from pathlib import Path

TOP = 25


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def lab_command(spy: str | None, out: Path) -> list[str]:
    """How to start the lab server to be profiled (py-spy attaches later; cProfile wraps it)."""
    return [sys.executable] if spy else [sys.executable, "-m", "cProfile", "-o", str(out)]


def attach(spy: str, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(out), "--duration", str(int(seconds))]
    return subprocess.Popen([*cmd, "--rate", "250"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def py_spy_report(stacks: Path) -> list[str]:
    own: collections.Counter[str] = collections.Counter()
    within: collections.Counter[str] = collections.Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames:
            continue
        n = int(count)
        total += n
        names = frames.split(";")
        own[names[-1]] += n
        for name in set(names):
            within[name] += n
    lines = [f"py-spy: {total} samples of the lab server under keep-alive load"]
    lines += [f"  own   {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(TOP)]
    lines += [f"  incl. {100 * n / total:5.1f}%  {name}" for name, n in within.most_common(TOP * 2) if n < total]
    return lines


def stop_profiled(process: subprocess.Popen[bytes]) -> None:
    """cProfile writes its file when the server returns: stop it with SIGINT (graceful), not SIGTERM."""
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


def cprofile_report(out: Path) -> list[str]:
    stats = pstats.Stats(str(out))
    lines = ["cProfile: the lab server under keep-alive load (profiling slows every call)"]
    for key, label in (("tottime", "own"), ("cumulative", "incl.")):
        stats.sort_stats(key)
        table: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
        ranked = sorted(table.items(), key=lambda item: item[1][2 if key == "tottime" else 3], reverse=True)
        total = max(v[3] for v in table.values())
        for (file, line, func), (_, _, own, cumulative, _) in ranked[:TOP]:
            share = (own if key == "tottime" else cumulative) / total
            lines.append(f"  {label:<5} {100 * share:5.1f}%  {func} ({Path(file).name}:{line})")
    return lines
