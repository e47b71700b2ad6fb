"""What ``mtls-lab serve`` can be told: the modes, styles, versions and every setting, with their checks.

Nothing here loads the server (no uvicorn, no OpenSSL bridge): the CLI builds its options from it.
``mtls_lab.server.loaded.load`` turns a ``ServerConfig`` into live objects.
"""

from __future__ import annotations

import enum
import math
import ssl
from dataclasses import dataclass
from pathlib import Path

from mtls_lab.certs.layout import ADOBE_CN, DEFAULT_CERTS_DIR
from mtls_lab.errors import LabError
from mtls_lab.vocabulary import LAB_PORT


class Mode(enum.Enum):
    """How the server treats client certificates."""

    TLS = "tls"
    MTLS = "mtls"
    MIXED = "mixed"

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        return {Mode.TLS: ssl.CERT_NONE, Mode.MTLS: ssl.CERT_REQUIRED, Mode.MIXED: ssl.CERT_OPTIONAL}[self]

    @property
    def summary(self) -> str:
        return {
            Mode.TLS: "TLS only: never requests a client certificate",
            Mode.MTLS: "mTLS only: requires a trusted client certificate (handshake fails without one)",
            Mode.MIXED: "mixed: requests a client certificate optionally; a bad one still fails the handshake",
        }[self]


class RejectStyle(enum.Enum):
    """Who answers a missing or bad client certificate, and how (docs/ground-truth.md)."""

    ALERT = "alert"  # OpenSSL, Go, Envoy, Java servers: a TLS alert, the handshake fails
    NGINX = "nginx"  # the handshake completes; HTTP 400 pages per request
    GATEWAY = "gateway"  # AWS API Gateway, Cloudflare: the handshake completes; HTTP 403 {"message":"Forbidden"}

    @property
    def summary(self) -> str:
        return {
            RejectStyle.ALERT: "TLS alerts, like OpenSSL, Go, Envoy and Java servers",
            RejectStyle.NGINX: "handshake completes, nginx's HTTP 400 pages",
            RejectStyle.GATEWAY: "handshake completes, gateway HTTP 403 Forbidden",
        }[self]


class AlertStyle(enum.Enum):
    """Whose alerts the server sends when it rejects a client certificate (``server/alert_styles.py``)."""

    OPENSSL = "openssl"
    JAVA = "java"
    GO = "go"

    @property
    def summary(self) -> str:
        return {
            AlertStyle.OPENSSL: "OpenSSL's alerts (HAProxy, openssl s_server)",
            AlertStyle.JAVA: "a Java server's alerts (Tomcat, Jetty, Spring Boot)",
            AlertStyle.GO: "a Go 1.20+ server's alerts (Caddy, Traefik)",
        }[self]


class Authorize(enum.Enum):
    """What the app checks before it accepts a call on its routes."""

    CERTIFICATE = "certificate"  # the client certificate's identity (allow-list, pins): the community question
    TOKEN = "token"  # a bearer token from a lab token endpoint (custom or certificate-based authentication)
    BOTH = "both"  # both: an mTLS endpoint that also wants a token

    @property
    def certificate(self) -> bool:
        return self is not Authorize.TOKEN

    @property
    def token(self) -> bool:
        return self is not Authorize.CERTIFICATE


class TLSVersion(enum.Enum):
    V1_2 = "1.2"
    V1_3 = "1.3"

    @property
    def ssl(self) -> ssl.TLSVersion:
        return ssl.TLSVersion.TLSv1_2 if self is TLSVersion.V1_2 else ssl.TLSVersion.TLSv1_3


