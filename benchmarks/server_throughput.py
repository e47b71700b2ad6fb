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
(one keep-alive connection, median) and the record check (requests the lab recorded versus requests
the generators completed) help explain the numbers.

Run: ``python benchmarks/server_throughput.py [--seconds 5] [--concurrency 8] [--tls 1.3]``.
"""

from __future__ import annotations

import argparse
import json
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
from dataclasses import dataclass, field, replace
from pathlib import Path

from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.certs.pki import generate

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
    complete = int(ab_value(done.stdout, "Complete requests"))
    ok, failed = ab_counts(done.stdout, complete)
    seconds = ab_value(done.stdout, "Time taken for tests", wall)
    note = _ab_note(done, keepalive, complete, failed)
    generator = f"ab -c {opts.concurrency}{' -k' if keepalive else ''}"
    return Run(kind, generator, ok, failed, seconds, server_cpu, client_cpu, complete, opts.concurrency, note)


def ab_counts(out: str, complete: int) -> tuple[int, int]:
    """(ok, failed) from ab's report.

    ab counts a connection ended by a TLS alert as a complete request with an empty document, and as
    failed only if its length differs from the first one's: an empty document means all requests failed.
    """
    if not complete:
        return 0, max(1, int(ab_value(out, "Failed requests")))
    if ab_value(out, "Document Length") == 0:
        return 0, complete
    bad = int(ab_value(out, "Failed requests") + ab_value(out, "Non-2xx responses"))
    return complete - bad, bad


def first_error(stderr: str) -> str:
    """The reason of the first OpenSSL error line (e.g. "tlsv1 alert unknown ca"), else the first line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        match = re.search(r":error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)", line)
        if match:
            return match.group(1)
    return lines[0][-100:] if lines else ""


def _ab_note(done: subprocess.CompletedProcess[str], keepalive: bool, complete: int, failed: int) -> str:
    error = first_error(done.stderr)
    if not complete:
        return f"ab exit {done.returncode}: {error or 'no output'}"
    notes = []
    if failed:
        breakdown = re.search(r"\(Connect: .*\)", done.stdout)
        notes += [breakdown.group(0)] if breakdown else []
        notes.append(f"ab said: {error}" if error else "empty responses")
    if keepalive:
        notes.append(f"{int(ab_value(done.stdout, 'Keep-Alive requests'))} keep-alive of {complete}")
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
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(opts.concurrency)
    ]
    outputs = [p.communicate(timeout=opts.seconds + 60) for p in procs]
    server_cpu, client_cpu, wall = meter.read()
    ok, failed = 0, 0
    for (out, _), proc in zip(outputs, procs, strict=True):
        counted = s_time_counts(out, proc.returncode)
        ok, failed = ok + counted[0], failed + counted[1]
    errors = [first_error(err) for _, err in outputs if err.strip()]
    note = f"s_time said: {errors[0]}" if failed and errors else ""
    generator = f"openssl s_time -new x{opts.concurrency}"
    return Run("handshakes", generator, ok, failed, wall, server_cpu, client_cpu, ok, 0, note)


def s_time_counts(out: str, returncode: int) -> tuple[int, int]:
    """(ok, failed) of one s_time process: connections that read no bytes got no HTTP response."""
    match = re.search(r"(\d+) connections in \d+ real seconds, (\d+) bytes read per connection", out)
    if match is None or returncode != 0:
        return 0, max(1, int(match.group(1)) if match else 1)
    connections = int(match.group(1))
    return (connections, 0) if int(match.group(2)) > 0 else (0, connections)


# --- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def client_files(paths: LabPaths, work: Path) -> Client:
    """The client's files for every generator; the port is set per server."""
    cert, key = paths.client_cert(Identity.ADOBE), paths.client_key(Identity.ADOBE)
    bundle, body, store = work / "client-chain-and-key.pem", work / "body.json", work / "s_time-ca.pem"
    bundle.write_bytes(cert.read_bytes() + key.read_bytes())
    body.write_bytes(BODY)
    store.write_bytes(paths.ca(CA.ADOBE_INTERMEDIATE).read_bytes() + paths.ca(CA.SERVER_ROOT).read_bytes())
    return Client(0, cert, key, bundle, body, paths.ca(CA.SERVER_ROOT), store, "1.3")


