"""What several commands share: options (as argparse parent parsers), their environment variables, and
the steps that turn them into the lab's objects (a PKI, a client identity, a ladder)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mtls_lab.certs.layout import DEFAULT_CERTS_DIR, Identity
from mtls_lab.errors import LabError

if TYPE_CHECKING:
    from mtls_lab.caller.tls import ClientIdentity
    from mtls_lab.caller.verdict import Verdict
    from mtls_lab.certs.layout import LabPaths

    Commands = argparse._SubParsersAction[argparse.ArgumentParser]  # what `add_subparsers()` returns

ENV_PREFIX = "MTLS_LAB_"
# the --sender names (caller/senders.py's Sender values), here so that building the parser imports no caller
SENDER_NAMES = ["ajo-custom-action", "ajo-sms", "http-destination", "event-forwarding", "io-events"]
Handler = Callable[[argparse.Namespace], int]
IDENTITY_NAMES = [identity.value for identity in Identity] + ["none"]


def env(dest: str) -> str:
    """The help text's note of an option's environment variable."""
    return f"[env {ENV_PREFIX}{dest.upper()}]"


def env_name(parser: argparse.ArgumentParser, flag: str) -> str:
    """The environment variable that gives ``flag`` (``--sender`` -> ``MTLS_LAB_SENDER``)."""
    dest = next((a.dest for a in parser._actions if flag in a.option_strings), flag.lstrip("-").replace("-", "_"))
    return ENV_PREFIX + dest.upper()


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


# --- parent parsers: `sub.add_parser(NAME, parents=[pki_option(), ...])` ------------------------


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def pki_option(with_env: bool = False) -> argparse.ArgumentParser:
    """``--certs DIR``: the lab PKI."""
    p = _parent()
    note = f" {env('certs')}" if with_env else ""
    p.add_argument("--certs", type=Path, default=DEFAULT_CERTS_DIR, help=f"lab PKI directory (default ./certs){note}")
    return p


def json_option(what: str) -> argparse.ArgumentParser:
    """``--json``: machine-readable output."""
    p = _parent()
    p.add_argument("--json", action="store_true", help=what)
    return p


def listen_options(port: int, with_env: bool = False) -> argparse.ArgumentParser:
    """``--host`` and ``--port`` of a server the lab runs."""
    p = _parent()
    host_env, port_env = (f" {env('host')}", f" {env('port')}") if with_env else ("", "")
    p.add_argument("--host", default="127.0.0.1", help=f"address to listen on (default 127.0.0.1){host_env}")
    p.add_argument(
        "--port", type=int, default=port, help=f"port (default {port}; 0 = a free port, printed at start-up){port_env}"
    )
    return p


def certificate_options() -> argparse.ArgumentParser:
    """``--cert``/``--key``/``--key-password``: any PEM client certificate instead of a lab identity."""
    p = _parent()
    p.add_argument("--cert", type=Path, help="a PEM client certificate (chain) to present instead of a lab identity")
    p.add_argument("--key", type=Path, help="its PEM private key")
    p.add_argument("--key-password", help="password of an encrypted --key")
    return p


def report_options(server_record: bool = False) -> argparse.ArgumentParser:
    """``--report FILE`` (a self-contained HTML report) and, for a lab server, ``--server-record FILE``."""
    p = _parent()
    p.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="also write a self-contained HTML report to FILE (a new file: never overwritten), to open "
        "in a browser or attach to a ticket",
    )
    if server_record:
        p.add_argument(
            "--server-record",
            type=Path,
            metavar="FILE",
            help="the lab server's record (`mtls-lab serve --record FILE`): the report shows what the server "
            "recorded for the same connection next to what the caller saw",
        )
    return p


def start_report(ns: argparse.Namespace) -> None:
    """Refuse a ``--report`` path before the work starts (existing file, missing folder)."""
    if getattr(ns, "report", None) is not None:
        from mtls_lab.report.reports import check_new

        check_new(ns.report)
    record = getattr(ns, "server_record", None)
    if record is not None and getattr(ns, "report", None) is None:
        raise LabError("--server-record goes with --report: add --report FILE")
    if record is not None and not record.is_file():
        raise LabError(f"--server-record {record}: no such file: give the file of `mtls-lab serve --record FILE`")


def save_report(ns: argparse.Namespace, html: str) -> None:
    from mtls_lab.report.render import write

    write(ns.report, html)
    print(f"report written to {ns.report}", file=sys.stderr)


# --- what options turn into ---------------------------------------------------------------------


def given_identity(ns: argparse.Namespace) -> ClientIdentity | None:
    """The client identity the options name: ``--cert``/``--key``, else the lab identity ``--identity``."""
    from mtls_lab.caller.tls import Chain, ClientIdentity
    from mtls_lab.certs.pki import require

    if ns.cert is not None or ns.key is not None:
        if ns.cert is None or ns.key is None:
            raise LabError("--cert and --key go together: give both PEM files")
        for path in (ns.cert, ns.key):
            if not path.is_file():
                what = "a directory, not a file" if path.is_dir() else "no such file"
                raise LabError(f"{path}: {what}: check --cert/--key")
        return ClientIdentity(ns.cert.name, ns.cert, ns.key, ns.key_password)
    if getattr(ns, "identity", "none") == "none":
        return None
    return ClientIdentity.from_lab(require(ns.certs), Identity(ns.identity), Chain(ns.chain))


def ensure_pki(root: Path) -> LabPaths:
    """The lab PKI in ``root``, generated first if it is missing (the matrix and the demo need one)."""
    from mtls_lab.certs.pki import generate, require

    result = generate(root, if_missing=True)
    if not result.reused:
        print(f"(generated the lab PKI in {root} in {result.seconds:.2f} s)", file=sys.stderr)
    return require(root)


def ladder(verdict: Verdict, label: str = "") -> str:
    """The handshake drawn for the terminal (in colour on a terminal)."""
    from mtls_lab.caller.ladder import render_ladder

    return render_ladder(verdict, label, colour=sys.stdout.isatty())
