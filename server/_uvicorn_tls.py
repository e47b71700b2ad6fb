"""Serve TLS under uvicorn ourselves, and give the app the ASGI TLS extension uvicorn lacks.

uvicorn gives the application no client certificate: it implements no ASGI "tls" extension (see
uvicorn PRs #3132 and #3133, unmerged). So the lab does not pass an SSLContext to uvicorn. Instead
uvicorn's ``http`` setting receives a protocol factory that wraps uvicorn's own HTTP protocol in the
lab's ``AlertDeliveringSSLProtocol`` (the gh-98078 fix) and, once the handshake is done, adds the TLS
facts of the connection to every request's scope:

- ``scope["extensions"]["tls"]``: the ASGI TLS extension (``client_cert_chain``, ``client_cert_name``,
  ``client_cert_error``, ``tls_version``, ``cipher_suite``, ``server_cert``);
- the connection's ``ConnectionState`` (``state.py``, reached by the app through ``lab_state(scope)``),
  whose ``TLSFacts`` with the parsed certificate are computed once per connection, so keep-alive
  requests pay nothing (again only when a certificate arrives after the handshake: ``ask_late``, the
  state's ``late_request``). The protocol factory makes the state, and the record's ``Connection`` reads it.

Each connection's transport is wrapped in ``OneWrite``, so that a response leaves in one TLS record and
one system call (uvicorn writes its head and its body separately).

The internals used: uvicorn's protocol classes, their ``app`` and ``transport`` attributes,
``connection_made`` and ``on_response_complete``; ``check_internals`` verifies them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import Callable
from typing import Any

from mtls_lab import _openssl, tls_wire
from mtls_lab.certs.inspect import CertFacts
from mtls_lab.server._late_request import LateAnswer, LateRequestingSSLProtocol, LateResult
from mtls_lab.server._uvicorn_limits import GuardedHTTPProtocol as _BaseHTTP  # uvicorn's httptools protocol, bounded
from mtls_lab.server._uvicorn_limits import HTTPLimits
from mtls_lab.server.connections import ConnectionLog, next_connection_id
from mtls_lab.server.state import NO_TLS, ConnectionState, TLSFacts, give_state
from mtls_lab.server.verify import NONE, ClientVerification

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def check_internals() -> None:
    if not all(hasattr(_BaseHTTP, name) for name in ("connection_made", "on_response_complete", "shutdown")):
        raise RuntimeError("uvicorn's HTTP protocol changed: update server/_uvicorn_tls.py")


check_internals()


Verifier = Callable[[list[bytes]], ClientVerification]


def connection_facts(
    ssl_object: ssl.SSLObject | None, verifier: Verifier | None = None, connection_id: str | None = None
) -> tuple[TLSFacts, dict[str, Any]]:
    """The lab's facts and the ASGI TLS extension for one established connection.

    ``verifier`` is given when the handshake accepted any certificate (nginx and gateway styles): the
    chain the client sent is then verified here, once per connection.
    """
    if ssl_object is None:
        return NO_TLS, {}
    der = ssl_object.getpeercert(binary_form=True)
    cert = CertFacts.from_der(der) if der else None
    if verifier is not None:
        verification = verifier(_openssl.peer_chain_der(ssl_object))
    else:
        verification = ClientVerification("SUCCESS") if der else NONE
    cipher = ssl_object.cipher()
    version = ssl_object.version()
    chain: list[str] = []
    if der:
        chain = [ssl.DER_cert_to_PEM_cert(der)]
        if hasattr(ssl_object, "get_verified_chain"):  # Python 3.13+: DER bytes, leaf first
            chain = [ssl.DER_cert_to_PEM_cert(_openssl.der_of(c)) for c in ssl_object.get_verified_chain()]
    extension = {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": cert.subject if cert else None,
        "client_cert_error": verification.reason or None,
        "tls_version": _TLS_VERSIONS.get(version or ""),
        "cipher_suite": _cipher_id(ssl_object.context, cipher[0]) if cipher else None,
    }
    facts = TLSFacts(version, cipher[0] if cipher else None, cert, der or None, verification, connection_id)
    return facts, extension


_CIPHER_IDS: dict[int, dict[str, int]] = {}


def _cipher_id(context: ssl.SSLContext, name: str) -> int | None:
    """The IANA cipher-suite number (get_ciphers is slow: computed once per context)."""
    ids = _CIPHER_IDS.get(id(context))
    if ids is None:
        ids = _CIPHER_IDS[id(context)] = {c["name"]: int(c["id"]) & 0xFFFF for c in context.get_ciphers()}
    return ids.get(name)


class _TLSScopeProtocol(_BaseHTTP):
    """uvicorn's HTTP protocol, with the connection's TLS facts added to each request's scope."""

    verifier: Verifier | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        transport = OneWrite(transport, self.loop)  # type: ignore[assignment]
        super().connection_made(transport)
        state: ConnectionState = self.state
        state.facts, state.tls_extension = connection_facts(
            transport.get_extra_info("ssl_object"), self.verifier, state.connection_id
        )
        app = self.app

        async def app_with_tls(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = state.tls_extension
            give_state(scope, state)
            await app(scope, receive, send)

        self.app = app_with_tls

    @property
    def response_pending(self) -> bool:
        """Whether a whole request is being answered (read by the TLS protocol when the client ends its side;
        a request whose body is still arriving can never be whole then: the client has left)."""
        cycle = self.cycle
        return cycle is not None and not cycle.more_body and not cycle.response_complete

    def eof_received(self) -> None:
        # the client ended its side (close_notify or FIN): close now, or once the request in flight is
        # answered, as uvicorn's own graceful shutdown does (uvicorn itself ignores the end of input)
        self.shutdown()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.cycle is not None and not self.cycle.keep_alive:
            # the answer ends the connection: nothing the client sends after this request is read (as s_server
            # reads nothing after the request it answers); the TLS shutdown discards it unread
            self.flow.pause_reading()

    def _refuse(self, status: int, why: str) -> None:
        super()._refuse(status, why)
        self.flow.pause_reading()  # refused: as after an answer that ends the connection, nothing more is read

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]  # the response leaves now, in one write
        super().on_response_complete()


