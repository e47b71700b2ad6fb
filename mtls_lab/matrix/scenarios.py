"""The scenario table: every server/caller combination the lab shows, with its EXPECTED verdict.

Expectations are the specification, written by hand from tls-ground-truth.md and ajo-facts.md; the
matrix runs the real caller against real servers and compares. Read one row as:

    row(mode, tls, identity, expect, [sent], **settings)

- ``expect``: ``"accepted"``, ``"403 <reason>"`` or ``"alert <name>"``;
- ``sent``: whether the client certificate goes out (AJO's Java model unless ``behavior="openssl"``);
- settings: ``trust`` (CAs the server trusts), ``advertise`` (``trust``, ``none`` or a CA), ``tls_max``,
  ``allow`` (allow-list), ``pin`` (pin the current Adobe leaf), ``chain``, ``behavior``, ``note``,
  ``trust_sync`` (a lifecycle phase: the server's trust store starts as ``trust`` and is then kept by
  ``mtls-lab trust-sync`` from the lab's Adobe API in that phase; see ``mtls_lab.lifecycle.synced``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from mtls_lab.certs.layout import CA

ROOT = (CA.ADOBE_ROOT,)
BOTH_ROOTS = (CA.ADOBE_ROOT, CA.NEXT_ROOT)
OTHER = CA.IMPOSTOR_ROOT  # "another CA": what a customer's own internal CA looks like to AJO
NO_CERT = {"1.2": "alert handshake_failure", "1.3": "alert certificate_required"}


@dataclass(frozen=True)
class Scenario:
    # server side
    mode: str
    trust: tuple[CA, ...]
    advertise: str | CA  # "trust", "none" or a CA whose name alone is advertised
    tls_max: str
    allow: tuple[str, ...]
    pin: bool
    # caller side
    identity: str
    chain: str
    behavior: str
    tls: str | None  # None: the highest both support (AJO: TLS 1.3, falling back to 1.2)
    # expected verdict
    expect: str
    sent: bool
    note: str = ""
    # server side, continued: the trust store as trust-sync keeps it in this phase (None: ``trust`` as is)
    trust_sync: str | None = None
    # server side, continued: who answers a bad certificate ("alert", "nginx", "gateway"), or
    # "proxy-no-header": TLS is terminated in front and the certificate header never arrives
    style: str = "alert"

    @property
    def id(self) -> str:
        parts = [
            self.mode,
            f"tls{self.tls or 'auto'}",
            self.identity + ("-leaf" if self.chain == "leaf" else ""),
            self.behavior,
        ]
        extras = [name for name, on in self._extras().items() if on]
        return "/".join(parts + extras)

    def _extras(self) -> dict[str, bool]:
        return {
            "trusts-both-roots": self.trust == BOTH_ROOTS,
            "trusts-other-ca": self.trust == (OTHER,),
            "advertises-other-ca": self.advertise == OTHER,
            "advertises-none": self.advertise == "none",
            "server-max-tls1.2": self.tls_max == "1.2",
            "not-on-allow-list": bool(self.allow),
            "pinned-leaf": self.pin,
            f"trust-sync-{self.trust_sync}": self.trust_sync is not None,
            f"{self.style}-style" if self.style != "proxy-no-header" else "behind-proxy-no-header": self.style
            != "alert",
        }

    def server_key(self) -> tuple[Any, ...]:
        """Scenarios with the same key share one server."""
        return (self.mode, self.trust, self.advertise, self.tls_max, self.allow, self.pin, self.trust_sync, self.style)

    def settings(self) -> dict[str, Any]:
        """Every field but the expectation: what a sibling may differ in."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("expect", "sent", "note")}

    @property
    def accepted(self) -> bool:
        return self.expect == "accepted"


