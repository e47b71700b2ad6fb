"""``mtls-lab probe``: find out which case a real endpoint is in, the way AJO would meet it.

The probe makes a few ordinary connections, each a TLS handshake plus one harmless ``GET`` of the
URL's path, and reads the handshake from the caller's side (``caller/_handshake_trace.py``):

1. AJO's default (TLS 1.3, falling back to 1.2), no client certificate, server chain validated against
   the system trust store or ``--server-ca``;
2. TLS 1.2 and TLS 1.3 each pinned, to see which versions the endpoint accepts;
3. when the endpoint asks for a certificate, the stack probe (``caller/probe_certs.py``): one expired,
   self-signed certificate whose answer, with the answers to no certificate at all, tells the server's
   TLS stack (a guess, labelled so, from the measured table of ``caller/stacks.py``); when AJO's default ended
   on TLS 1.3 with no CertificateRequest but an answer that points to one after the handshake (Apache's 403
   "Cannot perform Post-Handshake Authentication", a bare 403), this connection offers post-handshake
   authentication, as curl does, and shows whether the endpoint asks for the path (``_points_to_late_request``);
4. with ``--check-trust``, one trust probe per Adobe hierarchy (today's and the CA migration's): a chain
   under the real DigiCert root that fails by construction, and fails differently when the endpoint
   trusts the root (``caller/trust_check.py``);
5. optionally, lab identities (``--try-identity``) or your own (``--cert/--key``), sent whatever the
   endpoint advertises, to see whether it rejects untrusted certificates with an alert or over HTTP.

The verdict names what the endpoint enforces and where (``Enforcement``): a certificate required in the
handshake; required over HTTP (nginx ``ssl_verify_client on`` completes the handshake and answers 400);
requested optionally; requested for the probed path only, after the handshake (a TLS 1.2 renegotiation or a
TLS 1.3 post-handshake CertificateRequest, seen in the trace of a request for the path); or never.

It ends with one readiness verdict per hierarchy: does the endpoint ask, will AJO's Java client send
its certificate (the CA names), does the TLS layer trust the chain. What it cannot see: whether the
app authorizes Adobe's name, what the app behind a TLS-terminating proxy receives, and the logs.
"""

from __future__ import annotations

import enum
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from mtls_lab.caller.action import parse
from mtls_lab.caller.call import CallOptions, call
from mtls_lab.caller.probe_certs import Hierarchy, forge, probe_identity, stack_probe
from mtls_lab.caller.stacks import Failure, Stack, describe, guess
from mtls_lab.caller.tls import UNVERIFIED, ClientBehavior, ClientIdentity
from mtls_lab.caller.trust_check import Readiness, State, Trust, TrustAnswer, not_asked, read, readiness
from mtls_lab.caller.verdict import APACHE_NO_PHA, POST_HANDSHAKE_REFUSED, Layer, Outcome, Verdict
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.vocabulary import AdobeChain, Reason, short_answer

# Adobe's issuers (docs/adobe-facts.md): today's chain, and the chain of the 2026-2027 migration.
ADOBE_ISSUERS = (AdobeChain.TODAY_ROOT, AdobeChain.TODAY_INTERMEDIATE)
ADOBE_NEXT_ISSUERS = (AdobeChain.MIGRATION_ROOT, AdobeChain.MIGRATION_INTERMEDIATE)
LAB_STAND_INS = {
    CA.ADOBE_ROOT: ADOBE_ISSUERS[0],
    CA.ADOBE_INTERMEDIATE: ADOBE_ISSUERS[1],
    CA.NEXT_ROOT: ADOBE_NEXT_ISSUERS[0],
    CA.NEXT_INTERMEDIATE: ADOBE_NEXT_ISSUERS[1],
}
DOCS = "https://experienceleague.adobe.com/en/docs/experience-platform/landing/governance-privacy-security/encryption#mtls-protocol-support"


