"""Verdicts: what happened to a call, in which layer, why, and what to change.

Classification happens in one place, ``classify``, driven by tables:
- ``TRANSPORT_TABLE`` maps what httpx raised (with the SSL error inside it) to an outcome and phase;
- ``ALERT_CAUSES`` maps each TLS alert of docs/ground-truth.md to its cause and fix;
- ``explain_http`` reads HTTP answers: nginx's 400 pages, gateway 401/403s, and the lab's reason codes.

``jo_status_code`` follows AJO's reporting: ``http_<code>`` for HTTP answers, ``timedout`` for
timeouts, and, inferred (AJO does not document it), ``internalError`` for TLS and connection failures.
"""

from __future__ import annotations

import enum
import json
import ssl
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from mtls_lab.alerts import Alert, received_alert
from mtls_lab.caller.step_event import StepEvent
from mtls_lab.errors import ExitCode, cause_of

ADOBE_CHAIN = "DigiCert Global Root G2 and the intermediate DigiCert Global G2 TLS RSA SHA256 2020 CA1"
NEXT_CHAIN = "DigiCert Assured ID Root G2 and DigiCert Assured ID Client CA G2"
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


class Phase(enum.Enum):
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
    phase: Phase
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
    advertised_ca_names: list[str] = field(default_factory=list)
    server_reason: str | None = None
    model_note: str = JAVA_MODEL
    warnings: list[str] = field(default_factory=list)
    handshake: list[dict[str, Any]] = field(default_factory=list)
    request_line: str = ""
    rejection_style: str | None = None
    certificate_choice: str = ""
    # the custom authorization's token call (caller/token.py), and which call failed: "token" or "action"
    token_call: dict[str, Any] | None = None
    failed_call: str | None = None
    # what AJO's journey step event would record (caller/step_event.py): actionExecError and the rest
    step_event: StepEvent = field(default_factory=StepEvent)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["phase"] = self.phase.value
        data.update(self.step_event.to_json())
        del data["step_event"]
        return data


@dataclass(frozen=True)
class CallFacts:
    """What the caller knows beyond the exception or response: used to explain a failure."""

    tls: str | None
    handshake_done: bool
    tls_version: str | None
    identity: str | None
    chain_leaf_only: bool
    behavior: str
    cert_requested: bool
    cert_sent: bool
    advertised: list[str]
    leaf_expired: bool = False
    leaf_not_yet_valid: bool = False
    leaf_lacks_client_auth: bool = False
    leaf_issuer: str = ""
    leaf_self_signed: bool = False


@dataclass(frozen=True)
class Classification:
    outcome: Outcome
    phase: Phase
    alert: Alert | None
    explanation: str
    fix: str
    status: int | None = None
    server_reason: str | None = None


# --- transport errors ---------------------------------------------------------------------------

# (httpx exception type, handshake completed?) -> outcome and phase when no alert was received
TRANSPORT_TABLE: dict[tuple[type[httpx.TransportError], bool], tuple[Outcome, Phase]] = {
    (httpx.ConnectTimeout, False): (Outcome.TIMEOUT, Phase.HANDSHAKE),
    (httpx.ConnectTimeout, True): (Outcome.TIMEOUT, Phase.HANDSHAKE),
    (httpx.ReadTimeout, False): (Outcome.TIMEOUT, Phase.HTTP),
    (httpx.ReadTimeout, True): (Outcome.TIMEOUT, Phase.HTTP),
    (httpx.WriteTimeout, False): (Outcome.TIMEOUT, Phase.HTTP),
    (httpx.WriteTimeout, True): (Outcome.TIMEOUT, Phase.HTTP),
    (httpx.PoolTimeout, False): (Outcome.TIMEOUT, Phase.CONNECT),
    (httpx.PoolTimeout, True): (Outcome.TIMEOUT, Phase.CONNECT),
    (httpx.ConnectError, False): (Outcome.CONNECTION_ERROR, Phase.HANDSHAKE),
    (httpx.ConnectError, True): (Outcome.CONNECTION_ERROR, Phase.AFTER_HANDSHAKE),
    (httpx.ReadError, False): (Outcome.CONNECTION_ERROR, Phase.HANDSHAKE),
    (httpx.ReadError, True): (Outcome.CONNECTION_ERROR, Phase.AFTER_HANDSHAKE),
    (httpx.WriteError, False): (Outcome.CONNECTION_ERROR, Phase.HANDSHAKE),
    (httpx.WriteError, True): (Outcome.CONNECTION_ERROR, Phase.AFTER_HANDSHAKE),
    (httpx.CloseError, False): (Outcome.CONNECTION_ERROR, Phase.HTTP),
    (httpx.CloseError, True): (Outcome.CONNECTION_ERROR, Phase.HTTP),
    (httpx.RemoteProtocolError, False): (Outcome.CONNECTION_ERROR, Phase.HTTP),
    (httpx.RemoteProtocolError, True): (Outcome.CONNECTION_ERROR, Phase.AFTER_HANDSHAKE),
    (httpx.LocalProtocolError, False): (Outcome.CONNECTION_ERROR, Phase.HTTP),
    (httpx.LocalProtocolError, True): (Outcome.CONNECTION_ERROR, Phase.HTTP),
    (httpx.ProxyError, False): (Outcome.CONNECTION_ERROR, Phase.CONNECT),
    (httpx.ProxyError, True): (Outcome.CONNECTION_ERROR, Phase.CONNECT),
    (httpx.UnsupportedProtocol, False): (Outcome.CONNECTION_ERROR, Phase.CONNECT),
    (httpx.UnsupportedProtocol, True): (Outcome.CONNECTION_ERROR, Phase.CONNECT),
}


