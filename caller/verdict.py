"""Verdicts: what happened to a call, in which layer, why, and what to change.

Classification happens in two functions driven by tables, ``classify_transport`` (no HTTP answer) and
``classify_response`` (an HTTP answer):
- ``TRANSPORT_TABLE`` maps what httpx raised (with the SSL error inside it) to an outcome and phase;
- a TLS alert is read facts first (``caller/causes.py``: what was sent, the certificate's dates and usages,
  the advertised names), then as evidence of the server's stack (``caller/stacks.py``, measured);
  ``ALERT_CAUSES`` covers what the certificate facts cannot explain;
- ``explain_http`` reads HTTP answers: nginx's 400 pages, gateway 401/403s, and the lab's reason codes.

``jo_status_code`` follows AJO's reporting: ``http_<code>`` for HTTP answers, ``timedout`` for
timeouts, and, inferred (AJO does not document it), ``internalError`` for TLS and connection failures.
"""

from __future__ import annotations

import enum
import json
import ssl
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import httpx

from mtls_lab.alerts import Alert, received_alert
from mtls_lab.caller.causes import CallFacts, Cause, Diagnosis, diagnose, known_bad
from mtls_lab.caller.journey_view import JourneyView
from mtls_lab.caller.stacks import Failure
from mtls_lab.caller.step_event import StepEvent
from mtls_lab.errors import ExitCode, cause_of
from mtls_lab.vocabulary import AdobeChain, Reason

if TYPE_CHECKING:  # caller/token.py builds on this module's Classification
    from mtls_lab.caller.token import TokenCall

__all__ = ["CallFacts"]  # CallFacts lives with the causes it feeds
JAVA_MODEL = "model: AJO's sender is a Java service; the lab reproduces how a JDK client picks its certificate"


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    HTTP_ERROR = "http_error"
    TLS_ALERT = "tls_alert"
    SERVER_UNTRUSTED = "server_untrusted"
    CONNECTION_ERROR = "connection_error"
    TIMEOUT = "timeout"

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT[self]


_EXIT = {
    Outcome.ACCEPTED: ExitCode.OK,
    Outcome.HTTP_ERROR: ExitCode.HTTP_ERROR,
    Outcome.TLS_ALERT: ExitCode.TLS_REJECTED,
    Outcome.SERVER_UNTRUSTED: ExitCode.SERVER_UNTRUSTED,
    Outcome.CONNECTION_ERROR: ExitCode.CONNECTION,
    Outcome.TIMEOUT: ExitCode.CONNECTION,
}


class Layer(enum.Enum):
    """The layer a call failed in (the JSON's ``phase``; not the Adobe CA migration's phases of mtls_lab/lifecycle)."""

    CONNECT = "connect"  # TCP: refused, unreachable, no such host
    HANDSHAKE = "handshake"
    AFTER_HANDSHAKE = "after_handshake"  # TLS 1.3: the server verifies the client after the client finished
    HTTP = "http"


@dataclass(frozen=True)
class Attempt:
    number: int
    outcome: str
    status: int | None
    alert: str | None
    error: str | None
    seconds: float
    local_port: int | None = None  # the caller's port of this attempt's last connection: finds it in a server's log


