"""The verdict, printed for people."""

from __future__ import annotations

import textwrap

from mtls_lab.caller.verdict import TOMCAT_PER_URL, Verdict
from mtls_lab.vocabulary import short_answer


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def render(verdict: Verdict, method: str = "POST") -> str:
    """A short, plain-text report of one call."""
    identity = verdict.identity or "none"
    lines = [f"AJO-like call: {method} {verdict.url}", f"  identity {identity}, client model {verdict.client_behavior}"]
    lines += [f"  warning: {w}" for w in verdict.warnings]
    lines += _token_call(verdict)
    for attempt in verdict.attempts:
        what = attempt.outcome + (f" {short_answer(attempt.status)}" if attempt.status else "")
        what += f" alert {attempt.alert}" if attempt.alert else ""
        lines.append(f"  attempt {attempt.number}: {what} ({attempt.seconds:.3f} s)")
    headline = verdict.outcome.value.upper()
    detail = short_answer(verdict.status, verdict.alert)
    if verdict.server_reason:
        detail += f" {verdict.server_reason}"
    detail += " at the token call" if verdict.failed_call == "token" else ""
    version = verdict.tls_version or "TLS version unknown"
    lines.append(f"VERDICT: {headline} {detail} (phase {verdict.phase.value}, {version})")
    if verdict.failed_call == "token":
        lines.append("  action call: not made (AJO calls the action only with a token)")
    else:
        names = "; ".join(verdict.advertised_ca_names) or "none"
        lines.append(
            f"  client certificate sent: {_yes(verdict.client_cert_sent)} "
            f"(server requested one: {_requested(verdict)}; CA names it advertised: {names})"
        )
    event = verdict.step_event
    recorded = f"actionExecError={event.error}" if event.error else "no actionExecError"
    recorded += f" ({event.error_code})" if event.error_code else ""
    if event.orig_error:
        recorded += f", actionExecOrigError={event.orig_error}" + (
            f" ({event.orig_error_code})" if event.orig_error_code else ""
        )
    lines.append(f"  AJO would report: jo_status_code={verdict.jo_status_code}; step event: {recorded}")
    lines += verdict.journey.lines() if verdict.journey else []
    lines += _wrapped("why", verdict.explanation) + _wrapped("fix", verdict.fix)
    if verdict.tell_apart:
        lines += _wrapped("check", verdict.tell_apart)
    lines += _wrapped("note", verdict.model_note)
    return "\n".join(lines)


def _requested(verdict: Verdict) -> str:
    if not verdict.requested_after_handshake:
        return _yes(verdict.server_requested_cert)
    if verdict.server_requested_cert:
        return "yes, after the handshake, for this path"
    if verdict.server_reason == TOMCAT_PER_URL:
        return "after the handshake, for this path, which Tomcat cannot do on TLS 1.3"
    how = "offered" if verdict.offered_post_handshake_auth else "did not offer"
    return f"after the handshake, for this path: TLS 1.3 post-handshake authentication, which this client {how}"


def _token_call(verdict: Verdict) -> list[str]:
    call = verdict.token_call
    if call is None:
        return []
    how = f"{call.method} {call.url}" + (f", {call.body_type} body" if call.body_type else "")
    how += f", {call.sub_type}" if call.sub_type else ""
    how += ", with" if call.client_certificate else ", without"
    if call.cached:
        got = "token from the cache"
    elif verdict.failed_call == "token":
        got = "FAILED" + (f": HTTP {call.status}" if call.status else "")
        got += f" {call.error}" if call.error else ""
    else:
        got = f"token received, cached {call.cache_seconds or 0:g} s"
    return [f"  token call: {how} the client certificate: {got}"]


def _wrapped(label: str, text: str) -> list[str]:
    return textwrap.wrap(text, width=100, initial_indent=f"  {label}: ", subsequent_indent=" " * (len(label) + 4))
