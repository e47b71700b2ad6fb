"""``mtls-lab stacks``: what each server stack answers to each client-certificate failure, and its settings."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mtls_lab.errors import ExitCode

if TYPE_CHECKING:
    from mtls_lab.cli.options import Commands

STACK_NAMES = ["nginx", "haproxy", "caddy", "go", "apache", "openssl", "spring-boot", "tomcat"]
MODES = ["tls-only", "optional", "required", "per-path"]


def add_stacks(sub: Commands) -> None:
    p = sub.add_parser(
        "stacks",
        help="what Java, Go, OpenSSL-based servers and nginx answer to each client-certificate failure",
        description="Print the table measured with real servers on 127.0.0.1 (tests/test_stacks.py checks every "
        "cell): what each server stack answers for each client-certificate failure on TLS 1.2 and TLS 1.3. With "
        "--config, print the settings that make a stack TLS-only, optional or required, as the tests run them.",
    )
    p.add_argument("--config", choices=STACK_NAMES, help="print this stack's settings instead of the table")
    p.add_argument(
        "--mode",
        choices=MODES,
        help="with --config: only this mode (default: all); per-path (Apache, Tomcat): the certificate asked "
        "for one path only, after the handshake",
    )
    p.set_defaults(handler=_run_stacks)


def _run_stacks(ns: argparse.Namespace) -> int:
    from mtls_lab.caller.stacks import table_markdown
    from mtls_lab.server.stack_configs import CONFIGS, ClientAuth, Files

    if ns.config is None:
        print(table_markdown())
        return ExitCode.OK
    config = CONFIGS[ns.config]
    if ns.mode == "per-path" and config.per_path is None:
        with_it = ", ".join(name for name, c in CONFIGS.items() if c.per_path)
        print(
            f"error: --mode per-path: {config.name} has no per-path setting here; try --config {with_it}",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    print(f"# {config.name}: {config.run_here}")
    print(f"# CA names: {config.ca_names}")
    for mode in [ClientAuth(ns.mode)] if ns.mode not in (None, "per-path") else ([] if ns.mode else list(ClientAuth)):
        print(f"\n# {mode.value}\n{config.render(mode, Files())}", end="")
    if config.per_path is not None and ns.mode in (None, "per-path"):
        print(f"\n# per-path: {config.per_path_note}\n{config.per_path(Files())}", end="")
    return ExitCode.OK
