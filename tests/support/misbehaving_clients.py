"""Clients that misbehave over real sockets (raw bytes, trickles, stalls), for the abuse tests."""

from __future__ import annotations

import select
import socket
import ssl
import time
from contextlib import suppress

import httpx

from mtls_lab.certs.layout import Identity, LabPaths
from tests.support.tls_clients import client_context, identity_files


def raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def tls(pki: LabPaths, port: int, identity: Identity | None = Identity.ADOBE) -> ssl.SSLSocket:
    """A TLS connection whose handshake is complete (TLS 1.2, so the server has verified the client)."""
    context = client_context(pki, "1.2", identity_files(pki, identity))
    return context.wrap_socket(raw(port), server_hostname="localhost")


def client_hello(pki: LabPaths) -> bytes:
    """The first flight of a real TLS client: a ClientHello."""
    context = client_context(pki, None, identity_files(pki, Identity.ADOBE))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conversation = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with suppress(ssl.SSLWantReadError):
        conversation.do_handshake()
    return outgoing.read()


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes; stops at the timeout (then the server did not close)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError, ssl.SSLError):
        pass
    return data


def read_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """One whole HTTP response with a Content-Length, leaving the connection open."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def readable(sock: socket.socket) -> bool:
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    return bool(select.select([sock], [], [], 0)[0])


def trickle(sock: socket.socket, data: bytes, gap: float) -> int:
    """Send one byte per ``gap`` seconds until the server answers or closes; the bytes sent."""
    for sent, byte in enumerate(data):
        if readable(sock):
            return sent
        try:
            sock.sendall(bytes([byte]))
        except (OSError, ssl.SSLError):
            return sent
        time.sleep(gap)
    return len(data)


def valid_call(pki: LabPaths, url: str, body: bytes = b"{}") -> httpx.Response:
    """A valid mTLS call with the adobe identity, on a new connection."""
    context = client_context(pki, None, identity_files(pki, Identity.ADOBE))
    with httpx.Client(verify=context, timeout=5) as client:
        return client.post(url + "/custom-action", content=body)
