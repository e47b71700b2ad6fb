"""How long ``mtls-lab`` commands take to start: the best and the median of several runs, against 0.3 s.

Each command runs in a fresh interpreter (as a user runs it), its output discarded. ``call`` is timed
against a closed local port with no retries, so the time is the start-up plus one refused connection and
its verdict. An editable install (``make test``'s venv) adds its import hook, about 0.03-0.06 s.
``tests/test_startup.py`` checks what each command imports; this prints the times.

Run: ``python benchmarks/startup.py [--runs 10]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mtls_lab.certs.pki import generate

TARGET_SECONDS = 0.3


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (default 10)")
    runs = max(1, parser.parse_args(argv).runs)
    lab = [sys.executable, "-m", "mtls_lab.cli"]
    with tempfile.TemporaryDirectory(prefix="mtls-startup-") as tmp:
        certs = generate(Path(tmp) / "certs").paths.root
        commands = {
            "python -c pass (the interpreter alone)": [sys.executable, "-c", "pass"],
            "mtls-lab --help": [*lab, "--help"],
            "mtls-lab call --help": [*lab, "call", "--help"],
            "mtls-lab call (refused, no retries)": [
                *lab,
                *("call", "--certs", str(certs), "--url", "https://localhost:1/x", "--retries", "0"),
            ],
        }
        print(f"start-up, best and median of {runs} runs; load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            print("  note: PYTHONDONTWRITEBYTECODE is set: modules without a .pyc are compiled at every start")
        for name, command in commands.items():
            times = sorted(timed(command) for _ in range(runs))
            verdict = "" if name.startswith("python") else ("  PASS" if times[0] < TARGET_SECONDS else "  SLOW")
            print(f"  {name:<40} best {times[0]:.3f} s  median {statistics.median(times):.3f} s{verdict}")
    print(f"target: under {TARGET_SECONDS} s (best run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
