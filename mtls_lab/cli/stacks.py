"""``mtls-lab stacks``: what each server stack answers to each client-certificate failure, and its settings."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mtls_lab.errors import ExitCode

if TYPE_CHECKING:
    from mtls_lab.cli.options import Commands

STACK_NAMES = ["nginx", "haproxy", "caddy", "go", "openssl", "spring-boot", "tomcat"]
MODES = ["tls-only", "optional", "required"]


def add_stacks(sub: Commands) -> None:
    p = sub.add_parser(
        "stacks",
        help="what Java, Go, OpenSSL-based servers and nginx answer to each client-certificate failure",
        description="Print the table measured with real servers on 127.0.0.1 (tests/test_stacks.py checks every "
        "cell): what each server stack answers for each client-certificate failure on TLS 1.2 and TLS 1.3. With "
        "--config, print the settings that make a stack TLS-only, optional or required, as the tests run them.",
    )
    p.add_argument("--config", choices=STACK_NAMES, help="print this stack's settings instead of the table")
    p.add_argument("--mode", choices=MODES, help="with --config: only this mode (default: all three)")
    p.set_defaults(handler=_run_stacks)


def _run_stacks(ns: argparse.Namespace) -> int:
    from mtls_lab.caller.stacks import table_markdown
    from mtls_lab.server.stack_configs import CONFIGS, ClientAuth, Files

    if ns.config is None:
        print(table_markdown())
        return ExitCode.OK
    config = CONFIGS[ns.config]
    print(f"# {config.name}: {config.run_here}")
    print(f"# CA names: {config.ca_names}")
    for mode in [ClientAuth(ns.mode)] if ns.mode else list(ClientAuth):
        print(f"\n# {mode.value}\n{config.render(mode, Files())}", end="")
    return ExitCode.OK