def spawn(cmd: list[str], stem: Path) -> subprocess.Popen[bytes]:
    with stem.with_suffix(".out").open("wb") as out, stem.with_suffix(".err").open("wb") as err:
        return subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)


def last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1] if lines else "(no output)"


def wait_ready(server: Server, log: Path, timeout: float = 20.0) -> Server:
    """Return once an mTLS handshake with the server succeeds; RuntimeError if it exits or never does."""
    context, deadline = client_context(server.client), time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with status {server.process.returncode}: {last_line(log)}")
        try:
            handshake(context, server.client.port).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                stop(server.process)
                raise RuntimeError(f"{server.name} accepted no mTLS connection within {timeout:g} s") from None
            time.sleep(0.05)


def start_lab(paths: LabPaths, work: Path, client: Client) -> Server:
    cmd = [sys.executable, "-m", "mtls_lab.cli", "serve", "--mode", "mtls", "--certs", str(paths.root)]
    cmd += ["--port", str(client.port), "--quiet", "--record", str(work / "calls.jsonl")]
    return wait_ready(Server("lab", spawn(cmd, work / "lab"), client), work / "lab.err")


def start_nginx(nginx: str, paths: LabPaths, work: Path, client: Client) -> Server:
    conf = work / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            work=work,
            host=HOST,
            port=client.port,
            cert=paths.server_cert,
            key=paths.server_key,
            client_ca=paths.ca(CA.ADOBE_ROOT),
            action=ACTION,
        )
    )
    usage = subprocess.run([nginx, "-h"], capture_output=True, text=True, check=False)
    early_log = ["-e", str(work / "nginx-error.log")] if "-e filename" in usage.stderr + usage.stdout else []
    cmd = [nginx, *early_log, "-p", str(work), "-c", str(conf), "-g", "daemon off;"]
    return wait_ready(Server("nginx", spawn(cmd, work / "nginx"), client), work / "nginx-error.log")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the benchmark --------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def choose_plan(opts: Options, lab: Server) -> Plan:
    """Which generator measures what; probes ab -k against the lab server (its requests are counted)."""
    if opts.generator == "fallback" or not shutil.which("ab"):
        why = "forced by --generator fallback" if opts.generator == "fallback" else "ab is not installed"
        return Plan("python", "s_time", why)
    works, sent = ab_keepalive_works(lab.client)
    lab.probe_requests += sent
    if works:
        return Plan("ab", "ab", "ab -k keeps its connections alive on the lab server")
    return Plan(
        "python",
        "ab",
        "an ab -k probe got no keep-alive from the lab server (ab speaks HTTP/1.0, which uvicorn always "
        "closes), so keep-alive uses this script's HTTP/1.1 client, for both servers",
    )


def bench(server: Server, plan: Plan, opts: Options) -> Server:
    progress(f"{server.name}: latency on one keep-alive connection ({LATENCY_REQUESTS} requests)")
    server.latency_ms, sent = keepalive_latency(server.client)
    server.probe_requests += sent
    progress(f"{server.name}: keep-alive requests, {opts.seconds} s")
    server.runs.append(run_ab(server, opts, True) if plan.keepalive == "ab" else python_keepalive(server, opts))
    progress(f"{server.name}: new handshakes, {opts.seconds} s")
    server.runs.append(run_ab(server, opts, False) if plan.handshakes == "ab" else s_time_handshakes(server, opts))
    return server


def timed_pki(work: Path) -> tuple[LabPaths, float, int]:
    started = time.perf_counter()
    result = generate(work / "certs")
    return result.paths, time.perf_counter() - started, len(result.written)


