"""The server under abuse: bytes that are not TLS, slow and idle clients, oversized requests, bursts.

Every case ends with the same check: a valid mTLS call made right afterwards succeeds quickly, and
the server logged at most one concise line per bad connection, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mtls_lab.alerts import received_alert
from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.server.guard import concise_loop_errors
from mtls_lab.server.record import CONNECTIONS
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import ServerConfig
from tests.conftest import ServerFactory
from tests.support.logs import LogCatcher, caught_logs
from tests.support.misbehaving_clients import (
    client_hello,
    raw,
    read_response,
    read_until_closed,
    tls,
    trickle,
    valid_call,
)
from tests.support.record import entries, requests, wait_for_entry
from tests.support.tls_clients import needs_openssl

SHORT = 0.3  # every timeout of the abused server, so that the tests stay fast
MAX_BODY = 1000
GARBAGE = b"\x00\x00\x00\x00" + os.urandom(300)  # never the start of a TLS record (content type 0)


@pytest.fixture(scope="module")
def abused(pki: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = ServerConfig(
        certs=pki.root,
        quiet=True,
        record=tmp_path_factory.mktemp("abuse") / "calls.jsonl",
        handshake_timeout=SHORT,
        header_timeout=SHORT,
        body_timeout=SHORT,
        keep_alive_timeout=SHORT,
        max_body=MAX_BODY,
    )
    with RunningServer(config) as server:
        yield server


@pytest.fixture
def logs() -> Iterator[LogCatcher]:
    with caught_logs() as catcher:
        yield catcher


def recorded(server: RunningServer) -> list[dict[str, Any]]:
    """The request entries of the record, in file order."""
    assert server.record.path is not None
    return requests(server.record.path)


def connection_of(server: RunningServer, port: int) -> dict[str, Any]:
    """The record entry of the connection from this local port (a connection is recorded when it ends)."""
    return wait_for_entry(server.record, lambda e: e["client"] == f"127.0.0.1:{port}", CONNECTIONS)


def not_recorded(server: RunningServer, port: int) -> bool:
    time.sleep(0.1)
    return not [e for e in server.record.newest(200, CONNECTIONS) if e["client"] == f"127.0.0.1:{port}"]


def still_serves(pki: LabPaths, server: RunningServer) -> None:
    started = time.monotonic()
    assert valid_call(pki, server.url).status_code == 200
    assert time.monotonic() - started < 2


def concise(logs: LogCatcher, at_most: int, at_least: int = 0) -> list[str]:
    """The warning lines, checked: between the bounds, one line each, no traceback anywhere."""
    lines = logs.wait_for(at_least)
    assert at_least <= len(lines) <= at_most, lines
    for record in logs.records:
        assert record.exc_info is None and record.stack_info is None, logs.format(record)
        assert "\n" not in record.getMessage() and "Traceback" not in record.getMessage()
    return lines


# --- bytes that are not TLS ---------------------------------------------------------------------


# What the record says of each: the outcome, OpenSSL's reason, and no alert where OpenSSL sends none
# ("Doesn't look like TLS - don't send an alert": the server's answer is empty, as s_server's is).
NOT_TLS = {
    "garbage": ("rejected", "wrong version number"),
    "plain-http": ("rejected", "plain HTTP sent to the TLS port, answered HTTP 400"),
    "truncated-hello": ("client_aborted", "the client closed the connection during the handshake"),
}


@pytest.mark.parametrize(
    ("name", "lines"),
    [("garbage", 1), ("plain-http", 1), ("truncated-hello", 1), ("open-and-close", 0)],
)
def test_bytes_that_are_not_tls(name: str, lines: int, pki: LabPaths, abused: RunningServer, logs: LogCatcher) -> None:
    sock = raw(abused.port)
    port = sock.getsockname()[1]
    if name == "garbage":
        sock.sendall(GARBAGE)
    elif name == "plain-http":
        sock.sendall(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")
    elif name == "truncated-hello":
        sock.sendall(client_hello(pki)[:60])
        sock.shutdown(1)
    answer = read_until_closed(sock, 2) if name != "open-and-close" else b""
    sock.close()
    if name == "plain-http":
        assert answer.startswith(b"HTTP/1.1 400 ") and b"Use https://" in answer
        assert "plain HTTP sent to the TLS port" in concise(logs, 1, 1)[0]
    else:
        assert answer == b""  # no alert: OpenSSL sends none to bytes that are not TLS
    if name == "open-and-close":
        assert not_recorded(abused, port)  # a TCP connect without a byte is no TLS attempt
    else:
        entry = connection_of(abused, port)
        assert (entry["outcome"], entry["error"], entry["alert_sent"]) == (*NOT_TLS[name], None)
        line = concise(logs, 1, 1)[0]
        assert NOT_TLS[name][1] in line and ("sent no alert" in line)
    still_serves(pki, abused)
    concise(logs, lines)


@needs_openssl
def test_openssl_sends_no_alert_to_bytes_that_are_not_tls_either(s_server: Callable[..., int]) -> None:
    sock = raw(s_server("-Verify", "1", "-verify_return_error"))
    sock.sendall(GARBAGE)
    assert read_until_closed(sock, 2) == b""  # the sibling: the same bytes, the same silence
    sock.close()


# --- slow and idle clients ----------------------------------------------------------------------


def test_a_client_that_never_sends_a_byte_is_closed_after_the_handshake_timeout(
    pki: LabPaths, abused: RunningServer, logs: LogCatcher
) -> None:
    sock = raw(abused.port)
    started = time.monotonic()
    assert read_until_closed(sock, 5) == b""
    assert SHORT * 0.8 < time.monotonic() - started < SHORT + 1.5
    entry = connection_of(abused, sock.getsockname()[1])
    sock.close()
    assert "handshake timed out" in concise(logs, 1, 1)[0]
    assert (entry["outcome"], entry["sni"], entry["alert_sent"]) == ("timed_out", None, None)
    still_serves(pki, abused)


def test_a_client_that_stops_mid_handshake_is_closed(pki: LabPaths, abused: RunningServer, logs: LogCatcher) -> None:
    sock = raw(abused.port)
    sock.sendall(client_hello(pki))  # the server answers with its flight and waits for ours, for ever
    started = time.monotonic()
    first = read_until_closed(sock, 5)
    assert first[:1] == b"\x16"  # the server's handshake records came, then the close
    assert time.monotonic() - started < SHORT + 1.5
    entry = connection_of(abused, sock.getsockname()[1])
    sock.close()
    assert "handshake timed out" in concise(logs, 1, 1)[0]
    assert (entry["outcome"], entry["sni"], entry["tls_version"]) == ("timed_out", "localhost", "TLSv1.3")
    assert entry["certificate_requested"] and entry["client_certificate"] == "not_sent"
    still_serves(pki, abused)


def test_a_client_idle_after_the_handshake_is_closed_after_the_header_timeout(
    pki: LabPaths, abused: RunningServer, logs: LogCatcher
) -> None:
    conn = tls(pki, abused.port)
    started = time.monotonic()
    assert read_until_closed(conn, 5) == b""  # closed without an answer: nothing was asked
    assert SHORT * 0.8 < time.monotonic() - started < SHORT + 1.5
    port = conn.getsockname()[1]
    conn.close()  # the server waits for the client's close_notify or EOF before the connection ends
    entry = connection_of(abused, port)
    assert "no request within" in concise(logs, 1, 1)[0]
    assert (entry["outcome"], entry["requests"]) == ("accepted", 0)
    assert entry["http_refused"].startswith("no request within")
    still_serves(pki, abused)


def test_headers_sent_one_byte_at_a_time_get_408(pki: LabPaths, abused: RunningServer, logs: LogCatcher) -> None:
    conn = tls(pki, abused.port)
    head = b"POST /custom-action HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 100
    started = time.monotonic()
    sent = trickle(conn, head, gap=SHORT / 5)
    answer = read_until_closed(conn, 3)
    conn.close()
    assert sent < len(head) and time.monotonic() - started < SHORT + 1.5
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert "request head incomplete" in concise(logs, 1, 1)[0]
    still_serves(pki, abused)


def test_a_body_that_stalls_gets_408_and_is_recorded(pki: LabPaths, abused: RunningServer, logs: LogCatcher) -> None:
    conn = tls(pki, abused.port)
    conn.sendall(b"POST /stalled HTTP/1.1\r\nHost: lab\r\nContent-Length: 100\r\n\r\nabc")
    answer = read_until_closed(conn, 3)
    conn.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and b"body_timeout" in answer
    entry = recorded(abused)[-1]
    assert (entry["path"], entry["status"], entry["reason"], entry["body_size"]) == ("/stalled", 408, "body_timeout", 3)
    concise(logs, 0)
    still_serves(pki, abused)


def test_a_client_that_leaves_mid_body_is_recorded_as_499(
    pki: LabPaths, abused: RunningServer, logs: LogCatcher
) -> None:
    conn = tls(pki, abused.port)
    conn.sendall(b"POST /left HTTP/1.1\r\nHost: lab\r\nContent-Length: 100\r\n\r\nabc")
    time.sleep(0.05)
    conn.close()
    deadline = time.monotonic() + 2
    while not [e for e in recorded(abused) if e["path"] == "/left"] and time.monotonic() < deadline:
        time.sleep(0.01)
    entry = recorded(abused)[-1]
    assert (entry["path"], entry["status"], entry["reason"]) == ("/left", 499, "client_disconnected")
    concise(logs, 0)
    still_serves(pki, abused)


# --- oversized requests -------------------------------------------------------------------------


def _exchange(pki: LabPaths, server: RunningServer, request: bytes) -> bytes:
    return _exchange_on(pki, server, request)[0]


def _exchange_on(pki: LabPaths, server: RunningServer, request: bytes) -> tuple[bytes, int]:
    """The answer, and the local port of the connection."""
    conn = tls(pki, server.port)
    port = conn.getsockname()[1]
    with contextlib.suppress(OSError):  # the server may answer and close before it has read everything
        conn.sendall(request)
    answer = read_until_closed(conn, 3)
    conn.close()
    return answer, port


def _head(extra: bytes) -> bytes:
    return b"GET /custom-action HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n" + extra + b"\r\n"


HEADS = [
    ("header-line-under-the-limit", _head(b"X-Big: " + b"a" * 30_000 + b"\r\n"), 200),
    ("huge-header-line", _head(b"X-Big: " + b"a" * 100_000 + b"\r\n"), 431),
    ("huge-header-line-3MB", _head(b"X-Big: " + b"a" * 3_000_000 + b"\r\n"), 431),
    ("huge-url", b"GET /" + b"u" * 40_000 + b" HTTP/1.1\r\nHost: lab\r\n\r\n", 431),
    ("100-headers", _head(b"".join(b"X-H%d: v\r\n" % i for i in range(98))), 200),  # with Host, Connection
    ("101-headers", _head(b"".join(b"X-H%d: v\r\n" % i for i in range(99))), 431),
    ("malformed", b"\x00\x01 not http\r\n\r\n", 400),
]


@pytest.mark.parametrize(("name", "request_head", "status"), HEADS, ids=[case[0] for case in HEADS])
def test_oversized_and_malformed_heads(
    name: str, request_head: bytes, status: int, pki: LabPaths, abused: RunningServer, logs: LogCatcher
) -> None:
    before = len(recorded(abused))
    answer, port = _exchange_on(pki, abused, request_head)
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:100]
    connection = connection_of(abused, port)
    if status == 200:
        assert len(recorded(abused)) == before + 1  # reached the app: recorded
        assert (connection["requests"], connection["http_refused"]) == (1, None)
        concise(logs, 0)
    else:
        assert len(recorded(abused)) == before  # refused before the app: logged, not a request entry...
        assert "request refused from 127.0.0.1" in concise(logs, 1, 1)[0]
        assert connection["requests"] == 0 and connection["http_refused"].endswith(f"answered {status}")  # ...noted
    still_serves(pki, abused)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_the_limit_get_413_and_are_recorded_truncated_with_their_size(
    chunked: bool, pki: LabPaths, abused: RunningServer, logs: LogCatcher
) -> None:
    body = b"b" * 5000
    framing = b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Content-Length: 5000\r\n\r\n"
    payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked else body
    request = b"POST /big HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n" + framing + payload
    assert _exchange(pki, abused, request).startswith(b"HTTP/1.1 413 ")
    entry = recorded(abused)[-1]
    assert (entry["path"], entry["status"], entry["body_size"], entry["body_truncated"]) == ("/big", 413, 5000, True)
    assert entry["body"] == "b" * MAX_BODY
    body_under = b"POST /small HTTP/1.1\r\nHost: lab\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n" + b"s" * 1000
    assert _exchange(pki, abused, body_under).startswith(b"HTTP/1.1 200 ")  # the sibling at the limit
    concise(logs, 0)
    still_serves(pki, abused)


def test_garbage_after_the_handshake_closes_only_that_connection(
    pki: LabPaths, abused: RunningServer, logs: LogCatcher
) -> None:
    conn = tls(pki, abused.port)
    os.write(conn.fileno(), b"\x17\x03\x03\x00\x20" + os.urandom(32))  # an application record nobody encrypted
    with pytest.raises(ssl.SSLError) as received:
        conn.recv(100)
    entry = connection_of(abused, conn.getsockname()[1])
    conn.close()
    alert = received_alert(received.value)
    assert alert is not None and alert.label == "bad_record_mac"  # OpenSSL's alert now reaches the client
    assert (entry["outcome"], entry["alert_sent"]["name"]) == ("protocol_error", "bad_record_mac")
    assert entry["alert_sent"]["after_client_finished"] is True
    assert "sent alert bad_record_mac" in concise(logs, 1, 1)[0]
    still_serves(pki, abused)


# --- a burst ------------------------------------------------------------------------------------


def _burst_one(pki: LabPaths, server: RunningServer, kind: str) -> str:
    if kind == "valid":
        return str(valid_call(pki, server.url).status_code)
    if kind == "big":
        return str(valid_call(pki, server.url, body=b"x" * 2000).status_code)
    if kind == "impostor":
        try:
            with tls(pki, server.port, Identity.IMPOSTOR) as conn:
                conn.sendall(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")
                conn.recv(100)
        except OSError:
            return "rejected"
        return "accepted?"
    with raw(server.port) as sock:
        sock.sendall(GARBAGE)
        read_until_closed(sock, 3)
    return "garbage"


def test_a_burst_of_valid_and_invalid_handshakes(pki: LabPaths, fresh_server: ServerFactory, tmp_path: Path) -> None:
    server = fresh_server(record=tmp_path / "burst.jsonl", max_body=1000)
    kinds = ["valid"] * 30 + ["big"] * 10 + ["impostor"] * 10 + ["garbage"] * 10
    with caught_logs() as logs, ThreadPoolExecutor(len(kinds)) as pool:
        outcomes = list(pool.map(lambda kind: _burst_one(pki, server, kind), kinds))
        lines = logs.wait_for(20)
    assert outcomes.count("200") == 30 and outcomes.count("413") == 10
    assert outcomes.count("rejected") == 10 and outcomes.count("garbage") == 10
    path = tmp_path / "burst.jsonl"
    calls = requests(path)  # every line whole (each parses)
    assert path.read_text().endswith("\n") and len(calls) == 40  # one per request that reached the app, no more
    assert sorted(e["status"] for e in calls) == [200] * 30 + [413] * 10
    deadline = time.monotonic() + 3
    while len(entries(path, "connection")) < len(kinds) and time.monotonic() < deadline:
        time.sleep(0.02)  # accepted connections are recorded as they close
    connections = entries(path, "connection")
    assert len(connections) == len(kinds)  # one per connection attempt, accepted or not
    ends = Counter((e["outcome"], (e["alert_sent"] or {}).get("name"), e["requests"]) for e in connections)
    assert ends == {("accepted", None, 1): 40, ("rejected", "unknown_ca", 0): 10, ("rejected", None, 0): 10}
    linked = {e["connection_id"] for e in connections if e["outcome"] == "accepted"}
    assert {e["connection_id"] for e in calls} == linked  # each request names its own connection
    assert len(lines) == 20 and all("handshake rejected" in line for line in lines)
    assert not [r for r in logs.records if r.exc_info]
    assert valid_call(pki, server.url).status_code == 200


def test_loop_errors_are_one_line_and_bugs_keep_their_traceback(logs: LogCatcher) -> None:
    loop = asyncio.new_event_loop()
    try:
        concise_loop_errors(loop, {"message": "Fatal write error", "exception": ConnectionResetError(104, "reset")})
        concise_loop_errors(loop, {"message": "a bug", "exception": RuntimeError("bug")})
    finally:
        loop.close()
    one, bug = [r for r in logs.records if r.levelno >= logging.WARNING]
    assert one.exc_info is None and "Fatal write error" in one.getMessage()
    assert bug.exc_info is not None  # a real bug is not hidden


# --- keep-alive and pipelining under the limits -------------------------------------------------

REQUEST = b"POST /custom-action HTTP/1.1\r\nHost: lab\r\nContent-Length: 2\r\n\r\n{}"


def test_pipelined_requests_are_all_answered(pki: LabPaths, abused: RunningServer, logs: LogCatcher) -> None:
    conn = tls(pki, abused.port)
    conn.sendall(REQUEST * 3 + REQUEST.replace(b"Host: lab", b"Host: lab\r\nConnection: close"))
    answer = read_until_closed(conn, 3)
    conn.close()
    assert answer.count(b"HTTP/1.1 200 ") == 4
    concise(logs, 0)


def test_a_slow_second_request_on_a_kept_alive_connection_gets_408(
    pki: LabPaths, abused: RunningServer, logs: LogCatcher
) -> None:
    conn = tls(pki, abused.port)
    conn.sendall(REQUEST)
    assert read_response(conn).startswith(b"HTTP/1.1 200 ")
    sent = trickle(conn, REQUEST, gap=SHORT / 5)  # the header timer starts again at its first byte
    answer = read_until_closed(conn, 3)
    conn.close()
    assert sent < len(REQUEST) and answer.startswith(b"HTTP/1.1 408 ")
    assert "request head incomplete" in concise(logs, 1, 1)[0]
    still_serves(pki, abused)


def test_a_kept_alive_connection_left_idle_is_closed_quietly(
    pki: LabPaths, abused: RunningServer, logs: LogCatcher
) -> None:
    conn = tls(pki, abused.port)
    conn.sendall(REQUEST)
    assert read_response(conn).startswith(b"HTTP/1.1 200 ")
    started = time.monotonic()
    assert read_until_closed(conn, 5) == b""
    assert time.monotonic() - started < SHORT + 1  # --keep-alive-timeout
    conn.close()
    concise(logs, 0)
