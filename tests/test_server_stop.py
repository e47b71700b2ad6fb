"""A background server stops at once and still gracefully (``server/_uvicorn_stop.py``).

uvicorn alone notices ``should_exit`` on its next 0.1 s tick and then sleeps 0.1 s more; the lab's
``PromptServer`` wakes its main loop and waits only for what is still open. Real sockets, real TLS.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path

from mtls_lab.certs.layout import LabPaths
from mtls_lab.server import _uvicorn_stop
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import Mode, ServerConfig
from tests.support.record import entries, requests


def test_stop_is_shorter_than_one_of_uvicorns_ticks(pki: LabPaths, tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    took = []
    for _ in range(3):
        server = RunningServer(ServerConfig(mode=Mode.TLS, certs=pki.root, record=record, quiet=True)).start()
        started = time.monotonic()
        server.stop()
        took.append(time.monotonic() - started)
    assert min(took) < _uvicorn_stop.TICK, f"stops took {took}: uvicorn's own poll would take at least 0.1 s"


def test_a_request_in_flight_when_the_stop_comes_is_answered_and_recorded(pki: LabPaths, tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    server = RunningServer(ServerConfig(mode=Mode.TLS, certs=pki.root, record=record, quiet=True)).start()
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the server's trust is not what is tested
    with context.wrap_socket(socket.create_connection(("127.0.0.1", server.port)), server_hostname="localhost") as tls:
        tls.sendall(b"POST /in-flight HTTP/1.1\r\nhost: localhost\r\ncontent-length: 10\r\n\r\n12345")
        time.sleep(0.05)  # the head is read: the request is under way when the stop comes
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        time.sleep(0.05)
        assert stopper.is_alive(), "the server stopped with a request still coming in"
        tls.sendall(b"67890")
        answer = tls.recv(65536)
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    assert answer.startswith(b"HTTP/1.1 403") and b"connection: close" in answer, answer[:200]  # no certificate
    assert [(e["path"], e["status"]) for e in requests(record)] == [("/in-flight", 403)]
    assert len(entries(record, "connection")) == 1  # the connection's entry was written before stop returned


def test_the_internals_it_builds_on_are_checked() -> None:
    _uvicorn_stop.check_internals()  # raises if uvicorn's Server changed