@dataclass
class Verdict:
    """One result per call."""

    outcome: Outcome
    phase: Layer
    alert: str | None
    status: int | None
    tls_version: str | None
    client_cert_sent: bool | None
    jo_status_code: str
    explanation: str
    fix: str
    attempts: list[Attempt] = field(default_factory=list)
    url: str = ""
    identity: str | None = None
    client_behavior: str = "java"
    server_requested_cert: bool | None = None
    # the server asked for the certificate after the handshake, for the path (renegotiation or TLS 1.3 PHA)
    requested_after_handshake: bool = False
    offered_post_handshake_auth: bool | None = None  # our ClientHello offered TLS 1.3 post-handshake auth
    advertised_ca_names: list[str] = field(default_factory=list)
    server_reason: str | None = None
    model_note: str = JAVA_MODEL
    warnings: list[str] = field(default_factory=list)
    handshake: list[dict[str, Any]] = field(default_factory=list)
    request_line: str = ""
    rejection_style: str | None = None
    certificate_choice: str = ""
    causes: list[str] = field(default_factory=list)  # facts first: every cause still open, most likely first
    stack_evidence: str = ""  # the server's answer read as evidence of its TLS stack
    tell_apart: str = ""  # a command or log line that separates the open causes
    likely_cause: str | None = None  # machine-readable first cause: "not_sent", "expired", "expired_clock", ...
    # the custom authorization's token call (caller/token.py), and which call failed: "token" or "action"
    token_call: TokenCall | None = None
    failed_call: str | None = None
    # what AJO's journey step event would record (caller/step_event.py): actionExecError and the rest
    step_event: StepEvent = field(default_factory=StepEvent)
    # the journey's view (caller/journey_view.py): its error branch, and the step event's other action fields
    journey: JourneyView | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["phase"] = self.phase.value
        data.update(self.step_event.to_json())
        del data["step_event"]
        data["journey"] = self.journey.to_json() if self.journey else None
        return data


@dataclass(frozen=True)
class Classification:
    outcome: Outcome
    phase: Layer
    alert: Alert | None
    explanation: str
    fix: str
    status: int | None = None
    server_reason: str | None = None
    causes: tuple[str, ...] = ()  # every cause the facts leave open, most likely first
    stack_evidence: str = ""  # what the answer says about the server's TLS stack
    tell_apart: str = ""  # how to tell the causes apart, when several are open
    likely_cause: str | None = None  # the first cause's Failure name ("not_sent", "expired", ...)

    @classmethod
    def diagnosed(
        cls, outcome: Outcome, phase: Layer, alert: Alert | None, found: Diagnosis, **http: Any
    ) -> Classification:
        return cls(
            outcome,
            phase,
            alert,
            found.explanation,
            found.fix,
            causes=tuple(c.why for c in found.causes),
            stack_evidence=found.evidence,
            tell_apart=found.tell_apart,
            likely_cause=found.causes[0].failure.name.lower() + ("_clock" if found.causes[0].clock else ""),
            **http,
        )


# --- transport errors ---------------------------------------------------------------------------

# (httpx exception type, handshake completed?) -> outcome and phase when no alert was received
TRANSPORT_TABLE: dict[tuple[type[httpx.TransportError], bool], tuple[Outcome, Layer]] = {
    (httpx.ConnectTimeout, False): (Outcome.TIMEOUT, Layer.HANDSHAKE),
    (httpx.ConnectTimeout, True): (Outcome.TIMEOUT, Layer.HANDSHAKE),
    (httpx.ReadTimeout, False): (Outcome.TIMEOUT, Layer.HTTP),
    (httpx.ReadTimeout, True): (Outcome.TIMEOUT, Layer.HTTP),
    (httpx.WriteTimeout, False): (Outcome.TIMEOUT, Layer.HTTP),
    (httpx.WriteTimeout, True): (Outcome.TIMEOUT, Layer.HTTP),
    (httpx.PoolTimeout, False): (Outcome.TIMEOUT, Layer.CONNECT),
    (httpx.PoolTimeout, True): (Outcome.TIMEOUT, Layer.CONNECT),
    (httpx.ConnectError, False): (Outcome.CONNECTION_ERROR, Layer.HANDSHAKE),
    (httpx.ConnectError, True): (Outcome.CONNECTION_ERROR, Layer.AFTER_HANDSHAKE),
    (httpx.ReadError, False): (Outcome.CONNECTION_ERROR, Layer.HANDSHAKE),
    (httpx.ReadError, True): (Outcome.CONNECTION_ERROR, Layer.AFTER_HANDSHAKE),
    (httpx.WriteError, False): (Outcome.CONNECTION_ERROR, Layer.HANDSHAKE),
    (httpx.WriteError, True): (Outcome.CONNECTION_ERROR, Layer.AFTER_HANDSHAKE),
    (httpx.CloseError, False): (Outcome.CONNECTION_ERROR, Layer.HTTP),
    (httpx.CloseError, True): (Outcome.CONNECTION_ERROR, Layer.HTTP),
    (httpx.RemoteProtocolError, False): (Outcome.CONNECTION_ERROR, Layer.HTTP),
    (httpx.RemoteProtocolError, True): (Outcome.CONNECTION_ERROR, Layer.AFTER_HANDSHAKE),
    (httpx.LocalProtocolError, False): (Outcome.CONNECTION_ERROR, Layer.HTTP),
    (httpx.LocalProtocolError, True): (Outcome.CONNECTION_ERROR, Layer.HTTP),
    (httpx.ProxyError, False): (Outcome.CONNECTION_ERROR, Layer.CONNECT),
    (httpx.ProxyError, True): (Outcome.CONNECTION_ERROR, Layer.CONNECT),
    (httpx.UnsupportedProtocol, False): (Outcome.CONNECTION_ERROR, Layer.CONNECT),
    (httpx.UnsupportedProtocol, True): (Outcome.CONNECTION_ERROR, Layer.CONNECT),
}