class ProbeError(LabError):
    """The endpoint could not be probed at all (unreachable, not TLS, silent)."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Enforcement(enum.Enum):
    """What the endpoint enforces of the client certificate, and where."""

    HANDSHAKE = "required in the handshake"
    HTTP = "required over HTTP"  # nginx `ssl_verify_client on`: the handshake completes, 400 without one
    OPTIONAL = "requested optionally"
    PATH = "requested for this path only, after the handshake"
    NEVER = "never requested"

    @property
    def configuration(self) -> str:
        """The configuration class the probe has always named (per-path is new)."""
        return _CONFIGURATION[self]


_CONFIGURATION = {
    Enforcement.HANDSHAKE: "mtls-only",
    Enforcement.HTTP: "mtls-only",
    Enforcement.OPTIONAL: "mixed",
    Enforcement.PATH: "per-path",
    Enforcement.NEVER: "tls-only",
}
# how each stack family is told to require the certificate at the handshake
_REQUIRE = {
    Stack.NGINX: "nginx: ssl_verify_client on",
    Stack.OPENSSL: "Apache: SSLVerifyClient require; HAProxy: verify required",
    Stack.JAVA: 'Tomcat: certificateVerification="required"; Spring Boot: server.ssl.client-auth=need',
    Stack.GO: "Caddy: client_auth mode require_and_verify; Go: tls.RequireAndVerifyClientCert",
    Stack.GO_LEGACY: "Caddy: client_auth mode require_and_verify; Go: tls.RequireAndVerifyClientCert",
}


@dataclass(frozen=True)
class IdentityTry:
    identity: str
    outcome: str
    answer: str  # "alert unknown_ca", "HTTP 403", "accepted"
    rejected_at: str  # "TLS", "HTTP" or "-"
    cause: str = ""  # the verdict's most likely cause, facts first
    issuer: str = ""  # the leaf's issuer: identities of one chain tell trust apart from the certificate itself
    note: str = ""


@dataclass(frozen=True)
class FirstLook:
    """What AJO's default connection without a certificate shows: the server's chain and its request."""

    server_chain: list[dict[str, Any]]
    requests_client_cert: bool
    advertised_ca_names: list[str]
    without_cert: str  # what happened without a certificate: "handshake completes", "alert ..."
    refused_over_http: bool = False  # the handshake completed and the TLS terminator refused (nginx's 400)


@dataclass(frozen=True)
class NamesRead:
    """The advertised CA names read as a JDK would: Adobe's issuers named, and will AJO send its certificate."""

    names_adobe_today: bool = False
    names_adobe_next: bool = False
    names_lab_stand_ins: list[str] = field(default_factory=list)
    java_sends_certificate: bool = False


@dataclass(frozen=True)
class Conclusion:
    configuration: str  # tls-only, mixed, mtls-only, per-path
    enforcement: Enforcement
    likely_outcome: str
    fixes: list[str]


@dataclass(frozen=True)
class ProbeReport:
    """What the probe found, built once from its steps; ``first`` is the connection the HTML report draws."""

    url: str
    server_chain: list[dict[str, Any]] = field(default_factory=list)
    server_chain_valid: bool = False
    server_chain_problem: str = ""
    tls12: bool = False
    tls13: bool = False
    ajo_default_version: str | None = None
    requests_client_cert: bool = False
    without_cert: str = ""  # what happened without a certificate: "handshake completes", "alert ..."
    refused_over_http: bool = False  # the handshake completed and the TLS terminator refused (nginx's 400)
    advertised_ca_names: list[str] = field(default_factory=list)
    names_adobe_today: bool = False
    names_adobe_next: bool = False
    names_lab_stand_ins: list[str] = field(default_factory=list)
    java_sends_certificate: bool = False
    configuration: str = ""  # tls-only, mixed, mtls-only, per-path
    enforcement: str = ""  # an Enforcement value: what the endpoint enforces, and where
    asked_late: str = ""  # how a request for the path asked after the handshake ("" when it did not)
    identities: list[IdentityTry] = field(default_factory=list)
    stack_observed: dict[str, str] = field(default_factory=dict)  # "no certificate, TLS 1.2" -> "alert ..."
    stack_guess: list[str] = field(default_factory=list)  # Stack values consistent with every answer
    trust: list[TrustAnswer] = field(default_factory=list)
    readiness: list[Readiness] = field(default_factory=list)
    likely_outcome: str = ""
    fixes: list[str] = field(default_factory=list)
    # the verdict of the probe's first connection (AJO's defaults, no certificate, the given server CA): what
    # the HTML report draws, the very connection the probe read (not in the JSON output)
    first: Verdict = field(kw_only=True, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "first"}
        data["trust"] = [t.to_json() for t in self.trust]
        data["readiness"] = [r.to_json() for r in self.readiness]
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [asdict(v) if is_dataclass(v) and not isinstance(v, type) else v for v in value]
    return dict(value) if isinstance(value, dict) else value


