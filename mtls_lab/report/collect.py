"""Run what a report shows, and keep the server's record of the same attempts.

- a call or a probe against any endpoint, with the lab server's record read from its JSON-lines file
  (``mtls-lab serve --record PATH``) when there is one;
- the matrix (or the demo's steps), whose servers run in this process: each scenario's entries are read
  from the server's own record right after its call, through the runner's ``observe`` hook.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtls_lab.caller.probe import ProbeReport, probe
from mtls_lab.caller.tls import ClientIdentity
from mtls_lab.caller.verdict import Verdict
from mtls_lab.certs.layout import LabPaths
from mtls_lab.matrix.runner import Result
from mtls_lab.report.server_side import ServerSide, for_attempt, read_record_file, versioned
from mtls_lab.server.run import RunningServer

SETTLE = 1.0  # seconds to wait for a connection entry the server writes after the caller saw the alert
Entries = Callable[[], list[dict[str, Any]]]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def last_port(verdict: Verdict) -> int | None:
    return verdict.attempts[-1].local_port if verdict.attempts else None


def attempt_side(read: Entries, verdict: Verdict, since: dt.datetime, source: str) -> ServerSide:
    """The server's entries for the verdict's last attempt.

    A record with connection entries (version 2) may write a rejected handshake's entry a moment after the
    caller met the alert: wait for it, briefly. A version 1 record writes a request before answering it.
    """
    if verdict.failed_call == "token":
        note = "The action's endpoint was not called (the token call failed first): its server has nothing of it."
        return ServerSide(source, None, note=note)
    deadline = time.monotonic() + SETTLE
    while True:
        entries = read()
        side = for_attempt(entries, last_port(verdict), since, source)
        if side.has_connection_entries or not versioned(entries) or time.monotonic() >= deadline:
            return side
        time.sleep(0.05)


def file_side(path: Path, verdict: Verdict, since: dt.datetime) -> ServerSide:
    return attempt_side(lambda: read_record_file(path), verdict, since, f"the server's record file {path}")


@dataclass
class ProbeRun:
    report: ProbeReport
    first: Verdict  # the probe's own first connection (AJO's defaults, no client certificate): what the report draws
    started: dt.datetime


def run_probe(
    url: str,
    server_ca: str | None,
    pki: LabPaths | None,
    tries: list[ClientIdentity],
    timeout: float,
    check_trust: bool = False,
) -> ProbeRun:
    """The probe, keeping the verdict of its first connection: the report draws what the probe saw."""
    started = now()
    report = probe(url, server_ca, pki, tries, timeout, check_trust=check_trust)
    return ProbeRun(report, report.first, started)


@dataclass
class Recorder:
    """The runner's ``observe`` hook: each result, with its server's record of the attempt."""

    results: list[Result] = field(default_factory=list)
    sides: list[ServerSide] = field(default_factory=list)

    def __call__(self, result: Result, server: RunningServer) -> None:
        since = now() - dt.timedelta(seconds=result.seconds)
        source = f"the lab server's record ({server.url})"
        self.results.append(result)
        self.sides.append(attempt_side(lambda: server.record.newest(200), result.verdict, since, source))