def classify_transport(exc: httpx.TransportError, facts: CallFacts) -> Classification:
    """Classify an exception raised while calling; never raises."""
    verify_error = cause_of(exc, ssl.SSLCertVerificationError)
    if verify_error is not None:
        return Classification(
            Outcome.SERVER_UNTRUSTED,
            Layer.HANDSHAKE,
            None,
            f"The caller rejected the endpoint's certificate: {verify_error.verify_message}. AJO verifies the "
            "server too: the endpoint must present a chain from a public CA, valid for its host name.",
            "Server side: install a certificate for the host name from a publicly trusted CA, with its full "
            "chain. In the lab, point --server-ca at the CA that issued the server's certificate.",
        )
    alert = received_alert(exc)
    if alert is not None:
        phase = Layer.AFTER_HANDSHAKE if facts.handshake_done else Layer.HANDSHAKE
        found = diagnose_alert(alert, facts)
        if found is not None:
            return Classification.diagnosed(Outcome.TLS_ALERT, phase, alert, found)
        explanation, fix = explain_alert(alert, facts)
        return Classification(Outcome.TLS_ALERT, phase, alert, explanation, fix)
    outcome, phase = _table_lookup(exc, facts.handshake_done)
    if outcome is Outcome.TIMEOUT:
        return Classification(
            outcome,
            phase,
            None,
            "The endpoint did not answer within the journey's timeout. AJO cancels the call and "
            "does not retry a first call that timed out.",
            "Server side: answer faster than the timeout (1 to 30 s, set on the journey).",
        )
    if cause_of(exc, ConnectionRefusedError) is not None or phase is Layer.CONNECT:
        return Classification(
            Outcome.CONNECTION_ERROR,
            Layer.CONNECT,
            None,
            f"No TCP connection: {_short(exc)}. Nothing listens there, or a firewall blocks it.",
            "Server side: check the URL's host and port, and that the endpoint is reachable "
            "from the internet (AJO calls from Adobe's cloud).",
        )
    return _closed_without_alert(exc, facts, phase)


def _closed_without_alert(exc: Exception, facts: CallFacts, phase: Layer) -> Classification:
    why = f"The endpoint closed the connection without a TLS alert ({_short(exc)})."
    if facts.cert_requested and not facts.cert_sent:
        why += (
            " It had requested a client certificate and none was sent, so it most likely required one and "
            "rejected the call silently, as asyncio/uvicorn servers do (CPython gh-98078) and some proxies."
        )
        _, fix = explain_alert(Alert.CERTIFICATE_REQUIRED, facts)
        return Classification(Outcome.CONNECTION_ERROR, phase, None, why, fix)
    bad = known_bad(facts)
    if bad is not None:
        return Classification(
            Outcome.CONNECTION_ERROR,
            phase,
            None,
            why + f" It had received the client certificate, and {_unfit(bad)}: {bad.why} "
            "That is the likely cause: a server that drops its alerts (asyncio/uvicorn, CPython gh-98078) "
            "closes like this when it rejects the certificate.",
            bad.fix,
            causes=(bad.why,),
            tell_apart=bad.check,
            likely_cause=bad.failure.name.lower(),
        )
    if facts.cert_sent:
        why += (
            " It had received the client certificate: a server that drops its alerts (asyncio/uvicorn, "
            "CPython gh-98078) closes like this when it rejects the certificate."
        )
        return Classification(
            Outcome.CONNECTION_ERROR,
            phase,
            None,
            why,
            f"Server side: check its TLS log for the certificate error; trust Adobe's chain ({AdobeChain.TODAY}).",
        )
    return Classification(
        Outcome.CONNECTION_ERROR,
        phase,
        None,
        why,
        "Server side: check the endpoint's logs; make sure it speaks TLS on this port.",
    )


