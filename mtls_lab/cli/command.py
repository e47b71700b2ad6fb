"""``mtls-lab``: one command, with subcommands that forward to the programmatic API.

User errors print ``mtls-lab: error: what is wrong: how to fix it`` on one line (never a traceback)
and exit with a named ``ExitCode``. Every option can also come from an ``MTLS_LAB_<OPTION>``
environment variable (the compose file uses them); the command line wins.

Each command lives in the module of its concept (``pki``, ``server``, ``caller``, ``matrix``,
``lifecycle``) and imports what it runs only when it runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, cast

from mtls_lab import __version__
from mtls_lab.cli import caller, lifecycle, matrix, pki, server, stacks, trust_store
from mtls_lab.cli.options import Handler, env_arguments, env_name
from mtls_lab.errors import ExitCode, LabError

if TYPE_CHECKING:
    from mtls_lab.cli.options import Commands


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command = next((a for a in args if not a.startswith("-")), None)
    subparsers = _subparsers(parser)
    if command in subparsers:
        at = args.index(command)
        extra = env_arguments(subparsers[command], args[at + 1 :])
        args[at + 1 : at + 1] = extra
        if isinstance(chosen := subparsers[command], OneLineParser):
            chosen.from_environment = {flag: env_name(chosen, flag) for flag in extra if flag.startswith("--")}
    namespace = parser.parse_args(args)
    namespace.command_line = ["mtls-lab", *args]  # as run, options from the environment included (for reports)
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


class OneLineParser(argparse.ArgumentParser):
    """argparse, except that a usage error is one line (argparse prints the whole usage first, which buries the
    line that says what is wrong): what is wrong, and where the options are listed. Exit code 2 (``USAGE``), as
    argparse's. Subcommands' parsers are of this class too (``add_subparsers`` uses the parent's class)."""

    from_environment: dict[str, str]  # set by main for the command run: an option's flag -> its variable

    def error(self, message: str) -> NoReturn:
        flag = message.removeprefix("argument ").split(":", 1)[0].split("/")[-1]
        given = getattr(self, "from_environment", {})
        where = f" (from {given[flag]})" if flag in given else ""
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}{where} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="mtls-lab",
        description="Reproduce, understand and fix the mutual-TLS failures between Adobe Journey Optimizer "
        "custom actions and your endpoint: a lab PKI, a reference server and an AJO-like caller.",
        epilog="Run `mtls-lab COMMAND --help` for each command's options. The repository's docs/ folder explains "
        "every case: start with docs/troubleshooting.md (find your case) or docs/README.md (all pages).",
    )
    parser.add_argument("--version", action="version", version=f"mtls-lab {__version__}")
    # the commands' parsers are OneLineParsers (argparse makes them of the parent's class); typed as the base class
    sub = cast("Commands", parser.add_subparsers(title="commands", metavar="COMMAND"))
    pki.add_certs(sub)
    server.add_serve(sub)
    caller.add_call(sub)
    matrix.add_matrix(sub)
    matrix.add_demo(sub)
    caller.add_probe(sub)
    stacks.add_stacks(sub)
    server.add_nginx_conf(sub)
    matrix.add_health(sub)
    lifecycle.add_adobe_api(sub)
    lifecycle.add_trust_sync(sub)
    lifecycle.add_idp_leaves(sub)
    trust_store.add_trust_store(sub)
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}
