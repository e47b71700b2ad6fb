"""What each report says, before any HTML: the verdict, the cause and the fix first, then the evidence.

Built from the caller's results as they are (``Verdict``, ``ProbeReport``, the matrix's ``Result``); the
headline is read from a table per outcome. Nothing here is escaped: the templates escape every text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mtls_lab.caller.probe import ProbeReport
from mtls_lab.caller.verdict import Layer, Outcome, Verdict
from mtls_lab.certs.inspect import CertFacts
from mtls_lab.matrix.runner import Result
from mtls_lab.report import certificates, ladder
from mtls_lab.report.certificates import CertCard, LabMarks
from mtls_lab.report.ladder import Ladder
from mtls_lab.report.server_side import Fact, ServerSide
from mtls_lab.vocabulary import short_answer


@dataclass(frozen=True)
class Headline:
    text: str
    tone: str  # good, bad, warn


@dataclass
class CallView:
    title: str
    headline: Headline
    cause: str
    fix: str
    summary: list[Fact]
    notes: list[str]
    ladder: Ladder
    caller_side: list[Fact]
    server_side: ServerSide | None
    attempts: list[Fact]
    certificates: list[CertCard]
    commands: list[str]
    anchor: str = ""
    token: list[Fact] = field(default_factory=list)  # the custom authorization's token call, if any


@dataclass
class ProbeView:
    title: str
    headline: Headline
    cause: str
    fixes: list[str]
    facts: list[Fact]
    first: CallView  # the probe's first connection: AJO's defaults, no client certificate


@dataclass
class MatrixRow:
    scenario: str
    mode: str
    tls: str
    identity: str
    behavior: str
    expected: str
    actual: str
    outcome: str
    match: bool
    jo_status_code: str
    note: str


@dataclass
class MatrixView:
    title: str
    headline: Headline
    rows: list[MatrixRow]
    details: list[CallView]
    modes: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)


# --- one call ----------------------------------------------------------------------------------------

_HEADLINES: dict[Outcome, tuple[str, str]] = {
    Outcome.ACCEPTED: ("Accepted: HTTP {status}", "good"),
    Outcome.HTTP_ERROR: ("Rejected over HTTP: {status}{reason}", "bad"),
    Outcome.TLS_ALERT: ("Rejected in TLS: alert {alert}, {when}", "bad"),
    Outcome.SERVER_UNTRUSTED: ("Stopped by the caller: it does not trust the endpoint's certificate", "bad"),
    Outcome.CONNECTION_ERROR: ("Connection failed ({phase}), no TLS alert", "bad"),
    Outcome.TIMEOUT: ("No answer within the timeout ({phase})", "bad"),
}
_WHEN = {
    Layer.AFTER_HANDSHAKE: "after the handshake (on the caller's first read)",
    Layer.HANDSHAKE: "during the handshake",
}


def headline(verdict: Verdict) -> Headline:
    text, tone = _HEADLINES[verdict.outcome]
    return Headline(
        text.format(
            status=verdict.status,
            reason=f" {verdict.server_reason}" if verdict.server_reason else "",
            alert=verdict.alert,
            when=_WHEN.get(verdict.phase, verdict.phase.value),
            phase=verdict.phase.value.replace("_", " "),
        ),
        tone,
    )


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def _summary(verdict: Verdict) -> list[Fact]:
    sent = verdict.client_cert_sent
    return [
        Fact("AJO would report", f"jo_status_code {verdict.jo_status_code}"),
        Fact("client certificate sent", _yes(sent), "good" if sent else "bad" if sent is False else ""),
        Fact("TLS version", verdict.tls_version or "none negotiated"),
        Fact("failing layer", "-" if verdict.outcome is Outcome.ACCEPTED else verdict.phase.value.replace("_", " ")),
    ]


def caller_side(verdict: Verdict) -> list[Fact]:
    """What the caller saw of its last attempt, in the terms the server's record uses."""
    last = verdict.attempts[-1] if verdict.attempts else None
    names = verdict.advertised_ca_names
    facts = [
        Fact("from local port", str(last.local_port) if last and last.local_port else "no connection"),
        Fact("TLS", verdict.tls_version or "none negotiated"),
        Fact(
            "certificate requested",
            _yes(verdict.server_requested_cert)
            + (", after the handshake" if verdict.requested_after_handshake else ""),
        ),
        Fact("CA names advertised", "; ".join(names) if names else "none"),
        Fact(
            "client certificate",
            ("sent" if verdict.client_cert_sent else "not sent")
            + (f": {verdict.certificate_choice}" if verdict.certificate_choice else ""),
            "good" if verdict.client_cert_sent else "bad",
        ),
    ]
    if verdict.alert:
        facts.append(Fact("alert received", f"{verdict.alert}, {_WHEN.get(verdict.phase, verdict.phase.value)}", "bad"))
    if verdict.status is not None:
        tone = "good" if verdict.outcome is Outcome.ACCEPTED else "bad"
        answer = short_answer(verdict.status, reason=verdict.server_reason)
        facts.append(Fact("answer", f"{verdict.request_line} -> {answer}", tone))
    elif verdict.outcome is not Outcome.ACCEPTED and not verdict.alert:
        facts.append(Fact("ended", verdict.outcome.value.replace("_", " "), "bad"))
    return facts