def probe(
    url: str,
    server_ca: str | None,
    pki: LabPaths | None,
    tries: list[ClientIdentity],
    timeout: float = 5.0,
    check_trust: bool = False,
) -> ProbeReport:
    """Probe ``url``; raise ProbeError if it cannot be reached as a TLS endpoint at all."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise LabError(f"probe {url!r}: give an https:// URL, like https://host[:port][/path]")
    first = seen = _connect(url, server_ca, pki, None, None, timeout)
    chain_problem = ""
    if first.outcome is Outcome.SERVER_UNTRUSTED:
        chain_problem = first.explanation
        server_ca = UNVERIFIED
        seen = _connect(url, server_ca, pki, None, None, timeout)
    _check_reachable(seen, url, timeout)
    look = _read_handshake(seen)
    observed: dict[tuple[Failure, str], str] = {}
    pinned = {version: _connect(url, server_ca, pki, None, version, timeout) for version in ("1.2", "1.3")}
    reached = {version: _handshake_reached(verdict) for version, verdict in pinned.items()}
    late, late_names = _asked_late((seen, *pinned.values()), look.requests_client_cert)
    offered: Verdict | None = None
    if _points_to_late_request(seen, pinned.values()) and reached["1.3"]:
        # TLS 1.3 and no CertificateRequest seen, but an answer that points to one asked after the handshake: a
        # client that offers post-handshake authentication (the OpenSSL model, as curl) shows whether it comes.
        # It is the stack probe's connection too, so that it costs a connection only when no request comes.
        with probe_identity(stack_probe()) as fingerprint:
            offered = _connect(url, server_ca, pki, fingerprint, "1.3", timeout, ClientBehavior.OPENSSL)
        how, asked = _late_request(offered, False)
        if how:
            late, late_names = _seen_when_offered(how, seen), asked
    if late:  # asked for, only later: the names of that request are what a Java client reads
        look = replace(look, requests_client_cert=True, advertised_ca_names=late_names)
    for version, verdict in pinned.items():
        if look.requests_client_cert and _rejects_missing(verdict):
            observed[(Failure.NOT_SENT, version)] = answer_of(verdict)
    names = _java_decision(look, pki)
    pin = "1.2" if late and reached["1.2"] else None  # asked late: probe where the endpoint renegotiates
    if look.requests_client_cert:
        stacked = offered if offered is not None and pin is None else None  # the very connection it would make
        if stacked is None:
            with probe_identity(stack_probe()) as fingerprint:
                stacked = _connect(url, server_ca, pki, fingerprint, pin, timeout, ClientBehavior.OPENSSL)
        observed[(Failure.STACK_PROBE, _version(stacked, seen.tls_version))] = answer_of(stacked)
    stack_observed, stack_guess = _guess_stack(observed)
    trust = _check_trust(look, stack_guess, url, server_ca, pki, timeout, pin) if check_trust else []
    ready = _readiness(look, names, trust, check_trust)
    if late:
        ready = [_asked_too_late(r) for r in ready]
    identities = _same_chain([_try(url, server_ca, pki, identity, timeout) for identity in tries])
    report = ProbeReport(
        url,
        server_chain=look.server_chain,
        server_chain_valid=not chain_problem,
        server_chain_problem=chain_problem,
        tls12=reached["1.2"],
        tls13=reached["1.3"],
        ajo_default_version=seen.tls_version,
        requests_client_cert=look.requests_client_cert,
        without_cert=look.without_cert,
        refused_over_http=look.refused_over_http,
        asked_late=late,
        advertised_ca_names=look.advertised_ca_names,
        names_adobe_today=names.names_adobe_today,
        names_adobe_next=names.names_adobe_next,
        names_lab_stand_ins=names.names_lab_stand_ins,
        java_sends_certificate=names.java_sends_certificate,
        identities=identities,
        stack_observed=stack_observed,
        stack_guess=stack_guess,
        trust=trust,
        readiness=ready,
        first=first,
    )
    concluded = _verdict(report)
    return replace(
        report,
        configuration=concluded.configuration,
        enforcement=concluded.enforcement.value,
        likely_outcome=concluded.likely_outcome,
        fixes=concluded.fixes,
    )


def _connect(
    url: str,
    server_ca: str | None,
    pki: LabPaths | None,
    identity: ClientIdentity | None,
    tls: str | None,
    timeout: float,
    behavior: ClientBehavior = ClientBehavior.JAVA,
) -> Verdict:
    action = parse({"name": "mtls_lab_probe", "url": url, "method": "GET", "timeout": max(1, min(timeout, 30))})
    options = CallOptions(
        pki=pki, identity=identity, behavior=behavior, tls=tls, server_ca=server_ca, timeout=timeout, retries=0
    )
    return call(action, {}, options)


def answer_of(verdict: Verdict) -> str:
    """What the endpoint answered, in the measured table's words: "alert unknown_ca", "400 nginx_...", ..."""
    if verdict.outcome is Outcome.ACCEPTED:
        return "accepted"
    if verdict.alert:
        return short_answer(alert=verdict.alert)
    if verdict.status is not None:
        # the table's form when a reason code names the page; a bare status keeps "HTTP", as the probe has
        # always printed it (the probe's and the trust check's printed answers depend on it)
        return short_answer(verdict.status, reason=verdict.server_reason, bare_status=bool(verdict.server_reason))
    return str(verdict.outcome.value)


