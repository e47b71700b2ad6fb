"""Deliver the TLS alert of a failed server handshake, as OpenSSL servers do (CPython gh-98078).

asyncio's ``SSLProtocol`` (and uvloop's copy of it) force-closes the connection when the handshake
fails, discarding the alert OpenSSL queued in the outgoing memory BIO; clients see a bare EOF instead
of ``unknown_ca`` or ``certificate_required``. Fixed upstream in July 2026 (PR #153620), not in the
3.11-3.13 releases in use.

Flushing alone is not enough: closing a socket whose input is unread makes the kernel send a TCP
reset, and a reset that overtakes the alert destroys it at the client (a Java client on TLS 1.2
sends its whole flight at once, so its ClientKeyExchange and Finished are often still unread). So
after a failed handshake this protocol does what nginx's lingering close does: hand the alert to the
transport, half-close (FIN after the alert), drain and discard input until the client closes or
``linger`` seconds pass, then close.

The same holds after the handshake: a client that sends a malformed alert, an unexpected message or
a record that does not decrypt makes OpenSSL queue a fatal alert (``illegal_parameter``,
``unexpected_message``, ``bad_record_mac``), and asyncio's ``_fatal_error`` force-closes without
sending it, where ``openssl s_server`` sends it. Such errors get the same graceful close here, and
the application protocol is told at once that its connection is gone.

A client that ends its side while its request is still unanswered (close_notify, or a TCP half-close,
right behind the request) gets its answer, as from ``openssl s_server`` and nginx: asyncio starts its
own shutdown as soon as it reads the end of the client's input and drops the response the application
writes after it. Here the end of input goes to the application protocol (``eof_received``); while it
says a response is in flight (its ``response_pending``), the write side stays open until it closes the
transport, then this protocol sends its close_notify and closes.

When the server ends the connection first (after an answer that closes it, at the keep-alive timeout), it
does so as OpenSSL's servers do: one close_notify, without reading the client's input through TLS any
further (asyncio waits for the client's close_notify and reads whatever comes, so a client that ends with a
malformed alert, as tlsfuzzer's scripts do, got a fatal ``illegal_parameter`` after its answer where
``openssl s_server`` sends nothing), then the lingering close.

Imitating another stack (``--alert-style java``): a JSSE server answers a missing certificate with
``bad_certificate`` where OpenSSL sends ``handshake_failure``. On TLS 1.2 that alert goes out before
the server's ChangeCipherSpec, in plaintext, so ``missing_certificate_alert`` rewrites its one
description byte in the outgoing data, and tells the record (server/alert_styles.py says why TLS 1.3
cannot be done so).

Each connection reports to a ``ConnectionEvents`` (the record, ``mtls_lab.server.connections``):
``handshake_failed`` and ``failed_after_handshake`` are called before the alert leaves, so that a
client that has its alert finds the connection recorded; ``closed`` when the socket is closed.

It reaches into private members of ``asyncio.sslproto.SSLProtocol``; ``check_internals`` verifies
they exist, and ``tests/test_asyncio_alerts.py`` proves the alert arrives over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from asyncio import sslproto
from typing import Any, Protocol

logger = logging.getLogger("mtls_lab.server")


class ConnectionEvents(Protocol):
    """What one connection tells its observer (the record)."""

    def opened(self, transport: asyncio.BaseTransport, ssl_object: ssl.SSLObject) -> None:
        """The TCP connection is up; the handshake starts."""

    def handshake_failed(self, exc: BaseException, received: int) -> None:
        """The handshake failed (``received`` bytes came from the client); any alert is not sent yet."""

    def failed_after_handshake(self, exc: ssl.SSLError) -> None:
        """A fatal TLS error after the handshake; the alert OpenSSL wrote is not sent yet."""

    def closed(self) -> None:
        """The socket is closed."""

    def alert_replaced(self, number: int) -> None:
        """The alert OpenSSL wrote goes out as ``number`` instead (``--alert-style``); called before it leaves."""


_REQUIRED = (
    "_on_handshake_complete",
    "_process_outgoing",
    "_set_state",
    "_wakeup_waiter",
    "buffer_updated",
    "_check_handshake_timeout",
    "_fatal_error",
    "_do_read",
    "_start_shutdown",
    "_do_shutdown",
    "_call_eof_received",
    "_do_flush",
)
_PLAINTEXT_ALERT = b"\x15\x03\x03\x00\x02\x02"  # a TLS 1.2 record: alert, length 2, level fatal
_HANDSHAKE_FAILURE = 40
_REWRITABLE = "PEER_DID_NOT_RETURN_A_CERTIFICATE"


def check_internals() -> None:
    """Raise RuntimeError if asyncio's SSLProtocol no longer has what this module overrides."""
    missing = [name for name in _REQUIRED if not hasattr(sslproto.SSLProtocol, name)]
    missing += [name for name in ("SSLProtocolState", "AppProtocolState") if not hasattr(sslproto, name)]
    if missing:
        raise RuntimeError(
            f"asyncio.sslproto changed (missing {missing}): "
            "the TLS-alert fix for CPython gh-98078 must be updated for this Python"
        )


