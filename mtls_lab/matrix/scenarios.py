"""The scenario table: every server/caller combination the lab shows, with its EXPECTED verdict.

Expectations are the specification, written by hand from what real peers do (docs/ground-truth.md)
and what Adobe documents (docs/how-ajo-calls.md); the matrix runs the real caller against real servers
and compares. Read one row as:

    row(mode, tls, identity, expect, [sent], **settings)

- ``identity``: the lab identity the caller holds, or ``None`` for no certificate at all;
- ``expect``: ``"accepted"``, ``"<status> <reason>"`` (e.g. ``"403 no_client_certificate"``) or
  ``"alert <name>"``;
- ``sent``: whether the client certificate goes out (AJO's Java model unless ``behavior=OPENSSL``);
- settings: ``trust`` (CAs the server trusts), ``advertise`` (``Advertise.TRUST``, ``Advertise.NONE`` or a
  CA whose name alone is advertised), ``tls_max``, ``allow`` (allow-list), ``pin`` (pin the current Adobe
  leaf), ``chain``, ``behavior``, ``note``, ``trust_sync`` (a lifecycle phase: the server's trust store
  starts as ``trust`` and is then kept by ``mtls-lab trust-sync`` from the lab's Adobe API in that phase;
  see ``mtls_lab.lifecycle.synced``), ``style`` (who answers a bad certificate), ``proxy_without_header``
  (TLS is terminated by a proxy in front that forwards no certificate), ``alerts`` (whose alerts a TLS
  rejection carries: OpenSSL's, a Java server's or a Go server's, as measured in docs/server-stacks.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any

from mtls_lab.caller.tls import Chain, ClientBehavior
from mtls_lab.certs.layout import CA, Identity
from mtls_lab.lifecycle.phases import Phase
from mtls_lab.server.settings import AlertStyle, Mode, RejectStyle, TLSVersion


class Advertise(enum.Enum):
    """Which CA names the server's CertificateRequest carries, when not one chosen CA's."""

    TRUST = "trust"  # the CAs it trusts (nginx ssl_client_certificate)
    NONE = "none"  # none (nginx ssl_trusted_certificate, Python's ssl)


TLS, MIXED, MTLS = Mode.TLS, Mode.MIXED, Mode.MTLS
V12, V13 = TLSVersion.V1_2, TLSVersion.V1_3
JAVA, OPENSSL = ClientBehavior.JAVA, ClientBehavior.OPENSSL
ADOBE, ROTATED, NEXT = Identity.ADOBE, Identity.ADOBE_ROTATED, Identity.ADOBE_NEXT
ROOT = (CA.ADOBE_ROOT,)
BOTH_ROOTS = (CA.ADOBE_ROOT, CA.NEXT_ROOT)
OTHER = CA.IMPOSTOR_ROOT  # "another CA": what a customer's own internal CA looks like to AJO
NO_CERT = {V12: "alert handshake_failure", V13: "alert certificate_required"}


@dataclass(frozen=True)
class Scenario:
    # server side
    mode: Mode
    trust: tuple[CA, ...]
    advertise: Advertise | CA
    tls_max: TLSVersion
    allow: tuple[str, ...]
    pin: bool
    # caller side
    identity: Identity | None  # None: no client certificate at all
    chain: Chain
    behavior: ClientBehavior
    tls: TLSVersion | None  # None: the highest both support (AJO: TLS 1.3, falling back to 1.2)
    # expected verdict
    expect: str
    sent: bool
    note: str = ""
    # server side, continued: the trust store as trust-sync keeps it in this phase (None: ``trust`` as is)
    trust_sync: Phase | None = None
    # server side, continued: who answers a missing or bad certificate
    style: RejectStyle = RejectStyle.ALERT
    # a proxy in front terminates TLS, and the certificate header never arrives at the app
    proxy_without_header: bool = False
    # server side, continued: whose alerts a TLS rejection carries
    alerts: AlertStyle = AlertStyle.OPENSSL

    @property
    def id(self) -> str:
        who = self.identity.value if self.identity else "none"
        parts = [
            self.mode.value,
            f"tls{self.tls.value if self.tls else 'auto'}",
            who + ("-leaf" if self.chain is Chain.LEAF else ""),
            self.behavior.value,
        ]
        extras = [name for name, on in self._extras().items() if on]
        return "/".join(parts + extras)

    def _extras(self) -> dict[str, bool]:
        return {
            "trusts-both-roots": self.trust == BOTH_ROOTS,
            "trusts-other-ca": self.trust == (OTHER,),
            "advertises-other-ca": self.advertise == OTHER,
            "advertises-none": self.advertise is Advertise.NONE,
            "server-max-tls1.2": self.tls_max is V12,
            "not-on-allow-list": bool(self.allow),
            "pinned-leaf": self.pin,
            f"trust-sync-{self.trust_sync.value if self.trust_sync else ''}": self.trust_sync is not None,
            f"{self.style.value}-style": self.style is not RejectStyle.ALERT,
            "behind-proxy-no-header": self.proxy_without_header,
            f"{self.alerts.value}-alerts": self.alerts is not AlertStyle.OPENSSL,
        }

    def server_key(self) -> tuple[Any, ...]:
        """Scenarios with the same key share one server."""
        return (
            self.mode,
            self.trust,
            self.advertise,
            self.tls_max,
            self.allow,
            self.pin,
            self.trust_sync,
            self.style,
            self.proxy_without_header,
            self.alerts,
        )

    def settings(self) -> dict[str, Any]:
        """Every field but the expectation: what a sibling may differ in."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("expect", "sent", "note")}

    @property
    def accepted(self) -> bool:
        return self.expect == "accepted"


