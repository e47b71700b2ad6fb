"""Is a lab server up and ready? ``mtls-lab health``: the compose healthcheck, and a quick check for people.

Ready means the server's TLS layer answers with the configuration it was given. The probe asks
``GET /_lab/health``, which needs no HTTP authorization; in ``mtls`` mode the TLS layer still wants a
trusted client certificate, so the probe holds a lab identity (``adobe`` by default) and sends it the
way AJO's Java client does (the lab's Java model): when the server names no CAs or names an issuer of
the chain. So a ``mixed`` server that names only another CA gets no certificate and answers 200,
instead of logging a rejected handshake at every healthcheck. When the server rejects the probe with a
TLS alert (``mtls`` mode trusting only another CA), it is still up and serving its configuration: a
readiness check must not fail because of the very misconfiguration the lab is showing, so that counts
as ready unless ``strict``. Down, not speaking TLS, or a server certificate the lab does not trust is
not ready.
"""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass

import httpx

from mtls_lab.alerts import received_alert
from mtls_lab.caller.tls import Chain, ClientBehavior, ClientIdentity, Handshake, client_context
from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.errors import ExitCode, LabError, cause_of, causes
from mtls_lab.vocabulary import LAB_PORT

HEALTH_PATH = "/_lab/health"


class Health(enum.Enum):
    """What the probe found."""

    HEALTHY = "healthy"  # /_lab/health answered 200
    TLS_REJECTED = "tls_rejected"  # the server is up; its TLS layer refused our identity with an alert
    HTTP_ERROR = "http_error"  # TLS worked, the route did not answer 200
    SERVER_UNTRUSTED = "server_untrusted"  # the server's certificate is not one the lab trusts
    DOWN = "down"  # nothing listening, no TLS, or no answer in time

    def exit_code(self, strict: bool) -> ExitCode:
        """Exit code of ``mtls-lab health``: 0 when ready."""
        if self is Health.TLS_REJECTED:
            return ExitCode.TLS_REJECTED if strict else ExitCode.OK
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Health.HEALTHY: ExitCode.OK,
    Health.HTTP_ERROR: ExitCode.HTTP_ERROR,
    Health.SERVER_UNTRUSTED: ExitCode.SERVER_UNTRUSTED,
    Health.DOWN: ExitCode.CONNECTION,
}


@dataclass(frozen=True)
class Probe:
    """One health probe's result."""

    state: Health
    url: str
    detail: str
    mode: str | None = None  # the server's mode, as /_lab/health reports it

    def describe(self) -> str:
        """One line for people (and for ``docker inspect``'s health log)."""
        return f"{self.state.value}: {self.url}: {self.detail}"


def health_url(url: str) -> str:
    """``url`` itself if it names a path, else the server's ``/_lab/health`` route."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise LabError(f"--url {url}: not a URL ({exc}): give e.g. https://127.0.0.1:{LAB_PORT}") from exc
    if parsed.scheme != "https" or not parsed.host:
        raise LabError(f"--url {url}: the lab server speaks https only: give e.g. https://127.0.0.1:{LAB_PORT}")
    return str(parsed.copy_with(path=HEALTH_PATH)) if parsed.path in ("", "/") else url


def probe(url: str, pki: LabPaths, identity: Identity | None = Identity.ADOBE, timeout: float = 3.0) -> Probe:
    """GET the server's health route with a lab identity and say whether the server is ready."""
    target = health_url(url)
    client_id = ClientIdentity.from_lab(pki, identity, Chain.FULL) if identity else None
    context = client_context(pki, client_id, ClientBehavior.JAVA, None, None, Handshake())
    with httpx.Client(verify=context, timeout=timeout) as client:
        try:
            response = client.get(target)
        except httpx.TransportError as exc:
            return _transport_failure(target, exc, identity)
    if response.status_code != 200:
        return Probe(Health.HTTP_ERROR, target, f"answered HTTP {response.status_code}, not 200")
    mode = _mode(response)
    return Probe(Health.HEALTHY, target, f"answered 200 (mode {mode or 'unknown'})", mode)


def _transport_failure(url: str, exc: httpx.TransportError, identity: Identity | None) -> Probe:
    alert = received_alert(exc)
    if alert is not None:
        who = f"identity {identity.value}" if identity else "a call without a certificate"
        return Probe(
            Health.TLS_REJECTED,
            url,
            f"up (ready): its TLS layer rejected {who} with alert {alert.label}, so the route was not reached",
        )
    if cause_of(exc, ssl.SSLCertVerificationError) is not None:
        return Probe(Health.SERVER_UNTRUSTED, url, "its certificate is not issued by the lab PKI given with --certs")
    if isinstance(exc, httpx.TimeoutException):
        return Probe(Health.DOWN, url, "no answer in time")
    return Probe(Health.DOWN, url, f"no TLS answer ({_short(exc)})")


def _mode(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    mode = body.get("mode") if isinstance(body, dict) else None
    return mode if isinstance(mode, str) else None


def _short(exc: BaseException) -> str:
    """The innermost cause's message: "[Errno 111] Connection refused" rather than httpx's wrapper."""
    root = list(causes(exc))[-1]
    return str(root) or type(root).__name__