def _unfit(bad: Cause) -> str:
    """What the caller's facts say of the certificate it sent: unfit itself, or named by none of the CA names."""
    if bad.failure is Failure.UNTRUSTED:
        return "its own CA names point to the cause"
    return "the certificate the caller sent is known to be unfit"


def _table_lookup(exc: httpx.TransportError, handshake_done: bool) -> tuple[Outcome, Layer]:
    for cls in type(exc).__mro__:
        if (cls, handshake_done) in TRANSPORT_TABLE:
            return TRANSPORT_TABLE[(cls, handshake_done)]
    return Outcome.CONNECTION_ERROR, Layer.HANDSHAKE


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


# --- TLS alerts ---------------------------------------------------------------------------------


# Alerts that are about the client certificate: read facts first (caller/causes.py).
CERTIFICATE_ALERTS = frozenset(
    {
        Alert.HANDSHAKE_FAILURE,
        Alert.CERTIFICATE_REQUIRED,
        Alert.BAD_CERTIFICATE,
        Alert.UNSUPPORTED_CERTIFICATE,
        Alert.CERTIFICATE_EXPIRED,
        Alert.CERTIFICATE_UNKNOWN,
        Alert.UNKNOWN_CA,
        Alert.DECRYPT_ERROR,
    }
)


def diagnose_alert(alert: Alert, facts: CallFacts) -> Diagnosis | None:
    """The causes of a certificate alert, from the facts, with the alert as evidence of the stack."""
    if alert not in CERTIFICATE_ALERTS:
        return None
    return diagnose(f"alert {alert.label}", facts)


def explain_alert(alert: Alert, facts: CallFacts) -> tuple[str, str]:
    """The cause and fix of an alert: the facts-first diagnosis, or else what the alert says on its own."""
    found = diagnose_alert(alert, facts)
    if found is not None:
        return found.explanation, found.fix
    cause = ALERT_CAUSES.get(alert)
    if cause is None:
        return (
            f"The endpoint aborted the TLS connection with alert {alert.label}.",
            "Server side: read the endpoint's TLS error log for this alert.",
        )
    return cause(facts)


def _rejected(f: CallFacts) -> tuple[str, str]:
    return (
        "The endpoint rejected the client certificate, and nothing the caller knows about it explains why.",
        "Server side: the endpoint's TLS error log names the check that failed.",
    )


def _handshake_failure(f: CallFacts) -> tuple[str, str]:
    return (
        "The endpoint aborted the handshake (alert handshake_failure) although the client certificate was sent: "
        "no cipher suite or signature algorithm in common, or a policy of the endpoint.",
        "Server side: the endpoint's TLS error log names the reason; enable TLS 1.2 and 1.3 with common ciphers.",
    )


def _unsupported(f: CallFacts) -> tuple[str, str]:
    return (
        "The endpoint rejected the certificate's purpose (alert unsupported_certificate): it wants an extended "
        "key usage or key usage the certificate does not have.",
        "Caller side: use a certificate with clientAuth. Adobe's carries it (the migration's is clientAuth only).",
    )


def _protocol_version(f: CallFacts) -> tuple[str, str]:
    return (
        "Client and endpoint share no TLS version (alert protocol_version). AJO uses TLS 1.3 by default and "
        "may fall back to TLS 1.2; neither version is needed for mTLS itself.",
        "Server side: enable TLS 1.3 (and keep TLS 1.2): mTLS works on both.",
    )


