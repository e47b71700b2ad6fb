"""``mtls-lab matrix``, ``mtls-lab demo`` and ``mtls-lab health``: the scenarios, the story, the healthcheck."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mtls_lab.cli.options import (
    IDENTITY_NAMES,
    SENDER_NAMES,
    ensure_pki,
    env,
    ladder,
    pki_option,
    report_options,
    save_report,
    start_report,
)
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.vocabulary import LAB_PORT

if TYPE_CHECKING:
    from mtls_lab.cli.options import Commands


def add_matrix(sub: Commands) -> None:
    p = sub.add_parser(
        "matrix",
        parents=[pki_option(), report_options()],
        help="run every scenario (modes x TLS versions x identities x client models) and compare verdicts",
        description="Start the servers the scenarios need on free loopback ports, replay an AJO call in each, "
        "and print one row per scenario with its verdict, marked where it differs from the expected one "
        "(written in mtls_lab/matrix/scenarios.py). Exits 6 if any verdict differs. The lab PKI is generated in "
        "--certs if it is missing.",
    )
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
        f"defaults {env('against')}",
    )
    p.set_defaults(handler=_run_matrix)


def _run_matrix(ns: argparse.Namespace) -> int:
    from mtls_lab.matrix import runner
    from mtls_lab.matrix.scenarios import SCENARIOS

    if ns.trace:
        ns.only = [ns.trace]
    chosen = runner.select(SCENARIOS, ns.only, ns.filter)
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
    start_report(ns)
    recorder = None
    if ns.against:
        from mtls_lab.certs.pki import require
        from mtls_lab.matrix.against import run_against

        pki = require(ns.certs)
        results = run_against(chosen, ns.against, pki, progress=runner.terminal_progress())
    else:
        from mtls_lab.report.collect import Recorder

        pki, recorder = ensure_pki(ns.certs), Recorder()
        results = runner.run(chosen, pki, progress=runner.terminal_progress(), observe=recorder)
    if ns.trace:
        print(ladder(results[0].verdict, runner.server_label(results[0].scenario)) + "\n")
    render = runner.render_json if ns.json else runner.render_markdown if ns.markdown else runner.render_text
    print(render(results))
    if ns.report:
        from mtls_lab.report.reports import matrix_report

        sides = recorder.sides if recorder else None
        save_report(ns, matrix_report("ajo-mtls-lab matrix: every scenario, live", results, pki, sides))
    return ExitCode.OK if all(r.match for r in results) else ExitCode.MISMATCH


def add_demo(sub: Commands) -> None:
    p = sub.add_parser(
        "demo",
        parents=[pki_option(), report_options()],
        help="tell the community question's story with live calls: the 403, Adobe's fix, and the traps next to it",
        description="Generate the lab PKI if it is missing, then show, with live calls on 127.0.0.1, why AJO's "
        "custom action gets a 403, what Adobe's advice (mTLS-only, trusting Adobe's root) changes, and the "
        "traps next to it: the missing intermediate, the pinned leaf at rotation, the CA migration and TLS "
        "versions. Exits 0 only if every step behaved as the story says (6 otherwise). No Docker needed.",
    )
    p.add_argument("--trace", action="store_true", help="draw each step's TLS conversation")
    p.add_argument(
        "--sender",
        choices=SENDER_NAMES,
        help="then tell what differs when this Adobe sender calls (its answer deadline, its mTLS switch, its "
        "certificate's lifecycle), with its profile as Adobe documents it",
    )
    p.set_defaults(handler=_run_demo)


def _run_demo(ns: argparse.Namespace) -> int:
    from mtls_lab.caller.senders import Sender
    from mtls_lab.matrix.demo import run_demo, steps_for
    from mtls_lab.report.collect import Recorder

    start_report(ns)
    pki, recorder = ensure_pki(ns.certs), Recorder()
    sender = Sender(ns.sender) if ns.sender else None
    text, good = run_demo(pki, trace=ns.trace, colour=sys.stdout.isatty(), observe=recorder, sender=sender)
    print(text)
    if ns.report:
        from mtls_lab.report.reports import recorded_matrix_report

        stories = {step.scenario_id: f"{step.chapter}: {step.story}" for step in steps_for(sender)}
        title = "ajo-mtls-lab demo: why does AJO's custom action get HTTP 403 from an mTLS endpoint?"
        save_report(ns, recorded_matrix_report(title, recorder, pki, stories))
    return ExitCode.OK if good else ExitCode.MISMATCH


def add_health(sub: Commands) -> None:
    p = sub.add_parser(
        "health",
        parents=[pki_option()],
        help="is a lab server up and ready? (the compose healthcheck)",
        description="GET the lab server's /_lab/health holding a lab identity, sent the way AJO's Java client "
        "does (so it works in mtls mode too), and print one line. Exit codes: 0 ready, 1 HTTP error, 3 TLS rejected "
        "(only with --strict: by default a TLS alert proves the server is up and counts as ready), "
        "4 server certificate not from the lab PKI, 5 down.",
    )
    lab = f"https://127.0.0.1:{LAB_PORT}"
    p.add_argument("--url", default=lab, help=f"the server (default {lab})")
    p.add_argument("--identity", choices=IDENTITY_NAMES, default="adobe", help="lab identity held (default adobe)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    p.add_argument("--strict", action="store_true", help="a TLS alert is not ready: exit 3")
    p.set_defaults(handler=_run_health)


def _run_health(ns: argparse.Namespace) -> int:
    from mtls_lab.certs.layout import Identity
    from mtls_lab.certs.pki import require
    from mtls_lab.matrix.health import probe

    identity = None if ns.identity == "none" else Identity(ns.identity)
    found = probe(ns.url, require(ns.certs), identity, ns.timeout)
    print(found.describe())
    return int(found.state.exit_code(ns.strict))