def measure_lab(paths: LabPaths, work: Path, client: Client, opts: Options) -> tuple[Server, Plan]:
    lab = start_lab(paths, work, client)
    try:
        plan = choose_plan(opts, lab)
        return bench(lab, plan, opts), plan
    finally:
        stop(lab.process)


def measure_nginx(paths: LabPaths, work: Path, client: Client, plan: Plan, opts: Options) -> Server | str:
    """nginx's numbers, or why there are none."""
    nginx = shutil.which("nginx")
    if not opts.nginx or nginx is None:
        return "skipped (--no-nginx)" if not opts.nginx else "nginx is not installed: lab numbers only"
    try:
        server = start_nginx(nginx, paths, work, client)
    except RuntimeError as exc:
        return f"nginx did not start ({exc}): lab numbers only"
    try:
        return bench(server, plan, opts)
    finally:
        stop(server.process)


# --- the report -----------------------------------------------------------------------------------


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.0f}%"


def tool_version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    return ((done.stdout + done.stderr).strip().splitlines() or ["?"])[0]


def print_header(opts: Options, pki_seconds: float, files: int) -> None:
    print(
        f"mtls-lab server throughput: mTLS on {HOST}, TLS {opts.tls}, {opts.seconds} s per measurement, "
        f"{opts.concurrency} concurrent connections, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{ssl.OPENSSL_VERSION}"
    )
    verdict = "PASS" if pki_seconds <= PKI_TARGET_SECONDS else "SLOW"
    print(
        f"PKI generation (certs.pki.generate, {files} files): {pki_seconds:.2f} s "
        f"(target about {PKI_TARGET_SECONDS:g} s or less): {verdict}"
    )


def print_plan(plan: Plan, work: Path) -> None:
    print(f"lab server: {last_line(work / 'lab.out').split(' | ')[0]} (own process, --record to a file)")
    ab = re.search(r"Version (\S+)", tool_version(["ab", "-V"]))
    openssl = tool_version(["openssl", "version"]).split(" (")[0]
    generators = {
        "ab": f"ApacheBench {ab.group(1) if ab else '?'} (-E chain+key, one request per connection, no resumption)",
        "python": "this script's HTTP/1.1 client (one persistent connection per worker process)",
        "s_time": f"openssl s_time -new -www (one request per connection; {openssl})",
    }
    print(f"load generator, handshakes: {generators[plan.handshakes]}")
    print(f"load generator, keep-alive: {generators[plan.keepalive]}")
    print(f"  why: {plan.why}")


def row(*cells: object) -> str:
    server, kind, rate, ok, failed, server_cpu, client_cpu, rest = cells
    return f"{server:<7} {kind:<11} {rate:>9} {ok:>8} {failed:>6} {server_cpu:>7} {client_cpu:>7}  {rest}"


def print_table(servers: Sequence[Server]) -> None:
    print()
    print(row("server", "measurement", "req/s", "ok", "failed", "srv CPU", "gen CPU", "generator"))
    for server in servers:
        for run in server.runs:
            flag = "  << FLAGGED: failed requests" if run.flagged else ""
            note = f"; {run.note}" if run.note else ""
            cpu = percent(run.server_cpu), percent(run.client_cpu)
            rate = f"{run.rps:.1f}"
            print(row(server.name, run.kind, rate, run.ok, run.failed, *cpu, f"{run.generator}{note}{flag}"))
    print()


def print_ratios(lab: Server, nginx: Server) -> None:
    for kind, target in TARGETS.items():
        mine, theirs = lab.run(kind), nginx.run(kind)
        if mine is None or theirs is None or theirs.rps == 0:
            print(f"lab/nginx {kind:<11} n/a (no successful nginx run)")
            continue
        ratio = mine.rps / theirs.rps
        verdict = "PASS" if ratio >= target else "BELOW"
        caveat = " (a run was flagged: not meaningful)" if mine.flagged or theirs.flagged else ""
        print(
            f"lab/nginx {kind:<11} {ratio:6.3f}  = {mine.rps:.1f} / {theirs.rps:.1f} req/s  "
            f"(target >= {target:.1f}): {verdict}{caveat}"
        )


