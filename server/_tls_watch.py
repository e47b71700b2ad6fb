"""Watch each server connection's handshake messages and alerts as OpenSSL reads and writes them.

Why: the server must name the alert it really sent, not guess it from the error's reason (it used to
blame the client for ``decrypt_error`` or ``decode_error`` alerts OpenSSL sent itself), and the record
must say what every connection attempt carried (SNI, versions, CA names, the chain presented) even when
the handshake fails, when Python's ``ssl`` exposes none of it. OpenSSL's message callback
(``SSL_CTX_set_msg_callback``) sees every handshake message and alert in plaintext, TLS 1.3's encrypted
ones included, and an outgoing alert right after OpenSSL wrote it into the outgoing buffer (OpenSSL's
``ssl3_dispatch_alert``). Python exposes the callback only as the private ``SSLContext._msg_callback``
(CPython's own tests use it: ``Lib/test/test_ssl.py``, ``TestSSLDebug``; the caller side uses it too,
``mtls_lab.caller._handshake_trace``).

The hook is set through the C-level descriptor of ``_ssl._SSLContext``: ``ssl.SSLContext``'s Python
property wraps the callback in a function that builds three Enums per call, for every record of every
connection, a cost a server does not need. The callback keeps only the raw bodies of the four messages
whose facts the record shows; they are decoded once, when the connection is recorded
(``mtls_lab.tls_wire``). ``check_internals`` verifies the hook at import; ``tests/test_tls_watch.py``
proves over real sockets that it sees what a client receives.
"""

from __future__ import annotations

import _ssl
import ssl
from collections.abc import Callable
from typing import Any

from mtls_lab.alerts import Alert

HANDSHAKE, ALERT = 22, 21
HELLO_REQUEST = 0
CLIENT_HELLO, SERVER_HELLO, CERTIFICATE, CERTIFICATE_REQUEST, FINISHED = 1, 2, 11, 13, 20
TLS1_3 = 0x0304
FATAL_LEVEL = 2
MAX_KEPT = 128 * 1024  # a message body kept for the record (OpenSSL's own limit on a peer's chain is 100 KiB)
_ATTRIBUTE = "_mtls_lab_watch"
_HOOK = getattr(_ssl._SSLContext, "_msg_callback", None)


def check_internals() -> None:
    """Raise RuntimeError if this Python's ``ssl`` no longer offers the message callback."""
    if _HOOK is None or not hasattr(_HOOK, "__set__"):
        raise RuntimeError("_ssl._SSLContext._msg_callback is gone: update server/_tls_watch.py")


check_internals()


class SeenAlert:
    """One alert as it went over the wire."""

    __slots__ = ("after_client_finished", "alert", "level", "number")

    def __init__(self, level: int, number: int, after_client_finished: bool) -> None:
        self.level, self.number, self.after_client_finished = level, number, after_client_finished
        try:
            self.alert: Alert | None = Alert(number)
        except ValueError:
            self.alert = None

    @property
    def name(self) -> str:
        return self.alert.label if self.alert else f"alert {self.number}"

    @property
    def is_close_notify(self) -> bool:
        return self.number == Alert.CLOSE_NOTIFY.number


