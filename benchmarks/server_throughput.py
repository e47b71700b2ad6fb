"""Throughput of the lab's reference server in mTLS mode, measured next to nginx with the same lab PKI.

What it measures, on this machine and over loopback (127.0.0.1) only:

1. keep-alive: mTLS requests per second on persistent connections, each a POST to /custom-action
   made with the Adobe-like client certificate (leaf + intermediate);
2. handshakes: full TLS handshakes per second, one request per new connection, the client
   certificate presented every time and no session resumption;
3. the time ``certs.pki.generate`` takes to write a lab PKI (target: about 1 s or less).

The lab server runs in its own process (``python -m mtls_lab.cli serve --mode mtls``), recording
every call to a JSON-lines file in a temporary directory. If nginx is installed it is measured in the
same run, with ``worker_processes 1`` (the lab server is one process too) and the equivalent mTLS
configuration: same server certificate, ``ssl_verify_client on`` against the Adobe-like root, and a
location that answers 200 with a small JSON body.

Load generators: ApacheBench (``ab -E chain+key``) when installed, for both servers. ab speaks
HTTP/1.0, and the lab server (uvicorn) never keeps an HTTP/1.0 connection alive, so when a short ab
``-k`` probe shows no keep-alive against the lab, keep-alive is measured for both servers with this
script's own HTTP/1.1 client (one connection per worker process) instead. Without ab: ``openssl
s_time -new`` for handshakes and the same HTTP/1.1 client for keep-alive. The output names the
generator of every number.

Reading the output: ``req/s`` counts successful (2xx) requests only; ``failed`` counts everything
else (a run with failures is flagged and the script exits 1). ``srv CPU`` and ``gen CPU`` are the
CPU used by the server and by the load generator during the measurement, in % of one core: a server
far below 100% while its throughput is low is waiting, not computing; a generator near its limit
means the number is the generator's, not the server's. The ratios lab/nginx are printed with their
targets (keep-alive >= 0.7, handshakes >= 0.9) as PASS or BELOW, never as an error. The latency line
(one keep-alive connection, median) and the record check (lines the lab recorded versus requests
the generators completed) help explain the numbers.

Run: ``python benchmarks/server_throughput.py [--seconds 5] [--concurrency 8] [--tls 1.3]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from certs.layout import CA, Identity, LabPaths
from certs.pki import generate

HOST = "127.0.0.1"
ACTION = "/custom-action"
BODY = b'{"journey":"benchmark","profile":"42","event":"order.shipped"}'
TARGETS = {"keep-alive": 0.7, "handshakes": 0.9}
PKI_TARGET_SECONDS = 1.0
LATENCY_REQUESTS = 20
NAGLE_HINT_MS = 30.0
AB_MAX_REQUESTS = 1_000_000
POOL_START_DELAY = 1.5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

NGINX_CONF = """\
# mtls-lab benchmark: nginx with the lab server's mTLS settings
worker_processes 1;
error_log {work}/nginx-error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    keepalive_requests 1000000;  # the lab server never closes a busy keep-alive connection either
    server {{
        listen {host}:{port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {client_ca};
        ssl_verify_client on;
        ssl_verify_depth 2;  # leaf, Adobe-like intermediate, Adobe-like root
        location = {action} {{
            default_type application/json;
            return 200 '{{"accepted":true}}';
        }}
    }}
}}
"""


# --- data -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    seconds: int
    concurrency: int
    tls: str
    generator: str
    nginx: bool


@dataclass(frozen=True)
class Client:
    """Everything a load generator needs to call a server as Adobe would."""

    port: int
    cert: Path  # leaf + intermediate, the chain a client sends
    key: Path
    bundle: Path  # chain + key in one PEM file, for ab -E
    body: Path  # the POST body, for ab -p
    server_ca: Path
    chain_store: Path  # Adobe-like intermediate + server root, for s_time -CAfile
    tls: str

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}{ACTION}"


@dataclass(frozen=True)
class Run:
    """One measurement: successes, failures and CPU shares (1.0 = one core busy)."""

    kind: str
    generator: str
    ok: int
    failed: int
    seconds: float
    server_cpu: float | None
    client_cpu: float | None
    sent: int  # requests the server may have recorded
    in_flight: int = 0  # requests that may have reached the server after the generator stopped counting
    note: str = ""

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def flagged(self) -> bool:
        return self.failed > 0 or self.ok == 0


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    client: Client
    runs: list[Run] = field(default_factory=list)
    latency_ms: float | None = None
    probe_requests: int = 0

    def run(self, kind: str) -> Run | None:
        return next((r for r in self.runs if r.kind == kind), None)


@dataclass(frozen=True)
class Plan:
    keepalive: str  # "ab" or "python"
    handshakes: str  # "ab" or "s_time"
    why: str


# --- CPU accounting -------------------------------------------------------------------------------


def _proc_stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from "state" on: ppid is [1], utime [11], stime [12]


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_proc_stat(int(entry.name))[1]) == pid:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds used so far by a process and its children (nginx: master and worker); None off Linux."""
    try:
        return sum(int(f[11]) + int(f[12]) for f in map(_proc_stat, _tree(pid))) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU shares of the server and of reaped child processes (the load generator) over a window."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.wall = time.monotonic()
        self.server = tree_cpu_seconds(server_pid)
        self.children = children_cpu_seconds()

    def read(self) -> tuple[float | None, float, float]:
        """(server share, generator share, wall seconds) since the meter was made."""
        wall = max(time.monotonic() - self.wall, 1e-9)
        now = tree_cpu_seconds(self.pid)
        server = None if now is None or self.server is None else (now - self.server) / wall
        return server, (children_cpu_seconds() - self.children) / wall, wall


