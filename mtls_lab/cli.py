"""``mtls-lab``: one command, with subcommands that forward to the programmatic API.

User errors print ``mtls-lab: error: what is wrong: how to fix it`` on one line (never a traceback)
and exit with a named ``ExitCode``. Options of ``serve`` can also come from ``MTLS_LAB_*``
environment variables (the compose file uses them); the command line wins.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from certs.layout import ADOBE_CN, DEFAULT_CERTS_DIR, Identity
from mtls_lab import __version__
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.lifecycle_cli import add_adobe_api, add_trust_sync

if TYPE_CHECKING:
    from caller.tls import ClientBehavior, ClientIdentity
    from caller.verdict import Verdict
    from certs.layout import LabPaths
    from server.config import ServerConfig

ENV_PREFIX = "MTLS_LAB_"
Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command = next((a for a in args if not a.startswith("-")), None)
    subparsers = _subparsers(parser)
    if command in subparsers:
        at = args.index(command)
        args[at + 1 : at + 1] = env_arguments(subparsers[command], args[at + 1 :])
    namespace = parser.parse_args(args)
    handler: Handler | None = getattr(namespace, "handler", None)
    if handler is None:
        parser.print_help()
        return ExitCode.USAGE
    try:
        return handler(namespace)
    except LabError as exc:
        print(f"mtls-lab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtls-lab",
        description="Reproduce, understand and fix the mutual-TLS failures between Adobe Journey Optimizer "
        "custom actions and your endpoint: a lab PKI, a reference server and an AJO-like caller.",
        epilog="Run `mtls-lab COMMAND --help` for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"mtls-lab {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_certs(sub)
    _add_serve(sub)
    _add_call(sub)
    _add_matrix(sub)
    _add_demo(sub)
    _add_probe(sub)
    _add_nginx_conf(sub)
    _add_health(sub)
    add_adobe_api(sub)
    add_trust_sync(sub)
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def env_arguments(parser: argparse.ArgumentParser, given: Sequence[str]) -> list[str]:
    """Command-line arguments built from ``MTLS_LAB_<DEST>`` variables for options not given."""
    extra: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help",):
            continue
        value = os.environ.get(ENV_PREFIX + action.dest.upper())
        if not value or any(a == o or a.startswith(o + "=") for a in given for o in action.option_strings):
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:
            if value.lower() in ("1", "true", "yes", "on"):
                extra.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for item in filter(None, (part.strip() for part in value.split(","))):
                extra += [flag, item]
        else:
            extra += [flag, value]
    return extra


def _env(dest: str) -> str:
    return f"[env {ENV_PREFIX}{dest.upper()}]"


# --- certs --------------------------------------------------------------------------------------


def _add_certs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "certs",
        help="generate the lab PKI (Adobe-like chain, server certificate, one identity per failure)",
        description="Generate the lab PKI: stand-ins for Adobe's DigiCert chains (every CA name says "
        "MTLS LAB), the lab server's certificate, and client identities that each cause one failure. "
        "Existing files are never replaced without --force. Never install a lab CA in a system trust store.",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_CERTS_DIR, help="output directory (default: ./certs)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--force", action="store_true", help="replace an existing PKI, keys included")
    group.add_argument("--if-missing", action="store_true", help="reuse a complete existing PKI and exit 0")
    p.set_defaults(handler=_run_certs)


def _run_certs(ns: argparse.Namespace) -> int:
    from certs.pki import generate

    result = generate(ns.out, force=ns.force, if_missing=ns.if_missing)
    if result.reused:
        print(f"lab PKI in {ns.out} already complete: reused it (nothing written)")
        return ExitCode.OK
    print(f"wrote the lab PKI to {ns.out} in {result.seconds:.2f} s ({len(result.written)} files, keys 0600):")
    for path in result.written:
        print(f"  {path}")
    print("These CAs are lab stand-ins (named MTLS LAB): never install them in a system trust store.")
    return ExitCode.OK


# --- serve --------------------------------------------------------------------------------------


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from server.config import Mode, RejectStyle, ServerConfig, TLSVersion

    d = ServerConfig()
    p = sub.add_parser(
        "serve",
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
        help=f"{modes} (default {d.mode.value}) {_env('mode')}",
    )
    p.add_argument("--host", default=d.host, help=f"address to listen on (default {d.host}) {_env('host')}")
    p.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port}) {_env('port')}")
    p.add_argument("--certs", type=Path, default=d.certs, help=f"lab PKI directory (default ./certs) {_env('certs')}")
    p.add_argument(
        "--trust",
        action="append",
        type=Path,
        metavar="PEM",
        help=f"CA file the server trusts for client certificates, repeatable; relative paths are also "
        f"looked up in --certs (default ca/adobe-like-root.pem) {_env('trust')}",
    )
    p.add_argument(
        "--advertise-ca",
        default=d.advertise_ca,
        metavar="trust|none|PEM",
        help="CA names sent in the CertificateRequest: trust = the trusted CAs (like nginx "
        "ssl_client_certificate), none (like ssl_trusted_certificate), or a PEM file's CAs "
        f"{_env('advertise_ca')}",
    )
    versions = [v.value for v in TLSVersion]
    p.add_argument("--tls-min", choices=versions, default=d.tls_min.value, help=f"lowest TLS version {_env('tls_min')}")
    p.add_argument(
        "--tls-max", choices=versions, default=d.tls_max.value, help=f"highest TLS version {_env('tls_max')}"
    )
    p.add_argument(
        "--allow-cn",
        action="append",
        metavar="NAME",
        help=f"CN or DNS SAN allowed to call, repeatable (default {ADOBE_CN}) {_env('allow_cn')}",
    )
    p.add_argument(
        "--pin-sha256",
        action="append",
        metavar="HEX",
        dest="pin_sha256",
        help=f"also require one of these leaf fingerprints, repeatable {_env('pin_sha256')}",
    )
    p.add_argument(
        "--record",
        type=Path,
        metavar="PATH",
        help=f"append every received call to this JSON-lines file (default: memory) {_env('record')}",
    )
    p.add_argument(
        "--handshake-timeout",
        type=float,
        default=d.handshake_timeout,
        metavar="SECONDS",
        help=f"abort handshakes slower than this (default {d.handshake_timeout:g}) {_env('handshake_timeout')}",
    )
    _add_timeouts(p, d)
    p.add_argument(
        "--max-body",
        type=int,
        default=d.max_body,
        metavar="BYTES",
        help=f"answer 413 to larger request bodies (default {d.max_body}) {_env('max_body')}",
    )
    p.add_argument(
        "--reject-style",
        choices=[r.value for r in RejectStyle],
        default=d.reject_style.value,
        help="who answers a missing or bad certificate: alert (TLS alerts, like OpenSSL), nginx (the "
        "handshake completes, HTTP 400 pages), gateway (the handshake completes, HTTP 403 Forbidden) "
        f"{_env('reject_style')}",
    )
    p.add_argument(
        "--client-cert-header",
        metavar="NAME",
        help="a proxy in front terminates TLS: read the client certificate from this header (Envoy "
        "x-forwarded-client-cert, nginx X-SSL-Client-Cert, X-Amzn-Mtls-Clientcert[-Leaf], "
        f"X-ARR-ClientCert, RFC 9440 Client-Cert) {_env('client_cert_header')}",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDR",
        help="address or CIDR whose certificate header counts, repeatable (default 127.0.0.1, ::1) "
        f"{_env('trusted_proxy')}",
    )
    p.add_argument("--quiet", action="store_true", help=f"log only rejected handshakes and errors {_env('quiet')}")
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
            help=f"{what} (default {default:g}) {_env(dest)}",
        )


def _run_serve(ns: argparse.Namespace) -> int:
    from server.config import Mode, RejectStyle, ServerConfig, TLSVersion
    from server.run import serve

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
        client_cert_header=ns.client_cert_header,
        trusted_proxies=tuple(ns.trusted_proxy or ServerConfig().trusted_proxies),
        quiet=ns.quiet,
    )
    serve(config)
    return ExitCode.OK


# --- call ---------------------------------------------------------------------------------------

IDENTITY_NAMES = [identity.value for identity in Identity] + ["none"]


def _add_call(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "call",
        help="replay a custom action the way AJO would, and explain the outcome",
        description="Replay an AJO custom action against an endpoint with an Adobe-like client certificate, "
        "following AJO's runtime rules (up to 3 retries inside the timeout, none on 401/403/404 or after a "
        "first-call timeout, 302 redirects followed), and print a verdict: the failing layer, the cause and "
        "the fix. Exit codes: 0 accepted, 1 HTTP error, 2 usage, 3 TLS rejected by the server, "
        "4 server certificate not trusted, 5 connection error or timeout.",
    )
    p.add_argument("action", nargs="?", type=Path, help="custom-action JSON file (default: a plain POST to --url)")
    p.add_argument("--url", help="endpoint URL, replacing the action's (default https://localhost:8443/custom-action)")
    p.add_argument("--context", type=Path, help="JSON file with profile, event and journey values for variables")
    p.add_argument("--path", help="the dynamic path added to the URL for this call")
    p.add_argument("--certs", type=Path, default=DEFAULT_CERTS_DIR, help="lab PKI directory (default ./certs)")
    p.add_argument("--identity", choices=IDENTITY_NAMES, default="adobe", help="lab client identity (default adobe)")
    p.add_argument("--cert", type=Path, help="any PEM client certificate (chain) instead of a lab identity")
    p.add_argument("--key", type=Path, help="its PEM private key")
    p.add_argument("--key-password", help="password of an encrypted --key")
    p.add_argument(
        "--chain",
        choices=["full", "leaf"],
        default="full",
        help="send the intermediate with the leaf (full, default) or the leaf alone",
    )
    p.add_argument(
        "--client-behavior",
        choices=["java", "openssl"],
        default="java",
        help="java (default; AJO's sender, a model): send the certificate only if the server names no "
        "CAs or an issuer of the chain; openssl: whenever one is requested (curl, Python, httpx)",
    )
    p.add_argument("--tls", choices=["1.2", "1.3"], help="pin the TLS version (default: highest, 1.3 then 1.2)")
    p.add_argument(
        "--server-ca",
        help="CA file trusted for the server's certificate, or 'system' (default: the lab's ca/server-root.pem)",
    )
    p.add_argument("--timeout", type=float, help="the journey's timeout in seconds, 1-30 (default: the action's, 30)")
    p.add_argument("--retries", type=int, default=3, help="retries after the first attempt (AJO: up to 3)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the verdict as one JSON object (always with the observed handshake messages in `handshake`)",
    )
    p.add_argument("--trace", action="store_true", help="draw the TLS conversation that happened, message by message")
    p.set_defaults(handler=_run_call)


def _run_call(ns: argparse.Namespace) -> int:
    import json

    from caller.action import load, load_context, parse
    from caller.call import CallOptions, call
    from caller.report import render

    if ns.timeout is not None and not 1 <= ns.timeout <= 30:
        raise LabError(f"--timeout {ns.timeout:g}: AJO's timeout is 1 to 30 seconds")
    if not 0 <= ns.retries <= 3:
        raise LabError(f"--retries {ns.retries}: AJO retries at most 3 times")
    url = ns.url if ns.url is not None else ("https://localhost:8443/custom-action" if ns.action is None else None)
    action = load(ns.action) if ns.action else parse({"name": "lab_call", "url": url, "method": "POST"}, "--url")
    if ns.url is not None:  # an empty --url is an error, not the default
        action = action.with_url(ns.url)
    options = CallOptions(
        pki=_lab_pki(ns),
        identity=_identity(ns),
        behavior=_behavior(ns.client_behavior),
        tls=ns.tls,
        server_ca=ns.server_ca,
        path=ns.path,
        timeout=ns.timeout,
        retries=ns.retries,
    )
    verdict = call(action, load_context(ns.context), options)
    if ns.json:
        print(json.dumps(verdict.to_json(), indent=2))
    else:
        if ns.trace:
            print(_ladder(verdict) + "\n")
        print(render(verdict, action.method))
    return int(verdict.outcome.exit_code)


def _ladder(verdict: Verdict, label: str = "") -> str:
    from caller.ladder import render_ladder

    return render_ladder(verdict, label, colour=sys.stdout.isatty())


def _lab_pki(ns: argparse.Namespace) -> LabPaths | None:
    from certs.pki import require

    needs_lab = (ns.cert is None and ns.identity != "none") or ns.server_ca is None
    return require(ns.certs) if needs_lab else None


def _identity(ns: argparse.Namespace) -> ClientIdentity | None:
    from caller.tls import Chain, ClientIdentity
    from certs.layout import Identity
    from certs.pki import require

    if ns.cert is not None or ns.key is not None:
        if ns.cert is None or ns.key is None:
            raise LabError("--cert and --key go together: give both PEM files")
        for path in (ns.cert, ns.key):
            if not path.is_file():
                what = "a directory, not a file" if path.is_dir() else "no such file"
                raise LabError(f"{path}: {what}: check --cert/--key")
        return ClientIdentity(ns.cert.name, ns.cert, ns.key, ns.key_password)
    if ns.identity == "none":
        return None
    return ClientIdentity.from_lab(require(ns.certs), Identity(ns.identity), Chain(ns.chain))


def _behavior(name: str) -> ClientBehavior:
    from caller.tls import ClientBehavior

    return ClientBehavior(name)


# --- nginx-conf ---------------------------------------------------------------------------------


def _add_nginx_conf(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "nginx-conf",
        help="write an nginx configuration that terminates mTLS in front of the lab server",
        description="Generate, from the lab PKI, an nginx configuration that terminates mTLS (trusting and "
        "advertising the Adobe-like root), answers certificate problems with nginx's own 400 pages, and forwards "
        "the verified certificate to a lab server started with --client-cert-header X-SSL-Client-Cert.",
    )
    p.add_argument("--certs", type=Path, default=DEFAULT_CERTS_DIR, help="lab PKI directory (default ./certs)")
    p.add_argument("--out", type=Path, help="write here (default: print); never overwritten without --force")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument(
        "--prefix", type=Path, default=Path("nginx-run"), help="nginx's runtime directory (default ./nginx-run)"
    )
    p.add_argument("--listen", type=int, default=8443, help="nginx's port on 127.0.0.1 (default 8443)")
    p.add_argument("--upstream", default="127.0.0.1:9443", help="the lab server behind it (default 127.0.0.1:9443)")
    p.add_argument("--verify", choices=["on", "optional"], default="on", help="ssl_verify_client (default on)")
    p.add_argument(
        "--trust", action="append", type=Path, metavar="PEM", help="client CAs (default the Adobe-like root)"
    )
    p.set_defaults(handler=_run_nginx_conf)


def _run_nginx_conf(ns: argparse.Namespace) -> int:
    from certs.pki import require
    from mtls_lab.nginx_conf import NginxSettings, render, write

    settings = NginxSettings(require(ns.certs), ns.prefix, ns.listen, ns.upstream, ns.verify, tuple(ns.trust or ()))
    if ns.out is None:
        print(render(settings), end="")
        return ExitCode.OK
    if ns.out.exists() and not ns.force:
        raise LabError(f"{ns.out} exists: choose another --out, or replace it with --force")
    write(settings, ns.out)
    print(f"wrote {ns.out}; run: nginx -p {ns.prefix.resolve()} -c {ns.out.resolve()}")
    return ExitCode.OK


# --- probe --------------------------------------------------------------------------------------


def _add_probe(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "probe",
        help="diagnose a real endpoint the way AJO would meet it",
        description="Connect to an endpoint as AJO would (each connection a TLS handshake and one harmless GET of "
        "the URL's path) and report its server chain, TLS versions, whether it requests a client certificate, the "
        "CA names it advertises and what AJO's Java client will do with them, and the likely outcome with fixes. "
        "It cannot see whether the endpoint trusts Adobe's real certificate (only Adobe holds the key). Exit "
        "codes: 0 nothing to fix, 1 fixes listed, 2 usage, 5 unreachable, 7 plain HTTP, 8 not TLS, 9 timeout.",
    )
    p.add_argument("url", help="https://host[:port][/path]")
    p.add_argument("--server-ca", default="system", help="CA file for the server's chain, or 'system' (default)")
    p.add_argument(
        "--certs",
        type=Path,
        default=DEFAULT_CERTS_DIR,
        help="lab PKI (default ./certs): for --try-identity and to recognise the lab's stand-in CAs",
    )
    p.add_argument(
        "--try-identity",
        action="append",
        choices=IDENTITY_NAMES[:-1],
        metavar="NAME",
        help="also present this lab identity, repeatable, to see how the endpoint treats it",
    )
    p.add_argument("--cert", type=Path, help="also present this PEM certificate (chain)")
    p.add_argument("--key", type=Path, help="its PEM private key")
    p.add_argument("--key-password", help="password of an encrypted --key")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per connection (default 5)")
    p.add_argument("--json", action="store_true", help="the report as one JSON object")
    p.set_defaults(handler=_run_probe)


def _run_probe(ns: argparse.Namespace) -> int:
    import json

    from caller.probe import probe, render
    from caller.tls import Chain, ClientIdentity
    from certs.layout import Identity
    from certs.pki import require

    pki = require(ns.certs) if (ns.try_identity or (ns.certs / "manifest.json").exists()) else None
    tries = [ClientIdentity.from_lab(pki, Identity(name), Chain.FULL) for name in ns.try_identity or [] if pki]
    if ns.cert is not None or ns.key is not None:
        tries.append(_identity(ns) or ClientIdentity("?", ns.cert, ns.key))
    report = probe(ns.url, ns.server_ca, pki, tries, ns.timeout)
    print(json.dumps(report.to_json(), indent=2) if ns.json else render(report))
    return ExitCode.PROBLEMS_FOUND if report.fixes else ExitCode.OK


# --- matrix and demo ----------------------------------------------------------------------------


def _add_matrix(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "matrix",
        help="run every scenario (modes x TLS versions x identities x client models) and compare verdicts",
        description="Start the servers the scenarios need on free loopback ports, replay an AJO call in each, "
        "and print one row per scenario with its verdict, marked where it differs from the expected one "
        "(written in mtls_lab/scenarios.py). Exits 6 if any verdict differs. The lab PKI is generated in "
        "--certs if it is missing.",
    )
    p.add_argument("--certs", type=Path, default=DEFAULT_CERTS_DIR, help="lab PKI directory (default ./certs)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable rows with expected, actual and match")
    out.add_argument("--markdown", action="store_true", help="a Markdown table to paste into a ticket")
    out.add_argument("--list", action="store_true", help="list the scenario ids and exit")
    p.add_argument("--only", action="append", metavar="ID", help="run only this scenario id (repeatable)")
    p.add_argument(
        "--filter",
        action="append",
        metavar="GLOB",
        help="run the scenarios whose id matches, e.g. 'mtls/tls1.3/*' (repeatable: any of them)",
    )
    p.add_argument("--trace", metavar="ID", help="run one scenario and draw its TLS conversation")
    p.add_argument(
        "--against",
        action="append",
        metavar="MODE=URL",
        help="call this already-running server instead of starting servers (repeatable, one per mode, e.g. "
        "mtls=https://server-mtls:8443); runs the scenarios whose server is `serve --mode MODE` with its "
        f"defaults {_env('against')}",
    )
    p.set_defaults(handler=_run_matrix)


def _run_matrix(ns: argparse.Namespace) -> int:
    from mtls_lab import matrix
    from mtls_lab.scenarios import SCENARIOS

    if ns.trace:
        ns.only = [ns.trace]
    chosen = matrix.select(SCENARIOS, ns.only, ns.filter)
    if ns.only and len(chosen) < len(set(ns.only)):
        unknown = sorted(set(ns.only) - {s.id for s in SCENARIOS})
        raise LabError(f"--only {unknown[0]}: no such scenario: `mtls-lab matrix --list` shows the ids")
    if not chosen:
        raise LabError(
            f"--filter {' '.join(ns.filter or [])}: matches no scenario: `mtls-lab matrix --list` shows the ids"
        )
    if ns.list:
        print("\n".join(s.id for s in chosen))
        return ExitCode.OK
    if ns.against:
        from certs.pki import require
        from mtls_lab.against import run_against

        results = run_against(chosen, ns.against, require(ns.certs), progress=matrix.terminal_progress())
    else:
        results = matrix.run(chosen, _ensure_pki(ns.certs), progress=matrix.terminal_progress())
    if ns.trace:
        print(_ladder(results[0].verdict, matrix.server_label(results[0].scenario)) + "\n")
    render = matrix.render_json if ns.json else matrix.render_markdown if ns.markdown else matrix.render_text
    print(render(results))
    return ExitCode.OK if all(r.match for r in results) else ExitCode.MISMATCH


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="tell the seed's story with live calls: the 403, Adobe's fix, and the traps next to it",
        description="Generate the lab PKI if it is missing, then show, with live calls on 127.0.0.1, why AJO's "
        "custom action gets a 403, what Adobe's advice (mTLS-only, trusting Adobe's root) changes, and the "
        "traps next to it: the missing intermediate, the pinned leaf at rotation, the CA migration and TLS "
        "versions. Exits 0 only if every step behaved as the story says (6 otherwise). No Docker needed.",
    )
    p.add_argument("--certs", type=Path, default=DEFAULT_CERTS_DIR, help="lab PKI directory (default ./certs)")
    p.add_argument("--trace", action="store_true", help="draw each step's TLS conversation")
    p.set_defaults(handler=_run_demo)


def _run_demo(ns: argparse.Namespace) -> int:
    from mtls_lab.demo import run_demo

    text, good = run_demo(_ensure_pki(ns.certs), trace=ns.trace, colour=sys.stdout.isatty())
    print(text)
    return ExitCode.OK if good else ExitCode.MISMATCH


def _ensure_pki(root: Path) -> LabPaths:
    from certs.pki import generate, require

    result = generate(root, if_missing=True)
    if not result.reused:
        print(f"(generated the lab PKI in {root} in {result.seconds:.2f} s)", file=sys.stderr)
    return require(root)


# --- health -------------------------------------------------------------------------------------


def _add_health(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "health",
        help="is a lab server up and ready? (the compose healthcheck)",
        description="GET the lab server's /_lab/health holding a lab identity, sent the way AJO's Java client "
        "does (so it works in mtls mode too), and print one line. Exit codes: 0 ready, 1 HTTP error, 3 TLS rejected "
        "(only with --strict: by default a TLS alert proves the server is up and counts as ready), "
        "4 server certificate not from the lab PKI, 5 down.",
    )
    p.add_argument("--url", default="https://127.0.0.1:8443", help="the server (default https://127.0.0.1:8443)")
    p.add_argument("--certs", type=Path, default=DEFAULT_CERTS_DIR, help="lab PKI directory (default ./certs)")
    p.add_argument("--identity", choices=IDENTITY_NAMES, default="adobe", help="lab identity held (default adobe)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    p.add_argument("--strict", action="store_true", help="a TLS alert is not ready: exit 3")
    p.set_defaults(handler=_run_health)


def _run_health(ns: argparse.Namespace) -> int:
    from certs.layout import Identity
    from certs.pki import require
    from mtls_lab.health import probe

    identity = None if ns.identity == "none" else Identity(ns.identity)
    found = probe(ns.url, require(ns.certs), identity, ns.timeout)
    print(found.describe())
    return int(found.state.exit_code(ns.strict))


if __name__ == "__main__":
    raise SystemExit(main())
