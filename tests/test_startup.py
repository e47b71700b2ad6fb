"""What each command imports: building the parser loads no server, HTTP client or certificate library.

A command's start-up time is mostly its imports (uvicorn, Starlette, httpx and cryptography take most of
it), so this checks the import graph, not the clock: a command may import only what it runs.
``benchmarks/startup.py`` measures the times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from mtls_lab.certs.layout import LabPaths

# third-party packages a command pays for at start-up; a command imports only those it needs
HEAVY = {"cryptography", "httpx", "httpcore", "h11", "anyio", "uvicorn", "starlette", "httptools", "trustme"}
CALL_NEEDS = {"cryptography", "httpx", "httpcore", "h11", "anyio"}  # an HTTPS client and certificates

PROBE = """
import contextlib, io, json, sys
from mtls_lab.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _imported(args: list[str]) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_each_command_imports_only_what_it_runs(pki: LabPaths) -> None:
    refused = ["call", "--certs", str(pki.root), "--url", "https://localhost:1/x", "--retries", "0"]
    cases: dict[str, tuple[list[str], set[str]]] = {
        "--help": (["--help"], set()),
        "--version": (["--version"], set()),
        "call --help": (["call", "--help"], set()),
        "serve --help": (["serve", "--help"], set()),
        "matrix --help": (["matrix", "--help"], set()),
        "a call (refused)": (refused, CALL_NEEDS),  # no server stack, no PKI generator
    }
    with ThreadPoolExecutor(len(cases)) as pool:
        seen = dict(zip(cases, pool.map(lambda case: _imported(case[0]), cases.values()), strict=True))
    extra = {name: sorted(seen[name] & HEAVY - allowed) for name, (_, allowed) in cases.items()}
    assert extra == {name: [] for name in cases}, "imports beyond what the command runs"
    assert seen["a call (refused)"] >= CALL_NEEDS  # the check sees what a command does import
