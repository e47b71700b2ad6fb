"""``mtls-lab call`` (replay a custom action like AJO) and ``mtls-lab probe`` (diagnose a real endpoint)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mtls_lab.cli.options import (
    IDENTITY_NAMES,
    SENDER_NAMES,
    certificate_options,
    given_identity,
    json_option,
    ladder,
    pki_option,
    report_options,
    save_report,
    start_report,
)
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.vocabulary import LAB_PORT, AJOLimits

if TYPE_CHECKING:
    from mtls_lab.certs.layout import LabPaths
    from mtls_lab.cli.options import Commands


def add_call(sub: Commands) -> None:
    p = sub.add_parser(
        "call",
        parents=[
            pki_option(),
            certificate_options(),
            json_option(
                "print the verdict as one JSON object (always with the observed handshake messages in `handshake`)"
            ),
            report_options(server_record=True),
        ],
        help="replay a custom action the way AJO would, and explain the outcome",
        description="Replay an AJO custom action against an endpoint with an Adobe-like client certificate, "
        f"following AJO's runtime rules (up to {AJOLimits.MAX_RETRIES} retries inside the timeout, none on "
        "401/403/404 or after a first-call timeout, 302 redirects followed, a timeout reached during the retries "
        "counted as a timeout), "
        "with its authentication (custom authorization: the token call first, without the client certificate), "
        "and print a verdict: which call failed, the failing layer, the cause and the fix. Exit codes: 0 accepted, "
        "1 HTTP error, 2 usage, 3 TLS rejected by the server, 4 server certificate not trusted, 5 connection error "
        "or timeout.",
    )
    p.add_argument("action", nargs="?", type=Path, help="custom-action JSON file (default: a plain POST to --url)")
    p.add_argument(
        "--url", help=f"endpoint URL, replacing the action's (default https://localhost:{LAB_PORT}/custom-action)"
    )
    p.add_argument(
        "--token-url",
        help="the custom authorization's token endpoint, replacing the one in the action (the action file stays "
        "as pasted from AJO); an aud equal to the old endpoint follows it",
    )
    p.add_argument(
        "--token-cert",
        action="store_true",
        help="also present the client certificate on the token call (AJO most likely does not: a model; Adobe "
        "says OAuth token endpoints must not use mTLS)",
    )
    p.add_argument("--context", type=Path, help="JSON file with profile, event and journey values for variables")
    p.add_argument("--path", help="the dynamic path added to the URL for this call")
    p.add_argument("--identity", choices=IDENTITY_NAMES, default="adobe", help="lab client identity (default adobe)")
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
    p.add_argument(
        "--timeout",
        type=float,
        help=f"the journey's timeout in seconds, {AJOLimits.TIMEOUT_MIN:g}-{AJOLimits.TIMEOUT_MAX:g} "
        f"(default: the action's, {AJOLimits.TIMEOUT_DEFAULT:g})",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=AJOLimits.MAX_RETRIES,
        help=f"retries after the first attempt (AJO: up to {AJOLimits.MAX_RETRIES})",
    )
    p.add_argument("--trace", action="store_true", help="draw the TLS conversation that happened, message by message")
    p.add_argument(
        "--sender",
        choices=SENDER_NAMES,
        help="call as this Adobe sender: its answer deadline and retries as Adobe documents them, and the verdict "
        "read against its requirements (default: an AJO custom action, without the profile's lines)",
    )
    p.add_argument(
        "--egress",
        choices=["direct", "proxy"],
        help='the path out of Adobe: direct (as "Send test request", which bypasses the egress proxy) or proxy '
        "(a live journey through the static-IP egress proxy, modelled by the source address 127.0.0.2); "
        "default: direct, without the note",
    )
    p.set_defaults(handler=_run_call)


def _run_call(ns: argparse.Namespace) -> int:
    import datetime as dt
    import json
    from dataclasses import replace

    from mtls_lab.caller import senders
    from mtls_lab.caller.action import load, load_context, parse
    from mtls_lab.caller.call import CallOptions, call
    from mtls_lab.caller.egress import Egress
    from mtls_lab.caller.report import render
    from mtls_lab.caller.rules import RETRIES_RULE, TIMEOUT_RULE, timeout_allowed
    from mtls_lab.caller.tls import ClientBehavior

    if ns.timeout is not None and not timeout_allowed(ns.timeout):
        raise LabError(f"--timeout {ns.timeout:g}: {TIMEOUT_RULE}")
    if not 0 <= ns.retries <= AJOLimits.MAX_RETRIES:
        raise LabError(f"--retries {ns.retries}: {RETRIES_RULE}")
    default = f"https://localhost:{LAB_PORT}/custom-action"
    url = ns.url if ns.url is not None else (default if ns.action is None else None)
    action = load(ns.action) if ns.action else parse({"name": "lab_call", "url": url, "method": "POST"}, "--url")
    if ns.url is not None:  # an empty --url is an error, not the default
        action = action.with_url(ns.url)
    if ns.token_url is not None:
        action = action.with_token_url(ns.token_url)
    start_report(ns)
    identity = given_identity(ns)
    options = CallOptions(
        pki=_lab_pki(ns),
        identity=identity,
        behavior=ClientBehavior(ns.client_behavior),
        tls=ns.tls,
        server_ca=ns.server_ca,
        path=ns.path,
        timeout=ns.timeout,
        retries=ns.retries,
        token_cert=ns.token_cert,
    )
    sender = senders.profile(ns.sender) if ns.sender else None
    options = senders.apply(sender, options) if sender else options
    egress = Egress(ns.egress) if ns.egress else None
    options = replace(options, source_address=egress.source_address) if egress else options
    started = dt.datetime.now(dt.UTC)
    verdict = call(action, load_context(ns.context), options)
    found = senders.notes(sender, verdict) if sender else []
    if ns.json:
        data = verdict.to_json()
        if egress:
            data["egress"] = {"path": egress.value, "source_address": egress.source_address, "note": egress.note()}
        if sender:
            data["sender"] = {"name": sender.sender.value, "label": sender.label, "notes": found}
            data["sender"]["facts"] = [f.line() for f in sender.facts]
        print(json.dumps(data, indent=2))
    else:
        if ns.trace:
            print(ladder(verdict) + "\n")
        print(render(verdict, action.method))
        if egress:
            print(f"  {egress.note()}")
        if sender:
            print("\n".join(sender.lines() + [f"  sender note: {note}" for note in found]))
    if ns.report:
        from mtls_lab.report.reports import call_report

        html = call_report(
            verdict,
            argv=ns.command_line,
            pki=options.pki,
            identity=identity,
            server_record=ns.server_record,
            started=started,
        )
        save_report(ns, html)
    return int(verdict.outcome.exit_code)


def _lab_pki(ns: argparse.Namespace) -> LabPaths | None:
    from mtls_lab.certs.pki import require

    needs_lab = (ns.cert is None and ns.identity != "none") or ns.server_ca is None
    return require(ns.certs) if needs_lab else None


def add_probe(sub: Commands) -> None:
    p = sub.add_parser(
        "probe",
        parents=[
            pki_option(),
            certificate_options(),
            json_option("the report as one JSON object"),
            report_options(server_record=True),
        ],
        help="diagnose a real endpoint the way AJO would meet it",
        description="Connect to an endpoint as AJO would (each connection a TLS handshake and one harmless GET of "
        "the URL's path) and report its server chain, TLS versions, whether it requests a client certificate, the "
        "CA names it advertises and what AJO's Java client will do with them, a guess at its TLS stack, the likely "
        "outcome with fixes, and one readiness verdict per Adobe CA hierarchy (today's and the migration's). "
        "With --check-trust it also tests whether the endpoint trusts Adobe's real DigiCert roots, with probe "
        "chains that fail by construction (docs/trust-check.md). Exit codes: 0 nothing to fix, 1 fixes listed, "
        "2 usage, 5 unreachable, 7 plain HTTP, 8 not TLS, 9 timeout.",
    )
    p.add_argument("url", help="https://host[:port][/path]")
    p.add_argument("--server-ca", default="system", help="CA file for the server's chain, or 'system' (default)")
    p.add_argument(
        "--try-identity",
        action="append",
        choices=IDENTITY_NAMES[:-1],
        metavar="NAME",
        help="also present this lab identity, repeatable, to see how the endpoint treats it",
    )
    p.add_argument(
        "--check-trust",
        action="store_true",
        help="also test whether the endpoint trusts DigiCert Global Root G2 (today) and DigiCert Assured ID "
        "Root G2 (the migration): two extra connections, each presenting a probe chain under the real root whose "
        "signature is false, so it never passes",
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per connection (default 5)")
    p.add_argument(
        "--sender",
        choices=SENDER_NAMES,
        help="read the endpoint against this Adobe sender's documented requirements (an HTTP API destination "
        "wants an mTLS-only endpoint that answers within 2 s), with the profile's facts and sources",
    )
    p.set_defaults(handler=_run_probe)


def _run_probe(ns: argparse.Namespace) -> int:
    import json

    from mtls_lab.caller import senders
    from mtls_lab.caller.probe import probe, render
    from mtls_lab.caller.tls import Chain, ClientIdentity
    from mtls_lab.certs.layout import Identity
    from mtls_lab.certs.pki import require

    start_report(ns)
    pki = require(ns.certs) if (ns.try_identity or (ns.certs / "manifest.json").exists()) else None
    tries = [ClientIdentity.from_lab(pki, Identity(name), Chain.FULL) for name in ns.try_identity or [] if pki]
    if ns.cert is not None or ns.key is not None:
        tries.append(given_identity(ns) or ClientIdentity("?", ns.cert, ns.key))
    if ns.report:
        from mtls_lab.report.collect import run_probe
        from mtls_lab.report.reports import probe_report

        run = run_probe(ns.url, ns.server_ca, pki, tries, ns.timeout, ns.check_trust)
        report = run.report
        html = probe_report(run, argv=ns.command_line, pki=pki, server_record=ns.server_record)
    else:
        report = probe(ns.url, ns.server_ca, pki, tries, ns.timeout, check_trust=ns.check_trust)
    sender = senders.profile(ns.sender) if ns.sender else None
    found = senders.probe_notes(sender, report) if sender else []
    if ns.json:
        data = report.to_json()
        if sender:
            notes = [{"text": note.text, "problem": note.problem} for note in found]
            data["sender"] = {"name": sender.sender.value, "label": sender.label, "notes": notes}
            data["sender"]["facts"] = [f.line() for f in sender.facts]
        print(json.dumps(data, indent=2))
    else:
        print(render(report))
        if sender:
            marked = [f"  sender {'PROBLEM' if n.problem else 'note'}: {n.text}" for n in found]
            print("\n".join(["", *sender.lines(), *marked]))
    if ns.report:
        save_report(ns, html)
    problems = report.fixes or any(note.problem for note in found)
    return ExitCode.PROBLEMS_FOUND if problems else ExitCode.OK