def row(
    mode: Mode,
    tls: TLSVersion | None,
    identity: Identity | None,
    expect: str,
    sent: bool | None = None,
    *,
    trust: tuple[CA, ...] = ROOT,
    advertise: Advertise | CA = Advertise.TRUST,
    tls_max: TLSVersion = V13,
    allow: tuple[str, ...] = (),
    pin: bool = False,
    chain: Chain = Chain.FULL,
    behavior: ClientBehavior = JAVA,
    note: str = "",
    trust_sync: Phase | None = None,
    style: RejectStyle = RejectStyle.ALERT,
    proxy_without_header: bool = False,
    alerts: AlertStyle = AlertStyle.OPENSSL,
) -> Scenario:
    if sent is None:
        sent = mode is not TLS and identity is not None
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
        proxy_without_header,
        alerts,
    )


def _grid() -> list[Scenario]:
    """The three modes x both TLS versions x the core identities, as AJO (the Java model) meets them."""
    rows = []
    for tls in (V12, V13):
        missing = NO_CERT[tls]
        rows += [
            row(TLS, tls, ADOBE, "403 no_client_certificate", note="never asked: the community question's 403"),
            row(TLS, tls, None, "403 no_client_certificate"),
            *(
                row(TLS, tls, who, "403 no_client_certificate")
                for who in (Identity.IMPOSTOR, Identity.EXPIRED, Identity.NO_CLIENT_AUTH, Identity.SELF_SIGNED)
            ),
            row(MIXED, tls, ADOBE, "accepted"),
            row(MIXED, tls, None, "403 no_client_certificate"),
            row(MIXED, tls, Identity.IMPOSTOR, "403 no_client_certificate", False, note="names don't match: not sent"),
            row(MIXED, tls, Identity.EXPIRED, "alert certificate_expired"),
            row(MIXED, tls, Identity.NO_CLIENT_AUTH, "alert unsupported_certificate"),
            row(MIXED, tls, Identity.SELF_SIGNED, "403 no_client_certificate", False),
            row(
                MIXED, tls, ADOBE, "403 no_client_certificate", False, chain=Chain.LEAF, note="leaf's issuer not named"
            ),
            row(MTLS, tls, ADOBE, "accepted"),
            row(MTLS, tls, None, missing),
            row(MTLS, tls, Identity.IMPOSTOR, missing, False),
            row(MTLS, tls, Identity.EXPIRED, "alert certificate_expired"),
            row(MTLS, tls, Identity.NO_CLIENT_AUTH, "alert unsupported_certificate"),
            row(MTLS, tls, Identity.SELF_SIGNED, missing, False),
            row(MTLS, tls, ADOBE, missing, False, chain=Chain.LEAF),
            # what an OpenSSL client (curl) gets from the same server: it sends whatever is requested
            row(MTLS, tls, Identity.IMPOSTOR, "alert unknown_ca", behavior=OPENSSL),
            row(MTLS, tls, Identity.SELF_SIGNED, "alert unknown_ca", behavior=OPENSSL),
            row(
                MTLS,
                tls,
                ADOBE,
                "alert unknown_ca",
                chain=Chain.LEAF,
                behavior=OPENSSL,
                note="intermediate neither sent nor trusted",
            ),
            row(
                MTLS,
                tls,
                ADOBE,
                "alert unknown_ca",
                chain=Chain.LEAF,
                advertise=Advertise.NONE,
                note="no names: Java sends the lone leaf",
            ),
        ]
    return rows