def _access_denied(f: CallFacts) -> tuple[str, str]:
    return (
        "The endpoint denied access at the TLS layer (alert access_denied).",
        "Server side: check the endpoint's client-certificate policy.",
    )


# What an alert says when the certificate facts explain nothing (the alerts of docs/ground-truth.md included).
ALERT_CAUSES: dict[Alert, Callable[[CallFacts], tuple[str, str]]] = {
    Alert.UNKNOWN_CA: _rejected,
    Alert.HANDSHAKE_FAILURE: _handshake_failure,
    Alert.CERTIFICATE_REQUIRED: _rejected,
    Alert.CERTIFICATE_EXPIRED: _rejected,
    Alert.BAD_CERTIFICATE: _rejected,
    Alert.UNSUPPORTED_CERTIFICATE: _unsupported,
    Alert.PROTOCOL_VERSION: _protocol_version,
    Alert.CERTIFICATE_UNKNOWN: _rejected,
    Alert.DECRYPT_ERROR: _rejected,
    Alert.ACCESS_DENIED: _access_denied,
}

# --- HTTP answers -------------------------------------------------------------------------------

NGINX_NO_CERT = "400 No required SSL certificate was sent"
NGINX_BAD_CERT = "400 The SSL certificate error"
# Apache's 403 when a <Location>/<Directory> SSLVerifyClient needs TLS 1.3 post-handshake authentication and
# the client did not offer it (mod_ssl; its error log: "AH10158: cannot perform post-handshake authentication")
APACHE_NO_PHA = "Cannot perform Post-Handshake Authentication"
POST_HANDSHAKE_REFUSED = Reason.APACHE_POST_HANDSHAKE_AUTH
# Tomcat's 401 when a CLIENT-CERT constraint protects the URL and no certificate came (measured with Tomcat 10.1
# and a JDK 17 client, docs/server-stacks.md): on TLS 1.3 its JSSE cannot ask after the handshake at all
TOMCAT_NO_CERT = "No client certificate chain in this request"
TOMCAT_PER_URL = "tomcat_client_cert_constraint"
ASKED_LATE_REASONS = (POST_HANDSHAKE_REFUSED, TOMCAT_PER_URL)  # answers that mean "asked after the handshake"

LAB_REASONS: dict[str, str] = {
    Reason.NO_CLIENT_CERTIFICATE: "Server side: require and verify client certificates at the TLS layer, trusting "
    f"Adobe's chain ({AdobeChain.TODAY}); Adobe asks for mTLS-only endpoints.",
    Reason.SUBJECT_NOT_ALLOWED: "Server side: allow Adobe's identity by its SAN ajo-journeys.aep-mtls.adobe.com "
    "(matched before the CN, RFC 2818), or authenticate AJO another way (custom or certificate-based authentication).",
    Reason.FINGERPRINT_NOT_PINNED: f"Server side: do not pin Adobe's leaf; trust the CA chain ({AdobeChain.TODAY}).",
    Reason.CLIENT_CERT_NOT_FORWARDED: "Proxy side: forward the verified client certificate to the app in the header it "
    "reads (nginx $ssl_client_escaped_cert, Envoy x-forwarded-client-cert, AWS ALB X-Amzn-Mtls-Clientcert).",
    Reason.TOKEN_MISSING: "Caller side: configure the action's authentication so that AJO sends a token.",
    Reason.TOKEN_INVALID: "Caller side: send a token from the token endpoint this API trusts.",
}
KONG = {
    "No required TLS certificate was sent": "kong_no_certificate",
    "TLS certificate failed verification": "kong_certificate_failed",
}


