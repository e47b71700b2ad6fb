"""A client that sends its whole flight at once, record by record, as a JDK client does.

Each TLS record of a flight goes out in its own ``send`` a moment after the previous one, so the
server reads the first record (the Certificate it rejects) while the rest is still arriving. A server
that closes at once leaves that rest unread and the kernel answers it with a reset, which destroys the
alert at the client. Python's ``ssl`` runs on memory BIOs here, so we choose the send pattern.
"""

from __future__ import annotations

import socket
import ssl
import time

from mtls_lab.alerts import received_alert
from tests.support.tls_tamper import raw_records

REQUEST = b"GET /custom-action HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n"


def flight_at_once(port: int, context: ssl.SSLContext, gap: float = 0.002) -> str:
    """Handshake and request; returns ``alert:<name>``, ``http``, ``eof`` or ``reset``."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each record its own segment, no Nagle wait
        try:
            while True:
                try:
                    tls.do_handshake()
                    tls.write(REQUEST)
                    _send(sock, outgoing.read(), gap)
                    break
                except ssl.SSLWantReadError:
                    _send(sock, outgoing.read(), gap)
                    _receive(sock, incoming)
            while True:
                try:
                    if tls.read(65536):
                        return "http"
                except ssl.SSLWantReadError:
                    _receive(sock, incoming)
        except ssl.SSLError as exc:
            alert = received_alert(exc)
            return f"alert:{alert.label}" if alert else f"ssl:{exc.reason}"
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except EOFError:
            return "eof"


def _send(sock: socket.socket, data: bytes, gap: float) -> None:
    for record in raw_records(data):
        sock.sendall(record)  # like a JDK client, a failed write ends the handshake
        time.sleep(gap)


def _receive(sock: socket.socket, incoming: ssl.MemoryBIO) -> None:
    data = sock.recv(65536)
    if not data:
        raise EOFError
    incoming.write(data)