def _rejects_missing(verdict: Verdict) -> bool:
    """The endpoint refused a call without a certificate itself (not an app's 403 after an optional request)."""
    if verdict.outcome is Outcome.ACCEPTED:
        return False
    return bool(verdict.alert) or (verdict.status == 400 and verdict.server_reason == Reason.NGINX_NO_CERTIFICATE)


def _version(verdict: Verdict, default_version: str | None) -> str:
    version = verdict.tls_version or default_version or "TLSv1.3"
    return version.removeprefix("TLSv")


_OBSERVATIONS = {Failure.NOT_SENT: "no certificate", Failure.STACK_PROBE: "stack probe (expired, self-signed)"}


def _guess_stack(observed: dict[tuple[Failure, str], str]) -> tuple[dict[str, str], list[str]]:
    """The answers seen, in words, and the stacks consistent with every one of them."""
    seen = {f"{_OBSERVATIONS[f]}, TLS {tls}": answer for (f, tls), answer in observed.items()}
    return seen, [s.value for s in guess(observed)] if observed else []


def _check_trust(
    look: FirstLook,
    stack_guess: list[str],
    url: str,
    server_ca: str | None,
    pki: LabPaths | None,
    timeout: float,
    pin: str | None,
) -> list[TrustAnswer]:
    if not look.requests_client_cert:
        return [not_asked(h) for h in Hierarchy]
    answers: dict[Hierarchy, str] = {}
    for hierarchy in Hierarchy:
        with probe_identity(forge(hierarchy)) as chain:
            answers[hierarchy] = answer_of(_connect(url, server_ca, pki, chain, pin, timeout, ClientBehavior.OPENSSL))
    stacks = [Stack(s) for s in stack_guess]
    return [
        read(hierarchy, answer, stacks, [a for h, a in answers.items() if h is not hierarchy])
        for hierarchy, answer in answers.items()
    ]


def _readiness(look: FirstLook, names: NamesRead, trust: list[TrustAnswer], checked: bool) -> list[Readiness]:
    named = {Hierarchy.TODAY: names.names_adobe_today, Hierarchy.MIGRATION: names.names_adobe_next}
    by_hierarchy = {Hierarchy(t.hierarchy): t for t in trust}
    return [
        readiness(
            hierarchy,
            look.requests_client_cert,
            named[hierarchy],
            bool(look.advertised_ca_names),
            by_hierarchy.get(hierarchy) if checked else None,
        )
        for hierarchy in Hierarchy
    ]


_HELLO_REQUEST = ("HelloRequest", "handshake type 0")


def _late_request(verdict: Verdict, requested_in_handshake: bool) -> tuple[str, list[str]]:
    """How a request for the path made the endpoint ask for a certificate after the handshake (and the CA names
    it advertised then), or ("", []) if it did not."""
    server = _from_server(verdict)
    requests = [m for m in server if m["type"] == "CertificateRequest"]
    names: list[str] = requests[-1]["details"].get("ca_names", []) if requests else []
    if any(m.get("after_client_finished") for m in requests):
        return "a TLS 1.3 post-handshake CertificateRequest, RFC 8446 4.6.2", names
    renegotiated = any(m["type"] == "ClientHello" and m["details"].get("renegotiation") for m in verdict.handshake)
    if any(m["type"] in _HELLO_REQUEST for m in server) or renegotiated:
        return "a TLS 1.2 renegotiation: HelloRequest", names
    if requests and verdict.tls_version == "TLSv1.2" and verdict.alert and verdict.phase is Layer.AFTER_HANDSHAKE:
        # a TLS 1.2 rejection comes in the handshake; after it, on the request, it came from a renegotiation
        return "a TLS 1.2 renegotiation, after the handshake, on the request", names
    if requests and not requested_in_handshake and verdict.tls_version == "TLSv1.2":
        # the caller's trace keeps the last handshake: a request AJO's default handshake did not carry
        return "a TLS 1.2 renegotiation: a CertificateRequest AJO's default handshake did not carry", names
    if verdict.server_reason == POST_HANDSHAKE_REFUSED:
        return "post-handshake authentication on TLS 1.3, which the caller did not offer", names
    return "", []