ADVERTISE_TRUST = "trust"
ADVERTISE_NONE = "none"


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``mtls-lab serve`` can be told; paths are resolved by ``load()``."""

    mode: Mode = Mode.MTLS
    host: str = "127.0.0.1"
    port: int = LAB_PORT
    certs: Path = DEFAULT_CERTS_DIR
    trust: tuple[Path, ...] = ()  # empty: ca/adobe-like-root.pem
    advertise_ca: str = ADVERTISE_TRUST  # "trust", "none" or a PEM path
    tls_min: TLSVersion = TLSVersion.V1_2
    tls_max: TLSVersion = TLSVersion.V1_3
    allow_cn: tuple[str, ...] = (ADOBE_CN,)
    pins: tuple[str, ...] = ()
    record: Path | None = None
    handshake_timeout: float = 10.0
    header_timeout: float = 10.0  # the request line and headers, from the handshake or the request's first byte
    body_timeout: float = 30.0  # the whole body, from the end of the headers
    keep_alive_timeout: float = 5.0  # idle time between two requests on one connection
    max_head_bytes: int = 32 * 1024  # request line and headers (431 beyond)
    max_headers: int = 100  # header fields (431 beyond)
    record_body_limit: int = 64 * 1024
    max_body: int = 1024 * 1024
    reject_style: RejectStyle = RejectStyle.ALERT
    alert_style: AlertStyle = AlertStyle.OPENSSL  # with reject_style ALERT: whose alerts
    client_cert_header: str | None = None  # read the client certificate from this header (a proxy terminates TLS)
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")  # addresses whose client-certificate header counts
    quiet: bool = False
    # Leaf certificates in --trust count (trusted and advertised), as real servers take them: the matrix's
    # "trust store holds Adobe's leaf" rows. The CLI keeps refusing a trust file without a CA.
    trust_leaves: bool = False
    authorize: Authorize = Authorize.CERTIFICATE
    idp_register: tuple[Path, ...] = ()  # leaf certificates the identity provider (/_lab/idp/token) accepts
    idp_audience: tuple[str, ...] = ()  # the aud values it accepts (empty: its own token endpoint URL)
    # ask for the client certificate after the handshake, for these paths only (Apache's SSLVerifyClient inside
    # <Location>): TLS 1.2 renegotiation, TLS 1.3 post-handshake authentication; the mode says required or optional
    client_cert_paths: tuple[str, ...] = ()
    answer_delay: float = 0.0  # the custom-action target waits this long before it answers: a slow endpoint


_TIMEOUTS = {
    "handshake_timeout": "--handshake-timeout",
    "header_timeout": "--header-timeout",
    "body_timeout": "--body-timeout",
    "keep_alive_timeout": "--keep-alive-timeout",
}
_SIZES = {"max_body": "--max-body", "record_body_limit": "record_body_limit"}
_COUNTS = {"max_head_bytes": "max_head_bytes", "max_headers": "max_headers"}


def check_settings(config: ServerConfig) -> None:
    """LabError for a timeout, size or port that would otherwise fail later, per connection, with a traceback
    (asyncio refuses a handshake timeout of 0 only when a client connects)."""
    for field, option in _TIMEOUTS.items():
        value = getattr(config, field)
        if not (math.isfinite(value) and value > 0):
            raise LabError(f"{option} {value:g}: give a number of seconds above 0, e.g. 10")
    for field, option in _SIZES.items():
        if getattr(config, field) < 0:
            raise LabError(f"{option} {getattr(config, field)}: give a number of bytes, 0 or more")
    for field, option in _COUNTS.items():
        if getattr(config, field) < 1:
            raise LabError(f"{option} {getattr(config, field)}: give a number above 0")
    if config.alert_style is not AlertStyle.OPENSSL and config.reject_style is not RejectStyle.ALERT:
        raise LabError(
            f"--alert-style {config.alert_style.value} goes with --reject-style alert (nginx and gateways "
            "answer over HTTP): drop one of them"
        )
    _check_paths(config)
    if not (math.isfinite(config.answer_delay) and 0 <= config.answer_delay <= 600):
        raise LabError(f"--answer-delay {config.answer_delay:g}: give seconds from 0 to 600, e.g. 2.5")
    if not 0 <= config.port <= 65535:
        raise LabError(f"--port {config.port}: give a port from 1 to 65535 (0: any free port)")


def _check_paths(config: ServerConfig) -> None:
    for path in config.client_cert_paths:
        if not path.startswith("/") or any(c in path for c in "?#* \t"):
            raise LabError(f"--client-cert-paths {path!r}: give a URL path that starts with /, e.g. /secure")
    if not config.client_cert_paths:
        return
    if config.mode is Mode.TLS:
        raise LabError(
            "--client-cert-paths asks for the certificate on those paths: give --mode mtls (required there, as "
            "Apache's SSLVerifyClient require) or --mode mixed (optional there)"
        )
    if config.reject_style is not RejectStyle.ALERT:
        raise LabError(
            f"--client-cert-paths models Apache, which rejects with TLS alerts: drop --reject-style "
            f"{config.reject_style.value}"
        )
    if config.alert_style is not AlertStyle.OPENSSL:
        raise LabError(
            f"--client-cert-paths models Apache, which sends OpenSSL's alerts: drop --alert-style "
            f"{config.alert_style.value} (a Java server asking per URL is Tomcat: `mtls-lab stacks --config tomcat "
            "--mode per-path`)"
        )
    if config.client_cert_header:
        raise LabError("--client-cert-paths asks the TLS client itself: drop --client-cert-header")
