"""The app's own paths, kept as Starlette answered them: the route table's 404/405/HEAD, and one write per answer."""

from __future__ import annotations

import socket
import ssl

import pytest

from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.server.app import Route
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.tls_clients import client_context, identity_files


def _connect(pki: LabPaths, port: int) -> ssl.SSLSocket:
    context = client_context(pki, None, identity_files(pki, Identity.ADOBE))
    return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="localhost")


def _exchange(pki: LabPaths, port: int, head: str) -> bytes:
    """One request; everything the server sent until it closed (the request asks it to)."""
    with _connect(pki, port) as tls:
        tls.sendall(f"{head}\r\nHost: lab\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("head", "status", "says"),
    [
        # Starlette listed the same methods in a set's order; the lab lists them in the route's order
        ("DELETE /custom-action HTTP/1.1", b"405 Method Not Allowed", b"allow: GET, HEAD, POST, PUT"),
        ("OPTIONS /_lab/anything HTTP/1.1", b"405 Method Not Allowed", b"allow: GET, HEAD, POST, PUT, DELETE, PATCH"),
        ("POST /_lab/health HTTP/1.1", b"404 Not Found", b'{"error":"no lab route /_lab/health"}'),
        ("GET /_lab/health HTTP/1.1", b"200 OK", b'"status":"ok"'),
        ("POST /custom-action HTTP/1.1", b"200 OK", b'"accepted":true'),
        ("GET /_lab HTTP/1.1", b"200 OK", b'"accepted":true'),  # not under /_lab/: the target answers
    ],
)
def test_the_route_table_answers_as_starlettes_router_did(
    head: str, status: bytes, says: bytes, pki: LabPaths, lab_server: ServerFactory
) -> None:
    answer = _exchange(pki, lab_server(mode=Mode.MTLS).port, head)
    assert answer.startswith(b"HTTP/1.1 " + status) and says in answer


def test_head_gets_the_headers_of_get_without_the_body(pki: LabPaths, lab_server: ServerFactory) -> None:
    port = lab_server(mode=Mode.MTLS).port
    head, get = (_exchange(pki, port, f"{m} /custom-action HTTP/1.1") for m in ("HEAD", "GET"))
    assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")  # no body
    assert b"content-type: application/json" in head and b'"method":"HEAD"' not in head
    assert get.startswith(b"HTTP/1.1 200 OK") and get.endswith(b'"method":"GET","path":"/custom-action","body":""}}')


def test_an_answer_leaves_in_one_tls_record(pki: LabPaths, lab_server: ServerFactory) -> None:
    """uvicorn writes the head and the body separately; the lab sends them as one record (one system call)."""
    port = lab_server(mode=Mode.MTLS).port
    request = b"POST /custom-action HTTP/1.1\r\nHost: lab\r\nContent-Length: 2\r\n\r\n{}"
    with _connect(pki, port) as tls:
        for _ in range(3):  # on a kept-alive connection too
            tls.sendall(request)
            record = tls.recv(65536)  # an SSL socket returns at most one TLS record per recv
            head, _, body = record.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK") and body.startswith(b'{"accepted":true') and body.endswith(b"}")


def test_a_route_path_is_exact_or_a_final_path_parameter() -> None:
    async def endpoint(request: object) -> object:
        raise AssertionError("not called")

    assert Route("/_lab/{rest:path}", endpoint, ["GET"]).matches("/_lab/x/y")  # type: ignore[arg-type]
    assert not Route("/_lab/health", endpoint, ["GET"]).matches("/_lab/health/")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only exact paths"):
        Route("/items/{id}", endpoint, ["GET"])  # type: ignore[arg-type]
