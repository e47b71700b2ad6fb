"""``mtls-lab serve --workers N``: processes sharing one port and one record file, stopped together."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.errors import ExitCode
from mtls_lab.server import _uvicorn_stop
from mtls_lab.server.loaded import load
from mtls_lab.server.record import CallRecord
from mtls_lab.server.run import bind, uvicorn_config
from mtls_lab.server.settings import ServerConfig
from mtls_lab.server.workers import WorkerServer
from tests.support.ports import wait_for_port
from tests.support.tls_clients import client_context, identity_files

CONNECTIONS = 16  # accepted connections, 2 per client thread
REQUESTS_PER_CONNECTION = 3
REJECTED = 6  # handshakes with an untrusted certificate: connection entries only


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    banner: str

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def workers(self) -> list[int]:
        """The worker processes' ids (Linux: the parent's children)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]


def _spawn(pki: LabPaths, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "mtls_lab.cli", "serve", "--certs", str(pki.root), "--port", "0", "--quiet"]
    return subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _started(process: subprocess.Popen[str]) -> Served:
    """The server once it printed its start-up line (every worker listens by then)."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("mtls-lab server on"):
        process.kill()
        _, err = process.communicate(timeout=10)
        pytest.fail(f"the server did not start: {line!r} {err}")
    return Served(process, int(line.split()[3].rsplit(":", 1)[1]), line)


@contextmanager
def _serving(pki: LabPaths, *commands: tuple[str, ...]) -> Iterator[list[Served]]:
    """Servers started side by side (each command: the options after ``serve``), killed if still running."""
    processes = [_spawn(pki, *args) for args in commands]
    try:
        yield [_started(process) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)


def _client(pki: LabPaths, identity: Identity) -> httpx.Client:
    return httpx.Client(verify=client_context(pki, None, identity_files(pki, identity)), timeout=10)


def _calls(pki: LabPaths, served: Served, thread: int) -> list[str]:
    """Two keep-alive connections of a few POSTs each; the bodies sent (each line spans several pages)."""
    sent = []
    for connection in range(2):
        with _client(pki, Identity.ADOBE) as client:
            for n in range(REQUESTS_PER_CONNECTION):
                body = json.dumps({"thread": thread, "connection": connection, "n": n, "pad": "x" * (8000 + 997 * n)})
                answer = client.post(f"{served.url}/custom-action", content=body)
                assert answer.status_code == 200, answer.text
                sent.append(body)
    return sent


def _rejected(pki: LabPaths, served: Served) -> None:
    with _client(pki, Identity.IMPOSTOR) as client, pytest.raises(httpx.HTTPError):
        client.post(f"{served.url}/custom-action", json={})


def test_two_workers_share_the_port_and_write_one_record_without_losing_or_mixing_lines(
    pki: LabPaths, tmp_path: Path
) -> None:
    record = tmp_path / "calls.jsonl"
    with _serving(pki, ("--workers", "2", "--record", str(record), "--mode", "mtls")) as (served,):
        assert served.banner.rstrip().endswith("| 2 worker processes on the port")
        assert len(served.workers()) == 2
        with ThreadPoolExecutor(8) as pool:
            sent = [body for bodies in pool.map(lambda t: _calls(pki, served, t), range(8)) for body in bodies]
            list(pool.map(lambda _: _rejected(pki, served), range(REJECTED)))
        with _client(pki, Identity.ADOBE) as client:  # any worker reads the one file: every worker's calls
            listed = client.get(f"{served.url}/_lab/calls", params={"kind": "request", "limit": 1000}).json()
        assert len(listed["calls"]) == len(sent) == CONNECTIONS * REQUESTS_PER_CONNECTION
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == -signal.SIGTERM  # as one server process ends on SIGTERM
    lines = record.read_bytes().split(b"\n")
    assert lines[-1] == b""  # the file ends with a whole line
    entries = [json.loads(line) for line in lines[:-1]]  # every line parses: none cut or interleaved
    requests = [e for e in entries if e["kind"] == "request"]
    connections = [e for e in entries if e["kind"] == "connection"]
    assert sorted(e["body"] for e in requests) == sorted(sent)  # none lost, none changed
    ids = [c["connection_id"] for c in connections]
    assert len(ids) == len(set(ids)) == CONNECTIONS + REJECTED  # each connection once, ids unique across workers
    assert len({i.split("-")[0] for i in ids}) == 2  # both workers took connections (prefix: the process)
    assert sum(c["outcome"] == "rejected" for c in connections) == REJECTED
    assert {r["connection_id"] for r in requests} <= set(ids)


def test_a_signal_stops_every_worker_and_the_server_exits_as_one_process_does(pki: LabPaths, tmp_path: Path) -> None:
    cases = [(sig, workers) for sig in (signal.SIGINT, signal.SIGTERM) for workers in ("1", "2")]
    commands = [("--workers", n, "--record", str(tmp_path / f"{sig.name}-{n}.jsonl")) for sig, n in cases]
    with _serving(pki, *commands) as servers:
        workers = [pid for served in servers[1::2] for pid in served.workers()]
        for (sig, _), served in zip(cases, servers, strict=True):
            served.process.send_signal(sig)  # to the parent only: it stops its workers
        for (sig, n), served in zip(cases, servers, strict=True):
            expected = 130 if sig is signal.SIGINT else -signal.SIGTERM  # KeyboardInterrupt; killed by SIGTERM
            assert served.process.wait(timeout=20) == expected, f"{sig.name} with {n} worker(s)"
    assert len(workers) == 4
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # no worker outlives its parent
    for served in servers:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", served.port), timeout=2).close()


def test_a_worker_that_dies_stops_the_others_with_a_one_line_error(pki: LabPaths, tmp_path: Path) -> None:
    with _serving(pki, ("--workers", "2", "--record", str(tmp_path / "calls.jsonl"))) as (served,):
        first, second = served.workers()
        os.kill(first, signal.SIGKILL)
        assert served.process.wait(timeout=20) == ExitCode.USAGE
        assert served.process.stderr is not None
        err = served.process.stderr.read()
    assert f"worker {first} stopped unexpectedly (killed by SIGKILL)" in err and err.count("\n") == 1
    time.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workers", "2"], "--workers 2 needs --record FILE"),
        (["--workers", "0"], "--workers 0: give 1 to 64"),
    ],
)
def test_bad_worker_settings_are_one_line(args: list[str], says: str, pki: LabPaths) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mtls_lab.cli", "serve", "--certs", str(pki.root), "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.startswith(f"mtls-lab: error: {says}") and done.stderr.count("\n") == 1


def test_a_worker_stops_as_soon_as_the_parent_closes_its_stop_pipe(
    pki: LabPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No wait for uvicorn's tick (``WorkerServer`` wakes its loop): in process, on a real socket. The tick
    is made 30 s long, so that a stop that waits for it cannot pass by landing just before one."""
    monkeypatch.setattr(_uvicorn_stop, "TICK", 30.0)
    loaded = load(ServerConfig(certs=pki.root, record=tmp_path / "calls.jsonl", quiet=True))
    took = []
    for _ in range(3):
        record = CallRecord(loaded.config.record)
        stop_read, stop_write = os.pipe()
        sock = bind("127.0.0.1", 0)
        server = WorkerServer(uvicorn_config(loaded, record), stop_read)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        wait_for_port(sock.getsockname()[1])
        while not server.started:
            time.sleep(0.005)
        started = time.monotonic()
        os.close(stop_write)
        thread.join(timeout=10)
        took.append(time.monotonic() - started)
        assert not thread.is_alive()
        os.close(stop_read)
        record.close()
    assert max(took) < 2, f"stops took {took}: a stop that waits for the loop's tick takes up to 30 s here"
