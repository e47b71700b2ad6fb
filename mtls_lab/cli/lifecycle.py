"""The certificate-lifecycle commands of ``mtls-lab``: ``adobe-api``, ``trust-sync`` and ``idp-leaves`` (thin:
they forward)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from mtls_lab.certs.layout import ADOBE_CN, CA, AdobeApp, LabPaths
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
        "Adobe-like certificates of several Adobe applications, so that certificate automation can meet a "
        "reissue and the CA migration before production. It wants the headers Authorization: Bearer, x-api-key, "
        "x-gw-ims-org-id and Content-Type: application/json and answers like Adobe's gateway without them. Pages "
        "count from 1; next/prev links are templates ({&limit}). Phases, in the order they come: "
        + "; ".join(f"{phase.value} = {phase.summary}" for phase in Phase)
        + '. PUT /_lab/phase {"phase": NAME} switches phases while it runs.',
    )
    p.add_argument(
        "--phase", choices=[p.value for p in Phase], default="current", help="point in the lifecycle (default current)"
    )
    p.add_argument(
        "--app",
        action="append",
        choices=[a.value for a in AdobeApp],
        help="list only this application's certificates (repeatable; default all: "
        + ", ".join(f"{a.value} = {a.common_name}" for a in AdobeApp)
        + ")",
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
        applications=tuple(AdobeApp(a) for a in dict.fromkeys(ns.app)) if ns.app else tuple(AdobeApp),
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
        description="Read every page of Adobe's public-certificate API (or `mtls-lab adobe-api`), keep the "
        "certificates of the common names asked for (--cn), find the CAs that issued them, and keep a PEM bundle of "
        "those roots and intermediates (never leaves) plus a state file. New CAs are added; a CA stays while any "
        "certificate that needs it is still valid, listed or not (the state remembers); --stage adds the next "
        "hierarchy's CAs ahead of the switch, as Adobe asks, and they stay; a CA nothing valid needs and nobody "
        "staged is reported and removed only with --prune. An existing --out must be a trust bundle and an existing "
        "--state trust-sync's: nothing else is ever written over. A run that changes nothing writes nothing. Run it "
        "daily. Every option can also come from MTLS_LAB_<OPTION> (e.g. MTLS_LAB_TOKEN). Exit codes: 0 done "
        "(warnings included), 1 HTTP error (e.g. 401/403: the message names the header), 2 usage, a file that is "
        "not trust-sync's or a missing issuer, 4 the API's certificate not trusted, 5 unreachable, 10 an answer not "
        "in Adobe's format.",
    )
    p.add_argument(
        "--api",
        required=True,
        help=f"API base or endpoint URL: https://platform.adobe.io, https://127.0.0.1:{DEFAULT_PORT}",
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
    p.add_argument(
        "--cn",
        action="append",
        metavar="NAME",
        help=f"keep the certificates listed with this certCommonName (repeatable; default {ADOBE_CN}, AJO's custom "
        "actions); the others are reported as skipped",
    )
    p.add_argument(
        "--stage",
        action="append",
        metavar="next-hierarchy|FILE",
        help="add CAs ahead of the certificates that will need them, and keep them (--prune too): next-hierarchy = "
        "DigiCert Assured ID Root G2 and Client CA G2 from --ca-dir, or the CA certificates of FILE (repeatable; "
        "remembered by the state)",
    )
    p.add_argument(
        "--warn-days",
        type=int,
        help="warn about certificates expiring within N days (default: Adobe's reissue point scaled to each "
        "certificate's lifetime: 60 days for today's 13 months, 7 for a 47-day certificate)",
    )
    p.add_argument("--prune", action="store_true", help="remove CAs that no valid certificate needs and nobody staged")
    p.add_argument("--limit", type=int, help="page size to ask for (default: the API's)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    p.set_defaults(handler=_run_trust_sync)


def _run_trust_sync(ns: argparse.Namespace) -> int:
    from mtls_lab.lifecycle.client import SYSTEM, Credentials
    from mtls_lab.lifecycle.trust_sync import SyncOptions, render, sync

    if ns.warn_days is not None and ns.warn_days < 0:
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
        common_names=tuple(ns.cn) if ns.cn else (ADOBE_CN,),
        stage=tuple(ns.stage or ()),
        warn_days=ns.warn_days,
        prune=ns.prune,
        limit=ns.limit,
        timeout=ns.timeout,
    )
    report = sync(options)
    print(json.dumps(report.to_json(), indent=2) if ns.json else render(report))
    return ExitCode.OK


def add_idp_leaves(sub: Commands) -> None:
    """Register ``mtls-lab idp-leaves``."""
    p = sub.add_parser(
        "idp-leaves",
        parents=[pki_option(), json_option("print the leaves written as one JSON object")],
        help="write the leaf certificates the public-certificate API lists, one PEM per file, for an identity "
        "provider upload (certificate-based authentication)",
        description="Read Adobe's public-certificate API (or `mtls-lab adobe-api`) and write each certificate "
        "listed under --cn alone in OUT/<cn>-<expiry>.pem: what an identity provider (Entra ID, Okta, the lab's "
        "`serve --idp-register`) registers for certificate-based custom authentication, where Adobe asks for the "
        "leaf, not its CAs. Prints each one's SHA-1 thumbprint (as Entra ID lists it), x5t and expiry. Files "
        "already there with the same certificate are kept; nothing is overwritten.",
    )
    p.add_argument("--api", required=True, help="API base or endpoint URL: https://platform.adobe.io, https://...")
    p.add_argument("--token", help="IMS access token, sent as Authorization: Bearer (env MTLS_LAB_TOKEN)")
    p.add_argument("--api-key", help="the x-api-key header (env MTLS_LAB_API_KEY)")
    p.add_argument("--org-id", help="the x-gw-ims-org-id header (env MTLS_LAB_ORG_ID)")
    p.add_argument("--out", type=Path, default=Path("idp-leaves"), help="directory to write (default ./idp-leaves)")
    p.add_argument("--cn", default=ADOBE_CN, help=f"the certCommonName to take (default {ADOBE_CN})")
    p.add_argument("--server-ca", help="CA file for the API's HTTPS certificate, or 'system' (default: as trust-sync)")
    p.set_defaults(handler=_run_idp_leaves)


def _run_idp_leaves(ns: argparse.Namespace) -> int:
    from mtls_lab.lifecycle.client import SYSTEM, Credentials, api_context, fetch_all
    from mtls_lab.lifecycle.leaves import render, write_leaves

    lab_ca = LabPaths(ns.certs).ca(CA.SERVER_ROOT)
    context = api_context(ns.server_ca or (lab_ca if lab_ca.is_file() else SYSTEM))
    fetched = fetch_all(ns.api, Credentials(ns.token, ns.api_key, ns.org_id), context)
    leaves = write_leaves(fetched, ns.out, ns.cn)
    print(json.dumps({"leaves": [leaf.to_json() for leaf in leaves]}, indent=2) if ns.json else render(leaves))
    return ExitCode.OK