def row(
    mode: str,
    tls: str | None,
    identity: str,
    expect: str,
    sent: bool | None = None,
    *,
    trust: tuple[CA, ...] = ROOT,
    advertise: str | CA = "trust",
    tls_max: str = "1.3",
    allow: tuple[str, ...] = (),
    pin: bool = False,
    chain: str = "full",
    behavior: str = "java",
    note: str = "",
    trust_sync: str | None = None,
    style: str = "alert",
) -> Scenario:
    if sent is None:
        sent = mode != "tls" and identity != "none"
    return Scenario(
        mode,
        trust,
        advertise,
        tls_max,
        allow,
        pin,
        identity,
        chain,
        behavior,
        tls,
        expect,
        sent,
        note,
        trust_sync,
        style,
    )


def _grid() -> list[Scenario]:
    """The three modes x both TLS versions x the core identities, as AJO (the Java model) meets them."""
    rows = []
    for tls in ("1.2", "1.3"):
        missing = NO_CERT[tls]
        rows += [
            row("tls", tls, "adobe", "403 no_client_certificate", note="never asked: the community question's 403"),
            row("tls", tls, "none", "403 no_client_certificate"),
            *(
                row("tls", tls, who, "403 no_client_certificate")
                for who in ("impostor", "expired", "no-client-auth", "self-signed")
            ),
            row("mixed", tls, "adobe", "accepted"),
            row("mixed", tls, "none", "403 no_client_certificate"),
            row("mixed", tls, "impostor", "403 no_client_certificate", False, note="names don't match: not sent"),
            row("mixed", tls, "expired", "alert certificate_expired"),
            row("mixed", tls, "no-client-auth", "alert unsupported_certificate"),
            row("mixed", tls, "self-signed", "403 no_client_certificate", False),
            row(
                "mixed", tls, "adobe", "403 no_client_certificate", False, chain="leaf", note="leaf's issuer not named"
            ),
            row("mtls", tls, "adobe", "accepted"),
            row("mtls", tls, "none", missing),
            row("mtls", tls, "impostor", missing, False),
            row("mtls", tls, "expired", "alert certificate_expired"),
            row("mtls", tls, "no-client-auth", "alert unsupported_certificate"),
            row("mtls", tls, "self-signed", missing, False),
            row("mtls", tls, "adobe", missing, False, chain="leaf"),
            # what an OpenSSL client (curl) gets from the same server: it sends whatever is requested
            row("mtls", tls, "impostor", "alert unknown_ca", behavior="openssl"),
            row("mtls", tls, "self-signed", "alert unknown_ca", behavior="openssl"),
            row(
                "mtls",
                tls,
                "adobe",
                "alert unknown_ca",
                chain="leaf",
                behavior="openssl",
                note="intermediate neither sent nor trusted",
            ),
            row(
                "mtls",
                tls,
                "adobe",
                "alert unknown_ca",
                chain="leaf",
                advertise="none",
                note="no names: Java sends the lone leaf",
            ),
        ]
    return rows


def _synced(phase: str, tls: str, identity: str, expect: str, sent: bool | None = None, **settings: Any) -> Scenario:
    return row("mtls", tls, identity, expect, sent, trust_sync=phase, **settings)


def _lifecycle() -> list[Scenario]:
    """mTLS servers whose trust store (today's root to start with) ``mtls-lab trust-sync`` keeps from the lab API."""
    return [
        # During the overlap the API lists both certificates: a store kept from it accepts both; a pin breaks.
        _synced("overlap", "1.3", "adobe", "accepted", note="overlap: today's certificate"),
        _synced("overlap", "1.3", "adobe-rotated", "accepted", note="overlap: next year's too"),
        _synced("overlap", "1.3", "adobe", "accepted", pin=True, note="the pinned leaf passes today"),
        _synced("overlap", "1.3", "adobe-rotated", "403 fingerprint_not_pinned", pin=True, note="fails after rotation"),
        # The migration: the API lists the new hierarchy's certificate and trust-sync adds its CAs.
        _synced("overlap", "1.3", "adobe-next", NO_CERT["1.3"], False, note="new chain not listed yet"),
        _synced("overlap", "1.3", "adobe-next", "alert unknown_ca", behavior="openssl"),
        _synced("migration", "1.3", "adobe-next", "accepted", behavior="openssl", note="trust-sync added the chain"),
        _synced("migration", "1.3", "adobe-next", "accepted", note="and the server names it: Java sends"),
        _synced("migration", "1.2", "adobe-next", "accepted"),
    ]


