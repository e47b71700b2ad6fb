"""``mtls-lab certs``: generate the lab PKI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mtls_lab.certs.layout import DEFAULT_CERTS_DIR
from mtls_lab.errors import ExitCode

if TYPE_CHECKING:
    from mtls_lab.cli.options import Commands


def add_certs(sub: Commands) -> None:
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
    from mtls_lab.certs.pki import generate

    result = generate(ns.out, force=ns.force, if_missing=ns.if_missing)
    if result.reused:
        print(f"lab PKI in {ns.out} already complete: reused it (nothing written)")
        return ExitCode.OK
    print(f"wrote the lab PKI to {ns.out} in {result.seconds:.2f} s ({len(result.written)} files, keys 0600):")
    for path in result.written:
        print(f"  {path}")
    print("These CAs are lab stand-ins (named MTLS LAB): never install them in a system trust store.")
    return ExitCode.OK