def classify_transport(exc: httpx.TransportError, facts: CallFacts) -> Classification:
    """Classify an exception raised while calling; never raises."""
    verify_error = cause_of(exc, ssl.SSLCertVerificationError)
    if verify_error is not None:
        return Classification(
            Outcome.SERVER_UNTRUSTED,
            Phase.HANDSHAKE,
            None,
            f"The caller rejected the endpoint's certificate: {verify_error.verify_message}. AJO verifies the "
            "server too: the endpoint must present a chain from a public CA, valid for its host name.",
            "Server side: install a certificate for the host name from a publicly trusted CA, with its full "
            "chain. In the lab, point --server-ca at the CA that issued the server's certificate.",
        )
    alert = received_alert(exc)
    if alert is not None:
        phase = Phase.AFTER_HANDSHAKE if facts.handshake_done else Phase.HANDSHAKE
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
    if cause_of(exc, ConnectionRefusedError) is not None or phase is Phase.CONNECT:
        return Classification(
            Outcome.CONNECTION_ERROR,
            Phase.CONNECT,
            None,
            f"No TCP connection: {_short(exc)}. Nothing listens there, or a firewall blocks it.",
            "Server side: check the URL's host and port, and that the endpoint is reachable "
            "from the internet (AJO calls from Adobe's cloud).",
        )
    return _closed_without_alert(exc, facts, phase)


def _closed_without_alert(exc: Exception, facts: CallFacts, phase: Phase) -> Classification:
    why = f"The endpoint closed the connection without a TLS alert ({_short(exc)})."
    if facts.cert_requested and not facts.cert_sent:
        why += (
            " It had requested a client certificate and none was sent, so it most likely required one and "
            "rejected the call silently, as asyncio/uvicorn servers do (CPython gh-98078) and some proxies."
        )
        _, fix = explain_alert(Alert.CERTIFICATE_REQUIRED, facts)
        return Classification(Outcome.CONNECTION_ERROR, phase, None, why, fix)
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
            f"Server side: check its TLS log for the certificate error; trust Adobe's chain ({ADOBE_CHAIN}).",
        )
    return Classification(
        Outcome.CONNECTION_ERROR,
        phase,
        None,
        why,
        "Server side: check the endpoint's logs; make sure it speaks TLS on this port.",
    )


def _table_lookup(exc: httpx.TransportError, handshake_done: bool) -> tuple[Outcome, Phase]:
    for cls in type(exc).__mro__:
        if (cls, handshake_done) in TRANSPORT_TABLE:
            return TRANSPORT_TABLE[(cls, handshake_done)]
    return Outcome.CONNECTION_ERROR, Phase.HANDSHAKE


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


# --- TLS alerts ---------------------------------------------------------------------------------


