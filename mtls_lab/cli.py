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

from certs.layout import ADOBE_CN, DEFAULT_CERTS_DIR
from mtls_lab import __version__
from mtls_lab.errors import ExitCode, LabError

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
    from server.config import Mode, ServerConfig, TLSVersion

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
    p.add_argument("--quiet", action="store_true", help=f"log only rejected handshakes and errors {_env('quiet')}")
    p.set_defaults(handler=_run_serve)


def _run_serve(ns: argparse.Namespace) -> int:
    from server.config import Mode, ServerConfig, TLSVersion
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
        quiet=ns.quiet,
    )
    serve(config)
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