def _asked_late(verdicts: tuple[Verdict, ...], requested_in_handshake: bool) -> tuple[str, list[str]]:
    """How requests for the path made the endpoint ask after the handshake (each way seen, in order), and the
    CA names of the first such request the probe saw (a 403 that says it could not ask carries none)."""
    hows: list[str] = []
    names: list[str] | None = None
    for verdict in verdicts:
        how, asked = _late_request(verdict, requested_in_handshake)
        if how and how not in hows:
            hows.append(how)
        if how and names is None and any(m["type"] == "CertificateRequest" for m in _from_server(verdict)):
            names = asked
    return "; ".join(hows), names or []


def _from_server(verdict: Verdict) -> list[dict[str, Any]]:
    return [m for m in verdict.handshake if m["direction"] == "server->caller"]


def _points_to_late_request(seen: Verdict, pinned: Iterable[Verdict]) -> bool:
    """AJO's default connection ended on TLS 1.3 without a CertificateRequest, none of the others saw one, and
    its answer points to a request after the handshake that a Java client cannot receive: Apache's 403 "Cannot
    perform Post-Handshake Authentication", or a bare 403 for the path (that page replaced by the server's own,
    or an app's). Then, and only then, a client offering post-handshake authentication is worth a connection."""
    if seen.tls_version != "TLSv1.3":
        return False
    if any(m["type"] == "CertificateRequest" for v in (seen, *pinned) for m in _from_server(v)):
        return False
    bare_403 = seen.status == 403 and seen.server_reason is None
    return seen.server_reason == POST_HANDSHAKE_REFUSED or bare_403


def _seen_when_offered(how: str, seen: Verdict) -> str:
    """The late request seen by a client that offers post-handshake authentication, and what AJO's got."""
    answer = f"HTTP 403 '{APACHE_NO_PHA}'" if seen.server_reason == POST_HANDSHAKE_REFUSED else f"HTTP {seen.status}"
    return (
        f"{how}, sent to the probe's client that offered post-handshake authentication, as curl does; "
        f"without it, as AJO's Java client, the answer was {answer}"
    )


def _asked_too_late(ready: Readiness) -> Readiness:
    """Asked only after the handshake: whatever else holds, AJO's Java client cannot answer on TLS 1.3."""
    why = (
        "the endpoint asks only after the handshake, for this path: AJO's Java client offers no post-handshake "
        "authentication, so on TLS 1.3 it cannot send its certificate"
    )
    step = "ask for the certificate in the handshake, at the virtual host (or on a host of its own for AJO's path)"
    said = f"{why}; {ready.why}" if ready.state is State.NOT_READY else why
    return replace(ready, state=State.NOT_READY, why=said, steps=(step, *ready.steps))


def _handshake_reached(verdict: Verdict) -> bool:
    """The server answered our ClientHello with a ServerHello of the version we offered."""
    return any(m["type"] == "ServerHello" for m in verdict.handshake) and verdict.alert != "protocol_version"


def _check_reachable(verdict: Verdict, url: str, timeout: float) -> None:
    if verdict.outcome is Outcome.TIMEOUT and not verdict.handshake[1:]:
        raise ProbeError(
            f"{url}: the endpoint accepted the connection but never answered the TLS handshake "
            f"within {timeout:g} s: check that this port serves TLS",
            ExitCode.TIMEOUT,
        )
    if any(m["type"] == "ServerHello" for m in verdict.handshake):
        return
    if verdict.phase is Layer.CONNECT:
        why = verdict.explanation.removeprefix("No TCP connection: ").split(". Nothing")[0]
        raise ProbeError(f"{url}: cannot connect ({why}): check the host name and port", ExitCode.CONNECTION)
    parts = urlsplit(url)
    first_bytes = _raw_answer(parts.hostname or "", parts.port or 443, timeout)
    if first_bytes.startswith(b"HTTP/"):
        raise ProbeError(
            f"{url}: this port speaks plain HTTP, not TLS ({first_bytes.splitlines()[0].decode()!r}): "
            "use the TLS port, or enable TLS on it",
            ExitCode.PLAIN_HTTP,
        )
    raise ProbeError(
        f"{url}: this port does not speak TLS (it answered {first_bytes[:24]!r}): check the port", ExitCode.NOT_TLS
    )


def _raw_answer(host: str, port: int, timeout: float) -> bytes:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"HEAD / HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n")
            return sock.recv(256)
    except OSError:
        return b""