_TOKEN_FIELDS = {
    "url": "endpoint",
    "method": "method",
    "sub_type": "sub type",
    "body_type": "body",
    "status": "answered HTTP",
    "error": "OAuth error",
    "error_description": "error description",
    "reason": "identity provider's reason",
}


def token_call(verdict: Verdict) -> list[Fact]:
    """The token call of a custom authorization (``Verdict.token_call``), as the report shows it."""
    call = verdict.token_call
    if not call:
        return []
    values = {key: getattr(call, key) for key in _TOKEN_FIELDS}
    facts = [Fact(label, str(values[key])) for key, label in _TOKEN_FIELDS.items() if values[key] is not None]
    facts.append(Fact("client certificate offered", _yes(call.client_certificate)))
    if call.cached:
        facts.append(Fact("token", "from the cache (no call made)"))
    facts += [Fact("note", str(note)) for note in call.notes]
    failed = verdict.failed_call == "token"
    return [Fact("outcome", "failed: the action's endpoint was not called" if failed else "token obtained",
                 "bad" if failed else "good"), *facts]  # fmt: skip


def _attempts(verdict: Verdict) -> list[Fact]:
    facts = []
    for a in verdict.attempts:
        # status and alert each, as both are kept on an attempt (short_answer alone would let the status win)
        status = f" {short_answer(a.status)}" if a.status else ""
        what = a.outcome + status + (f" {short_answer(alert=a.alert)}" if a.alert else "")
        port = f", from port {a.local_port}" if a.local_port else ""
        facts.append(Fact(f"attempt {a.number}", f"{what} ({a.seconds:.3f} s{port})"))
    return facts


def call_view(
    verdict: Verdict,
    *,
    title: str,
    commands: list[str],
    marks: LabMarks,
    held: list[CertFacts] | None = None,
    server_label: str = "",
    server_side: ServerSide | None = None,
    anchor: str = "",
) -> CallView:
    notes = [*verdict.warnings, verdict.model_note] if verdict.client_behavior == "java" else list(verdict.warnings)
    return CallView(
        title=title,
        headline=headline(verdict),
        cause=verdict.explanation,
        fix=verdict.fix,
        summary=_summary(verdict),
        notes=notes,
        ladder=ladder.build(verdict, server_label),
        caller_side=caller_side(verdict),
        server_side=server_side,
        attempts=_attempts(verdict),
        certificates=certificates.involved(verdict.handshake, held or [], marks),
        commands=commands,
        anchor=anchor,
        token=token_call(verdict),
    )


# --- a probe -----------------------------------------------------------------------------------------


