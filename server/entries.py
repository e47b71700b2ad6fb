"""Both kinds of record entry, built here and nowhere else (docs/reference/record.md).

- ``connection_entry``: a connection's one entry, from what its ``ConnectionState`` and its handshake
  watch (``_tls_watch``) hold, when ``connections.Connection`` records it;
- ``request_line``: a request's one line, written by the app (``LabApp``) before its answer leaves. What
  is the same for every request of a connection (``"mode"`` and its TLS facts) is encoded once per
  connection (``ConnectionState.encoded_for``) and joined into the line: the bytes are those of
  ``json.dumps`` of the whole entry (``record.encode``).

And the target's answer bodies (``denied_answer``, ``accepted_answer``), whose ``saw`` block is the
same for every request of a connection: encoded once, joined the same way, the bytes ``JSONResponse``
writes. Joining encoded JSON happens in this module only.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mtls_lab import tls_wire
from mtls_lab.alerts import Alert
from mtls_lab.certs.inspect import CertFacts
from mtls_lab.server import _tls_watch
from mtls_lab.server.record import RECORD_VERSION, encode

if TYPE_CHECKING:
    from mtls_lab.server.state import ConnectionState, TLSFacts

SentAlert = _tls_watch.SeenAlert | Alert  # seen written, or (not watched) expected from the reason table


class CertificateSent(enum.Enum):
    PRESENTED = "presented"  # a Certificate message with at least one certificate
    EMPTY = "empty"  # an empty Certificate message: asked, and the client sent none
    NOT_SENT = "not_sent"  # no Certificate message: not asked, or the handshake ended before


def connection_entry(
    state: ConnectionState,
    watch: _tls_watch.Watch,
    *,
    connection_id: str,
    started: float,
    peer: str | None,
    mode: str,
    ciphers: dict[int, str],
    outcome: str,
    alert: SentAlert | None,
    observed: bool,
    why: str | None,
    exc: BaseException | None,
) -> dict[str, Any]:
    """A connection's record entry: computed once, when the connection is recorded."""
    facts = state.facts
    hello = _decoded(tls_wire.client_hello, watch.client_hello, False)
    chosen = {} if facts else _decoded(tls_wire.server_hello, watch.server_hello, False)
    chain = _chain(watch.client_certificate, watch.tls13)
    suite = chosen.get("cipher_suite")
    return {
        "record_version": RECORD_VERSION,
        "kind": "connection",
        "connection_id": connection_id,
        "time": _iso(started),
        "ended": _iso(time.time()),
        "client": peer,
        "mode": mode,
        "sni": hello.get("sni"),
        "versions_offered": [_ssl_version(v) for v in hello.get("versions_offered", [])],
        "post_handshake_auth_offered": hello.get("post_handshake_auth"),
        "tls_version": facts.version if facts else _ssl_version(chosen.get("version")),
        "cipher": facts.cipher if facts else (ciphers.get(int(suite, 16), suite) if suite else None),
        "certificate_requested": watch.certificate_request is not None,
        "ca_names_advertised": _ca_names(watch.certificate_request, watch.tls13),
        "client_certificate": _sent(watch, chain).value,
        "client_chain": chain,
        "ssl_client_verify": _verification(facts, exc),
        "outcome": outcome,
        "error": why,
        "reason": getattr(exc, "reason", None) if isinstance(exc, ssl.SSLError) else None,
        "alert_sent": _alert_json(alert, observed, watch),
        "alert_received": _alert_json(watch.received, True, watch),
        "requests": state.requests,
        "http_refused": state.http_refused,
        "asked_after_handshake": state.asked_after_handshake,
    }


def request_head(scope: Any, body: bytes, size: int) -> dict[str, Any]:
    """The request's own part of its entry (what differs from one request of a connection to the next)."""
    client = scope.get("client")
    return {
        "record_version": RECORD_VERSION,
        "kind": "request",
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "client": f"{client[0]}:{client[1]}" if client else None,
        "method": scope["method"],
        "path": scope["path"],
        "query": scope.get("query_string", b"").decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body": body.decode(errors="replace"),
        "body_size": size,
        "body_truncated": size > len(body),
    }


def request_line(
    state: ConnectionState, facts: TLSFacts, mode: str, scope: Any, body: bytes, size: int, status: int
) -> str:
    """A request's record line: the same bytes as ``encode`` of the whole entry, and a newline.

    ``"mode"`` and the TLS facts are encoded once per connection; ``status`` 0 (no answer) is 500."""
    encoded = state.encoded_for(facts)
    if encoded.record_members is None:
        encoded.record_members = encode({"mode": mode, **facts.to_json()})[1:-1]
    reason, late = state.reason, state.late_asked
    tail = f'"status":{status or 500},"reason":{"null" if reason is None else encode(reason)}'
    tail += f',"asked_after_handshake":{"null" if late is None else encode(late)}}}'
    return f"{encode(request_head(scope, body, size))[:-1]},{encoded.record_members},{tail}\n"


