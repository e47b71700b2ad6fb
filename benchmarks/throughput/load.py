"""The one load generator used for every server: Python's ``ssl`` over real sockets, in worker processes.

Every server gets the same client: HTTP/1.1 POSTs of a small JSON body, the Adobe-like client chain
(leaf + intermediate, as AJO sends it), no session resumption. Only 2xx answers count as successes; a
TLS alert, a reset or any other status counts as failed. (``openssl s_time -cert`` sends only the first
certificate of its file, so on TLS 1.3 it counted handshakes the server rejected as successes; ApacheBench
speaks HTTP/1.0, which uvicorn never keeps alive.)

- keep-alive: each worker process keeps one connection and sends requests back to back;
- handshakes: each request on a new connection (a full handshake, then ``Connection: close``);
- latency: the median time of one request on one warm keep-alive connection.
"""

from __future__ import annotations

import multiprocessing
import socket
import ssl
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

HOST = "127.0.0.1"
ACTION = "/custom-action"
BODY = b'{"journey":"benchmark","profile":"42","event":"order.shipped"}'
START_DELAY = 1.5  # seconds for the worker processes to start (and, for keep-alive, connect) before the window
LATENCY_REQUESTS = 50
T = TypeVar("T")


@dataclass(frozen=True)
class Client:
    """What the generator needs to call a server as Adobe would."""

    port: int
    chain: Path  # leaf + intermediate
    key: Path
    server_ca: Path
    tls: str  # "1.2" or "1.3"

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.server_ca)
        context.load_cert_chain(self.chain, self.key)
        version = ssl.TLSVersion.TLSv1_3 if self.tls == "1.3" else ssl.TLSVersion.TLSv1_2
        context.minimum_version = context.maximum_version = version
        return context


@dataclass(frozen=True)
class Load:
    """What the generator counted in one window."""

    ok: int
    failed: int
    connections: int
    generator_cpu: float  # CPU seconds of the worker processes inside the window
    first_error: str = ""


class Connection:
    """HTTP/1.1 on one TLS connection; reconnects when the server closes."""

    def __init__(self, client: Client, close: bool) -> None:
        self.client, self.context = client, client.context()
        self.request = (
            f"POST {ACTION} HTTP/1.1\r\nHost: {HOST}:{client.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
        ).encode() + BODY
        self.sock: ssl.SSLSocket | None = None
        self.buffer = b""
        self.opened = 0

    def connect(self) -> ssl.SSLSocket:
        if self.sock is None:
            raw = socket.create_connection((HOST, self.client.port), timeout=10)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.sock = self.context.wrap_socket(raw, server_hostname=HOST)
            except BaseException:
                raw.close()
                raise
            self.buffer = b""
            self.opened += 1
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def call(self) -> int:
        """One request: its HTTP status. OSError or ValueError when the exchange breaks."""
        self.connect().sendall(self.request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._fill()
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        self.buffer = self.buffer[end + 4 :]
        headers = {k.strip().lower(): v.strip().lower() for k, _, v in (line.partition(":") for line in lines[1:])}
        if headers.get("transfer-encoding") == "chunked":
            while self._chunk() > 0:
                pass
        elif "content-length" in headers:
            self._take(int(headers["content-length"]))
        else:  # the body ends when the server closes (WireMock answers "Connection: close" so)
            self._until_closed()
            return int(lines[0].split()[1])
        if headers.get("connection") == "close":
            self.close()
        return int(lines[0].split()[1])

    def _take(self, length: int) -> None:
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]

    def _chunk(self) -> int:
        """Read one chunk of a chunked body (with its CRLF); its size (0: the last)."""
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        size = int(self.buffer[:end].split(b";")[0], 16)
        self.buffer = self.buffer[end + 2 :]
        self._take(size + 2)
        return size

    def _until_closed(self) -> None:
        assert self.sock is not None
        while self.sock.recv(65536):
            pass
        self.close()

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk


def _worker(client: Client, new_connections: bool, start_at: float, stop_at: float) -> Load:
    conn = Connection(client, close=new_connections)
    if not new_connections:
        try:
            conn.connect()  # the keep-alive handshake happens before the window
        except OSError:
            conn.close()
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu = time.process_time()
    ok = failed = 0
    error = ""
    while time.monotonic() < stop_at:
        try:
            status = conn.call()
        except (OSError, ValueError) as exc:
            failed += 1
            error = error or f"{type(exc).__name__}: {exc}"[:120]
            conn.close()
            continue
        if 200 <= status < 300:
            ok += 1
        else:
            failed += 1
            error = error or f"HTTP {status}"
    conn.close()
    opened = conn.opened - (0 if new_connections else 1)  # reconnections inside the window
    return Load(ok, failed, opened, time.process_time() - cpu, error)


def run(
    client: Client, concurrency: int, seconds: float, new_connections: bool, during: Callable[[float, float], T]
) -> tuple[Load, T]:
    """Drive the server with ``concurrency`` processes for ``seconds``: what they counted together, and what
    ``during(start, stop)`` returned (it runs meanwhile: the window starts ``START_DELAY`` from now)."""
    start_at = time.monotonic() + START_DELAY
    stop_at = start_at + seconds
    with multiprocessing.get_context("fork").Pool(concurrency) as pool:
        pending = pool.starmap_async(_worker, [(client, new_connections, start_at, stop_at)] * concurrency)
        seen = during(start_at, stop_at)
        return _sum(pending.get(timeout=seconds + 60)), seen


def _sum(loads: list[Load]) -> Load:
    return Load(
        sum(x.ok for x in loads),
        sum(x.failed for x in loads),
        sum(x.connections for x in loads),
        sum(x.generator_cpu for x in loads),
        next((x.first_error for x in loads if x.first_error), ""),
    )


def latency_ms(client: Client) -> float | None:
    """Median milliseconds of one request on one warm keep-alive connection; None if a request failed."""
    conn = Connection(client, close=False)
    times = []
    try:
        conn.call()  # the handshake: not timed
        for _ in range(LATENCY_REQUESTS):
            started = time.perf_counter()
            if not 200 <= conn.call() < 300:
                return None
            times.append(time.perf_counter() - started)
    except (OSError, ValueError):
        return None
    finally:
        conn.close()
    return statistics.median(times) * 1000