def explain_alert(alert: Alert, facts: CallFacts) -> tuple[str, str]:
    """The cause and the fix of a TLS alert the endpoint sent, refined with what the caller knows."""
    cause = ALERT_CAUSES.get(alert)
    if cause is None:
        return (
            f"The endpoint aborted the TLS connection with alert {alert.label}.",
            "Server side: read the endpoint's TLS error log for this alert.",
        )
    return cause(facts)


def _unknown_ca(f: CallFacts) -> tuple[str, str]:
    if f.chain_leaf_only:
        return (
            "The endpoint could not build a chain to a CA it trusts: the caller sent its leaf without the "
            "intermediate, and the endpoint does not have the intermediate (alert unknown_ca).",
            "Server side: trust the intermediate as well as the root (Adobe advises adding both), so "
            "the chain builds whether or not the client sends it.",
        )
    if f.leaf_self_signed:
        return (
            "The endpoint refused a self-signed certificate (alert unknown_ca): it chains to no trusted CA. "
            "That is correct: AJO's real certificate is issued by DigiCert.",
            "Nothing to fix on the endpoint: AJO presents Adobe's DigiCert-issued certificate, not this one.",
        )
    if "Assured ID" in f.leaf_issuer:
        return (
            "The endpoint does not trust the CA that issued this certificate (alert unknown_ca): it is "
            "Adobe's next-generation chain (the 2026-2027 CA migration), and the trust store lacks it.",
            f"Server side: add {NEXT_CHAIN} to the trust store next to the current chain, before Adobe switches.",
        )
    if "impostor" in f.leaf_issuer.lower():
        return (
            "The endpoint refused a certificate from a CA it does not trust (alert unknown_ca). That is "
            "correct: only certificates chaining to Adobe's CA should pass.",
            "Nothing to fix on the endpoint: AJO's real certificate chains to DigiCert.",
        )
    return (
        "The endpoint does not trust the CA that issued the client certificate (alert unknown_ca): its "
        f"trust store lacks Adobe's chain ({f.leaf_issuer or 'the issuer'}).",
        f"Server side: trust Adobe's CA chain, {ADOBE_CHAIN}; do not pin the leaf.",
    )


def _cert_missing(f: CallFacts) -> tuple[str, str]:
    version = f.tls_version or (f"TLSv{f.tls}" if f.tls else "this TLS version")
    where = (
        f"The endpoint requires a client certificate and none was sent ({version}: "
        f"{'certificate_required after the handshake' if '1.3' in version else 'handshake_failure'})."
    )
    if f.identity is None:
        return (
            where + " The caller had no identity to send.",
            "Caller side: present a certificate; AJO presents Adobe's when the endpoint asks for one.",
        )
    if f.behavior == "java" and f.cert_requested and "Assured ID" in f.leaf_issuer:
        names = "; ".join(f.advertised) or "no names"
        return (
            where + " This is Adobe's next-generation certificate (the 2026-2027 CA migration): the server "
            f"advertised only {names}, so a Java client such as AJO omitted it.",
            f"Server side: add {NEXT_CHAIN} to the trust store (and so to the advertised names) before Adobe switches.",
        )
    if f.behavior == "java" and f.cert_requested:
        names = "; ".join(f.advertised) or "no names"
        return (
            where + " A Java client such as AJO sends its certificate only if the server names no CAs or "
            f"names an issuer of its chain; this server advertised: {names}. So AJO omitted it.",
            f"Server side: trust and advertise Adobe's CA chain ({ADOBE_CHAIN}), or advertise no CA names.",
        )
    return (where, "Server side: check which CA names the endpoint advertises and that it trusts Adobe's chain.")


def _expired(f: CallFacts) -> tuple[str, str]:
    if f.leaf_expired:
        return (
            "The client certificate has expired (alert certificate_expired). AJO rotates its certificate "
            "before expiry, so a real call would carry a current one.",
            "Caller side: present a current certificate. If AJO's call gets this, check the endpoint's clock.",
        )
    return (
        "The endpoint says the client certificate expired (alert certificate_expired), yet it is valid now: "
        "the endpoint's clock is probably wrong.",
        "Server side: fix the endpoint's clock (NTP).",
    )


