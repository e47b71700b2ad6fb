"""The verdict, printed for people."""

from __future__ import annotations

import textwrap

from mtls_lab.caller.verdict import Verdict


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def render(verdict: Verdict, method: str = "POST") -> str:
    """A short, plain-text report of one call."""
    identity = verdict.identity or "none"
    lines = [f"AJO-like call: {method} {verdict.url}", f"  identity {identity}, client model {verdict.client_behavior}"]
    lines += [f"  warning: {w}" for w in verdict.warnings]
    for attempt in verdict.attempts:
        what = attempt.outcome + (f" HTTP {attempt.status}" if attempt.status else "")
        what += f" alert {attempt.alert}" if attempt.alert else ""
        lines.append(f"  attempt {attempt.number}: {what} ({attempt.seconds:.3f} s)")
    headline = verdict.outcome.value.upper()
    detail = f"HTTP {verdict.status}" if verdict.status else f"alert {verdict.alert}" if verdict.alert else ""
    if verdict.server_reason:
        detail += f" {verdict.server_reason}"
    lines.append(
        f"VERDICT: {headline} {detail} (phase {verdict.phase.value}, {verdict.tls_version or 'TLS version unknown'})"
    )
    names = "; ".join(verdict.advertised_ca_names) or "none"
    lines.append(
        f"  client certificate sent: {_yes(verdict.client_cert_sent)} "
        f"(server requested one: {_yes(verdict.server_requested_cert)}; CA names it advertised: {names})"
    )
    lines.append(f"  AJO would report: jo_status_code={verdict.jo_status_code}")
    lines += _wrapped("why", verdict.explanation) + _wrapped("fix", verdict.fix)
    if verdict.tell_apart:
        lines += _wrapped("check", verdict.tell_apart)
    lines += _wrapped("note", verdict.model_note)
    return "\n".join(lines)


def _wrapped(label: str, text: str) -> list[str]:
    return textwrap.wrap(text, width=100, initial_indent=f"  {label}: ", subsequent_indent=" " * (len(label) + 4))
