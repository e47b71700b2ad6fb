"""Wall time of the default scenario matrix, and the time per scenario (goal: under 5 s on 2 cores).

Run: ``python benchmarks/matrix_time.py [--runs 3]``. Each run generates nothing (the PKI is made once
in a temporary directory), starts the servers the scenarios need, runs every scenario once, and stops
the servers; the wall time includes all of that. Prints numbers, never fails on them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from mtls_lab.certs.pki import generate
from mtls_lab.matrix.runner import run
from mtls_lab.matrix.scenarios import SCENARIOS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="how many full matrix runs (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = generate(Path(tmp) / "certs").paths
        walls, per_scenario, mismatches = [], [], 0
        for _ in range(args.runs):
            started = time.perf_counter()
            results = run(SCENARIOS, pki)
            walls.append(time.perf_counter() - started)
            per_scenario += [r.seconds for r in results]
            mismatches += sum(not r.match for r in results)
    servers = len({s.server_key() for s in SCENARIOS})
    print(f"default matrix: {len(SCENARIOS)} scenarios, {servers} server configurations, {args.runs} runs")
    print(
        f"wall time per run: median {statistics.median(walls):.2f} s, max {max(walls):.2f} s (goal < 5 s): "
        f"{'PASS' if max(walls) < 5 else 'BELOW'}"
    )
    print(
        f"time per scenario (the call alone): median {statistics.median(per_scenario) * 1000:.1f} ms, "
        f"p95 {sorted(per_scenario)[int(len(per_scenario) * 0.95)] * 1000:.1f} ms, "
        f"max {max(per_scenario) * 1000:.1f} ms"
    )
    print(f"mismatched verdicts: {mismatches}")


if __name__ == "__main__":
    main()
