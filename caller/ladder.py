"""The ladder diagram: the TLS conversation that actually happened, message by message.

Drawn from the messages observed on the caller's connection (``Verdict.handshake``), never
reconstructed from the verdict. Caller messages start at the left and end with an arrow to the
server; server messages are indented and start with an arrow to the caller. Facts wrap, they are
never cut. Colour only on a terminal.
"""

from __future__ import annotations

import shutil
import textwrap
from typing import Any

from mtls_lab.caller.verdict import Verdict

RIGHT, LEFT = "─▶", "◀─"
_COLOURS = {"sent": "\033[32m", "received": "\033[36m", "alert": "\033[1;31m", "note": "\033[33m", "end": "\033[0m"}


def render_ladder(verdict: Verdict, server_label: str = "", width: int | None = None, colour: bool = False) -> str:
    width = max(50, width or shutil.get_terminal_size((100, 24)).columns)
    model = "Java model" if verdict.client_behavior == "java" else "OpenSSL client"
    left = f"caller: AJO-like, {model}, identity {verdict.identity or 'none'}"
    right = f"server: {server_label or verdict.url}"
    lines = [
        *textwrap.wrap(left, width, subsequent_indent="        "),
        *textwrap.wrap(right, width, subsequent_indent="        "),
        "",
    ]
    marked_after = False
    for message in verdict.handshake:
        if message.get("after_client_finished") and not marked_after:
            marked_after = True
            lines += _note(
                "TLS 1.3: the caller has finished its handshake; the server judges its certificate "
                "now, so its answer arrives on the caller's first read",
                width,
                colour,
            )
        lines += _message(message, verdict, width, colour)
    if verdict.status is not None and not any(m["type"] == "ApplicationData" for m in verdict.handshake):
        lines += _side(True, f"{verdict.request_line}", width, colour)
        lines += _side(False, response_line(verdict), width, colour)
    if not verdict.handshake:
        lines += _note("no TLS message was exchanged (no connection)", width, colour)
    return "\n".join(lines)


def _message(message: dict[str, Any], verdict: Verdict, width: int, colour: bool) -> list[str]:
    sent = message["direction"] == "caller->server"
    kind, details = message["type"], message["details"]
    if kind == "ApplicationData":
        text = verdict.request_line if sent else response_line(verdict)
        return _side(sent, text, width, colour)
    text = f"{kind}  {_facts(kind, sent, details, verdict)}".rstrip()
    return _side(sent, text, width, colour, alert=kind == "Alert")


def _facts(kind: str, sent: bool, details: dict[str, Any], verdict: Verdict) -> str:
    if kind == "ClientHello":
        offered = ", ".join(details.get("versions_offered", [])) or "?"
        return f"offers {offered}" + (f", SNI {details['sni']}" if details.get("sni") else ", no SNI")
    if kind == "ServerHello":
        return f"{details.get('version', '?')}, cipher {details.get('cipher_suite', '?')}"
    if kind == "CertificateRequest":
        names = details.get("ca_names") or []
        return "CA names: " + ("; ".join(n.split(",")[0] for n in names) if names else "none")
    if kind == "Certificate":
        return _chain(details.get("chain", []), sent, verdict)
    if kind == "Alert":
        return f"{details.get('alert')} ({details.get('level')})"
    return ""


def _chain(chain: list[dict[str, str]], sent: bool, verdict: Verdict) -> str:
    if sent:
        if not chain:
            return f"(empty: {verdict.certificate_choice or 'no certificate to send'})"
        names = " + ".join(c["subject"].split(",")[0] for c in chain)
        return f"{names}  ({verdict.certificate_choice})" if verdict.certificate_choice else names
    if not chain:
        return "(empty)"
    leaf = chain[0]
    trusted = "NOT trusted by the caller" if verdict.outcome.value == "server_untrusted" else "trusted"
    return (
        f"{leaf['subject'].split(',')[0]} (issued by {leaf['issuer'].split(',')[0]}), {len(chain)} cert(s): {trusted}"
    )


def response_line(verdict: Verdict) -> str:
    """The HTTP answer in a few words, as both ladders (this one and the HTML report's) show it."""
    if verdict.status is None:
        return "(response not received)"
    reason = f' {{"reason": "{verdict.server_reason}"}}' if verdict.server_reason else ""
    return f"HTTP {verdict.status}{reason}"


def _side(sent: bool, text: str, width: int, colour: bool, alert: bool = False) -> list[str]:
    indent = 2 if sent else width // 2
    body = width - indent - 3
    # never break a fact in the middle: long names and reason codes stay whole, even past the width
    wrapped = textwrap.wrap(text, max(20, body), break_long_words=False, break_on_hyphens=False) or [""]
    paint = _COLOURS["alert" if alert else "sent" if sent else "received"] if colour else ""
    end = _COLOURS["end"] if colour else ""
    lines = []
    for index, piece in enumerate(wrapped):
        if sent:
            arrow = f" {RIGHT}" if index == len(wrapped) - 1 else ""
            lines.append(f"{' ' * indent}{paint}{piece}{end}{arrow}")
        else:
            arrow = f"{LEFT} " if index == 0 else "   "
            lines.append(f"{' ' * (indent - 3)}{arrow}{paint}{piece}{end}")
    return lines


def _note(text: str, width: int, colour: bool) -> list[str]:
    paint, end = (_COLOURS["note"], _COLOURS["end"]) if colour else ("", "")
    return [f"  {paint}{line}{end}" for line in textwrap.wrap(f"-- {text} --", width - 2)]
