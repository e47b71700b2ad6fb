"""The reference server's settings (``settings``) turned into live objects in one ``load()`` step."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mtls_lab import _openssl
from mtls_lab.certs.inspect import is_ca, load_pem_chain, normalize_fingerprint
from mtls_lab.certs.keypair import PairFiles, diagnose
from mtls_lab.certs.layout import CA
from mtls_lab.certs.pki import require
from mtls_lab.errors import LabError
from mtls_lab.server.alert_styles import verify_error
from mtls_lab.server.settings import (
    ADVERTISE_NONE,
    ADVERTISE_TRUST,
    AlertStyle,
    Mode,
    RejectStyle,
    ServerConfig,
    check_settings,
)


@dataclass(frozen=True)
class LoadedServer:
    """A ServerConfig made live: the SSLContext and what the app needs to explain its answers."""

    config: ServerConfig
    context: ssl.SSLContext
    trusted: tuple[str, ...]
    advertised: tuple[str, ...]
    pins: frozenset[str] = field(default_factory=frozenset)
    trusted_certs: tuple[x509.Certificate, ...] = ()
    idp_certs: tuple[x509.Certificate, ...] = ()  # the leaves registered with the identity provider

    def describe(self) -> str:
        cfg = self.config
        mode = cfg.mode.summary
        if cfg.client_cert_paths:
            required = "required" if cfg.mode is Mode.MTLS else "optional"
            mode = (
                f"client certificate {required} for {', '.join(cfg.client_cert_paths)} only, asked after the "
                "handshake (TLS 1.2 renegotiation, TLS 1.3 post-handshake authentication), as Apache's "
                "SSLVerifyClient inside <Location>"
            )
        return (
            f"mode={cfg.mode.value} ({mode}); TLS {cfg.tls_min.value}-{cfg.tls_max.value}; "
            f"trusts: {_names(self.trusted)}; advertises: {_names(self.advertised)}; "
            f"allow-cn: {', '.join(cfg.allow_cn) or '(any)'}; pins: {len(self.pins) or 'none'}; "
            f"record: {cfg.record or 'memory'}; rejections: {cfg.reject_style.value} ({cfg.reject_style.summary})"
            + (f", {cfg.alert_style.summary}" if cfg.alert_style is not AlertStyle.OPENSSL else "")
            + (
                f"; client certificate from header {cfg.client_cert_header} sent by {', '.join(cfg.trusted_proxies)}"
                if cfg.client_cert_header
                else ""
            )
            + f"; authorizes by: {cfg.authorize.value}"
            + (f"; identity provider: {len(self.idp_certs)} registered leaf(s)" if self.idp_certs else "")
        )


def _names(names: tuple[str, ...]) -> str:
    return " | ".join(names) if names else "(none)"


def load(config: ServerConfig) -> LoadedServer:
    """Check the settings and build the server's SSLContext; LabError names what is wrong."""
    check_settings(config)
    if config.tls_min.ssl > config.tls_max.ssl:
        raise LabError(f"--tls-min {config.tls_min.value} is above --tls-max {config.tls_max.value}: swap them")
    paths = require(config.certs)
    trust_files = [resolve(p, config.certs, "--trust") for p in config.trust] or [paths.ca(CA.ADOBE_ROOT)]
    trusted = [cert for path in trust_files for cert in _ca_certs(path, "--trust", config.trust_leaves)]
    if config.advertise_ca == ADVERTISE_TRUST:
        advertised = trusted
    elif config.advertise_ca == ADVERTISE_NONE:
        advertised = []
    else:
        advertised = _ca_certs(resolve(Path(config.advertise_ca), config.certs, "--advertise-ca"), "--advertise-ca")
    try:
        pins = frozenset(normalize_fingerprint(pin) for pin in config.pins)
    except ValueError as exc:
        raise LabError(f"--pin-sha256: {exc}") from exc
    context = build_context(config, paths.server_cert, paths.server_key, trust_files, advertised)
    return LoadedServer(
        config=config,
        context=context,
        trusted=tuple(c.subject.rfc4514_string() for c in trusted),
        advertised=tuple(c.subject.rfc4514_string() for c in advertised) if config.mode is not Mode.TLS else (),
        pins=pins,
        trusted_certs=tuple(trusted),
        idp_certs=tuple(cert for path in config.idp_register for cert in _leaves(path, config.certs)),
    )


