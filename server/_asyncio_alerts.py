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

Imitating another stack (``--alert-style java``): a JSSE server answers a missing certificate with
``bad_certificate`` where OpenSSL sends ``handshake_failure``. On TLS 1.2 that alert goes out before
the server's ChangeCipherSpec, in plaintext, so ``missing_certificate_alert`` rewrites its one
description byte in the outgoing data (server/alert_styles.py says why TLS 1.3 cannot be done so).

It reaches into private members of ``asyncio.sslproto.SSLProtocol``; ``check_internals`` verifies
they exist, and ``tests/test_asyncio_alerts.py`` proves the alert arrives over real sockets.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from asyncio import sslproto
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("mtls_lab.server")

RejectHook = Callable[[Any, BaseException], None]

_REQUIRED = (
    "_on_handshake_complete",
    "_process_outgoing",
    "_set_state",
    "_wakeup_waiter",
    "buffer_updated",
    "_check_handshake_timeout",
)
_PLAINTEXT_ALERT = b"\x15\x03\x03\x00\x02\x02"  # a TLS 1.2 record: alert, length 2, level fatal
_HANDSHAKE_FAILURE = 40
_REWRITABLE = "PEER_DID_NOT_RETURN_A_CERTIFICATE"


def check_internals() -> None:
    """Raise RuntimeError if asyncio's SSLProtocol no longer has what this module overrides."""
    missing = [name for name in _REQUIRED if not hasattr(sslproto.SSLProtocol, name)]
    if missing or not hasattr(sslproto, "SSLProtocolState"):
        raise RuntimeError(
            f"asyncio.sslproto changed (missing {missing or 'SSLProtocolState'}): "
            "the TLS-alert fix for CPython gh-98078 must be updated for this Python"
        )


check_internals()


def rewrite_plaintext_alert(data: bytes, old: int, new: int) -> bytes:
    """``data`` with a plaintext TLS 1.2 fatal alert ``old`` turned into ``new`` (records are walked, not searched)."""
    out, at = bytearray(data), 0
    while at + 5 <= len(out):
        length = int.from_bytes(out[at + 3 : at + 5], "big")
        if out[at : at + 6] == _PLAINTEXT_ALERT and length == 2 and at + 7 <= len(out) and out[at + 6] == old:
            out[at + 6] = new
        at += 5 + length
    return bytes(out)


class AlertDeliveringSSLProtocol(sslproto.SSLProtocol):
    """``SSLProtocol`` that sends the handshake's alert and closes gracefully when the handshake fails."""

    # asyncio allocates this read buffer per connection (256 KiB by default): 64 KiB still holds several
    # full TLS records, and a thousand idle clients then cost 64 MB instead of 256 MB.
    max_size = 64 * 1024

    def __init__(
        self,
        *args: Any,
        on_reject: RejectHook | None = None,
        linger: float = 2.0,
        missing_certificate_alert: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if missing_certificate_alert is not None and not isinstance(getattr(self, "_outgoing", None), ssl.MemoryBIO):
            raise RuntimeError("asyncio.sslproto changed (no _outgoing MemoryBIO): update server/_asyncio_alerts.py")
        self._missing_certificate_alert = missing_certificate_alert
        self._on_reject = on_reject
        self._linger = linger
        self._lingering = False
        self._linger_handle: asyncio.TimerHandle | None = None

    def _on_handshake_complete(self, handshake_exc: Any) -> None:
        # EOF or a reset during the handshake arrives as ConnectionResetError (a class): nothing to send.
        if not isinstance(handshake_exc, ssl.SSLError):
            super()._on_handshake_complete(handshake_exc)
            return
        inner: Any = self  # asyncio's private members are untyped
        if inner._handshake_timeout_handle is not None:
            inner._handshake_timeout_handle.cancel()
            inner._handshake_timeout_handle = None
        inner._set_state(sslproto.SSLProtocolState.UNWRAPPED)
        if self._missing_certificate_alert is not None and handshake_exc.reason == _REWRITABLE:
            outgoing: ssl.MemoryBIO = inner._outgoing
            outgoing.write(
                rewrite_plaintext_alert(outgoing.read(), _HANDSHAKE_FAILURE, self._missing_certificate_alert)
            )
        inner._process_outgoing()  # the alert OpenSSL queued goes to the socket now
        if self._on_reject is not None:
            self._on_reject(inner._transport, handshake_exc)
        self._linger_close()
        inner._wakeup_waiter(handshake_exc)

    def _check_handshake_timeout(self) -> None:
        # asyncio aborts a slow handshake silently (an OSError is logged in debug mode only): say it once
        inner: Any = self
        if inner._state == sslproto.SSLProtocolState.DO_HANDSHAKE and self._on_reject is not None:
            timeout = inner._ssl_handshake_timeout
            self._on_reject(inner._transport, TimeoutError(f"no complete handshake within {timeout:g} s"))
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
        super().buffer_updated(nbytes)

    def eof_received(self) -> bool | None:  # type: ignore[override]
        if self._lingering:
            return None  # the client has read the alert and closed: the transport closes itself
        # typeshed says None, but CPython returns True while the app has paused reading: keep it.
        keep_open: Any = super().eof_received()
        return bool(keep_open) if keep_open is not None else None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None
        super().connection_lost(exc)
