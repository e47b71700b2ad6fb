"""Ask for the client certificate after the handshake, inside asyncio's TLS protocol, as Apache's mod_ssl does
for a ``<Location>`` (``serve --client-cert-paths``): TLS 1.2 renegotiation, TLS 1.3 post-handshake
authentication (RFC 8446 4.6.2).

Why it reaches into asyncio: the request for the certificate is made while a request is being answered,
on a connection whose TLS is run by ``asyncio.sslproto.SSLProtocol`` over memory BIOs. asyncio has no
API to start a handshake message on an established connection, so this protocol (the lab's
``AlertDeliveringSSLProtocol``, one level up) does what mod_ssl does with a blocking socket: OpenSSL is told
to ask (``mtls_lab._openssl.ask_after_handshake``), ``do_handshake()`` writes the HelloRequest or the
CertificateRequest into the outgoing BIO, ``_process_outgoing`` sends it, and the client's answer is
processed by asyncio's own reads (``_do_read``), even after a request that ends the connection (where the
HTTP layer had paused reading: ``_app_reading_paused``). The client's Finished ends its answer: the server's
handshake watch (``_tls_watch.Watch.on_late_answer``) says when it was read; a certificate OpenSSL rejects
(or none, when required) is a fatal error after the handshake, whose alert the parent protocol sends.

The private members used (``_sslobj``, ``_process_outgoing``, ``_do_read``, ``_app_reading_paused``,
``_transport``) are checked at import (``check_internals``); ``tests/test_late_request.py`` proves the
whole exchange over real sockets, with real clients, against a real Apache.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ssl
from asyncio import sslproto
from dataclasses import dataclass
from typing import Any

from mtls_lab import _openssl
from mtls_lab.server._asyncio_alerts import AlertDeliveringSSLProtocol
from mtls_lab.server._tls_watch import Watch

_REQUIRED = ("_process_outgoing", "_do_read", "_fatal_error", "connection_lost")


def check_internals() -> None:
    """Raise RuntimeError if asyncio's SSLProtocol no longer has what the late request drives."""
    missing = [name for name in _REQUIRED if not hasattr(sslproto.SSLProtocol, name)]
    if missing:
        raise RuntimeError(f"asyncio.sslproto changed (missing {missing}): update server/_late_request.py")


check_internals()


class LateAnswer(enum.Enum):
    """What asking for the client certificate after the handshake brought."""

    CERTIFICATE = "certificate"  # the client sent one, and OpenSSL verified it
    NO_CERTIFICATE = "no_certificate"  # the client sent none (and the request was optional)
    NOT_OFFERED = "post_handshake_auth_not_offered"  # TLS 1.3: the client offered no post-handshake auth
    REJECTED = "rejected"  # the server ended the connection with an alert (a bad certificate, or none when required)
    CLOSED = "closed"  # the client closed the connection instead of answering
    TIMED_OUT = "timed_out"  # no answer in time: the connection is closed


@dataclass(frozen=True)
class LateResult:
    method: str  # _openssl.POST_HANDSHAKE_AUTH or _openssl.RENEGOTIATION
    answer: LateAnswer
    error: str | None = None  # OpenSSL's words when it could not ask, or why the connection ended
    offered: bool | None = None  # whether the client's hello offered post-handshake auth (None: not known)


class LateRequestingSSLProtocol(AlertDeliveringSSLProtocol):
    """The lab's TLS protocol, able to ask for the client certificate on its established connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._late_waiter: asyncio.Future[None] | None = None
        self._late_end: BaseException | None = None

    async def ask_for_certificate(self, watch: Watch | None, *, required: bool, timeout: float) -> LateResult:
        """Ask the client for its certificate now, and wait for its answer (at most ``timeout`` seconds)."""
        inner: Any = self  # asyncio's private members are untyped
        if watch is None or inner._state != sslproto.SSLProtocolState.WRAPPED:
            return LateResult("none", LateAnswer.CLOSED, "the connection is not established (or not watched)")
        sslobj = self.ssl_object
        try:
            method = _openssl.ask_after_handshake(sslobj, required=required)
        except _openssl.LateRequestRefused as exc:
            return LateResult(_openssl.POST_HANDSHAKE_AUTH, LateAnswer.NOT_OFFERED, str(exc))
        waiter = self._late_waiter = self._loop.create_future()
        self._late_end = None
        watch.on_late_answer = lambda: None if waiter.done() else waiter.set_result(None)
        paused = inner._app_reading_paused
        try:
            with contextlib.suppress(ssl.SSLWantReadError):
                sslobj.do_handshake()  # writes the HelloRequest (TLS 1.2) or the CertificateRequest (TLS 1.3)
            inner._process_outgoing()
            inner._app_reading_paused = False  # the client's answer must be read, whatever the HTTP layer paused
            inner._do_read()  # what has arrived already
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except TimeoutError:
                if inner._transport is not None:
                    inner._transport.abort()
                return LateResult(method, LateAnswer.TIMED_OUT, f"no answer within {timeout:g} s")
        finally:
            watch.on_late_answer = None
            self._late_waiter = None
            if inner._state == sslproto.SSLProtocolState.WRAPPED:
                inner._app_reading_paused = paused
        if self._late_end is not None:
            answer = LateAnswer.REJECTED if isinstance(self._late_end, ssl.SSLError) else LateAnswer.CLOSED
            return LateResult(method, answer, str(self._late_end) or type(self._late_end).__name__)
        if sslobj.getpeercert(binary_form=True):
            return LateResult(method, LateAnswer.CERTIFICATE)
        return LateResult(method, LateAnswer.NO_CERTIFICATE)

    def _end_late_request(self, exc: BaseException) -> None:
        waiter = self._late_waiter
        if waiter is not None and not waiter.done():
            self._late_end = exc
            waiter.set_result(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        self._end_late_request(exc)  # a rejected certificate, or none when required: the parent sends the alert
        super()._fatal_error(exc, message)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._end_late_request(exc or ConnectionResetError("the client closed the connection"))
        super().connection_lost(exc)
