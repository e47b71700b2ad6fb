"""The exact commands that reproduce what a report shows."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from mtls_lab.certs.layout import CA
from mtls_lab.matrix.scenarios import Advertise, Scenario
from mtls_lab.server.settings import Authorize
from mtls_lab.vocabulary import LAB_PORT

# options of the report itself: a reproduced run needs neither (and --report would refuse the existing file)
REPORT_OPTIONS = ("--report", "--server-record")
PIN = "$(openssl x509 -in certs/clients/adobe/leaf.pem -noout -fingerprint -sha256 | cut -d= -f2)"  # today's leaf


def command_line(argv: Sequence[str]) -> str:
    """``argv`` (``mtls-lab call ...``) without the report's own options, quoted for a POSIX shell."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in REPORT_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in REPORT_OPTIONS)):
            kept.append(arg)
    return shlex.join(kept)


def scenario_commands(scenario: Scenario) -> list[str]:
    """The scenario through the matrix, then (when the options can say it) as a server and a call."""
    commands = [shlex.join(["mtls-lab", "matrix", "--only", scenario.id, "--trace"])]
    if _one_server_and_a_call(scenario):
        commands += [_serve(scenario) + " &", _call(scenario)]
    return commands


def _one_server_and_a_call(s: Scenario) -> bool:
    """Whether ``serve`` and ``call`` options say the whole row: no trust-sync schedule, proxy, trusted leaf,
    token endpoint or other authorization (the matrix sets those up itself)."""
    simple = s.trust_sync is None and not s.proxy_without_header and not s.leaf_trust and s.auth is None
    return simple and s.authorize is Authorize.CERTIFICATE


def _serve(s: Scenario) -> str:
    args = ["mtls-lab", "serve", "--mode", s.mode.value, "--port", str(LAB_PORT)]
    for ca in s.trust:
        args += ["--trust", _ca_file(ca)]
    advertise = s.advertise.value if isinstance(s.advertise, Advertise) else _ca_file(s.advertise)
    if advertise != Advertise.TRUST.value:
        args += ["--advertise-ca", advertise]
    if s.tls_max.value != "1.3":
        args += ["--tls-max", s.tls_max.value]
    for name in s.allow:
        args += ["--allow-cn", name]
    if s.pin:
        args += ["--pin-sha256", PIN]
    if s.style.value != "alert":
        args += ["--reject-style", s.style.value]
    return " ".join(shlex.quote(a) if not a.startswith("$(") else f'"{a}"' for a in args)


def _call(s: Scenario) -> str:
    args = ["mtls-lab", "call", "--url", f"https://localhost:{LAB_PORT}/custom-action", "--retries", "0"]
    args += ["--identity", s.identity.value if s.identity else "none"]
    if s.chain.value != "full":
        args += ["--chain", s.chain.value]
    if s.behavior.value != "java":
        args += ["--client-behavior", s.behavior.value]
    if s.tls is not None:
        args += ["--tls", s.tls.value]
    return shlex.join([*args, "--trace"])


def _ca_file(ca: CA) -> str:
    return f"ca/{ca.value}.pem"