def _read_handshake(verdict: Verdict) -> FirstLook:
    chain: list[dict[str, Any]] = []
    requested, names = False, []
    for message in verdict.handshake:
        if message["direction"] != "server->caller":
            continue
        if message["type"] == "Certificate":
            chain = message["details"].get("chain", [])
        if message["type"] == "CertificateRequest":
            requested, names = True, message["details"].get("ca_names", [])
    if verdict.alert:
        when = "in the handshake"
        if verdict.phase is Layer.AFTER_HANDSHAKE:
            renegotiated = verdict.tls_version == "TLSv1.2"
            when = "after the handshake, on the request (TLS 1.2)" if renegotiated else "after the handshake (TLS 1.3)"
        without = f"rejected {when} with alert {verdict.alert}"
    elif verdict.status is not None:
        without = f"handshake completes; {short_answer(verdict.status)} to GET"
    else:
        without = f"{verdict.outcome.value}: {verdict.explanation}"
    over_http = verdict.status == 400 and verdict.server_reason == Reason.NGINX_NO_CERTIFICATE
    return FirstLook(chain, requested, names, without, over_http)


def _java_decision(look: FirstLook, pki: LabPaths | None) -> NamesRead:
    names = look.advertised_ca_names
    today = any(_cn(n) in ADOBE_ISSUERS for n in names)
    following = any(_cn(n) in ADOBE_NEXT_ISSUERS for n in names)
    marked: list[str] = []
    if pki is not None:
        stand_ins = {_subject(pki, ca): real for ca, real in LAB_STAND_INS.items()}
        standing = [stand_ins[n] for n in names if n in stand_ins]
        marked = [f"lab stand-in for {real}" for real in standing]
        today |= any(real in ADOBE_ISSUERS for real in standing)
        following |= any(real in ADOBE_NEXT_ISSUERS for real in standing)
    return NamesRead(today, following, marked, look.requests_client_cert and (not names or today))


def _cn(name: str) -> str:
    first = name.split(",")[0]
    return first.removeprefix("CN=") if first.startswith("CN=") else ""


def _subject(pki: LabPaths, ca: CA) -> str:
    from mtls_lab.certs.inspect import load_pem_chain

    return load_pem_chain(pki.ca(ca))[0].subject.rfc4514_string()


def _try(
    url: str, server_ca: str | None, pki: LabPaths | None, identity: ClientIdentity, timeout: float
) -> IdentityTry:
    # sent whatever the endpoint advertises: the point is to see how it treats this certificate
    verdict = _connect(url, server_ca, pki, identity, None, timeout, ClientBehavior.OPENSSL)
    issuer = identity.leaf_facts().issuer
    cause = verdict.causes[0] if verdict.causes else ""
    if verdict.outcome is Outcome.ACCEPTED:
        return IdentityTry(identity.label, verdict.outcome.value, f"accepted (HTTP {verdict.status})", "-", "", issuer)
    if verdict.alert:
        answer = short_answer(alert=verdict.alert)
        return IdentityTry(identity.label, verdict.outcome.value, answer, "TLS", cause, issuer)
    if verdict.status is not None:
        answer = short_answer(verdict.status, reason=verdict.server_reason)
        return IdentityTry(identity.label, verdict.outcome.value, answer, "HTTP", cause, issuer)
    return IdentityTry(identity.label, verdict.outcome.value, verdict.explanation, "TLS", cause, issuer)


def _same_chain(tries: list[IdentityTry]) -> list[IdentityTry]:
    """A rejected certificate whose issuer the endpoint accepted for another: trust is not the cause."""
    accepted = {t.issuer: t.identity for t in tries if t.rejected_at == "-"}
    noted = []
    for attempt in tries:
        other = accepted.get(attempt.issuer)
        if attempt.rejected_at != "-" and other is not None:
            attempt = replace(
                attempt,
                note=f"the endpoint accepted {other}, from the same issuer, so it trusts that CA: it refused this "
                "certificate itself",
            )
        noted.append(attempt)
    return noted


def _enforcement(report: ProbeReport) -> Enforcement:
    if report.asked_late:
        return Enforcement.PATH
    if not report.requests_client_cert:
        return Enforcement.NEVER
    if report.without_cert.startswith("rejected"):
        return Enforcement.HANDSHAKE
    return Enforcement.HTTP if report.refused_over_http else Enforcement.OPTIONAL


def _how_to_require(report: ProbeReport) -> str:
    """The setting that requires the certificate in the handshake, for the stack the probe guessed."""
    stacks = [Stack(s) for s in report.stack_guess]
    said = list(dict.fromkeys(_REQUIRE[s] for s in stacks))
    return f" ({'; or '.join(said)})" if len(said) == 1 else ""


