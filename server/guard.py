"""What keeps the reference server up under bad input: settings checks, one line per bad connection.

- ``answer_plain_http``: plain HTTP sent to the TLS port gets nginx's readable 400, not a bare close
  (``mtls_lab.server.connections`` calls it, and logs and records every failed handshake in one line);
- ``concise_loop_errors``: a connection-level OSError that reaches asyncio's exception handler (a reset
  while writing, ``accept()`` out of file descriptors) is logged as one line, not a traceback; anything
  else (a bug) keeps asyncio's full report;
- ``LabUvicornServer``: uvicorn's server with that handler installed on its loop (and the prompt stop of
  ``_uvicorn_stop.PromptServer``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from mtls_lab.server._uvicorn_limits import HTTPLimits
from mtls_lab.server._uvicorn_stop import PromptServer

if TYPE_CHECKING:
    from mtls_lab.server.settings import ServerConfig

logger = logging.getLogger("mtls_lab.server")

_PLAIN_HTTP_BODY = b"This port speaks HTTPS: plain HTTP was sent to it. Use https://.\n"
PLAIN_HTTP_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_PLAIN_HTTP_BODY), _PLAIN_HTTP_BODY)
)


def http_limits(config: ServerConfig) -> HTTPLimits:
    """The per-connection limits of the HTTP layer."""
    return HTTPLimits(
        header_timeout=config.header_timeout, max_head_bytes=config.max_head_bytes, max_headers=config.max_headers
    )


def answer_plain_http(transport: Any) -> None:
    """Write nginx's kind of answer to plain HTTP on a TLS port, before the connection closes."""
    if transport is not None and not transport.is_closing():
        transport.write(PLAIN_HTTP_ANSWER)


def concise_loop_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's exception handler: one line for connection-level OSErrors, the full report for the rest."""
    exc = context.get("exception")
    if isinstance(exc, OSError):
        peer = _peer(context)
        logger.warning("connection error%s: %s: %s", peer, context.get("message", "error"), exc)
        return
    loop.default_exception_handler(context)


def _peer(context: dict[str, Any]) -> str:
    transport = context.get("transport")
    address = transport.get_extra_info("peername") if transport is not None else None
    if not address:
        sock = context.get("socket")
        address = sock.getpeername() if isinstance(sock, socket.socket) and _connected(sock) else None
    return f" from {address[0]}:{address[1]}" if address else ""


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


class LabUvicornServer(PromptServer):
    """uvicorn's server, with connection-level errors logged in one line, stopping without a poll's wait."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().set_exception_handler(concise_loop_errors)
        await super().startup(sockets)