SCENARIOS: list[Scenario] = [
    *_grid(),
    # The endpoint names another CA: a Java client (AJO) omits its certificate.
    row("mixed", "1.2", "adobe", "403 no_client_certificate", False, advertise=OTHER),
    row("mixed", "1.3", "adobe", "403 no_client_certificate", False, advertise=OTHER),
    row("mtls", "1.2", "adobe", "alert handshake_failure", False, advertise=OTHER),
    row("mtls", "1.3", "adobe", "alert certificate_required", False, advertise=OTHER),
    row("mixed", "1.3", "adobe", "403 no_client_certificate", False, trust=(OTHER,), note="trusts only its own CA"),
    row("mixed", "1.3", "adobe", "alert unknown_ca", trust=(OTHER,), behavior="openssl"),
    # Authorization after trust.
    row("mtls", "1.3", "adobe", "403 subject_not_allowed", allow=("partner.example.com",)),
    row("mtls", "1.3", "adobe", "accepted", pin=True),
    row("mtls", "1.3", "adobe-rotated", "403 fingerprint_not_pinned", pin=True, note="pinning breaks at rotation"),
    row("mtls", "1.3", "adobe-rotated", "accepted", note="trusting the root survives rotation"),
    # The CA migration to DigiCert Assured ID.
    row("mtls", "1.2", "adobe-next", "alert handshake_failure", False, note="Java: new chain not named"),
    row("mtls", "1.3", "adobe-next", "alert certificate_required", False, note="Java: new chain not named"),
    row("mtls", "1.3", "adobe-next", "alert unknown_ca", behavior="openssl", note="new root not trusted"),
    row("mtls", "1.3", "adobe-next", "accepted", trust=BOTH_ROOTS),
    row("mtls", "1.2", "adobe-next", "accepted", trust=BOTH_ROOTS),
    # TLS versions: they matter only when they do not overlap.
    row("mtls", None, "adobe", "accepted", note="AJO's default: TLS 1.3"),
    row("mtls", None, "adobe", "alert certificate_required", False, advertise=OTHER, note="AJO's default version"),
    row("mtls", None, "adobe", "accepted", tls_max="1.2", note="falls back to TLS 1.2: fine"),
    row("mtls", "1.3", "adobe", "alert protocol_version", False, tls_max="1.2", note="no common version"),
    *_lifecycle(),
    # The same root causes through other faces: nginx's 400 pages, a gateway's 403, a proxy that forwards nothing.
    *(
        row("mtls", "1.3", who, expect, sent, style=style, behavior=behavior, allow=allow)
        for style, no_cert, bad in (
            ("nginx", "400 nginx_no_certificate", "400 nginx_certificate_error"),
            ("gateway", "403 gateway_forbidden", "403 gateway_forbidden"),
        )
        for who, expect, sent, behavior, allow in (
            ("adobe", "accepted", True, "java", ()),
            ("none", no_cert, False, "java", ()),
            ("impostor", bad, True, "openssl", ()),
            ("expired", bad, True, "java", ()),
            ("adobe", "403 subject_not_allowed", True, "java", ("partner.example.com",)),
        )
    ),
    row(
        "mtls",
        "1.3",
        "adobe",
        "403 gateway_forbidden",
        False,
        advertise=OTHER,
        style="gateway",
        note="the community question's 403, from a gateway in front of a healthy app",
    ),
    row(
        "tls",
        "1.3",
        "adobe",
        "403 client_cert_not_forwarded",
        style="proxy-no-header",
        note="the proxy terminates TLS and forwards no certificate",
    ),
]