def _synced(
    phase: Phase, tls: TLSVersion, identity: Identity, expect: str, sent: bool | None = None, **settings: Any
) -> Scenario:
    return row(MTLS, tls, identity, expect, sent, trust_sync=phase, **settings)


def _lifecycle() -> list[Scenario]:
    """mTLS servers whose trust store (today's root to start with) ``mtls-lab trust-sync`` keeps from the lab API."""
    return [
        # During the overlap the API lists both certificates: a store kept from it accepts both; a pin breaks.
        _synced(Phase.OVERLAP, V13, ADOBE, "accepted", note="overlap: today's certificate"),
        _synced(Phase.OVERLAP, V13, ROTATED, "accepted", note="overlap: next year's too"),
        _synced(Phase.OVERLAP, V13, ADOBE, "accepted", pin=True, note="the pinned leaf passes today"),
        _synced(Phase.OVERLAP, V13, ROTATED, "403 fingerprint_not_pinned", pin=True, note="fails after rotation"),
        # The migration: the API lists the new hierarchy's certificate and trust-sync adds its CAs.
        _synced(Phase.OVERLAP, V13, NEXT, NO_CERT[V13], False, note="new chain not listed yet"),
        _synced(Phase.OVERLAP, V13, NEXT, "alert unknown_ca", behavior=OPENSSL),
        _synced(Phase.MIGRATION, V13, NEXT, "accepted", behavior=OPENSSL, note="trust-sync added the chain"),
        _synced(Phase.MIGRATION, V13, NEXT, "accepted", note="and the server names it: Java sends"),
        _synced(Phase.MIGRATION, V12, NEXT, "accepted"),
    ]


def _other_stacks() -> list[Scenario]:
    """The same failures as a Java (JSSE) and a Go 1.20+ server report them (docs/server-stacks.md)."""
    java, go = AlertStyle.JAVA, AlertStyle.GO
    return [
        row(MTLS, V12, None, "alert bad_certificate", alerts=java, note="JSSE: a missing certificate is 'bad'"),
        row(MTLS, V12, ADOBE, "alert bad_certificate", False, advertise=OTHER, alerts=java, note="names other CAs"),
        row(MTLS, V13, ADOBE, "accepted", alerts=java),
        row(MTLS, V13, Identity.EXPIRED, "alert certificate_unknown", alerts=java, note="JSSE: any rejection"),
        row(MTLS, V13, Identity.NO_CLIENT_AUTH, "alert certificate_unknown", alerts=java),
        row(MTLS, V13, Identity.IMPOSTOR, "alert certificate_unknown", behavior=OPENSSL, alerts=java),
        row(MTLS, V12, None, "alert handshake_failure", alerts=go),
        row(MTLS, V13, ADOBE, "accepted", alerts=go),
        row(MTLS, V13, Identity.EXPIRED, "alert certificate_expired", alerts=go),
        row(MTLS, V13, Identity.NOT_YET_VALID, "alert certificate_expired", alerts=go, note="Go: dates are 'expired'"),
        row(MTLS, V13, Identity.NO_CLIENT_AUTH, "alert bad_certificate", alerts=go),
        row(MTLS, V13, Identity.IMPOSTOR, "alert unknown_ca", behavior=OPENSSL, alerts=go),
    ]