class OneWrite:
    """A connection's transport whose writes leave together: what is written during one turn of the event
    loop (a response's head and body) goes out as one TLS record in one ``send``, not one per part.

    uvicorn writes a response's head and its body separately; over TLS each write is a record of its own
    and a system call. Pending bytes are flushed at the end of the loop turn, when the response is
    complete, and before the transport closes.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


def tls_protocol_factory(
    context: ssl.SSLContext,
    *,
    handshake_timeout: float,
    connections: ConnectionLog | None = None,
    verifier: Verifier | None = None,
    limits: HTTPLimits | None = None,
    missing_certificate_alert: int | None = None,
) -> Callable[..., asyncio.Protocol]:
    """A uvicorn ``http`` protocol factory that terminates TLS with the lab's alert-delivering protocol.

    With ``connections``, every connection attempt is recorded and each failure logged (one line)."""

    def create(**kwargs: Any) -> asyncio.Protocol:
        # the connection's state, owned here; the record's Connection (when recorded) reads it
        state = ConnectionState(next_connection_id() if connections is not None else None)
        connection = connections.connection(state) if connections is not None else None
        http = _TLSScopeProtocol(**kwargs)
        http.verifier = verifier
        http.limits = limits or HTTPLimits()
        http.state = state
        protocol = LateRequestingSSLProtocol(
            asyncio.get_running_loop(),
            http,
            context,
            None,
            server_side=True,
            ssl_handshake_timeout=handshake_timeout,
            events=connection,
            missing_certificate_alert=missing_certificate_alert,
        )

        async def ask_late(*, required: bool, timeout: float) -> LateResult:
            # the client certificate asked for after the handshake (server/per_path.py): the facts renewed
            watch = connection.watch if connection is not None else None
            result = await protocol.ask_for_certificate(watch, required=required, timeout=timeout)
            hello = tls_wire.client_hello(watch.client_hello) if watch and watch.client_hello else {}
            result = dataclasses.replace(result, offered=hello.get("post_handshake_auth"))
            if result.answer is LateAnswer.CERTIFICATE:
                state.renew_facts(*connection_facts(protocol.ssl_object, verifier, state.connection_id))
            return result

        state.late_request = ask_late
        return protocol  # type: ignore[return-value]  # an SSLProtocol is a BufferedProtocol

    return create