class Watch:
    """What OpenSSL read and wrote on one server connection, kept raw (bodies after the 4-byte header)."""

    __slots__ = (
        "certificate_request",
        "client_certificate",
        "client_finished",
        "client_flight",
        "client_hello",
        "late_answered",
        "late_certificate",
        "late_requests",
        "on_late_answer",
        "received",
        "sent",
        "server_finished",
        "server_hello",
        "version",
    )

    def __init__(self) -> None:
        self.client_hello: bytes | None = None
        self.server_hello: bytes | None = None
        self.certificate_request: bytes | None = None
        self.client_certificate: bytes | None = None
        self.version = 0
        self.server_finished = False
        self.client_finished = False
        self.client_flight = False  # TLS 1.3: the client's last flight (Certificate ... Finished) began
        self.sent: SeenAlert | None = None  # the first alert the server wrote, close_notify aside
        self.received: SeenAlert | None = None  # the first alert the client sent
        # after the handshake (a per-path request for the client certificate, server/_late_request.py): the
        # HelloRequests and CertificateRequests the server wrote, the client's Certificate body, and its
        # Finished, which ends its answer (``on_late_answer`` is then called; it must not raise)
        self.late_requests = 0
        self.late_certificate: bytes | None = None
        self.late_answered = 0
        self.on_late_answer: Callable[[], None] | None = None
        # (received first = the client's alert came before any of ours)

    @property
    def tls13(self) -> bool:
        return self.version == TLS1_3

    @property
    def after_client_finished(self) -> bool:
        """Whether the client had finished its handshake: TLS 1.3 clients finish before the server
        checks their certificate (RFC 8446 4.4.2.4), so a rejection of their last flight comes after."""
        return self.client_finished or (self.tls13 and self.client_flight)

    def observe(self, write: bool, version: int, content_type: int, data: bytes) -> None:
        if content_type == HANDSHAKE and data:
            self._handshake(write, version, data[0], data)
        elif content_type == ALERT and len(data) >= 2:
            alert = SeenAlert(data[0], data[1], self.after_client_finished)
            if write and self.sent is None and not alert.is_close_notify:
                self.sent = alert
            elif not write and self.received is None:
                self.received = alert

    @property
    def established(self) -> bool:
        """Both sides have finished the first handshake: what follows is post-handshake."""
        return self.server_finished and self.client_finished

    def _handshake(self, write: bool, version: int, kind: int, data: bytes) -> None:
        body = data[4:MAX_KEPT]
        if self.established:
            self._late(write, kind, body)
            return
        if write:
            if kind == SERVER_HELLO:
                self.server_hello, self.version = body, version
            elif kind == CERTIFICATE_REQUEST:
                self.certificate_request = body
            elif kind == FINISHED:
                self.server_finished = True
            return
        if kind == CLIENT_HELLO:
            self.client_hello = body
        elif self.server_finished:
            self.client_flight = True
        if kind == CERTIFICATE:
            self.client_certificate = body
        elif kind == FINISHED:
            self.client_finished = True

    def _late(self, write: bool, kind: int, body: bytes) -> None:
        """A message after the first handshake: TLS 1.2 renegotiation or TLS 1.3 post-handshake authentication
        (NewSessionTicket and KeyUpdate are ignored); the first handshake's facts stay as they were."""
        if write:
            if kind == HELLO_REQUEST or (kind == CERTIFICATE_REQUEST and self.tls13):
                self.late_requests += 1  # TLS 1.2: the HelloRequest; TLS 1.3: the post-handshake CertificateRequest
            return
        if kind == CERTIFICATE:
            self.late_certificate = body
        elif kind == FINISHED and self.late_requests:
            self.late_answered += 1
            if self.on_late_answer is not None:
                self.on_late_answer()


def _callback(conn: Any, direction: str, version: int, content_type: int, _msg_type: int, data: bytes) -> None:
    # called by OpenSSL for every record of every connection: return at once for all but two content types
    if content_type != HANDSHAKE and content_type != ALERT:
        return
    watch = getattr(conn, _ATTRIBUTE, None)
    if watch is None:
        return
    try:
        watch.observe(direction == "write", version, content_type, data)
    except Exception:  # never fail a handshake because of the record
        return


def install(context: ssl.SSLContext) -> None:
    """Let connections of ``context`` be watched (those given a ``Watch`` by ``watch``)."""
    assert _HOOK is not None
    _HOOK.__set__(context, _callback)


def watch(ssl_object: ssl.SSLObject) -> Watch:
    """A new ``Watch`` fed by OpenSSL for this connection (its context must be ``install``-ed)."""
    seen = Watch()
    setattr(ssl_object, _ATTRIBUTE, seen)
    return seen


def installed(context: ssl.SSLContext) -> bool:
    assert _HOOK is not None
    return _HOOK.__get__(context) is _callback