_ANSWER_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def _dumps(value: Any) -> str:
    """JSON as ``JSONResponse`` renders it (one encoder for all: ``json.dumps`` makes one per call)."""
    return _ANSWER_JSON.encode(value)


def _saw(state: ConnectionState, facts: TLSFacts, seen: Callable[[], dict[str, Any]]) -> str:
    """``seen()`` as JSON without its closing brace, so that per-request keys can follow: once per connection."""
    encoded = state.encoded_for(facts)
    if encoded.saw is None:
        encoded.saw = _dumps(seen())[:-1]
    return encoded.saw


def denied_answer(
    state: ConnectionState, facts: TLSFacts, body: dict[str, Any], seen: Callable[[], dict[str, Any]]
) -> bytes:
    """A refusal's body: ``body`` (reason, message, fix) and the ``saw`` block of what the server saw."""
    return f'{_dumps(body)[:-1]},"saw":{_saw(state, facts, seen)}}}}}'.encode()


def accepted_answer(
    state: ConnectionState,
    facts: TLSFacts,
    bearer: str | None,
    received: dict[str, Any],
    seen: Callable[[], dict[str, Any]],
) -> bytes:
    """An accepted call's body: the message, the ``saw`` block with the bearer token, and the request received."""
    encoded = state.encoded_for(facts)
    if encoded.accepted_head is None:
        subject = facts.client_cert.subject if facts.client_cert else ""
        message = f"Call accepted: the client certificate {subject} is trusted and authorized."
        encoded.accepted_head = (
            f'{_dumps({"accepted": True, "message": message})[:-1]},"saw":{_saw(state, facts, seen)}'
        )
    token = "null" if bearer is None else _dumps(bearer)
    return f'{encoded.accepted_head},"bearer_token":{token}}},"received":{_dumps(received)}}}'.encode()


def _alert_json(alert: SentAlert | None, observed: bool, watch: _tls_watch.Watch) -> dict[str, Any] | None:
    if alert is None:
        return None
    if isinstance(alert, Alert):  # expected from the reason table: not seen on the wire
        return {
            "name": alert.label,
            "number": alert.number,
            "level": "fatal",
            "after_client_finished": watch.after_client_finished,
            "observed": False,
        }
    return {
        "name": alert.name,
        "number": alert.number,
        "level": "fatal" if alert.level == _tls_watch.FATAL_LEVEL else "warning",
        "after_client_finished": alert.after_client_finished,
        "observed": observed,
    }


def _verification(facts: TLSFacts | None, exc: BaseException | None) -> str | None:
    """nginx's ``$ssl_client_verify`` for the connection; None when the chain was never judged."""
    if facts is not None:
        return facts.verification.nginx_variable
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"FAILED:{exc.verify_message}"
    if getattr(exc, "reason", None) == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return "NONE"
    return None


def _sent(watch: _tls_watch.Watch, chain: list[dict[str, Any]]) -> CertificateSent:
    if watch.client_certificate is None:
        return CertificateSent.NOT_SENT
    return CertificateSent.PRESENTED if chain else CertificateSent.EMPTY


def _decoded(decoder: Any, body: bytes | None, tls13: bool) -> dict[str, Any]:
    if body is None:
        return {}
    try:
        return dict(decoder(body, tls13))
    except (ValueError, IndexError):  # a malformed message: its facts are unknown
        return {}


@functools.lru_cache(maxsize=64)
def _ca_names_cached(body: bytes, tls13: bool) -> tuple[str, ...]:
    return tuple(_decoded(tls_wire.certificate_request, body, tls13).get("ca_names", []))


def _ca_names(body: bytes | None, tls13: bool) -> list[str]:
    """The CA names of a CertificateRequest: the same bytes on every connection of a server, decoded once."""
    return list(_ca_names_cached(body, tls13)) if body is not None else []


def _chain(body: bytes | None, tls13: bool) -> list[dict[str, Any]]:
    if body is None:
        return []
    try:
        ders = tls_wire.certificate_ders(body, tls13)
    except ValueError:
        return [{"error": "malformed Certificate message"}]
    return [_certificate(der) for der in ders]


@functools.lru_cache(maxsize=256)
def _certificate_cached(der: bytes) -> tuple[tuple[str, Any], ...]:
    facts = CertFacts.from_der(der)
    return (
        ("subject", facts.subject),
        ("issuer", facts.issuer),
        ("sha256", facts.sha256),
        ("not_before", facts.not_before),
        ("not_after", facts.not_after),
    )


def _certificate(der: bytes) -> dict[str, Any]:
    try:
        return dict(_certificate_cached(der))
    except ValueError:
        return {"error": "unparsable certificate", "size": len(der)}


def _ssl_version(name: str | None) -> str | None:
    """``TLS 1.3`` (the wire's names) as Python's ``ssl`` writes it: ``TLSv1.3``."""
    return name.replace("TLS ", "TLSv") if name else None


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="milliseconds")