def nodelay_cause() -> str:
    """Why the lab's connections may keep Nagle's algorithm on (checked on a socket made like the server's)."""
    from mtls_lab.server.run import bind

    sock = bind(HOST, 0)
    proto = sock.proto
    sock.close()
    if proto == socket.IPPROTO_TCP:
        return ""
    return (
        f" Likely cause: server.run.bind() makes its listening socket with proto={proto}, and asyncio sets "
        "TCP_NODELAY on accepted connections only when proto == IPPROTO_TCP."
    )


def print_latency(servers: Sequence[Server]) -> None:
    shown = ", ".join(f"{s.name} {'failed' if s.latency_ms is None else f'{s.latency_ms:.2f} ms'}" for s in servers)
    print(f"latency, one keep-alive connection, median of {LATENCY_REQUESTS}: {shown}")
    lab = servers[0]
    if lab.latency_ms is not None and lab.latency_ms >= NAGLE_HINT_MS:
        print(
            f"  hint: the lab answers each request ~{lab.latency_ms:.0f} ms late with its CPU mostly idle: the "
            "signature of Nagle's algorithm meeting delayed ACKs (the response leaves in two small writes "
            f"and the second waits for the client's delayed ACK).{nodelay_cause()}"
        )


def print_record_check(lab: Server, work: Path) -> None:
    path = work / "calls.jsonl"
    lines = path.read_bytes().splitlines() if path.exists() else []
    recorded = sum(json.loads(line).get("kind", "request") == "request" for line in lines)  # not the connections
    low = lab.probe_requests + sum(r.ok for r in lab.runs)
    high = lab.probe_requests + sum(r.sent + r.in_flight for r in lab.runs)
    verdict = "OK" if low <= recorded <= high else "MISMATCH"
    span = f"{low}" if low == high else f"{low}..{high}, allowing for requests in flight when a time limit hit"
    print(f"record check: the lab recorded {recorded} calls; the generators sent {span}: {verdict}")


def report(lab: Server, nginx: Server | str, work: Path) -> int:
    servers = [lab] if isinstance(nginx, str) else [lab, nginx]
    print_table(servers)
    if isinstance(nginx, str):
        print(f"nginx: {nginx}")
    else:
        print_ratios(lab, nginx)
    print_latency(servers)
    print_record_check(lab, work)
    flagged = [f"{s.name} {r.kind}" for s in servers for r in s.runs if r.flagged]
    if flagged:
        print(f"FLAGGED: failed requests in {', '.join(flagged)}: those numbers are not valid")
    return 1 if flagged else 0


# --- command line ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="duration of each measurement (default 5)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--tls", choices=["1.2", "1.3"], default="1.3", help="TLS version to use (default 1.3)")
    parser.add_argument(
        "--generator",
        choices=["auto", "fallback"],
        default="auto",
        help="auto: ab when installed; fallback: openssl s_time and the Python client even if ab is there",
    )
    parser.add_argument("--no-nginx", dest="nginx", action="store_false", help="measure the lab server only")
    ns = parser.parse_args(argv)
    if ns.seconds < 1 or ns.concurrency < 1:
        parser.error("--seconds and --concurrency must be at least 1")
    return Options(ns.seconds, ns.concurrency, ns.tls, ns.generator, ns.nginx)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if (opts.generator == "fallback" or not shutil.which("ab")) and not shutil.which("openssl"):
        print("neither ab nor openssl is installed: install apache2-utils or openssl", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mtls-bench-") as tmp:
        work = Path(tmp)
        paths, pki_seconds, files = timed_pki(work)
        print_header(opts, pki_seconds, files)
        client = replace(client_files(paths, work), tls=opts.tls)
        lab, plan = measure_lab(paths, work, replace(client, port=free_port()), opts)
        print_plan(plan, work)
        nginx = measure_nginx(paths, work, replace(client, port=free_port()), plan, opts)
        return report(lab, nginx, work)


if __name__ == "__main__":
    raise SystemExit(main())