def build_context(
    config: ServerConfig,
    cert: Path,
    key: Path,
    trust_files: list[Path],
    advertised: list[x509.Certificate],
) -> ssl.SSLContext:
    """The one place the server's SSLContext is made."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = config.tls_min.ssl
    context.maximum_version = config.tls_max.ssl
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        fix = f"regenerate the lab PKI with `mtls-lab certs --out {config.certs} --force`"
        raise LabError(diagnose(PairFiles(cert, key, None, "server certificate", "server key", fix=fix))) from exc
    context.set_alpn_protocols(["http/1.1"])
    if config.mode is Mode.TLS:
        return context
    for path in trust_files:
        context.load_verify_locations(cafile=path)
    # per path (Apache's <Location>): the handshake asks nothing; server/per_path.py asks after it
    context.verify_mode = ssl.CERT_NONE if config.client_cert_paths else config.mode.verify_mode
    try:
        _openssl.set_client_ca_names(context, [c.public_bytes(Encoding.DER) for c in advertised])
    except _openssl.OpenSSLUnavailable as exc:
        if advertised:
            raise LabError(f"cannot advertise CA names on this Python ({exc}): use --advertise-ca none") from exc
    if config.alert_style is not AlertStyle.OPENSSL:
        _restyle(context, config.alert_style)
    if config.reject_style is not RejectStyle.ALERT:
        try:  # request optionally and complete every handshake: the app verifies per request, as nginx does
            context.verify_mode = ssl.CERT_OPTIONAL
            _openssl.accept_any_client_certificate(context)
        except _openssl.OpenSSLUnavailable as exc:
            raise LabError(
                f"--reject-style {config.reject_style.value} is not available on this Python ({exc}): "
                "use --reject-style alert"
            ) from exc
    return context


def _restyle(context: ssl.SSLContext, style: AlertStyle) -> None:
    """Reject certificates with ``style``'s alerts instead of OpenSSL's (server/alert_styles.py)."""
    try:
        _openssl.restyle_verification(context, lambda error, leaf, ssl: verify_error(style, error, leaf, ssl))
    except _openssl.OpenSSLUnavailable as exc:
        raise LabError(f"--alert-style {style.value} is not available on this Python ({exc}): use openssl") from exc


def resolve(path: Path, certs: Path, option: str, what: str = "CA certificates") -> Path:
    """A PEM path as given, or else relative to the certs directory."""
    for candidate in (path, certs / path):
        if candidate.is_file():
            return candidate
    raise LabError(f"{option} {path}: no such file (looked in . and {certs}): give a PEM file with {what}")


def _ca_certs(path: Path, option: str, leaves: bool = False) -> list[x509.Certificate]:
    try:
        certs = load_pem_chain(path)
    except ValueError as exc:
        raise LabError(f"{option} {path}: not a PEM certificate file ({exc}): give PEM CA certificates") from exc
    cas = [c for c in certs if is_ca(c) or leaves]
    if not cas:
        raise LabError(f"{option} {path}: contains no CA certificate: give the CA that issued the client's chain")
    return cas


def _leaves(given: Path, certs_dir: Path) -> list[x509.Certificate]:
    """The leaf certificates of a PEM file, as an identity provider registers them: CAs are refused."""
    path = resolve(given, certs_dir, "--idp-register", "the leaf certificate to register")
    try:
        certs = load_pem_chain(path)
    except ValueError as exc:
        raise LabError(f"--idp-register {path}: not a PEM certificate file ({exc}): give the leaf certificate") from exc
    cas = [c.subject.rfc4514_string() for c in certs if is_ca(c)]
    if cas:
        raise LabError(
            f"--idp-register {path}: holds a CA certificate ({cas[0]}): register Adobe's leaf only: Adobe says "
            '"do not use the intermediate or root CA certificates" (e.g. clients/adobe/leaf.pem, or a file '
            "`mtls-lab idp-leaves` wrote)"
        )
    if not certs:
        raise LabError(f"--idp-register {path}: holds no certificate: give a PEM leaf certificate")
    return certs
