"""A bounded soak of the reference server: valid calls, invalid identities and garbage, for N seconds.

The server runs in its own process (``python -m mtls_lab.cli serve --mode mtls --quiet --record FILE``)
on a free loopback port, with short handshake and header timeouts (2 s) so that idle and slow clients
come and go during the run. Worker threads mix, by weight:

- ``valid``: the AJO-like caller (``caller.call``, Java model, no retries) with the ``adobe`` identity;
- ``big``: a valid connection whose body is over ``--max-body`` (413: it reaches the app, recorded);
- ``identity:<name>``: the caller with an identity the server must reject (impostor, expired, ...);
- ``garbage:<kind>``: bytes that are not TLS, plain HTTP, a truncated ClientHello, open-and-close, an
  oversized request head (431), a malformed request (400);

and one more thread keeps idle and slow clients (never a byte, stop mid-handshake, headers one byte a
second) coming. At the end it prints the calls made, the verdicts by outcome, the server's log lines by
kind (errors and tracebacks are server errors), the lines recorded against the requests that reached
the app, and the server's memory: peak (VmHWM), after warm-up and at the end (VmRSS).

Pass (exit 0): every record line is whole, requests recorded == requests that reached the app, no server
error or traceback, and memory at the end within ``--tolerance-mb`` of memory after warm-up.

Run: ``python benchmarks/soak.py [--seconds 60] [--workers 4] [--warmup 10] [--tolerance-mb 10]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mtls_lab.caller.action import parse  # noqa: E402
from mtls_lab.caller.call import CallOptions, call, lab_identity  # noqa: E402
from mtls_lab.caller.tls import Chain  # noqa: E402
from mtls_lab.certs.layout import CA, Identity, LabPaths  # noqa: E402
from mtls_lab.certs.pki import generate  # noqa: E402

MAX_BODY = 1024
INVALID = ["impostor", "expired", "not-yet-valid", "no-client-auth", "self-signed", "none"]
GARBAGE = ["bytes", "plain-http", "truncated-hello", "open-close", "huge-head", "malformed"]
WEIGHTS = {"valid": 6, "big": 1, "identity": 3, "garbage": 3}
REACHES_APP = {"valid:accepted", "big:413"}
# the server's one line per bad connection (mtls_lab.server.connections, mtls_lab.server._uvicorn_limits)
BAD_CONNECTION_LINES = (
    "handshake rejected",
    "handshake timed out",
    "handshake ended by the client",
    "connection failed after the handshake",
    "connection ended by the client",
    "request refused",
)


@dataclass
class Tally:
    """What the clients did and saw; thread-safe."""

    outcomes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str) -> None:
        with self.lock:
            self.outcomes[key] += 1


# --- the server -----------------------------------------------------------------------------------


def start_server(pki: LabPaths, record: Path, log: Path) -> tuple[subprocess.Popen[str], int]:
    args = [sys.executable, "-m", "mtls_lab.cli", "serve", "--mode", "mtls", "--certs", str(pki.root)]
    args += ["--port", "0", "--record", str(record), "--quiet", "--max-body", str(MAX_BODY)]
    args += ["--handshake-timeout", "2", "--header-timeout", "2", "--body-timeout", "2"]
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"https://127\.0\.0\.1:(\d+)", line)
    if not found:
        process.kill()
        raise SystemExit(f"the server did not start: {line!r} {log.read_text()[-500:]}")
    return process, int(found.group(1))


def memory_kb(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}


class MemoryWatch(threading.Thread):
    """VmRSS every 0.5 s; the value at the end of warm-up and at the end."""

    def __init__(self, pid: int, warmup: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.warmup_end = pid, time.monotonic() + warmup
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                self.samples.append((time.monotonic(), memory_kb(self.pid)["VmRSS"]))
            except (OSError, KeyError):
                return

    def after_warmup(self) -> int:
        later = [rss for moment, rss in self.samples if moment >= self.warmup_end]
        return later[0] if later else self.samples[-1][1]


# --- the clients ----------------------------------------------------------------------------------


def client_context(pki: LabPaths, identity: Identity | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca(CA.SERVER_ROOT))
    if identity is not None:
        context.load_cert_chain(pki.client_cert(identity), pki.client_key(identity))
    return context


def ajo(pki: LabPaths, url: str, identity: str) -> str:
    action = parse({"name": "soak", "url": url + "/custom-action", "method": "POST"}, "soak")
    options = CallOptions(pki=pki, identity=lab_identity(pki, identity, Chain.FULL), retries=0, timeout=10)
    return call(action, {}, options).outcome.value


def big(pki: LabPaths, port: int) -> str:
    body = b"x" * (MAX_BODY * 2)
    head = b"POST /big HTTP/1.1\r\nHost: lab\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    with client_context(pki, Identity.ADOBE).wrap_socket(connect(port), server_hostname="localhost") as conn:
        conn.sendall(head + body)
        answer = drain(conn)
    return answer[9:12].decode() or "closed"


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def drain(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (OSError, ssl.SSLError):
        pass
    return data


def hello(pki: LabPaths) -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conversation = client_context(pki, Identity.ADOBE).wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        conversation.do_handshake()
    return outgoing.read()


def garbage(pki: LabPaths, port: int, kind: str) -> str:
    if kind in ("huge-head", "malformed"):
        request = b"GET / HTTP/1.1\r\nX: " + b"a" * 40_000 + b"\r\n\r\n" if kind == "huge-head" else b"\x00 bad\r\n\r\n"
        with client_context(pki, Identity.ADOBE).wrap_socket(connect(port), server_hostname="localhost") as conn:
            with contextlib.suppress(OSError):  # the server may answer before it has read everything
                conn.sendall(request)
            answer = drain(conn)
        return answer[9:12].decode() or "closed"
    with connect(port) as sock:
        if kind == "bytes":
            sock.sendall(b"\x00\x00\x00\x00" + os.urandom(300))
        elif kind == "plain-http":
            sock.sendall(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")
        elif kind == "truncated-hello":
            sock.sendall(hello(pki)[:50])
            sock.shutdown(socket.SHUT_WR)
        elif kind == "open-close":
            return "closed"
        answer = drain(sock)
    return answer[9:12].decode() if answer.startswith(b"HTTP/") else ("alert" if answer else "closed")


def worker(pki: LabPaths, port: int, deadline: float, tally: Tally, stream: int) -> None:
    rng = random.Random(stream)
    url = f"https://localhost:{port}"
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    while time.monotonic() < deadline:
        kind = rng.choices(kinds, weights)[0]
        try:
            if kind == "valid":
                key = f"valid:{ajo(pki, url, 'adobe')}"
            elif kind == "big":
                key = f"big:{big(pki, port)}"
            elif kind == "identity":
                name = rng.choice(INVALID)
                key = f"identity:{name}:{ajo(pki, url, name)}"
            else:
                name = rng.choice(GARBAGE)
                key = f"garbage:{name}:{garbage(pki, port, name)}"
        except Exception as exc:  # a client-side failure is a finding, not a crash of the soak
            key = f"{kind}:client-error:{type(exc).__name__}"
        tally.add(key)


def slow_worker(pki: LabPaths, port: int, deadline: float, tally: Tally) -> None:
    """Idle and slow clients, one at a time: each is bounded by the server's 2 s timeouts."""
    n = 0
    while time.monotonic() < deadline - 3:
        kind = ("idle", "mid-handshake", "slow-headers")[n % 3]
        n += 1
        with connect(port) as sock:
            if kind == "mid-handshake":
                sock.sendall(hello(pki))
            if kind == "slow-headers":
                conn = client_context(pki, Identity.ADOBE).wrap_socket(sock, server_hostname="localhost")
                for byte in b"POST /custom-action HTTP/1.1\r\nHost: lab\r\n":
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break
                    time.sleep(1.0)  # one byte per second
                answer = drain(conn)
                tally.add(f"slow:{kind}:{answer[9:12].decode() or 'closed'}")
                continue
            answer = drain(sock)
        tally.add(f"slow:{kind}:{'closed' if not answer or kind == 'mid-handshake' else 'answered'}")