SCENARIOS: list[Scenario] = [
    *_grid(),
    # The endpoint names another CA: a Java client (AJO) omits its certificate.
    row(MIXED, V12, ADOBE, "403 no_client_certificate", False, advertise=OTHER),
    row(MIXED, V13, ADOBE, "403 no_client_certificate", False, advertise=OTHER),
    row(MTLS, V12, ADOBE, "alert handshake_failure", False, advertise=OTHER),
    row(MTLS, V13, ADOBE, "alert certificate_required", False, advertise=OTHER),
    row(MIXED, V13, ADOBE, "403 no_client_certificate", False, trust=(OTHER,), note="trusts only its own CA"),
    row(MIXED, V13, ADOBE, "alert unknown_ca", trust=(OTHER,), behavior=OPENSSL),
    # Authorization after trust.
    row(MTLS, V13, ADOBE, "403 subject_not_allowed", allow=("partner.example.com",)),
    row(MTLS, V13, ADOBE, "accepted", pin=True),
    row(MTLS, V13, ROTATED, "403 fingerprint_not_pinned", pin=True, note="pinning breaks at rotation"),
    row(MTLS, V13, ROTATED, "accepted", note="trusting the root survives rotation"),
    # The CA migration to DigiCert Assured ID.
    row(MTLS, V12, NEXT, "alert handshake_failure", False, note="Java: new chain not named"),
    row(MTLS, V13, NEXT, "alert certificate_required", False, note="Java: new chain not named"),
    row(MTLS, V13, NEXT, "alert unknown_ca", behavior=OPENSSL, note="new root not trusted"),
    row(MTLS, V13, NEXT, "accepted", trust=BOTH_ROOTS),
    row(MTLS, V12, NEXT, "accepted", trust=BOTH_ROOTS),
    # TLS versions: they matter only when they do not overlap.
    row(MTLS, None, ADOBE, "accepted", note="AJO's default: TLS 1.3"),
    row(MTLS, None, ADOBE, "alert certificate_required", False, advertise=OTHER, note="AJO's default version"),
    row(MTLS, None, ADOBE, "accepted", tls_max=V12, note="falls back to TLS 1.2: fine"),
    row(MTLS, V13, ADOBE, "alert protocol_version", False, tls_max=V12, note="no common version"),
    *_lifecycle(),
    *_other_stacks(),
    # The same root causes through other faces: nginx's 400 pages, a gateway's 403, a proxy that forwards nothing.
    *(
        row(MTLS, V13, who, expect, sent, style=style, behavior=behavior, allow=allow)
        for style, no_cert, bad in (
            (RejectStyle.NGINX, "400 nginx_no_certificate", "400 nginx_certificate_error"),
            (RejectStyle.GATEWAY, "403 gateway_forbidden", "403 gateway_forbidden"),
        )
        for who, expect, sent, behavior, allow in (
            (ADOBE, "accepted", True, JAVA, ()),
            (None, no_cert, False, JAVA, ()),
            (Identity.IMPOSTOR, bad, True, OPENSSL, ()),
            (Identity.EXPIRED, bad, True, JAVA, ()),
            (ADOBE, "403 subject_not_allowed", True, JAVA, ("partner.example.com",)),
        )
    ),
    row(
        MTLS,
        V13,
        ADOBE,
        "403 gateway_forbidden",
        False,
        advertise=OTHER,
        style=RejectStyle.GATEWAY,
        note="the community question's 403, from a gateway in front of a healthy app",
    ),
    row(
        TLS,
        V13,
        ADOBE,
        "403 client_cert_not_forwarded",
        proxy_without_header=True,
        note="the proxy terminates TLS and forwards no certificate",
    ),
]
