"""``mtls-lab serve`` (the reference endpoint) and ``mtls-lab nginx-conf`` (nginx in front of it)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mtls_lab.certs.layout import ADOBE_CN
from mtls_lab.cli.options import env, listen_options, pki_option
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.vocabulary import LAB_PORT

MAX_WORKERS = 64

if TYPE_CHECKING:
    from mtls_lab.cli.options import Commands
    from mtls_lab.server.settings import ServerConfig


def add_serve(sub: Commands) -> None:
    from mtls_lab.server.settings import AlertStyle, Authorize, Mode, RejectStyle, ServerConfig, TLSVersion

    d = ServerConfig()
    p = sub.add_parser(
        "serve",
        parents=[listen_options(d.port, with_env=True), pki_option(with_env=True)],
        help="run the reference endpoint: TLS-only, mTLS-only or mixed",
        description="Run the reference custom-action endpoint. Rejected certificates get the same TLS alerts "
        "an OpenSSL server sends; missing or unauthorized certificates get HTTP 403 with a diagnostic body. "
        "GET /_lab/health and GET /_lab/calls need no certificate. Every option can also be set from the "
        "environment variable shown in brackets (repeatable options: comma-separated).",
    )
    modes = ", ".join(f"{m.value} = {m.summary}" for m in Mode)
    p.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=d.mode.value,
        help=f"{modes} (default {d.mode.value}) {env('mode')}",
    )
    p.add_argument(
        "--trust",
        action="append",
        type=Path,
        metavar="PEM",
        help=f"CA file the server trusts for client certificates, repeatable; relative paths are also "
        f"looked up in --certs (default ca/adobe-like-root.pem) {env('trust')}",
    )
    p.add_argument(
        "--advertise-ca",
        default=d.advertise_ca,
        metavar="trust|none|PEM",
        help="CA names sent in the CertificateRequest: trust = the trusted CAs (like nginx "
        "ssl_client_certificate), none (like ssl_trusted_certificate), or a PEM file's CAs "
        f"{env('advertise_ca')}",
    )
    versions = [v.value for v in TLSVersion]
    p.add_argument("--tls-min", choices=versions, default=d.tls_min.value, help=f"lowest TLS version {env('tls_min')}")
    p.add_argument("--tls-max", choices=versions, default=d.tls_max.value, help=f"highest TLS version {env('tls_max')}")
    p.add_argument(
        "--allow-cn",
        action="append",
        metavar="NAME",
        help=f"name allowed to call, repeatable (default {ADOBE_CN}); matched against the DNS SANs first, the CN "
        f"only for a certificate without SAN (RFC 2818) {env('allow_cn')}",
    )
    p.add_argument(
        "--pin-sha256",
        action="append",
        metavar="HEX",
        dest="pin_sha256",
        help=f"also require one of these leaf fingerprints, repeatable {env('pin_sha256')}",
    )
    p.add_argument(
        "--record",
        type=Path,
        metavar="PATH",
        help=f"append every connection attempt and every received call to this JSON-lines file (default: memory, "
        f"the newest 10 000 entries) {env('record')}",
    )
    p.add_argument(
        "--handshake-timeout",
        type=float,
        default=d.handshake_timeout,
        metavar="SECONDS",
        help=f"abort handshakes slower than this (default {d.handshake_timeout:g}) {env('handshake_timeout')}",
    )
    _add_timeouts(p, d)
    p.add_argument(
        "--max-body",
        type=int,
        default=d.max_body,
        metavar="BYTES",
        help=f"answer 413 to larger request bodies (default {d.max_body}) {env('max_body')}",
    )
    p.add_argument(
        "--reject-style",
        choices=[r.value for r in RejectStyle],
        default=d.reject_style.value,
        help="who answers a missing or bad certificate: alert (TLS alerts, like OpenSSL), nginx (the "
        "handshake completes, HTTP 400 pages), gateway (the handshake completes, HTTP 403 Forbidden) "
        f"{env('reject_style')}",
    )
    p.add_argument(
        "--alert-style",
        choices=[a.value for a in AlertStyle],
        default=d.alert_style.value,
        help="with --reject-style alert: whose alerts a rejected certificate gets: openssl (HAProxy, "
        "openssl s_server), java (JSSE: Tomcat, Jetty, Spring Boot) or go (Go 1.20+: Caddy, Traefik), as "
        f"measured in docs/server-stacks.md {env('alert_style')}",
    )
    p.add_argument(
        "--client-cert-header",
        metavar="NAME",
        help="a proxy in front terminates TLS: read the client certificate from this header (Envoy "
        "x-forwarded-client-cert, nginx X-SSL-Client-Cert, X-Amzn-Mtls-Clientcert[-Leaf], "
        f"X-ARR-ClientCert, RFC 9440 Client-Cert) {env('client_cert_header')}",
    )
    p.add_argument(
        "--client-cert-paths",
        action="append",
        metavar="PATH",
        help="ask for the client certificate only for requests under this path, after the handshake, as "
        "Apache's SSLVerifyClient inside <Location>: TLS 1.2 renegotiates, TLS 1.3 needs post-handshake "
        "authentication, which Java clients (AJO's sender) do not offer: Apache's 403 'Cannot perform "
        "Post-Handshake Authentication'; --mode mtls requires it there, mixed asks optionally; repeatable "
        f"{env('client_cert_paths')}",
    )
    p.add_argument(
        "--answer-delay",
        type=float,
        default=d.answer_delay,
        metavar="SECONDS",
        help="the custom-action target waits this long before it answers: a slow endpoint, to try an answer "
        f"deadline (an HTTP API destination's 2 s, a journey's timeout) (default 0) {env('answer_delay')}",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDR",
        help="address or CIDR whose certificate header counts, repeatable (default 127.0.0.1, ::1) "
        f"{env('trusted_proxy')}",
    )
    p.add_argument(
        "--authorize",
        choices=[a.value for a in Authorize],
        default=d.authorize.value,
        help="what the app checks on its routes: certificate (the client certificate's names and pins, default), "
        "token (a bearer token from a lab token endpoint: custom or certificate-based authentication), or both "
        f"{env('authorize')}",
    )
    p.add_argument(
        "--idp-register",
        action="append",
        type=Path,
        metavar="PEM",
        help="register this leaf certificate with the identity provider at POST /_lab/idp/token, which then "
        "accepts client assertions it signed (certificate-based authentication), repeatable: e.g. "
        f"clients/adobe/leaf.pem {env('idp_register')}",
    )
    p.add_argument(
        "--idp-audience",
        action="append",
        metavar="URL",
        help="the aud the identity provider accepts in assertions, repeatable (default: its own token endpoint "
        f"URL, as Entra ID and Okta expect) {env('idp_audience')}",
    )
    p.add_argument("--quiet", action="store_true", help=f"log only rejected handshakes and errors {env('quiet')}")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="server processes sharing the port, for load tests on several cores (default 1; more than 1 "
        f"needs --record, the file all workers write and /_lab/calls reads) {env('workers')}",
    )
    p.set_defaults(handler=_run_serve)


def _add_timeouts(p: argparse.ArgumentParser, d: ServerConfig) -> None:
    timeouts = (
        (
            "header",
            d.header_timeout,
            "close a connection whose request line and headers take longer, counted "
            "from the handshake or the request's first byte (408 if part of it arrived)",
        ),
        ("body", d.body_timeout, "answer 408 and close when a request body takes longer after its headers"),
        ("keep-alive", d.keep_alive_timeout, "close a kept-alive connection idle for longer"),
    )
    for name, default, what in timeouts:
        dest = f"{name.replace('-', '_')}_timeout"
        p.add_argument(
            f"--{name}-timeout",
            type=float,
            default=default,
            metavar="SECONDS",
            help=f"{what} (default {default:g}) {env(dest)}",
        )


def _run_serve(ns: argparse.Namespace) -> int:
    from mtls_lab.server.run import serve
    from mtls_lab.server.settings import AlertStyle, Authorize, Mode, RejectStyle, ServerConfig, TLSVersion

    if not 1 <= ns.workers <= MAX_WORKERS:
        raise LabError(f"--workers {ns.workers}: give 1 to {MAX_WORKERS} (one per CPU core is plenty)")
    config = ServerConfig(
        mode=Mode(ns.mode),
        host=ns.host,
        port=ns.port,
        certs=ns.certs,
        trust=tuple(ns.trust or ()),
        advertise_ca=ns.advertise_ca,
        tls_min=TLSVersion(ns.tls_min),
        tls_max=TLSVersion(ns.tls_max),
        allow_cn=tuple(ns.allow_cn or (ADOBE_CN,)),
        pins=tuple(ns.pin_sha256 or ()),
        record=ns.record,
        handshake_timeout=ns.handshake_timeout,
        header_timeout=ns.header_timeout,
        body_timeout=ns.body_timeout,
        keep_alive_timeout=ns.keep_alive_timeout,
        max_body=ns.max_body,
        reject_style=RejectStyle(ns.reject_style),
        alert_style=AlertStyle(ns.alert_style),
        client_cert_header=ns.client_cert_header,
        trusted_proxies=tuple(ns.trusted_proxy or ServerConfig().trusted_proxies),
        quiet=ns.quiet,
        authorize=Authorize(ns.authorize),
        idp_register=tuple(ns.idp_register or ()),
        idp_audience=tuple(ns.idp_audience or ()),
        client_cert_paths=tuple(ns.client_cert_paths or ()),
        answer_delay=ns.answer_delay,
    )
    serve(config, workers=ns.workers)
    return ExitCode.OK


def add_nginx_conf(sub: Commands) -> None:
    p = sub.add_parser(
        "nginx-conf",
        parents=[pki_option()],
        help="write an nginx configuration that terminates mTLS in front of the lab server",
        description="Generate, from the lab PKI, an nginx configuration that terminates mTLS (trusting and "
        "advertising the Adobe-like root), answers certificate problems with nginx's own 400 pages, and forwards "
        "the verified certificate to a lab server started with --client-cert-header X-SSL-Client-Cert.",
    )
    p.add_argument("--out", type=Path, help="write here (default: print); never overwritten without --force")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument(
        "--prefix", type=Path, default=Path("nginx-run"), help="nginx's runtime directory (default ./nginx-run)"
    )
    p.add_argument("--listen", type=int, default=LAB_PORT, help=f"nginx's port on 127.0.0.1 (default {LAB_PORT})")
    p.add_argument("--upstream", default="127.0.0.1:9443", help="the lab server behind it (default 127.0.0.1:9443)")
    p.add_argument("--verify", choices=["on", "optional"], default="on", help="ssl_verify_client (default on)")
    p.add_argument(
        "--trust", action="append", type=Path, metavar="PEM", help="client CAs (default the Adobe-like root)"
    )
    p.set_defaults(handler=_run_nginx_conf)


def _run_nginx_conf(ns: argparse.Namespace) -> int:
    from mtls_lab.certs.pki import require
    from mtls_lab.server.nginx_conf import NginxSettings, render, write

    settings = NginxSettings(require(ns.certs), ns.prefix, ns.listen, ns.upstream, ns.verify, tuple(ns.trust or ()))
    if ns.out is None:
        print(render(settings), end="")
        return ExitCode.OK
    if ns.out.exists() and not ns.force:
        raise LabError(f"{ns.out} exists: choose another --out, or replace it with --force")
    write(settings, ns.out)
    print(f"wrote {ns.out}; run: nginx -p {ns.prefix.resolve()} -c {ns.out.resolve()}")
    return ExitCode.OK