# --- the report -----------------------------------------------------------------------------------


def log_kinds(log: str) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for line in log.splitlines():
        for pattern in (*BAD_CONNECTION_LINES, " ERROR ", "Traceback"):
            if pattern in line:
                kinds[pattern.strip()] += 1
                break
        else:
            kinds["other"] += 1
    return kinds


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="mtls-lab-soak-") as tmp:
        work = Path(tmp)
        pki = generate(work / "certs").paths
        record, log = work / "calls.jsonl", work / "server.log"
        server, port = start_server(pki, record, log)
        watch = MemoryWatch(server.pid, args.warmup)
        watch.start()
        tally = Tally()
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=worker, args=(pki, port, deadline, tally, n)) for n in range(args.workers)]
        threads.append(threading.Thread(target=slow_worker, args=(pki, port, deadline, tally)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(0.6)
        end_rss = memory_kb(server.pid)
        watch.stop.set()
        server.send_signal(signal.SIGINT)
        server.wait(15)
        return report(args, tally, record.read_text(), log.read_text(), watch, end_rss)


def report(
    args: argparse.Namespace, tally: Tally, record: str, log: str, watch: MemoryWatch, end: dict[str, int]
) -> int:
    outcomes = tally.outcomes
    lines = record.splitlines()
    whole = sum(1 for line in lines if _is_json(line))
    reached = sum(n for key, n in outcomes.items() if key in REACHES_APP)
    kinds = log_kinds(log)
    errors = kinds["ERROR"] + kinds["Traceback"]
    bad = sum(n for key, n in outcomes.items() if key.split(":")[0] in ("identity", "garbage", "slow"))
    per_bad = sum(kinds[pattern] for pattern in BAD_CONNECTION_LINES)
    requests = sum(json.loads(line).get("kind", "request") == "request" for line in lines if _is_json(line))
    warm, growth = watch.after_warmup(), end["VmRSS"] - watch.after_warmup()
    print(f"soak: {args.seconds:g} s, {args.workers} workers + 1 slow-client thread, warm-up {args.warmup:g} s")
    print(f"calls made: {sum(outcomes.values())}")
    print("verdicts by outcome:")
    for key, n in sorted(outcomes.items()):
        print(f"  {key:<40} {n}")
    print(f"server log lines: {dict(kinds)}")
    print(f"server errors (ERROR lines + tracebacks): {errors}; lines about bad connections: {per_bad} for {bad}")
    print(
        f"lines recorded: {len(lines)} ({whole} whole JSON lines: {requests} requests, {whole - requests} connections);"
        f" requests that reached the app: {reached}"
    )
    print(
        f"server memory: peak {end['VmHWM'] / 1024:.1f} MB (VmHWM); after warm-up {warm / 1024:.1f} MB, "
        f"at the end {end['VmRSS'] / 1024:.1f} MB (growth {growth / 1024:+.1f} MB, tolerance {args.tolerance_mb} MB)"
    )
    checks = {
        "no lost or extra lines": len(lines) == whole and requests == reached,
        "no server errors": errors == 0,
        "at most one log line per bad connection": per_bad <= bad and kinds["other"] == 0,
        "no memory growth after warm-up": growth <= args.tolerance_mb * 1024,
        "no client-side errors": not any("client-error" in key for key in outcomes),
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


def _is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="how long to run (default 60)")
    parser.add_argument("--workers", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--warmup", type=float, default=10, help="seconds before the memory baseline (default 10)")
    parser.add_argument("--tolerance-mb", type=float, default=10, help="allowed RSS growth after warm-up (default 10)")
    args = parser.parse_args()
    if args.warmup >= args.seconds:
        parser.error("--warmup must be shorter than --seconds")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
