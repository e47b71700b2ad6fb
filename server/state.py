"""One connection's state, owned by the lab's protocol: what every layer learns about it, in one place.

The lab's protocol factory (``_uvicorn_tls.tls_protocol_factory``) makes one ``ConnectionState`` per
accepted socket. The layers that learn something about the connection write it there, and the record
(``connections.py``, ``entries.py``) reads it when the connection's entry is written:

- the verify callback (``--alert-style``, ``loaded.py``): OpenSSL's own verification error, before the
  style replaced it; it finds the state by the connection's ``SSL*`` (``noted_verify_error``);
- the HTTP protocol: the TLS facts once the handshake completed (``_uvicorn_tls``), a request the HTTP
  layer refused before the app (``_uvicorn_limits``);
- the app, through ``lab_state(scope)``, the one accessor: the requests counted, each answer's reason, and
  what is the same for every request of the connection, encoded once (``Encoded``).

The app called without the lab's protocol (httpx's ``ASGITransport`` in tests) gets a fresh state for each
request: an unrecorded connection with no TLS facts and no certificate.
"""

from __future__ import annotations

import contextlib
import ssl
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mtls_lab import _openssl
from mtls_lab.certs.inspect import CertFacts
from mtls_lab.server.verify import NONE, ClientVerification
from mtls_lab.vocabulary import Reason

if TYPE_CHECKING:
    from mtls_lab.server._late_request import LateResult


class LateRequester(Protocol):
    """Asks this connection's client for its certificate now, after the handshake (server/_late_request.py)."""

    def __call__(self, *, required: bool, timeout: float) -> Awaitable[LateResult]: ...


@dataclass(frozen=True)
class TLSFacts:
    """What the TLS layer established for one connection."""

    version: str | None
    cipher: str | None
    client_cert: CertFacts | None
    client_cert_der: bytes | None
    verification: ClientVerification = NONE  # nginx's $ssl_client_verify; SUCCESS whenever OpenSSL verified
    connection_id: str | None = None  # the record's id of the connection (docs/reference/record.md)

    def to_json(self) -> dict[str, Any]:
        """The facts as a request's record entry has them (``ConnectionState.encoded`` keeps them encoded)."""
        return {
            "tls_version": self.version,
            "cipher": self.cipher,
            "client_certificate_presented": self.client_cert is not None,
            "client_certificate": self.client_cert.to_json() if self.client_cert else None,
            "ssl_client_verify": self.verification.nginx_variable,
            "connection_id": self.connection_id,
        }


NO_TLS = TLSFacts(None, None, None, None)  # a connection the lab's protocol did not terminate


class Encoded:
    """What is the same for every request of a connection, computed the first time a request needs it.

    Valid for the connection's own TLS facts only: facts a proxy forwarded in a header differ per request
    (``ConnectionState.encoded_for``).
    """

    __slots__ = ("accepted_head", "authorized", "denial", "record_members", "saw")

    def __init__(self) -> None:
        self.authorized = False  # whether ``denial`` holds the authorization's result
        self.denial: Any = None  # app.Denial | None
        self.saw: str | None = None  # the ``saw`` block as JSON without its closing brace
        self.accepted_head: str | None = None  # the accepted answer's JSON up to its bearer token
        self.record_members: str | None = None  # ``"mode":...`` and the TLS facts as JSON members


class ConnectionState:
    """One connection's facts, counters and the reason of the answer in progress (see the module)."""

    __slots__ = (
        "__weakref__",
        "_encoded",
        "asked_after_handshake",
        "connection_id",
        "facts",
        "http_refused",
        "lab_requests",
        "late_asked",
        "late_request",
        "original_verify_error",
        "reason",
        "request_facts",
        "requests",
        "tls_extension",
    )

    def __init__(self, connection_id: str | None = None) -> None:
        self.connection_id = connection_id  # the record's id; None when the connection is not recorded
        self.facts: TLSFacts | None = None  # set when the handshake completed
        self.requests = 0  # recorded requests
        self.lab_requests = 0  # requests to the lab's unrecorded routes
        self.http_refused: str | None = None  # the HTTP layer refused a request before the app (431, 408, 400)
        self.original_verify_error: int | None = None  # OpenSSL's error, when --alert-style replaced it
        self.reason: Reason | None = None  # the reason of the answer to the request in progress
        self.request_facts: TLSFacts | None = None  # the facts the request in progress is judged by
        self.tls_extension: dict[str, Any] = {}  # the ASGI TLS extension of the connection's requests
        # ask for the client certificate after the handshake (server/_late_request.py; None: this connection
        # cannot); ``asked_after_handshake``: what each such request brought (the record's entries)
        self.late_request: LateRequester | None = None
        self.asked_after_handshake: list[dict[str, Any]] = []
        self.late_asked: dict[str, Any] | None = None  # what the request in progress made the server ask
        self._encoded = Encoded()

    @property
    def tls(self) -> TLSFacts:
        """The connection's TLS facts (``NO_TLS`` before the handshake completed or without the lab's protocol)."""
        return self.facts or NO_TLS

    def renew_facts(self, facts: TLSFacts, extension: dict[str, Any]) -> None:
        """The connection's TLS facts changed (a client certificate arrived after the handshake): what was
        encoded from the old facts is dropped."""
        self.facts, self.tls_extension = facts, extension
        self._encoded = Encoded()

    def begin_request(self) -> None:
        """A new request on the connection: no reason yet, judged by the connection's own facts."""
        self.reason = None
        self.request_facts = None
        self.late_asked = None

    @property
    def judged_by(self) -> TLSFacts:
        """The facts the request in progress is judged by: forwarded by a proxy, or the connection's own."""
        return self.request_facts or self.tls

    def encoded_for(self, facts: TLSFacts) -> Encoded:
        """The once-per-connection encodings for ``facts``: kept when they are the connection's own facts."""
        return self._encoded if facts is self.tls else Encoded()

    def bind(self, ssl_object: ssl.SSLObject) -> None:
        """Let the verify callback of this connection's handshake find this state (``noted_verify_error``)."""
        # if OpenSSL cannot be reached, the original error is not named; the alert is the style's all the same
        with contextlib.suppress(_openssl.OpenSSLUnavailable, RuntimeError):
            _BY_SSL[_openssl.ssl_pointer(ssl_object)] = self


# the SSL* of each open connection -> its state; an SSL* freed and reused belongs to the newer connection,
# which bound itself before its handshake started
_BY_SSL: weakref.WeakValueDictionary[int, ConnectionState] = weakref.WeakValueDictionary()


def noted_verify_error(ssl_pointer: int | None, code: int) -> None:
    """The verify callback's note: OpenSSL's own error ``code`` for the connection of ``ssl_pointer``."""
    state = _BY_SSL.get(ssl_pointer) if ssl_pointer else None
    if state is not None:
        state.original_verify_error = code


_STATE = "mtls_lab_state"


def lab_state(scope: Any) -> ConnectionState:
    """The state of the connection a request arrived on: the one accessor for the app.

    Without the lab's protocol (an ASGI transport, another server), a fresh unrecorded state, kept in the
    request's scope so that every part of the app sees the same one.
    """
    extensions = scope.setdefault("extensions", {})
    state = extensions.get(_STATE)
    if not isinstance(state, ConnectionState):
        state = extensions[_STATE] = ConnectionState()
    return state


def give_state(scope: Any, state: ConnectionState) -> None:
    """The lab's protocol puts the connection's state in each request's scope."""
    scope.setdefault("extensions", {})[_STATE] = state
