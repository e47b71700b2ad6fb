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
  starts as ``trust`` and is then kept by a scheduled ``mtls-lab trust-sync --prune`` from the lab's Adobe API,
  one run per phase up to that one; see ``mtls_lab.lifecycle.synced``), ``style`` (who answers a bad
  certificate), ``proxy_without_header`` (TLS is terminated by a proxy in front that forwards no certificate),
  ``leaf_trust`` (the trust store holds Adobe's current leaf instead of a CA, and advertises it), ``staged``
  (trust-sync's first run staged the next hierarchy: ``--stage next-hierarchy``), ``alerts`` (whose alerts a
  TLS rejection carries: OpenSSL's, a Java server's or a Go server's, as measured in docs/server-stacks.md).

Authentication rows (``_authentication``) add: ``auth`` (the action's custom authorization: ``Auth.CUSTOM``,
a token endpoint with client credentials, or ``Auth.CERTIFICATE``, certificate-based authentication at the
lab's identity provider), ``authorize`` (what the endpoint's app checks: the certificate, a token, both),
``token_server`` (the mode of the server holding the token endpoint), ``token_cert`` (the caller also
presents its certificate on the token call, which AJO most likely does not), ``registered`` (the leaves the
identity provider holds) and ``wrong_audience``. Their ``expect`` starts with ``token`` when the token call
fails (``"token 401 invalid_client"``); then the action's call is never made and ``sent`` is None.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, fields
from typing import Any

from mtls_lab.caller.senders import Sender
from mtls_lab.caller.tls import Chain, ClientBehavior
from mtls_lab.certs.layout import ADOBE_CN, CA, Identity
from mtls_lab.lifecycle.phases import Phase
from mtls_lab.server.settings import AlertStyle, Authorize, Mode, RejectStyle, TLSVersion


class Auth(enum.Enum):
    """The action's authentication in an authentication row."""

    CUSTOM = "custom-auth"  # customAuthorization: a token call with client credentials, form-encoded
    CERTIFICATE = "cert-auth"  # subType certificateCredential: a client assertion signed with Adobe's key


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
SLOW_ANSWER = 2.2  # seconds: past an HTTP API destination's 2 s, well inside a journey's timeout
COMPANY_CN = "crm-client.company.example"  # the name on the company's own client certificate
ADOBE_AND_COMPANY = (CA.ADOBE_ROOT, OTHER)  # trusts Adobe's chain and the company's own CA


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
    sent: bool | None  # None: the action's call is never made (its token call failed)
    note: str = ""
    # server side, continued: the trust store as a scheduled trust-sync left it by this phase (None: ``trust`` as is)
    trust_sync: Phase | None = None
    # server side, continued: who answers a missing or bad certificate
    style: RejectStyle = RejectStyle.ALERT
    # a proxy in front terminates TLS, and the certificate header never arrives at the app
    proxy_without_header: bool = False
    # server side, continued: the trust store holds Adobe's current leaf (not a CA) and advertises its name
    leaf_trust: bool = False
    # server side, continued: trust-sync's first run staged the next hierarchy (only with trust_sync)
    staged: bool = False
    # authentication rows (``_authentication``): the action's authentication and the token endpoint's side
    auth: Auth | None = None
    authorize: Authorize = Authorize.CERTIFICATE
    token_server: Mode = Mode.TLS
    token_cert: bool = False
    registered: tuple[Identity, ...] = (Identity.ADOBE,)
    wrong_audience: bool = False
    # server side, continued: whose alerts a TLS rejection carries
    alerts: AlertStyle = AlertStyle.OPENSSL
    # server side, continued: the certificate is asked for after the handshake, for the action's path only
    # (Apache's SSLVerifyClient inside <Location>: ``serve --client-cert-paths``)
    per_path: bool = False
    # server side, continued: the app answers only after SLOW_ANSWER seconds (``serve --answer-delay``)
    slow: bool = False
    # caller side, continued: the Adobe sender that calls, with its answer deadline (caller/senders.py)
    sender: Sender = Sender.AJO_CUSTOM_ACTION

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
            "trusts-adobe-and-company-ca": self.trust == ADOBE_AND_COMPANY,
            "not-on-allow-list": bool(self.allow) and ADOBE_CN not in self.allow,
            "allows-adobe-san": bool(self.allow) and ADOBE_CN in self.allow,
            "pinned-leaf": self.pin,
            f"trust-sync-{self.trust_sync.value if self.trust_sync else ''}": self.trust_sync is not None,
            f"{self.style.value}-style": self.style is not RejectStyle.ALERT,
            "behind-proxy-no-header": self.proxy_without_header,
            "trusts-adobe-leaf": self.leaf_trust,
            "staged": self.staged,
            self.auth.value if self.auth else "": self.auth is not None,
            f"authorizes-{self.authorize.value}": self.authorize is not Authorize.CERTIFICATE,
            f"token-endpoint-{self.token_server.value}": self.token_server is not Mode.TLS,
            "token-call-with-cert": self.token_cert,
            "idp-holds-" + "+".join(i.value for i in self.registered): self.registered != (Identity.ADOBE,),
            "wrong-audience": self.wrong_audience,
            f"{self.alerts.value}-alerts": self.alerts is not AlertStyle.OPENSSL,
            "asks-per-path": self.per_path,
            "answers-slowly": self.slow,
            f"sender-{self.sender.value}": self.sender is not Sender.AJO_CUSTOM_ACTION,
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
            self.leaf_trust,
            self.staged,
            self.authorize,
            self.auth,  # an authentication row needs a token endpoint: never a default server (`--against`)
            self.alerts,
            self.per_path,
            self.slow,
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
    leaf_trust: bool = False,
    staged: bool = False,
    alerts: AlertStyle = AlertStyle.OPENSSL,
    per_path: bool = False,
    slow: bool = False,
    sender: Sender = Sender.AJO_CUSTOM_ACTION,
    **auth: Any,
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
        leaf_trust,
        staged,
        alerts=alerts,
        per_path=per_path,
        slow=slow,
        sender=sender,
        **auth,
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
    """mTLS servers whose trust store (today's root to start with) a scheduled ``mtls-lab trust-sync --prune`` keeps
    from the lab API, in Adobe's order: the reissue overlap, the switch to the new hierarchy, after it."""
    return [
        # During the overlap the API lists both certificates: a store kept from it accepts both; a pin breaks.
        _synced(Phase.OVERLAP, V13, ADOBE, "accepted", note="overlap: today's certificate"),
        _synced(Phase.OVERLAP, V13, ROTATED, "accepted", note="overlap: its successor too"),
        _synced(Phase.OVERLAP, V13, ADOBE, "accepted", pin=True, note="the pinned leaf passes today"),
        _synced(Phase.OVERLAP, V13, ROTATED, "403 fingerprint_not_pinned", pin=True, note="fails after the reissue"),
        # The new hierarchy: nothing lists it before AJO uses it, so the store must have it ahead of time.
        _synced(Phase.OVERLAP, V13, NEXT, NO_CERT[V13], False, note="new chain not listed yet"),
        _synced(Phase.OVERLAP, V13, NEXT, "alert unknown_ca", behavior=OPENSSL),
        _synced(Phase.ROTATED, V13, NEXT, NO_CERT[V13], False, note="AJO switches before the API lists it"),
        _synced(Phase.ROTATED, V13, NEXT, "accepted", staged=True, note="staged ahead of the switch: accepted"),
        _synced(Phase.TRANSITION, V13, ROTATED, "accepted", note="transition: today's hierarchy still in use"),
        _synced(Phase.TRANSITION, V13, NEXT, "accepted", note="and the new one, listed now"),
        _synced(Phase.TRANSITION, V13, Identity.IMPOSTOR, NO_CERT[V13], False, note="still no impostor"),
        _synced(Phase.MIGRATION, V13, NEXT, "accepted", behavior=OPENSSL, note="trust-sync added the chain"),
        _synced(Phase.MIGRATION, V13, NEXT, "accepted", note="and the server names it: Java sends"),
        _synced(Phase.MIGRATION, V12, NEXT, "accepted"),
    ]


def _auth_row(
    mode: Mode, identity: Identity, expect: str, auth: Auth | None, sent: bool | None = None, **settings: Any
) -> Scenario:
    scenario = row(mode, V13, identity, expect, sent, auth=auth, **settings)
    return dataclasses.replace(scenario, sent=None) if expect.startswith("token ") else scenario


def _authentication() -> list[Scenario]:
    """Authentication next to mTLS: the token call, certificate-based authentication, authorization by identity."""
    custom, cert, both, token = Auth.CUSTOM, Auth.CERTIFICATE, Authorize.BOTH, Authorize.TOKEN
    company = ADOBE_AND_COMPANY  # the TLS layer trusts Adobe's chain and the company's CA
    return [
        # Custom authorization: AJO makes the token call without its certificate (a model).
        _auth_row(MTLS, ADOBE, "accepted", custom, authorize=both, note="token call without the certificate"),
        _auth_row(
            MTLS,
            ADOBE,
            "token alert certificate_required",
            custom,
            authorize=both,
            token_server=MTLS,
            note="an mTLS-only token endpoint refuses AJO's token call",
        ),
        _auth_row(
            MTLS,
            ADOBE,
            "accepted",
            custom,
            authorize=both,
            token_server=MTLS,
            token_cert=True,
            note="only if the token call presented the certificate: AJO's most likely does not",
        ),
        # Certificate-based authentication: the identity provider holds Adobe's leaf.
        _auth_row(TLS, ADOBE, "accepted", cert, authorize=token, note="registered leaf: token, accepted"),
        _auth_row(MTLS, ADOBE, "accepted", cert, authorize=both, note="and an mTLS-only endpoint: both at once"),
        _auth_row(
            MTLS,
            ADOBE,
            "alert certificate_required",
            cert,
            False,
            authorize=both,
            advertise=OTHER,
            note="the token is fine; the mTLS layer still wants Adobe's CA named",
        ),
        _auth_row(
            TLS,
            ROTATED,
            "token 401 invalid_client",
            cert,
            authorize=token,
            note="Adobe rotated; the identity provider holds only the old leaf",
        ),
        _auth_row(
            TLS,
            ROTATED,
            "accepted",
            cert,
            authorize=token,
            registered=(ADOBE, ROTATED),
            note="the new leaf registered during the overlap",
        ),
        _auth_row(
            TLS,
            ADOBE,
            "token 401 invalid_client",
            cert,
            authorize=token,
            wrong_audience=True,
            note="aud is not this token endpoint",
        ),
        # The app authorizes only the company's (or a partner's) certificate: AJO presents only Adobe's.
        _auth_row(
            MTLS,
            ADOBE,
            "403 subject_not_allowed",
            None,
            trust=company,
            allow=(COMPANY_CN,),
            note="the app wants the company's certificate",
        ),
        _auth_row(
            MTLS,
            ADOBE,
            "accepted",
            None,
            trust=company,
            allow=(COMPANY_CN, ADOBE_CN),
            note="fix 1: allow Adobe's SAN on this route",
        ),
        _auth_row(
            MTLS,
            ADOBE,
            "403 subject_not_allowed",
            cert,
            trust=company,
            allow=(COMPANY_CN,),
            note="a token alone changes nothing while the route authorizes by certificate",
        ),
        _auth_row(
            MTLS,
            ADOBE,
            "accepted",
            cert,
            authorize=token,
            trust=company,
            allow=(COMPANY_CN,),
            note="fix 2: authenticate AJO another way (a token)",
        ),
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


def _per_path() -> list[Scenario]:
    """The certificate asked for after the handshake, for the action's path only (Apache's <Location>): on TLS 1.3
    only a client that offered post-handshake authentication can answer (curl does, JDK 17 does not: Apache's
    403); on TLS 1.2 the server renegotiates, and both models answer (measured: docs/server-stacks.md)."""
    no_pha = "403 apache_post_handshake_auth"
    return [
        row(MTLS, V13, ADOBE, no_pha, False, per_path=True, note="asked after the handshake: Java offers no PHA"),
        row(MTLS, None, ADOBE, no_pha, False, per_path=True, note="AJO's default TLS 1.3: the community question"),
        row(MTLS, V13, ADOBE, "accepted", per_path=True, behavior=OPENSSL, note="curl offers post-handshake auth"),
        row(MTLS, V12, ADOBE, "accepted", per_path=True, note="TLS 1.2: renegotiation, which Java answers"),
        row(MTLS, V12, ADOBE, "accepted", per_path=True, behavior=OPENSSL),
        row(MTLS, None, ADOBE, "accepted", per_path=True, tls_max=V12, note="the weaker fix: the host on TLS 1.2"),
        row(MTLS, V12, None, NO_CERT[V12], False, per_path=True),
        row(MTLS, V13, None, NO_CERT[V13], False, per_path=True, behavior=OPENSSL),
        *(row(MTLS, v, Identity.IMPOSTOR, "alert unknown_ca", per_path=True, behavior=OPENSSL) for v in (V12, V13)),
        row(MTLS, V12, NEXT, NO_CERT[V12], False, per_path=True, note="Java: new chain not named"),
    ]


def _senders() -> list[Scenario]:
    """What differs when another Adobe sender calls (caller/senders.py: each profile's facts and pages): its answer
    deadline, its switch for mTLS, its certificate's lifecycle; where Adobe documents nothing, the AJO model."""
    http, sms, io, forwarding = Sender.HTTP_DESTINATION, Sender.AJO_SMS, Sender.IO_EVENTS, Sender.EVENT_FORWARDING
    return [
        row(MTLS, V13, ADOBE, "accepted", sender=http),
        *_mtls_only_rows(),
        row(MTLS, V13, ADOBE, "timeout", sender=http, slow=True, note="answers in 2.2 s: the destination waits 2 s"),
        row(MTLS, V13, ADOBE, "accepted", slow=True, note="the same endpoint within a journey's timeout"),
        row(MTLS, V13, ADOBE, "accepted", sender=sms, note="the provider's mTLS support on"),
        row(MTLS, V13, None, NO_CERT[V13], False, sender=sms, note="mTLS support off: no certificate goes out"),
        row(MTLS, V13, ADOBE, "accepted", pin=True, sender=io, note="a pinned leaf works until it is reissued"),
        row(MTLS, V13, ROTATED, "403 fingerprint_not_pinned", pin=True, sender=io, note="reissued before expiry"),
        row(MTLS, V13, ROTATED, "accepted", sender=io, note="trusting the chain survives the reissue"),
        row(MTLS, V13, ADOBE, "accepted", sender=forwarding, note="model: Adobe documents little; AJO's client"),
        row(MTLS, V13, NEXT, NO_CERT[V13], False, sender=forwarding, note="the migration concerns it too"),
    ]


def _mtls_only_rows() -> list[Scenario]:
    """An HTTP API destination's endpoint "must have TLS disabled and only mTLS enabled" (EP
    help/destinations/catalog/streaming/http-destination.md). An endpoint that asks for the certificate optionally
    still accepts the destination's call: the rule is broken where a caller without a certificate gets in, which
    the sibling row shows (and `probe --sender http-destination` names: a sender PROBLEM)."""
    http = Sender.HTTP_DESTINATION
    return [
        row(MIXED, V13, ADOBE, "accepted", sender=http, note="optional: accepted, yet Adobe requires mTLS-only"),
        row(MIXED, V13, None, "403 no_client_certificate", sender=http, note="no certificate, yet past TLS"),
        row(TLS, V13, ADOBE, "403 no_client_certificate", sender=http, note="never asked: Adobe requires mTLS-only"),
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
    # The trust store holds Adobe's certificate itself (the API's publicCertificate, a leaf), not its CA:
    # the endpoint advertises the leaf's own name, which issued nothing, so a Java client omits its certificate.
    *(
        row(mode, tls, ADOBE, expect, False, trust=(), leaf_trust=True, note="trusts Adobe's leaf, not its CA")
        for mode, tls, expect in (
            (MIXED, V13, "403 no_client_certificate"),
            (MTLS, V13, NO_CERT[V13]),
            (MTLS, V12, NO_CERT[V12]),
        )
    ),
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
    *_per_path(),
    *_senders(),
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
    *_authentication(),
]