def classify_response(response: httpx.Response, facts: CallFacts) -> Classification:
    status = response.status_code
    if 200 <= status < 300:
        who = "with" if facts.cert_sent else "without"
        return Classification(
            Outcome.ACCEPTED,
            Layer.HTTP,
            None,
            f"The endpoint accepted the call (HTTP {status}), {who} a client certificate.",
            "Nothing to fix."
            if facts.cert_sent or not facts.cert_requested
            else "Nothing failed, but the endpoint accepted a call without a client certificate.",
            status=status,
        )
    explanation, fix, reason = explain_http(status, response.text, facts)
    page = PAGE_EVIDENCE.get(reason or "")
    if page is not None and facts.cert_sent:
        found = diagnose("", facts, same_for_all=page[0])
        if found is not None:
            return replace(
                Classification.diagnosed(
                    Outcome.HTTP_ERROR, Layer.HTTP, None, found, status=status, server_reason=reason
                ),
                explanation=f"{explanation} {found.causes[0].why}"
                + (f" Less likely: {'; '.join(c.why for c in found.causes[1:])}" if found.causes[1:] else ""),
                fix=f"{found.fix} {page[1]}".strip(),
            )
    bad = known_bad(facts) if reason is None and status in (401, 403) else None
    if bad is not None:  # a bare 401/403 (the app's own body): the caller's facts name the likely cause
        return Classification(
            Outcome.HTTP_ERROR,
            Layer.HTTP,
            None,
            f"HTTP {status}: the endpoint refused the call, and {_unfit(bad)}: {bad.why} That is the likely cause; "
            "the endpoint's own log names its check.",
            bad.fix,
            status=status,
            causes=(bad.why,),
            tell_apart=bad.check,
            likely_cause=bad.failure.name.lower(),
        )
    missing = "not_sent" if reason in NO_CERTIFICATE_REASONS and not facts.cert_sent else None
    return Classification(
        Outcome.HTTP_ERROR,
        Layer.HTTP,
        None,
        explanation,
        fix,
        status=status,
        server_reason=reason,
        likely_cause=missing,
    )


NO_CERTIFICATE_REASONS = frozenset(
    {Reason.NGINX_NO_CERTIFICATE, Reason.NO_CLIENT_CERTIFICATE, "kong_no_certificate", "gateway_forbidden"}
)

# Answers that are the same for every certificate failure: the facts alone name the cause; the page or the
# gateway's log names the check. (reason code -> (evidence, where the fix goes on that system))
PAGE_EVIDENCE = {
    Reason.NGINX_CERTIFICATE_ERROR: (
        "nginx answers every failed verification with this page; its error log names the check: "
        "'client SSL certificate verify error: (N:reason)'.",
        "(nginx: ssl_client_certificate holds the trusted CAs.)",
    ),
    "gateway_forbidden": (
        "A gateway answers every failed verification with this 403; its access log names the reason.",
        "(The gateway's mTLS truststore holds the trusted CAs.)",
    ),
    "kong_certificate_failed": (
        "Kong answers every failed verification with this 401; its error log names the reason.",
        "(Kong: the mtls-auth plugin's ca_certificates.)",
    ),
}


