"""Limits uvicorn's httptools protocol does not enforce: a header timeout and a bounded request head.

uvicorn (0.32-0.54) has no timeout for receiving a request: ``timeout_keep_alive`` covers only the idle
time between requests and is reset by every byte, so a client that sends its headers one byte per
second, or completes the TLS handshake and sends nothing, holds a connection for ever. Nor does it bound
the request head with httptools: ``on_url`` and httptools' header buffers grow without limit (a 3 MB
header line is answered 200), while ``--h11-max-incomplete-event-size`` applies to h11 only. See uvicorn
issue #157 ("Further timeouts and resource limiting", closed 2026 without these) and PR #1684
(``--limit-request-header-size``, closed unmerged).

``GuardedHTTPProtocol`` adds, per connection:

- a **header timeout**: the request line and headers must arrive within ``header_timeout`` seconds,
  counted from the end of the TLS handshake for the first request and from the first byte of each later
  one. A connection that sent nothing is closed; one that sent part of a request head gets 408;
- a **head size limit**: at most ``max_head_bytes`` of request line and headers are fed to the parser
  (431 beyond), and at most ``max_headers`` header fields (431);
- **malformed requests** get uvicorn's 400, logged as one line that names the peer.

Each refusal is one log line, and the answer is followed by a lingering close (read and discard for a
moment) so that a client still sending reads the answer instead of a TCP reset. None of these requests
reaches the app, so none is a request entry of the record; the refusal is noted on the connection's
entry (``http_refused``).

The internals used are the attributes and methods in ``_REQUIRED`` (uvicorn's protocol class, its
parser and per-request callbacks); ``check_internals`` verifies them at import.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

logger = logging.getLogger("mtls_lab.server")

_REQUIRED = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_header",
    "on_headers_complete",
    "on_message_complete",
    "_unset_keepalive_if_required",
    "_should_upgrade",
    "handle_websocket_upgrade",
)
# After a refusal, read and discard until the client has been quiet for LINGER_QUIET seconds (at most
# LINGER): closing with unread input sends a TCP reset, which destroys the answer at the client.
LINGER = 2.0
LINGER_QUIET = 0.2


def check_internals() -> None:
    """Raise RuntimeError if uvicorn's httptools protocol no longer has what this module builds on."""
    missing = [name for name in _REQUIRED if not hasattr(HttpToolsProtocol, name)]
    if missing or 431 not in STATUS_LINE:
        raise RuntimeError(f"uvicorn's HttpToolsProtocol changed (missing {missing}): update server/_uvicorn_limits.py")


check_internals()


@dataclass(frozen=True)
class HTTPLimits:
    """What one connection may send before its request reaches the app."""

    header_timeout: float = 10.0
    max_head_bytes: int = 32 * 1024
    max_headers: int = 100


class GuardedHTTPProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a bounded request head."""

    limits = HTTPLimits()  # set per server by the protocol factory
    state: Any = None  # the connection's ConnectionState (mtls_lab.server.state), set by the protocol factory

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between the end of one request's headers and the next request's first byte
        self._head_bytes = 0
        self._head_fields = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._linger: asyncio.TimerHandle | None = None
        self._linger_until = 0.0

    # --- connection -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # the first request is timed from the end of the handshake

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel(self._head_timer)
        self._cancel(self._linger)
        self._head_timer = self._linger = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._linger_on()  # lingering: discard, and wait for the client to fall quiet
            return
        self._unset_keepalive_if_required()
        while data and not self._refused:
            if not self._in_head:
                self._feed(data)  # a body (and at most one chunk of what follows it)
                return
            room = self.limits.max_head_bytes - self._head_bytes
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            self._feed(piece)
            if self._in_head and self._head_bytes >= self.limits.max_head_bytes and not self._refused:
                self._refuse(431, f"request head over {self.limits.max_head_bytes} bytes")

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            # otherwise the request is answered as plain HTTP (uvicorn would log two warnings per request)
        except httptools.HttpParserError as exc:
            # a refusal from a callback also lands here: it stopped the parser, nothing more to say
            self._refuse(400, f"malformed HTTP request ({_parser_reason(exc)})")

    # --- parser callbacks -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._arm_head_timer()  # a later request on a kept-alive connection: timed from its first byte

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        if self._head_fields > self.limits.max_headers:
            self._refuse(431, f"more than {self.limits.max_headers} header fields")
            raise _Refused  # stops the parser: the rest of the chunk is never parsed
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel(self._head_timer)
        self._head_timer = None
        self._in_head = False
        self._head_bytes = self._head_fields = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        super().on_message_complete()

    # --- refusals -------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._refused or self.transport.is_closing():
            return
        wait = f"{self.limits.header_timeout:g} s"
        if self._head_bytes == 0 and self.cycle is None:
            self._note(f"no request within {wait} of the handshake, closed")
            _log(self.client, f"no request within {wait} of the handshake, closed")
            self._refused = True
            self.transport.close()
            return
        self._refuse(408, f"request head incomplete after {wait} ({self._head_bytes} bytes)")

    def _refuse(self, status: int, why: str) -> None:
        """Answer ``status`` (unless a response is in flight), log one line, and close after lingering."""
        if self._refused:
            return
        self._refused = True
        self._cancel(self._head_timer)
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            self._note(f"{why}, closed (a response was in flight)")
            _log(self.client, f"{why}, closed (a response was in flight)")
            self.transport.close()
            return
        self._note(f"{why}, answered {status}")
        _log(self.client, f"{why}, answered {status}")
        body = f"{why}\n".encode()
        self.transport.write(
            STATUS_LINE[status]
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            + body
        )
        self._linger_until = self.loop.time() + LINGER
        self._linger_on()

    def _linger_on(self) -> None:
        if self._linger_until == 0.0 or self.transport.is_closing():
            return
        self._cancel(self._linger)
        wait = min(LINGER_QUIET, self._linger_until - self.loop.time())
        self._linger = self.loop.call_later(max(wait, 0.0), self.transport.close)

    def _note(self, what: str) -> None:
        if self.state is not None:
            self.state.http_refused = what

    @staticmethod
    def _cancel(handle: asyncio.TimerHandle | None) -> None:
        if handle is not None:
            handle.cancel()


class _Refused(Exception):
    """Raised from a parser callback to stop httptools after a refusal."""


def _log(client: tuple[str, int] | None, what: str) -> None:
    where = f"{client[0]}:{client[1]}" if client else "?"
    logger.warning("request refused from %s: %s", where, what)


def _parser_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:80]