def _verdict(report: ProbeReport) -> Conclusion:
    fixes: list[str] = []
    enforcement = _enforcement(report)
    if enforcement is Enforcement.NEVER:
        likely = (
            "AJO's call carries NO certificate (the endpoint never asks for one). If the app "
            "expects Adobe's identity, it answers 403: the community question's case."
        )
        fixes.append(
            "Server side: require a client certificate (mTLS-only, as Adobe asks) and trust Adobe's chain "
            f"({', '.join(ADOBE_ISSUERS)}). See {DOCS}"
        )
    else:
        likely = _likely(report, enforcement)
        if enforcement is Enforcement.OPTIONAL:
            fixes.append(
                'Server side: Adobe asks for mTLS-only endpoints ("TLS protocols disabled and only mTLS '
                'enabled"): require the certificate instead of requesting it optionally'
                f"{_how_to_require(report)}. See {DOCS}"
            )
        if enforcement is Enforcement.PATH:
            fixes.append(
                "Server side: ask for the certificate in the handshake, for every path of the virtual host "
                "(Apache: SSLVerifyClient require in the <VirtualHost>, not inside a <Location>; Tomcat: "
                'certificateVerification="required" on the connector, not a CLIENT-CERT constraint alone), '
                "or give AJO's path a virtual host or port of its own that does. Limiting that host to TLS 1.2 "
                "makes the renegotiation work too, but it is the weaker fix: it gives up TLS 1.3, AJO's default, "
                "and relies on renegotiation, which TLS 1.3 removed and HTTP/2 forbids."
            )
        if not report.java_sends_certificate:
            fixes.append(
                "Server side: put Adobe's CA chain in the trust store the endpoint advertises (nginx: "
                f"ssl_client_certificate) so that its names include {ADOBE_ISSUERS[0]}, or advertise no "
                "names."
            )
        if report.advertised_ca_names and not report.names_adobe_next:
            fixes.append(
                "Before Adobe's CA migration (mid-2026 to spring 2027): add "
                f"{' and '.join(ADOBE_NEXT_ISSUERS)} to the trust store, or AJO will omit its new certificate."
            )
    for answer in report.trust:
        if answer.trust is Trust.NO:
            fixes.append(
                f"Server side: the endpoint does not trust {answer.root} (trust probe: {answer.answer}): add it and "
                "its intermediate to the trust store"
                + (" before Adobe's CA migration" if answer.hierarchy == Hierarchy.MIGRATION.value else "")
                + "."
            )
        elif answer.trust is Trust.ACCEPTS_ANY:
            fixes.append(f"Server side: {answer.reading}; verify client certificates at the TLS layer.")
    if not report.server_chain_valid:
        fixes.insert(
            0,
            "Server side: serve a certificate chain AJO can validate (public CA, full chain, right host "
            f"name): {report.server_chain_problem}",
        )
    if not (report.tls12 or report.tls13):
        fixes.append("Server side: enable TLS 1.3 (and TLS 1.2): AJO uses 1.3 by default and may fall back to 1.2.")
    return Conclusion(enforcement.configuration, enforcement, likely, fixes)


def _likely(report: ProbeReport, enforcement: Enforcement) -> str:
    if enforcement is Enforcement.PATH:
        fits = (
            "the endpoint names Adobe's issuer or none"
            if report.java_sends_certificate
            else "none of the names it advertises issued Adobe's chain"
        )
        if not report.tls12:
            then = (
                "The endpoint accepts no TLS 1.2, so no renegotiation can take its place: every AJO call to this "
                "path is refused. Asked in the handshake, AJO's client "
                + ("would send its certificate" if report.java_sends_certificate else "would still omit it")
            )
        elif report.java_sends_certificate:
            then = "On TLS 1.2 the renegotiation lets AJO's client send its certificate"
        else:
            then = "On TLS 1.2 the renegotiation comes too, but AJO omits its certificate"
        return (
            f"The handshake asks for nothing; a request for this path makes the endpoint ask: {report.asked_late}. "
            "On TLS 1.3, AJO's default, it would have to use post-handshake authentication, which a Java client "
            "such as AJO (JDK 17) does not offer: the endpoint cannot ask and refuses the call (Apache: HTTP 403 "
            "'Cannot perform Post-Handshake Authentication'; Tomcat: HTTP 401, its JSSE cannot ask after a TLS 1.3 "
            f"handshake). {then} ({fits})."
        )
    if report.java_sends_certificate:
        basis = "names none" if not report.advertised_ca_names else "names Adobe's issuer"
        today = next((t for t in report.trust if t.hierarchy == Hierarchy.TODAY.value), None)
        trust = (
            f"the trust check says: {today.trust.value} ({today.reading})"
            if today
            else "`--check-trust` tests that from outside"
        )
        return (
            f"AJO's call carries its certificate (the endpoint {basis}). It is accepted if the endpoint trusts "
            f"{ADOBE_ISSUERS[0]} ({trust}) and allows CN ajo-journeys.aep-mtls.adobe.com."
        )
    omits = "AJO omits its certificate (none of the advertised CA names issued Adobe's chain; Java model)"
    if enforcement is Enforcement.HANDSHAKE:
        return f"{omits}, so the handshake fails: handshake_failure on TLS 1.2, certificate_required on TLS 1.3."
    if enforcement is Enforcement.HTTP:
        return (
            f"{omits}; the handshake completes and the endpoint refuses the call itself (nginx: HTTP 400 'No "
            "required SSL certificate was sent')."
        )
    return f"{omits}; the handshake completes and an app that expects Adobe's identity answers 403."