# --- the HTTP/1.1 keep-alive client ---------------------------------------------------------------


def client_context(client: Client) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=client.server_ca)
    context.load_cert_chain(client.cert, client.key)
    version = ssl.TLSVersion.TLSv1_3 if client.tls == "1.3" else ssl.TLSVersion.TLSv1_2
    context.minimum_version = context.maximum_version = version
    return context


def handshake(context: ssl.SSLContext, port: int) -> ssl.SSLSocket:
    raw = socket.create_connection((HOST, port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return context.wrap_socket(raw, server_hostname=HOST)
    except BaseException:
        raw.close()
        raise


class KeepAliveConnection:
    """POSTs on one persistent HTTP/1.1 connection, reconnecting only if the server closes it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.context = client_context(client)
        self.request = (
            f"POST {ACTION} HTTP/1.1\r\nHost: {HOST}:{client.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        self.sock: ssl.SSLSocket | None = None
        self.buffer = b""
        self.connections = 0

    def connect(self) -> ssl.SSLSocket:
        if self.sock is None:
            self.sock = handshake(self.context, self.client.port)
            self.buffer = b""
            self.connections += 1
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def call(self) -> int:
        """One request; returns the HTTP status. Raises OSError or ValueError on a broken exchange."""
        self.connect().sendall(self.request)
        status, length, closing = self._read_head()
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]
        if closing:
            self.close()
        return status

    def _read_head(self) -> tuple[int, int, bool]:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._fill()
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        self.buffer = self.buffer[end + 4 :]
        headers = {name.strip().lower(): value.strip().lower() for name, _, value in (x.partition(":") for x in lines)}
        if "content-length" not in headers:
            raise ValueError("response without Content-Length")
        return int(lines[0].split()[1]), int(headers["content-length"]), headers.get("connection") == "close"

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk


def keepalive_worker(client: Client, start_at: float, stop_at: float) -> tuple[int, int, int, float]:
    """One worker process: (ok, failed, connections opened, CPU seconds) between start_at and stop_at."""
    conn = KeepAliveConnection(client)
    try:
        conn.connect()  # the handshake happens before the measured window
    except OSError:
        conn.close()
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu = time.process_time()
    ok = failed = 0
    while time.monotonic() < stop_at:
        try:
            status = conn.call()
        except (OSError, ValueError):
            failed += 1
            conn.close()
            continue
        if 200 <= status < 300:
            ok += 1
        else:
            failed += 1
    conn.close()
    return ok, failed, conn.connections, time.process_time() - cpu


def python_keepalive(server: Server, opts: Options) -> Run:
    context = multiprocessing.get_context("fork")
    start_at = time.monotonic() + POOL_START_DELAY
    stop_at = start_at + opts.seconds
    with context.Pool(opts.concurrency) as pool:
        pending = pool.starmap_async(keepalive_worker, [(server.client, start_at, stop_at)] * opts.concurrency)
        time.sleep(max(0.0, start_at - time.monotonic()))
        meter = CpuMeter(server.process.pid)
        time.sleep(max(0.0, stop_at - time.monotonic()))
        server_cpu, _, wall = meter.read()
        results = pending.get(timeout=opts.seconds + 60)
    ok, failed, connections, cpu = (sum(column) for column in zip(*results, strict=True))
    note = f"{int(connections)} connections for {int(ok + failed)} requests"
    generator = f"python HTTP/1.1 x{opts.concurrency}"
    return Run("keep-alive", generator, int(ok), int(failed), wall, server_cpu, cpu / wall, int(ok + failed), 0, note)


def keepalive_latency(client: Client) -> tuple[float | None, int]:
    """Median milliseconds per request on one warm keep-alive connection, and the requests sent."""
    conn = KeepAliveConnection(client)
    times: list[float] = []
    sent = 0
    try:
        for _ in range(LATENCY_REQUESTS + 1):  # the first one pays the handshake: not timed
            started = time.perf_counter()
            sent += 1
            if not 200 <= conn.call() < 300:
                return None, sent
            times.append(time.perf_counter() - started)
    except (OSError, ValueError):
        return None, sent
    finally:
        conn.close()
    return statistics.median(times[1:]) * 1000, sent


# --- ApacheBench ----------------------------------------------------------------------------------


def ab_tls_flag(tls: str) -> list[str]:
    usage = subprocess.run(["ab", "-h"], capture_output=True, text=True, check=False)
    name = f"TLS{tls}"
    return ["-f", name] if name in usage.stdout + usage.stderr else []


def ab_command(client: Client, concurrency: int, keepalive: bool, limit: list[str]) -> list[str]:
    cmd = ["ab", "-q", "-r", "-c", str(concurrency), "-E", str(client.bundle)]
    cmd += ["-p", str(client.body), "-T", "application/json", *ab_tls_flag(client.tls), *limit]
    return [*cmd, "-k", client.url] if keepalive else [*cmd, client.url]


def ab_value(output: str, label: str, default: float = 0.0) -> float:
    match = re.search(rf"^{label}:\s+([\d.]+)", output, re.MULTILINE)
    return float(match.group(1)) if match else default


def run_ab(server: Server, opts: Options, keepalive: bool) -> Run:
    kind = "keep-alive" if keepalive else "handshakes"
    limit = ["-t", str(opts.seconds), "-n", str(AB_MAX_REQUESTS)]  # -n after -t, or ab stops at 50000
    cmd = ab_command(server.client, opts.concurrency, keepalive, limit)
    meter = CpuMeter(server.process.pid)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=opts.seconds + 60, check=False)
    server_cpu, client_cpu, wall = meter.read()
    out = done.stdout
    complete = int(ab_value(out, "Complete requests"))
    bad = int(ab_value(out, "Failed requests") + ab_value(out, "Non-2xx responses"))
    seconds = ab_value(out, "Time taken for tests", wall)
    note = _ab_note(done, out, keepalive, complete)
    generator = f"ab -c {opts.concurrency}{' -k' if keepalive else ''}"
    failed = bad if complete else max(bad, 1)
    ok = complete - bad
    return Run(kind, generator, ok, failed, seconds, server_cpu, client_cpu, complete, opts.concurrency, note)


def _ab_note(done: subprocess.CompletedProcess[str], out: str, keepalive: bool, complete: int) -> str:
    if not complete:
        return f"ab exit {done.returncode}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}"
    breakdown = re.search(r"\(Connect: .*\)", out)
    notes = [breakdown.group(0)] if breakdown and ab_value(out, "Failed requests") else []
    if keepalive:
        notes.append(f"{int(ab_value(out, 'Keep-Alive requests'))} keep-alive of {complete}")
    return "; ".join(notes)


def ab_keepalive_works(client: Client) -> tuple[bool, int]:
    """A short ab -k probe: does this server keep ab's HTTP/1.0 connections alive? Also the requests sent."""
    done = subprocess.run(ab_command(client, 1, True, ["-n", "20"]), capture_output=True, text=True, check=False)
    return ab_value(done.stdout, "Keep-Alive requests") > 0, int(ab_value(done.stdout, "Complete requests"))


# --- openssl s_time (when ab is missing) ---------------------------------------------------------


def s_time_handshakes(server: Server, opts: Options) -> Run:
    client = server.client
    cmd = ["openssl", "s_time", "-connect", f"{HOST}:{client.port}", "-new", "-time", str(opts.seconds)]
    cmd += ["-cert", str(client.cert), "-key", str(client.key), "-CAfile", str(client.chain_store)]
    cmd += ["-www", ACTION, "-tls1_3" if client.tls == "1.3" else "-tls1_2"]
    meter = CpuMeter(server.process.pid)
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    procs += [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)][: 0 or 1] * 0
    procs += [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(opts.concurrency - 1)
    ]
    outputs = [p.communicate(timeout=opts.seconds + 60) for p in procs]
    server_cpu, client_cpu, wall = meter.read()
    counts = [re.search(r"(\d+) connections in [\d.]+s;", out) for out, _ in outputs]
    ok = sum(int(m.group(1)) for m in counts if m)
    failed = sum(1 for p in procs if p.returncode != 0)
    note = f"{failed} s_time process(es) failed: {outputs[0][1].strip()[-120:]}" if failed else ""
    generator = f"openssl s_time -new x{opts.concurrency}"
    return Run("handshakes", generator, ok, failed, wall, server_cpu, client_cpu, ok, 0, note)
