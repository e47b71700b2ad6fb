"""The certificate-lifecycle commands of ``mtls-lab``: ``adobe-api`` and ``trust-sync`` (thin: they forward)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.cli.options import json_option, listen_options, pki_option
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.lifecycle.phases import API_PATH, DEFAULT_PORT, ChainMode, Phase

if TYPE_CHECKING:
    from mtls_lab.cli.options import Commands


def add_adobe_api(sub: Commands) -> None:
    """Register ``mtls-lab adobe-api``."""
    p = sub.add_parser(
        "adobe-api",
        parents=[listen_options(DEFAULT_PORT), pki_option()],
        help="serve a local stand-in for Adobe's public-certificate API, at a chosen point of the lifecycle",
        description=f"Serve GET {API_PATH} over HTTPS (the lab server's "
        "certificate, trusted via certs/ca/server-root.pem) in Adobe's documented format, with the lab's "
        "Adobe-like certificates, so that certificate automation can meet a rotation and the CA migration before "
        "production. It wants the headers Authorization: Bearer, x-api-key and x-gw-ims-org-id and answers like "
        "Adobe's gateway without them. Phases: current = today's certificate; overlap = today's and next year's, "
        "both valid; rotated = next year's only (the old one is revoked); migration = the certificate from the "
        'new DigiCert Assured ID hierarchy. PUT /_lab/phase {"phase": NAME} switches phases while it runs.',
    )
    p.add_argument(
        "--phase", choices=[p.value for p in Phase], default="current", help="point in the lifecycle (default current)"
    )
    p.add_argument(
        "--chain",
        choices=[c.value for c in ChainMode],
        default="leaf",
        help="publicCertificate holds the certificate alone, as Adobe documents (leaf, default), or also its "
        "intermediate and root (full, a lab extension)",
    )
    p.add_argument("--token", help="accept only this bearer token (default: any non-empty one)")
    p.add_argument("--api-key", help="accept only this x-api-key (default: any non-empty one)")
    p.add_argument("--quiet", action="store_true", help="log only errors")
    p.set_defaults(handler=_run_adobe_api)


def _run_adobe_api(ns: argparse.Namespace) -> int:
    from mtls_lab.lifecycle.api import AdobeApiConfig, serve_api

    config = AdobeApiConfig(
        phase=Phase(ns.phase),
        host=ns.host,
        port=ns.port,
        certs=ns.certs,
        chain=ChainMode(ns.chain),
        token=ns.token,
        api_key=ns.api_key,
        quiet=ns.quiet,
    )
    serve_api(config)
    return ExitCode.OK


def add_trust_sync(sub: Commands) -> None:
    """Register ``mtls-lab trust-sync``."""
    p = sub.add_parser(
        "trust-sync",
        parents=[pki_option(), json_option("print the report as one JSON object")],
        help="keep a trust bundle of Adobe's CAs up to date from the public-certificate API (a reference client)",
        description="Read every page of Adobe's public-certificate API (or `mtls-lab adobe-api`), find the CAs that "
        "issued each listed certificate, and keep a PEM bundle of those roots and intermediates (never leaves) "
        "plus a state file. New CAs are added; a CA stays while any certificate that needs it is still valid, "
        "listed or not (the state remembers); a CA nothing valid needs is reported and removed only with --prune. "
        "A run that changes nothing writes nothing. Every option can also come from MTLS_LAB_<OPTION> (e.g. "
        "MTLS_LAB_TOKEN). Exit codes: 0 done (warnings included), 1 HTTP error (e.g. 401/403: the message names "
        "the header), 2 usage or a missing issuer, 4 the API's certificate not trusted, 5 unreachable, "
        "10 an answer not in Adobe's format.",
    )
    p.add_argument(
        "--api", required=True, help="API base or endpoint URL: https://platform.adobe.io, https://127.0.0.1:8447"
    )
    p.add_argument("--token", help="IMS access token, sent as Authorization: Bearer (env MTLS_LAB_TOKEN)")
    p.add_argument("--api-key", help="the x-api-key header (env MTLS_LAB_API_KEY)")
    p.add_argument("--org-id", help="the x-gw-ims-org-id header (env MTLS_LAB_ORG_ID)")
    p.add_argument("--out", type=Path, default=Path("adobe-trust.pem"), help="the bundle (default ./adobe-trust.pem)")
    p.add_argument("--state", type=Path, help="the state file (default: the bundle's name with .state.json)")
    p.add_argument(
        "--ca-dir",
        type=Path,
        help="directory of CA files (PEM or DER) to find issuers in, e.g. DigiCert's root and intermediate; the "
        "lab: certs/ca",
    )
    p.add_argument(
        "--server-ca",
        help="CA file for the API's HTTPS certificate, or 'system' (default: the lab's ca/server-root.pem in "
        "--certs if present, else system)",
    )
    p.add_argument("--warn-days", type=int, default=30, help="warn about certificates expiring within N days (30)")
    p.add_argument("--prune", action="store_true", help="remove CAs that no valid certificate needs")
    p.add_argument("--limit", type=int, help="page size to ask for (default: the API's)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    p.set_defaults(handler=_run_trust_sync)


def _run_trust_sync(ns: argparse.Namespace) -> int:
    from mtls_lab.lifecycle.client import SYSTEM, Credentials
    from mtls_lab.lifecycle.trust_sync import SyncOptions, render, sync

    if ns.warn_days < 0:
        raise LabError(f"--warn-days {ns.warn_days}: give a number of days, 0 or more")
    if ns.limit is not None and ns.limit < 1:
        raise LabError(f"--limit {ns.limit}: give a page size of 1 or more")
    lab_ca = LabPaths(ns.certs).ca(CA.SERVER_ROOT)
    options = SyncOptions(
        api=ns.api,
        out=ns.out,
        credentials=Credentials(ns.token, ns.api_key, ns.org_id),
        server_ca=ns.server_ca or (lab_ca if lab_ca.is_file() else SYSTEM),
        ca_dir=ns.ca_dir,
        state=ns.state,
        warn_days=ns.warn_days,
        prune=ns.prune,
        limit=ns.limit,
        timeout=ns.timeout,
    )
    report = sync(options)
    print(json.dumps(report.to_json(), indent=2) if ns.json else render(report))
    return ExitCode.OK