check_internals()


def rewrite_plaintext_alert(data: bytes, old: int, new: int) -> tuple[bytes, bool]:
    """``data`` with a plaintext TLS 1.2 fatal alert ``old`` turned into ``new`` (records are walked, not searched)."""
    out, at, done = bytearray(data), 0, False
    while at + 5 <= len(out):
        length = int.from_bytes(out[at + 3 : at + 5], "big")
        if out[at : at + 6] == _PLAINTEXT_ALERT and length == 2 and at + 7 <= len(out) and out[at + 6] == old:
            out[at + 6], done = new, True
        at += 5 + length
    return bytes(out), done


class AlertDeliveringSSLProtocol(sslproto.SSLProtocol):
    """``SSLProtocol`` that sends the alert of a failed handshake, or of a fatal error after it, and closes
    gracefully."""

    # asyncio allocates this read buffer per connection (256 KiB by default): 64 KiB still holds several
    # full TLS records, and a thousand idle clients then cost 64 MB instead of 256 MB.
    max_size = 64 * 1024

    def __init__(
        self,
        *args: Any,
        events: ConnectionEvents | None = None,
        linger: float = 2.0,
        missing_certificate_alert: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if missing_certificate_alert is not None and not isinstance(getattr(self, "_outgoing", None), ssl.MemoryBIO):
            raise RuntimeError("asyncio.sslproto changed (no _outgoing MemoryBIO): update server/_asyncio_alerts.py")
        self._missing_certificate_alert = missing_certificate_alert
        self._events = events
        self._linger = linger
        self._lingering = False
        self._linger_handle: asyncio.TimerHandle | None = None
        self._received = 0
        self._peer_eof = False  # the client half-closed TCP while a response was in flight
        self._closing_first = False  # the server ends the connection before the client ended its side

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The connection's SSLObject (made when the protocol is, before the handshake)."""
        sslobj: ssl.SSLObject = self._sslobj  # type: ignore[attr-defined]
        return sslobj

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._events is not None:
            self._events.opened(transport, self.ssl_object)
        super().connection_made(transport)

    def _on_handshake_complete(self, handshake_exc: Any) -> None:
        # EOF or a reset during the handshake arrives as ConnectionResetError (a class): nothing to send.
        if not isinstance(handshake_exc, ssl.SSLError):
            if handshake_exc is not None and self._events is not None:
                self._events.handshake_failed(ConnectionResetError("EOF during the handshake"), self._received)
            super()._on_handshake_complete(handshake_exc)
            return
        inner: Any = self  # asyncio's private members are untyped
        if inner._handshake_timeout_handle is not None:
            inner._handshake_timeout_handle.cancel()
            inner._handshake_timeout_handle = None
        inner._set_state(sslproto.SSLProtocolState.UNWRAPPED)
        if self._missing_certificate_alert is not None and handshake_exc.reason == _REWRITABLE:
            self._replace_alert(inner._outgoing, self._missing_certificate_alert)
        if self._events is not None:
            self._events.handshake_failed(handshake_exc, self._received)
        inner._process_outgoing()  # the alert OpenSSL queued goes to the socket now
        self._linger_close()
        inner._wakeup_waiter(handshake_exc)

    def _replace_alert(self, outgoing: ssl.MemoryBIO, new: int) -> None:
        data, replaced = rewrite_plaintext_alert(outgoing.read(), _HANDSHAKE_FAILURE, new)
        outgoing.write(data)
        if replaced and self._events is not None:
            self._events.alert_replaced(new)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        inner: Any = self
        after_handshake = inner._state in (sslproto.SSLProtocolState.WRAPPED, sslproto.SSLProtocolState.FLUSHING)
        if not (isinstance(exc, ssl.SSLError) and after_handshake and inner._transport is not None):
            super()._fatal_error(exc, message)
            return
        # a malformed alert, an unexpected message, a record that does not decrypt: OpenSSL wrote its alert
        inner._set_state(sslproto.SSLProtocolState.UNWRAPPED)
        if self._events is not None:
            self._events.failed_after_handshake(exc)
        inner._process_outgoing()
        if inner._app_transport is not None:
            inner._app_transport._closed = True
        if inner._app_state in (sslproto.AppProtocolState.STATE_CON_MADE, sslproto.AppProtocolState.STATE_EOF):
            inner._app_state = sslproto.AppProtocolState.STATE_CON_LOST  # the app hears it now, not after lingering
            self._loop.call_soon(inner._app_protocol.connection_lost, exc)
        self._linger_close()

    def _response_pending(self) -> bool:
        """Whether the application protocol is still answering a request (uvicorn's protocol says so)."""
        inner: Any = self
        return bool(getattr(inner._app_protocol, "response_pending", False))

    def _start_shutdown(self) -> None:
        # asyncio calls this right after the client's close_notify: a response in flight still goes out, and
        # the shutdown starts when the application closes its transport (which marks it closed first)
        inner: Any = self
        app_closing = inner._app_transport is None or inner._app_transport._closed
        wrapped = inner._state == sslproto.SSLProtocolState.WRAPPED
        if wrapped and not app_closing and self._response_pending():
            return
        if wrapped and app_closing and inner._app_state == sslproto.AppProtocolState.STATE_CON_MADE:
            self._closing_first = not inner._eof_received  # the server ends it: after its answer, at a timeout
        super()._start_shutdown()

    def _do_flush(self) -> None:
        if not self._closing_first:
            super()._do_flush()  # type: ignore[misc]  # private in typeshed, checked by check_internals
            return
        # The server ends the connection, as OpenSSL's servers do (s_server, nginx): one close_notify, and what
        # the client sends from now on is never read through TLS (a late request, a malformed close: tlsfuzzer
        # ends with an alert of level 0, which OpenSSL would answer with a fatal illegal_parameter after the
        # answer). Then, if the client was still sending (or was no longer read), the lingering close: half-close,
        # drain and discard, close; otherwise (an idle kept-alive connection) the close at once, as nginx's.
        inner: Any = self
        inner._set_state(sslproto.SSLProtocolState.SHUTDOWN)
        unread = self._send_close_notify()
        if inner._shutdown_timeout_handle is not None:
            inner._shutdown_timeout_handle.cancel()
            inner._shutdown_timeout_handle = None
        if unread or inner._app_reading_paused:
            self._linger_close()
        elif inner._transport is not None:
            inner._transport.close()  # after what is buffered (the close_notify) is written

    def _send_close_notify(self) -> int:
        """Write close_notify and send it; input not yet read (a client's late records) is discarded unread.
        The number of bytes discarded."""
        inner: Any = self
        unread = len(inner._incoming.read())
        with contextlib.suppress(ssl.SSLError):  # want-read: the client's close_notify is not awaited
            inner._sslobj.unwrap()
        inner._process_outgoing()
        return unread

    def _do_shutdown(self) -> None:
        if not self._peer_eof:
            super()._do_shutdown()  # type: ignore[misc]  # private in typeshed, checked by check_internals
            return
        # after the client's FIN nothing more can arrive: send close_notify (once) and close
        inner: Any = self
        self._peer_eof = False
        self._send_close_notify()
        inner._call_eof_received()
        inner._on_shutdown_complete(None)

    def _check_handshake_timeout(self) -> None:
        # asyncio aborts a slow handshake silently (an OSError is logged in debug mode only): say it once
        inner: Any = self
        if inner._state == sslproto.SSLProtocolState.DO_HANDSHAKE and self._events is not None:
            timeout = inner._ssl_handshake_timeout
            self._events.handshake_failed(TimeoutError(f"no complete handshake within {timeout:g} s"), self._received)
        super()._check_handshake_timeout()

    def _linger_close(self) -> None:
        transport: Any = self._transport
        if transport is None:
            return
        self._lingering = True
        try:
            if transport.can_write_eof():
                transport.write_eof()  # FIN goes out once the alert has been written
        except OSError:
            transport.abort()
            return
        self._linger_handle = self._loop.call_later(self._linger, transport.abort)

    def buffer_updated(self, nbytes: int) -> None:
        if self._lingering:
            return  # drain: read and discard, so that closing sends a FIN and not a reset
        self._received += nbytes
        super().buffer_updated(nbytes)

    def eof_received(self) -> bool | None:  # type: ignore[override]
        if self._lingering:
            return None  # the client has read the alert and closed: the transport closes itself
        inner: Any = self
        if inner._state == sslproto.SSLProtocolState.WRAPPED and not inner._app_reading_paused:
            inner._do_read()  # what came before the FIN (a request, a close_notify) is read first
        if inner._state == sslproto.SSLProtocolState.WRAPPED and self._response_pending():
            # a half-close behind a request: the application answers it, then closes (see _do_shutdown)
            self._peer_eof = True
            inner._call_eof_received()
            return True
        # typeshed says None, but CPython returns True while the app has paused reading: keep it.
        keep_open: Any = super().eof_received()
        return bool(keep_open) if keep_open is not None else None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None
        super().connection_lost(exc)
        if self._events is not None:
            self._events.closed()