def explain_http(status: int, body: str, facts: CallFacts) -> tuple[str, str, str | None]:
    """Cause, fix and reason code of an HTTP error answer."""
    data = _json(body)
    reason = data.get("reason") if isinstance(data.get("reason"), str) else None
    if reason in LAB_REASONS:
        message = str(data.get("message", ""))
        return f"HTTP {status} {reason}: {message}", str(data.get("fix") or LAB_REASONS[reason]), reason
    if status == 400 and NGINX_NO_CERT in body:
        return (
            f"nginx answered '{NGINX_NO_CERT}': it requires a client certificate (ssl_verify_client on) and "
            "none was sent." + _why_not_sent(facts),
            "Server side: make nginx advertise Adobe's CA (ssl_client_certificate with Adobe's chain).",
            Reason.NGINX_NO_CERTIFICATE,
        )
    if status == 400 and NGINX_BAD_CERT in body:
        return (
            f"nginx answered '{NGINX_BAD_CERT}': the client certificate failed verification (untrusted CA, "
            "expired or wrong purpose); nginx reports it as HTTP 400, not as a TLS alert.",
            f"Server side: put Adobe's chain ({AdobeChain.TODAY}) in ssl_client_certificate.",
            Reason.NGINX_CERTIFICATE_ERROR,
        )
    if status == 403 and APACHE_NO_PHA in body:
        return _post_handshake_refused(facts)
    if status == 403 and data.get("message") == "Forbidden":
        return _gateway(data, facts)
    if status == 401 and TOMCAT_NO_CERT in body:
        return _tomcat_per_url(facts)
    if status == 401 and any(text in body for text in KONG):
        code = next(code for text, code in KONG.items() if text in body)
        return (
            f"A gateway (Kong's mtls-auth style) answered 401 ({code}): "
            + (
                "no client certificate was sent." + _why_not_sent(facts)
                if not facts.cert_sent
                else "the certificate failed its verification (untrusted CA or expired)."
            ),
            f"Server side: add Adobe's chain ({AdobeChain.TODAY}) to the gateway's CA certificates.",
            code,
        )
    if status == 403:
        return (
            "HTTP 403: the endpoint refused the caller's identity. "
            + (
                "No client certificate was sent." + _why_not_sent(facts)
                if not facts.cert_sent
                else "A certificate was sent; the endpoint (or a gateway in front of it) did not trust or authorize it."
            ),
            "Server side: trust Adobe's chain at the TLS terminator and authorize CN "
            "ajo-journeys.aep-mtls.adobe.com; if a proxy terminates TLS, forward the certificate to the app.",
            None,
        )
    if status == 401:
        return (
            "HTTP 401: the endpoint (often an API gateway such as Kong) wants credentials: a client "
            "certificate it accepts, or the action's authentication.",
            "Server side: check the gateway's mTLS settings; caller side: check the action's authentication.",
            None,
        )
    return (f"The endpoint answered HTTP {status}.", "Server side: check the endpoint's application logs.", None)


# The fixes of a per-path request for the certificate, with their trade-offs (Apache's terms; any server
# that asks after the handshake for some paths only: Tomcat's CLIENT-CERT constraint, IIS per application).
PER_PATH_FIX = (
    "Server side: ask for the certificate in the handshake: SSLVerifyClient require (with Adobe's chain in "
    "SSLCACertificateFile) at the virtual host, so every path of that host requires it; or give AJO's path a "
    "virtual host (a name or port) of its own that requires it in the handshake, leaving the other paths as "
    "they are. Limiting that host to TLS 1.2 (SSLProtocol -all +TLSv1.2) also works, because Apache then "
    "renegotiates and a Java client answers, but it is the weaker fix: the host loses TLS 1.3 for every "
    "caller, and it depends on renegotiation, which TLS 1.3 removed and which proxies and clients may refuse."
)


def _post_handshake_refused(facts: CallFacts) -> tuple[str, str, str | None]:
    """Apache's 403: the path asks for the certificate after the handshake, the client did not offer PHA."""
    who = (
        "a Java client such as AJO's sender (JDK 17) does not offer it, so it cannot answer on TLS 1.3"
        if facts.behavior == "java"
        else (
            "this client did not offer it"
            if not facts.offered_post_handshake_auth
            else "this client offered it, yet Apache could not use it"
        )
    )
    return (
        f"Apache answered 403 '{APACHE_NO_PHA}': the endpoint asks for the client certificate after the "
        "handshake, for this path only (SSLVerifyClient require inside <Location> or <Directory>), so the "
        "handshake itself requested none. On TLS 1.3 asking later is post-handshake authentication (RFC 8446 "
        f"4.6.2), which a client must offer in its ClientHello (post_handshake_auth); {who}. The same call on "
        "TLS 1.2 is accepted: Apache renegotiates and the client sends its certificate. Apache's error log "
        "says 'AH10158: cannot perform post-handshake authentication'.",
        PER_PATH_FIX,
        POST_HANDSHAKE_REFUSED,
    )


TOMCAT_PER_URL_FIX = (
    'Server side: ask for the certificate in the handshake: certificateVerification="required" on the connector '
    "(with Adobe's chain in its truststore), so every URL of that connector requires it; or give AJO's path a "
    'connector (a port) of its own that requires it. Limiting that connector to TLS 1.2 (protocols="TLSv1.2") '
    "also works, because Tomcat then renegotiates and a Java client answers, but it is the weaker fix: the "
    "connector loses TLS 1.3 for every caller, and it depends on renegotiation, which TLS 1.3 removed."
)