def probe_headline(report: ProbeReport) -> Headline:
    """What AJO will meet at this endpoint, in one line."""
    names = [name.split(",")[0].removeprefix("CN=") for name in report.advertised_ca_names]
    if not report.server_chain_valid:
        return Headline("AJO will not trust this endpoint's certificate: its call fails before mTLS", "bad")
    if report.configuration == "tls-only":
        return Headline("TLS-only endpoint: AJO's call will carry no client certificate", "bad")
    if report.configuration == "per-path":
        return Headline(
            "Endpoint asks for a certificate only after the handshake, for this path: AJO's Java client cannot "
            "answer on TLS 1.3",
            "bad",
        )
    if not report.java_sends_certificate:
        shown = "; ".join(names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")
        other = f"names only other CAs ({shown})" if names else "names no Adobe CA"
        if report.configuration == "mtls-only":
            return Headline(f"mTLS-only endpoint that {other}: AJO omits its certificate, the handshake fails", "bad")
        return Headline(f"Endpoint asks for a certificate optionally and {other}: AJO will send none", "bad")
    if report.configuration == "mixed":
        return Headline("AJO will send its certificate, but the endpoint also accepts calls without one", "warn")
    return Headline("mTLS-only endpoint that AJO will send its certificate to", "good" if not report.fixes else "warn")


def probe_facts(report: ProbeReport) -> list[Fact]:
    versions = [v for v, ok in (("TLS 1.2", report.tls12), ("TLS 1.3", report.tls13)) if ok]
    names = report.advertised_ca_names
    facts = [
        Fact(
            "server chain validates",
            "yes" if report.server_chain_valid else f"NO: {report.server_chain_problem}",
            "good" if report.server_chain_valid else "bad",
        ),
        Fact("TLS versions accepted", ", ".join(versions) or "neither 1.2 nor 1.3"),
        Fact("AJO's default connects with", report.ajo_default_version or "nothing"),
        Fact("client certificate requested", _yes(report.requests_client_cert)),
        Fact("without a certificate", report.without_cert),
        Fact("CA names advertised", "; ".join(names) if names else "none"),
    ]
    if report.requests_client_cert:
        facts += [
            Fact("names Adobe's current issuers", _yes(report.names_adobe_today)),
            Fact("names the CA migration's issuers", _yes(report.names_adobe_next)),
            Fact(
                "a Java client such as AJO (model)",
                "SENDS its certificate" if report.java_sends_certificate else "OMITS its certificate",
                "good" if report.java_sends_certificate else "bad",
            ),
        ]
    if report.names_lab_stand_ins:
        facts.append(Fact("lab stand-ins among the names", "; ".join(report.names_lab_stand_ins)))
    for tried in report.identities:
        where = f" (rejected at {tried.rejected_at} level)" if tried.rejected_at != "-" else ""
        facts.append(Fact(f"identity {tried.identity}", f"{tried.answer}{where}"))
    return facts


def probe_view(report: ProbeReport, first: CallView) -> ProbeView:
    return ProbeView(
        title=f"Probe of {report.url}",
        headline=probe_headline(report),
        cause=report.likely_outcome,
        fixes=list(report.fixes),
        facts=probe_facts(report),
        first=first,
    )


# --- the matrix --------------------------------------------------------------------------------------


def matrix_row(result: Result, note: str | None = None) -> MatrixRow:
    s, v = result.scenario, result.verdict
    return MatrixRow(
        scenario=s.id,
        mode=s.mode.value,
        tls=s.tls.value if s.tls else "auto",
        identity=(s.identity.value if s.identity else "none") + (" (leaf only)" if s.chain.value == "leaf" else ""),
        behavior=s.behavior.value,
        expected=s.expect,
        actual=result.actual,
        outcome=v.outcome.value,
        match=result.match,
        jo_status_code=v.jo_status_code,
        note=s.note if note is None else note,
    )


def matrix_view(title: str, results: list[Result], details: list[CallView], notes: dict[str, str]) -> MatrixView:
    """``notes``: a text per scenario id instead of the scenario's own note (the demo's story)."""
    rows = [matrix_row(r, notes.get(r.scenario.id)) for r in results]
    bad = sum(not r.match for r in rows)
    text = f"{len(rows)} scenarios: {len(rows) - bad} as expected, {bad} mismatched"
    return MatrixView(
        title=title,
        headline=Headline(text, "good" if not bad else "bad"),
        rows=rows,
        details=details,
        modes=sorted({r.mode for r in rows}),
        identities=sorted({r.identity.split(" ")[0] for r in rows}),
        outcomes=sorted({r.outcome for r in rows}),
    )


def scenario_anchor(scenario_id: str) -> str:
    """An id usable in a URL fragment and an HTML id."""
    return "s-" + "".join(c if c.isalnum() or c == "-" else "_" for c in scenario_id)