def render(report: ProbeReport) -> str:
    """The report for people."""
    out = [f"probe of {report.url}", "", "server certificate:"]
    for index, cert in enumerate(report.server_chain):
        names = ", ".join(cert.get("dns_names", [])) or "-"
        out.append(
            f"  [{index}] {cert['subject']}  (issuer {cert['issuer']}; names {names}; expires {cert['not_after']})"
        )
    out.append(f"  validates: {'yes' if report.server_chain_valid else 'NO: ' + report.server_chain_problem}")
    versions = [v for v, ok in (("TLS 1.2", report.tls12), ("TLS 1.3", report.tls13)) if ok]
    out += [
        "",
        f"TLS versions accepted: {', '.join(versions) or 'none of 1.2 and 1.3'}; AJO's default "
        f"connects with {report.ajo_default_version or 'nothing'}",
    ]
    requested = "yes" if report.requests_client_cert else "no"
    if report.asked_late:
        requested = f"not in the handshake; for this path, after it: {report.asked_late}"
    out.append(f"client certificate requested: {requested}; without one: {report.without_cert}")
    names = "; ".join(report.advertised_ca_names) if report.advertised_ca_names else "none"
    out.append(f"advertised CA names: {names}")
    if report.requests_client_cert:
        out.append(
            f"  includes Adobe's current issuers: {'yes' if report.names_adobe_today else 'no'}; "
            f"the migration's: {'yes' if report.names_adobe_next else 'no'}"
            + (f"; lab stand-ins: {', '.join(report.names_lab_stand_ins)}" if report.names_lab_stand_ins else "")
        )
        out.append(
            f"  a Java client such as AJO will {'SEND' if report.java_sends_certificate else 'OMIT'} "
            "its certificate (model)"
        )
    out += _render_stack(report) + _render_trust(report)
    for attempt in report.identities:
        out.append(
            f"identity {attempt.identity}: {attempt.answer} (rejected at {attempt.rejected_at} level)"
            if attempt.rejected_at != "-"
            else f"identity {attempt.identity}: {attempt.answer}"
        )
        out += [f"  {line}" for line in (attempt.cause, attempt.note) if line]
    out += ["", f"VERDICT: {report.configuration} (client certificate {report.enforcement}). {report.likely_outcome}"]
    out += [f"  fix: {fix}" for fix in report.fixes] or ["  nothing to fix that the probe can see"]
    out += _render_readiness(report)
    return "\n".join(out)


def _render_stack(report: ProbeReport) -> list[str]:
    if not report.stack_observed:
        return []
    stacks = [Stack(s) for s in report.stack_guess]
    named = "; ".join(s.label for s in stacks) if stacks else describe([])
    if report.asked_late and Stack.OPENSSL in stacks:
        named += "; asking per path after the handshake, most likely Apache httpd (SSLVerifyClient in a <Location>)"
    elif report.asked_late and Stack.JAVA in stacks:
        named += "; asking per path after the handshake, most likely Tomcat or Spring (a CLIENT-CERT constraint)"
    seen = "; ".join(f"{what}: {answer}" for what, answer in report.stack_observed.items())
    return [f"server TLS stack (a guess from how it answers): {named}", f"  {seen}"]


def _render_trust(report: ProbeReport) -> list[str]:
    if not report.trust:
        return []
    out = ["trust check (probe chains under the real DigiCert roots, false by construction):"]
    for answer in report.trust:
        out.append(f"  trusts {answer.root}: {answer.trust.value} ({answer.answer}: {answer.reading})")
        if answer.look_in_log:
            out.append(f"    look in its log: {answer.look_in_log}")
    return out


def _render_readiness(report: ProbeReport) -> list[str]:
    out = ["", "READINESS per Adobe CA hierarchy:"]
    for ready in report.readiness:
        out.append(f"  {Hierarchy(ready.hierarchy).label} ({ready.chain}): {ready.state.value}: {ready.why}")
        out += [f"    to do: {step}" for step in ready.steps]
    if any(r.state is not State.NOT_READY for r in report.readiness):
        out.append(f"  still unknown: {report.readiness[0].still_unknown}")
    return out