def _tomcat_per_url(facts: CallFacts) -> tuple[str, str, str | None]:
    """Tomcat's 401: a CLIENT-CERT constraint on this URL, the connector asking nothing in the handshake."""
    head = (
        f"Tomcat answered 401 '{TOMCAT_NO_CERT}': a CLIENT-CERT login with a security constraint protects this URL "
        "(web.xml) while the connector asks for nothing in the handshake, so Tomcat asks after it, when a request "
        "for the URL arrives."
    )
    if facts.tls_version == "TLSv1.3":
        why = (
            " On TLS 1.3 Tomcat's JSSE cannot ask after the handshake at all, whatever the client offers "
            "(post-handshake authentication included), so every TLS 1.3 call to this URL gets this 401 (measured "
            "with Tomcat 10.1, a JDK 17 client and an OpenSSL client that offers it). The same call on TLS 1.2 is "
            "accepted: Tomcat renegotiates and a Java client sends its certificate."
        )
    else:
        why = " It renegotiated and got no certificate." + _why_not_sent(facts)
    return head + why, TOMCAT_PER_URL_FIX, TOMCAT_PER_URL


def _gateway(data: dict[str, Any], facts: CallFacts) -> tuple[str, str, str | None]:
    """AWS API Gateway / Cloudflare: 403 {"message":"Forbidden"} before the app, whatever the cause."""
    found = data.get("mtls_lab")
    extra: dict[str, Any] = found if isinstance(found, dict) else {}
    if not facts.cert_sent:
        cause = "no client certificate was sent." + _why_not_sent(facts)
    else:
        detail = f" ({extra.get('ssl_client_verify')})" if extra.get("ssl_client_verify") else ""
        cause = f"the certificate was sent but failed the gateway's truststore check{detail}."
    return (
        "A gateway in front of the app (AWS API Gateway or Cloudflare style) answered 403 Forbidden before the "
        f"app saw the call: {cause} The gateway's access log names the reason.",
        f"Server side: put Adobe's chain ({AdobeChain.TODAY}) in the gateway's mTLS truststore; for AWS API Gateway, "
        "the truststore in S3 of the custom domain.",
        "gateway_forbidden",
    )


def rejection_style(outcome: Outcome, alert: str | None, status: int | None, reason: str | None) -> str | None:
    """Which face the rejection had: a TLS alert, an nginx page, a gateway, a proxy, the app, or a bare close."""
    if outcome is Outcome.ACCEPTED:
        return None
    if alert:
        return "tls_alert"
    if reason and reason.startswith("nginx_"):
        return "nginx_400"
    if reason == "gateway_forbidden":
        return "gateway_403"
    if reason and reason.startswith("kong_"):
        return "gateway_401"
    if reason == Reason.CLIENT_CERT_NOT_FORWARDED:
        return "proxy_header_missing"
    if reason == POST_HANDSHAKE_REFUSED:
        return "http_403"
    if reason == TOMCAT_PER_URL:
        return "http_401"
    if status is not None:
        return f"http_{status}"
    return "closed_without_alert" if outcome is Outcome.CONNECTION_ERROR else outcome.value


def _why_not_sent(facts: CallFacts) -> str:
    if not facts.cert_requested:
        return " The TLS layer never requested one, and AJO sends its certificate only when asked."
    if facts.identity is None:
        return " The caller had no identity."
    if not facts.cert_sent and facts.behavior == "java":
        names = "; ".join(facts.advertised) or "no names"
        return (
            " The server requested one, but a Java client such as AJO omits its certificate when none of the "
            f"advertised CA names issued its chain; advertised: {names}."
        )
    return ""


def _json(body: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def jo_status_code(outcome: Outcome, status: int | None) -> str:
    """The ``jo_status_code`` AJO would record (internalError for TLS failures is inferred)."""
    if status is not None:
        return f"http_{status}"
    return "timedout" if outcome is Outcome.TIMEOUT else "internalError"
