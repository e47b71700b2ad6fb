"""The three reports, from what was run to HTML: a call, a probe, the matrix (or the demo's steps)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from mtls_lab.caller.tls import ClientIdentity
from mtls_lab.caller.verdict import Verdict
from mtls_lab.certs.inspect import CertFacts
from mtls_lab.certs.layout import LabPaths
from mtls_lab.errors import LabError
from mtls_lab.matrix.runner import Result, server_label
from mtls_lab.report import render
from mtls_lab.report.certificates import LabMarks
from mtls_lab.report.collect import ProbeRun, Recorder, file_side
from mtls_lab.report.reproduce import command_line, scenario_commands
from mtls_lab.report.server_side import ServerSide
from mtls_lab.report.views import CallView, call_view, matrix_view, probe_view, scenario_anchor


def check_new(path: Path) -> None:
    """Refuse, before any work, a report path that exists or whose folder does not."""
    if path.exists():
        raise LabError(f"--report {path}: the file already exists: choose a new file name (never overwritten)")
    if not path.parent.is_dir():
        raise LabError(f"--report {path}: the folder {path.parent} does not exist: create it or choose another path")


def _held(identity: ClientIdentity | None) -> list[CertFacts]:
    if identity is None:
        return []
    return [CertFacts.of(cert) for cert in identity.certificates()]


def call_report(
    verdict: Verdict,
    *,
    argv: Sequence[str],
    pki: LabPaths | None,
    identity: ClientIdentity | None,
    server_record: Path | None = None,
    started: dt.datetime | None = None,
) -> str:
    """The HTML report of one call (``mtls-lab call --report``)."""
    side = file_side(server_record, verdict, started or verdict_start(verdict)) if server_record else None
    view = call_view(
        verdict,
        title=f"AJO-like call to {verdict.url}",
        commands=[command_line(argv)],
        marks=LabMarks(pki),
        held=_held(identity),
        server_side=side,
    )
    return render.render_call(view)


def verdict_start(verdict: Verdict) -> dt.datetime:
    """When the call began, from the time its attempts took (for a record read right after it)."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=sum(a.seconds for a in verdict.attempts))


def probe_report(run: ProbeRun, *, argv: Sequence[str], pki: LabPaths | None, server_record: Path | None = None) -> str:
    """The HTML report of a probe (``mtls-lab probe --report``)."""
    side = file_side(server_record, run.first, run.started) if server_record else None
    first = call_view(
        run.first,
        title=f"AJO's first connection to {run.report.url}",
        commands=[command_line(argv)],
        marks=LabMarks(pki),
        server_side=side,
    )
    return render.render_probe(probe_view(run.report, first))


def matrix_report(
    title: str,
    results: Sequence[Result],
    pki: LabPaths,
    sides: Sequence[ServerSide | None] | None = None,
    notes: dict[str, str] | None = None,
) -> str:
    """The HTML report of matrix results (``mtls-lab matrix --report``, ``mtls-lab demo --report``)."""
    marks = LabMarks(pki)
    details: list[CallView] = []
    for index, result in enumerate(results):
        s = result.scenario
        identity = ClientIdentity.from_lab(pki, s.identity, s.chain) if s.identity else None
        details.append(
            call_view(
                result.verdict,
                title=s.id,
                commands=scenario_commands(s),
                marks=marks,
                held=_held(identity),
                server_label=server_label(s),
                server_side=sides[index] if sides else None,
                anchor=scenario_anchor(s.id),
            )
        )
    return render.render_matrix(matrix_view(title, list(results), details, notes or {}))


def recorded_matrix_report(title: str, recorder: Recorder, pki: LabPaths, notes: dict[str, str] | None = None) -> str:
    return matrix_report(title, recorder.results, pki, recorder.sides, notes)
