"""Observe the TLS handshake message by message, through ``SSLContext._msg_callback``.

Why: to show users what each side really sent (issue: the ladder diagram), and to know exactly
whether our Certificate message was empty. Python's ``ssl`` has no public hook for handshake
messages; ``SSLContext._msg_callback`` is private, but CPython's own test suite relies on it
(``Lib/test/test_ssl.py``, ``TestSSLDebug``). OpenSSL hands it every handshake message and alert in
plaintext, TLS 1.3's encrypted ones included. ``check_internals`` verifies the hook exists.

The TLS framing of the few messages we read (ClientHello, ServerHello, CertificateRequest,
Certificate) is decoded by ``mtls_lab.tls_wire`` (shared with the server); the DER inside them by
libraries: certificates by cryptography, distinguished names by OpenSSL.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mtls_lab import tls_wire
from mtls_lab.alerts import Alert
from mtls_lab.certs.inspect import CertFacts

HANDSHAKE, ALERT = 22, 21
_TYPES = {
    0: "HelloRequest",  # TLS 1.2: the server asks for a new handshake (a renegotiation), e.g. for one path only
    1: "ClientHello",
    2: "ServerHello",
    4: "NewSessionTicket",
    8: "EncryptedExtensions",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    15: "CertificateVerify",
    16: "ClientKeyExchange",
    20: "Finished",
    24: "KeyUpdate",
}


def check_internals(context_class: type = ssl.SSLContext) -> None:
    if not hasattr(context_class, "_msg_callback"):
        raise RuntimeError("ssl.SSLContext._msg_callback is gone: update caller/_handshake_trace.py")


check_internals()


@dataclass
class Message:
    """One handshake message or alert, as observed on the caller's connection."""

    sent: bool  # True: caller -> server
    kind: str
    details: dict[str, Any] = field(default_factory=dict)
    after_our_finished: bool = False  # TLS 1.3: the server reacts after the client finished its handshake

    def to_json(self) -> dict[str, Any]:
        return {
            "direction": "caller->server" if self.sent else "server->caller",
            "type": self.kind,
            "details": self.details,
            "after_client_finished": self.after_our_finished,
        }


@dataclass
class MessageLog:
    """The messages of one connection (the last one if a client reconnects; a renegotiation the server asked
    for stays on its connection's log): part of ``caller.tls.Handshake``."""

    messages: list[Message] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _finished_sent: bool = False
    _tls13: bool = False
    _hello_requested: bool = False  # the last handshake message was the server's HelloRequest

    def install(self, context: ssl.SSLContext) -> None:
        context._msg_callback = self._observe  # type: ignore[attr-defined]

    @property
    def our_certificate_sent(self) -> bool | None:
        """True/False once our Certificate message was seen (or could no longer come); None if unknown."""
        ours = [m for m in self.messages if m.sent and m.kind == "Certificate"]
        if ours:
            return bool(ours[-1].details.get("chain"))
        return False if self.messages else None

    def _observe(self, _conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any, data: bytes) -> None:
        try:
            self._record(direction == "write", int(content_type), data)
        except Exception as exc:  # never break the handshake because of the trace
            self.messages.append(Message(direction == "write", "unparsed", {"error": repr(exc)}))

    def _record(self, sent: bool, content_type: int, data: bytes) -> None:
        with self._lock:
            if content_type == HANDSHAKE and data:
                kind = _TYPES.get(data[0], f"handshake type {data[0]}")
                renegotiation = kind == "ClientHello" and self._hello_requested
                if kind == "ClientHello" and not renegotiation:
                    self.messages.clear()  # a new connection: trace the last one
                    self._finished_sent = self._tls13 = False
                self._hello_requested = not sent and kind == "HelloRequest"
                message = Message(sent, kind, _details(kind, self._tls13, data[4:]))
                if renegotiation:
                    message.details["renegotiation"] = True  # the same connection, the server asked for it
                if kind == "ServerHello":
                    self._tls13 = message.details.get("version") == "TLS 1.3"
                message.after_our_finished = (
                    not sent and self._finished_sent and self._tls13 and kind != "NewSessionTicket"
                )
                self.messages.append(message)
                if sent and kind == "Finished":
                    self._finished_sent = True
            elif content_type == ALERT and len(data) >= 2:
                try:
                    name = Alert(data[1]).label
                except ValueError:
                    name = f"alert {data[1]}"
                level = "fatal" if data[0] == 2 else "warning"
                self.messages.append(
                    Message(
                        sent,
                        "Alert",
                        {"alert": name, "level": level},
                        after_our_finished=not sent and self._finished_sent and self._tls13,
                    )
                )
            elif self._is_application_data(content_type, data) and not any(
                m.kind == "ApplicationData" and m.sent == sent for m in self.messages
            ):
                self.messages.append(Message(sent, "ApplicationData"))

    def _is_application_data(self, content_type: int, data: bytes) -> bool:
        # TLS 1.3 reports the inner content type of each record; TLS 1.2 only record headers.
        if self._tls13:
            return content_type == 0x101 and data[:1] == b"\x17"
        return content_type == 0x100 and data[:1] == b"\x17"


# --- decoding the few messages whose facts matter (framing in mtls_lab.tls_wire, shared with the server) ----


def _details(kind: str, tls13: bool, body: bytes) -> dict[str, Any]:
    decoder = _DECODERS.get(kind)
    return decoder(body, tls13) if decoder else {}


def _certificate(body: bytes, tls13: bool) -> dict[str, Any]:
    chain = []
    for der in tls_wire.certificate_ders(body, tls13):
        facts = CertFacts.from_der(der)
        chain.append(
            {
                "subject": facts.subject,
                "issuer": facts.issuer,
                "dns_names": list(facts.dns_names),
                "not_before": facts.not_before,
                "not_after": facts.not_after,
                "extended_key_usage": list(facts.extended_key_usage),
                "sha256": facts.sha256,
            }
        )
    return {"chain": chain}


_DECODERS: dict[str, Callable[[bytes, bool], dict[str, Any]]] = {
    "ClientHello": tls_wire.client_hello,
    "ServerHello": tls_wire.server_hello,
    "CertificateRequest": tls_wire.certificate_request,
    "Certificate": _certificate,
}