def _bad_certificate(f: CallFacts) -> tuple[str, str]:
    if f.leaf_not_yet_valid:
        return (
            "The client certificate is not valid yet (alert bad_certificate): its validity starts in the future.",
            "Caller side: present a current certificate; otherwise check both clocks.",
        )
    return (
        "The endpoint rejected the client certificate as bad (alert bad_certificate): a clock that is "
        "behind, or a certificate it cannot parse or whose signature fails.",
        "Server side: check the endpoint's clock and TLS error log.",
    )


def _unsupported(f: CallFacts) -> tuple[str, str]:
    return (
        "The endpoint rejected the certificate's purpose (alert unsupported_certificate): its extended key "
        "usage lacks clientAuth." + (" This one is serverAuth only." if f.leaf_lacks_client_auth else ""),
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


ALERT_CAUSES: dict[Alert, Callable[[CallFacts], tuple[str, str]]] = {
    Alert.UNKNOWN_CA: _unknown_ca,
    Alert.HANDSHAKE_FAILURE: _cert_missing,
    Alert.CERTIFICATE_REQUIRED: _cert_missing,
    Alert.CERTIFICATE_EXPIRED: _expired,
    Alert.BAD_CERTIFICATE: _bad_certificate,
    Alert.UNSUPPORTED_CERTIFICATE: _unsupported,
    Alert.PROTOCOL_VERSION: _protocol_version,
    Alert.CERTIFICATE_UNKNOWN: _unknown_ca,
    Alert.ACCESS_DENIED: _access_denied,
}

# --- HTTP answers -------------------------------------------------------------------------------

NGINX_NO_CERT = "400 No required SSL certificate was sent"
NGINX_BAD_CERT = "400 The SSL certificate error"

LAB_REASONS = {
    "no_client_certificate": "Server side: require and verify client certificates at the TLS layer, trusting "
    f"Adobe's chain ({ADOBE_CHAIN}); Adobe asks for mTLS-only endpoints.",
    "subject_not_allowed": "Server side: allow Adobe's identity by its SAN ajo-journeys.aep-mtls.adobe.com (matched "
    "before the CN, RFC 2818), or authenticate AJO another way (custom or certificate-based authentication).",
    "fingerprint_not_pinned": f"Server side: do not pin Adobe's leaf; trust the CA chain ({ADOBE_CHAIN}).",
    "client_cert_not_forwarded": "Proxy side: forward the verified client certificate to the app in the header it "
    "reads (nginx $ssl_client_escaped_cert, Envoy x-forwarded-client-cert, AWS ALB X-Amzn-Mtls-Clientcert).",
    "token_missing": "Caller side: configure the action's authentication so that AJO sends a token.",
    "token_invalid": "Caller side: send a token from the token endpoint this API trusts.",
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
            Phase.HTTP,
            None,
            f"The endpoint accepted the call (HTTP {status}), {who} a client certificate.",
            "Nothing to fix."
            if facts.cert_sent or not facts.cert_requested
            else "Nothing failed, but the endpoint accepted a call without a client certificate.",
            status=status,
        )
    explanation, fix, reason = explain_http(status, response.text, facts)
    return Classification(Outcome.HTTP_ERROR, Phase.HTTP, None, explanation, fix, status=status, server_reason=reason)


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
            "nginx_no_certificate",
        )
    if status == 400 and NGINX_BAD_CERT in body:
        return (
            f"nginx answered '{NGINX_BAD_CERT}': the client certificate failed verification (untrusted CA, "
            "expired or wrong purpose); nginx reports it as HTTP 400, not as a TLS alert.",
            f"Server side: put Adobe's chain ({ADOBE_CHAIN}) in ssl_client_certificate.",
            "nginx_certificate_error",
        )
    if status == 403 and data.get("message") == "Forbidden":
        return _gateway(data, facts)
    if status == 401 and any(text in body for text in KONG):
        code = next(code for text, code in KONG.items() if text in body)
        return (
            f"A gateway (Kong's mtls-auth style) answered 401 ({code}): "
            + (
                "no client certificate was sent." + _why_not_sent(facts)
                if not facts.cert_sent
                else "the certificate failed its verification (untrusted CA or expired)."
            ),
            f"Server side: add Adobe's chain ({ADOBE_CHAIN}) to the gateway's CA certificates.",
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
        f"Server side: put Adobe's chain ({ADOBE_CHAIN}) in the gateway's mTLS truststore; for AWS API Gateway, "
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
    if reason == "client_cert_not_forwarded":
        return "proxy_header_missing"
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
