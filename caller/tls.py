"""The caller's TLS side: which identity it holds, how it decides to send it, and what it trusts.

The Java model (``ClientBehavior.JAVA``) is a *model* of AJO's sender, a Java service: a JDK client
sends its certificate only when the server requests one and either names no CAs or names a CA that
issued one of the certificates in its key store (leaf and chain). Otherwise it sends an empty
Certificate message. Python's ``ssl`` cannot choose a certificate during the handshake, so the lab
installs OpenSSL's cert callback (``mtls_lab._openssl.install_certificate_choice``): when the server's
CertificateRequest arrives, the callback compares its CA names with the issuers of the key store and
removes the certificate from the connection when a JDK would not send it. The outcomes match the table
measured with JDK 17 in docs/ground-truth.md (tested in tests/test_java_model.py).

A server can also ask *after* the handshake, for one path only (Apache's ``SSLVerifyClient require``
inside ``<Location>``): on TLS 1.2 by renegotiating, which both models answer, as a JDK does; on TLS 1.3
by post-handshake authentication (RFC 8446 4.6.2), which a client must offer in its ClientHello
(``post_handshake_auth``). JDK 17 does not offer it, so the Java model does not; the OpenSSL model offers
it, as curl does (tests/test_per_path_auth.py measures both against a real Apache and a real JDK).
"""

from __future__ import annotations

import enum
import functools
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from mtls_lab import _openssl
from mtls_lab.caller._handshake_trace import Message, MessageLog
from mtls_lab.certs.inspect import CertFacts, load_pem_chain
from mtls_lab.certs.keypair import PairFiles, diagnose, refuse_encrypted_without_password
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.errors import LabError

SYSTEM = "system"
UNVERIFIED = "unverified"  # the probe only, after it has reported that the server's chain did not validate


class ClientBehavior(enum.Enum):
    """How a client decides whether to send its certificate."""

    JAVA = "java"  # AJO's sender (a model): only if the server names no CAs or names an issuer of its chain
    OPENSSL = "openssl"  # curl, Python, httpx: whenever one is requested

    @property
    def offers_post_handshake_auth(self) -> bool:
        """TLS 1.3 post-handshake authentication: curl offers it, JDK 17 does not."""
        return self is ClientBehavior.OPENSSL

    def sends(self, advertised: list[bytes], issuers: set[bytes]) -> bool:
        if self is ClientBehavior.OPENSSL or not advertised:
            return True
        return any(name in issuers for name in advertised)


class Chain(enum.Enum):
    FULL = "full"  # leaf + intermediate, as AJO is expected to send
    LEAF = "leaf"  # the leaf alone


@dataclass(frozen=True)
class ClientIdentity:
    """A certificate and key the caller can present."""

    label: str
    cert_file: Path
    key_file: Path
    password: str | None = None

    @classmethod
    def from_lab(cls, pki: LabPaths, identity: Identity, chain: Chain) -> ClientIdentity:
        cert = pki.client_leaf(identity) if chain is Chain.LEAF else pki.client_cert(identity)
        suffix = " (leaf only)" if chain is Chain.LEAF else ""
        return cls(identity.value + suffix, cert, pki.client_key(identity))

    def certificates(self) -> list[x509.Certificate]:
        """The key store's certificates, leaf first (read once: every attempt of a call asks again)."""
        return list(self._chain)

    @functools.cached_property
    def _chain(self) -> tuple[x509.Certificate, ...]:
        try:
            return tuple(load_pem_chain(self.cert_file))
        except (OSError, ValueError) as exc:
            raise LabError(f"--cert {self.cert_file}: not a readable PEM certificate file: give a PEM file") from exc

    def leaf_facts(self) -> CertFacts:
        return CertFacts.of(self.certificates()[0])

    def issuers(self) -> set[bytes]:
        """DER names of the issuers of every certificate in the key store (what a JDK matches on)."""
        return {cert.issuer.public_bytes() for cert in self.certificates()}

    def issuer_names(self) -> tuple[str, ...]:
        """The same issuers in words, leaf's first, as the advertised CA names are printed (``name_text``)."""
        return tuple(dict.fromkeys(_openssl.name_text(cert.issuer.public_bytes()) for cert in self.certificates()))


