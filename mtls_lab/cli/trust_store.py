"""``mtls-lab trust-store``: read a trust store offline, say whether it accepts Adobe's chains (thin: it forwards)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from mtls_lab.cli.options import json_option

if TYPE_CHECKING:
    from mtls_lab.cli.options import Commands

FORMATS = ("pem", "dir", "pkcs12", "jks")


def add_trust_store(sub: Commands) -> None:
    """Register ``mtls-lab trust-store``."""
    p = sub.add_parser(
        "trust-store",
        parents=[json_option("print the checks as JSON")],
        help="check a trust store (PEM bundle, folder, PKCS12, JKS) for Adobe's real chains, offline",
        description="Read the trust store behind ssl_client_certificate, SSLCACertificateFile or a Java "
        "trustStore (never changing it) and say, for today's chain and the CA migration's, whether the real "
        "DigiCert root and intermediate are there and so whether an endpoint using it accepts Adobe's "
        "certificate; flag expired entries, a pinned Adobe leaf and lab CAs; for Java stores, the CA names the "
        "endpoint advertises. Each problem comes with the command that fixes it. Exit 0 ready, 1 not ready, "
        "2 not a usable trust store.",
    )
    p.add_argument("store", type=Path, metavar="FILE", help="the trust store: a file, or a folder of PEM files")
    p.add_argument("--password", help="the store's password (PKCS12, JKS); also MTLS_LAB_PASSWORD")
    p.add_argument("--format", choices=FORMATS, help="the store's format (default: read from its content)")
    p.add_argument(
        "--roots",
        type=Path,
        help="a PEM bundle to find Adobe's real roots in (default: certifi's, Mozilla's root store)",
    )
    p.set_defaults(handler=_run_trust_store)


def _run_trust_store(ns: argparse.Namespace) -> int:
    from mtls_lab.caller.store_files import StoreFormat, read_store
    from mtls_lab.caller.trust_store import check_store, real_roots, render

    store = read_store(ns.store, ns.password, StoreFormat(ns.format) if ns.format else None)
    report = check_store(store, real_roots(ns.roots))
    print(json.dumps(report.to_json(), indent=2) if ns.json else render(report))
    return report.exit_code