@dataclass
class Handshake:
    """Everything the caller observes of one connection's handshake, from three vantage points.

    - the certificate choice (OpenSSL's cert callback, installed by ``client_context``): was a certificate
      requested, with which CA names, and did the caller decide to send one, and why;
    - httpx's trace events (``extensions={"trace": handshake}``): the caller's port, whether the handshake
      completed, the version;
    - every handshake message (``install``, through ``caller/_handshake_trace.py``): exact about whether our
      Certificate message was empty, and what the ladder draws.
    """

    requested: bool = False
    advertised: list[bytes] = field(default_factory=list)
    decided_to_send: bool = False  # what the certificate callback decided
    reason: str = ""  # why the certificate was or was not sent, in words
    done: bool = False  # the handshake completed (httpx's start_tls returned)
    tls_version: str | None = None
    local_port: int | None = None
    log: MessageLog = field(default_factory=MessageLog)

    def install(self, context: ssl.SSLContext) -> None:
        """Also record every handshake message of the connections made with ``context``."""
        self.log.install(context)

    @property
    def messages(self) -> list[Message]:
        return self.log.messages

    @property
    def cert_sent(self) -> bool:
        """Exact when our Certificate message was observed; otherwise what the certificate callback decided."""
        observed = self.log.our_certificate_sent
        return self.decided_to_send if observed is None else observed

    @property
    def offered_post_handshake_auth(self) -> bool:
        """Our (last) ClientHello offered TLS 1.3 post-handshake authentication."""
        hellos = [m for m in self.messages if m.sent and m.kind == "ClientHello"]
        return bool(hellos and hellos[-1].details.get("post_handshake_auth"))

    @property
    def asked_after_handshake(self) -> bool:
        """The server asked for a certificate after the handshake: a TLS 1.2 renegotiation (HelloRequest)
        or a TLS 1.3 CertificateRequest after our Finished (post-handshake authentication)."""
        return any(
            not m.sent and (m.kind == "HelloRequest" or (m.kind == "CertificateRequest" and m.after_our_finished))
            for m in self.messages
        )

    def advertised_names(self) -> list[str]:
        return [_openssl.name_text(der) for der in self.advertised]

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        """httpx's trace extension: the events of the connection."""
        if event == "connection.connect_tcp.complete":
            address = info["return_value"].get_extra_info("client_addr")
            self.local_port = address[1] if address else None
        if event == "connection.start_tls.complete":
            self.done = True
            ssl_object = info["return_value"].get_extra_info("ssl_object")
            self.tls_version = ssl_object.version() if ssl_object else None


def client_context(
    pki: LabPaths | None,
    identity: ClientIdentity | None,
    behavior: ClientBehavior,
    tls: str | None,
    server_ca: Path | str | None,
    handshake: Handshake,
) -> ssl.SSLContext:
    """The one place the caller's SSLContext is made."""
    if server_ca == SYSTEM:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # the system trust store
    elif server_ca == UNVERIFIED:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        ca = Path(server_ca) if server_ca else (pki.ca(CA.SERVER_ROOT) if pki else None)
        if ca is None:
            raise LabError("no server CA: pass --server-ca PEM (or --server-ca system), or --certs with a lab PKI")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            raise LabError(f"--server-ca {ca}: cannot load it as PEM CA certificates: give a PEM file") from exc
    if tls is not None:
        version = ssl.TLSVersion.TLSv1_2 if tls == "1.2" else ssl.TLSVersion.TLSv1_3
        context.minimum_version = context.maximum_version = version
    else:
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # AJO: TLS 1.3 by default, may fall back to 1.2
    context.post_handshake_auth = behavior.offers_post_handshake_auth
    issuers: set[bytes] = set()
    if identity is not None:
        _load_identity(context, identity)
        issuers = identity.issuers()

    def decide(advertised: list[bytes]) -> bool:
        handshake.requested = True
        handshake.advertised = advertised
        handshake.decided_to_send = identity is not None and behavior.sends(advertised, issuers)
        handshake.reason = _choice_reason(identity, behavior, advertised, issuers, handshake.decided_to_send)
        return handshake.decided_to_send

    _openssl.install_certificate_choice(context, decide)
    return context


def _choice_reason(
    identity: ClientIdentity | None, behavior: ClientBehavior, advertised: list[bytes], issuers: set[bytes], sent: bool
) -> str:
    if identity is None:
        return "no identity configured"
    if behavior is ClientBehavior.OPENSSL:
        return "an OpenSSL client sends its certificate whenever one is requested"
    if not advertised:
        return "the server named no CAs, so a Java client sends its certificate"
    if sent:
        return "the server named an issuer of our chain (Java model)"
    ours = ", ".join(sorted(_openssl.name_text(n).split(",")[0] for n in issuers))
    return f"none of the names the server gave issued our chain (our issuers: {ours}; Java model)"


def _load_identity(context: ssl.SSLContext, identity: ClientIdentity) -> None:
    pair = PairFiles(identity.cert_file, identity.key_file, identity.password)
    refuse_encrypted_without_password(pair)  # OpenSSL would ask for the password on the terminal
    try:
        context.load_cert_chain(identity.cert_file, identity.key_file, password=identity.password)
    except FileNotFoundError as exc:
        raise LabError(f"{exc.filename}: no such file: check --cert/--key or --certs") from exc
    except (OSError, ssl.SSLError) as exc:
        raise LabError(diagnose(pair)) from exc
